"""Training data: three 2-D toy sets and three image sets.

The 2-D sets make mode collapse visible at a glance:

- ``ring8``: 8 Gaussians on a circle of radius 2, std 0.02, the "2D ring" of
  VEEGAN (Srivastava et al. 2017, section 5.1) and PacGAN (Lin et al. 2018,
  section 5.1), first used by Metz et al. 2017 (Unrolled GANs, section 3.1).
- ``grid25``: 25 Gaussians on the grid {-4, -2, 0, 2, 4}^2, std 0.05, the
  "2D grid" of the same papers.
- ``spiral``: two interleaved spiral arms; one connected curve per arm rather
  than separate modes, so a generator has to bend its output.

The image sets, all 10 classes and one channel, scaled to [-1, 1] to match a
tanh output:

- ``digits``: the 1,797 8x8 UCI handwritten digits (Alpaydin & Kaynak 1998) as
  bundled with scikit-learn, shipped in ``datafiles/digits.npz`` (see its README).
  Small enough to train on a CPU in minutes.
- ``mnist`` (LeCun et al. 1998) and ``fashion-mnist`` (Xiao et al. 2017), 28x28,
  read from the four standard gzip IDX files in the data cache and downloaded
  there once per machine on first use, when the download policy allows it
  (:mod:`ganapp.datasets_cache`).

Everything is reproducible: a 2-D set is fixed by its seed and split, the image
splits are fixed files or a fixed permutation.
"""

from __future__ import annotations

import dataclasses
import fcntl
import gzip
import hashlib
import http.client
import os
import pathlib
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

# The cache's questions are answered torch-free in datasets_cache, for the web server;
# the names stay importable from here.
from .datasets_cache import (  # noqa: F401
    IDX_BYTES,
    IDX_FILES,
    IDX_MD5,
    IDX_MIRRORS,
    DataError,
    data_cache_dir,
    describe_size,
    downloads_allowed,
)

DATASETS = ("ring8", "grid25", "spiral", "drawn", "digits", "mnist", "fashion-mnist")
TWO_D = ("ring8", "grid25", "spiral", "drawn")
SPLITS = ("train", "test")

# Every 2-D set is a fixed pool of this many points; training samples from it
# with replacement, so the pool only has to be large enough to look continuous.
TWO_D_POOL_SIZE = 20_000

RING8_RADIUS = 2.0
RING8_STD = 0.02
GRID25_STD = 0.05
SPIRAL_NOISE_STD = 0.05

DIGITS_FILE = pathlib.Path(__file__).with_name("datafiles") / "digits.npz"
DIGITS_TEST_SIZE = 300  # of 1,797: the last 300 rows of a fixed permutation

