"""The ablation sweep: `python -m ganapp sweep --data ring8 --seeds 5 --steps 2000`.

Trains vanilla, each of the five techniques alone, all five together, and the paper's
"our methods" set (everything but feature matching and historical averaging, as in
Table 3 of Salimans et al. 2016), each with seeds 0..N-1, and reports every metric as
mean ± standard deviation over the seeds, with the seconds one run took. Runs go to
worker processes (one torch thread each), so the sweep uses every core it is given.

It writes into --out: runs.csv (one row per run), sweep.csv (the summary, numbers only)
and sweep.md (the summary as a Markdown table, also printed).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any, get_type_hints

import numpy as np

from .config import ConfigError, GANConfig

# Variant name -> the config fields it turns on. Knobs are the config defaults, apart
# from label smoothing's alpha (0.9, the paper's usual value) and HA's mode (the paper's).
VARIANTS: dict[str, dict[str, Any]] = {
    "vanilla": {},
    "FM": {"feature_matching": True},
    "MBD": {"minibatch_discrimination": True},
    "HA": {"historical_averaging": "uniform"},
    "LS": {"label_smoothing": 0.9},
    "VBN": {"virtual_batch_norm": True},
    "all five": {"feature_matching": True, "minibatch_discrimination": True, "historical_averaging": "uniform",
                 "label_smoothing": 0.9, "virtual_batch_norm": True},
    "our methods": {"minibatch_discrimination": True, "label_smoothing": 0.9, "virtual_batch_norm": True},
}
SWEEP_FIELDS = ("data", "seed", "steps")  # set by the sweep's own flags, not by --set
METRIC_ORDER = ("modes_covered", "high_quality", "mode_kl", "nn_distance",
                "classifier_score", "frechet_distance", "classes_covered")
METRIC_TITLES = {
    "modes_covered": "modes covered", "high_quality": "high-quality %", "mode_kl": "mode KL",
    "nn_distance": "NN distance", "classifier_score": "classifier score",
    "frechet_distance": "Fréchet distance", "classes_covered": "classes covered", "seconds": "seconds/run",
}


# ----------------------------------------------------------------------------- settings


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """'field=value' strings -> typed config values; ConfigError naming the bad one."""
    hints = get_type_hints(GANConfig)
    known = {f.name for f in dataclasses.fields(GANConfig)}
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name, text = name.strip().replace("-", "_"), text.strip()
        if not sep or not name:
            raise ConfigError(f"--set expects FIELD=VALUE, e.g. --set batch_size=128; got {pair!r}")
        if name not in known:
            raise ConfigError(f"--set {pair}: unknown setting {name!r}")
        if name in SWEEP_FIELDS:
            raise ConfigError(f"--set {pair}: use the sweep's own --{name}{'s' if name == 'seed' else ''} flag")
        values[name] = _convert(name, text, hints[name])
    return values


def _convert(name: str, text: str, hint: Any) -> Any:
    lowered = text.lower()
    if hint is bool:
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--set {name}={text}: expected true or false")
    if hint == (float | None) and lowered in ("none", "off", ""):
        return None
    try:
        if hint is int:
            return int(text)
        if hint in (float, float | None):
            return float(text)
    except ValueError:
        raise ConfigError(f"--set {name}={text}: expected a {'whole number' if hint is int else 'number'}") from None
    return text


def sweep_configs(data: str, seeds: int, steps: int, overrides: dict[str, Any]) -> list[tuple[str, int, dict]]:
    """(variant, seed, config dict) for every run, each config validated.

    Metrics are computed only at the last step unless --set metrics_every says otherwise:
    the sweep keeps only the final row, and evaluating every 250 steps would waste time.
    """
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1; got {seeds}")
    base = {"metrics_every": steps, **overrides, "data": data, "steps": steps}
    runs = []
    for seed in range(seeds):
        for variant, fields in VARIANTS.items():
            config = GANConfig.from_dict({**base, **fields, "seed": seed})  # validates, raises ConfigError
            runs.append((variant, seed, config.to_dict()))
    return runs


# ----------------------------------------------------------------------------- one run


def _init_worker() -> None:
    import torch

    from . import metrics, training  # noqa: F401  imported here, so no run's seconds include imports

    torch.set_num_threads(1)  # one core per process; the sweep runs as many processes as cores


def run_one(task: tuple[str, int, dict]) -> dict[str, Any]:
    """Train one configuration and return its final metrics (module-level, so spawn can import it)."""
    from .metrics import evaluator_for
    from .training import HISTORY_COLUMNS, Trainer, TrainingDiverged

    variant, seed, config_dict = task
    started = time.perf_counter()
    trainer = Trainer(GANConfig.from_dict(config_dict))
    evaluate = evaluator_for(trainer)
    try:
        status = trainer.train(evaluate=evaluate)
    except TrainingDiverged:
        status = "diverged"
    final = next((row for row in reversed(trainer.history) if set(row) - set(HISTORY_COLUMNS)), {})
    metrics = {k: v for k, v in final.items() if k not in HISTORY_COLUMNS} if status == "finished" else {}
    return {"variant": variant, "seed": seed, "status": status, "step": trainer.step,
            "metrics": {k: v for k, v in metrics.items() if not k.startswith("real_")},
            "reference": {k[len("real_"):]: v for k, v in metrics.items() if k.startswith("real_")},
            "train_seconds": round(trainer.seconds, 3), "seconds": round(time.perf_counter() - started, 3)}


# ----------------------------------------------------------------------------- tables


def metric_names(results: list[dict[str, Any]]) -> list[str]:
    found = {name for r in results for name in r["metrics"]}
    return [m for m in METRIC_ORDER if m in found] + sorted(found - set(METRIC_ORDER))


def summarise(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per variant, in VARIANTS order: runs finished, and for each metric and for
    seconds the mean and standard deviation (ddof=1; 0 with a single run) over seeds."""
    names = metric_names(results) + ["seconds"]
    rows = []
    for variant in VARIANTS:
        own = [r for r in results if r["variant"] == variant]
        if not own:
            continue
        finished = [r for r in own if r["status"] == "finished"]
        row: dict[str, Any] = {"variant": variant, "runs": len(own), "finished": len(finished)}
        for name in names:
            values = np.array([r["seconds"] if name == "seconds" else r["metrics"].get(name, math.nan)
                               for r in finished], dtype=np.float64)
            values = values[np.isfinite(values)]
            row[f"{name}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{name}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0 if len(values) else math.nan
        rows.append(row)
    return rows


def reference_row(results: list[dict[str, Any]]) -> dict[str, float]:
    """Real held-out data through the same measure (image sets, spiral), if any run had it."""
    for r in results:
        if r["reference"]:
            return {k: v for k, v in r["reference"].items() if isinstance(v, (int, float))}
    return {}


def _number(value: float, like: float | None = None) -> str:
    """About three significant digits, with the same decimals for a mean and its std."""
    if value is None or not math.isfinite(value):
        return "–"
    size = abs(like if like is not None and math.isfinite(like) else value)
    decimals = 3 if size < 1 else 2 if size < 10 else 1 if size < 1000 else 0
    return f"{value:.{decimals}f}"


def markdown_table(summary: list[dict[str, Any]], reference: dict[str, float], names: list[str],
                   *, title: str) -> str:
    columns = names + ["seconds"]
    header = ["variant", "techniques"] + [METRIC_TITLES.get(n, n) for n in columns]
    lines = [title, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary:
        techniques = "+".join(GANConfig(**VARIANTS[row["variant"]]).techniques) or "none"
        cells = [row["variant"] + ("" if row["finished"] == row["runs"] else f" ({row['finished']}/{row['runs']} finished)"),
                 techniques]
        for name in columns:
            mean, std = row[f"{name}_mean"], row[f"{name}_std"]
            cells.append(f"{_number(mean)} ± {_number(std, like=mean)}" if math.isfinite(mean) else "–")
        lines.append("| " + " | ".join(cells) + " |")
    if reference:
        cells = ["real held-out data", "–"] + [_number(reference[n]) if n in reference else "–" for n in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return buffer.getvalue()


def write_outputs(out: Path, results: list[dict[str, Any]], *, title: str) -> dict[str, Path]:
    """runs.csv, sweep.csv and sweep.md in ``out``; returns their paths."""
    from .runfiles import write_text

    out.mkdir(parents=True, exist_ok=True)
    names = metric_names(results)
    order = {v: i for i, v in enumerate(VARIANTS)}
    results = sorted(results, key=lambda r: (order[r["variant"]], r["seed"]))
    run_rows = [{"variant": r["variant"], "seed": r["seed"], "status": r["status"], "step": r["step"],
                 **r["metrics"], "train_seconds": r["train_seconds"], "seconds": r["seconds"]} for r in results]
    summary = summarise(results)
    reference = reference_row(results)
    if reference:  # the real-data row of the summary CSV
        summary_csv_rows = summary + [{"variant": "real held-out data", **{f"{k}_mean": v for k, v in reference.items()}}]
    else:
        summary_csv_rows = summary
    summary_columns = ["variant", "runs", "finished"] + [f"{n}_{s}" for n in names + ["seconds"] for s in ("mean", "std")]
    paths = {"runs": out / "runs.csv", "csv": out / "sweep.csv", "markdown": out / "sweep.md"}
    write_text(paths["runs"], _csv_text(run_rows, ["variant", "seed", "status", "step"] + names
                                        + ["train_seconds", "seconds"]))
    write_text(paths["csv"], _csv_text(summary_csv_rows, summary_columns))
    write_text(paths["markdown"], markdown_table(summary, reference, names, title=title))
    return paths


# ----------------------------------------------------------------------------- main


def _brief(result: dict[str, Any]) -> str:
    if result["status"] != "finished":
        return f"{result['status']} at step {result['step']}"
    shown = [f"{METRIC_TITLES.get(k, k)} {v if isinstance(v, int) else _number(v)}"
             for k, v in result["metrics"].items() if isinstance(v, (int, float))]
    return ", ".join(shown) or "finished"


def main(args) -> int:
    """Run the sweep described by the parsed `sweep` arguments; print and write the table."""
    overrides = parse_overrides(list(args.set or []))
    tasks = sweep_configs(args.data, args.seeds, args.steps, overrides)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if args.workers < 0:
        raise ConfigError(f"--workers must be >= 0 (0: one per core); got {args.workers}")
    workers = min(args.workers or cores, len(tasks))
    out = Path(args.out) if args.out else Path("runs") / f"sweep-{args.data}"
    if GANConfig.from_dict(tasks[0][2]).is_image:
        from .classifier import classifier_path

        if not classifier_path(args.data).is_file():
            print(f"warning: no classifier for {args.data} ({classifier_path(args.data)}); the table will only "
                  f"show seconds. Train one with: python scripts/train_classifier.py --data {args.data}",
                  file=sys.stderr)
    print(f"sweep: {len(VARIANTS)} variants x {args.seeds} seeds = {len(tasks)} runs of {args.steps} steps on "
          f"{args.data}, {workers} worker processes; writing to {out}", file=sys.stderr)

    started = time.perf_counter()
    results = []

    def report(done: int, result: dict[str, Any]) -> None:
        results.append(result)
        elapsed = time.perf_counter() - started
        left = elapsed / done * (len(tasks) - done)
        print(f"[{done}/{len(tasks)}] {result['variant']}, seed {result['seed']}: {_brief(result)} "
              f"({result['seconds']:.1f} s; {elapsed:.0f} s elapsed, about {left:.0f} s left)",
              file=sys.stderr, flush=True)

    if getattr(args, "ray", None):
        from .sweep_ray import run_on_ray

        workers = run_on_ray(tasks, args.ray, workers if args.workers else 0, report)
    else:
        context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch state
        with context.Pool(workers, initializer=_init_worker) as pool:
            for done, result in enumerate(pool.imap_unordered(run_one, tasks), start=1):
                report(done, result)
    wall = time.perf_counter() - started

    settings = ", ".join(f"{k}={v}" for k, v in overrides.items())
    title = (f"Ablation on {args.data}: {args.steps} steps, seeds 0..{args.seeds - 1}, mean ± std over seeds"
             + (f"; settings {settings}" if settings else "") + f". Sweep wall time {wall:.0f} s with {workers} workers.")
    paths = write_outputs(out, results, title=title)
    print(paths["markdown"].read_text(encoding="utf-8"))
    print(f"wrote {paths['markdown']}, {paths['csv']} and {paths['runs']}", file=sys.stderr)
    return 0
