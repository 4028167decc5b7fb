"""Where downloaded data sets live, whether they are there, and whether ganapp may fetch them.

Torch-free on purpose (only os, pathlib and hashlib): the web server asks these questions
before it starts a job, and must not pay for importing torch to do so. The download itself
is in :mod:`ganapp.data`.

The download policy, read from the environment by :func:`downloads_allowed`:

- ``GANAPP_DOWNLOADS=on`` or ``off`` says it outright;
- ``GANAPP_OFFLINE=1`` (or true, yes, on) means off, for a classroom server that must
  never try; it cannot be combined with ``GANAPP_DOWNLOADS=on``;
- with neither set, downloads are allowed, as a person running the command line on a
  laptop expects. A server that wants another rule passes ``allow_downloads`` to
  :func:`ganapp.data.load_dataset` itself instead of relying on this default.
"""

from __future__ import annotations

import os
import pathlib

# The four files of each IDX data set, by split, as (images, labels).
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IDX_MIRRORS = {
    # yann.lecun.com now refuses downloads; torchvision uses this copy.
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    # The address given in the Fashion-MNIST README (zalandoresearch/fashion-mnist).
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
IDX_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
# Sizes of the gzipped files on the mirrors, in bytes: what a download costs.
IDX_BYTES = {
    "mnist": {
        "train-images-idx3-ubyte.gz": 9_912_422,
        "train-labels-idx1-ubyte.gz": 28_881,
        "t10k-images-idx3-ubyte.gz": 1_648_877,
        "t10k-labels-idx1-ubyte.gz": 4_542,
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": 26_421_880,
        "train-labels-idx1-ubyte.gz": 29_515,
        "t10k-images-idx3-ubyte.gz": 4_422_102,
        "t10k-labels-idx1-ubyte.gz": 5_148,
    },
}
DOWNLOADED = tuple(IDX_MIRRORS)  # the sets that come from the network
BUILT_IN = ("ring8", "grid25", "spiral", "drawn", "digits")  # generated (drawn: from its drawing), or shipped

_ON = ("1", "true", "yes", "on")
_OFF = ("", "0", "false", "no", "off")


class DataError(Exception):
    """A data set cannot be loaded; the message says what to do about it."""


def data_cache_dir() -> pathlib.Path:
    """Where downloaded data sets live: $GANAPP_DATA_DIR if set, else ~/.cache/ganapp."""
    configured = os.environ.get("GANAPP_DATA_DIR", "").strip()
    if configured:
        return pathlib.Path(configured).expanduser()
    return pathlib.Path.home() / ".cache" / "ganapp"


def downloads_allowed() -> bool:
    """May ganapp download a missing data set? Read from GANAPP_DOWNLOADS and
    GANAPP_OFFLINE (see the module docstring); DataError for a value it cannot read."""
    downloads = os.environ.get("GANAPP_DOWNLOADS")
    offline_text = os.environ.get("GANAPP_OFFLINE", "")
    if offline_text.strip().lower() not in _ON + _OFF:
        raise DataError(f"GANAPP_OFFLINE must be 1 or 0 (or unset); got {offline_text!r}")
    offline = offline_text.strip().lower() in _ON
    if downloads is None or not downloads.strip():
        return not offline
    choice = downloads.strip().lower()
    if choice not in ("on", "off"):
        raise DataError(f"GANAPP_DOWNLOADS must be on or off; got {downloads!r}")
    if choice == "on" and offline:
        raise DataError("GANAPP_DOWNLOADS=on contradicts GANAPP_OFFLINE; unset one of them")
    return choice == "on"


def _files(name: str) -> tuple[str, ...]:
    if name not in DOWNLOADED + BUILT_IN:
        raise DataError(f"unknown data set {name!r}; choose one of: {', '.join(BUILT_IN + DOWNLOADED)}")
    return () if name in BUILT_IN else IDX_FILES["train"] + IDX_FILES["test"]


def missing_files(name: str, cache_dir: str | os.PathLike | None = None) -> list[str]:
    """The files of data set ``name`` not yet in ``<cache_dir>/<name>/`` (none for built-in sets)."""
    files = _files(name)
    if not files:
        return []
    folder = (pathlib.Path(cache_dir) if cache_dir is not None else data_cache_dir()) / name
    return [f for f in files if not (folder / f).is_file()]


def cached(name: str, cache_dir: str | os.PathLike | None = None) -> bool:
    """True when data set ``name`` can be loaded without a download: its files are in the
    cache (they are checked in full when loaded), or it is generated or shipped."""
    return not missing_files(name, cache_dir)


def download_size(name: str, cache_dir: str | os.PathLike | None = None) -> int:
    """About how many bytes loading ``name`` would download; 0 when nothing is missing."""
    return sum(IDX_BYTES[name][f] for f in missing_files(name, cache_dir))


def describe_size(size: int) -> str:
    """'11 MB', '31 MB', '29 kB': how a person says a download's size."""
    if size >= 1_000_000:
        return f"{size / 1_000_000:.0f} MB"
    return f"{max(size, 1) / 1000:.0f} kB"