IDX_IMAGE_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (n, rows, cols)
IDX_LABEL_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (n,)
IDX_IMAGE_SIZE = 28
# A download stops, and its partial file is deleted, when the server goes quiet for
# DOWNLOAD_TIMEOUT_S, when one file takes longer than DOWNLOAD_DEADLINE_S in all, or when
# more than MAX_DOWNLOAD_BYTES arrive (the largest real file is 26 MB; a wrong mirror or a
# hostile one must not fill the disk).
DOWNLOAD_TIMEOUT_S = 30
DOWNLOAD_DEADLINE_S = 600
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Dataset:
    """A data set held in memory as one tensor.

    ``data`` is float32, (n, 2) for 2-D sets and (n, 1, H, W) in [-1, 1] for
    images. ``labels`` are int64 class labels for image sets and the index of
    the mode each point was drawn from for ring8 and grid25 (None for spiral).
    ``modes`` (k, 2) and ``mode_std`` describe the Gaussian mixtures, so that
    mode-coverage metrics can be computed against the truth.
    """

    name: str
    data: torch.Tensor
    labels: torch.Tensor | None
    modes: torch.Tensor | None
    mode_std: float | None
    num_classes: int | None
    # A drawn set's strokes (each a (k, 2) float64 array, one mode each), for its metrics.
    strokes: tuple[np.ndarray, ...] | None = None

    @property
    def is_image(self) -> bool:
        return self.data.dim() == 4

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[1:])

    def __len__(self) -> int:
        return self.data.shape[0]

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """Draw ``batch_size`` rows with replacement; the generator fixes which."""
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        # Draw the indices on the generator's device (a CUDA generator cannot
        # feed a CPU randint), then index the data wherever it lives.
        idx = torch.randint(
            len(self), (batch_size,), generator=generator, device=generator.device
        )
        return self.data[idx.to(self.data.device)]

    def to(self, device) -> Dataset:
        """A copy with every tensor on ``device``."""

        def move(t):
            return None if t is None else t.to(device)

        return dataclasses.replace(
            self, data=move(self.data), labels=move(self.labels), modes=move(self.modes)
        )


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    split: str = "train",
    cache_dir: str | os.PathLike | None = None,
    allow_downloads: bool | None = None,
    on_download: Callable[[str], None] | None = None,
    drawing: str = "",
) -> Dataset:
    """Load data set ``name`` ("ring8", "grid25", "spiral", "drawn", "digits", "mnist",
    "fashion-mnist") for ``split`` ("train" or "test"). ``drawing`` is the code of a drawn
    set (GANConfig.drawn_points; ganapp.drawn), needed for "drawn" only.

    ``seed`` only affects the 2-D sets, whose points are generated; image splits
    are fixed. MNIST and Fashion-MNIST are read from ``<cache_dir>/<name>/``
    (``cache_dir`` defaults to :func:`data_cache_dir`); when the split's files are
    missing, the whole set is downloaded there once (see :func:`download_dataset`).
    ``allow_downloads`` overrides the environment's policy
    (:func:`ganapp.datasets_cache.downloads_allowed`); ``on_download`` receives a
    sentence for a person before a download starts and when it ends.
    """
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    if name == "drawn":
        return drawn_dataset(drawing, seed=seed, split=split)
    if name in TWO_D:
        return _two_d(name, seed=seed, split=split)
    if name == "digits":
        return _digits(split)
    root = pathlib.Path(cache_dir) if cache_dir is not None else data_cache_dir()
    folder = root / name
    if any(not (folder / f).is_file() for f in IDX_FILES[split]):
        download_dataset(name, cache_dir=root, allow_downloads=allow_downloads, on_download=on_download)
    return _idx_dataset(name, split, folder)


# ---------------------------------------------------------------- 2-D sets


def _two_d(name: str, *, seed: int, split: str) -> Dataset:
    # The test pool gets its own stream from the same seed, so it is as
    # reproducible as the train pool but shares none of its points.
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    n = TWO_D_POOL_SIZE
    if name == "spiral":
        points = _spiral_points(rng, n)
        return Dataset(name, _float_tensor(points), None, None, None, None)

    if name == "ring8":
        angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)  # no duplicate at 2*pi
        modes = RING8_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        std = RING8_STD
    else:  # grid25
        ticks = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
        modes = np.array([(x, y) for x in ticks for y in ticks])
        std = GRID25_STD
    labels = rng.integers(0, len(modes), size=n)  # equal weight per mode
    points = modes[labels] + std * rng.standard_normal((n, 2))
    return Dataset(
        name=name,
        data=_float_tensor(points),
        labels=torch.from_numpy(labels.astype(np.int64)),
        modes=_float_tensor(modes),
        mode_std=std,
        num_classes=None,
    )


def drawn_dataset(code: str, *, seed: int = 0, split: str = "train", n: int = TWO_D_POOL_SIZE) -> Dataset:
    """A drawn set's pool: each stroke or dot of the drawing is one mode of equal weight;
    a point picks its stroke uniformly, a place along the stroke uniformly by length, and
    Gaussian ink of std drawn.INK_STD around it. ``labels`` are the stroke of each point."""
    from . import drawn

    try:
        strokes = [np.asarray(s, np.float64) for s in drawn.decode(code)]
    except drawn.DrawingError as error:
        raise DataError(f"the drawn data set cannot be used: {error}") from None
    if not strokes:
        raise DataError("the drawn data set is empty: draw at least one stroke or dot")
    rng = np.random.default_rng([seed, SPLITS.index(split), 7])
    labels = rng.integers(0, len(strokes), size=n)
    where = rng.uniform(0.0, 1.0, n)
    points = np.empty((n, 2))
    for k, stroke in enumerate(strokes):
        mine = labels == k
        points[mine] = point_along(stroke, where[mine])
    points += drawn.INK_STD * rng.standard_normal((n, 2))
    return Dataset(name="drawn", data=_float_tensor(points), labels=torch.from_numpy(labels.astype(np.int64)),
                   modes=None, mode_std=drawn.INK_STD, num_classes=None, strokes=tuple(strokes))


