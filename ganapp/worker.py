"""The body of one training job, run in its own process (see ganapp/server/).

The app's server never trains: it starts this module's `main` in a child process and
reads what the child sends on a one-way pipe: the typed messages of
ganapp.server.messages (Started, Note, Log, Samples, Curves, Metrics, Done).

Pictures are rendered and PNG-encoded here, in the child, so the server only moves
bytes. The backend preloads this module into the forkserver, so the imports below
(torch, the engine, and the torch._dynamo import that Adam triggers lazily, about 2 s)
are paid once per server rather than once per job. Nothing here imports gradio.

The job bounds itself as a backstop to the server's checks (which come first, from the
config): its address space (memory), the size of any file it writes, and, for a
checkpoint it reads, the config it declares, checked before a model is built.
"""

from __future__ import annotations

import math
import os
import resource
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch._dynamo  # noqa: F401  (imported lazily by torch.optim.Adam; 2 s per job if not preloaded)

from . import curves, metrics, picture_text, render
from .checkpoint import trainer_from_checkpoint
from .config import GANConfig
from .runfiles import samples_picture, write_run
from .server.control import Command, Player, PlayState
from .render_inside import SafeInsideViews
from .server.messages import Curves, Done, Inside, Log, Message, Metrics, Note, Samples, Started
from .techniques import minibatch_kernel
from .training import Trainer, TrainingDiverged

# Pictures cost 5-15 ms each (samples, drawing, PNG). A page shows at most two a second,
# so a picture due every sample_every steps is skipped when the last one is younger than
# MIN_PICTURE_INTERVAL_S (the final one is always drawn); when steps are slow (digits,
# MNIST) one is drawn at least every PICTURE_INTERVAL_S, so the page never sits on an
# old grid. Either way pictures take a few percent of training time at most.
MIN_PICTURE_INTERVAL_S = 0.5
PICTURE_INTERVAL_S = 1.0
CURVES_INTERVAL_S = 1.0  # the loss curves (about 9 ms to draw) at most once a second
SLOW_PICTURE_INTERVAL_S = 0.1  # in slow motion, a picture and the curves after each step, at most 10 a second
curves.warm_up()  # load the chart fonts here, in the forkserver, rather than in every job
minibatch_kernel.warm_up()  # and compile minibatch discrimination's loops (numba) once
WATCHDOG_INTERVAL_S = 0.5
ORPHAN_GRACE_S = 20.0  # a job whose server is gone stops, writes its files, and exits within this
POLITE_NICENESS = 10  # a job trains at this niceness (or lower priority), below the web server's 0
HUGE_LOSS = 100.0  # a loss above this at the end: the run diverged although nothing became NaN

Send = Callable[[Message], Any]


def polite_increment(niceness: int) -> int:
    """How much to renice a job that runs at `niceness` so that it trains at POLITE_NICENESS.

    A job of the local backend starts at the server's 0 and goes to 10. A job on a Ray node
    starts at its runner's niceness, Ray's worker niceness (15 by default,
    RAY_worker_niceness): it stays there rather than dropping to 19, the priority of
    anything else on the node that asked to come last."""
    return max(0, POLITE_NICENESS - niceness)


class ServerGone(Exception):
    """Nobody reads this job's messages any more."""


def main(spec: dict[str, Any], connection, stop_event, server_pid: int, control=None) -> None:
    """Entry point of a job process: run the job, as a polite and bounded neighbour.
    `control`: the reading end of the server's one-way pipe of play commands (pause, steps)."""
    torch.set_num_threads(1)  # one core per job; the job limit decides how many cores in total
    _bound_resources(spec.get("limits") or {})
    orphaned = threading.Event()
    _exit_with_server(server_pid, orphaned)
    polite = [False]

    def send(message: Message) -> None:
        if orphaned.is_set():
            return
        try:
            connection.send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
            orphaned.set()  # the server is gone: stop, write the files, exit (see _exit_with_server)
            return
        # The job starts at the server's priority, so that its first picture (about 0.1 s
        # of work) is not held up by busy neighbours; then it trains at nice 10, and the
        # web server (nice 0) answers polls first (measured in GRADIO_NOTES §3).
        if not polite[0] and isinstance(message, (Samples, Done)):
            polite[0] = True
            try:
                os.nice(polite_increment(os.nice(0)))
            except OSError:
                pass

    try:
        run(spec, send, lambda: stop_event.is_set() or orphaned.is_set(),
            receive=_pipe_receiver(control) if control is not None else None)
    finally:
        for end in (connection, control):
            try:
                if end is not None:
                    end.close()
            except OSError:
                pass


