"""The "Historical averaging in a tiny game" section in a real page and browser: it opens,
a slider redraws the pictures, both languages, and the /game_trajectories endpoint.

Screenshots land in artifacts/ (GANAPP_ARTIFACTS_DIR): games-en.png, games-zh-TW.png,
games-en-moved.png.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from conftest import new_page
from ganapp import games

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.slow


def _open_section(page, url: str, title: re.Pattern) -> None:
    page.goto(url)
    expect(page.locator("#state-text")).to_be_visible(timeout=30_000)
    page.locator("#games-section").get_by_text(title).first.click()
    expect(page.locator("#games-view img.games-picture").first).to_be_visible(timeout=10_000)


def _pictures(page) -> list[str]:
    return [img.get_attribute("src") for img in page.locator("#games-view img.games-picture").all()]


def _shoot(page, path) -> None:
    section = page.locator("#games-section")
    section.scroll_into_view_if_needed()
    section.screenshot(path=str(path))


def _no_serious_accessibility_violations(page, report) -> None:
    """axe-core (shipped with axe-playwright-python: nothing is fetched) on the open section."""
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    results = axe_module.Axe().run(page, context="#games-section",
                                   options={"runOnly": ["wcag2a", "wcag2aa", "wcag21aa"]})
    bad = [(v["id"], v["nodes"][0]["target"], v["nodes"][0]["html"][:200]) for v in results.response["violations"]
           if v["impact"] in ("serious", "critical")]
    report.write_text(json.dumps(bad, indent=1, ensure_ascii=False))
    assert bad == [], bad


def test_a_slider_redraws_the_game_and_the_outcome_follows(server, browser, artifacts_dir):
    page = new_page(browser)
    try:
        _open_section(page, server.url, re.compile("Historical averaging in a tiny game"))
        view = page.locator("#games-view")
        # The defaults: plain gradient descent spirals out, historical averaging arrives.
        expect(view.locator(".games-headline")).to_contain_text("with historical averaging the players reach")
        expect(view.locator(".games-plain")).to_contain_text("moved away")
        expect(view.locator(".games-averaged")).to_contain_text("reached the equilibrium")
        before = _pictures(page)
        assert len(before) == 2 and all(src.startswith("data:image/png;base64,") for src in before)
        _shoot(page, artifacts_dir / "games-en.png")
        _no_serious_accessibility_violations(page, artifacts_dir / "games-axe-en.json")

        # The learning rate slider, moved with the keyboard as a person would: each arrow
        # press is one step of 0.005; the pictures change and the outcome is recomputed.
        slider = page.locator("#games-lr input[type=range]")
        slider.focus()
        started = time.perf_counter()
        slider.press("ArrowRight")  # 0.05 -> 0.055
        page.wait_for_function("(old) => { const img = document.querySelector('#games-view img.games-picture');"
                               " return img && img.src !== old; }", arg=before[0], timeout=10_000)
        print(f"\none key press on the slider -> new pictures in the page: {time.perf_counter() - started:.3f} s")
        for _ in range(9):  # -> 0.1; the latest value wins (trigger_mode always_last)
            slider.press("ArrowRight")
        expect(page.locator("#games-lr input[type=number]")).to_have_value("0.1")
        expect(view.locator(".games-plain")).to_contain_text("after 1,500 steps", timeout=10_000)
        after = _pictures(page)
        assert after[0] != before[0] and after[1] != before[1]
        # What the engine says for lr 0.1 is what the page says.
        expected = games.play("xy", lr=0.1, weight=games.DEFAULT_WEIGHT, steps=games.DEFAULT_STEPS)
        expect(view.locator(".games-averaged")).to_contain_text(f"distance {expected.averaged.final_distance:.3g}",
                                                                 timeout=10_000)

        # The second game, and a setting where historical averaging does not help: said so.
        page.locator("#games-game").get_by_text("(f(x) − 1)(y − 1)").click()
        expect(page.locator("#games-view .games-view")).to_have_attribute("data-game", "fx", timeout=10_000)
        weight = page.locator("#games-weight input[type=number]")
        weight.fill("2")
        weight.press("Enter")
        expect(page.locator("#games-view .games-view")).to_have_attribute("data-averaged", "closer", timeout=10_000)
        expect(view.locator(".games-headline")).to_contain_text("Neither reaches the equilibrium")
        page.mouse.move(0, 0)  # no hover styles in the picture
        _shoot(page, artifacts_dir / "games-en-moved.png")

        # Alternating updates, as the app trains D then G: plain gradient descent circles.
        weight.fill("0.1")
        weight.press("Enter")
        page.locator("#games-order").get_by_text("alternating").click()
        expect(page.locator("#games-view .games-view")).to_have_attribute("data-order", "alternating", timeout=10_000)
        expect(view.locator(".games-plain")).to_contain_text("kept circling", timeout=10_000)
        page.mouse.move(0, 0)
        _shoot(page, artifacts_dir / "games-en-alternating.png")
    finally:
        page.context.close()


@pytest.mark.parametrize("width, height", [(1280, 720), (390, 844)])
def test_the_pictures_numbers_show_at_14_px_or_more(server, browser, artifacts_dir, width, height):
    """The pictures' text is drawn at games.FONT_PX for their natural width; as shown on a
    projector's laptop and on a phone it is at least 14 px."""
    page = new_page(browser, width=width, height=height)
    try:
        _open_section(page, server.url, re.compile("Historical averaging in a tiny game"))
        for picture in page.locator("#games-view img.games-picture").all():
            shown = picture.bounding_box()["width"]
            assert shown * games.FONT_PX / games.SIZE[0] >= 14, (width, shown)
        if width < 500:
            page.locator("#games-view .games-figures").scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts_dir / "games-phone.png"))
    finally:
        page.context.close()


