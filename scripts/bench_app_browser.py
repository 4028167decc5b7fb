"""Time from pressing Start to the first sample picture drawn in a real browser (a benchmark).

Starts `python app.py` on loopback, opens the page in Debian's chromium (Playwright), and
for each data set presses Start several times, stopping each run before the next. The
page itself measures: a capturing click listener notes performance.now() when Start is
pressed, and a MutationObserver notes when the new sample picture has been decoded and
the next frame painted. The very first Start after the server came up is reported apart
(the job process server may still be importing torch then).

    python scripts/bench_app_browser.py [--repeats 5] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import Server, free_port  # noqa: E402  (same folder)

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

ARM = """() => {
  const w = window;
  w.__pressed = null; w.__drawn = null;
  w.__before = (document.querySelector('#samples img') || {}).src || null;
  document.querySelector('#start-button').addEventListener('click', () => { w.__pressed = performance.now(); },
                                                           {capture: true, once: true});
  const observer = new MutationObserver(() => {
    const img = document.querySelector('#samples img');
    if (w.__pressed !== null && w.__drawn === null && img && img.src !== w.__before) {
      w.__drawn = -1;
      img.decode().then(() => requestAnimationFrame(() => { w.__drawn = performance.now(); }));
      observer.disconnect();
    }
  });
  observer.observe(document.querySelector('#samples'), {subtree: true, childList: true, attributes: true});
}"""


def open_settings(page) -> None:
    """The settings panel is folded on the first screen; its fields exist once it is open."""
    if not page.locator("#field-data input").is_visible():
        page.locator("#settings").get_by_text(re.compile("Settings|設定")).first.click()
        page.locator("#field-data input").wait_for(state="visible", timeout=30_000)


def press_start_and_time(page, data: str, seed: int) -> float:
    open_settings(page)
    page.locator("#field-data input").click()
    page.locator("#field-data").get_by_role("option", name=data, exact=True).click()
    page.locator("#field-steps input").fill("20000")
    # A new seed each time: the same seed gives the same first picture, which the page
    # already shows from the run before.
    page.locator("#field-seed input").fill(str(seed))
    page.evaluate(ARM)
    page.locator("#start-button").click()
    page.wait_for_function("() => window.__drawn > 0", timeout=120_000)
    seconds = page.evaluate("() => (window.__drawn - window.__pressed) / 1000")
    page.locator("#stop-button").click()
    try:
        page.wait_for_function("() => (document.querySelector('#state-text') || {}).textContent === 'stopped'",
                               timeout=30_000)
    except Exception:
        print("state shown:", page.locator("#state-text").inner_text(), file=sys.stderr)
        page.screenshot(path="/tmp/bench_fail.png", full_page=True)
        raise
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if not 1 <= args.repeats <= 20:
        parser.error("--repeats must be 1..20")
    from playwright.sync_api import sync_playwright

    server = Server(free_port())
    results: dict = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server.url)
            page.wait_for_selector("#state-text", timeout=60_000)
            results["first start after the server came up (ring8)"] = round(press_start_and_time(page, "ring8", 0), 3)
            for data in ("ring8", "digits"):
                times = [press_start_and_time(page, data, seed) for seed in range(1, args.repeats + 1)]
                results[data] = {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3),
                                 "all_s": [round(t, 3) for t in times]}
                print(data, json.dumps(results[data]), flush=True)
            browser.close()
    finally:
        server.stop()
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
