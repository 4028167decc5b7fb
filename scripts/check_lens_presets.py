"""Check the claims of the presets that use the lenses (ganapp/presets.py, PRESET_VIEWS).

Each lens preset and its vanilla partner is trained on held-out seeds (default 5..14,
none used to choose a preset), in worker processes with one torch thread each, exactly
as a job trains it: at every sample picture the job's own views (ganapp.render_inside.
InsideViews) are drawn and their numbers kept; the quality metrics are measured at the
last step as in scripts/check_presets.py. Printed per preset: the final metrics (mean ±
std over seeds, range) and each lens number at the first pictures and at the last, with
every seed's value, so that a note's sentence can be checked against them. Usage:

    nice -n 10 python scripts/check_lens_presets.py                  # seeds 5..14, CHECK_STEPS
    nice -n 10 python scripts/check_lens_presets.py --full --first-seed 0 --seeds 3 --out lens.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganapp.presets import PRESET_VIEWS, preset_config  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_presets import run_tasks  # noqa: E402

SHOWN_STEPS = (0, 100, 200, 300, 400, 1000)  # and the last step: the pictures a note may point at
# How far each preset is trained by default: a note about the first pictures needs only
# those steps (training is the same up to them whatever the total), one about the end the
# whole run; 0: not trained (the historical averaging preset's claims are the tiny games',
# checked by tests/test_timelapse.py). --full trains every preset and its partner to the end.
CHECK_STEPS = {
    "ring8, G without batch norm: why minibatch discrimination catches a collapse (see inside)": 400,
    "ring8: what virtual batch norm removes (see inside)": 400,
    "ring8: why historical averaging damps an orbit (see inside)": 0,
    "ring8, G without batch norm: label smoothing's target for D (see inside)": None,
}


def train_one(task: tuple[str, int, dict]) -> dict:
    """Train one config as a job does, keeping the lens numbers at each picture step."""
    from ganapp.config import GANConfig
    from ganapp.metrics import evaluator_for
    from ganapp.render_inside import InsideViews
    from ganapp.training import HISTORY_COLUMNS, Trainer, TrainingDiverged

    name, seed, config_dict = task
    started = time.perf_counter()
    trainer = Trainer(GANConfig.from_dict(config_dict))
    views = InsideViews(trainer)
    numbers: dict[int, dict[str, float]] = {}

    def on_samples(step: int, samples: np.ndarray) -> None:
        numbers[int(step)] = views.draw(step, samples)[1]

    try:
        status = trainer.train(on_samples=on_samples,
                               evaluate=evaluator_for(trainer) if trainer.config.metrics_every else None)
    except TrainingDiverged:
        status = "diverged"
    final = next((row for row in reversed(trainer.history) if set(row) - set(HISTORY_COLUMNS)), {})
    last = trainer.history[-1] if trainer.history else {}
    return {"preset": name, "seed": seed, "status": status, "step": trainer.step,
            "metrics": {k: v for k, v in final.items() if k not in HISTORY_COLUMNS and not k.startswith("real_")},
            "d_real": last.get("d_real"), "numbers": {str(k): v for k, v in numbers.items()},
            "seconds": round(time.perf_counter() - started, 1)}


def line(title: str, values: list[float]) -> str:
    array = np.asarray(values, dtype=np.float64)
    spread = array.std(ddof=1) if len(array) > 1 else 0.0
    return (f"  {title:26s} {array.mean():9.4g} ± {spread:<9.3g} [{array.min():.4g}, {array.max():.4g}] seeds: "
            + ", ".join(f"{v:.3g}" for v in array))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=5)
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0: one per core)")
    parser.add_argument("--out", type=Path, default=None, help="write every run's numbers here (JSON)")
    parser.add_argument("--full", action="store_true", help="every preset and its vanilla partner, to the end")
    args = parser.parse_args()
    names = list(PRESET_VIEWS)
    partners = [name.split(":")[0] + ": vanilla" for name in names] if args.full else []
    wanted = [name for name in dict.fromkeys(names + partners) if args.full or CHECK_STEPS.get(name) != 0]
    tasks = []
    for name in wanted:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            config = preset_config(name)
            config.seed = seed
            if not args.full and CHECK_STEPS.get(name):
                config.steps = CHECK_STEPS[name]  # the first pictures only: no metrics
                config.metrics_every = 0
            else:
                config.metrics_every = config.steps  # metrics at the last step only
            config.validate()
            tasks.append((name, seed, config.to_dict()))
    results = run_tasks(train_one, tasks, args)
    for name in wanted:
        rows = sorted((r for r in results if r["preset"] == name), key=lambda r: r["seed"])
        print(f"\n{name}" + (f"   [lenses: {', '.join(PRESET_VIEWS[name]['lenses'])}]" if name in PRESET_VIEWS
                             else ""))
        for metric in ("modes_covered", "high_quality", "mode_kl"):
            values = [r["metrics"].get(metric, np.nan) for r in rows]
            if not all(np.isnan(values)):
                print(line(metric, values))
        print(line("D(real) at the end", [r["d_real"] for r in rows]))
        keys = sorted({k for r in rows for step in r["numbers"].values() for k in step})
        for key in keys:
            for step in (*SHOWN_STEPS, "last"):
                values = []
                for r in rows:
                    at = r["numbers"].get(str(r["step"]) if step == "last" else str(step), {})
                    values.append(at.get(key, np.nan))
                if not all(np.isnan(values)):
                    print(line(f"{key} @ {step}", values))
        for key in keys:  # over every picture of every seed
            values = [v[key] for r in rows for v in r["numbers"].values() if key in v]
            print(f"  {key + ' at any picture':26s} from {min(values):.4g} to {max(values):.4g} "
                  f"({len(values)} pictures)")
        if "mbd_fake" in keys:  # how many pictures the generated batch is the closer one
            for r in rows:
                steps = sorted(int(s) for s in r["numbers"])
                closer = [s for s in steps if r["numbers"][str(s)]["mbd_fake"] > r["numbers"][str(s)]["mbd_real"]]
                print(f"  seed {r['seed']}: generated batch closer than the real one at steps "
                      f"{closer[:12]}{' ...' if len(closer) > 12 else ''} ({len(closer)} of {len(steps)} pictures)")
        print(f"  seconds per run: {np.mean([r['seconds'] for r in rows]):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