def point_along(stroke: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    """Points at `fraction` (0..1) of the way along a polyline by length (m, 2); a dot is itself."""
    lengths = np.sqrt((np.diff(stroke, axis=0) ** 2).sum(axis=1))
    total = lengths.sum()
    if len(stroke) == 1 or total <= 0:
        return np.repeat(stroke[:1], len(fraction), axis=0)
    cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
    distance = fraction * total
    segment = np.clip(np.searchsorted(cumulative, distance, side="right") - 1, 0, len(lengths) - 1)
    step = np.where(lengths[segment] > 0, (distance - cumulative[segment]) / np.maximum(lengths[segment], 1e-300), 0.0)
    step = np.clip(step, 0.0, 1.0)[:, None]
    return stroke[segment] + step * (stroke[segment + 1] - stroke[segment])


def _spiral_points(rng: np.random.Generator, n: int) -> np.ndarray:
    """Two arms of the Archimedean spiral r = theta, theta in [0, 3*pi], the
    second arm turned by pi, scaled so that r reaches 2, plus Gaussian noise."""
    max_theta = 3 * np.pi
    # sqrt spreads points evenly along the arm's length instead of crowding the
    # centre, where a turn of the spiral is short.
    theta = max_theta * np.sqrt(rng.uniform(0.0, 1.0, n))
    arm = rng.integers(0, 2, n)
    angle = theta + np.pi * arm
    radius = 2.0 * theta / max_theta
    points = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return points + SPIRAL_NOISE_STD * rng.standard_normal((n, 2))


def _float_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


# ---------------------------------------------------------------- digits


def _digits(split: str) -> Dataset:
    try:
        with np.load(DIGITS_FILE) as archive:
            images, labels = archive["images"], archive["labels"]
    except (OSError, KeyError, ValueError) as error:
        raise DataError(
            f"cannot read the bundled digits file {DIGITS_FILE} ({error}); "
            "it is part of the ganapp source tree: restore it from git"
        ) from error
    # A fixed permutation, independent of the run's seed, so that every run
    # trains and evaluates on the same rows.
    order = np.random.default_rng(0).permutation(len(images))
    rows = order[:-DIGITS_TEST_SIZE] if split == "train" else order[-DIGITS_TEST_SIZE:]
    pixels = images[rows].astype(np.float32) / 16.0 * 2.0 - 1.0  # 0..16 -> [-1, 1]
    return _image_dataset("digits", pixels, labels[rows])


def _image_dataset(name: str, pixels: np.ndarray, labels: np.ndarray) -> Dataset:
    return Dataset(
        name=name,
        data=_float_tensor(pixels[:, None]),  # (n, H, W) -> (n, 1, H, W)
        labels=torch.from_numpy(labels.astype(np.int64)),
        modes=None,
        mode_std=None,
        num_classes=10,
    )


# ---------------------------------------------------------------- MNIST, Fashion-MNIST


def _idx_dataset(name: str, split: str, folder: pathlib.Path) -> Dataset:
    image_file, label_file = IDX_FILES[split]
    images = _read_idx(folder / image_file, IDX_IMAGE_MAGIC, name)
    labels = _read_idx(folder / label_file, IDX_LABEL_MAGIC, name)
    if images.shape[1:] != (IDX_IMAGE_SIZE, IDX_IMAGE_SIZE):
        raise DataError(
            f"{folder / image_file}: expected {IDX_IMAGE_SIZE}x{IDX_IMAGE_SIZE} images, "
            f"found {images.shape[1]}x{images.shape[2]}; {_replace_hint(name)}"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{folder}: {image_file} holds {len(images)} images but {label_file} "
            f"holds {len(labels)} labels; {_replace_hint(name)}"
        )
    if labels.size and labels.max() > 9:
        raise DataError(
            f"{folder / label_file}: labels must be 0..9, found {labels.max()}; "
            f"{_replace_hint(name)}"
        )
    pixels = images.astype(np.float32) / 255.0 * 2.0 - 1.0  # 0..255 -> [-1, 1]
    return _image_dataset(name, pixels, labels)


def _read_idx(path: pathlib.Path, magic: int, name: str) -> np.ndarray:
    """Parse a gzip IDX file (LeCun's format: big-endian int32 magic number
    0x000008NN, where 08 means unsigned bytes and NN the number of dimensions,
    then NN big-endian int32 sizes, then the bytes). Strict: anything that is
    not exactly such a file is a DataError naming it."""
    try:
        with gzip.open(path, "rb") as file:
            raw = file.read()
    except (OSError, EOFError, zlib.error) as error:
        # BadGzipFile is an OSError; a cut-off download ends in EOFError.
        raise DataError(
            f"{path}: not a readable gzip file ({error}); {_replace_hint(name)}"
        ) from error

    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path}: too short for an IDX header; {_replace_hint(name)}")
    found_magic = int.from_bytes(raw[:4], "big")
    if found_magic != magic:
        raise DataError(
            f"{path}: wrong IDX magic number 0x{found_magic:08x}, expected 0x{magic:08x} "
            f"({'images' if ndim == 3 else 'labels'}); {_replace_hint(name)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header_size + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(
            f"{path}: {len(raw)} bytes after unzipping, but its header {shape} "
            f"needs {expected} (truncated or corrupt); {_replace_hint(name)}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def _replace_hint(name: str) -> str:
    return f"delete it to download it again, or replace it with the original from {IDX_MIRRORS[name]}"


# ---------------------------------------------------------------- downloads


def download_dataset(
    name: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    allow_downloads: bool | None = None,
    on_download: Callable[[str], None] | None = None,
) -> None:
    """Put every file of ``name`` into ``<cache_dir>/<name>/``, downloading what is
    missing; nothing to do for the generated and shipped sets.

    Once per machine: the download holds an exclusive lock on
    ``<cache_dir>/.<name>.download.lock``, and whoever gets the lock after someone else
    finds the files there and downloads nothing. Each file is bounded in size and time,
    checked against its MD5 sum and renamed into place only when complete, so a partial
    file is never left behind. When downloads are not allowed (``allow_downloads``, or
    else :func:`downloads_allowed`), a DataError says which files to put where by hand.
    """
    if name not in IDX_MIRRORS:
        if name in DATASETS:
            return
        raise DataError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}")
    report = on_download or (lambda sentence: None)
    root = pathlib.Path(cache_dir) if cache_dir is not None else data_cache_dir()
    folder = root / name
    if not _missing(name, folder):
        return
    allowed = downloads_allowed() if allow_downloads is None else allow_downloads
    if not allowed:
        raise DataError(_manual_instructions(name, folder, _missing(name, folder),
                                             explicit=allow_downloads is not None))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"cannot create the data folder {folder} ({error.strerror or error}); "
            "set GANAPP_DATA_DIR to a folder you can write"
        ) from None
    with _download_lock(root / f".{name}.download.lock", name, report):
        missing = _missing(name, folder)  # again: whoever held the lock may have fetched them
        if not missing:
            return
        for stale in folder.glob("*.part"):  # left by a download that was killed; we hold the lock
            stale.unlink(missing_ok=True)
        size = sum(IDX_BYTES[name][f] for f in missing)
        report(f"downloading {name} once for this machine (about {describe_size(size)})...")
        for file in missing:
            try:
                _download(IDX_MIRRORS[name] + file, folder / file, IDX_MD5[name][file])
            except (OSError, ValueError, http.client.HTTPException) as error:
                # URLError, HTTPError, timeouts, a cut connection, disk errors
                raise DataError(_manual_instructions(
                    name, folder, _missing(name, folder), downloading=f"downloading {file} failed: {error}"
                )) from error
        report(f"downloaded {name} into {folder}")


