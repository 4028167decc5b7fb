"""Run records on disk: what a restarted server needs to list every run again.

With GANAPP_RUNS_DIR set, each run keeps `run.json` beside its files from the moment it
is queued, rewritten at every change of state. A server that starts on the same folder
lists every visitor's runs again: ended runs as they ended, and runs that were queued,
starting, training or stopping when the server went away (SIGTERM, a crash, kill -9) as
"interrupted", continuable from the checkpoint their job wrote on its way out. Records
are JSON and pictures are bytes: nothing on disk is ever executed or unpickled.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from ..config import ConfigError, GANConfig

RECORD_FORMAT = "ganapp-run-record-1"
RECORD_NAME = "run.json"
DISPLAY_ROWS_CAP = 4000  # history rows kept per run for the page (the CSV file keeps them all)
LOSS_COLUMNS = ("step", "d_loss", "g_loss", "d_real", "d_fake", "seconds")  # training.HISTORY_COLUMNS
RUN_FILES = {"config": "config.json", "metrics": "metrics.csv", "samples": "samples.png",
             "checkpoint": "checkpoint.safetensors"}  # runfiles.write_run's names
OWNER_KEY = re.compile(r"[0-9a-f]{32}")
RUN_ID = re.compile(r"[0-9a-f]{8}")
MAX_RECORD_BYTES = 1024 * 1024


def save(folder: Path, record: dict[str, Any]) -> None:
    """Write run.json atomically; a full disk costs the record, never the server."""
    if not folder.is_dir():
        return
    try:
        temporary = folder / (RECORD_NAME + ".tmp")
        temporary.write_text(json.dumps({"format": RECORD_FORMAT, **record}))
        os.replace(temporary, folder / RECORD_NAME)
    except (OSError, TypeError, ValueError):
        pass


def load(folder: Path) -> dict[str, Any]:
    """A record checked field by field; ValueError for anything damaged or foreign."""
    path = folder / RECORD_NAME
    if path.stat().st_size > MAX_RECORD_BYTES:
        raise ValueError(f"{path} is too large for a run record")
    record = json.loads(path.read_text())
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT or record.get("id") != folder.name:
        raise ValueError(f"{path} is not a run record")
    for key, kinds in (("name", str), ("kind", str), ("state", str), ("step", int), ("seconds", (int, float)),
                       ("created", (int, float)), ("files", dict), ("metrics", dict)):
        if not isinstance(record.get(key), kinds) or isinstance(record.get(key), bool):
            raise ValueError(f"{path}: {key} is damaged")
    if record["kind"] not in ("train", "continue", "view") or record["step"] < 0:
        raise ValueError(f"{path}: damaged")
    for key in ("reason", "warning", "metrics_warning"):
        if record.get(key) is not None and not isinstance(record[key], str):
            raise ValueError(f"{path}: {key} is damaged")
    record["metrics"] = {str(k): float(v) for k, v in record["metrics"].items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    return record


def files_in(folder: Path, names: dict[str, Any] | None = None) -> dict[str, str]:
    """The run's files that exist: those the record names, else runfiles' usual names."""
    names = names if names else RUN_FILES
    return {key: str(folder / name) for key, name in names.items()
            if isinstance(name, str) and "/" not in name and (folder / name).is_file()}


def config_of(folder: Path, record: dict[str, Any]) -> GANConfig | None:
    """The run's config: config.json when the job wrote one, else the one it was queued with."""
    path = folder / "config.json"
    try:
        if path.is_file():
            return GANConfig.from_json(path.read_text())
        if isinstance(record.get("config"), dict):
            return GANConfig.from_dict(record["config"])
    except (ConfigError, TypeError, OSError):
        return None
    return None


def read_history(path: Path) -> list[dict[str, float]]:
    """metrics.csv (ganapp.runfiles.metrics_csv) back into history rows; empty cells: not
    measured at that step. Here rather than beside the writer: runfiles imports torch, which
    the web server never loads."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        rows = [{key: float(value) for key, value in row.items() if key and value not in ("", None)}
                for row in csv.DictReader(handle)]
    rows = [row for row in rows if "step" in row and all(math.isfinite(v) for v in row.values())]
    for row in rows:
        row["step"] = int(row["step"])
    return rows[-DISPLAY_ROWS_CAP:]


def folder_bytes(folder: Path) -> int:
    """Bytes of the files in a run folder (one level of subfolders: the upload copy)."""
    total = 0
    try:
        for entry in folder.rglob("*"):
            try:
                if entry.is_file():
                    total += entry.stat().st_size
            except OSError:
                pass
    except OSError:
        pass
    return total


def run_folders(runs_dir: Path):
    """(owner key, run folder) for every well-named run folder with a record."""
    for path in runs_dir.glob(f"*/*/{RECORD_NAME}"):  # <owner_key>/<run id>/run.json, as the manager names them
        owner, run_id = path.parent.parent.name, path.parent.name
        if OWNER_KEY.fullmatch(owner) and RUN_ID.fullmatch(run_id):
            yield owner, path.parent