def _pipe_receiver(control) -> Callable[[float], list[Command]]:
    """The play commands that arrived on the pipe, waiting at most `timeout` for the first.
    A closed pipe (the server let go of this job) sends nothing more; the job then waits
    as asked, and its stop flag (the orphan watchdog) ends it."""
    closed = [False]

    def receive(timeout: float) -> list[Command]:
        commands: list[Command] = []
        if closed[0]:
            time.sleep(timeout)
            return commands
        try:
            wait = timeout
            while len(commands) < 100 and control.poll(wait):
                commands.append(control.recv())
                wait = 0
        except (EOFError, OSError):
            closed[0] = True
        return commands

    return receive


def _bound_resources(limits: dict[str, Any]) -> None:
    """OS-level backstops: address space and file size. The server already refused configs
    whose estimate is above its limits; these catch what an estimate missed."""
    memory = limits.get("memory_bytes")
    if isinstance(memory, int) and memory > 0:
        try:  # what the process already maps (torch's libraries: about 1-2 GB) plus the budget, doubled
            mapped = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
            ceiling = mapped + 2 * memory
            resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
        except (OSError, ValueError):
            pass
    run_bytes = limits.get("run_bytes")
    if isinstance(run_bytes, int) and run_bytes > 0:
        try:  # a write past this raises OSError (EFBIG) instead of filling the disk
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (run_bytes, run_bytes))
        except (OSError, ValueError):
            pass


def _exit_with_server(server_pid: int, orphaned: threading.Event) -> None:
    """Stop this job when the server is gone (killed without cleaning up its children).

    A forkserver child's parent is the forkserver, which exits when the server does; so
    either a new parent or a vanished server pid means the job has nobody to report to.
    It then stops like a stopped run (its checkpoint and files are written, and a
    restarted server lists it as interrupted), and exits for good after ORPHAN_GRACE_S.
    """
    parent = os.getppid()

    def watch() -> None:
        while not orphaned.is_set():
            time.sleep(WATCHDOG_INTERVAL_S)
            try:
                os.kill(server_pid, 0)
            except ProcessLookupError:
                orphaned.set()
            except PermissionError:
                pass
            if os.getppid() != parent:
                orphaned.set()
        time.sleep(ORPHAN_GRACE_S)
        os._exit(3)

    threading.Thread(target=watch, name="exit-with-server", daemon=True).start()


def run(spec: dict[str, Any], send: Send, should_stop: Callable[[], bool],
        receive: Callable[[float], list[Command]] | None = None) -> str:
    """Run one job described by `spec` and report through `send`; returns the final state.

    receive(timeout), when given, returns the play commands the server sent (pause, resume,
    single steps, speed: ganapp.server.control), waiting at most `timeout` for the first.

    spec: {"kind": "train" | "continue" | "view", "config": dict (train, continue),
           "steps": int (continue), "checkpoint": path (continue, view), "out_dir": path}.
    Every failure ends in a Done("failed", reason, ...) message a student can read;
    nothing is raised to the caller.
    """
    trainer = None
    try:
        trainer = _make_trainer(spec, send)
        send(Started(config=trainer.config.to_dict(), step=trainer.step, history=list(trainer.history)))
        player = Player(receive, send, should_stop) if receive is not None else None
        state = _train(trainer, spec, send, should_stop, player)
        reason = None
    except TrainingDiverged as error:
        state, reason = "failed", str(error)
    except Exception as error:  # ConfigError, CheckpointError, DataError, CUDA errors, bugs
        state, reason = "failed", _plain(error)
        if _out_of_memory(error):  # the address-space backstop (_bound_resources), or the machine's
            reason = _memory_reason(spec.get("limits") or {})
        elif not _expected(error):
            traceback.print_exc(file=sys.stderr)  # a bug: keep the trace in the server log
    if trainer is not None:
        _send_curves(trainer, send, spec.get("lang"))  # the whole run, also after a stop or a failure
    run_bytes = (spec.get("limits") or {}).get("run_bytes")
    files = _write_files(trainer, spec["out_dir"], send, run_bytes) if trainer is not None else {}
    seconds = trainer.seconds if trainer is not None else 0.0
    send(Done(state=state, reason=reason, files=files, seconds=seconds,
              warning=_divergence_warning(trainer) if state == "finished" else None))
    return state


