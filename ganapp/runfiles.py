"""What a run leaves on disk and shows: config.json, metrics.csv, samples.png, the checkpoint.

Shared by the command line and the app's job workers, so both write the same files.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

import numpy as np

from . import render
from .checkpoint import save_checkpoint
from .data import Dataset
from .training import HISTORY_COLUMNS, Trainer

CHECKPOINT_NAME = "checkpoint.safetensors"
REAL_POINTS_SHOWN = 1000


def plot_limits(dataset: Dataset) -> tuple[float, float, float, float]:
    """Fixed limits for a 2-D set (the real data plus a margin), so frames do not jump."""
    data = dataset.data.cpu().numpy()
    low, high = data.min(axis=0), data.max(axis=0)
    margin = 0.15 * float((high - low).max())
    return (float(low[0] - margin), float(high[0] + margin), float(low[1] - margin), float(high[1] + margin))


def samples_picture(dataset: Dataset, samples: np.ndarray, lang: str = "en") -> np.ndarray:
    """RGB uint8 picture of generated samples: an image grid, or real and generated points
    (with a legend in `lang`)."""
    if dataset.is_image:
        return render.image_grid(samples)
    real = dataset.data[:REAL_POINTS_SHOWN].cpu().numpy()
    modes = dataset.modes.cpu().numpy() if dataset.modes is not None else None
    return render.scatter_2d(real, samples, limits=plot_limits(dataset), modes=modes, lang=lang)


def metrics_csv(history: list[dict[str, float]]) -> str:
    """The history as CSV text: the fixed loss columns first, then any metric columns."""
    extra = sorted({key for row in history for key in row} - set(HISTORY_COLUMNS))
    columns = list(HISTORY_COLUMNS) + extra
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else repr(row[k]) if isinstance(row.get(k), float) else row[k])
                         for k in columns})
    return buffer.getvalue()


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically (temporary file in the same folder, then rename)."""
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)  # mkstemp makes files private; run files are for sharing
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_run(trainer: Trainer, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write config.json, metrics.csv, samples.png and checkpoint.safetensors into out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "config": out / "config.json",
        "metrics": out / "metrics.csv",
        "samples": out / "samples.png",
        "checkpoint": out / CHECKPOINT_NAME,
    }
    write_text(paths["config"], trainer.config.to_json() + "\n")
    write_text(paths["metrics"], metrics_csv(trainer.history))
    render.save_png(samples_picture(trainer.dataset, trainer.fixed_samples()), paths["samples"])
    save_checkpoint(trainer, paths["checkpoint"])
    return paths
