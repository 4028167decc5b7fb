"""The page's look: projector-scale type, AA contrast, reserved space, and the views a link asks for.

Sizes are for a room: body text 18 px at 1280x720; the live pictures take the height the
screen has left (the first screen never scrolls); every caption line has a fixed height,
so nothing moves when a run starts or a note arrives. Colours: white on #1d4ed8 (6.7:1)
for the main buttons, white on #b91c1c (6.5:1) for Stop, text #1f2937 / #374151 on white
(14.7:1 / 10.3:1); the runs' colours in the plots stay the colour-blind-safe pair
#1f77b4 / #d95f02.

HEAD runs before the page draws: it reads `view` and `hide` from the address and sets
classes on <html>, which the CSS below turns into the presentation view and hidden parts.
"""

CSS = """
:root:root, :root:root .dark {
  --text-xxs: 14px; --text-xs: 16px; --text-sm: 18px; --text-md: 18px; --text-lg: 20px; --text-xl: 24px;
  --text-xxl: 30px;
  --body-text-color: #1f2937; --body-text-color-subdued: #374151; --block-label-text-color: #1f2937;
  --block-info-text-color: #374151; --block-title-text-color: #1f2937; --input-placeholder-color: #4b5563;
  --color-accent: #1d4ed8; --color-accent-soft: #dbeafe;
  --button-primary-background-fill: #1d4ed8; --button-primary-background-fill-hover: #1e40af;
  --button-primary-text-color: #ffffff; --button-primary-text-color-hover: #ffffff;
  --button-primary-border-color: #1d4ed8; --button-primary-border-color-hover: #1e40af;
  --button-cancel-background-fill: #b91c1c; --button-cancel-background-fill-hover: #991b1b;
  --button-cancel-text-color: #ffffff; --button-cancel-text-color-hover: #ffffff;
  --button-cancel-border-color: #b91c1c;
  --button-secondary-text-color: #1f2937; --checkbox-background-color-selected: #1d4ed8;
  --checkbox-border-color-selected: #1d4ed8; --slider-color: #1d4ed8; --loader-color: #1d4ed8;
  --link-text-color: #1d4ed8; --link-text-color-hover: #1e40af; --link-text-color-visited: #5b21b6;
  --block-label-text-size: 18px; --block-info-text-size: 16px; --block-title-text-size: 18px;
  --section-header-text-size: 18px; --input-text-size: 18px;
}
.gradio-container { font-size: 18px; }
.gradio-container .prose { font-size: 18px; }
footer, footer a, footer button { color: #374151 !important; }
/* header */
#header { align-items: center; gap: 12px; }
.main.app.fillable { padding-top: 8px !important; }
#title { overflow: visible !important; }  /* a scrollable block would be a keyboard stop of its own */
#title h1 { font-size: 28px; margin: 0; line-height: 1.2; }
#share-row { gap: 8px; align-items: center; }
#share-row { flex-wrap: wrap; }
#lang-switch { flex: 0 0 auto !important; }
#lang-switch .wrap { flex-wrap: nowrap; }
#lang-switch label { white-space: nowrap; }
#link-button { font-size: 18px; }
/* the controls */
#pair-button { font-size: 22px; min-height: 64px; font-weight: 700; }
#start-button, #stop-button { font-size: 22px; min-height: 52px; font-weight: 700; }
/* play, pause, one step (ganapp.web.play): a row of buttons, then a status line beside the speed */
#play { gap: 4px; }
#play-row, #play-line { gap: 4px; flex-wrap: nowrap; align-items: center; }
#play-row button { font-size: 18px; min-height: 40px; padding: 2px 6px; flex: 1 1 auto; white-space: nowrap; }
#play-status { flex: 1 1 0 !important; min-width: 0 !important; }
#play-speed { flex: 0 0 120px !important; min-width: 0 !important; }
#play-speed input { font-size: 16px; margin-left: 0; margin-right: 0; padding-right: 20px; }
/* the dropdown's own padding (12px a side, 8px of input margin) cut "full speed" and "每秒 20 步" in a 120px box
   (tests/test_web_play.py measures each choice against the room it gets) */
#play-speed .wrap-inner { padding-left: 8px; padding-right: 2px; }
#play-status .play-status { font-size: 16px; height: 40px; line-height: 20px; overflow: hidden; color: #1f2937;
  display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; }
.technique-note { font-size: 16px; color: #374151; }
.form-heading h3 { font-size: 20px; margin: 4px 0; }
/* a menu's chosen value too long for its box ends in an ellipsis before the arrow, not under it */
.secondary-wrap input[role="combobox"] { text-overflow: ellipsis; padding-right: 28px; }
/* the stage: two panes, each a caption and a picture */
#stage { gap: 8px; }
#panes { gap: 12px; flex-wrap: nowrap; }
#pane-a, #pane-b { gap: 4px; min-width: 0 !important; }
.ganapp-caption { padding: 6px 12px; border-radius: 10px; background: #f3f4f6; line-height: 1.3;
  height: 142px; box-sizing: border-box; overflow: hidden; }
.ganapp-caption .cap-top { display: flex; gap: 16px; align-items: baseline; height: 32px; white-space: nowrap;
  overflow: hidden; }
.ganapp-caption .state { font-size: 24px; font-weight: 700; }
.ganapp-caption .counter { font-size: 24px; font-weight: 700; font-variant-numeric: tabular-nums; }
.ganapp-caption .what { font-size: 18px; height: 47px; overflow: hidden; display: -webkit-box;
  -webkit-line-clamp: 2; -webkit-box-orient: vertical; }
.ganapp-caption .headline { font-size: 20px; font-weight: 600; height: 27px; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; font-variant-numeric: tabular-nums; }
.ganapp-caption .speed { font-size: 16px; font-weight: 400; color: #374151; }
.ganapp-caption .notes { font-size: 16px; height: 22px; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
.ganapp-caption .notes > span + span::before { content: " · "; color: #374151; }
.ganapp-caption .reason { color: #b91c1c; }
.ganapp-caption .warning, .ganapp-caption .held { color: #7c4a03; }
.state-running .state, .state-starting .state { color: #1d4ed8; }
.state-finished .state { color: #166534; }
.state-stopped .state, .state-stopping .state, .state-interrupted .state { color: #7c4a03; }
.state-failed .state { color: #b91c1c; }
.state-queued .state { color: #6b21a8; }
.ganapp-picture { display: block; margin: 0 auto; max-width: 100%; height: auto; image-rendering: pixelated;
  border: 1px solid #d1d5db; }
.ganapp-picture.curves, .ganapp-picture.metrics { image-rendering: auto; }
#samples, #samples-b { height: calc(100vh - 290px); min-height: 220px; display: flex; align-items: flex-start;
  justify-content: center; overflow: hidden; }
#samples img, #samples-b img { width: 100%; height: calc(100vh - 290px); min-height: 220px; object-fit: contain; }
.ganapp-placeholder { color: #374151; font-size: 18px; padding: 40px 12px; text-align: center; }
/* What to look for: three lines reserved (most notes, so the views below do not move when
   the pair starts), and room for a longer one rather than text over the heading below. */
#look-for { font-size: 18px; min-height: 78px; line-height: 1.4; }
#look-for .look { border-left: 4px solid #1d4ed8; padding-left: 10px; }
/* the rest */
#compare-picture-a img, #compare-picture-b img, #metrics-picture img { max-width: 100%; }
#runs-table th, #scoreboard th { white-space: nowrap; word-break: keep-all; }
#runs-table td, #scoreboard td { word-break: normal; overflow-wrap: normal; }
/* historical averaging in a tiny game (ganapp/web/games_view.py): pictures at their own size */
#games-view .games-headline { font-size: 20px; font-weight: 600; margin: 4px 0 6px; }
#games-view .games-legend { list-style: none; padding: 0; margin: 0 0 8px; font-size: 18px; line-height: 1.5; }
#games-view .games-swatch { display: inline-block; width: 30px; height: 6px; margin-right: 8px;
  vertical-align: middle; border-radius: 3px; }
#games-view .games-swatch.plain { background: #d95f02; }
#games-view .games-swatch.averaged { background: #1f77b4; }
#games-view .games-figures { display: flex; flex-wrap: wrap; gap: 16px; }
#games-view figure { margin: 0; flex: 0 1 440px; min-width: 0; }
#games-view figcaption { font-size: 16px; color: #374151; min-height: 44px; }
#games-view .games-picture { display: block; width: 100%; max-width: 440px; height: auto; border: 1px solid #d1d5db; }
/* toasts go to the bottom left, over the controls, never over the pictures */
.toast-wrap { top: auto !important; bottom: 12px !important; left: 12px !important; right: auto !important;
  align-items: flex-start !important; width: min(420px, calc(100vw - 24px)) !important; }
/* the drawing pad of a drawn data set (ganapp/web/draw.py) */
#draw-pad .draw-pad { width: min(100%, 360px); aspect-ratio: 1; }
#draw-pad canvas { width: 100%; height: 100%; border: 2px solid #374151; border-radius: 6px; touch-action: none;
  cursor: crosshair; display: block; background: #ffffff; }
#draw-status { font-size: 16px; min-height: 24px; }
#draw-status .draw-error { color: #b91c1c; font-weight: 600; }
#draw-status .draw-save { display: inline-block; margin-top: 2px; white-space: nowrap; }
#draw-help, #draw-metrics-note { font-size: 16px; color: #374151; }
#draw-buttons, #draw-shapes { gap: 6px; flex-wrap: wrap; }
/* the presentation view (?view=present): the pictures and captions only, larger */
html.view-present #controls, html.view-present #below, html.view-present footer,
html.view-present #share-row { display: none !important; }
html.view-present #title h1 { font-size: 34px; }
html.view-present .ganapp-caption .state, html.view-present .ganapp-caption .counter { font-size: 30px; }
html.view-present .ganapp-caption { height: 176px; }
html.view-present .ganapp-caption .cap-top { height: 40px; }
html.view-present .ganapp-caption .what { font-size: 22px; height: 58px; }
html.view-present .ganapp-caption .headline { font-size: 26px; height: 34px; }
html.view-present #look-for { font-size: 22px; min-height: 62px; }
html.view-present #samples, html.view-present #samples-b,
html.view-present #samples img, html.view-present #samples-b img { height: calc(100vh - 340px); }
/* a class (ganapp.web.classes_view): the student's assignment, the teacher's screen (?view=class) */
#class-assignment .class-assignment { font-size: 18px; background: #eef2ff; border-left: 4px solid #1d4ed8;
  padding: 6px 10px; border-radius: 8px; }
#class-assignment p { margin: 2px 0; }
#class-start { font-size: 22px; min-height: 56px; font-weight: 700; }
.class-banner { display: grid; grid-template-columns: auto 1fr; gap: 4px 24px; align-items: center; }
.class-code-label { font-size: 22px; grid-column: 1; }
.class-code { font-size: 76px; font-weight: 800; letter-spacing: 0.12em; line-height: 1; grid-column: 1;
  font-family: "DejaVu Sans Mono", monospace; color: #111827; }
.class-what { font-size: 24px; font-weight: 600; grid-column: 2; grid-row: 1; }
.class-links { font-size: 18px; grid-column: 2; grid-row: 2; overflow-wrap: anywhere; }
.class-state { font-size: 20px; grid-column: 1 / 3; color: #374151; }
.class-table-scroll { overflow-x: auto; max-width: 100%; }
table.class-pooled { border-collapse: collapse; font-size: 20px; font-variant-numeric: tabular-nums; margin: 8px 0; }
table.class-pooled th, table.class-pooled td { border: 1px solid #d1d5db; padding: 4px 10px; text-align: right;
  white-space: nowrap; }
table.class-pooled th { white-space: normal; min-width: 90px; max-width: 190px; vertical-align: bottom; }
table.class-pooled td:first-child { white-space: normal; min-width: 150px; max-width: 260px; }
table.class-pooled th:first-child, table.class-pooled td:first-child,
table.class-pooled th:nth-child(2), table.class-pooled td:nth-child(2) { text-align: left; }
table.class-pooled th { background: #f3f4f6; }
table.class-pooled .class-note { font-size: 18px; font-weight: 400; color: #7c4a03; white-space: normal; }
table.class-pooled tr.reference td { color: #374151; font-style: italic; }
.class-legend { font-size: 18px; color: #374151; }
.class-empty { font-size: 18px; color: #374151; }
.class-dots { max-width: 100%; height: auto; }
.class-grid { display: flex; flex-wrap: wrap; gap: 8px; }
.class-tile { margin: 0; width: 170px; font-size: 18px; line-height: 1.25; }
.class-tile img { width: 150px; height: 150px; image-rendering: pixelated; border: 1px solid #d1d5db; }
.class-tile.state-failed img, .class-tile.state-stopped img { opacity: 0.45; }
#class-read { font-size: 18px; }
#class-pictures { gap: 16px; align-items: flex-start; }
#class-plot { flex: 3 1 0 !important; min-width: 0 !important; }
#class-grid { flex: 2 1 0 !important; min-width: 0 !important; }
html.view-class #main, html.view-class #share-row, html.view-class footer, html.view-class #class-join,
html.view-class #class-setup, html.view-class #class-student-table { display: none !important; }
html.view-class #below > :not(#class-section) { display: none !important; }
html.view-class #header, html.view-class #class-heading { display: none !important; }
/* see inside the game (ganapp.web.inside_view): D's heatmap and G's arrows stacked on the left
   picture with its exact size and fit (the heatmap multiplied in, so it sits behind the dots);
   a switch only sets a class on <body>; the lenses under the stage */
.inside-stack { display: grid !important; gap: 0 !important; }
.inside-stack > * { grid-area: 1 / 1; min-width: 0; }
.inside-layers-host { pointer-events: none; }
.inside-layers-host .inside-layers { display: grid; }
.inside-layers-host img.inside-layer { grid-area: 1 / 1; display: block; margin: 0 auto; width: 100%;
  height: calc(100vh - 290px); min-height: 220px; object-fit: contain; border: 1px solid transparent; }
.inside-layers-host img.inside-heatmap { mix-blend-mode: multiply; }
body.inside-no-heatmap .inside-layers-host img.inside-heatmap,
body.inside-no-arrows .inside-layers-host img.inside-arrows,
body.inside-no-heatmap .inside-scale, body.inside-no-arrows .inside-arrows-note { display: none; }
html.view-present .inside-layers-host img.inside-layer { height: calc(100vh - 340px); }
#inside-section { gap: 6px; }
#inside-heading h2 { margin: 8px 0 0 0; }
#inside-switches { gap: 12px; }
.inside-placeholder, .inside-note, .inside-step { font-size: 18px; color: #374151; margin: 2px 0; }
.inside-run { font-size: 20px; font-weight: 700; margin: 12px 0 2px 0; }
.inside-scale { display: flex; align-items: center; gap: 10px; font-size: 18px; flex-wrap: wrap; }
.inside-scale-bar { display: inline-block; width: 200px; height: 18px; border: 1px solid #9ca3af;
  background: linear-gradient(to right, rgb(196, 160, 230), rgb(255, 255, 255), rgb(150, 215, 150)); }
.inside-scale-range { color: #374151; }
.inside-lenses { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.inside-lens-card { margin: 0; flex: 0 1 420px; min-width: min(260px, 100%); font-size: 17px; line-height: 1.35; }
.inside-lens-card img { display: block; max-width: 100%; height: auto; border: 1px solid #e5e7eb; margin: 4px 0; }
.inside-lens-card p { margin: 4px 0; }
/* A phone: the two compared runs one above the other, each the screen's width. */
@media (max-width: 760px) { #compare-pictures { flex-direction: column; } }
/* There the picture keeps its own size (up to the screen's width), and so do its layers. */
@media (max-width: 760px) { .inside-layers-host img.inside-layer { height: auto; width: auto; max-width: 100%; } }
/* parts a link hides (?hide=advanced,api) */
html.hide-settings #settings, html.hide-advanced #advanced, html.hide-runs #runs-section,
html.hide-details #details, html.hide-compare #compare-section, html.hide-scoreboard #scoreboard-section,
html.hide-load #load-section, html.hide-api #api-section, html.hide-glossary #glossary-section,
html.hide-link #link-button, html.hide-games #games-section { display: none !important; }
/* a phone: the panes stack, each picture full width */
@media (max-width: 760px) {
  .main.app.fillable { padding-left: 8px !important; padding-right: 8px !important; }
  #panes { flex-wrap: wrap; }
  #pane-a, #pane-b { flex: 1 1 100% !important; }
  #samples, #samples-b { height: auto; min-height: 0; }
  #samples img, #samples-b img { width: 100%; height: auto; }
  #title h1 { font-size: 24px; }
  .ganapp-caption, .ganapp-caption .what, .ganapp-caption .headline, .ganapp-caption .notes { height: auto;
    white-space: normal; }
  .ganapp-caption .cap-top { height: auto; white-space: normal; flex-wrap: wrap; }
}
"""

