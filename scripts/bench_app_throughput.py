"""Training throughput inside the app against the same run from the command line (a benchmark).

For each data set, alternates `python -m ganapp train` (one torch thread, its default)
with the same config started through the app's API on a `python app.py` server, while a
simulated page watches the run (the browser's own requests, twice a second; see
load_test.py). Both report training steps per second of training time (evaluation
excluded, as the trainer counts it). Rounds alternate so that drifts in machine load hit
both.

    python scripts/bench_app_throughput.py [--rounds 3] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx  # noqa: E402
from load_test import REPO, Server, free_port, visit  # noqa: E402  (same folder)

RUNS = {"ring8": {"data": "ring8", "steps": 3000, "seed": 0}, "digits": {"data": "digits", "steps": 300, "seed": 0}}


def from_command_line(config: dict) -> float:
    """Training steps/s of `python -m ganapp train` with this config."""
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in config.items()]
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-m", "ganapp", "train", *flags, "--out", out, "--quiet"],
                              cwd=REPO, capture_output=True, text=True, check=True)
    return float(re.search(r"\(([\d.]+) training steps/s\)", done.stderr).group(1))


def watch(server: Server, token: str, done: threading.Event) -> None:
    """One open page: its load event, then its poll twice a second, until `done`."""
    async def page() -> None:
        session, held, interval = uuid.uuid4().hex, {}, [0.5]
        async with httpx.AsyncClient(timeout=60) as client:
            await visit(client, server, server.load, token, session, held, None, interval, False)
            while not done.is_set():
                await visit(client, server, server.tick, token, session, held, None, interval, False)
                await asyncio.sleep(0.5)

    asyncio.run(page())


def in_the_app(server: Server, token: str, config: dict) -> float:
    """Training steps/s of the same run in the app, watched by an open page."""
    run_id = server.api("start_run", token, config, "throughput")["run_id"]
    done = threading.Event()
    page = threading.Thread(target=watch, args=(server, token, done))
    page.start()
    try:
        while True:
            poll = server.api("poll_run", token, run_id, False, 2)
            if poll["state"] in ("finished", "stopped", "failed"):
                break
            time.sleep(2.0)
    finally:
        done.set()
        page.join()
    if poll["state"] != "finished":
        raise RuntimeError(f"the app's run ended {poll['state']}: {poll['reason']}")
    return poll["step"] / poll["seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds must be 1..10")
    server = Server(free_port())
    results: dict = {}
    try:
        token = server.api("new_token")
        in_the_app(server, token, {"data": "ring8", "steps": 20})  # the job server's imports, once
        for name, config in RUNS.items():
            cli, app = [], []
            for _ in range(args.rounds):
                cli.append(from_command_line(config))
                app.append(in_the_app(server, token, config))
            results[name] = {
                "command_line_steps_per_s": [round(c, 1) for c in cli],
                "app_steps_per_s": [round(a, 1) for a in app],
                "ratio_median": round(statistics.median(a / c for a, c in zip(app, cli)), 3),
            }
            print(name, json.dumps(results[name]), flush=True)
    finally:
        server.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