def _missing(name: str, folder: pathlib.Path) -> list[str]:
    return [f for f in IDX_FILES["train"] + IDX_FILES["test"] if not (folder / f).is_file()]


@contextmanager
def _download_lock(path: pathlib.Path, name: str, report: Callable[[str], None]) -> Iterator[None]:
    """Hold an exclusive flock on ``path``; say so when another download holds it first.

    flock excludes other processes and also other threads of this one, since each call
    opens its own file description. The lock file stays: deleting it would let a waiter
    lock a file that a newcomer no longer sees."""
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise DataError(
            f"cannot create the download lock {path} ({error.strerror or error}); "
            "set GANAPP_DATA_DIR to a folder you can write"
        ) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report(f"waiting: another job is downloading {name} for this machine...")
            fcntl.flock(handle, fcntl.LOCK_EX)  # the holder's download is bounded in time
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _manual_instructions(name: str, folder: pathlib.Path, missing: list[str], *,
                         explicit: bool = False, downloading: str | None = None) -> str:
    if downloading:
        reason, remedy = downloading, ""
    elif explicit:
        reason, remedy = "downloads are turned off here", ""
    elif os.environ.get("GANAPP_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        reason, remedy = "GANAPP_OFFLINE is set", " Unset GANAPP_OFFLINE to let ganapp download them."
    else:
        reason, remedy = "GANAPP_DOWNLOADS is off", " Set GANAPP_DOWNLOADS=on to let ganapp download them."
    return (
        f"data set {name!r} is not in the cache and cannot be downloaded ({reason}). "
        f"Download these files from {IDX_MIRRORS[name]} and put them, still gzipped, "
        f"in {folder}: {', '.join(missing)}. "
        "To keep data elsewhere, set GANAPP_DATA_DIR to a folder holding "
        f"{name}/<files>." + remedy
    )


def _download(url: str, destination: pathlib.Path, md5: str) -> None:
    """Fetch ``url`` to ``destination`` and check its MD5. The bytes go to a
    temporary file in the same folder first, so an interrupted, oversized or bad
    download never leaves a file that looks complete."""
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=destination.name + ".", suffix=".part")
    try:
        digest = hashlib.md5()
        deadline = time.monotonic() + DOWNLOAD_DEADLINE_S
        received = 0
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(
            url, timeout=DOWNLOAD_TIMEOUT_S
        ) as response:
            declared = _content_length(response)
            if declared is not None and declared > MAX_DOWNLOAD_BYTES:
                raise DataError(_too_large(url, destination, f"the server announces {declared:,} bytes"))
            while chunk := response.read(1 << 20):
                received += len(chunk)
                if received > MAX_DOWNLOAD_BYTES:
                    raise DataError(_too_large(url, destination, f"more than {MAX_DOWNLOAD_BYTES:,} bytes arrived"))
                if time.monotonic() > deadline:
                    raise DataError(
                        f"{url} took longer than {DOWNLOAD_DEADLINE_S} s; the partial file was deleted. "
                        f"Try again later or fetch the file by hand into {destination.parent}"
                    )
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            raise DataError(
                f"{url} downloaded with MD5 {digest.hexdigest()}, expected {md5}; "
                "the bad copy was deleted, try again later or fetch the file by hand "
                f"into {destination.parent}"
            )
        os.chmod(temporary, 0o644)  # mkstemp makes files private; the cache is for every job
        os.replace(temporary, destination)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _content_length(response) -> int | None:
    headers = getattr(response, "headers", None)
    try:
        return int(headers.get("Content-Length")) if headers is not None else None
    except (TypeError, ValueError):
        return None


def _too_large(url: str, destination: pathlib.Path, what: str) -> str:
    real_size = IDX_BYTES.get(destination.parent.name, {}).get(destination.name, 0)
    return (
        f"{url} is too large: {what}, and ganapp stops at {MAX_DOWNLOAD_BYTES // (1024 * 1024)} MB "
        f"(the real file is about {describe_size(real_size)}); "
        f"nothing was kept. The mirror may be wrong: fetch the file by hand into {destination.parent}"
    )
