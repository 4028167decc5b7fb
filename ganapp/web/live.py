"""The live panes over a light route of our own, beside Gradio's events.

Why: a Gradio event costs the server 8-10 ms of CPU whatever it carries (its per-event
handling: sessions, pre- and post-processing, JSON over every output; ganapp's own
handler takes about 0.25 ms), and a class of 30 pages polling twice a second took 9-17%
of the jobs' speed. The panes that change twice a second (the two captions, the two
pictures, the line under them) now come from `POST /ganapp/live`: a plain Starlette
route that checks the visitor's token, runs the same `Handlers.live_view` the Gradio poll
runs, and answers with only the panes that changed, as HTML the server wrote and escaped
(the same strings Gradio would have sent). A small script in the page (LIVE_JS) asks it
at the interval the server says, puts the answers in place, and clicks a hidden button
(`#stamps-refresh`: a Gradio event that sends the rarer views' stamps alone, whose change
events then redraw those views) only when a rarer view has news: the metrics, the runs
list, the files, the comparison of a running pair. Those redraws are the costly part
(10-25 ms each), so the whole class shares one budget of them (RARE_PER_S). When the
route cannot be reached, the script clicks `#live-refresh` instead: the old poll, with the
live panes, as a Gradio event.

What the route trusts from the browser: nothing but the token (checked like every other
request, and the runs are looked up among that token's own) and which of its runs the
page shows (read from the captions the server wrote: data-run, data-lang). What the page
already has (`seen`) comes back from the browser and only decides what is resent; a
forged one costs its sender a resend, nobody else anything. Requests are bounded in size.
"""

from __future__ import annotations

import json
import time
import weakref
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ganapp.jobs import JobError

from .text import language

PATH = "/ganapp/live"
MAX_BODY = 4096  # bytes: a token, two run ids, a language and the small `seen` record
MAX_SEEN = 2048  # characters of the `seen` record the browser hands back
RARE_EVERY_S = 10.0  # the comparison of running runs, at least this often (a Gradio event: 7-10 ms each)
# The rarer views (metric plots, runs list, files, comparison) are redrawn by Gradio events,
# 10-25 ms of the server's CPU each with their redraws, against about 1 ms for a question to
# the route. While runs train, all open pages together ask for them at most this often, so
# a class costs the jobs the same whatever its size: each page waits open pages / RARE_PER_S
# seconds between two (30 s with 30 pages; at 1.5 a second 30 pages cost the server about
# 0.08 of a core, at 1.0 about 0.06: README, "Measured figures (app)"). A stamp that says a run changed state (ended,
# failed, a new run in the list) is news that waits at most RARE_MIN_GAP_S.
RARE_PER_S = 1.0
RARE_MIN_GAP_S = 1.5
STAMP_KEYS = ("metrics", "rare")


# The page built over each job server (build_demo registers it), for the route that
# launch_options makes for that job server: the two are made apart, app.py and the tests
# call build_demo(manager) and then demo.launch(**launch_options(manager)).
PAGES: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def register(manager, app) -> None:
    PAGES[manager] = app


class LiveRoute:
    """The route's handler over the page built for `manager` (GanApp with its handlers)."""

    def __init__(self, manager, page=None) -> None:
        self.manager = weakref.ref(manager)
        self.page = page  # the served page's GanApp; None: the page last built over `manager`
        self.requests = 0
        self.seconds = 0.0  # time spent answering, for benchmarks

    @property
    def app(self):
        if self.page is not None:
            return self.page
        manager = self.manager()
        return PAGES.get(manager) if manager is not None else None

    def route(self) -> Route:
        return Route(PATH, self.endpoint, methods=["POST"])

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "request too large"}, status_code=413)
        try:
            asked = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            return JSONResponse({"error": "not JSON"}, status_code=400)
        if not isinstance(asked, dict) or self.app is None:
            return JSONResponse({"error": "bad request"}, status_code=400)
        started = time.perf_counter()
        try:
            reply = self.answer(asked, page=request.client.host if request.client else "")
        except JobError:
            return JSONResponse({"error": "unknown visitor token: reload the page"}, status_code=403)
        finally:
            self.requests += 1
            self.seconds += time.perf_counter() - started
        return JSONResponse(reply)

    def answer(self, asked: dict[str, Any], page: str = "") -> dict[str, Any]:
        """The panes that changed since `asked["seen"]`, by element id, and what the page
        needs to know to ask again (interval, whether anything is active, the stamps)."""
        app, handlers = self.app, self.app.handlers
        token = asked.get("token")
        app.jobs.owner_key(token)  # JobError for a token this server did not issue
        lang = language(asked.get("lang"))
        runs = app.jobs.runs(token)
        run = app.owned_run(token, _text(asked.get("run")))
        partner = handlers.partner_of(token, run, _text(asked.get("partner"))) if run else None
        app.note_page(f"live:{_text(asked.get('page')) or page}")
        last = _from_json(asked.get("seen"))
        out: dict = {}
        handlers.live_view(run, partner, runs, last if isinstance(last, dict) else {}, out, lang)
        ui = app.ui
        panes: dict[str, str] = {}
        for component, value in out.items():
            elem_id = getattr(component, "elem_id", None)
            if component is ui.live_seen or component is ui.timer or not elem_id:
                continue
            if isinstance(value, str):
                panes[elem_id] = value
        seen = out.get(ui.live_seen, last)
        interval, active = app.refresh_interval(runs), any(r.active for r in runs)
        stamps = handlers.current_stamps(token, runs, run, None, None, None, lang)
        gap = rare_gap(app.open_pages())
        return {
            "set": panes,
            "seen": _to_json(seen),
            "interval": interval,
            "active": active,
            "stamps": {key: stamps[getattr(ui, f"{key}_stamp")] for key in STAMP_KEYS},
            "rare_every": max(RARE_EVERY_S, gap) if active else 0,
            "rare_gap": gap,
        }


