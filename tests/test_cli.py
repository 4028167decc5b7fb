"""The command line as a teacher types it: real processes, real files."""

import csv
import dataclasses
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from ganapp.cli import build_parser, config_from_args, main
from ganapp.config import GANConfig

ROOT = Path(__file__).resolve().parents[1]


def ganapp(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "ganapp", *map(str, args)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def loss_columns(path):
    with open(path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    return [{k: row[k] for k in ("step", "d_loss", "g_loss", "d_real", "d_fake")} for row in rows]


@pytest.mark.slow  # two subprocess runs of python -m ganapp train (torch imported twice), 150 steps each
def test_train_writes_its_files_and_repeats_byte_for_byte(tmp_path):
    flags = ["train", "--data", "ring8", "--steps", "150", "--seed", "0", "--minibatch-discrimination",
             "--label-smoothing", "0.9", "--historical-averaging", "uniform", "--metrics-every", "0", "--quiet"]
    ganapp(*flags, "--out", tmp_path / "a")
    ganapp(*flags, "--out", tmp_path / "b")
    for name in ("config.json", "metrics.csv", "samples.png", "checkpoint.safetensors"):
        assert (tmp_path / "a" / name).is_file(), name
    header = (tmp_path / "a" / "metrics.csv").read_text().splitlines()[0]
    assert header.startswith("step,d_loss,g_loss,d_real,d_fake,seconds")
    first, second = loss_columns(tmp_path / "a" / "metrics.csv"), loss_columns(tmp_path / "b" / "metrics.csv")
    assert len(first) == 15 and first == second
    config = GANConfig.from_json((tmp_path / "a" / "config.json").read_text())
    assert config.minibatch_discrimination and config.label_smoothing == 0.9 and config.steps == 150
    assert Image.open(tmp_path / "a" / "samples.png").size[0] > 100


@pytest.mark.slow  # three subprocess runs of python -m ganapp (train, sample, sample)
def test_sample_draws_from_a_checkpoint_and_refuses_a_pickle(tmp_path):
    ganapp("train", "--data", "digits", "--steps", "20", "--metrics-every", "0", "--quiet", "--out", tmp_path / "run")
    ganapp("sample", "--checkpoint", tmp_path / "run" / "checkpoint.safetensors", "--out", tmp_path / "s.png",
           "--n", "16", "--seed", "3")
    assert Image.open(tmp_path / "s.png").size[0] > 50

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(_Evil(str(marker))))
    result = ganapp("sample", "--checkpoint", evil, "--out", tmp_path / "x.png", check=False)
    assert result.returncode != 0 and "not a ganapp checkpoint" in result.stderr
    assert not marker.exists() and not (tmp_path / "x.png").exists()
    assert "Traceback" not in result.stderr


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("flags, words", [
    (["--steps", "ten"], "--steps must be a whole number"),
    (["--lr-generator", "-1"], "lr_generator (learning rate) must be > 0"),
    (["--historical-averaging", "sometimes"], "invalid choice"),
    (["--data", "cifar10"], "data must be one of ring8"),
    (["--label-smoothing", "0.2"], "label_smoothing is the real target alpha"),
])
def test_a_bad_flag_exits_non_zero_with_a_one_line_reason(tmp_path, flags, words):
    result = ganapp("train", *flags, "--out", tmp_path / "r", check=False)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert not (tmp_path / "r").exists()


def test_every_config_field_is_a_train_flag_with_help():
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    help_text = train.format_help()
    for f in dataclasses.fields(GANConfig):
        assert "--" + f.name.replace("_", "-") in help_text, f.name
    args = parser.parse_args(["train", "--out", "x", "--virtual-batch-norm", "--minibatch-kernels", "7",
                              "--historical-averaging", "exponential", "--historical-averaging-weight", "0.5"])
    config = config_from_args(args)
    assert config.virtual_batch_norm and config.minibatch_kernels == 7
    assert config.historical_averaging == "exponential" and config.historical_averaging_weight == 0.5
    assert config_from_args(parser.parse_args(["train", "--out", "x"])) == GANConfig()


@pytest.mark.slow  # a subprocess that benchmarks every technique
def test_bench_prints_a_table_and_ends_with_the_ratio_line():
    result = ganapp("bench", "--repeats", "2", "--seconds", "0.05")
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("ratio ") and 0 < float(last.split()[1]) < 10
    for technique in ("feature matching", "minibatch discrimination", "historical averaging", "label smoothing",
                      "virtual batch norm", "all five"):
        assert technique in result.stdout


# ---------------------------------------------------------------- refusals before any work
# Run in-process through ganapp.cli.main: each refusal is exit code 2, one "error:" line in
# the user's words, no traceback, and nothing created on disk.


def refused(capsys, *argv):
    """Run main(argv), expect a usage error; return its one line."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def no_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A finished 5-step ring8 run's checkpoint, made in-process (no torch thread changes)."""
    from ganapp.checkpoint import save_checkpoint
    from ganapp.training import Trainer

    trainer = Trainer(GANConfig(data="ring8", steps=5, metrics_every=0, device="cpu"))
    trainer.train()
    return save_checkpoint(trainer, tmp_path_factory.mktemp("run") / "checkpoint.safetensors")


def test_cuda_without_a_gpu_is_refused_before_training(capsys, tmp_path, no_gpu):
    line = refused(capsys, "train", "--device", "cuda", "--steps", "5", "--out", tmp_path / "r")
    assert line == "error: CUDA was asked for but this machine has no CUDA GPU; use --device cpu or auto"
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command, flag, value, words", [
    ("train", "--threads", "-3", "--threads must be a whole number >= 1; got '-3'"),
    ("train", "--threads", "0", "--threads must be a whole number >= 1; got '0'"),
    ("train", "--threads", "two", "--threads must be a whole number >= 1; got 'two'"),
    ("bench", "--threads", "0", "--threads must be a whole number >= 1; got '0'"),
    ("bench", "--repeats", "0", "--repeats must be a whole number >= 1; got '0'"),
    ("bench", "--seconds", "0", "--seconds must be a number > 0; got '0'"),
    ("bench", "--seconds", "nan", "--seconds must be a number > 0; got 'nan'"),
    ("sweep", "--seeds", "0", "--seeds must be a whole number >= 1; got '0'"),
    ("sweep", "--seeds", "-2", "--seeds must be a whole number >= 1; got '-2'"),
    ("sweep", "--workers", "-1", "--workers must be a whole number >= 0; got '-1'"),
    ("sweep", "--steps", "0", "--steps must be a whole number >= 1 and <= 1,000,000; got '0'"),
    ("sweep", "--steps", "2000000", "--steps must be a whole number >= 1 and <= 1,000,000; got '2000000'"),
    ("sample", "--n", "0", "--n must be a whole number >= 1 and <= 10,000; got '0'"),
    ("sample", "--seed", "-1", "--seed must be a whole number >= 0 and <= 9,223,372,036,854,775,807; got '-1'"),
])
def test_a_number_out_of_range_is_refused_in_the_flags_words(capsys, tmp_path, command, flag, value, words):
    where = {"train": ["--out", tmp_path / "r"], "sweep": ["--out", tmp_path / "r"],
             "sample": ["--checkpoint", tmp_path / "none.safetensors", "--out", tmp_path / "r" / "s.png"],
             "bench": []}[command]
    line = refused(capsys, command, flag, value, *where)
    assert line == f"error: ganapp {command}: {words} (see --help)"
    assert not (tmp_path / "r").exists()