def test_the_section_speaks_chinese(server, browser, artifacts_dir):
    page = new_page(browser, locale="zh-TW")
    try:
        _open_section(page, server.url, re.compile("歷史平均法"))
        view = page.locator("#games-view")
        expect(view.locator(".games-headline")).to_contain_text("加上歷史平均法，兩個玩家到達均衡",
                                                                 timeout=10_000)
        expect(view.locator(".games-plain")).to_contain_text("越離越遠")
        expect(page.locator("#games-lr")).to_contain_text("學習率")
        expect(page.locator("#games-game")).to_contain_text("均衡 (1, 1)")
        expect(page.locator("#games-explain")).to_contain_text("生成器和判別器")
        _shoot(page, artifacts_dir / "games-zh-TW.png")
        _no_serious_accessibility_violations(page, artifacts_dir / "games-axe-zh-TW.json")
        # Switching the page's language relabels the section and keeps the settings.
        page.locator("#lang-switch").get_by_text("English").click()
        expect(view.locator(".games-headline")).to_contain_text("What the class sees", timeout=10_000)
        expect(page.locator("#games-lr")).to_contain_text("Learning rate")
    finally:
        page.context.close()


def test_the_trajectories_endpoint(server):
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    reply = client.predict("fx", 0.05, 0.1, 1500, "uniform", 50, api_name="/game_trajectories")
    assert reply["equilibrium"] == [1.0, 1.0]
    assert reply["plain"]["verdict"] == "diverged" and reply["plain"]["final_distance"] is None
    assert reply["historical_averaging"]["verdict"] == "reached"
    assert reply["historical_averaging"]["final_distance"] < games.NEAR
    assert len(reply["historical_averaging"]["x"]) == 50 and reply["historical_averaging"]["steps_shown"][-1] == 1500
    circling = client.predict("xy", 0.05, 0.1, 1500, "uniform", 10, "alternating", api_name="/game_trajectories")
    assert circling["updates"] == "alternating" and circling["plain"]["verdict"] == "orbiting"
    assert circling["historical_averaging"]["verdict"] == "reached"
    for bad, message in (((("xy", 0.9, 0.1, 100, "uniform", 50)), "learning rate must be a number between"),
                         ((("xy", 0.1, 0.1, 100000, "uniform", 50)), "steps must be a whole number between 1 and"),
                         ((("chess", 0.1, 0.1, 100, "uniform", 50)), "game must be one of xy, fx"),
                         ((("xy", 0.1, 0.1, 100, "uniform", 10**9)), "max_points must be a whole number")):
        with pytest.raises(Exception, match=message):
            client.predict(*bad, api_name="/game_trajectories")


def test_all_tabs_share_one_bounded_redraw_worker(server):
    """Every control's redraw is one event of one concurrency group of 1, the latest value
    winning: a class dragging sliders costs the server at most one thread's time."""
    redraws = [f for f in server.demo.fns.values() if getattr(f.fn, "__name__", "") == "redraw"]
    assert len(redraws) == 6  # game, updates, averaging, learning rate, weight, steps
    for event in redraws:
        assert (event.concurrency_limit, event.concurrency_id, event.trigger_mode, event.api_visibility) == \
            (1, "games-redraw", "always_last", "private")
