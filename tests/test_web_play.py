"""Play, pause, one step from the page, in a real browser (Debian's chromium via Playwright).

A visitor starts a run, pauses it, takes a whole step, a D step and a G step, and sees the
step number and the picture move by exactly one step each time (none for D's half), then
resumes. Screenshots land in artifacts/ (GANAPP_ARTIFACTS_DIR) for people to look at.
"""

from __future__ import annotations

import re
import time

import pytest

from conftest import new_page, open_page, owner_token, wait_until

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.slow

FIRST_PICTURE_S = 90  # the session's first job may wait for the forkserver's imports


def _step_shown(page) -> int:
    return int(page.locator("#step-count").inner_text().replace(",", ""))


def _picture_step(page) -> int | None:
    img = page.locator("#samples img")
    alt = img.first.get_attribute("alt") if img.count() else None
    found = re.search(r"at step ([\d,]+)", alt or "")
    return int(found.group(1).replace(",", "")) if found else None


def _shows(page, step: int, timeout_s: float = 30) -> None:
    """The caption's step and the picture's step are both `step`."""
    wait_until(lambda: _step_shown(page) == step and _picture_step(page) == step, timeout_s,
               f"the page to show step {step} (caption {_step_shown(page)}, picture {_picture_step(page)})",
               interval_s=0.1)


def test_pause_step_and_resume_from_the_page(server, browser, artifacts_dir):
    page = new_page(browser)
    try:
        open_page(page, server.url)
        for selector in ("#play-pause", "#play-step-d", "#play-step-g", "#play-step", "#play-speed"):
            box = page.locator(selector).first.bounding_box()
            assert box and box["y"] + box["height"] <= 720, (selector, box)  # in the first screen

        page.locator("#play-step").click()  # nothing runs yet: the page says so (no run has ended either)
        expect(page.get_by_text("Nothing to pause or step: start a run first.", exact=True)).to_be_visible(
            timeout=10_000)

        page.locator("#start-button").click()
        expect(page.locator("#samples img")).to_have_attribute("alt", re.compile(r"at step \d+"),
                                                               timeout=FIRST_PICTURE_S * 1000)
        page.locator("#play-step").click()  # a step while training is refused, in the visitor's words
        expect(page.get_by_text(re.compile("first: single steps are taken while a run is paused"))).to_be_visible(
            timeout=10_000)

        page.locator("#play-pause").click()
        expect(page.locator("#play-status")).to_contain_text(re.compile(r"paused at step [\d,]+"), timeout=20_000)
        expect(page.locator("#play-pause")).to_have_text("Resume", timeout=10_000)
        expect(page.locator("#state-text")).to_have_text("paused", timeout=10_000)  # the caption says so too
        owner = owner_token(page)
        run = next(r for r in server.app.jobs.runs(owner) if r.active)
        paused_at = run.step
        _shows(page, paused_at)  # the job draws the step it paused at
        page.evaluate("window.scrollTo(0, 0)")  # (the token was read from the API section, further down)
        page.screenshot(path=str(artifacts_dir / "play-paused.png"))

        page.locator("#play-step").click()  # one whole step: caption and picture move by one
        _shows(page, paused_at + 1)
        assert run.step == paused_at + 1 and run.history[-1]["step"] == paused_at + 1
        page.screenshot(path=str(artifacts_dir / "play-stepped.png"))

        pictures = run.picture_count
        page.locator("#play-step-d").click()  # D's half: a new picture, the same step number
        expect(page.locator("#play-status")).to_contain_text("D moved; G's turn", timeout=20_000)
        assert run.picture_count > pictures and run.step == paused_at + 1
        assert _step_shown(page) == paused_at + 1
        page.screenshot(path=str(artifacts_dir / "play-d-step.png"))

        page.locator("#play-step-g").click()  # G's half completes the step
        _shows(page, paused_at + 2)
        expect(page.locator("#play-status")).not_to_contain_text("G's turn", timeout=10_000)
        page.screenshot(path=str(artifacts_dir / "play-g-step.png"))

        page.locator("#play-pause").click()  # resume: training goes on by itself
        expect(page.locator("#play-pause")).to_have_text("Pause", timeout=10_000)
        wait_until(lambda: _step_shown(page) > paused_at + 2 or run.state == "finished", 60,
                   "training to go on after Resume", interval_s=0.2)
        expect(page.locator("#state-text")).not_to_have_text("paused", timeout=10_000)
        page.screenshot(path=str(artifacts_dir / "play-resumed.png"))
        page.locator("#stop-button").click()
        server.app.jobs.wait(owner, run.id, timeout_s=30)
        assert not run.active
    finally:
        page.context.close()