# The CSS goes into <head> as it is: Gradio scopes launch(css=...) to its content box
# (.gradio-container ... .contain), which leaves out the page's padding and the toasts.
HEAD_SCRIPT = """
<script>
(function () {
  var query = new URLSearchParams(window.location.search);
  var root = document.documentElement;
  if (query.get("view") === "present") root.classList.add("view-present");
  if (query.get("view") === "class") root.classList.add("view-class");
  (query.get("hide") || "").split(",").forEach(function (part) {
    if (/^[a-z]{1,20}$/.test(part)) root.classList.add("hide-" + part);
  });
  var lang = query.get("lang") || navigator.language || "en";
  root.setAttribute("lang", /^zh/i.test(lang) ? "zh-Hant-TW" : "en");
  // Gradio 6.31 labels its empty plot and file boxes with aria-label on a plain <div>, which
  // screen readers may ignore (axe: aria-allowed-attr, serious); a role makes the label count.
  new MutationObserver(function () {
    document.querySelectorAll("div.empty[aria-label]:not([role])").forEach(function (e) {
      e.setAttribute("role", "img");
    });
  }).observe(root, {subtree: true, childList: true});
})();
</script>
"""

HEAD = f"<style>{CSS}</style>{HEAD_SCRIPT}"

# The copy button's script: the page's own address goes to the server with the form (it
# builds the link); the link then goes to the clipboard where the browser allows it.
PAGE_URL_JS = "(url, ...rest) => [window.location.href, ...rest]"
# After Start or Start the pair on a phone (the panes stack under the controls, about 800 px
# down): bring the first caption into view when it shows a new run (not when the start was
# refused: the reason is up there, at the controls). On a wider screen the panes are beside
# the controls already, and nothing moves. REMEMBER_RUN_JS runs at the click.
_SHOWN_RUN = "((document.querySelector('#status .ganapp-caption') || {}).dataset || {}).run"
REMEMBER_RUN_JS = f"() => {{ window.ganappRunBefore = {_SHOWN_RUN}; }}"
SHOW_PANES_JS = f"""() => {{ const run = {_SHOWN_RUN};
  if (window.matchMedia('(max-width: 760px)').matches && run && run !== window.ganappRunBefore) {{
    const caption = document.getElementById('status');
    if (caption) caption.scrollIntoView({{block: 'start'}}); }} }}"""
COPY_JS = """(link) => { try { if (link && navigator.clipboard) navigator.clipboard.writeText(link); } catch (e) {} }"""
