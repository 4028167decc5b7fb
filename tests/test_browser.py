"""The page in a real browser: Debian's chromium, driven by Playwright, against the real server.

Every wait is an `expect` (or wait_for_function) with a deadline; screenshots land in
artifacts/ (GANAPP_ARTIFACTS_DIR) for people to look at.
"""

from __future__ import annotations

import http.server
import pickle
import re
import secrets
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

expect = pytest.importorskip("playwright.sync_api").expect

FIRST_PICTURE_S = 90  # the session's first job may wait for the forkserver's imports


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def trap():
    """A tiny web server on loopback that records every request it gets: what the page
    shows must never make the browser reach it."""
    hits: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=httpd.serve_forever, name="trap", daemon=True).start()
    yield SimpleNamespace(port=httpd.server_address[1], hits=hits, url=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.shutdown()
    httpd.server_close()


def _token(page) -> str:
    """This browser's owner token, from the (folded) API section of the page."""
    box = page.locator("#owner-token textarea")
    if not box.is_visible():
        page.get_by_text("Scripting: the API").click()
    expect(box).to_have_value(re.compile(r"^[\w-]{24}\.[\w-]{22}$"), timeout=10_000)  # a token the server signed
    return box.input_value()


def _open(page, url: str) -> None:
    """Open the page and wait until its load event has given it a visitor token (stored
    by the browser), so that a click right away acts as this visitor."""
    page.goto(url)
    expect(page.locator("#state-text")).to_be_visible(timeout=30_000)
    page.wait_for_function("() => !!localStorage.getItem('ganapp-owner-token')", timeout=30_000)


def _settings(page) -> None:
    """Unfold the settings panel (folded on the first screen) if it is not open yet."""
    if not page.locator("#field-steps input").is_visible():
        page.locator("#settings").get_by_text(re.compile("Settings|設定")).first.click()
    expect(page.locator("#field-steps input")).to_be_visible()


def test_start_watch_and_stop_a_run(server, browser, page, artifacts_dir):
    _open(page, server.url)
    expect(page.locator("#state-text")).to_have_text("no run yet")
    _settings(page)
    page.locator("#field-minibatch_discrimination input").check()
    page.locator("#field-steps input").fill("20000")
    page.locator("#start-button").click()

    # The sample picture appears, then changes; so do the loss curves.
    samples = page.locator("#samples img")
    expect(samples).to_have_attribute("alt", re.compile(r"at step \d+"), timeout=FIRST_PICTURE_S * 1000)
    first_picture = samples.get_attribute("src")
    expect(samples).not_to_have_attribute("src", first_picture, timeout=30_000)
    curves = page.locator("#samples-b img")  # without a pair, the right pane shows the loss curves
    expect(curves).to_have_attribute("alt", re.compile(r"loss curves of .* up to step \d+"), timeout=30_000)
    first_curves = curves.get_attribute("src")
    expect(curves).not_to_have_attribute("src", first_curves, timeout=30_000)
    expect(page.locator("#state-text")).to_have_text("running")
    expect(page.locator("#step-count")).not_to_have_text("0")
    expect(page.locator("#runs-table")).to_contain_text("MBD")
    page.screenshot(path=str(artifacts_dir / "browser-running.png"), full_page=True)

    page.locator("#stop-button").click()
    expect(page.locator("#state-text")).to_have_text("stopped", timeout=10_000)
    page.screenshot(path=str(artifacts_dir / "browser-stopped.png"), full_page=True)
    owner = _token(page)
    (run,) = server.app.jobs.runs(owner)
    assert run.state == "stopped" and 0 < run.step < 20_000 and run.techniques == ["MBD"]
    expect(page.locator("#run-files")).to_contain_text(re.compile(r"checkpoint\s*\.safetensors"))

    # A reloaded page finds the run again; another browser session sees none of it.
    page.reload()
    expect(page.locator("#state-text")).to_have_text("stopped", timeout=30_000)
    expect(page.locator("#runs-table")).to_contain_text(run.id)
    assert _token(page) == owner
    stranger = browser.new_context().new_page()
    try:
        _open(stranger, server.url)
        expect(stranger.locator("#state-text")).to_have_text("no run yet")
        expect(stranger.locator("#runs-table")).not_to_contain_text(run.id)
        assert _token(stranger) != owner
    finally:
        stranger.context.close()


def test_compare_two_runs_and_refuse_bad_input(server, page, tmp_path, artifacts_dir):
    _open(page, server.url)
    # A preset fills the form and says what it showed when measured.
    _settings(page)
    for name, checked in (("ring8: minibatch discrimination", True), ("ring8: vanilla", False)):
        page.locator("#preset input").click()
        page.locator("#preset").get_by_role("option", name=name, exact=True).click()
        expect(page.locator("#field-minibatch_discrimination input")).to_be_checked(checked=checked)
        expect(page.locator("#preset-note")).not_to_be_empty()
    _settings(page)
    page.locator("#field-steps input").fill("200")
    page.locator("#run-name input, #run-name textarea").first.fill("vanilla")
    page.locator("#start-button").click()
    expect(page.locator("#state-text")).to_have_text(re.compile("running|finished"), timeout=FIRST_PICTURE_S * 1000)
    page.locator("#field-minibatch_discrimination input").check()
    page.locator("#run-name input, #run-name textarea").first.fill("with MBD")
    page.locator("#start-button").click()
    expect(page.locator("#state-text")).to_have_text("finished", timeout=60_000)
    owner = _token(page)
    vanilla, mbd = server.app.jobs.runs(owner)
    server.app.jobs.wait(owner, vanilla.id, timeout_s=30)
    assert (vanilla.config.seed, vanilla.techniques, mbd.techniques) == (0, [], ["MBD"])

    for selector, run in (("#compare-a", vanilla), ("#compare-b", mbd)):
        page.locator(f"{selector} input").click()
        page.locator(selector).get_by_role("option", name=f"{run.name} [{run.id}]").click()
    page.locator("#compare-button").click()
    expect(page.locator("#compare-picture-a img.ganapp-picture")).to_have_attribute("alt", re.compile("vanilla"),
                                                                     timeout=10_000)
    expect(page.locator("#compare-picture-b img.ganapp-picture")).to_have_attribute("alt", re.compile("with MBD"))
    page.wait_for_function("() => document.querySelectorAll('#compare-plot svg path').length > 3", timeout=10_000)
    expect(page.locator("#compare-plot")).to_contain_text("with MBD")
    expect(page.locator("#scoreboard")).to_contain_text("with MBD", timeout=30_000)
    page.screenshot(path=str(artifacts_dir / "browser-compare.png"), full_page=True)

    # Wrong settings: a clear message, and the form keeps what was typed.
    _settings(page)
    page.locator("#field-lr_generator input").fill("-1")
    page.locator("#start-button").click()
    field_error = "Learning rate of the generator must be more than 0 and at most 1; you entered -1."
    expect(page.locator("#field-lr_generator")).to_contain_text(field_error, timeout=10_000)  # at the field
    shown = page.get_by_text(field_error).and_(page.locator(":not(.sr-only)")).filter(visible=True)  # (and a
    # screen reader's live region, which says it aloud)
    assert shown.count() == 1 and page.locator("#field-lr_generator").get_by_text(field_error).is_visible()
    # No error badge on any output panel, and no error toast over the pictures.
    assert page.locator("#status .error, #samples .error, #samples-b .error, .toast-body.error").count() == 0
    page.screenshot(path=str(artifacts_dir / "browser-field-error.png"))
    assert "lr_generator" not in page.locator("#field-lr_generator").inner_text()
    expect(page.locator("#field-lr_generator input")).to_have_value("-1")
    assert len(server.app.jobs.runs(owner)) == 2

    # A pickle dressed up as a checkpoint: refused with the engine's reason, no run left behind.
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"not": "a checkpoint"}))
    page.get_by_text("Load a checkpoint").click()
    page.locator("#checkpoint-upload input[type=file]").set_input_files(str(evil))
    expect(page.get_by_text(re.compile("never unpickles"))).to_be_visible(timeout=30_000)
    assert len(server.app.jobs.runs(owner)) == 2