def test_the_play_row_in_chinese(server, browser, artifacts_dir):
    page = new_page(browser, locale="zh-TW")
    try:
        page.goto(server.url + "?lang=zh-TW")
        expect(page.locator("#play-step-d")).to_have_text("判別器一步", timeout=30_000)
        expect(page.locator("#play-step-g")).to_have_text("生成器一步")
        expect(page.locator("#play-pause")).to_have_text("暫停")
        page.wait_for_function("() => !!localStorage.getItem('ganapp-owner-token')", timeout=30_000)
        page.locator("#play-step").click()
        expect(page.get_by_text("沒有可以暫停或單步執行的訓練")).to_be_visible(timeout=10_000)
        page.screenshot(path=str(artifacts_dir / "play-zh-TW.png"))
    finally:
        page.context.close()


_FITS = """(texts) => {
    const input = document.querySelector('#play-speed input');
    const style = getComputedStyle(input);
    const context = document.createElement('canvas').getContext('2d');
    context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return texts.map(text => [text, Math.ceil(context.measureText(text).width), Math.floor(room)]);
}"""


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_each_speed_choice_shows_whole_in_its_box_at_1280(server, browser, lang):
    from ganapp.web.play import speed_choices

    page = new_page(browser, locale=lang if lang != "en" else "en-US")
    try:
        page.goto(server.url + f"?lang={lang}")
        expect(page.locator("#play-step-d")).to_be_visible(timeout=30_000)
        page.wait_for_function("() => document.fonts.ready.then(() => true)")
        texts = [label for label, _ in speed_choices(lang)]
        widths = page.evaluate(_FITS, texts)
        assert len(widths) == len(texts) == 4
        cut = [(text, width, room) for text, width, room in widths if width > room]
        assert not cut, f"speed choices wider than their box (text, px, room): {cut}"
    finally:
        page.context.close()


def test_the_play_endpoints_over_http(server):
    """/pause_run, /step_run, /set_speed, /resume_run as a script calls them; another token
    cannot pause your run; a step while training is refused with the reason."""
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    token, stranger = client.predict(api_name="/new_token"), client.predict(api_name="/new_token")
    tiny = dict(data="ring8", batch_size=32, hidden_dim=32, log_every=5, sample_every=20, metrics_every=0,
                steps=20_000)
    run_id = client.predict(token, tiny, "api play", api_name="/start_run")["run_id"]
    # Usually before the job starts (then it starts paused, at step 0; test_pause checks that
    # with a queued run), but on a quick machine the job may have trained a few steps by the
    # time this second request arrives: then it pauses after its current step.
    paused = client.predict(token, run_id, api_name="/pause_run")
    assert paused["paused"] is True

    def poll():
        return client.predict(token, run_id, api_name="/poll_run")

    wait_until(lambda: (p := poll())["state"] == "running" and p["samples_count"] > 0, FIRST_PICTURE_S,
               "the run to start")

    def settled():  # "paused" says what was asked; the job stops after its current step
        before = poll()["step"]
        time.sleep(0.3)
        return poll()["step"] == before and before + 1  # (+ 1: step 0 is an answer too)

    base = wait_until(settled, 20, "the run to stay at one step, paused") - 1
    client.predict(token, run_id, "step_d", api_name="/step_run")
    wait_until(lambda: poll()["half_step"], 20, "D's half step")
    client.predict(token, run_id, "step_g", api_name="/step_run")
    client.predict(token, run_id, api_name="/step_run")  # kind "step" by default
    # The job sends a hand step's log row, then its picture: a poll between the two sees the
    # row already and the picture of the step before, so both are waited for.
    after = wait_until(lambda: (p := poll())["step"] == base + 2 and p["history"]
                       and p["history"][-1]["step"] == base + 2 and p["samples_step"] == base + 2 and p, 20,
                       "two whole steps by hand, with the picture of the second")
    assert after["half_step"] is False
    with pytest.raises(Exception, match="you have no run"):
        client.predict(stranger, run_id, api_name="/pause_run")
    slow = client.predict(token, run_id, 5, api_name="/set_speed")
    assert slow["speed"] == 5.0
    resumed = client.predict(token, run_id, api_name="/resume_run")
    assert resumed["paused"] is False
    wait_until(lambda: poll()["step"] >= base + 4, 30, "slow motion to train on")
    with pytest.raises(Exception, match="pause it first"):
        client.predict(token, run_id, api_name="/step_run")
    client.predict(token, run_id, api_name="/stop_run")
