"""Tests for ganapp.data. Nothing here downloads: IDX files are synthetic and
written to a temporary cache, and GANAPP_OFFLINE is set for every test."""

import gzip
import math

import numpy as np
import pytest
import torch

from ganapp import data
from ganapp.data import DataError, load_dataset


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("GANAPP_OFFLINE", "1")
    # Point the default cache at an empty folder so a real ~/.cache is never read.
    monkeypatch.setenv("GANAPP_DATA_DIR", str(tmp_path / "default-cache"))


# ---------------------------------------------------------------- 2-D sets


def test_ring8_modes_are_eight_distinct_angles_at_radius_two():
    ds = load_dataset("ring8")
    assert ds.modes.shape == (8, 2) and ds.modes.dtype == torch.float32
    radii = ds.modes.norm(dim=1)
    assert torch.allclose(radii, torch.full((8,), 2.0), atol=1e-5)
    angles = torch.atan2(ds.modes[:, 1], ds.modes[:, 0]).remainder(2 * math.pi)
    steps = np.diff(np.sort(angles.numpy()))
    # Eight equal steps of 2*pi/8: a duplicate at 0 and 2*pi would show as a 0 step.
    assert np.allclose(steps, 2 * math.pi / 8, atol=1e-5)
    assert ds.mode_std == 0.02


def test_ring8_points_lie_near_their_modes():
    ds = load_dataset("ring8")
    assert ds.data.shape == (20_000, 2) and ds.data.dtype == torch.float32
    assert ds.labels.dtype == torch.int64
    assert set(ds.labels.tolist()) == set(range(8))
    distance = (ds.data - ds.modes[ds.labels]).norm(dim=1)
    # 2-D Gaussian with std s: P(distance > 4s) = exp(-8), about 7 in 20,000.
    assert (distance > 4 * ds.mode_std).float().mean() < 0.002
    assert distance.max() < 7 * ds.mode_std


def test_grid25_has_25_modes_on_the_grid():
    ds = load_dataset("grid25")
    assert ds.modes.shape == (25, 2)
    assert {tuple(m) for m in ds.modes.tolist()} == {
        (x, y) for x in (-4.0, -2.0, 0.0, 2.0, 4.0) for y in (-4.0, -2.0, 0.0, 2.0, 4.0)
    }
    assert ds.mode_std == 0.05
    assert set(ds.labels.tolist()) == set(range(25))
    distance = (ds.data - ds.modes[ds.labels]).norm(dim=1)
    assert distance.max() < 7 * ds.mode_std


def test_spiral_is_2d_in_range_without_labels():
    ds = load_dataset("spiral")
    assert ds.data.shape == (20_000, 2)
    assert ds.labels is None and ds.modes is None and ds.mode_std is None
    assert ds.data.abs().max() < 2.5
    assert not ds.is_image and ds.sample_shape == (2,) and ds.num_classes is None


@pytest.mark.parametrize("name", data.TWO_D)
def test_2d_sets_are_fixed_by_seed_and_split(name):
    a = load_dataset(name, seed=3)
    b = load_dataset(name, seed=3)
    assert torch.equal(a.data, b.data)
    assert not torch.equal(a.data, load_dataset(name, seed=4).data)
    assert not torch.equal(a.data, load_dataset(name, seed=3, split="test").data)
    assert torch.equal(
        load_dataset(name, seed=3, split="test").data,
        load_dataset(name, seed=3, split="test").data,
    )


@pytest.mark.parametrize("name", ["ring8", "digits"])
def test_sample_is_deterministic_given_a_seeded_generator(name):
    ds = load_dataset(name)
    first = ds.sample(64, torch.Generator().manual_seed(7))
    second = ds.sample(64, torch.Generator().manual_seed(7))
    assert first.shape == (64, *ds.sample_shape)
    assert torch.equal(first, second)
    assert not torch.equal(first, ds.sample(64, torch.Generator().manual_seed(8)))


def test_to_copies_every_tensor():
    ds = load_dataset("grid25")
    moved = ds.to("cpu")
    assert moved is not ds and torch.equal(moved.data, ds.data)
    assert torch.equal(moved.modes, ds.modes) and torch.equal(moved.labels, ds.labels)
    assert load_dataset("spiral").to("cpu").labels is None


# ---------------------------------------------------------------- digits


def test_digits_splits_are_fixed_disjoint_and_complete():
    train = load_dataset("digits", split="train")
    test = load_dataset("digits", split="test")
    assert (len(train), len(test)) == (1497, 300)
    for ds in (train, test):
        assert ds.is_image and ds.sample_shape == (1, 8, 8)
        assert ds.data.dtype == torch.float32 and ds.labels.dtype == torch.int64
        assert ds.data.min() == -1.0 and ds.data.max() == 1.0
        assert ds.num_classes == 10 and set(ds.labels.tolist()) == set(range(10))
    # The split ignores the run's seed.
    assert torch.equal(load_dataset("digits", seed=5).data, train.data)

    # Rebuild the raw rows from the scaled pixels and check they partition the file.
    raw = np.load(data.DIGITS_FILE)["images"]
    assert raw.shape == (1797, 8, 8) and raw.dtype == np.uint8 and raw.max() == 16
    rows = {bytes(r) for r in raw.reshape(1797, -1)}

    def keys(ds):
        pixels = ((ds.data + 1) / 2 * 16).round().to(torch.uint8)
        return [bytes(p.numpy().reshape(-1)) for p in pixels]

    train_keys, test_keys = keys(train), keys(test)
    assert set(train_keys) | set(test_keys) <= rows
    # Digits holds a few identical images, so compare counts of rows rather
    # than sets: together the splits are the file, each row used once.
    all_rows = sorted(bytes(r) for r in raw.reshape(1797, -1))
    assert sorted(train_keys + test_keys) == all_rows


