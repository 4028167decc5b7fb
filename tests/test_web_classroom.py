"""The page as a class meets it, in a real browser (Debian's chromium via Playwright):
the first screen at projector sizes, both languages, a shared link, knobs and a phone.

Screenshots land in artifacts/ (GANAPP_ARTIFACTS_DIR) for people to look at.
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import download_gif, new_page, open_page, owner_token

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.slow

FIRST_PICTURE_S = 90  # the session's first job may wait for the forkserver's imports
FIRST_SCREEN = ("#preset", "#pair-button", "#start-button", "#stop-button", "#status", "#samples", "#status-b",
                "#samples-b")
COLLAPSE_PAIR = "ring8, G without batch norm: minibatch discrimination"


def _boxes(page) -> dict[str, dict]:
    return {selector: page.locator(selector).first.bounding_box() for selector in FIRST_SCREEN}


def _inside(box: dict, width: int, height: int) -> bool:
    return box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= width + 0.5 \
        and box["y"] + box["height"] <= height + 0.5


def _pair_steps(page) -> tuple[int | None, int | None]:
    """The steps of both panes' pictures, read in one go: two reads could straddle a poll's
    update (both runs now draw a picture every 100 steps, a few a second)."""
    alts = page.evaluate("""() => ['#samples', '#samples-b'].map(s => {
        const image = document.querySelector(s + ' img'); return image ? image.getAttribute('alt') : null; })""")
    found = [re.search(r"at step (\d+)", alt or "") for alt in alts]
    return tuple(int(f.group(1)) if f else None for f in found)


@pytest.mark.parametrize("width, height", [(1280, 720), (1920, 1080)])
def test_the_lesson_fits_the_first_screen_and_nothing_jumps(server, browser, artifacts_dir, width, height):
    """Chooser, Start the pair, Start, Stop and both captioned pictures in the first screen,
    without scrolling; after Start the pair nothing there moves by more than 8 px; both
    pictures show the same step; text at projector size; Start within 5 Tab presses."""
    page = new_page(browser, width, height)
    try:
        open_page(page, server.url)
        before = _boxes(page)
        for selector, box in before.items():
            assert box and _inside(box, width, height), (selector, box)
        assert page.evaluate("window.scrollY") == 0
        page.screenshot(path=str(artifacts_dir / f"classroom-{width}x{height}-empty.png"))

        # Type at projector scale: labels, captions, notes and buttons at least 18 px (CSS px).
        sizes = page.evaluate("""() => [...document.querySelectorAll(
            '#controls label span, #controls button, .ganapp-caption .what, #look-for, #preset input')]
            .filter(e => e.offsetParent && e.textContent.trim()).map(e => parseFloat(getComputedStyle(e).fontSize))""")
        assert sizes and min(sizes) >= 18, sizes

        # Start is reachable from the keyboard in at most 5 Tab presses.
        page.evaluate("document.activeElement && document.activeElement.blur()")
        focused = []
        for _ in range(5):
            page.keyboard.press("Tab")
            focused.append(page.evaluate("(document.activeElement.closest('[id]') || {}).id"))
        assert "start-button" in focused, focused

        page.locator("#preset input").click()
        page.locator("#preset").get_by_role("option", name=COLLAPSE_PAIR, exact=True).click()
        page.locator("#pair-button").click()
        expect(page.locator("#samples img")).to_have_attribute("alt", re.compile(r"ring8, G without batch norm: "
                                                                                 r"vanilla .* at step \d+"),
                                                               timeout=FIRST_PICTURE_S * 1000)
        expect(page.locator("#samples-b img")).to_have_attribute("alt", re.compile("minibatch discrimination .* "
                                                                                   r"at step \d+"), timeout=30_000)
        expect(page.locator("#status")).to_contain_text(re.compile(r"step [\d,]+ / 2,000"))
        expect(page.locator("#status-b")).to_contain_text("MBD")
        expect(page.locator("#look-for")).to_contain_text("mode collapse")
        # Both panes show (nearly) the same step: the faster side is held at its picture nearest
        # before the slower side's (jobs draw every sample_every = 100 steps, skipping some when busy).
        steps = []
        for _ in range(8):
            page.wait_for_timeout(400)
            steps.append(_pair_steps(page))
        shown = [(a, b) for a, b in steps if a is not None and b is not None]
        (artifacts_dir / f"pair-steps-{width}x{height}.json").write_text(json.dumps(steps))
        assert shown and all(abs(a - b) <= 100 for a, b in shown), steps
        after = _boxes(page)
        moved = {s: max(abs(after[s][k] - before[s][k]) for k in ("x", "y", "width", "height")) for s in after}
        assert max(moved.values()) <= 8, moved
        page.screenshot(path=str(artifacts_dir / f"classroom-{width}x{height}-pair.png"))
        page.locator("#stop-button").click()
        if width == 1280:  # the pair as a captioned GIF, among the downloads
            gif = download_gif(page, artifacts_dir / "classroom-pair.gif")
            assert gif.read_bytes()[:6] == b"GIF89a"
        owner = owner_token(page)
        for run in server.app.jobs.runs(owner):
            server.app.jobs.wait(owner, run.id, timeout_s=30)
            assert not run.active
    finally:
        page.context.close()


def test_no_serious_accessibility_violations(server, browser, artifacts_dir):
    """axe-core (axe-playwright-python, which ships it: nothing is fetched) finds no serious
    or critical violation on the first screen, in English and in Chinese."""
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    page = new_page(browser, 1280, 720)
    try:
        found = {}
        for query in ("", "?lang=zh-TW"):
            open_page(page, server.url + query)
            page.wait_for_timeout(500)
            results = axe_module.Axe().run(page, options={"runOnly": ["wcag2a", "wcag2aa", "wcag21aa"]})
            bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
            found[query or "en"] = [(v["id"], len(v["nodes"]), v["nodes"][0]["target"], v["nodes"][0]["html"][:200]) for v in bad]
        (artifacts_dir / "axe-violations.json").write_text(json.dumps(found, indent=1))
        assert found == {"en": [], "?lang=zh-TW": []}, found
    finally:
        page.context.close()


def test_a_chinese_browser_gets_the_chinese_page_and_can_switch(server, browser, artifacts_dir):
    page = new_page(browser, 1280, 720, locale="zh-TW")
    try:
        open_page(page, server.url)
        expect(page.locator("#state-text")).to_have_text("還沒有訓練")
        expect(page.locator("#pair-button")).to_contain_text("開始對照")
        expect(page.locator("#start-button")).to_have_text("開始")
        expect(page.locator("#look-for")).to_contain_text("模式崩潰")
        page.locator("#settings").get_by_text("設定").first.click()
        expect(page.locator("#field-minibatch_discrimination")).to_contain_text("小批次判別")
        expect(page.locator("#field-lr_generator")).to_contain_text("生成器的學習率")
        page.screenshot(path=str(artifacts_dir / "classroom-zh-TW.png"))
        # A wrong value: the message at the field, in Chinese.
        page.locator("#field-steps input").fill("0")
        page.locator("#start-button").click()
        expect(page.locator("#field-steps")).to_contain_text("訓練步數必須介於 1 到 20,000 之間（這台伺服器的上限）")
        page.locator("#field-steps").scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts_dir / "classroom-zh-TW-field-error.png"))
        assert server.app.jobs.runs(owner_token(page)) == []
        # Switch to English in the page: every label follows.
        page.locator("#lang-switch").get_by_text("English").click()
        expect(page.locator("#pair-button")).to_contain_text("Start the pair")
        expect(page.locator("#field-lr_generator")).to_contain_text("Learning rate of the generator")
        expect(page.locator("#state-text")).to_have_text("no run yet")
        page.locator("#lang-switch").get_by_text("繁體中文").click()
        expect(page.locator("#stop-button")).to_have_text("停止")
    finally:
        page.context.close()


def test_a_shared_link_fills_the_form_and_starts_nothing(server, browser, artifacts_dir):
    page = new_page(browser, 1280, 720)
    runs_before = server.app.jobs.counts()["runs"]
    try:
        open_page(page, f"{server.url}?preset={COLLAPSE_PAIR.replace(' ', '+').replace(',', '%2C')}"
                        "&steps=3000&label_smoothing=0.8&lang=zh-TW&hide=api")
        expect(page.locator("#pair-button")).to_contain_text("開始對照")
        expect(page.locator("#preset input")).to_have_value(re.compile("小批次判別"))
        expect(page.locator("#preset-note")).to_contain_text("隨機種子 0-4")
        page.locator("#settings").get_by_text("設定").first.click()
        expect(page.locator("#field-steps input")).to_have_value("3000")
        expect(page.locator("#field-minibatch_discrimination input")).to_be_checked()
        page.locator("#advanced").get_by_text("進階設定").first.click()
        expect(page.locator("#field-generator_batch_norm input")).not_to_be_checked()
        expect(page.locator("#field-label_smoothing-on input")).to_be_checked()
        expect(page.locator("#field-label_smoothing input")).to_have_value("0.8")
        expect(page.locator("#field-label_smoothing input")).to_be_enabled()
        expect(page.locator("#api-section")).to_be_hidden()  # hide=api
        assert server.app.jobs.counts()["runs"] == runs_before  # a link never starts training
        # The teacher's copy of the link carries the same settings.
        page.locator("#field-seed input").fill("4")
        page.locator("#link-button").click()
        link = page.locator("#share-link textarea, #share-link input").first
        expect(link).to_have_value(re.compile(r"preset=ring8%2C\+G\+without.*steps=3000"), timeout=10_000)
        value = link.input_value()
        assert "seed=4" in value and "label_smoothing=0.8" in value and "lang=zh-TW" in value and "hide=api" in value
        page.screenshot(path=str(artifacts_dir / "classroom-link.png"))
    finally:
        page.context.close()


def test_a_techniques_knobs_are_disabled_while_it_is_off(server, browser):
    page = new_page(browser, 1280, 720)
    try:
        open_page(page, server.url)
        page.locator("#settings").get_by_text("Settings").first.click()
        kernels = page.locator("#field-minibatch_kernels input")
        alpha = page.locator("#field-label_smoothing input")
        expect(kernels).to_be_disabled()
        expect(alpha).to_be_disabled()
        page.locator("#field-minibatch_discrimination input").check()
        expect(kernels).to_be_enabled()
        page.locator("#field-label_smoothing-on input").check()
        expect(alpha).to_be_enabled()
        page.locator("#field-minibatch_discrimination input").uncheck()
        expect(kernels).to_be_disabled()
    finally:
        page.context.close()


def test_a_phone_shows_the_pictures_full_width_and_stacked(server, browser, artifacts_dir):
    page = new_page(browser, 390, 844)
    try:
        open_page(page, f"{server.url}?ready=ring8-no-batch-norm-vanilla")  # a finished run: nothing to train
        expect(page.locator("#samples img")).to_have_attribute("alt", re.compile("at step 2000"),
                                                               timeout=FIRST_PICTURE_S * 1000)
        expect(page.locator("#samples-b img")).to_have_attribute("alt", re.compile("loss curves"))
        left, right = page.locator("#samples img").bounding_box(), page.locator("#samples-b img").bounding_box()
        assert left["width"] >= 0.8 * 390 and right["width"] >= 0.8 * 390, (left, right)
        assert right["y"] >= left["y"] + left["height"]  # stacked
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 390  # nothing wider than the phone
        # D's heatmap and G's arrows lie exactly on the picture (they were wider, off to the left),
        # and the note on what to look for ends above the heading under it (it ran over it).
        layers = page.locator(".inside-layers-host img.inside-layer")
        expect(layers.first).to_be_visible(timeout=30_000)
        for index in range(layers.count()):
            box = layers.nth(index).bounding_box()
            assert all(abs(box[k] - left[k]) <= 1.0 for k in ("x", "y", "width", "height")), (box, left)
        note, heading = page.locator("#look-for").bounding_box(), page.locator("#inside-heading").bounding_box()
        assert note["y"] + note["height"] <= heading["y"], (note, heading)
        assert page.evaluate("(e => e.scrollHeight <= e.clientHeight + 1)(document.querySelector('#look-for'))")
        page.screenshot(path=str(artifacts_dir / "classroom-phone.png"), full_page=True)
        page.reload()  # the link's ready-made run is opened once, not again on a reload
        expect(page.locator("#samples img")).to_have_attribute("alt", re.compile("at step 2000"), timeout=30_000)
        assert len(server.app.jobs.runs(owner_token(page))) == 1
        # Start the pair: the panes, stacked about 800 px under the button, come into view (a
        # student pressed it and saw nothing happen on the screen).
        # A refused start (no preset chosen) leaves the page where the reason is.
        page.evaluate("window.scrollTo(0, 0)")
        page.locator("#pair-button").click()
        expect(page.get_by_text("Choose a technique's preset first")).to_be_visible(timeout=10_000)
        page.wait_for_timeout(500)
        assert page.evaluate("window.scrollY") == 0
        page.locator("#preset input").click()
        page.locator("#preset").get_by_role("option", name=COLLAPSE_PAIR, exact=True).click()
        page.evaluate("window.scrollTo(0, 0)")
        page.locator("#pair-button").click()
        page.wait_for_function("window.scrollY > 300", timeout=30_000)
        expect(page.locator("#status")).to_be_in_viewport(ratio=0.9)
        expect(page.locator("#status")).to_contain_text("ring8, G without batch norm: vanilla")  # the pair's run
        assert len(server.app.jobs.runs(owner_token(page))) == 3
        page.screenshot(path=str(artifacts_dir / "classroom-phone-pair.png"))
        owner = owner_token(page)
        for run in server.app.jobs.runs(owner):
            if run.active:
                server.app.jobs.stop(owner, run.id)
    finally:
        page.context.close()


def test_the_presentation_view_shows_the_pictures_only(server, browser, artifacts_dir):
    page = new_page(browser, 1280, 720)
    try:
        open_page(page, f"{server.url}?view=present&ready=ring8-vanilla")
        expect(page.locator("#samples img")).to_have_attribute("alt", re.compile("at step 2000"),
                                                               timeout=FIRST_PICTURE_S * 1000)
        expect(page.locator("#controls")).to_be_hidden()
        expect(page.locator("#below")).to_be_hidden()
        picture = page.locator("#samples img").bounding_box()
        assert picture["height"] >= 380 and _inside(picture, 1280, 720), picture
        page.screenshot(path=str(artifacts_dir / "classroom-present.png"))
    finally:
        page.context.close()


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_a_collapse_warning_stays_in_sight_beside_the_pairs_held_note(manager, browser, artifacts_dir, lang):
    """A caption with two notes (the pair's "shown at step N to match the other side" and a
    collapse warning): at 1280x720 the notes are one line, the warning first and whole, the
    held note cut with an ellipsis if it must be; on a phone both wrap, whole. (The notes
    were stacked lines in a one-line box: the warning's tops peeked out below the held note
    in Chinese, and on a phone the held note stopped mid-sentence.)"""
    from ganapp.config import GANConfig
    from ganapp.web import style, views

    owner = manager.issue_token("test")
    run = manager.submit(owner, GANConfig(data="ring8", batch_size=32, hidden_dim=32, steps=220, sample_every=100,
                                          metrics_every=0))
    manager.wait(owner, run.id, timeout_s=60)
    run.metrics_warning = "Mode collapse: only 1 of 8 modes covered"
    caption = views.caption_html(run, lang, shown_step=100)
    warning = views.collapse_warning(run.metrics_warning, lang)
    held = views.tr(lang, "held", shown="100", step=f"{run.step:,}")
    for width, height, name in ((1280, 720, "projector"), (390, 844, "phone")):
        page = new_page(browser, width, height, locale=lang)
        try:
            pane = 420 if width == 1280 else width - 16  # a pane's width on each screen
            page.set_content(f'<html><head><style>{style.CSS}</style></head><body style="margin:8px">'
                             f'<div style="width:{pane}px">{caption}</div></body></html>')
            found = page.evaluate("""() => {
                const box = document.querySelector('.ganapp-caption .notes'), r = box.getBoundingClientRect();
                const spans = [...box.children].map(s => ({text: s.textContent, cls: s.className,
                    right: s.getBoundingClientRect().right, bottom: s.getBoundingClientRect().bottom}));
                return {spans, right: r.right, bottom: r.bottom, scrollH: box.scrollHeight, clientH: box.clientHeight,
                        scrollW: box.scrollWidth, clientW: box.clientWidth,
                        caption: document.querySelector('.ganapp-caption').getBoundingClientRect().bottom};
            }""")
            page.screenshot(path=str(artifacts_dir / f"caption-notes-{name}-{lang}.png"))
        finally:
            page.context.close()
        assert [(s["text"], s["cls"]) for s in found["spans"]] == [(warning, "reason"), (held, "held")], found
        assert found["scrollH"] <= found["clientH"] + 1, found  # no second line hidden below the first
        first = found["spans"][0]
        assert first["right"] <= found["right"] + 0.5 and first["bottom"] <= found["caption"] + 0.5, found
        if name == "phone":  # room for all of it: both notes whole
            assert found["scrollW"] <= found["clientW"] + 1 and found["spans"][1]["bottom"] <= found["caption"] + 0.5
