"""What the views inside the game cost training, at the default picture rate.

Runs the real job body (ganapp.worker.run, as a job process does: one torch thread, pictures
every sample_every steps but at most every 0.5 s) on the same config with the views on and
off (spec "inside": False), alternating, and prints the training throughput of each and
their ratio. Training time is the trainer's own (it includes drawing the pictures, not the
start-up). A ratio of 0.95 means the views cost 5% of training throughput.

    python scripts/bench_inside.py                      # the default set of configs, 3 rounds
    python scripts/bench_inside.py --rounds 5 --steps 3000

On a shared machine run it niced and read the spread between rounds, not one figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from ganapp import worker  # noqa: E402
from ganapp.render_inside import InsideViews  # noqa: E402
from ganapp.training import Trainer  # noqa: E402
from ganapp.config import GANConfig  # noqa: E402
from ganapp.server.messages import Done, Inside, Samples  # noqa: E402

CONFIGS = {
    "ring8 vanilla": dict(data="ring8"),
    "ring8 MBD": dict(data="ring8", minibatch_discrimination=True),
    "ring8 FM+MBD+LS+VBN": dict(data="ring8", feature_matching=True, minibatch_discrimination=True,
                                label_smoothing=0.9, virtual_batch_norm=True),
    "grid25 vanilla": dict(data="grid25"),
    "digits MBD+LS": dict(data="digits", minibatch_discrimination=True, label_smoothing=0.9),
}


def one_run(config: GANConfig, inside: bool) -> tuple[float, int, int]:
    """(steps per second of training time, sample pictures, inside messages) of one job."""
    messages = []
    with tempfile.TemporaryDirectory() as folder:
        spec = {"kind": "train", "config": config.to_dict(), "out_dir": folder, "inside": inside}
        worker.run(spec, messages.append, lambda: False)
    done = next(m for m in messages if isinstance(m, Done))
    if done.state != "finished":
        raise RuntimeError(f"the run ended {done.state}: {done.reason}")
    pictures = sum(isinstance(m, Samples) for m in messages)
    views = sum(isinstance(m, Inside) for m in messages)
    return config.steps / done.seconds, pictures, views


def direct_cost(config: GANConfig, rounds: int = 5) -> tuple[float, float, float]:
    """(ms per views drawing, ms per training step, the views' share of training time at the
    default picture rate), timed alternately in this process. The worker draws a picture every
    sample_every steps but at most every MIN_PICTURE_INTERVAL_S, and at least every
    PICTURE_INTERVAL_S: the interval is clamp(sample_every x step time, 0.5 s, 1 s). Load slows
    the drawing and the steps alike, so this share is steadier than the throughput ratio."""
    trainer = Trainer(config)
    for _ in range(20):
        trainer.train_step()
    views = InsideViews(trainer)
    samples = trainer.fixed_samples()
    views.draw(0, samples)
    draws, steps = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        views.draw(0, samples)
        draws.append(time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(20):
            trainer.train_step()
        steps.append((time.perf_counter() - started) / 20)
    draw, step = statistics.median(draws), statistics.median(steps)
    interval = min(max(config.sample_every * step, worker.MIN_PICTURE_INTERVAL_S), worker.PICTURE_INTERVAL_S)
    return draw * 1000, step * 1000, draw / interval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000, help="steps per run (digits runs use a quarter)")
    parser.add_argument("--only", default="", help="run only configs whose name contains this")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as a job process
    print(f"{'config':24} {'off steps/s':>12} {'on steps/s':>11} {'ratio on/off':>13} {'cost':>6}  "
          "pictures (views)   rounds' ratios      | views ms  step ms  share at the default rate")
    for name, overrides in CONFIGS.items():
        if args.only and args.only not in name:
            continue
        steps = args.steps // 4 if overrides["data"] == "digits" else args.steps
        config = GANConfig(steps=steps, metrics_every=0, **overrides)
        one_run(config.replace(steps=min(steps, 50)), True)  # warm up (imports, first allocations)
        off, on, ratios, counts = [], [], [], (0, 0)
        for round_ in range(args.rounds):
            order = (False, True) if round_ % 2 == 0 else (True, False)
            speeds = {}
            for inside in order:
                speed, pictures, views = one_run(config, inside)
                speeds[inside] = speed
                if inside:
                    counts = (pictures, views)
            off.append(speeds[False])
            on.append(speeds[True])
            ratios.append(speeds[True] / speeds[False])
        ratio = statistics.median(ratios)
        draw_ms, step_ms, share = direct_cost(config)
        print(f"{name:24} {statistics.median(off):12.0f} {statistics.median(on):11.0f} {ratio:13.3f} "
              f"{(1 - ratio) * 100:5.1f}%  {counts[0]:4d} ({counts[1]:4d})        "
              + " ".join(f"{r:.3f}" for r in ratios) + f"  | {draw_ms:8.1f} {step_ms:8.2f} {share * 100:6.1f}%",
              flush=True)
    print(f"(measured {time.strftime('%Y-%m-%d %H:%M')}; load average {open('/proc/loadavg').read().split()[:3]})")


if __name__ == "__main__":
    main()