def rare_gap(pages: int) -> float:
    """Seconds a page waits between two redraws of its rarer views while runs train."""
    return round(max(RARE_MIN_GAP_S, pages / RARE_PER_S), 1)


def _text(value: Any) -> str | None:
    return value[:64] if isinstance(value, str) and value else None


def _to_json(value: Any) -> str:
    """`seen` for the browser: JSON text (tuples become lists; _from_json turns them back)."""
    return json.dumps(value, separators=(",", ":"), default=str)


def _from_json(text: Any) -> Any:
    if not isinstance(text, str) or len(text) > MAX_SEEN:
        return {}
    try:
        return _tuples(json.loads(text))
    except ValueError:
        return {}


def _tuples(value: Any) -> Any:
    """Lists back to tuples, as live_view compares keys it made as tuples."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


# The page's side. It reads the token from the API section's box (#owner-token) and the
# runs shown from the captions (data-run, data-lang, written by the server), asks the
# route, puts each pane's HTML into its gr.HTML block, and clicks the hidden Gradio poll
# (#live-refresh) when a stamp moved, or every rare_every seconds while something runs.
LIVE_JS = """
<script>
(() => {
  if (window.__ganappLive) return;
  window.__ganappLive = true;
  const base = window.location.pathname.replace(/[^/]*$/, '');
  const page = Math.random().toString(36).slice(2);
  let seen = null, stamps = null, lastRare = Date.now(), shownKey = '';
  const box = (id) => {
    const el = document.getElementById(id);
    if (!el) return null;
    return el.querySelector('.prose') || el.querySelector('[class*="html-container"]') || el;
  };
  const token = () => {
    const el = document.querySelector('#live-token textarea, #live-token input');
    return el && el.value ? el.value : '';
  };
  // What the page's rarer views were last drawn for: the hidden stamp boxes the Gradio
  // poll sets (their change events redraw those views).
  const stampOf = (key) => {
    const el = document.querySelector('#' + key + '-stamp textarea, #' + key + '-stamp input');
    return el ? el.value : null;
  };
  const click = (id) => {
    const button = document.querySelector('#' + id + ' button') || document.querySelector('button#' + id);
    if (button) button.click();
    return !!button;
  };
  // The whole Gradio poll (live panes too): when the route cannot be reached.
  const refresh = () => { click('live-refresh'); lastRare = Date.now(); };
  // The rarer views' stamps only (their change events redraw them): while the route answers.
  const refreshStamps = () => { if (!click('stamps-refresh')) click('live-refresh'); lastRare = Date.now(); };
  let spread = false;
  async function ask() {
    let wait = 2000;
    try {
      const a = document.querySelector('#status [data-lang]');
      const b = document.querySelector('#status-b [data-run]');
      const t = token();
      if (t && a && a.dataset.run) {
        const key = a.dataset.run + '|' + (b ? b.dataset.run : '') + '|' + a.dataset.lang;
        if (key !== shownKey) { seen = null; shownKey = key; }
        const reply = await fetch(base + 'ganapp/live', {
          method: 'POST', headers: {'Content-Type': 'application/json'},
          body: JSON.stringify({token: t, run: a.dataset.run, partner: b ? b.dataset.run : '',
                                lang: a.dataset.lang, seen: seen, page: page})});
        if (reply.ok) {
          const d = await reply.json();
          for (const [id, html] of Object.entries(d.set || {})) {
            const target = box(id);
            if (target && target.innerHTML !== html) target.innerHTML = html;
          }
          seen = d.seen;
          // A stamp the page's views were not drawn for (or, without the boxes, one that moved).
          const behind = (k) => {
            const v = (d.stamps || {})[k];
            if (v === undefined) return false;
            const drawn = stampOf(k);
            return drawn !== null ? drawn !== v : (stamps !== null && stamps[k] !== v);
          };
          const urgent = behind('rare'), metrics = behind('metrics');
          stamps = d.stamps;
          if (!spread && d.rare_every) {  // pages opened together do not redraw together
            lastRare = Date.now() - Math.random() * d.rare_every * 1000;
            spread = true;
          }
          const since = Date.now() - lastRare;
          if ((urgent && since > 1500) || (metrics && since > (d.rare_gap || 1.5) * 1000) ||
              (d.rare_every && since > d.rare_every * 1000)) refreshStamps();
          wait = d.active ? Math.max(250, d.interval * 1000) : 2000;
        } else if (reply.status === 403) {
          wait = 10000;
        } else {
          wait = 1000; refresh();
        }
      }
    } catch (e) { wait = 1000; refresh(); }  // no route (a proxy?): the Gradio poll instead
    setTimeout(ask, wait);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', () => setTimeout(ask, 500));
  else setTimeout(ask, 500);
})();
</script>
"""
