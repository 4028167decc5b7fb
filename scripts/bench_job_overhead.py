"""What the app's job wrapper costs training, without the server (a benchmark).

Alternates `Trainer.train` with `ganapp.worker.run` (what an app job runs in its process:
log rows sent on, sample pictures and loss curves drawn) on the same config in this one
process, one torch thread, metrics off, and prints each round's ratio of training steps
per second (worker / trainer) and their median. A ratio near 1 means the app's gap to
the command line (scripts/bench_app_throughput.py) comes from sharing the cores.

    python scripts/bench_job_overhead.py [--rounds 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganapp import worker  # noqa: E402
from ganapp.config import GANConfig  # noqa: E402
from ganapp.training import Trainer  # noqa: E402


def trainer_speed(config: GANConfig) -> float:
    trainer = Trainer(config)
    trainer.train()
    return config.steps / trainer.seconds


def job_speed(config: GANConfig) -> float:
    messages = []
    with tempfile.TemporaryDirectory() as out_dir:
        worker.run({"kind": "train", "config": config.to_dict(), "out_dir": out_dir}, messages.append, lambda: False)
    _, state, reason, _, seconds = next(m for m in messages if m[0] == "done")
    if state != "finished":
        raise SystemExit(f"the job ended {state}: {reason}")
    return config.steps / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for data, steps in (("ring8", 2000), ("digits", 400)):
        config = GANConfig(data=data, steps=steps, metrics_every=0)
        ratios = [job_speed(config) / trainer_speed(config) for _ in range(args.rounds)]
        print(f"{data}: rounds {', '.join(f'{r:.3f}' for r in ratios)}")
        print(f"{data}: ratio {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
