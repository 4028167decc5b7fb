"""Checkpoints: one self-describing safetensors file, written atomically, loaded without code.

The file holds every tensor of the run state (weights, optimizer moments, historical
averages, VBN's reference noise, random-generator states) and, in its JSON metadata,
the config, the step, the training seconds and the loss history. Loading parses the
safetensors header ourselves first, so a pickle, a truncated file or a foreign file is
refused with a plain message before any tensor library sees it; nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .config import ConfigError, GANConfig

FORMAT = "ganapp-checkpoint"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors library's own limit
MAX_CHECKPOINT_BYTES = 2 * 1024**3


class CheckpointError(ValueError):
    """The file is not a ganapp checkpoint we can use; the message says why."""


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


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The checked safetensors header of `path`, read as bytes and JSON only."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as stream:
            prefix = stream.read(8)
            if len(prefix) < 8:
                raise CheckpointError(f"{path.name} is not a ganapp checkpoint: it is empty or truncated")
            (header_size,) = struct.unpack("<Q", prefix)
            if size > MAX_CHECKPOINT_BYTES:
                raise CheckpointError(f"{path.name} is too large for a ganapp checkpoint ({size:,} bytes)")
            if header_size > MAX_HEADER_BYTES or 8 + header_size > size:
                raise CheckpointError(_not_safetensors(path, prefix))
            raw = stream.read(header_size)
    except OSError as error:
        raise CheckpointError(f"cannot read the checkpoint {path}: {error.strerror or error}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(_not_safetensors(path, prefix)) from None
    if not isinstance(header, dict):
        raise CheckpointError(_not_safetensors(path, prefix))
    data_end = 8 + header_size
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise CheckpointError(f"{path.name} has a damaged header (tensor {name!r})")
        if data_end + offsets[1] > size:
            raise CheckpointError(f"{path.name} is truncated: tensor {name!r} runs past the end of the file")
    return header


def _not_safetensors(path: Path, prefix: bytes) -> str:
    if prefix[:1] == b"\x80" or prefix[:2] == b"PK":
        kind = "a pickle/torch.save file"
    else:
        kind = "not a safetensors file"
    return (f"{path.name} is not a ganapp checkpoint ({kind}); ganapp only loads .safetensors checkpoints "
            "that it wrote, and never unpickles files")


# Checkpoints written before `minibatch_reduction` existed summed the minibatch features:
# a default that changed later must not reinterpret their weights. (Without minibatch
# discrimination the setting touches no weight, and today's default applies.)
OLD_MINIBATCH_REDUCTION = "sum"


def load_checkpoint(path: str | os.PathLike) -> tuple[GANConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """(config, tensors on the CPU, metadata) of a checkpoint; CheckpointError when unusable."""
    path = Path(path)
    header = read_header(path)
    raw_meta = (header.get("__metadata__") or {}).get("ganapp")
    if raw_meta is None:
        raise CheckpointError(f"{path.name} is a safetensors file but not a ganapp checkpoint (no ganapp metadata)")
    try:
        meta = json.loads(raw_meta)
    except json.JSONDecodeError:
        raise CheckpointError(f"{path.name} has damaged ganapp metadata") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a ganapp checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path.name} has checkpoint format version {meta.get('format_version')}; "
                              f"this ganapp reads version {FORMAT_VERSION}")
    values = meta.get("config")
    if isinstance(values, dict) and values.get("minibatch_discrimination") and "minibatch_reduction" not in values:
        values = {**values, "minibatch_reduction": OLD_MINIBATCH_REDUCTION}
    try:
        config = GANConfig.from_dict(values)
    except (ConfigError, TypeError) as error:
        raise CheckpointError(f"{path.name} has an invalid config: {error}") from None
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as error:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{path.name} is damaged: {error}") from None
    return config, tensors, meta


def trainer_from_checkpoint(path: str | os.PathLike, *, steps: int | None = None, device=None):
    """Rebuild a Trainer from a checkpoint, ready to continue (optionally to more steps)."""
    from .training import Trainer  # the trainer imports nothing from here; keep it that way

    config, tensors, meta = load_checkpoint(path)
    if steps is not None:
        config = config.replace(steps=steps)
    trainer = Trainer(config, device=device)
    try:
        trainer.load_state_tensors(tensors)
    except (ValueError, KeyError, RuntimeError) as error:
        raise CheckpointError(f"{Path(path).name} does not fit: {error}") from None
    trainer.step = int(meta.get("step", 0))
    trainer.seconds = float(meta.get("seconds", 0.0))
    trainer.history = list(meta.get("history", []))
    return trainer