def test_ready_made_runs_open_at_once(server, page, artifacts_dir):
    """A class that cannot wait: two shipped runs open from the menu and compare side by side."""
    _open(page, server.url)
    for name in ("ring8-vanilla", "ring8-virtual-batch-norm"):
        page.locator("#ready-made input").click()
        page.locator("#ready-made").get_by_role("option", name=name, exact=True).click()
        expect(page.locator("#state-text")).to_have_text("finished", timeout=FIRST_PICTURE_S * 1000)
        expect(page.locator("#runs-table")).to_contain_text(name)
        expect(page.locator("#preset-note")).to_contain_text("2000 steps, seed 0")
    expect(page.locator("#samples img")).to_have_attribute("alt", re.compile(r"at step 2000"))
    expect(page.locator("#metrics-text")).to_contain_text("modes covered")
    owner = _token(page)
    vanilla, vbn = server.app.jobs.runs(owner)
    assert (vanilla.step, vbn.step, vanilla.techniques, vbn.techniques) == (2000, 2000, [], ["VBN"])
    for selector, run in (("#compare-a", vanilla), ("#compare-b", vbn)):
        page.locator(f"{selector} input").click()
        page.locator(selector).get_by_role("option", name=f"{run.name} [{run.id}]").click()
    page.locator("#compare-button").click()
    expect(page.locator("#compare-picture-b img.ganapp-picture")).to_have_attribute(
        "alt", re.compile("ring8-virtual-batch-norm"), timeout=10_000)
    page.screenshot(path=str(artifacts_dir / "browser-ready-made.png"), full_page=True)