def _make_trainer(spec: dict[str, Any], send: Send | None = None) -> Trainer:
    kind = spec["kind"]
    limits = spec.get("limits") or {}
    if kind == "train":
        config = GANConfig.from_dict(spec["config"])
        _prepare_data(config, send)
        return Trainer(config)
    check = _limit_check(limits)
    if kind == "continue":
        return trainer_from_checkpoint(spec["checkpoint"], steps=int(spec["steps"]), check=check)
    if kind == "view":
        trainer = trainer_from_checkpoint(spec["checkpoint"], check=check)
        # Viewing trains nothing: the run ends where the checkpoint stopped.
        trainer.config = trainer.config.replace(steps=max(trainer.step, 1))
        return trainer
    raise ValueError(f"unknown job kind {kind!r}")


def _prepare_data(config: GANConfig, send: Send | None) -> None:
    """A data set that must be downloaded first says so in the page (once per machine, under a lock)."""
    from . import data, datasets_cache

    if send is None or datasets_cache.cached(config.data):
        return
    data.download_dataset(config.data, on_download=lambda text: send(Note(text=text)))


def _limit_check(limits: dict[str, Any]):
    """The server's limits held against a checkpoint's declared config before a model is built
    (the server checked the same for uploads; this is the job's own backstop)."""
    from .budget import describe_bytes, estimate
    from .checkpoint import CheckpointError

    def check(config: GANConfig) -> None:
        for key, value, what in (("max_steps", config.steps, "steps"),
                                 ("max_batch_size", config.batch_size, "batch size"),
                                 ("max_hidden_dim", config.hidden_dim, "model width (hidden_dim)")):
            if isinstance(limits.get(key), int) and value > limits[key]:
                raise CheckpointError(f"this checkpoint's {what} is {value:,}; this server allows {limits[key]:,}")
        needs = estimate(config)
        if isinstance(limits.get("memory_bytes"), int) and needs.memory_bytes > limits["memory_bytes"]:
            raise CheckpointError(f"this checkpoint's model would need about {describe_bytes(needs.memory_bytes)} "
                                  f"of memory; this server allows {describe_bytes(limits['memory_bytes'])} per job")
        if isinstance(limits.get("run_bytes"), int) and needs.checkpoint_bytes > limits["run_bytes"]:
            raise CheckpointError(f"this checkpoint's model is about {describe_bytes(needs.checkpoint_bytes)}; "
                                  f"this server keeps at most {describe_bytes(limits['run_bytes'])} per run")

    return check


