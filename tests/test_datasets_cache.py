"""ganapp.datasets_cache: the torch-free questions the server asks before it starts a job."""

import subprocess
import sys
from pathlib import Path

import pytest

from ganapp import datasets_cache
from ganapp.datasets_cache import DataError, cached, data_cache_dir, download_size, downloads_allowed

ROOT = Path(__file__).resolve().parents[1]
ALL_IDX_FILES = datasets_cache.IDX_FILES["train"] + datasets_cache.IDX_FILES["test"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for name in ("GANAPP_OFFLINE", "GANAPP_DOWNLOADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GANAPP_DATA_DIR", str(tmp_path / "cache"))


def test_importing_it_does_not_import_torch_or_numpy():
    code = ("import sys, ganapp.datasets_cache; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("offline, downloads, allowed", [
    (None, None, True),  # a laptop: mnist downloads on first use
    ("1", None, False),
    ("yes", None, False),
    ("0", None, True),
    (None, "on", True),
    (None, "off", False),
    (None, " OFF ", False),
    ("0", "off", False),
    ("1", "off", False),
    ("", "", True),  # set but empty is unset
])
def test_downloads_allowed_follows_the_environment(monkeypatch, offline, downloads, allowed):
    if offline is not None:
        monkeypatch.setenv("GANAPP_OFFLINE", offline)
    if downloads is not None:
        monkeypatch.setenv("GANAPP_DOWNLOADS", downloads)
    assert downloads_allowed() is allowed


@pytest.mark.parametrize("variable, value, words", [
    ("GANAPP_DOWNLOADS", "maybe", "GANAPP_DOWNLOADS must be on or off; got 'maybe'"),
    ("GANAPP_DOWNLOADS", "1", "GANAPP_DOWNLOADS must be on or off; got '1'"),
    ("GANAPP_OFFLINE", "perhaps", "GANAPP_OFFLINE must be 1 or 0 (or unset); got 'perhaps'"),
])
def test_a_value_it_cannot_read_is_an_error_not_a_guess(monkeypatch, variable, value, words):
    monkeypatch.setenv(variable, value)
    with pytest.raises(DataError) as caught:
        downloads_allowed()
    assert str(caught.value) == words


def test_downloads_on_while_offline_is_a_contradiction(monkeypatch):
    monkeypatch.setenv("GANAPP_OFFLINE", "1")
    monkeypatch.setenv("GANAPP_DOWNLOADS", "on")
    with pytest.raises(DataError, match="contradicts GANAPP_OFFLINE"):
        downloads_allowed()


@pytest.mark.parametrize("name", datasets_cache.BUILT_IN)
def test_built_in_sets_are_always_cached(name):
    assert cached(name) and download_size(name) == 0


@pytest.mark.parametrize("name, megabytes", [("mnist", 11), ("fashion-mnist", 30)])
def test_idx_sets_are_cached_once_all_four_files_are_there(tmp_path, name, megabytes):
    folder = tmp_path / "cache" / name
    assert not cached(name)
    assert megabytes * 1_000_000 < download_size(name) < (megabytes + 2) * 1_000_000
    folder.mkdir(parents=True)
    for file in ALL_IDX_FILES[:3]:
        (folder / file).write_bytes(b"x")
    assert not cached(name)
    assert download_size(name) == datasets_cache.IDX_BYTES[name]["t10k-labels-idx1-ubyte.gz"]
    (folder / ALL_IDX_FILES[3]).write_bytes(b"x")
    assert cached(name) and download_size(name) == 0
    # An explicit cache folder is asked instead of the environment's.
    assert not cached(name, tmp_path / "elsewhere")


def test_unknown_name_is_a_data_error():
    with pytest.raises(DataError, match="unknown data set 'cifar10'"):
        cached("cifar10")


def test_cache_folder_and_error_class_are_shared_with_data(tmp_path, monkeypatch):
    from ganapp import data

    assert data.data_cache_dir is data_cache_dir and data.DataError is DataError
    assert data_cache_dir() == tmp_path / "cache"
    monkeypatch.setenv("GANAPP_DATA_DIR", "~/somewhere")
    assert data_cache_dir() == Path.home() / "somewhere"
    monkeypatch.delenv("GANAPP_DATA_DIR")
    assert data_cache_dir() == Path.home() / ".cache" / "ganapp"
