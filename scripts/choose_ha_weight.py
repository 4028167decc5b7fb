"""Measure the historical-averaging weight on the toy sets (the default is chosen from this).

techniques.md leaves the weight to us: "its default is chosen by measurement on the toy
sets and written down with the figure that chose it". This runs vanilla and uniform HA at
several weights on ring8 and grid25 over a few seeds, in processes, and prints the final
mode metrics as mean ± std. Usage:

    python scripts/choose_ha_weight.py --seeds 3 --steps 2000 --weights 0.001 0.01 0.1 1
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganapp.config import GANConfig  # noqa: E402
from ganapp.sweep import _init_worker, run_one  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["ring8", "grid25"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.001, 0.01, 0.1, 1.0])
    parser.add_argument("--mode", default="uniform", choices=["uniform", "exponential"])
    args = parser.parse_args()
    tasks = []
    for data in args.data:
        for seed in range(args.seeds):
            variants = [("vanilla", {})] + [(f"HA {w:g}", {"historical_averaging": args.mode,
                                                            "historical_averaging_weight": w}) for w in args.weights]
            for name, fields in variants:
                config = GANConfig(data=data, seed=seed, steps=args.steps, metrics_every=args.steps, **fields)
                tasks.append((f"{data} {name}", seed, config.to_dict()))
    with mp.get_context("spawn").Pool(os.cpu_count() or 1, initializer=_init_worker) as pool:
        results = pool.map(run_one, tasks, chunksize=1)
    by_name: dict[str, list[dict]] = {}
    for result in results:
        by_name.setdefault(result["variant"], []).append(result)
    print(f"| run ({args.seeds} seeds, {args.steps} steps) | modes covered | high-quality % | mode KL | diverged |")
    print("|---|---|---|---|---|")
    for name, rows in by_name.items():
        cells = []
        for key in ("modes_covered", "high_quality", "mode_kl"):
            values = np.array([r["metrics"][key] for r in rows if r["metrics"]])
            cells.append(f"{values.mean():.2f} ± {values.std():.2f}" if len(values) else "–")
        diverged = sum(r["status"] != "finished" for r in rows)
        print(f"| {name} | {' | '.join(cells)} | {diverged} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