def _divergence_warning(trainer: Trainer | None) -> str | None:
    """A run can end 'finished' with losses of 1e6: say so, with what to try. Looks at the
    last quarter of the run, where a run that recovered from an early spike is calm again."""
    if trainer is None or not trainer.history:
        return None
    rows = trainer.history[-max(1, len(trainer.history) // 4):]
    worst = max(abs(float(row.get(key, 0.0))) for row in rows for key in ("d_loss", "g_loss"))
    if math.isfinite(worst) and worst <= HUGE_LOSS:
        return None
    return (f"the losses grew huge (up to {worst:.3g}) late in the run: training diverged although nothing "
            "failed; try a smaller learning rate")


def _train(trainer: Trainer, spec: dict[str, Any], send: Send, should_stop: Callable[[], bool],
           player: Player | None = None) -> str:
    last_picture, last_curves = [0.0], [time.perf_counter()]
    picture_step = [-1]  # the step of the last picture sent (a step by hand sends one, once)

    # The views inside the game (D's heatmap, G's push, the techniques' lenses) go with each
    # picture; a drawing error switches them off and never fails the run (ganapp.render_inside).
    inside = SafeInsideViews(trainer) if spec.get("inside", True) else None

    def send_picture(step: int, samples=None) -> None:
        samples = trainer.fixed_samples() if samples is None else samples
        send(Samples(step=step, png=render.png_bytes(samples_picture(trainer.dataset, samples, spec.get("lang")))))
        drawn = inside.draw(step, samples) if inside is not None else None
        if drawn is not None:
            send(Inside(step=step, pictures=drawn[0], numbers=drawn[1]))
        last_picture[0] = time.perf_counter()
        picture_step[0] = step

    def on_log(row: dict[str, float]) -> None:
        send(Log(row=row))
        step = int(row["step"])
        now = time.perf_counter()
        if (step % trainer.config.sample_every != 0 and step != trainer.config.steps
                and now - last_picture[0] >= PICTURE_INTERVAL_S):
            send_picture(step)
        if now - last_curves[0] >= CURVES_INTERVAL_S and step != trainer.config.steps:
            _send_curves(trainer, send, spec.get("lang"))
            last_curves[0] = now

    def on_metrics(step: int, measured: dict[str, Any]) -> None:
        numbers = {k: float(v) for k, v in measured.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        warning = measured.get("warning")
        lang = picture_text.picture_language(spec.get("lang"))
        other = picture_text.picture_language("en" if lang == "zh-TW" else "zh-TW")  # "en" without a CJK font
        # The chart in both languages (a few ms, once per measurement): a page switched to the
        # other one shows it, and the counts it is drawn from stay in the job.
        send(Metrics(step=step, numbers=numbers, warning=warning if isinstance(warning, str) else None,
                     png=_metrics_png(measured, lang),
                     other_png=_metrics_png(measured, other) if other != lang else None))

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
        if (spec.get("every_picture") or step == trainer.config.steps
                or time.perf_counter() - last_picture[0] >= MIN_PICTURE_INTERVAL_S):
            send_picture(step, samples)

    def on_step(kind: str, row: dict[str, float] | None) -> None:
        """After a step taken by hand (or paced by the slow-motion speed): every view of it
        now, its log row already sent: the picture, the curves, the job's play state."""
        now = time.perf_counter()
        slow = player is not None and player.slow
        if picture_step[0] != trainer.step or kind == "d":
            if not slow or now - last_picture[0] >= SLOW_PICTURE_INTERVAL_S:
                send_picture(trainer.step)
        if kind != "d" and (not slow or now - last_curves[0] >= SLOW_PICTURE_INTERVAL_S):
            _send_curves(trainer, send, spec.get("lang"))
            last_curves[0] = now
        if player is not None and not slow:
            player.report(d_loss=row.get("d_loss") if kind == "d" and row else None)

    evaluate = _safe_evaluator(trainer, send) if trainer.config.metrics_every else None
    if player is not None:
        player.trainer = trainer
        # A pause shows the step it landed on (a picture only if the last one is of an older step).
        player.on_pause = lambda: send_picture(trainer.step) if picture_step[0] != trainer.step else None
    return trainer.train(on_log=on_log, on_samples=on_samples, on_metrics=on_metrics,
                         should_stop=should_stop, evaluate=evaluate,
                         gate=player.gate if player is not None else None,
                         on_step=on_step if player is not None else None)


def _send_curves(trainer: Trainer, send: Send, lang: Any = "en") -> None:
    """The loss curves so far, as PNG; a drawing bug is logged, never the end of a run."""
    if not trainer.history:
        return
    try:
        send(Curves(step=trainer.step, png=curves.training_curves_png(trainer.history, lang=lang)))
    except Exception:
        traceback.print_exc(file=sys.stderr)


def _safe_evaluator(trainer: Trainer, send: Send):
    """The metrics module's evaluator, switched off (with a note) if it ever fails.

    Metrics are a view on training, so a broken metric must not end a run.
    """
    try:
        evaluate = metrics.evaluator_for(trainer)
    except Exception as error:
        send(Metrics(step=trainer.step, numbers={}, warning=f"metrics are off for this run: {_plain(error)}"))
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


def _metrics_png(measured: dict[str, Any], lang: Any = "en") -> bytes | None:
    draw = getattr(metrics, "metrics_picture", None)
    if draw is None or measured.get("histogram") is None:
        return None
    try:
        picture = draw(measured, lang=lang)
        return None if picture is None else render.png_bytes(picture)
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return None


def _write_files(trainer: Trainer, out_dir: str, send: Send, run_bytes: int | None = None) -> dict[str, str]:
    """config.json, metrics.csv, samples.png and the checkpoint, also after a stop or a failure;
    no checkpoint when its tensors alone would pass the server's bytes per run."""
    tensor_bytes = sum(t.numel() * t.element_size() for t in trainer.state_tensors().values())
    if run_bytes is not None and tensor_bytes > run_bytes:
        send(Metrics(step=trainer.step, numbers={}, warning=f"no checkpoint written: it would be "
                     f"{tensor_bytes / 1e6:.0f} MB, above this server's {run_bytes / 1e6:.0f} MB per run"))
        return {}
    try:
        paths = write_run(trainer, out_dir)
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        send(Metrics(step=trainer.step, numbers={}, warning=f"could not write the run's files: {_plain(error)}"))
        return {}
    return {name: str(Path(path)) for name, path in paths.items()}


def _out_of_memory(error: Exception) -> bool:
    """numpy's MemoryError, or torch's allocator refusing (RuntimeError "can't allocate memory")."""
    return isinstance(error, MemoryError) or "can't allocate memory" in str(error) or "out of memory" in str(error)


def _memory_reason(limits: dict[str, Any]) -> str:
    from .budget import describe_bytes

    budget = limits.get("memory_bytes")
    allowed = f" ({describe_bytes(budget)} per job here)" if isinstance(budget, int) else ""
    return (f"the job ran out of the memory this server allows{allowed}; make the batch, the model width "
            "or the minibatch kernels smaller")


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
