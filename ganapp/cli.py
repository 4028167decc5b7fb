"""Command line: `python -m ganapp train|sample|bench|sweep ...`.

Every GANConfig field is a `train` flag, generated from the dataclass so the CLI can
never drift from the config; `--help` shows each field's help text.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import get_type_hints

from .config import DATASETS, MAX_STEPS, ConfigError, GANConfig, field_choices
from .datasets_cache import DataError


class CliError(Exception):
    """A one-line reason for a non-zero exit."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        # "argument --threads: --threads must be ..." says the flag twice; keep our own words.
        own_words = re.match(r"argument (--[\w-]+)[^:]*: (\1 .*)", message)
        raise CliError(f"{self.prog}: {own_words.group(2) if own_words else message} (see --help)")


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
        if f.metadata.get("cli_file"):  # a drawn data set: a JSON file of points or strokes (or its code)
            parser.add_argument(_flag(f.name), type=_drawing_file, default=None, metavar="FILE.json",
                                help=f"{help_text} (default: none)")
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


def _drawing_file(text: str) -> str:
    """--drawn-points: a JSON file ({"strokes": [[[x, y], ...], ...]} or {"points": [[x, y], ...]}),
    centred and scaled to the drawing box, simplified and bounded (ganapp.drawn); or the
    compact code itself (what a link or config.json holds)."""
    from . import drawn

    path = Path(text)
    if not path.is_file():
        if text.lower().endswith(".json"):
            raise argparse.ArgumentTypeError(f"--drawn-points {text!r} is not a file")
        return text  # a code; GANConfig checks it
    try:
        if path.stat().st_size > drawn.MAX_INPUT_BYTES:
            raise argparse.ArgumentTypeError(f"--drawn-points {path.name} is larger than "
                                             f"{drawn.MAX_INPUT_BYTES // 1024} KB")
        raw = path.read_bytes()
    except OSError as error:
        raise argparse.ArgumentTypeError(f"--drawn-points {path.name} cannot be read: {error.strerror}") from None
    try:
        return drawn.from_json(raw)
    except drawn.DrawingError as error:
        raise argparse.ArgumentTypeError(f"--drawn-points {path.name} is not a usable drawing: {error}") from None


def _number_in(kind: type, flag: str, *, at_least: float | None = None, at_most: float | None = None,
               above: float | None = None):
    """An argparse type: a whole number or a finite number within bounds, refused in the flag's words."""
    words = "a whole number" if kind is int else "a number"
    bounds = " and ".join(part for part in (
        f">= {at_least}" if at_least is not None else "", f"> {above}" if above is not None else "",
        f"<= {at_most:,}" if at_most is not None else "") if part)

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if (value is None or not math.isfinite(value) or (at_least is not None and value < at_least)
                or (above is not None and value <= above) or (at_most is not None and value > at_most)):
            raise argparse.ArgumentTypeError(f"{flag} must be {words}{' ' + bounds if bounds else ''}; got {text!r}")
        return value
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
# Every check below runs before the work starts, so a refusal costs nothing and leaves
# nothing behind: the folders a command created for its output are removed again when it
# fails before writing anything into them.

NO_CUDA = "CUDA was asked for but this machine has no CUDA GPU; use --device cpu or auto"
RESUME_CAN_CHANGE = ("steps", "device")  # what a continued run may change; the rest is in its weights


def _output_folder(folder: Path, what: str) -> list[Path]:
    """Create ``folder`` (and its parents) and prove a file can be written in it; return the
    folders this created. Otherwise a CliError that starts "cannot write {what}" and says why."""
    if folder.exists() and not folder.is_dir():
        raise CliError(f"cannot write {what}: {folder} is a file, not a folder; choose another path")
    created = [f for f in reversed([folder, *folder.parents]) if not f.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _remove_empty(created)
        blocking_file = next((p for p in folder.parents if p.is_file()), None)
        reason = (f"{blocking_file} is a file, not a folder" if blocking_file
                  else f"{error.filename or folder}: {error.strerror or error}")
        raise CliError(f"cannot write {what}: {reason}") from None
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".ganapp-write-test-")
        os.close(handle)
        os.remove(probe)
    except OSError as error:
        _remove_empty(created)
        raise CliError(f"cannot write {what}: {folder} is not writable ({error.strerror or error})") from None
    return created


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):  # deepest first
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty, or gone: leave it