# ---------------------------------------------------------------- MNIST, Fashion-MNIST


def write_idx(path, array, magic=None, truncate=0):
    """Write ``array`` (uint8) as a gzip IDX file, optionally damaged."""
    magic = 0x0800 | array.ndim if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as file:
        file.write(raw[: len(raw) - truncate])


def write_fake_idx_set(folder, n=20):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("test", n // 2)):
        image_file, label_file = data.IDX_FILES[split]
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 0, 255  # pin the range ends
        write_idx(folder / image_file, images)
        write_idx(folder / label_file, np.arange(count, dtype=np.uint8) % 10)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_sets_load_from_the_cache(name, tmp_path):
    write_fake_idx_set(tmp_path / name)
    train = load_dataset(name, cache_dir=tmp_path)
    test = load_dataset(name, split="test", cache_dir=tmp_path)
    assert train.data.shape == (20, 1, 28, 28) and test.data.shape == (10, 1, 28, 28)
    assert train.data.dtype == torch.float32
    assert train.data.min() == -1.0 and train.data.max() == 1.0
    assert train.labels.tolist() == [i % 10 for i in range(20)]
    assert train.num_classes == 10 and train.is_image and train.name == name


def test_default_cache_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GANAPP_DATA_DIR", str(tmp_path))
    assert data.data_cache_dir() == tmp_path
    write_fake_idx_set(tmp_path / "mnist")
    assert len(load_dataset("mnist")) == 20
    monkeypatch.delenv("GANAPP_DATA_DIR")
    assert data.data_cache_dir().parts[-2:] == (".cache", "ganapp")


HEADER_AND_PIXELS = 16 + 20 * 28 * 28  # bytes in an unzipped 20-image file


@pytest.mark.parametrize(
    "damage",
    [
        {"truncate": 5},  # cut off inside the pixels
        {"truncate": HEADER_AND_PIXELS - 10},  # cut off inside the header
        {"magic": 0x00000801},  # a labels magic number where images belong
    ],
    ids=["short-pixels", "short-header", "wrong-magic"],
)
def test_damaged_idx_file_names_the_file(tmp_path, damage):
    folder = tmp_path / "mnist"
    write_fake_idx_set(folder)
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((20, 28, 28), np.uint8), **damage)
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_dataset("mnist", cache_dir=tmp_path)


def test_non_gzip_file_names_the_file(tmp_path):
    folder = tmp_path / "fashion-mnist"
    write_fake_idx_set(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"<html>not found</html>")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("fashion-mnist", split="test", cache_dir=tmp_path)


def test_cut_off_gzip_stream_names_the_file(tmp_path):
    folder = tmp_path / "mnist"
    write_fake_idx_set(folder)
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])  # drop the gzip trailer and more
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        load_dataset("mnist", cache_dir=tmp_path)


def test_mismatched_image_and_label_counts(tmp_path):
    folder = tmp_path / "mnist"
    write_fake_idx_set(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(19, dtype=np.uint8))
    with pytest.raises(DataError, match="20 images but .* 19 labels"):
        load_dataset("mnist", cache_dir=tmp_path)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_missing_files_offline_say_where_to_put_what(name, tmp_path):
    with pytest.raises(DataError) as caught:
        load_dataset(name, split="test", cache_dir=tmp_path)
    message = str(caught.value)
    assert str(tmp_path / name) in message
    assert "t10k-images-idx3-ubyte.gz" in message and "t10k-labels-idx1-ubyte.gz" in message
    assert "GANAPP_DATA_DIR" in message and data.IDX_MIRRORS[name] in message
    assert not (tmp_path / name).exists() or not any((tmp_path / name).iterdir())


def test_offline_default_cache_message_names_the_default_folder(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "default-cache" / "mnist")):
        load_dataset("mnist")


def test_failed_download_deletes_partial_file_and_explains(tmp_path, monkeypatch):
    monkeypatch.delenv("GANAPP_OFFLINE")

    def refuse(url, timeout):
        assert timeout > 0
        raise OSError("network is unreachable")

    monkeypatch.setattr(data.urllib.request, "urlopen", refuse)
    with pytest.raises(DataError, match="network is unreachable") as caught:
        load_dataset("mnist", cache_dir=tmp_path)
    assert "train-images-idx3-ubyte.gz" in str(caught.value)
    assert list((tmp_path / "mnist").iterdir()) == []


def test_download_with_wrong_checksum_is_deleted(tmp_path, monkeypatch):
    import io

    monkeypatch.delenv("GANAPP_OFFLINE")
    monkeypatch.setattr(
        data.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"not the file")
    )
    with pytest.raises(DataError, match="MD5"):
        load_dataset("mnist", cache_dir=tmp_path)
    assert list((tmp_path / "mnist").iterdir()) == []


# ---------------------------------------------------------------- bad names


def test_unknown_name_lists_the_choices():
    with pytest.raises(DataError) as caught:
        load_dataset("cifar10")
    assert all(name in str(caught.value) for name in data.DATASETS)


def test_unknown_split_lists_the_choices():
    with pytest.raises(DataError, match="train, test"):
        load_dataset("ring8", split="validation")
