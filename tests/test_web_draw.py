"""Draw your own data in the page (issue 10, part 4), in a real chromium against the real
server: strokes with the mouse at 1280x720 and with touch on a phone (390x844), a run
trained on the drawing, the link for the class opened in a fresh browser, and a link
with a damaged drawing. Screenshots go to artifacts_dir."""

import base64
import io
import re
import time
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from conftest import new_page, open_page, owner_token
from ganapp import drawn

pytestmark = pytest.mark.slow
expect = pytest.importorskip("playwright.sync_api").expect

FIRST_PICTURE_S = 60


def _open_settings(page):
    page.locator("#settings").get_by_text(re.compile("Settings|設定")).first.click()


def _choose_drawn(page):
    page.locator("#field-data input").click()
    page.locator("#field-data").get_by_role("option", name="drawn", exact=True).click()
    expect(page.locator("#draw-pad canvas")).to_be_visible()


def _field(page) -> str:
    return page.locator("#field-drawn_points textarea, #field-drawn_points input").first.input_value()


def _mouse_stroke(page, box, points):
    """A stroke through `points` given as fractions of the canvas (0..1, y down)."""
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x0 + points[0][0] * w, y0 + points[0][1] * h)
    page.mouse.down()
    for fx, fy in points[1:]:
        page.mouse.move(x0 + fx * w, y0 + fy * h, steps=4)
    page.mouse.up()


def _wait_for_ink(page, at_least: int, timeout_s: float = 5.0) -> int:
    """The canvas redraws from its field asynchronously (at most 0.5 s late): wait for it."""
    deadline = time.monotonic() + timeout_s
    while (ink := _canvas_ink(page)) < at_least and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    return ink


def _canvas_ink(page) -> int:
    """Pixels of the drawing's blue in the canvas."""
    data_url = page.evaluate("document.querySelector('#draw-pad canvas').toDataURL('image/png')")
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB")).astype(int)
    return int((np.abs(pixels - np.array([0x1F, 0x77, 0xB4])).sum(axis=2) < 40).sum())


def test_draw_train_and_share_a_drawing(server, browser, artifacts_dir):
    page = new_page(browser, 1280, 720)
    try:
        open_page(page, server.url)
        _open_settings(page)
        expect(page.locator("#draw-pad canvas")).to_be_hidden()  # the pad shows for the drawn set only
        _choose_drawn(page)
        expect(page.locator("#draw-status")).to_contain_text("Nothing drawn yet")
        canvas = page.locator("#draw-pad canvas")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        # Three strokes and two clicked dots.
        _mouse_stroke(page, box, [(0.15 + 0.02 * i, 0.2 + 0.012 * i * i / 4) for i in range(20)])
        expect(page.locator("#draw-status")).to_contain_text("1 strokes and dots")
        _mouse_stroke(page, box, [(0.6 + 0.25 * np.cos(t), 0.35 + 0.15 * np.sin(t)) for t in np.linspace(0, 6, 30)])
        _mouse_stroke(page, box, [(0.2 + 0.03 * i, 0.8 - 0.01 * i) for i in range(15)])
        page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + 0.8 * box["height"])
        page.mouse.click(box["x"] + 0.9 * box["width"], box["y"] + 0.65 * box["height"])
        expect(page.locator("#draw-status")).to_contain_text("5 strokes and dots")
        code = _field(page)
        strokes = drawn.decode(code)
        assert [len(s) for s in strokes][3:] == [1, 1] and all(len(s) >= 2 for s in strokes[:3])
        first = strokes[0][0]  # the canvas is the box [-3, 3]^2, y up
        assert abs(first[0] - (0.15 * 6 - 3)) < 0.1 and abs(first[1] - (3 - 0.2 * 6)) < 0.1, first
        assert _wait_for_ink(page, 500) > 500
        page.screenshot(path=str(artifacts_dir / "draw-desktop.png"))
        # Undo takes the last dot back; the canvas follows the field.
        page.locator("#draw-undo").click()
        expect(page.locator("#draw-status")).to_contain_text("4 strokes and dots")
        code = _field(page)
        assert drawn.decode(code) == strokes[:4]
        # "Save as JSON": a file the command line reads back to the same drawing.
        href = page.locator("#draw-save").get_attribute("href")
        assert drawn.from_json(unquote(href.split(",", 1)[1])) == code

        # Train on it: the run's config holds the drawing, its picture shows it.
        page.locator("#field-steps input").fill("300")
        page.locator("#start-button").click()
        expect(page.locator("#samples img")).to_have_attribute("alt", re.compile("at step"),
                                                               timeout=FIRST_PICTURE_S * 1000)
        runs = server.app.jobs.runs(owner_token(page))
        assert runs and runs[-1].config.data == "drawn" and runs[-1].config.drawn_points == code
        expect(page.locator("#samples img")).to_have_attribute("alt", re.compile("at step 300"),
                                                               timeout=FIRST_PICTURE_S * 1000)
        page.locator("#samples").scroll_into_view_if_needed()
        page.locator("#samples").screenshot(path=str(artifacts_dir / "draw-trained-samples.png"))
        page.screenshot(path=str(artifacts_dir / "draw-trained.png"))

        # The link for the class carries the drawing; a fresh browser gets the same one.
        page.locator("#link-button").click()
        link_box = page.locator("#share-link textarea, #share-link input").first
        expect(link_box).to_have_value(re.compile("drawn_points="), timeout=10_000)
        link = link_box.input_value()
        assert "data=drawn" in link and len(link) < 2000
    finally:
        page.context.close()

    fresh = new_page(browser, 1280, 720)
    try:
        runs_before = server.app.jobs.counts()["runs"]
        open_page(fresh, link)
        _open_settings(fresh)
        expect(fresh.locator("#draw-pad canvas")).to_be_visible()
        expect(fresh.locator("#draw-status")).to_contain_text("4 strokes and dots")
        assert _field(fresh) == code
        expect(fresh.locator("#field-steps input")).to_have_value("300")
        fresh.wait_for_function("() => window.ganappDrawRedraw !== undefined")
        fresh.locator("#draw-pad canvas").scroll_into_view_if_needed()
        assert _wait_for_ink(fresh, 500) > 500
        fresh.screenshot(path=str(artifacts_dir / "draw-link-opened.png"))
        assert server.app.jobs.counts()["runs"] == runs_before  # opening a link trains nothing
    finally:
        fresh.context.close()


