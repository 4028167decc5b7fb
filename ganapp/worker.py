"""The body of one training job, run in its own process (see jobs.py).

The app's server never trains: it starts this module's `main` in a child process and
reads what the child puts on a multiprocessing queue. Messages are plain tuples:

    ("started", {"config": dict, "step": int, "history": [rows]})   once, when the trainer exists
    ("log", row)                                  each history row (losses, D outputs, metrics)
    ("samples", step, png_bytes)                  the fixed-noise sample picture, as PNG
    ("curves", step, png_bytes)                   the loss curves so far, as PNG (ganapp.curves)
    ("metrics", step, numbers, warning, png)      quality metrics; png is the bar chart or None
    ("done", state, reason, files, seconds)       last: 'finished' | 'stopped' | 'failed'

Pictures are rendered and PNG-encoded here, in the child, so the server only moves
bytes. jobs.py preloads this module into the forkserver, so the imports below (torch,
the engine, and the torch._dynamo import that Adam triggers lazily, about 2 s) are paid
once per server rather than once per job. Nothing here imports gradio.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch._dynamo  # noqa: F401  (imported lazily by torch.optim.Adam; 2 s per job if not preloaded)

from . import curves, metrics, render
from .checkpoint import trainer_from_checkpoint
from .config import GANConfig
from .runfiles import samples_picture, write_run
from .training import Trainer, TrainingDiverged

# Pictures cost 5-15 ms each (samples, drawing, PNG). A page shows at most two a second,
# so a picture due every sample_every steps is skipped when the last one is younger than
# MIN_PICTURE_INTERVAL_S (the final one is always drawn); when steps are slow (digits,
# MNIST) one is drawn at least every PICTURE_INTERVAL_S, so the page never sits on an
# old grid. Either way pictures take a few percent of training time at most.
MIN_PICTURE_INTERVAL_S = 0.5
PICTURE_INTERVAL_S = 1.0
CURVES_INTERVAL_S = 1.0  # the loss curves (about 9 ms to draw) at most once a second
curves.warm_up()  # load the chart fonts here, in the forkserver, rather than in every job
WATCHDOG_INTERVAL_S = 0.5

Send = Callable[[tuple], Any]


def main(spec: dict[str, Any], queue, stop_event, server_pid: int) -> None:
    """Entry point of a job process: run the job, as a polite neighbour."""
    torch.set_num_threads(1)  # one core per job; the job limit decides how many cores in total
    _exit_with_server(server_pid)
    polite = [False]

    def send(message: tuple) -> None:
        queue.put(message)
        # The job starts at the server's priority, so that its first picture (about 0.1 s
        # of work) is not held up by busy neighbours; then it trains at nice 10, and the
        # web server (nice 0) answers polls first (measured in GRADIO_NOTES §3).
        if not polite[0] and message[0] in ("samples", "done"):
            polite[0] = True
            try:
                os.nice(10)
            except OSError:
                pass

    try:
        run(spec, send, stop_event.is_set)
    finally:
        queue.close()
        queue.join_thread()  # flush the last messages before the process ends


def _exit_with_server(server_pid: int) -> None:
    """End this process when the server is gone (killed without cleaning up its children).

    A forkserver child's parent is the forkserver, which exits when the server does; so
    either a new parent or a vanished server pid means the job has nobody to report to.
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_INTERVAL_S)
            try:
                os.kill(server_pid, 0)
            except ProcessLookupError:
                os._exit(3)
            except PermissionError:
                pass
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, name="exit-with-server", daemon=True).start()


def run(spec: dict[str, Any], send: Send, should_stop: Callable[[], bool]) -> str:
    """Run one job described by `spec` and report through `send`; returns the final state.

    spec: {"kind": "train" | "continue" | "view", "config": dict (train, continue),
           "steps": int (continue), "checkpoint": path (continue, view), "out_dir": path}.
    Every failure ends in a ("done", "failed", reason, ...) message a student can read;
    nothing is raised to the caller.
    """
    trainer = None
    try:
        trainer = _make_trainer(spec)
        send(("started", {"config": trainer.config.to_dict(), "step": trainer.step,
                          "history": list(trainer.history)}))
        state = _train(trainer, spec, send, should_stop)
        reason = None
    except TrainingDiverged as error:
        state, reason = "failed", str(error)
    except Exception as error:  # ConfigError, CheckpointError, DataError, CUDA errors, bugs
        state, reason = "failed", _plain(error)
        if not _expected(error):
            traceback.print_exc(file=sys.stderr)  # a bug: keep the trace in the server log
    if trainer is not None:
        _send_curves(trainer, send)  # the whole run, also after a stop or a failure
    files = _write_files(trainer, spec["out_dir"], send) if trainer is not None else {}
    seconds = trainer.seconds if trainer is not None else 0.0
    send(("done", state, reason, files, seconds))
    return state


