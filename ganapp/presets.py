"""Named starting points for the app's preset menu: a few settings each, the rest default.

Each preset is a partial GANConfig as a plain dict; `preset_config` fills in the defaults
and validates, so a wrong preset fails loudly in the tests rather than in a classroom.
Pairs that differ in one technique share the data set, seed and steps, so their runs
can be compared side by side.
"""

from __future__ import annotations

from typing import Any

from .config import GANConfig

PRESETS: dict[str, dict[str, Any]] = {
    "ring8: vanilla": {"data": "ring8", "steps": 2000, "seed": 0},
    "ring8: minibatch discrimination": {"data": "ring8", "steps": 2000, "seed": 0,
                                        "minibatch_discrimination": True},
    "ring8: label smoothing 0.9": {"data": "ring8", "steps": 2000, "seed": 0, "label_smoothing": 0.9},
    "ring8: feature matching": {"data": "ring8", "steps": 2000, "seed": 0, "feature_matching": True},
    "digits: vanilla": {"data": "digits", "steps": 600, "seed": 0, "sample_every": 50},
    "digits: minibatch discrimination": {"data": "digits", "steps": 600, "seed": 0, "sample_every": 50,
                                         "minibatch_discrimination": True},
}


def preset_config(name: str) -> GANConfig:
    """The full, validated config of preset `name`; KeyError names the known presets."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return GANConfig.from_dict(dict(PRESETS[name]))
