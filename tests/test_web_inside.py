"""See inside the game in a real browser: D's heatmap and G's arrows stacked on the sample
picture (switched on and off in the page), and every technique's lens, in English and 繁體中文.

Screenshots land in artifacts/ (GANAPP_ARTIFACTS_DIR) as inside-*.png, for people to look at.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from ganapp.config import GANConfig

from conftest import wait_until

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.slow

ALL_LENSES = dict(data="ring8", minibatch_discrimination=True, feature_matching=True, label_smoothing=0.9,
                  virtual_batch_norm=True, hidden_dim=64, batch_size=64, sample_every=50, log_every=10,
                  metrics_every=0)


def _open(browser, url: str, width: int = 1280, height: int = 900):
    page = browser.new_context(viewport={"width": width, "height": height}, locale="en-US").new_page()
    page.goto(url)
    expect(page.locator("#state-text")).to_be_visible(timeout=30_000)
    page.wait_for_function("() => !!localStorage.getItem('ganapp-owner-token')", timeout=30_000)
    box = page.locator("#owner-token textarea")  # this browser's token, from the (folded) API section
    if not box.is_visible():
        page.locator("#api-section").get_by_text(re.compile("Scripting|API")).first.click()
    expect(box).to_have_value(re.compile(r"^[\w-]{24}\.[\w-]{22}$"), timeout=10_000)
    return page, box.input_value()


def _shot(page, selector: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.locator(selector).first.screenshot())).convert("RGB"))


def _boxes_together(page, *selectors: str) -> list[dict]:
    """The boxes of several elements, read in one go once all are laid out: read one by one,
    a poll that replaced the pictures in between left one of them without a box."""
    script = """(selectors) => selectors.map(s => {
        const element = document.querySelector(s);
        const r = element ? element.getBoundingClientRect() : null;
        return r && r.width ? {x: r.x, y: r.y, width: r.width, height: r.height} : null; })"""
    return wait_until(lambda: (lambda boxes: boxes if all(boxes) else None)(page.evaluate(script, list(selectors))),
                      10, f"boxes of {selectors}")


def test_layers_stack_on_the_picture_switch_in_the_browser_and_the_lenses_show(server, browser, artifacts_dir):
    page, token = _open(browser, server.url)
    try:
        run = server.app.jobs.submit(token, GANConfig(**ALL_LENSES, steps=4000), name="all four lenses")
        page.reload()
        expect(page.locator("#inside-layers img.inside-heatmap")).to_be_visible(timeout=90_000)

        # Live: the views' step moves while the run trains.
        def inside_step() -> int | None:
            found = re.search(r"[\d,]+", page.locator("#inside-lens .inside-step").first.text_content() or "")
            return int(found.group(0).replace(",", "")) if found else None

        first = wait_until(lambda: inside_step() is not None and inside_step(), 60, "the views' first step")
        wait_until(lambda: (inside_step() or 0) > first, 90, "a newer view while training")
        server.app.jobs.stop(token, run.id)
        server.app.jobs.wait(token, run.id, timeout_s=60)
        page.reload()
        expect(page.locator("#inside-layers img.inside-arrows")).to_be_visible(timeout=30_000)
        wait_until(lambda: inside_step() == run.inside[0], 30, "the final views")

        # The layers have exactly the sample picture's box, so the heatmap lies under the dots.
        picture, heat, arrows = _boxes_together(page, "#samples img", "#inside-layers img.inside-heatmap",
                                                "#inside-layers img.inside-arrows")
        for layer in (heat, arrows):
            for key in ("x", "y", "width", "height"):
                assert abs(layer[key] - picture[key]) <= 1.0, (key, layer, picture)
        page.locator("#stage").screenshot(path=str(artifacts_dir / "inside-both-layers.png"))
        both = _shot(page, "#samples img")

        # Switches: instant, in the browser; the sample picture itself is unchanged.
        page.locator("#inside-heatmap-switch input").uncheck()
        expect(page.locator("#inside-layers img.inside-heatmap")).to_be_hidden()
        page.locator("#stage").screenshot(path=str(artifacts_dir / "inside-arrows-only.png"))
        arrows_only = _shot(page, "#samples img")
        page.locator("#inside-arrows-switch input").uncheck()
        expect(page.locator("#inside-layers img.inside-arrows")).to_be_hidden()
        page.locator("#stage").screenshot(path=str(artifacts_dir / "inside-no-layers.png"))
        plain = _shot(page, "#samples img")
        page.locator("#inside-heatmap-switch input").check()
        expect(page.locator("#inside-layers img.inside-heatmap")).to_be_visible()
        page.locator("#stage").screenshot(path=str(artifacts_dir / "inside-heatmap-only.png"))
        heat_only = _shot(page, "#samples img")
        page.locator("#inside-arrows-switch input").check()

        # The heatmap tints most of the plot box, the arrows add dark ink; with both off the
        # screen shows the plain sample picture. (The square picture is centred in its box.)
        def plot_box(shot: np.ndarray) -> np.ndarray:
            h, w, _ = shot.shape
            side = min(h, w)
            y0, x0 = (h - side) // 2, (w - side) // 2
            return shot[y0 + int(side * 0.25):y0 + int(side * 0.8), x0 + int(side * 0.2):x0 + int(side * 0.8)]

        def changed(a: np.ndarray, b: np.ndarray) -> float:
            return float((np.abs(plot_box(a).astype(int) - plot_box(b).astype(int)).max(axis=2) > 8).mean())

        def dark(shot: np.ndarray) -> float:
            return float((plot_box(shot).max(axis=2) < 70).mean())

        assert changed(plain, heat_only) > 0.5, changed(plain, heat_only)
        assert dark(arrows_only) > dark(plain) + 0.005, (dark(arrows_only), dark(plain))
        assert changed(heat_only, both) > 0.005 and changed(arrows_only, both) > 0.3

        # Every lens of the run's techniques, with its picture and its sentence.
        for name in ("mbd", "vbn", "ls", "fm"):
            card = page.locator(f"#lens-{name}")
            expect(card).to_be_visible()
            assert card.locator("img").count() >= 1
            assert card.locator("img").first.evaluate("img => img.naturalWidth") > 100
        expect(page.locator("#inside-lens .inside-scale")).to_be_visible()
        assert "feature matching" in page.locator("#inside-lens .inside-note").text_content()
        page.locator("#inside-section").screenshot(path=str(artifacts_dir / "inside-lenses-en.png"))
        for name in ("mbd", "vbn", "ls", "fm"):
            page.locator(f"#lens-{name}").screenshot(path=str(artifacts_dir / f"inside-lens-{name}-en.png"))
        # Text in the lens panel at classroom size.
        selector = "#inside-section p, #inside-section figcaption, #inside-section label span, .inside-scale span"
        sizes = page.evaluate("""(selector) => [...document.querySelectorAll(selector)]
            .filter(e => e.offsetParent && e.textContent.trim()).map(e => parseFloat(getComputedStyle(e).fontSize))""",
                              selector)
        assert sizes and min(sizes) >= 16, sizes

        # 繁體中文: the switches, the heading and every lens relabelled.
        page.locator("#lang-switch").get_by_text("繁體中文").click()
        expect(page.locator("#inside-heading")).to_contain_text("看進賽局的內部", timeout=15_000)
        expect(page.locator("#inside-heatmap-switch")).to_contain_text("熱度圖")
        expect(page.locator("#lens-mbd")).to_contain_text("小批次判別")
        expect(page.locator("#lens-vbn")).to_contain_text("虛擬的批次歸一化")
        expect(page.locator("#lens-ls")).to_contain_text("單邊的標籤平滑")
        expect(page.locator("#lens-fm")).to_contain_text("特徵匹配")
        expect(page.locator("#inside-layers img.inside-heatmap")).to_be_visible()
        page.locator("#stage").screenshot(path=str(artifacts_dir / "inside-both-layers-zh.png"))
        page.locator("#inside-section").screenshot(path=str(artifacts_dir / "inside-lenses-zh.png"))
    finally:
        page.context.close()


def test_an_image_run_shows_its_lenses_and_no_layers(server, browser, artifacts_dir):
    page, token = _open(browser, server.url)
    try:
        config = GANConfig(data="digits", minibatch_discrimination=True, virtual_batch_norm=True, steps=60,
                           sample_every=20, metrics_every=0, hidden_dim=32, batch_size=32)
        run = server.app.jobs.submit(token, config, name="digits lenses")
        server.app.jobs.wait(token, run.id, timeout_s=120)
        page.reload()
        expect(page.locator("#lens-mbd")).to_be_visible(timeout=30_000)
        expect(page.locator("#lens-vbn")).to_be_visible()
        assert page.locator("#inside-layers img").count() == 0
        assert page.locator("#lens-ls").count() == 0 and page.locator("#lens-fm").count() == 0
        page.locator("#inside-section").screenshot(path=str(artifacts_dir / "inside-lenses-digits.png"))
    finally:
        page.context.close()


def test_a_pair_shows_each_panes_layers_and_the_treated_runs_lens(server, browser, artifacts_dir):
    """The collapse-and-cure pair: vanilla on the left, minibatch discrimination on the right,
    each pane with its own heatmap and arrows, and the treated run's closeness matrices."""
    page, token = _open(browser, server.url, 1280, 800)
    try:
        page.locator("#preset input").click()
        page.locator("#preset").get_by_role("option", name="ring8, G without batch norm: minibatch discrimination",
                                             exact=True).click()
        page.locator("#pair-button").click()
        expect(page.locator("#inside-layers img.inside-heatmap")).to_be_visible(timeout=90_000)
        expect(page.locator("#inside-layers-b img.inside-heatmap")).to_be_visible(timeout=60_000)
        expect(page.locator("#lens-mbd-b")).to_be_visible(timeout=60_000)
        assert page.locator("#lens-mbd").count() == 0  # vanilla has no minibatch layer to look into
        expect(page.locator("#inside-lens .inside-run")).to_contain_text("minibatch discrimination")
        for side in ("", "-b"):  # both boxes read at once: the live pictures are replaced as they come
            picture, layer = page.evaluate("""(side) => [`#samples${side} img`, `#inside-layers${side} img.inside-arrows`]
                .map(s => { const r = document.querySelector(s).getBoundingClientRect();
                            return {x: r.x, y: r.y, width: r.width, height: r.height}; })""", side)
            assert all(abs(layer[k] - picture[k]) <= 1.0 for k in ("x", "y", "width", "height")), (side, layer, picture)
        page.screenshot(path=str(artifacts_dir / "inside-pair.png"))
        page.locator("#inside-section").screenshot(path=str(artifacts_dir / "inside-pair-lenses.png"))
    finally:
        for run in server.app.jobs.runs(token):
            if run.active:
                server.app.jobs.stop(token, run.id)
        page.context.close()
