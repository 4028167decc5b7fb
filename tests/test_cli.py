"""The command line as a teacher types it: real processes, real files."""

import csv
import dataclasses
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from ganapp.cli import build_parser, config_from_args
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


def test_bench_prints_a_table_and_ends_with_the_ratio_line():
    result = ganapp("bench", "--repeats", "2", "--seconds", "0.05")
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("ratio ") and 0 < float(last.split()[1]) < 10
    for technique in ("feature matching", "minibatch discrimination", "historical averaging", "label smoothing",
                      "virtual batch norm", "all five"):
        assert technique in result.stdout
