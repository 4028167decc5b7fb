"""The live panes' light route (ganapp.web.live): what it answers, to whom, and the page
that uses it (real server on loopback, real browser)."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from conftest import wait_until
from ganapp.config import GANConfig
from ganapp.web import live

TINY = {"data": "ring8", "batch_size": 32, "hidden_dim": 32, "log_every": 5, "sample_every": 20,
        "metrics_every": 0}


@pytest.fixture
def long_run(manager):
    owner = manager.issue_token("test")
    run = manager.submit(owner, GANConfig(**{**TINY, "steps": 20_000}))
    yield owner, run
    manager.stop(owner, run.id)
    manager.wait(owner, run.id, timeout_s=30)


def test_the_route_sends_a_pane_only_when_it_changed_and_only_to_its_owner(server, manager, long_run):
    owner, run = long_run
    route = live.LiveRoute(manager, server.app)
    assert live.LiveRoute(manager).app is not None  # build_demo registered a page for this job server
    wait_until(lambda: run.picture_count > 0, 90, "the run's first picture")
    first = route.answer({"token": owner, "run": run.id, "lang": "zh-TW"})
    assert set(first["set"]) >= {"status", "samples", "samples-b"}
    assert f'data-run="{run.id}"' in first["set"]["status"] and 'data-lang="zh-TW"' in first["set"]["status"]
    assert "<img" in first["set"]["samples"] and first["active"] and first["interval"] > 0
    assert set(first["stamps"]) == {"metrics", "rare"} and len(first["seen"]) <= live.MAX_SEEN
    # Handed back what it has, the page is sent the picture again only when a new one exists.
    seen_count = run.picture_count
    again = route.answer({"token": owner, "run": run.id, "lang": "zh-TW", "seen": first["seen"]})
    if run.picture_count == seen_count:
        assert "samples" not in again["set"]
    wait_until(lambda: run.picture_count > seen_count + 1, 60, "a newer picture")
    newer = route.answer({"token": owner, "run": run.id, "lang": "zh-TW", "seen": again["seen"]})
    assert "samples" in newer["set"] and newer["set"]["samples"] != first["set"]["samples"]
    # A forged or garbled `seen` costs a resend, nothing else.
    for seen in ("[not json", "x" * (live.MAX_SEEN + 1), json.dumps({"a": [1, 2]}), 42):
        assert "samples" in route.answer({"token": owner, "run": run.id, "lang": "en", "seen": seen})["set"]

    # Another visitor naming this run gets nothing of it: runs are looked up among their own.
    stranger = manager.issue_token("test")
    theirs = route.answer({"token": stranger, "run": run.id, "partner": run.id, "lang": "en"})
    assert run.id not in json.dumps(theirs) and "<img" not in json.dumps(theirs)
    assert not theirs["active"]


def test_a_class_asks_for_the_rarer_views_within_one_budget_whatever_its_size(server, manager, long_run):
    """Each page waits open pages / RARE_PER_S between two redraws of its rarer views (the
    costly Gradio events), so 30 or 100 pages cost the server what a few do."""
    owner, run = long_run
    route = live.LiveRoute(manager, server.app)
    assert live.rare_gap(1) == live.RARE_MIN_GAP_S and live.rare_gap(30) == round(30 / live.RARE_PER_S, 1)
    assert live.rare_gap(100) == round(100 / live.RARE_PER_S, 1)
    wait_until(lambda: run.picture_count > 0, 90, "the run's first picture")
    alone = route.answer({"token": owner, "run": run.id, "lang": "en", "page": "p0"})
    for i in range(60):  # a class opens its pages
        route.answer({"token": owner, "run": run.id, "lang": "en", "page": f"pupil-{i}"})
    crowded = route.answer({"token": owner, "run": run.id, "lang": "en", "page": "p0"})
    pages = server.app.open_pages()
    assert pages >= 61
    assert crowded["rare_gap"] == live.rare_gap(pages) > alone["rare_gap"]
    assert crowded["rare_every"] == max(live.RARE_EVERY_S, crowded["rare_gap"])
    assert pages / crowded["rare_gap"] <= live.RARE_PER_S + 0.1  # the whole class's redraws per second


def test_the_stamps_event_sends_the_stamps_and_nothing_else(server, manager, long_run):
    owner, run = long_run
    handlers, ui = server.app.handlers, server.app.ui
    wait_until(lambda: run.picture_count > 0, 90, "the run's first picture")
    out = handlers.refresh_stamps(owner, run.id, None, None, None, "en")
    assert set(out) == {ui.metrics_stamp, ui.compare_stamp, ui.rare_stamp}
    assert out == handlers.current_stamps(owner, manager.runs(owner), run, None, None, None, "en")
    refused = handlers.refresh_stamps("not-a-token", run.id, None, None, None, "en")  # gr.skip(): nothing changes
    assert set(refused).isdisjoint(out) and run.id not in str(refused)


def test_the_route_over_http_refuses_bad_requests_plainly(server, manager, long_run):
    owner, run = long_run
    url = server.url.rstrip("/") + live.PATH
    with httpx.Client(timeout=30) as client:
        assert client.post(url, content=b"x" * (live.MAX_BODY + 1)).status_code == 413
        assert client.post(url, content=b"{not json").status_code == 400
        assert client.post(url, json=[1, 2]).status_code == 400
        assert client.post(url, json={"token": "made-up" * 4, "run": run.id}).status_code == 403
        made_up = manager.issue_token("test")[:-3] + "abc"  # the right form, a wrong signature
        assert client.post(url, json={"token": made_up, "run": run.id}).status_code == 403
        good = client.post(url, json={"token": owner, "run": run.id, "lang": "en"})
        assert good.status_code == 200 and good.json()["set"]["status"].count(run.id) >= 1
        assert client.get(url).status_code == 405  # POST only


def _step(page) -> int:
    text = page.locator("#step-count").inner_text() if page.locator("#step-count").count() else "0"
    return int(text.replace(",", "") or 0)


@pytest.mark.slow
@pytest.mark.parametrize("route_blocked", [False, True])
def test_the_page_updates_live_through_the_route_or_without_it(server, manager, browser, artifacts_dir, route_blocked,
                                                               monkeypatch):
    """The page's script asks the light route twice a second and calls the Gradio poll only
    when a rarer view has news; when the route cannot be reached (a proxy that only lets
    Gradio's paths through), the page falls back to the Gradio poll and still updates."""
    monkeypatch.setattr(manager.limits, "max_running", 8)  # runs other tests left going do not hold ours back
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    live_calls, gradio_calls = [], []
    dependencies = server.demo.config["dependencies"]
    components = {c["id"]: c.get("props", {}).get("elem_id") for c in server.demo.config["components"]}
    fn_of = {components.get(t[0]): d["id"] for d in dependencies for t in d["targets"] if t[1] == "click"}
    full_poll = fn_of["live-refresh"]

    def count(request):
        if request.url.endswith(live.PATH):
            live_calls.append(request.url)
        elif "/gradio_api/" in request.url and request.method == "POST":
            body = request.post_data or ""
            gradio_calls.append("full poll" if f'"fn_index":{full_poll},' in body.replace(" ", "") else request.url)

    page.on("request", count)
    if route_blocked:
        page.route(re.compile(re.escape(live.PATH) + "$"), lambda r: r.abort())
    try:
        page.goto(server.url)
        page.wait_for_selector("#start-button", timeout=60_000)
        page.locator("#settings").click()  # the settings fold open; steps large enough to watch
        page.locator("#field-steps input").first.fill("20000")
        page.locator("#start-button").click()
        wait_until(lambda: _step(page) > 0, 120, "the run to show its first steps")
        gradio_before, live_before = len(gradio_calls), len(live_calls)
        seen_steps = set()
        for _ in range(10):
            page.wait_for_timeout(500)
            seen_steps.add(_step(page))
        assert len(seen_steps) >= 3, seen_steps  # the caption kept moving
        expect_img = page.locator("#samples img")
        assert expect_img.count() == 1 and "at step" in expect_img.get_attribute("alt")
        gradio_during = len(gradio_calls) - gradio_before
        if route_blocked:
            assert gradio_during >= 4  # the Gradio poll took over
        else:
            assert len(live_calls) - live_before >= 6
            assert gradio_during <= 4, gradio_calls[gradio_before:]  # rare redraws only, not 10 polls
            # ... and those ask for the stamps alone: the live panes came through the route.
            assert "full poll" not in gradio_calls[gradio_before:], gradio_calls[gradio_before:]
        page.screenshot(path=str(artifacts_dir / f"live-{'fallback' if route_blocked else 'route'}.png"))
        page.locator("#stop-button").click()
    finally:
        page.close()


def test_the_served_page_answers_its_route_even_when_another_page_is_built(server, manager, long_run):
    """A second page built over the same job server (a script, another test) does not take
    over the served page's route: the served page's kept pictures and watch list answer."""
    import app

    owner, run = long_run
    other = app.build_demo(manager)
    try:
        assert live.LiveRoute(manager).app is other.ganapp  # the fallback: the page built last
        with httpx.Client(timeout=30) as client:
            reply = client.post(server.url.rstrip("/") + live.PATH,
                                json={"token": owner, "run": run.id, "lang": "en", "page": "probe-7"})
        assert reply.status_code == 200
        assert "live:probe-7" in server.app._pages and "live:probe-7" not in other.ganapp._pages
    finally:
        other.close()