def _say(sentence: str) -> None:
    print(sentence, file=sys.stderr, flush=True)


def _check_device(name: str) -> None:
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise CliError(NO_CUDA)


def _resumed_config(args: argparse.Namespace):
    """The checkpoint's config with --steps and --device applied; CliError for any other
    flag, which the saved weights and optimizer state fix, and for nothing left to do."""
    from .checkpoint import load_checkpoint

    saved, _, meta = load_checkpoint(args.resume)
    config = config_from_args(args, base=saved)
    changed = [f.name for f in dataclasses.fields(GANConfig)
               if f.name not in RESUME_CAN_CHANGE and getattr(config, f.name) != getattr(saved, f.name)]
    if changed:
        flags = ", ".join(_flag(name) for name in changed)
        raise CliError(f"--resume continues a run with its own settings; only --steps and --device can change, "
                       f"so drop {flags} (or start a new run without --resume)")
    reached = int(meta.get("step", 0))
    if config.steps <= reached:
        raise CliError(f"{Path(args.resume).name} is already at step {reached:,}; give --steps above {reached:,} "
                       "to continue it")
    return config


def cmd_train(args: argparse.Namespace) -> int:
    if not args.out.strip():
        raise CliError("--out is empty; name a folder for the run's files")
    config = _resumed_config(args) if args.resume else config_from_args(args)  # a bad flag: no torch import

    import torch

    from .checkpoint import trainer_from_checkpoint
    from .data import load_dataset
    from .metrics import evaluator_for
    from .runfiles import write_run
    from .training import Trainer, choose_device

    _check_device(config.device)
    out = Path(args.out)
    created = _output_folder(out, f"--out {out}")
    try:
        torch.set_num_threads(args.threads)
        # Loaded here so that a first download of mnist says so before the bar starts.
        dataset = load_dataset(config.data, seed=config.seed, on_download=_say, drawing=config.drawn_points)
        if args.resume:
            trainer = trainer_from_checkpoint(args.resume, steps=config.steps, device=choose_device(config.device))
        else:
            trainer = Trainer(config, dataset=dataset)
    except BaseException:
        _remove_empty(created)
        raise
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
        try:
            write_run(trainer, out)  # also after a stop or a divergence: nothing is lost
        except OSError as error:
            raise CliError(f"training reached step {trainer.step}, but writing its files into {out} failed: "
                           f"{error.strerror or error}") from None
    elapsed = time.perf_counter() - started
    print(f"{status} at step {trainer.step} in {elapsed:.1f} s "
          f"({trainer.step / max(trainer.seconds, 1e-9):.0f} training steps/s); files in {out}", file=sys.stderr)
    return 0 if status == "finished" else 130


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from . import render
    from .checkpoint import trainer_from_checkpoint
    from .runfiles import samples_picture

    if not args.out.strip():
        raise CliError("--out is empty; name the PNG file to write")
    out = Path(args.out)
    if out.is_dir():
        raise CliError(f"--out {out} is a folder; name the picture to write, e.g. {out / 'samples.png'}")
    created = _output_folder(out.parent, f"--out {out}")
    try:
        # A checkpoint trained on a GPU still samples on a machine without one.
        device = None if torch.cuda.is_available() else torch.device("cpu")
        trainer = trainer_from_checkpoint(args.checkpoint, device=device)
        samples = trainer.sample(args.n, seed=args.seed)
        render.save_png(samples_picture(trainer.dataset, samples), out)
    except BaseException:
        _remove_empty(created)
        raise
    print(f"wrote {args.n} samples from step {trainer.step} to {out}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    return bench_main(repeats=args.repeats, seconds=args.seconds, threads=args.threads)


def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import main as sweep_main

    if args.out is not None and not args.out.strip():
        raise CliError("--out is empty; name a folder for the sweep's tables")
    out = Path(args.out) if args.out else Path("runs") / f"sweep-{args.data}"
    created = _output_folder(out, f"--out {out}")  # before the sweep, not after hours of it
    args.out = str(out)
    try:
        return sweep_main(args)
    except BaseException:
        _remove_empty(created)
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ganapp", description="Train GANs with and without the five techniques of "
                     "Salimans et al. (2016), sample from checkpoints, and benchmark.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train a GAN and write config.json, metrics.csv, samples.png "
                                "and checkpoint.safetensors into --out")
    add_config_flags(train)
    train.add_argument("--out", required=True, help="folder for the run's files")
    train.add_argument("--resume", help="continue from this checkpoint to --steps (only --steps and --device "
                       "can change; the rest is the checkpoint's)")
    train.add_argument("--threads", type=_number_in(int, "--threads", at_least=1), default=1,
                       help="torch CPU threads (default 1: the fastest for these small models on a shared machine)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=cmd_train)

    sample = commands.add_parser("sample", help="draw samples from a checkpoint into a PNG picture")
    sample.add_argument("--checkpoint", required=True, help="a checkpoint.safetensors written by ganapp")
    sample.add_argument("--out", required=True, help="PNG file to write (its folder is created if missing)")
    sample.add_argument("--n", type=_number_in(int, "--n", at_least=1, at_most=10_000), default=64,
                        help="number of samples, 1 to 10000 (default 64)")
    sample.add_argument("--seed", type=_number_in(int, "--seed", at_least=0, at_most=2**63 - 1), default=0,
                        help="noise seed (default 0)")
    sample.set_defaults(run=cmd_sample)

    bench = commands.add_parser("bench", help="ganapp's training step against a bare PyTorch loop, and the "
                                "cost of each technique; the last line is 'ratio X'")
    bench.add_argument("--repeats", type=_number_in(int, "--repeats", at_least=1), default=15,
                       help="interleaved rounds per measurement (default 15)")
    bench.add_argument("--seconds", type=_number_in(float, "--seconds", above=0), default=0.3,
                       help="length of one round in seconds (default 0.3)")
    bench.add_argument("--threads", type=_number_in(int, "--threads", at_least=1), default=1,
                       help="torch CPU threads (default 1)")
    bench.set_defaults(run=cmd_bench)

    sweep = commands.add_parser("sweep", help="ablation: vanilla, each technique alone, all five and the "
                                "paper's 'our methods', over several seeds; prints and writes a table")
    sweep.add_argument("--data", default="ring8", choices=DATASETS, help="data set (default ring8)")
    sweep.add_argument("--seeds", type=_number_in(int, "--seeds", at_least=1), default=5,
                       help="number of seeds, 0..N-1 (default 5)")
    sweep.add_argument("--steps", type=_number_in(int, "--steps", at_least=1, at_most=MAX_STEPS), default=2000,
                       help="training steps per run (default 2000)")
    sweep.add_argument("--out", default=None, help="folder for sweep.csv and sweep.md (default runs/sweep-DATA)")
    sweep.add_argument("--workers", type=_number_in(int, "--workers", at_least=0), default=0,
                       help="processes (default: the number of cores)")
    sweep.add_argument("--ray", default=None, metavar="ADDRESS",
                       help="run on a Ray cluster: local (a private instance here), auto, HOST:6379 or "
                            "ray://HOST:10001 (pip install ray); the same numbers as without it")
    sweep.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="override a config field for every run, e.g. --set batch_size=128 (repeatable)")
    sweep.set_defaults(run=cmd_sweep)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except (CliError, ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # CheckpointError, TrainingDiverged: one line, not a traceback
        # Looked up only if loaded, so that a mistyped flag is refused without importing torch.
        checkpoint, training = sys.modules.get("ganapp.checkpoint"), sys.modules.get("ganapp.training")
        if checkpoint is not None and isinstance(error, checkpoint.CheckpointError):
            print(f"error: {error}", file=sys.stderr)
            return 2
        if training is not None and isinstance(error, training.TrainingDiverged):
            print(f"error: {error}", file=sys.stderr)
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