def test_a_phone_draws_with_touch_and_uses_a_starting_shape(server, browser, artifacts_dir):
    page = new_page(browser, 390, 844, has_touch=True, is_mobile=True, locale="zh-TW")
    try:
        open_page(page, f"{server.url}?data=drawn&lang=zh-TW")
        _open_settings(page)
        expect(page.locator("#draw-pad canvas")).to_be_visible()
        expect(page.locator("#draw-status")).to_contain_text("還沒有畫任何東西")
        page.locator("#draw-shape-ring").click()
        expect(page.locator("#draw-status")).to_contain_text("8 筆")
        assert _field(page) == drawn.shape("ring")
        canvas = page.locator("#draw-pad canvas")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        assert box["width"] >= 250 and box["x"] + box["width"] <= 390
        scroll_before = page.evaluate("window.scrollY")
        # A finger's stroke (real touch events through the DevTools protocol), then a tap.
        cdp = page.context.new_cdp_session(page)
        path = [(box["x"] + box["width"] * (0.2 + 0.6 * t), box["y"] + box["height"] * (0.5 + 0.3 * np.sin(6 * t)))
                for t in np.linspace(0, 1, 25)]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": path[0][0], "y": path[0][1]}]})
        for x, y in path[1:]:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        expect(page.locator("#draw-status")).to_contain_text("9 筆")
        assert page.evaluate("window.scrollY") == scroll_before  # the finger drew; the page did not scroll
        page.touchscreen.tap(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"])
        expect(page.locator("#draw-status")).to_contain_text("10 筆")
        strokes = drawn.decode(_field(page))
        assert len(strokes[8]) >= 3 and len(strokes[9]) == 1
        assert abs(strokes[9][0][0]) < 0.1 and abs(strokes[9][0][1]) < 0.1  # the middle of the box is (0, 0)
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
        page.screenshot(path=str(artifacts_dir / "draw-phone.png"))
        page.locator("#draw-clear").click()
        expect(page.locator("#draw-status")).to_contain_text("還沒有畫任何東西")
        assert _field(page) == ""
    finally:
        page.context.close()


def test_a_link_with_a_damaged_drawing_is_refused_and_the_rest_applies(server, browser, artifacts_dir):
    page = new_page(browser, 1280, 720)
    try:
        runs_before = server.app.jobs.counts()["runs"]
        open_page(page, f"{server.url}?data=drawn&drawn_points=AAAA.AA%3Cb%3E&steps=700&seed=5")
        toast = page.locator(".toast-body").first
        expect(toast).to_contain_text("Your drawing was ignored: the drawing in the link is damaged", timeout=10_000)
        _open_settings(page)
        expect(page.locator("#field-steps input")).to_have_value("700")
        expect(page.locator("#field-seed input")).to_have_value("5")
        expect(page.locator("#draw-status")).to_contain_text("Nothing drawn yet")
        # Start with nothing drawn: the message is at the data set, and nothing starts.
        page.locator("#start-button").click()
        expect(page.locator("#field-data")).to_contain_text("nothing is drawn yet")
        page.screenshot(path=str(artifacts_dir / "draw-broken-link.png"))
        assert server.app.jobs.counts()["runs"] == runs_before
    finally:
        page.context.close()


def test_the_api_starts_a_run_on_a_drawing_and_refuses_a_damaged_one(server):
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    token = client.predict(api_name="/new_token")
    code = drawn.shape("smile")
    started = client.predict(token, {"data": "drawn", "drawn_points": code, "steps": 50, "hidden_dim": 16},
                             "api drawing", api_name="/start_run")
    run = server.app.owned_run(token, started["run_id"])
    assert run.config.drawn_points == code
    for bad, words in [({"data": "drawn", "drawn_points": "AAA"}, "cut short"),
                       ({"data": "drawn"}, "needs a drawing"),
                       ({"data": "ring8", "drawn_points": code}, "only used with data 'drawn'")]:
        with pytest.raises(Exception) as error:
            client.predict(token, bad, "bad", api_name="/start_run")
        assert words in str(error.value), str(error.value)
    client.predict(token, started["run_id"], api_name="/stop_run")
