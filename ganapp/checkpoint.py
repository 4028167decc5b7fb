"""Checkpoints: one self-describing safetensors file, written atomically, loaded without code.

The file holds every tensor of the run state (weights, optimizer moments, historical
averages, VBN's reference noise, random-generator states) and, in its JSON metadata,
the config, the step, the training seconds and the loss history. Loading parses the
safetensors header ourselves first, so a pickle, a truncated file or a foreign file is
refused with a plain message before any tensor library sees it; nothing is unpickled.
That reading and checking lives in checkpoint_format, which imports no torch, so the web
server can check an upload's config before any job builds its model.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .checkpoint_format import (FORMAT, FORMAT_VERSION, MAX_CHECKPOINT_BYTES, MAX_HEADER_BYTES,
                                OLD_MINIBATCH_REDUCTION, CheckpointError, display_name, read_checkpoint_info,
                                read_header)
from .config import ConfigError, GANConfig, short_repr

# Re-exported from checkpoint_format, where they moved, so that existing imports keep working.
__all__ = ["CheckpointError", "FORMAT", "FORMAT_VERSION", "MAX_CHECKPOINT_BYTES", "MAX_HEADER_BYTES",
           "OLD_MINIBATCH_REDUCTION", "load_checkpoint", "read_checkpoint_info", "read_header", "save_checkpoint",
           "trainer_from_checkpoint"]


def save_checkpoint(trainer, path: str | os.PathLike) -> Path:
    """Write the trainer's whole state to `path` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in trainer.state_tensors().items()}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": trainer.config.to_dict(),
        "step": trainer.step,
        "seconds": trainer.seconds,
        "history": trainer.history,
    }
    metadata = {"ganapp": json.dumps(meta)}
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata=metadata)
        os.chmod(temporary, 0o644)  # mkstemp makes files private
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[GANConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """(config, tensors on the CPU, metadata) of a checkpoint; CheckpointError when unusable."""
    config, meta = read_checkpoint_info(path)
    return config, _load_tensors(Path(path)), meta


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint whose header read_checkpoint_info has checked."""
    try:
        return load_file(str(path), device="cpu")
    except Exception as error:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{display_name(path)} is damaged: {short_repr(str(error), 200, quote=False)}") from None


def trainer_from_checkpoint(path: str | os.PathLike, *, steps: int | None = None, device=None,
                            check: Callable[[GANConfig], None] | None = None):
    """Rebuild a Trainer from a checkpoint, ready to continue (optionally to `steps` in total).

    `check`, when given, is called with the final config (with `steps` applied) after the
    header and metadata have been checked and before any tensor is read or model built,
    so that a caller can refuse a checkpoint too large for it by raising.
    """
    from .training import Trainer  # the trainer imports nothing from here; keep it that way

    config, meta = read_checkpoint_info(path)
    if steps is not None:
        config = config.replace(steps=steps)
        if config.steps < meta["step"]:
            raise ConfigError(f"the checkpoint is at step {meta['step']:,}; to continue it, steps must be at "
                              f"least that; got {config.steps:,}")
    if check is not None:
        check(config)
    tensors = _load_tensors(Path(path))
    trainer = Trainer(config, device=device)
    try:
        trainer.load_state_tensors(tensors)
    except (ValueError, KeyError, RuntimeError) as error:
        raise CheckpointError(f"{display_name(Path(path))} does not fit: "
                              f"{short_repr(str(error), 300, quote=False)}") from None
    trainer.step = meta["step"]
    trainer.seconds = meta["seconds"]
    trainer.history = meta["history"]
    return trainer
