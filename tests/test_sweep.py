"""Tests for ganapp.sweep: a tiny real sweep in worker processes, and its settings parser."""

import argparse
import csv

import pytest

from ganapp import sweep
from ganapp.config import ConfigError


@pytest.mark.slow  # worker processes, each importing torch
def test_tiny_sweep_writes_runs_summary_and_markdown(tmp_path, capsys):
    args = argparse.Namespace(data="ring8", seeds=2, steps=30, out=str(tmp_path), workers=2,
                              set=["batch_size=32", "hidden_dim=32"])
    assert sweep.main(args) == 0
    with open(tmp_path / "runs.csv", newline="") as stream:
        runs = list(csv.DictReader(stream))
    assert len(runs) == 2 * len(sweep.VARIANTS)
    assert {(r["variant"], r["seed"]) for r in runs} == {(v, str(s)) for v in sweep.VARIANTS for s in (0, 1)}
    assert all(r["status"] == "finished" and r["step"] == "30" for r in runs)
    assert all(0 <= int(r["modes_covered"]) <= 8 and float(r["seconds"]) > 0 for r in runs)

    with open(tmp_path / "sweep.csv", newline="") as stream:
        summary = list(csv.DictReader(stream))
    assert [r["variant"] for r in summary] == list(sweep.VARIANTS)
    for column in ("modes_covered_mean", "modes_covered_std", "high_quality_mean", "mode_kl_mean", "seconds_mean"):
        assert column in summary[0]

    table = (tmp_path / "sweep.md").read_text()
    assert "| our methods | MBD+LS+VBN |" in table and "| all five | FM+MBD+HA+LS+VBN |" in table
    assert "modes covered" in table and "±" in table and "batch_size=32" in table
    printed = capsys.readouterr()
    assert "| vanilla | none |" in printed.out
    assert "[16/16]" in printed.err  # progress, one line per finished run


def test_overrides_are_typed_and_checked():
    assert sweep.parse_overrides(["batch_size=128", "label_smoothing=none", "minibatch-kernels=8",
                                  "feature_matching=true", "lr_generator=2e-4"]) == {
        "batch_size": 128, "label_smoothing": None, "minibatch_kernels": 8, "feature_matching": True,
        "lr_generator": 2e-4}
    with pytest.raises(ConfigError, match="unknown setting"):
        sweep.parse_overrides(["batchsize=3"])
    with pytest.raises(ConfigError, match="--seeds"):
        sweep.parse_overrides(["seed=3"])
    with pytest.raises(ConfigError, match="whole number"):
        sweep.parse_overrides(["batch_size=big"])
    with pytest.raises(ConfigError, match="batch_size"):
        sweep.sweep_configs("ring8", 1, 10, {"batch_size": 1})


def test_each_variant_turns_on_what_its_name_says():
    techniques = {v: sweep.GANConfig(**fields).techniques for v, fields in sweep.VARIANTS.items()}
    assert techniques["vanilla"] == []
    assert techniques["our methods"] == ["MBD", "LS", "VBN"]  # Table 3: all but FM and HA
    assert techniques["all five"] == ["FM", "MBD", "HA", "LS", "VBN"]
    assert [techniques[v] for v in ("FM", "MBD", "HA", "LS", "VBN")] == [["FM"], ["MBD"], ["HA"], ["LS"], ["VBN"]]
