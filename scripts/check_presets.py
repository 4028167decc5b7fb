"""Check the evidence behind the app's presets (ganapp/presets.py, PRESET_NOTES).

Trains every preset (or those whose name contains --only) with seeds 0..N-1 instead of
its own seed, in worker processes with one torch thread each, and prints each preset's
final metrics seed by seed and as mean ± std (ddof=1, as the sweep), with the seconds
a run took. A note's numbers should be what this prints. Usage:

    python scripts/check_presets.py --seeds 3                 # every preset
    python scripts/check_presets.py --seeds 3 --only digits   # the digits presets

Held-out seeds (seeds that were not used to choose a preset): `--first-seed 5 --seeds 10`
trains seeds 5..14; `--only` may be given more than once; `--out FILE.json` keeps every
run's result.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganapp.presets import PRESETS, preset_config  # noqa: E402
from ganapp.sweep import METRIC_ORDER, METRIC_TITLES, _init_worker, run_one  # noqa: E402


def run_tasks(function, tasks: list, args) -> list:
    """`function` over `tasks` in spawned worker processes with one torch thread each
    (args.workers, 0: one per core); prints the wall time and keeps the results in
    args.out when given. Shared with scripts/check_lens_presets.py."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(args.workers or cores, len(tasks))
    started = time.perf_counter()
    with mp.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
        results = pool.map(function, tasks, chunksize=1)
    seeds = (f", seeds {args.first_seed}..{args.first_seed + args.seeds - 1}" if hasattr(args, "seeds") else "")
    print(f"{len(tasks)} runs, {workers} workers, wall time {time.perf_counter() - started:.0f} s{seeds}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--only", action="append", default=[],
                        help="only presets whose name contains this text (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="write every run's result here (JSON)")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0: one per core)")
    args = parser.parse_args()
    names = [name for name in PRESETS if not args.only or any(part in name for part in args.only)]
    if not names:
        parser.error(f"no preset name contains {args.only!r}")
    tasks = []
    for name in names:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            config = preset_config(name)
            config.seed, config.metrics_every = seed, config.steps  # metrics at the last step only
            config.validate()
            tasks.append((name, seed, config.to_dict()))
    results = run_tasks(run_one, tasks, args)
    for name in names:
        rows = sorted((r for r in results if r["variant"] == name), key=lambda r: r["seed"])
        print(f"\n{name}")
        for metric in [m for m in METRIC_ORDER if any(m in r["metrics"] for r in rows)] + ["seconds"]:
            values = np.array([r[metric] if metric == "seconds" else r["metrics"].get(metric, np.nan) for r in rows])
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            print(f"  {METRIC_TITLES.get(metric, metric):18s} {values.mean():8.3g} ± {spread:<8.3g} "
                  f"[{np.nanmin(values):.4g}, {np.nanmax(values):.4g}] seeds: "
                  + ", ".join(f"{v:.4g}" for v in values))
        diverged = [r["seed"] for r in rows if r["status"] != "finished"]
        if diverged:
            print(f"  did not finish: seeds {diverged}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