def _make_trainer(spec: dict[str, Any]) -> Trainer:
    kind = spec["kind"]
    if kind == "train":
        return Trainer(GANConfig.from_dict(spec["config"]))
    if kind == "continue":
        return trainer_from_checkpoint(spec["checkpoint"], steps=int(spec["steps"]))
    if kind == "view":
        trainer = trainer_from_checkpoint(spec["checkpoint"])
        # Viewing trains nothing: the run ends where the checkpoint stopped.
        trainer.config = trainer.config.replace(steps=max(trainer.step, 1))
        return trainer
    raise ValueError(f"unknown job kind {kind!r}")


def _train(trainer: Trainer, spec: dict[str, Any], send: Send, should_stop: Callable[[], bool]) -> str:
    last_picture, last_curves = [0.0], [time.perf_counter()]

    def send_picture(step: int, samples=None) -> None:
        samples = trainer.fixed_samples() if samples is None else samples
        send(("samples", step, render.png_bytes(samples_picture(trainer.dataset, samples))))
        last_picture[0] = time.perf_counter()

    def on_log(row: dict[str, float]) -> None:
        send(("log", row))
        step = int(row["step"])
        now = time.perf_counter()
        if (step % trainer.config.sample_every != 0 and step != trainer.config.steps
                and now - last_picture[0] >= PICTURE_INTERVAL_S):
            send_picture(step)
        if now - last_curves[0] >= CURVES_INTERVAL_S and step != trainer.config.steps:
            _send_curves(trainer, send)
            last_curves[0] = now

    def on_metrics(step: int, measured: dict[str, Any]) -> None:
        numbers = {k: float(v) for k, v in measured.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        warning = measured.get("warning")
        send(("metrics", step, numbers, warning if isinstance(warning, str) else None, _metrics_png(measured)))

    # The first picture goes out at once, before the metrics evaluator is built (it may
    # prepare a classifier first), so the page shows something within a fraction of a second.
    first_step = trainer.step
    send_picture(first_step)
    if spec["kind"] == "view":
        # Measure the checkpoint once, so the metrics panel (numbers, per-mode or per-class
        # bars, a collapse warning) shows what the run ended with. Under a second.
        evaluate = _safe_evaluator(trainer, send) if trainer.config.metrics_every else None
        if evaluate is not None:
            on_metrics(trainer.step, evaluate(trainer))
        return "finished"

    def on_samples(step: int, samples) -> None:
        if step == first_step:  # train() draws the starting step too; it was just sent
            return
        if step == trainer.config.steps or time.perf_counter() - last_picture[0] >= MIN_PICTURE_INTERVAL_S:
            send_picture(step, samples)

    evaluate = _safe_evaluator(trainer, send) if trainer.config.metrics_every else None
    return trainer.train(on_log=on_log, on_samples=on_samples, on_metrics=on_metrics,
                         should_stop=should_stop, evaluate=evaluate)


def _send_curves(trainer: Trainer, send: Send) -> None:
    """The loss curves so far, as PNG; a drawing bug is logged, never the end of a run."""
    if not trainer.history:
        return
    try:
        send(("curves", trainer.step, curves.training_curves_png(trainer.history)))
    except Exception:
        traceback.print_exc(file=sys.stderr)


def _safe_evaluator(trainer: Trainer, send: Send):
    """The metrics module's evaluator, switched off (with a note) if it ever fails.

    Metrics are a view on training, so a broken metric must not end a run.
    """
    try:
        evaluate = metrics.evaluator_for(trainer)
    except Exception as error:
        send(("metrics", trainer.step, {}, f"metrics are off for this run: {_plain(error)}", None))
        return None
    if evaluate is None:
        return None
    broken = [False]

    def guarded(current: Trainer) -> dict[str, Any]:
        if broken[0]:
            return {}
        try:
            measured = evaluate(current)
            return measured if isinstance(measured, dict) else {}
        except Exception as error:
            broken[0] = True
            traceback.print_exc(file=sys.stderr)
            return {"warning": f"metrics are off for the rest of this run: {_plain(error)}"}

    return guarded


def _metrics_png(measured: dict[str, Any]) -> bytes | None:
    draw = getattr(metrics, "metrics_picture", None)
    if draw is None or measured.get("histogram") is None:
        return None
    try:
        picture = draw(measured)
        return None if picture is None else render.png_bytes(picture)
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return None


def _write_files(trainer: Trainer, out_dir: str, send: Send) -> dict[str, str]:
    """config.json, metrics.csv, samples.png and the checkpoint, also after a stop or a failure."""
    try:
        paths = write_run(trainer, out_dir)
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        send(("metrics", trainer.step, {}, f"could not write the run's files: {_plain(error)}", None))
        return {}
    return {name: str(Path(path)) for name, path in paths.items()}


def _expected(error: Exception) -> bool:
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .data import DataError

    return isinstance(error, (ConfigError, CheckpointError, DataError))


def _plain(error: Exception) -> str:
    if _expected(error):
        return str(error)
    text = str(error) or "no message"
    return f"{type(error).__name__}: {text}"
