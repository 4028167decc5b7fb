"""Soak benchmark: many runs started and ended through the API; the server must stay flat.

    python scripts/soak.py [--runs 300] [--json soak.json]

Starts `python app.py` on loopback (GANAPP_RUNS_DIR in a temporary folder, so run
records are written too), then, through the app's named API, starts short runs (ring8,
20 steps) from a few visitors, a few at a time, and waits for each to end; a quarter
of them are stopped early. It reads the server's open descriptors, threads and
resident memory (/proc) after a warm-up of 20 runs, half way and at the end. Memory
first grows while Gradio fills its store of session states (every API call is a session
of its own; the app keeps 1,000), then stays flat: the second half's change is the figure. Bounded: --runs at most 1,000, and the whole soak at most
--max-minutes. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import Server, free_port  # noqa: E402  (the same server start and API calls)

RUN = {"data": "ring8", "steps": 20, "batch_size": 32, "hidden_dim": 32, "log_every": 5, "sample_every": 10,
       "metrics_every": 0}


def server_figures(pid: int) -> dict:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"descriptors": len(os.listdir(f"/proc/{pid}/fd")), "threads": int(status["Threads"]),
            "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 1)}


def one_run(server: Server, token: str, index: int, deadline: float) -> str:
    run = server.api("start_run", token, {**RUN, "seed": index % 1000}, f"soak {index}")
    stop_early = index % 4 == 3
    while time.monotonic() < deadline:
        state = server.api("poll_run", token, run["run_id"], False, 1)
        if state["state"] in ("finished", "stopped", "failed", "interrupted"):
            return state["state"]
        if stop_early and state["state"] == "running":
            server.api("stop_run", token, run["run_id"])
            stop_early = False
        time.sleep(0.05)
    return "timed out"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--visitors", type=int, default=4)
    parser.add_argument("--max-minutes", type=float, default=20.0)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if not (20 < args.runs <= 1000 and 1 <= args.visitors <= 8 and 0 < args.max_minutes <= 60):
        parser.error("--runs must be 21..1000, --visitors 1..8, --max-minutes at most 60")
    runs_dir = tempfile.mkdtemp(prefix="ganapp-soak-")
    os.environ.update(GANAPP_RUNS_DIR=runs_dir, GANAPP_MAX_WAITING_PER_VISITOR="8")
    server = Server(free_port())
    deadline = time.monotonic() + 60 * args.max_minutes
    states: dict[str, int] = {}
    try:
        tokens = [server.api("new_token") for _ in range(args.visitors)]

        def batch(indices):
            with ThreadPoolExecutor(max_workers=args.visitors) as pool:
                for state in pool.map(lambda i: one_run(server, tokens[i % len(tokens)], i, deadline), indices):
                    states[state] = states.get(state, 0) + 1

        started = time.monotonic()
        batch(range(20))  # warm-up: the forkserver, Gradio's caches, the first records
        before = server_figures(server.process.pid)
        batch(range(20, args.runs // 2))
        middle = server_figures(server.process.pid)
        batch(range(args.runs // 2, args.runs))
        after = server_figures(server.process.pid)
        seconds = time.monotonic() - started
    finally:
        server.stop()
    result = {"runs": args.runs, "seconds": round(seconds, 1), "states": states, "after_warm_up": before,
              "half_way": middle, "at_end": after,
              "change_second_half": {k: round(after[k] - middle[k], 1) for k in before}}
    print(f"{args.runs} runs in {seconds:.0f} s; states {states}")
    print(f"{'':>12} {'after 20':>10} {'half way':>10} {'at end':>10} {'2nd half':>9}")
    for key in before:
        print(f"{key:>12} {before[key]:>10} {middle[key]:>10} {after[key]:>10} "
              f"{result['change_second_half'][key]:>9}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if states.get("timed out", 0) == 0 and set(states) <= {"finished", "stopped"} else 1


if __name__ == "__main__":
    sys.exit(main())
