"""Tests for ganapp.data. Nothing here reaches the network: IDX files are synthetic and
written to a temporary cache, GANAPP_OFFLINE is set for every test, and the download
tests serve fake files from a local HTTP server on 127.0.0.1."""

import gzip
import hashlib
import http.server
import io
import math
import subprocess
import sys
import threading

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


@pytest.mark.parametrize("name", [n for n in data.TWO_D if n != "drawn"])  # drawn: tests/test_drawn_data.py
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
    monkeypatch.delenv("GANAPP_OFFLINE")
    monkeypatch.setattr(
        data.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"not the file")
    )
    with pytest.raises(DataError, match="MD5"):
        load_dataset("mnist", cache_dir=tmp_path)
    assert list((tmp_path / "mnist").iterdir()) == []


# ---------------------------------------------------------------- downloads from a local mirror


class Mirror:
    """A local HTTP server holding fake IDX files: counts requests, and can hold the
    first one until a test says go, send a body with or without a Content-Length, or
    stall mid-body."""

    def __init__(self, files):
        self.files = dict(files)  # name -> bytes
        self.requests = []
        self.hold_first = None  # an Event the first request waits for
        self.send_length = True
        self.stall = None  # an Event a request waits for after its first bytes
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                mirror.requests.append(name)
                if mirror.hold_first is not None and len(mirror.requests) == 1:
                    assert mirror.hold_first.wait(10), "the test never released the first request"
                body = mirror.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                if mirror.send_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mirror.stall is not None:
                    self.wfile.write(body[:10])
                    self.wfile.flush()
                    mirror.stall.wait(10)
                    return
                self.wfile.write(body)

            def log_message(self, *args):  # quiet
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/idx/"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self):
        for event in (self.hold_first, self.stall):
            if event is not None:
                event.set()
        self.server.shutdown()
        self.server.server_close()


def fake_idx_files(n=20):
    """The four gzip IDX files of a tiny fake set, as name -> bytes."""
    folder = {}
    rng = np.random.default_rng(1)
    for split, count in (("train", n), ("test", n // 2)):
        image_file, label_file = data.IDX_FILES[split]
        for file, array in ((image_file, rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)),
                            (label_file, np.arange(count, dtype=np.uint8) % 10)):
            buffer = io.BytesIO()
            write_idx(buffer, array)
            folder[file] = buffer.getvalue()
    return folder


@pytest.fixture
def mirror(monkeypatch):
    """Downloads allowed, mnist's mirror and MD5 sums pointed at a local server."""
    monkeypatch.delenv("GANAPP_OFFLINE")
    files = fake_idx_files()
    server = Mirror(files)
    monkeypatch.setitem(data.IDX_MIRRORS, "mnist", server.url)
    monkeypatch.setitem(data.IDX_MD5, "mnist", {k: hashlib.md5(v).hexdigest() for k, v in files.items()})
    yield server
    server.close()


def folder_listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_download_fetches_the_whole_set_once_and_says_so(tmp_path, mirror):
    said = []
    train = load_dataset("mnist", cache_dir=tmp_path, on_download=said.append)
    assert len(train) == 20 and sorted(mirror.requests) == sorted(mirror.files)
    assert said[0] == "downloading mnist once for this machine (about 12 MB)..."
    assert said[-1] == f"downloaded mnist into {tmp_path / 'mnist'}"
    assert folder_listing(tmp_path / "mnist") == sorted(mirror.files)  # no partial files
    assert cached_here(tmp_path)
    # The test split came with it, and nothing is fetched again.
    said.clear()
    assert len(load_dataset("mnist", split="test", cache_dir=tmp_path, on_download=said.append)) == 10
    assert len(mirror.requests) == 4 and said == []


def cached_here(root):
    from ganapp.datasets_cache import cached

    return cached("mnist", root)


def test_two_jobs_loading_at_once_download_once(tmp_path, mirror):
    """The first request is held until the other loader reports that it waits for the
    lock, so the two loads truly overlap; the waiter then finds the files and fetches none."""
    mirror.hold_first = threading.Event()
    said, results, errors = [], [], []

    def on_download(sentence):
        said.append(sentence)
        if sentence.startswith("waiting"):
            mirror.hold_first.set()

    def load():
        try:
            results.append(load_dataset("mnist", cache_dir=tmp_path, on_download=on_download))
        except Exception as error:  # shown by the assertion below
            errors.append(error)

    loaders = [threading.Thread(target=load) for _ in range(2)]
    for loader in loaders:
        loader.start()
    for loader in loaders:
        loader.join(30)
    assert not errors and len(results) == 2
    assert sorted(mirror.requests) == sorted(mirror.files)  # each file once
    assert "waiting: another job is downloading mnist for this machine..." in said
    assert sum(s.startswith("downloading mnist") for s in said) == 1
    assert torch.equal(results[0].data, results[1].data)
    assert folder_listing(tmp_path / "mnist") == sorted(mirror.files)


HOLD_THE_LOCK = """
import fcntl, os, shutil, sys
lock, source, target = sys.argv[1:]
handle = os.open(lock, os.O_RDWR | os.O_CREAT)
fcntl.flock(handle, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()  # until the other loader says that it waits
shutil.copytree(source, target, dirs_exist_ok=True)
"""


def test_a_download_in_another_process_is_waited_for_not_repeated(tmp_path, mirror):
    """Another process (a plain Python holding the lock as ganapp does) fills the cache
    while this one waits; this one then loads the files without a single request."""
    write_fake_idx_set(tmp_path / "elsewhere")
    (tmp_path / "cache").mkdir()
    other = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(tmp_path / "cache" / ".mnist.download.lock"),
                              str(tmp_path / "elsewhere"), str(tmp_path / "cache" / "mnist")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "locked"
        said = []

        def on_download(sentence):
            said.append(sentence)
            other.stdin.write("go\n")
            other.stdin.flush()

        assert len(load_dataset("mnist", cache_dir=tmp_path / "cache", on_download=on_download)) == 20
    finally:
        other.stdin.close()
        other.wait(30)
    assert said == ["waiting: another job is downloading mnist for this machine..."]
    assert mirror.requests == []


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "no-length"])
def test_an_oversized_download_is_refused_and_leaves_no_file(tmp_path, mirror, monkeypatch, announced):
    mirror.send_length = announced
    monkeypatch.setattr(data, "MAX_DOWNLOAD_BYTES", 1000)  # the fake image files are about 16 kB
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", cache_dir=tmp_path)
    message = str(caught.value)
    assert "train-images-idx3-ubyte.gz is too large" in message and "nothing was kept" in message
    assert ("announces" in message) is announced
    assert folder_listing(tmp_path / "mnist") == []