def test_a_preset_starts_beside_its_vanilla_partner_in_one_click(server, page, artifacts_dir):
    _open(page, server.url)
    page.locator("#pair-button").click()  # no preset chosen yet: a clear message, no run
    expect(page.get_by_text(re.compile("Choose a technique's preset first"))).to_be_visible(timeout=10_000)
    page.locator("#preset input").click()
    page.locator("#preset").get_by_role("option", name="ring8: virtual batch norm", exact=True).click()
    page.locator("#pair-button").click()
    expect(page.locator("#compare-picture-a img.ganapp-picture")).to_have_attribute("alt", re.compile("ring8: vanilla"),
                                                                     timeout=FIRST_PICTURE_S * 1000)
    expect(page.locator("#compare-picture-b img.ganapp-picture")).to_have_attribute("alt", re.compile("ring8: virtual batch norm"))
    expect(page.locator("#runs-table")).to_contain_text("ring8: vanilla")
    owner = _token(page)
    vanilla, vbn = server.app.jobs.runs(owner)
    assert (vanilla.techniques, vbn.techniques) == ([], ["VBN"])
    assert {k: v for k, v in vanilla.config.to_dict().items() if k != "virtual_batch_norm"} == \
        {k: v for k, v in vbn.config.to_dict().items() if k != "virtual_batch_norm"}
    page.screenshot(path=str(artifacts_dir / "browser-pair.png"), full_page=True)
    for run in (vanilla, vbn):
        server.app.jobs.stop(owner, run.id)


def test_nothing_a_visitor_wrote_is_rendered_as_html(server, manager, page, trap, tmp_path, artifacts_dir,
                                                      monkeypatch):
    """A checkpoint's config, a notice and a run name, each holding HTML that would fetch
    from `trap` or draw a fake link, show as plain text; the browser fetches nothing."""
    from gradio import utils as gradio_utils
    from gradio_client import Client

    from test_app_hardening import TINY, checkpoint_with_config

    requests_to_trap = []
    page.on("request", lambda request: requests_to_trap.append(request.url) if trap.url in request.url else None)
    evil = checkpoint_with_config(tmp_path / f"evil-{secrets.token_hex(4)}.safetensors",
                                  {"data": f"<img src={trap.url}/i onerror=alert(1)>"})
    _open(page, server.url)
    owner = _token(page)
    notice = f"Your run <img src={trap.url}/n> was deleted to make room"
    notices = {owner: [notice]}
    monkeypatch.setattr(manager, "take_notices", lambda token: notices.pop(token, []), raising=False)

    # The checkpoint is refused with its config quoted: as text, like the notice shown on the way.
    page.get_by_text("Load a checkpoint").click()
    page.locator("#checkpoint-upload input[type=file]").set_input_files(str(evil))
    refusal = page.get_by_text(f"<img src={trap.url}/i onerror=alert(1)>", exact=False)
    expect(refusal).to_be_visible(timeout=30_000)
    assert page.locator(f"img[src^='{trap.url}'], a[href^='{trap.url}']").count() == 0
    page.screenshot(path=str(artifacts_dir / "browser-escaped-toast.png"), animations="disabled")  # the toast flies in
    assert server.app.jobs.runs(owner) == []  # the refused checkpoint left no run
    assert not list(Path(gradio_utils.get_upload_folder()).glob(f"*/{evil.name}"))  # nor its upload

    # A notice (after Start) and a run name holding a fake link show as text.
    name = f"<a href={trap.url}/l><b>Session expired</b></a>"
    _settings(page)
    page.locator("#field-steps input").fill("40")
    page.locator("#run-name input, #run-name textarea").first.fill(name)
    notices[owner] = [notice]
    page.locator("#start-button").click()
    expect(page.get_by_text(notice, exact=False)).to_be_visible(timeout=30_000)
    page.screenshot(path=str(artifacts_dir / "browser-escaped-notice.png"), animations="disabled")
    expect(page.locator("#status .what")).to_contain_text(name, timeout=FIRST_PICTURE_S * 1000)
    expect(page.locator("#state-text")).to_have_text("finished", timeout=60_000)
    expect(page.locator("#runs-table")).to_contain_text(name, timeout=30_000)
    expect(page.locator("#scoreboard")).to_contain_text(name, timeout=30_000)
    expect(page.locator("#samples img")).to_have_attribute("alt", re.compile(re.escape(name)))
    # The same through the API: a script's run name, seen after a reload.
    api_name = f"<img src={trap.url}/a>api"
    Client(server.url, verbose=False).predict(owner, {**TINY, "steps": 40}, api_name, api_name="/start_run")
    page.reload()
    expect(page.locator("#status .what")).to_contain_text(api_name, timeout=30_000)
    expect(page.locator("#runs-table")).to_contain_text(api_name, timeout=30_000)
    assert page.locator(f"img[src^='{trap.url}'], a[href^='{trap.url}'], #status b, #runs-table b").count() == 0
    page.screenshot(path=str(artifacts_dir / "browser-escaped-names.png"), full_page=True)
    assert requests_to_trap == [] and trap.hits == []
