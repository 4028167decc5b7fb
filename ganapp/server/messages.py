"""What a job tells the server: small named messages, in the order a job sends them.

CPython's concurrent.futures.process passes named classes between processes, not bare
tuples (STYLE habit 17); so do we. Every message a job sends is one of these
dataclasses, pickled by multiprocessing between our own processes only (nothing from a
visitor is ever unpickled: visitors' files are safetensors and JSON).

    Started   once, when the trainer exists (config, starting step, history so far)
    Note      a sentence for the page while the job prepares (e.g. a one-off download)
    Log       each history row (losses, D outputs, metrics)
    Samples   the fixed-noise sample picture, PNG bytes drawn in the job
    Curves    the loss curves so far, PNG bytes
    Metrics   quality metrics, a warning, an optional bar chart
    Inside    the views inside the game (D's heatmap, G's push, the techniques' lenses), PNG bytes
    Done      last: 'finished' | 'stopped' | 'failed', a reason, the files written

This module imports neither torch nor gradio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Started:
    config: dict[str, Any]
    step: int
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class Log:
    row: dict[str, float]


@dataclass(frozen=True)
class Samples:
    step: int
    png: bytes


@dataclass(frozen=True)
class Curves:
    step: int
    png: bytes


@dataclass(frozen=True)
class Metrics:
    step: int
    numbers: dict[str, float]
    warning: str | None = None
    png: bytes | None = None  # the bar chart in the language of the page that started the run
    other_png: bytes | None = None  # the same chart in the other language (ganapp.picture_text)


@dataclass(frozen=True)
class Inside:
    """The views inside the game at a sample picture's step (ganapp.render_inside): PNG
    bytes by view name (2-D layers "heatmap", "arrows"; lenses "mbd", "vbn", "ls", "fm",
    "fm_distance") and the numbers shown beside them."""
    step: int
    pictures: dict[str, bytes]
    numbers: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Done:
    state: str  # "finished" | "stopped" | "failed"
    reason: str | None
    files: dict[str, str]
    seconds: float
    warning: str | None = None  # e.g. losses that grew huge although nothing failed


Message = Started | Note | Log | Samples | Curves | Metrics | Inside | Done
