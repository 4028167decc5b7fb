"""Shared fixtures: one job manager, one real Gradio server on loopback, one real chromium.

Everything heavy is imported inside the fixtures, so test files that use none of them
(the engine's tests) pay nothing. The fixtures are session-scoped: the forkserver's
imports (torch, the engine) and the server start are paid once per test run.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.02):
    """Return condition()'s first truthy value; fail with `what` when the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def start_and_signal_server(script: Path, how: int) -> dict:
    """Run a job-server script (tests/test_jobs.py, tests/test_pause.py) in its own
    process until it prints its first line, a JSON record of the runs it started; then
    send it `how` (SIGTERM, SIGKILL) and wait for it to end. Returns that record."""
    import json
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()  # the server prints once its job trains, or dies (EOF)
        assert line.startswith("{"), f"the server printed {line!r}"
        started = json.loads(line)
        server.send_signal(how)
        server.wait(30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    return started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave screenshots for people to look at (CI keeps it)."""
    folder = Path(os.environ.get("GANAPP_ARTIFACTS_DIR", REPO / "artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def manager(tmp_path_factory):
    """A JobManager with small limits, shared by the job, API and browser tests."""
    from ganapp.jobs import JobManager, Limits

    limits = Limits(max_running=2, max_running_per_owner=2, max_waiting=8, max_waiting_per_owner=3,
                    max_steps=20_000, max_runs_per_owner=8, max_upload_bytes=5 * 1024 * 1024)
    jobs = JobManager(limits=limits, runs_dir=tmp_path_factory.mktemp("runs"))
    yield jobs
    jobs.shutdown()


@pytest.fixture(scope="session")
def server(manager):
    """The real app (app.build_demo) served by Gradio on loopback: .url, .demo, .app (its handlers)."""
    import app

    demo = app.build_demo(manager)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                            quiet=True, **app.launch_options(manager, demo=demo))
    yield SimpleNamespace(url=url, demo=demo, app=demo.ganapp)
    demo.close()


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (no browser download)."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


# ---------------------------------------------------------------- the page in a browser
# The set-up the browser test files share (each imports these: `from conftest import ...`).
TOKEN_PATTERN = r"^[\w-]{24}\.[\w-]{22}$"  # a visitor token the server signed


def download_gif(page, path: Path, timeout_ms: int = 30_000) -> Path:
    """Press "Make a captioned GIF" (#gif-button) and save the file its link offers."""
    from playwright.sync_api import expect

    page.locator("#gif-button").click()
    expect(page.locator("#gif-download")).to_be_visible(timeout=timeout_ms)
    with page.expect_download() as download:
        page.locator("#gif-download").click()
    download.value.save_as(path)
    return path


def new_page(browser, width: int = 1280, height: int = 720, locale: str = "en-US", **options):
    """A page in a fresh browser context of its own (its own storage, so its own visitor)."""
    return browser.new_context(viewport={"width": width, "height": height}, locale=locale, **options).new_page()


def open_page(page, url: str) -> None:
    """Open the app at `url` and wait until its load event has given it a visitor token
    (stored by the browser), so that a click right away acts as this visitor."""
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.locator("#state-text")).to_be_visible(timeout=30_000)
    page.wait_for_function("() => !!localStorage.getItem('ganapp-owner-token')", timeout=30_000)


def owner_token(page) -> str:
    """This browser's owner token, from the (folded) API section of the page."""
    import re

    from playwright.sync_api import expect

    box = page.locator("#owner-token textarea")
    if not box.is_visible():
        page.locator("#api-section").get_by_text(re.compile("Scripting|API")).first.click()
    expect(box).to_have_value(re.compile(TOKEN_PATTERN), timeout=10_000)
    return box.input_value()


# Files whose every test starts a real server or a real browser: all of them are slow
# (over ~2 s), so the fast tier (python -m pytest -m "not slow") leaves them out.
SLOW_FILES = {"test_app.py", "test_browser.py", "test_web_live.py", "test_web_play.py", "test_web_draw.py",
              "test_web_classes.py", "test_web_games.py", "test_web_inside.py", "test_web_classroom.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
