"""Train the minibatch-discrimination runs behind the figures that no other script prints.

After a change to minibatch discrimination's numbers (docs/results.md, section 7), the
README's sweeps, `scripts/check_presets.py`, `scripts/check_lens_presets.py` and the
ready-made runs' `train` commands remake most figures. This script trains the rest, in
worker processes with one torch thread each, and prints each group's final metrics (mean ±
std over seeds, ddof=1, and every seed's value, with D(fake) at the last step):

- the minibatch presets on the seeds their notes quote (0-2, the collapse pair's 0-4, and
  held-out 5-14), and "digits: minibatch discrimination" with the paper's sum;
- the class's pair at 1,000 steps (the README's class picture, seeds 0-3);
- when the cure shows: the collapse pair's minibatch run with metrics every 250 steps, modes
  at each (seeds 0-4);
- the collapse probe of docs/results.md section 5 at learning rates 1e-4 (seeds 0-2);
- the sum against the mean: the sweep's MBD, "all five" and "our methods" rows with
  `minibatch_reduction=sum` on ring8, grid25 and digits (600 steps), seeds 0-2.

    nice -n 10 python scripts/remake_minibatch_figures.py --out minibatch.json   # 74 runs, ~13 min on 2 cores
    python scripts/remake_minibatch_figures.py --only probe                      # one group
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganapp.config import GANConfig  # noqa: E402
from ganapp.presets import preset_config  # noqa: E402
from ganapp.sweep import VARIANTS  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_presets import run_tasks  # noqa: E402

COLLAPSE = "ring8, G without batch norm: minibatch discrimination"
METRICS = ("modes_covered", "high_quality", "mode_kl", "classifier_score", "frechet_distance", "classes_covered")


def preset_tasks(group: str, name: str, seeds, every: int | None = None, **changes) -> list[tuple]:
    """(group, seed, config dict) for a preset with other seeds (and fields changed)."""
    tasks = []
    for seed in seeds:
        config = preset_config(name)
        config.seed = seed
        for field, value in changes.items():
            setattr(config, field, value)
        config.metrics_every = every or config.steps  # metrics at the last step only, unless asked
        config.validate()
        tasks.append((group, seed, config.to_dict()))
    return tasks


def sum_tasks(data: str, steps: int, variant: str) -> list[tuple]:
    """The sweep's variant with the paper's sum, seeds 0-2, as `python -m ganapp sweep --set` builds it."""
    base = {"metrics_every": steps, "minibatch_reduction": "sum", "data": data, "steps": steps}
    return [(f"sum: {data} {steps} steps, {variant}", seed,
             GANConfig.from_dict({**base, **VARIANTS[variant], "seed": seed}).to_dict()) for seed in range(3)]


def all_tasks() -> list[tuple]:
    tasks = preset_tasks(f"when the cure shows: {COLLAPSE}, metrics every 250", COLLAPSE, range(5), every=250)
    tasks += preset_tasks(f"held-out: {COLLAPSE}", COLLAPSE, range(5, 15))
    tasks += preset_tasks("digits: minibatch discrimination", "digits: minibatch discrimination", range(3))
    tasks += preset_tasks("held-out: digits: minibatch discrimination", "digits: minibatch discrimination",
                          range(5, 15))
    tasks += preset_tasks("digits: minibatch discrimination, summed", "digits: minibatch discrimination", range(3),
                          minibatch_reduction="sum")
    for name in ("ring8: minibatch discrimination", "ring8: minibatch discrimination, summed (the paper's formula)",
                 "ring8: the paper's methods (MBD + LS + VBN)"):
        tasks += preset_tasks(name, name, range(3))
    tasks += preset_tasks(f"the class's pair at 1,000 steps: {COLLAPSE}", COLLAPSE, range(4), steps=1000)
    tasks += preset_tasks(f"probe at learning rates 1e-4: {COLLAPSE}", COLLAPSE, range(3), lr_generator=1e-4,
                          lr_discriminator=1e-4)
    for data, steps in (("ring8", 2000), ("grid25", 2000), ("digits", 600)):
        for variant in ("MBD", "all five", "our methods"):
            tasks += sum_tasks(data, steps, variant)
    return tasks


def train_one(task: tuple) -> dict:
    """Train one config; keep its metric rows (every evaluation) and D(fake) at the last step."""
    from ganapp.metrics import evaluator_for
    from ganapp.training import HISTORY_COLUMNS, Trainer, TrainingDiverged

    group, seed, config_dict = task
    started = time.perf_counter()
    trainer = Trainer(GANConfig.from_dict(config_dict))
    try:
        status = trainer.train(evaluate=evaluator_for(trainer))
    except TrainingDiverged:
        status = "diverged"
    rows = [{k: v for k, v in row.items() if k == "step" or k not in HISTORY_COLUMNS}
            for row in trainer.history if set(row) - set(HISTORY_COLUMNS)]
    return {"group": group, "seed": seed, "status": status, "metrics": rows,
            "d_fake": trainer.history[-1]["d_fake"] if trainer.history else None,
            "seconds": round(time.perf_counter() - started, 3)}


def report(results: list[dict]) -> None:
    for group in dict.fromkeys(r["group"] for r in results):
        rows = sorted((r for r in results if r["group"] == group), key=lambda r: r["seed"])
        print(f"\n{group}  (seeds {', '.join(str(r['seed']) for r in rows)}; "
              f"{np.mean([r['seconds'] for r in rows]):.0f} s a run)")
        for metric in METRICS:
            values = np.array([r["metrics"][-1].get(metric, np.nan) if r["metrics"] else np.nan for r in rows])
            if np.isnan(values).all():
                continue
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            print(f"  {metric:18s} {np.nanmean(values):.4g} ± {spread:.3g}   seeds: "
                  + ", ".join(f"{v:.4g}" for v in values))
        print("  D(fake) at the end   " + ", ".join(f"{r['d_fake']:.4g}" for r in rows if r["d_fake"] is not None))
        if any(len(r["metrics"]) > 1 for r in rows):
            for r in rows:
                print(f"  seed {r['seed']}: modes at steps " + ", ".join(
                    f"{m['step']}: {m.get('modes_covered', '-')}" for m in r["metrics"]))
        failed = [r["seed"] for r in rows if r["status"] != "finished"]
        if failed:
            print(f"  did not finish: seeds {failed}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], help="only groups whose name contains this text")
    parser.add_argument("--out", type=Path, default=None, help="write every run's result here (JSON)")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0: one per core)")
    args = parser.parse_args()
    tasks = [t for t in all_tasks() if not args.only or any(part in t[0] for part in args.only)]
    if not tasks:
        parser.error(f"no group's name contains {args.only!r}")
    results = run_tasks(train_one, tasks, args)  # worker pool, wall time, --out: as check_presets.py
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