def test_a_stalled_server_times_out_and_leaves_no_file(tmp_path, mirror, monkeypatch):
    mirror.stall = threading.Event()
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT_S", 0.3)
    with pytest.raises(DataError, match="downloading train-images-idx3-ubyte.gz failed: .*timed out"):
        load_dataset("mnist", cache_dir=tmp_path)
    assert folder_listing(tmp_path / "mnist") == []


def test_a_missing_file_on_the_mirror_keeps_what_arrived_and_explains(tmp_path, mirror):
    del mirror.files["t10k-labels-idx1-ubyte.gz"]
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", cache_dir=tmp_path)
    message = str(caught.value)
    assert "downloading t10k-labels-idx1-ubyte.gz failed: HTTP Error 404" in message
    assert f"in {tmp_path / 'mnist'}: t10k-labels-idx1-ubyte.gz." in message  # only what is still missing
    # The three good files stay (checked against their MD5), so a retry fetches one file.
    assert folder_listing(tmp_path / "mnist") == sorted(mirror.files)


def test_a_killed_download_is_cleaned_up_by_the_next(tmp_path, mirror):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz.abc123.part").write_bytes(b"half a file")
    load_dataset("mnist", cache_dir=tmp_path)
    assert folder_listing(folder) == sorted(mirror.files)


def test_a_split_already_there_never_touches_the_network(tmp_path, mirror):
    write_fake_idx_set(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert len(load_dataset("mnist", cache_dir=tmp_path)) == 20
    assert mirror.requests == []


@pytest.mark.parametrize("setting, words", [
    ({"GANAPP_DOWNLOADS": "off"}, "(GANAPP_DOWNLOADS is off)"),
    ({"GANAPP_OFFLINE": "yes"}, "Unset GANAPP_OFFLINE to let ganapp download them."),
    ({"GANAPP_DOWNLOADS": "maybe"}, "GANAPP_DOWNLOADS must be on or off; got 'maybe'"),
    ({"allow_downloads": False}, "(downloads are turned off here)"),
])
def test_downloads_refused_make_no_request_and_say_what_to_do(tmp_path, mirror, monkeypatch, setting, words):
    keywords = {}
    for key, value in setting.items():
        if key.startswith("GANAPP_"):
            monkeypatch.setenv(key, value)
        else:
            keywords[key] = value
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", cache_dir=tmp_path, on_download=pytest.fail, **keywords)
    assert words in str(caught.value)
    assert mirror.requests == [] and folder_listing(tmp_path / "mnist") == []


def test_allow_downloads_true_overrides_an_offline_environment(tmp_path, mirror, monkeypatch):
    """The server passes its own policy; the environment is only the default."""
    monkeypatch.setenv("GANAPP_OFFLINE", "1")
    assert len(load_dataset("mnist", cache_dir=tmp_path, allow_downloads=True)) == 20
    assert len(mirror.requests) == 4


def test_download_dataset_is_a_no_op_for_built_in_sets(tmp_path):
    for name in ("ring8", "digits"):
        data.download_dataset(name, cache_dir=tmp_path, on_download=pytest.fail)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="unknown data set"):
        data.download_dataset("cifar10", cache_dir=tmp_path)


# ---------------------------------------------------------------- bad names


def test_unknown_name_lists_the_choices():
    with pytest.raises(DataError) as caught:
        load_dataset("cifar10")
    assert all(name in str(caught.value) for name in data.DATASETS)


def test_unknown_split_lists_the_choices():
    with pytest.raises(DataError, match="train, test"):
        load_dataset("ring8", split="validation")
