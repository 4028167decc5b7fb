"""Bytes of the views inside the game per picture step: what the time-lapse keeps
(ganapp/web/timelapse.py states the worst case from these and its bounds).

Trains a few short runs (one torch thread) and prints, at each picture, the size of the
sample picture and of each view the job draws (PNG bytes), and their sum:

    nice -n 10 python scripts/views_bytes.py            # 300 steps, a picture every 100
    nice -n 10 python scripts/views_bytes.py --steps 1000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ganapp import render  # noqa: E402
from ganapp.config import GANConfig  # noqa: E402
from ganapp.render_inside import InsideViews  # noqa: E402
from ganapp.runfiles import samples_picture  # noqa: E402
from ganapp.training import Trainer  # noqa: E402

ALL_LENSES = {"minibatch_discrimination": True, "virtual_batch_norm": True, "label_smoothing": 0.9,
              "feature_matching": True}
RUNS = {"ring8, every lens": {"data": "ring8", **ALL_LENSES},
        "ring8, vanilla (heatmap and arrows)": {"data": "ring8"},
        "digits, every lens": {"data": "digits", **ALL_LENSES}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for title, settings in RUNS.items():
        trainer = Trainer(GANConfig.from_dict({**settings, "steps": args.steps, "sample_every": args.every,
                                               "metrics_every": 0}))
        views = InsideViews(trainer)
        totals = []

        def on_samples(step, samples, trainer=trainer, views=views, totals=totals):
            pictures, _ = views.draw(step, samples)
            picture = render.png_bytes(samples_picture(trainer.dataset, samples))
            totals.append(sum(map(len, pictures.values())))
            sizes = ", ".join(f"{name} {len(png) / 1000:.1f}" for name, png in pictures.items())
            print(f"  step {step:5d}: picture {len(picture) / 1000:.1f} KB; views {totals[-1] / 1000:.1f} KB ({sizes})")

        print(title)
        trainer.train(on_samples=on_samples)
        print(f"  views per step: {min(totals) / 1000:.1f}-{max(totals) / 1000:.1f} KB; 200 steps: "
              f"{200 * min(totals) / 1e6:.1f}-{200 * max(totals) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
