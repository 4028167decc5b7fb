"""The time-lapse in a real browser: "Compare two runs" with the step slider moved replays
each side's sample picture with D's heatmap, G's arrows and the lenses of that picture's
step; the page's switches hide the replayed layers too; the GIF is made with the views;
a lens preset opened from the menu switches its views on.

Screenshots land in artifacts/ (GANAPP_ARTIFACTS_DIR) as timelapse-*.png, for people to look at.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from conftest import download_gif
from ganapp.config import GANConfig
from ganapp.presets import PRESET_VIEWS

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.slow

PAIR = {"data": "ring8", "batch_size": 32, "hidden_dim": 32, "log_every": 10, "sample_every": 50,
        "metrics_every": 0, "steps": 600, "generator_batch_norm": False, "lr_generator": 3e-4,
        "lr_discriminator": 3e-4}


def _open(browser, url: str, width: int = 1280, height: int = 1000):
    page = browser.new_context(viewport={"width": width, "height": height}, locale="en-US").new_page()
    page.goto(url)
    expect(page.locator("#state-text")).to_be_visible(timeout=30_000)
    page.wait_for_function("() => !!localStorage.getItem('ganapp-owner-token')", timeout=30_000)
    box = page.locator("#owner-token textarea")
    if not box.is_visible():
        page.locator("#api-section").get_by_text(re.compile("Scripting|API")).first.click()
    expect(box).to_have_value(re.compile(r"^[\w-]{24}\.[\w-]{22}$"), timeout=10_000)
    return page, box.input_value()


def _pane_step(page, side: str) -> int | None:
    found = page.locator(f"#compare-picture-{side} .timelapse-pane").first
    if found.count() == 0:
        return None
    value = found.get_attribute("data-step")
    return int(value) if value else None


def _slide_to(page, step: int) -> int:
    """Type a step into the slider's box and leave it (Gradio's slider sends `release` on
    blur, as it does when a drag ends) and return the step the slider then says."""
    box = page.locator("#replay input[type=number]")
    box.fill(str(step))
    box.blur()
    page.wait_for_timeout(300)
    return int(float(page.locator("#replay input[type=range]").input_value()))


def _finished_pair(app, token: str) -> list:
    """The collapse-and-cure pair, trained to the end with every picture kept, as a page
    that shows the pair keeps them (it re-watches the runs at each poll)."""
    runs = [app.jobs.submit(token, GANConfig(**PAIR, seed=0), name="vanilla, collapsing", every_picture=True),
            app.jobs.submit(token, GANConfig(**PAIR, seed=0, minibatch_discrimination=True),
                            name="with minibatch discrimination", every_picture=True)]
    for run in runs:
        while run.active:
            app.watch(*runs)
            app.jobs.wait(token, run.id, timeout_s=1)
        assert run.state == "finished", run.reason
    return runs


def _show_side_by_side(page, runs) -> None:
    page.reload()
    expect(page.locator("#state-text")).to_have_text("finished", timeout=30_000)
    for selector, run in (("#compare-a", runs[0]), ("#compare-b", runs[1])):
        page.locator(f"{selector} input").click()
        page.locator(selector).get_by_role("option", name=f"{run.name} [{run.id}]").click()
    page.locator("#compare-button").click()


def test_the_slider_replays_the_views_of_each_pictures_step(server, browser, artifacts_dir):
    page, token = _open(browser, server.url)
    app = server.app
    try:
        runs = _finished_pair(app, token)
        kept = {run.id: [step for step, _ in app.kept_pictures(run)] for run in runs}
        _show_side_by_side(page, runs)
        expect(page.locator("#compare-picture-a img.ganapp-picture")).to_have_attribute(
            "alt", re.compile("at step 600"), timeout=20_000)  # the latest pictures
        # "Show side by side" already shows them as the slider's right end does: with the
        # views of their steps, before the slider is touched.
        expect(page.locator("#compare-picture-a .timelapse-pane")).to_have_attribute("data-step", "600")
        expect(page.locator("#compare-picture-b #lens-mbd-replay-b")).to_be_visible()
        # The slider at the end: each side's latest picture with its views (the layers stacked on
        # it, the lenses under it).
        assert _slide_to(page, 600) == 600
        expect(page.locator("#compare-picture-a .timelapse-pane")).to_have_attribute("data-step", "600",
                                                                                   timeout=20_000)
        expect(page.locator("#compare-picture-b #lens-mbd-replay-b")).to_be_visible()

        asked = _slide_to(page, 120)  # early in training: the vanilla run still bunched, MBD's matrix lit
        assert asked == 120, asked
        expected = {side: max(s for s in kept[run.id] if s <= asked) for side, run in zip("ab", runs)}
        for side in "ab":
            expect(page.locator(f"#compare-picture-{side} .timelapse-pane")).to_have_attribute(
                "data-step", str(expected[side]), timeout=10_000)
            expect(page.locator(f"#compare-picture-{side} img.inside-heatmap")).to_be_visible()
            expect(page.locator(f"#compare-picture-{side} img.inside-arrows")).to_be_visible()
        expect(page.locator("#compare-picture-b .inside-step")).to_have_text(f"at step {expected['b']:,}")
        # The replayed layers have exactly the replayed picture's box.
        for side in "ab":
            picture = page.locator(f"#compare-picture-{side} img.ganapp-picture").bounding_box()
            for layer in ("heatmap", "arrows"):
                box = page.locator(f"#compare-picture-{side} img.inside-{layer}").bounding_box()
                assert all(abs(box[k] - picture[k]) <= 1.0 for k in ("x", "y", "width", "height")), (layer, box,
                                                                                                    picture)
        page.locator("#compare-section").screenshot(path=str(artifacts_dir / "timelapse-replay-early.png"))
        early = np.asarray(Image.open(io.BytesIO(page.locator("#compare-picture-a .timelapse-stack").screenshot())))

        later = _slide_to(page, 520)
        expected_later = max(s for s in kept[runs[0].id] if s <= later)
        assert expected_later > expected["a"]
        expect(page.locator("#compare-picture-a .timelapse-pane")).to_have_attribute("data-step", str(expected_later),
                                                                                   timeout=10_000)
        page.locator("#compare-section").screenshot(path=str(artifacts_dir / "timelapse-replay-late.png"))
        late = np.asarray(Image.open(io.BytesIO(page.locator("#compare-picture-a .timelapse-stack").screenshot())))
        assert early.shape != late.shape or np.abs(early.astype(int) - late.astype(int)).mean() > 1

        # The page's switches hide the replayed layers as they hide the stage's, with the words
        # that explain them (the colour bar, the sentence on the arrows).
        page.locator("#inside-heatmap-switch input").uncheck()
        expect(page.locator("#compare-picture-a img.inside-heatmap")).to_be_hidden()
        expect(page.locator("#compare-picture-a .inside-scale")).to_be_hidden()
        expect(page.locator("#compare-picture-a img.inside-arrows")).to_be_visible()
        expect(page.locator("#compare-picture-a .inside-arrows-note")).to_be_visible()
        page.locator("#inside-arrows-switch input").uncheck()
        expect(page.locator("#compare-picture-a .inside-arrows-note")).to_be_hidden()
        page.locator("#inside-heatmap-switch input").check()
        page.locator("#inside-arrows-switch input").check()
        expect(page.locator("#compare-picture-a img.inside-heatmap")).to_be_visible()
        expect(page.locator("#compare-picture-a .inside-scale")).to_be_visible()

        # The GIF with D's view, G's arrows and the lenses.
        page.locator("#gif-with").get_by_text("with D's view and G's arrows").click()
        page.locator("#gif-with").get_by_text("with the lenses").click()
        gif = download_gif(page, artifacts_dir / "timelapse-pair-views.gif", timeout_ms=60_000)
        with Image.open(gif) as animation:
            assert animation.n_frames >= 5
            animation.seek(2)
            animation.convert("RGB").save(artifacts_dir / "timelapse-pair-views-frame.png")
            assert animation.size[1] > 320 + 64  # the lenses under the pictures
    finally:
        page.context.close()


def test_a_lens_preset_from_the_menu_switches_its_views_on(server, browser, artifacts_dir):
    page, _ = _open(browser, server.url)
    try:
        page.locator("#inside-heatmap-switch input").uncheck()  # switched off earlier in the lesson
        expect(page.locator("#inside-heatmap-switch input")).not_to_be_checked()
        name = next(n for n, w in PRESET_VIEWS.items() if w["games"])
        page.locator("#preset input").click()
        page.locator("#preset").get_by_role("option", name=name, exact=True).click()
        expect(page.locator("#inside-heatmap-switch input")).to_be_checked(timeout=10_000)
        expect(page.locator("#games-view")).to_be_visible()  # the tiny games' section, opened
        expect(page.locator("#preset-note")).to_contain_text("9.2")
        assert page.evaluate("document.body.classList.contains('inside-no-heatmap')") is False
        page.screenshot(path=str(artifacts_dir / "timelapse-lens-preset.png"), full_page=True)
    finally:
        page.context.close()


def test_on_a_phone_the_compared_runs_stack_under_their_slider(server, browser, artifacts_dir):
    """390x844: each compared run the screen's width, one above the other, under the step
    slider, and their lenses inside the screen (they ran off it, cut, beside each other)."""
    page, token = _open(browser, server.url, 390, 844)
    try:
        runs = _finished_pair(server.app, token)
        _show_side_by_side(page, runs)
        expect(page.locator("#compare-picture-b #lens-mbd-replay-b")).to_be_visible(timeout=20_000)
        a = page.locator("#compare-picture-a img.ganapp-picture").bounding_box()
        b = page.locator("#compare-picture-b img.ganapp-picture").bounding_box()
        slider = page.locator("#replay").bounding_box()
        assert a["width"] >= 0.8 * 390 and b["width"] >= 0.8 * 390, (a, b)
        assert b["y"] >= a["y"] + a["height"] and a["y"] >= slider["y"] + slider["height"], (slider, a, b)
        lens = page.locator("#compare-picture-b #lens-mbd-replay-b").bounding_box()
        assert lens["x"] >= 0 and lens["x"] + lens["width"] <= 390, lens
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
        page.locator("#compare-section").screenshot(path=str(artifacts_dir / "timelapse-phone.png"))
    finally:
        page.context.close()
