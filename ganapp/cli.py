"""Command line: `python -m ganapp train|sample|bench|sweep ...`.

Every GANConfig field is a `train` flag, generated from the dataclass so the CLI can
never drift from the config; `--help` shows each field's help text.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any, get_type_hints

from .config import DATASETS, ConfigError, GANConfig, field_choices


class CliError(Exception):
    """A one-line reason for a non-zero exit."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise CliError(f"{self.prog}: {message} (see --help)")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per GANConfig field; defaults stay None so only given flags override."""
    hints = get_type_hints(GANConfig)
    defaults = GANConfig()
    for f in dataclasses.fields(GANConfig):
        help_text = f.metadata.get("help", "")
        default = getattr(defaults, f.name)
        hint = hints[f.name]
        if hint is bool:
            parser.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, default=None,
                                help=help_text + f" (default: {'on' if default else 'off'})")
            continue
        choices = field_choices(f.name)
        value_type = float if hint in (float, float | None) else int if hint is int else str
        parser.add_argument(_flag(f.name), type=_typed(value_type, f.name), default=None, choices=choices,
                            metavar=f.name.upper() if not choices else None,
                            help=f"{help_text} (default: {'off' if default is None else default})")


def _typed(kind: type, name: str):
    def convert(text: str):
        try:
            return kind(text)
        except ValueError:
            words = {int: "a whole number", float: "a number", str: "text"}[kind]
            raise argparse.ArgumentTypeError(f"{_flag(name)} must be {words}; got {text!r}") from None
    convert.__name__ = kind.__name__
    return convert


def config_from_args(args: argparse.Namespace, base: GANConfig | None = None) -> GANConfig:
    values = (base or GANConfig()).to_dict()
    for f in dataclasses.fields(GANConfig):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    return GANConfig.from_dict(values)


class ProgressBar:
    """A one-line progress bar on stderr (redrawn at most 10 times a second)."""

    def __init__(self, total: int, *, enabled: bool = True, stream=sys.stderr):
        self.total, self.enabled, self.stream = total, enabled, stream
        self.last_draw = 0.0

    def update(self, step: int, text: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last_draw < 0.1):
            return
        self.last_draw = now
        width = 30
        filled = int(width * step / max(self.total, 1))
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {step}/{self.total} {text}\033[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


# ----------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from .checkpoint import trainer_from_checkpoint
    from .metrics import evaluator_for
    from .runfiles import write_run
    from .training import Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.resume:
        from .checkpoint import load_checkpoint

        saved_config, _, _ = load_checkpoint(args.resume)
        config = config_from_args(args, base=saved_config)
        trainer = trainer_from_checkpoint(args.resume, steps=config.steps)
    else:
        config = config_from_args(args)
        trainer = Trainer(config)
    out = Path(args.out)
    techniques = ", ".join(config.techniques) or "no techniques (vanilla)"
    print(f"training {config.data} for {config.steps} steps on {trainer.device} with {techniques}; "
          f"writing to {out}", file=sys.stderr)
    bar = ProgressBar(config.steps, enabled=not args.quiet)
    started = time.perf_counter()

    def on_log(row):
        bar.update(row["step"], f"d_loss {row['d_loss']:.3f} g_loss {row['g_loss']:.3f}",
                   force=row["step"] == config.steps)

    evaluate = evaluator_for(trainer) if config.metrics_every else None
    try:
        status = trainer.train(on_log=on_log, evaluate=evaluate)
    except KeyboardInterrupt:
        status = "stopped"
    finally:
        bar.close()
        write_run(trainer, out)  # also after a stop or a divergence: nothing is lost
    elapsed = time.perf_counter() - started
    print(f"{status} at step {trainer.step} in {elapsed:.1f} s "
          f"({trainer.step / max(trainer.seconds, 1e-9):.0f} training steps/s); files in {out}", file=sys.stderr)
    return 0 if status == "finished" else 130


def cmd_sample(args: argparse.Namespace) -> int:
    from . import render
    from .checkpoint import trainer_from_checkpoint
    from .runfiles import samples_picture

    if not 1 <= args.n <= 10_000:
        raise CliError(f"--n must be between 1 and 10000; got {args.n}")
    trainer = trainer_from_checkpoint(args.checkpoint, device=None)
    samples = trainer.sample(args.n, seed=args.seed)
    render.save_png(samples_picture(trainer.dataset, samples), args.out)
    print(f"wrote {args.n} samples from step {trainer.step} to {args.out}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    if args.repeats < 1 or args.seconds <= 0:
        raise CliError("--repeats must be >= 1 and --seconds > 0")
    return bench_main(repeats=args.repeats, seconds=args.seconds, threads=args.threads)


def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import main as sweep_main

    return sweep_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ganapp", description="Train GANs with and without the five techniques of "
                     "Salimans et al. (2016), sample from checkpoints, and benchmark.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train a GAN and write config.json, metrics.csv, samples.png "
                                "and checkpoint.safetensors into --out")
    add_config_flags(train)
    train.add_argument("--out", required=True, help="folder for the run's files")
    train.add_argument("--resume", help="continue from this checkpoint (flags given override its config)")
    train.add_argument("--threads", type=int, default=1,
                       help="torch CPU threads (default 1: the fastest for these small models on a shared machine)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=cmd_train)

    sample = commands.add_parser("sample", help="draw samples from a checkpoint into a PNG picture")
    sample.add_argument("--checkpoint", required=True, help="a checkpoint.safetensors written by ganapp")
    sample.add_argument("--out", required=True, help="PNG file to write")
    sample.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    sample.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    sample.set_defaults(run=cmd_sample)

    bench = commands.add_parser("bench", help="ganapp's training step against a bare PyTorch loop, and the "
                                "cost of each technique; the last line is 'ratio X'")
    bench.add_argument("--repeats", type=int, default=15, help="interleaved rounds per measurement (default 15)")
    bench.add_argument("--seconds", type=float, default=0.3, help="length of one round in seconds (default 0.3)")
    bench.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    bench.set_defaults(run=cmd_bench)

    sweep = commands.add_parser("sweep", help="ablation: vanilla, each technique alone, all five and the "
                                "paper's 'our methods', over several seeds; prints and writes a table")
    sweep.add_argument("--data", default="ring8", choices=DATASETS, help="data set (default ring8)")
    sweep.add_argument("--seeds", type=int, default=5, help="number of seeds, 0..N-1 (default 5)")
    sweep.add_argument("--steps", type=int, default=2000, help="training steps per run (default 2000)")
    sweep.add_argument("--out", default=None, help="folder for sweep.csv and sweep.md (default runs/sweep-DATA)")
    sweep.add_argument("--workers", type=int, default=0, help="processes (default: the number of cores)")
    sweep.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="override a config field for every run, e.g. --set batch_size=128 (repeatable)")
    sweep.set_defaults(run=cmd_sweep)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    from .data import DataError

    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except (CliError, ConfigError, CheckpointError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # TrainingDiverged and friends: one line, not a traceback
        from .training import TrainingDiverged

        if isinstance(error, TrainingDiverged):
            print(f"error: {error}", file=sys.stderr)
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