def test_train_out_that_is_a_file_is_refused_before_training(capsys, tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    line = refused(capsys, "train", "--steps", "5", "--out", existing)
    assert line == f"error: cannot write --out {existing}: {existing} is a file, not a folder; choose another path"
    assert existing.read_text() == "keep me"


def test_train_out_under_a_file_is_refused_before_training(capsys, tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    line = refused(capsys, "train", "--steps", "5", "--out", existing / "sub" / "run")
    assert line == f"error: cannot write --out {existing / 'sub' / 'run'}: {existing} is a file, not a folder"
    assert existing.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_train_out_in_a_read_only_folder_is_refused_before_training(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        line = refused(capsys, "train", "--steps", "5", "--out", locked / "run")
    finally:
        locked.chmod(0o700)
    assert line == f"error: cannot write --out {locked / 'run'}: {locked / 'run'}: Permission denied"
    assert list(locked.iterdir()) == []


def test_train_out_where_no_file_can_be_written_is_refused_for_root_too(capsys, tmp_path, monkeypatch):
    """A read-only folder, as seen by root: the test write fails, and the run never starts."""
    import ganapp.cli

    def read_only(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(Path(dir) / ".ganapp-write-test-x1y2"))

    monkeypatch.setattr(ganapp.cli.tempfile, "mkstemp", read_only)
    line = refused(capsys, "train", "--steps", "5", "--out", tmp_path / "new" / "run")
    assert line == (f"error: cannot write --out {tmp_path / 'new' / 'run'}: {tmp_path / 'new' / 'run'} "
                    "is not writable (Permission denied)")
    assert not (tmp_path / "new").exists()  # the folders it made for the check are gone again


def test_train_removes_the_folders_it_made_when_it_fails_before_training(capsys, tmp_path, monkeypatch):
    """The data set is looked for after --out is checked; a refusal there leaves no empty folders."""
    monkeypatch.setenv("GANAPP_OFFLINE", "1")
    monkeypatch.delenv("GANAPP_DOWNLOADS", raising=False)
    monkeypatch.setenv("GANAPP_DATA_DIR", str(tmp_path / "no-data"))
    line = refused(capsys, "train", "--data", "mnist", "--steps", "5", "--out", tmp_path / "new" / "run")
    assert "'mnist' is not in the cache" in line and "GANAPP_OFFLINE" in line
    assert not (tmp_path / "new").exists()


def test_train_shows_the_download_sentence(capsys, tmp_path, monkeypatch):
    from ganapp import data

    def fake_download(name, *, on_download=None, **_):
        on_download(f"downloading {name} once for this machine (about 12 MB)...")
        raise data.DataError("the mirror is down")

    monkeypatch.setattr(data, "download_dataset", fake_download)
    assert main(["train", "--data", "mnist", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["downloading mnist once for this machine (about 12 MB)...",
                                "error: the mirror is down"]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("content, words", [
    (None, "No such file or directory"),
    (b"", "is not a ganapp checkpoint: it is empty or truncated"),
    (b"garbage" * 100, "is not a ganapp checkpoint"),
])
def test_resume_from_a_missing_or_garbage_file_is_refused(capsys, tmp_path, content, words):
    path = tmp_path / "missing.safetensors"
    if content is not None:
        path.write_bytes(content)
    line = refused(capsys, "train", "--resume", path, "--out", tmp_path / "r")
    assert "missing.safetensors" in line and words in line
    assert not (tmp_path / "r").exists()


def test_resume_refuses_flags_it_would_ignore_and_nothing_to_do(capsys, tmp_path, checkpoint):
    line = refused(capsys, "train", "--resume", checkpoint, "--steps", "10", "--lr-generator", "0.01",
                   "--out", tmp_path / "r")
    assert "only --steps and --device can change, so drop --lr-generator" in line
    line = refused(capsys, "train", "--resume", checkpoint, "--out", tmp_path / "r")
    assert line == "error: checkpoint.safetensors is already at step 5; give --steps above 5 to continue it"
    assert not (tmp_path / "r").exists()


def test_resume_with_cuda_without_a_gpu_is_refused(capsys, tmp_path, checkpoint, no_gpu):
    line = refused(capsys, "train", "--resume", checkpoint, "--steps", "10", "--device", "cuda",
                   "--out", tmp_path / "r")
    assert line == "error: CUDA was asked for but this machine has no CUDA GPU; use --device cpu or auto"


def test_sample_creates_the_folders_of_its_picture(capsys, tmp_path, checkpoint):
    picture = tmp_path / "new" / "deeper" / "s.png"
    assert main(["sample", "--checkpoint", str(checkpoint), "--out", str(picture), "--n", "8"]) == 0
    assert Image.open(picture).size[0] > 50
    assert "Traceback" not in capsys.readouterr().err


def test_sample_out_under_a_file_or_at_a_folder_is_refused(capsys, tmp_path, checkpoint):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    line = refused(capsys, "sample", "--checkpoint", checkpoint, "--out", existing / "s.png")
    assert line == f"error: cannot write --out {existing / 's.png'}: {existing} is a file, not a folder; " \
                   "choose another path"
    line = refused(capsys, "sample", "--checkpoint", checkpoint, "--out", tmp_path)
    assert line == f"error: --out {tmp_path} is a folder; name the picture to write, e.g. {tmp_path / 'samples.png'}"
    assert existing.read_text() == "keep me"


def test_sample_removes_the_folders_it_made_when_the_checkpoint_is_bad(capsys, tmp_path):
    line = refused(capsys, "sample", "--checkpoint", tmp_path / "none.safetensors",
                   "--out", tmp_path / "new" / "s.png")
    assert "cannot read the checkpoint" in line
    assert not (tmp_path / "new").exists()


def test_sweep_out_that_is_a_file_is_refused_before_any_run(capsys, tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    line = refused(capsys, "sweep", "--seeds", "1", "--steps", "10", "--out", existing)
    assert line == f"error: cannot write --out {existing}: {existing} is a file, not a folder; choose another path"
    assert existing.read_text() == "keep me"


@pytest.mark.slow
def test_refusals_in_a_real_process_print_no_traceback(tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    no_gpu_env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    for args, words in [
        (["train", "--threads", "-3", "--out", tmp_path / "r"], "--threads must be a whole number >= 1"),
        (["train", "--steps", "5", "--out", existing], "is a file, not a folder"),
        (["train", "--device", "cuda", "--steps", "5", "--out", tmp_path / "r"], "this machine has no CUDA GPU"),
    ]:
        result = subprocess.run([sys.executable, "-m", "ganapp", *map(str, args)], cwd=ROOT, capture_output=True,
                                text=True, timeout=300, env=no_gpu_env)
        assert result.returncode == 2 and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists() and existing.read_text() == "keep me"
