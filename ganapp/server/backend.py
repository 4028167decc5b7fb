"""The job backend seam: how a job is started, stopped and heard from.

The JobManager decides *which* run starts *when* (limits, fair turns, queue positions,
records); a backend only runs one job and hands back its messages. `LocalProcesses`
is the embedded default: one forkserver child per job on this machine. A cluster
backend implements the same two small protocols (start -> JobHandle; a handle that
drains, stops, terminates and closes), so the manager, the page and the API do not
change when jobs run elsewhere. Besides the job's messages (job -> server) and its stop
flag, a handle carries play commands server -> job (pause, resume, single steps, speed:
ganapp.server.control) with `control`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from typing import Any, Protocol

from .control import Command
from .messages import Message


class JobHandle(Protocol):
    """One started job, as the manager sees it. Every method returns at once."""

    def drain(self, final: bool = False) -> list[Message]:
        """The messages that arrived since the last call (final: also wait briefly for the last ones)."""

    def alive(self) -> bool: ...

    def exit_description(self) -> str:
        """How the job ended, for a reason a visitor reads ("signal 9", "exit code 3")."""

    def request_stop(self) -> None:
        """Ask the job to stop after its current step and write its files."""

    def control(self, command: Command) -> bool:
        """Send a play command to the job (ganapp.server.control); False when it cannot take
        one now (it has ended, or has not read the commands already sent). Never waits."""

    def terminate(self) -> None:
        """End the job now (it writes nothing more)."""

    def close(self) -> None:
        """Release every resource the handle holds (descriptors, processes); safe to call twice."""


class JobBackend(Protocol):
    def start(self, job_id: str, spec: dict[str, Any]) -> JobHandle:
        """Start one job; may block while the backend warms up (the first local job imports torch)."""

    def warm_up(self) -> None: ...

    def close(self) -> None: ...


def _job_entry(spec, connection, stop_event, server_pid, control=None):
    """Child-process entry; imports the worker (preloaded in the forkserver, so free)."""
    from .. import worker

    worker.main(spec, connection, stop_event, server_pid, control)


class LocalProcessHandle:
    """A job in a local child process: a one-way pipe for its messages, an event to stop it,
    and a second one-way pipe for play commands (server -> job).

    The server holds exactly three descriptors per running job (the message pipe's reading
    end, the command pipe's writing end and the process sentinel); `close` releases all
    three, so ended jobs leak nothing. The command pipe does not block the server: its end
    is non-blocking, and a command is a few dozen bytes, written whole or not at all.
    """

    def __init__(self, process, reader, stop_event, commands=None):
        self.process, self._reader, self._stop_event = process, reader, stop_event
        self._commands = commands
        self._closed = False
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def drain(self, final: bool = False) -> list[Message]:
        messages: list[Message] = []
        with self._lock:
            if self._closed:
                return messages
            try:
                while self._reader.poll(0.05 if final else 0):
                    messages.append(self._reader.recv())
            except (EOFError, OSError):  # the job has ended and its end of the pipe is closed
                pass
        return messages

    def alive(self) -> bool:
        return not self._closed and self.process.is_alive()

    def exit_description(self) -> str:
        code = self.process.exitcode
        return f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"

    def request_stop(self) -> None:
        self._stop_event.set()

    def control(self, command: Command) -> bool:
        with self._lock:
            if self._closed or self._commands is None or not self.process.is_alive():
                return False
            try:  # under PIPE_BUF bytes: written whole, or BlockingIOError when the job reads nothing
                self._commands.send(command)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError, OSError):
                return False
            return True

    def terminate(self) -> None:
        if not self._closed and self.process.is_alive():
            self.process.terminate()

    def kill(self) -> None:
        if not self._closed and self.process.is_alive():
            self.process.kill()

    def join(self, timeout: float) -> None:
        if not self._closed:
            self.process.join(timeout)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._reader.close()
            if self._commands is not None:
                self._commands.close()
        self.process.join(1.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1.0)
        try:
            self.process.close()  # releases the sentinel
        except ValueError:  # still running after a kill: leave it to the OS, keep the server going
            pass


class LocalProcesses:
    """The embedded backend: forkserver children on this machine, nice 10, one torch thread each."""

    def __init__(self):
        # forkserver: children fork from a small single-threaded server process that has
        # imported torch and the engine once (about 0.02 s per job instead of 1-7 s), not
        # from this threaded web server, where fork is unsafe.
        self._context = mp.get_context("forkserver")
        self._context.set_forkserver_preload(["ganapp.worker"])

    def warm_up(self) -> None:
        """Start the forkserver now, so the first visitor's job does not wait for its imports."""
        try:
            from multiprocessing import forkserver

            forkserver.ensure_running()
        except Exception:  # the first job will start it, or report why it cannot
            pass

    def start(self, job_id: str, spec: dict[str, Any]) -> LocalProcessHandle:
        reader, writer = self._context.Pipe(duplex=False)
        command_reader, command_writer = self._context.Pipe(duplex=False)
        os.set_blocking(command_writer.fileno(), False)  # a job that reads nothing never holds up the server
        stop_event = self._context.Event()
        process = self._context.Process(target=_job_entry, name=f"ganapp-job-{job_id}", daemon=True,
                                        args=(spec, writer, stop_event, os.getpid(), command_reader))
        try:
            process.start()
        except BaseException:
            reader.close()
            command_writer.close()
            raise
        finally:
            writer.close()  # the child has its own copies; ours would keep the pipes open forever
            command_reader.close()
        return LocalProcessHandle(process, reader, stop_event, command_writer)

    def close(self) -> None:
        pass


def backend_from_env(environ: dict[str, str] | None = None) -> JobBackend:
    """The backend this server's configuration asks for: local processes by default, or a
    Ray cluster when GANAPP_RAY_ADDRESS is set ("auto", "HOST:6379", "ray://HOST:10001", or
    "local" for a Ray instance on this machine). Ray is imported only then; without it the
    server stops with a sentence that says so (SettingsError)."""
    address = (os.environ if environ is None else environ).get("GANAPP_RAY_ADDRESS", "").strip()
    if not address:
        return LocalProcesses()
    from .ray_backend import RayJobs

    return RayJobs(address)
