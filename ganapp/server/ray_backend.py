"""Jobs on a Ray cluster, behind the same seam as local processes (ganapp.server.backend).

Selected by GANAPP_RAY_ADDRESS (backend.backend_from_env): "auto" or "HOST:6379" joins a
running cluster, "ray://HOST:10001" goes through Ray Client, "local" starts a Ray
instance on this machine (for tests and trials). Ray is imported here only, and only
when that variable is set: the app itself never needs it.

Each job runs under a Ray actor, a `_Runner`: a warm process on some machine of the
cluster that holds the local backend's forkserver (which imported torch and the engine
once) and starts each job as a child process of its own, exactly as the local backend
does (`ganapp.worker.main`), one job at a time. So a job on the cluster is bounded as a
local job is, and in the same code: its address space (RLIMIT_AS: what it maps at start
plus twice the server's memory per job) and the size of any file it writes (RLIMIT_FSIZE:
the bytes per run) are set in the job's process, which ends with the job. Limits set on
the runner itself would outlive the job (and an address-space limit cannot be raised
again), so the runner stays unbounded and sound: a job that passes its memory backstop
fails with a reason a visitor reads ("the job ran out of the memory this server allows"),
or is killed, and the runner takes the next job. The job time limit is the manager's, as
for local jobs: at max_job_seconds it asks the job to stop (it writes its files, which
come back), and a job that does not stop is killed by its runner (`terminate`). When the
server (the Ray driver) dies, Ray ends the actors it created; the job's process sees its
runner gone (the orphan watchdog of ganapp.worker), stops like a stopped run and exits;
a later runner on that machine removes temporary folders left by runners that died.
The runner relays the job's typed messages (ganapp.server.messages) into a buffer; the server's handle
(`RayJobHandle`) keeps one `drain` call in flight and picks up its batch when it is
ready (ray.wait with timeout 0), so the manager's pump never waits on the cluster. A
runner is threaded (max_concurrency=4): `run` relays in one thread while `drain`,
`stop`, `terminate` and `control` (play commands: pause, resume, single steps, speed;
ganapp.server.control) answer in others. A runner whose `run` call came back goes back to
a pool for the next job (whatever its job's process did); stopping is the job's own stop
flag; a runner that dies (its process killed, its machine lost) ends only its own run.

Run files come back as bytes. The job writes its files into a temporary folder on its
own machine; when it ends, the runner reads them (at most the run's byte budget,
limits["run_bytes"]) and attaches them to the Done message; the handle writes them into
the run's folder on the server and points Done.files at them. So a lab of PCs needs no
shared storage, and a run's files are where the page, /run_files and a restart look for
them. A checkpoint a job reads (continue, view) travels the other way: the server reads
it and the runner writes it into its temporary folder before the job starts.

What the manager decides stays in the manager: limits, fair turns, queue positions,
owners, time limits, records. Ray decides only *where* a started job runs: each runner
asks for one CPU, and for one GPU when the cluster has a free one (the config's device
"auto" then trains on CUDA there). This module imports neither torch nor gradio.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .control import Command
from .limits import SettingsError
from .messages import Done, Message, Metrics, Note

ACTOR_THREADS = 4  # run, drain, stop and control at once
WARM_RUNNERS = 2  # runners started with the server, as the local backend starts its forkserver
IDLE_S = 600.0  # a runner idle this long gives its CPU back to the cluster
WAITING_NOTE_S = 3.0  # a job whose runner has not answered by then: the page says it is waiting
PING_S = 5.0  # an idle runner that does not answer within this is dropped, not given a job
CONNECT_S = 5.0  # a head that does not accept a connection within this is reported at start
FINAL_DRAIN_S = 5.0  # after a job has ended, how long its last messages may take to arrive
FILE_ORDER = ("config", "metrics", "samples", "checkpoint")  # the small files first, if the budget is short


# Ray turns "127.0.0.1" into the machine's network address, and its servers listen there;
# a private instance ("local") is made to stay on loopback with the switch Ray itself uses
# on laptops (read when Ray is first imported, and by the processes Ray starts).
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def import_ray(address: str = ""):
    """Ray, or a SettingsError that says what to do (the app stops with that one sentence)."""
    if address == "local" and "ray" not in sys.modules:
        for name, value in LOOPBACK_ONLY.items():
            os.environ.setdefault(name, value)
    try:
        import ray
    except ImportError:
        raise SettingsError("GANAPP_RAY_ADDRESS is set, but Ray is not installed here: pip install ray (the same "
                            "version on every machine of the cluster), or unset GANAPP_RAY_ADDRESS to train "
                            "on this machine") from None
    return ray


class _Runner:
    """A warm runner on a cluster machine: starts each job as a child process, one job at a time.

    Made a Ray actor class by RayJobs (ray.remote is applied there, so that importing this
    module does not import Ray). The runner holds the local backend's forkserver
    (ganapp.server.backend.LocalProcesses), which imports torch and the engine once (1-7 s
    on our 2 cores, 20 s when they are busy); each job is then a forkserver child, started
    in about 0.02 s, exactly as a local job: ganapp.worker.main bounds it (address space,
    bytes per file), renices it after its first picture, and watches for its server (here:
    this runner). Buffer entries are (message, files): files is None, except beside the
    Done message, where it holds the run's files as {key: (name, bytes)}.
    """

    def __init__(self):
        from .backend import LocalProcesses

        main = sys.modules.get("__main__")
        if main is not None and getattr(main, "__spec__", None) is None:
            # This process's __main__ is Ray's worker script: without this, multiprocessing would
            # run it (importing Ray) in the forkserver and again in every job process.
            main.__dict__.pop("__file__", None)
        self._processes = LocalProcesses()
        self._processes.warm_up()  # the forkserver imports torch and the engine now, once
        _remove_orphaned_folders()
        self._buffers: dict[str, list[tuple[Message, dict[str, tuple[str, bytes]] | None]]] = {}
        self._jobs: dict[str, Any] = {}  # job id -> LocalProcessHandle of the running job
        self._stops: set[str] = set()  # stops that came before their job (a threaded actor)
        self._kills: set[str] = set()
        self._commands: dict[str, list[Command]] = {}  # play commands that came before their job
        self._early: dict[str, dict[int, Command]] = {}  # commands that overtook an earlier one
        self._expected: dict[str, int] = {}  # the number of the next command to hand to the job
        self._ended: collections.deque[str] = collections.deque(maxlen=100)  # late commands find no job
        self._lock = threading.Lock()

    def ready(self) -> bool:
        return True

    def where(self) -> tuple[str, int]:
        """(node address, runner process id): for a reason a visitor reads, and for the tests."""
        import ray

        return ray.util.get_node_ip_address(), os.getpid()

    def node_id(self) -> str:
        """The Ray node this runner lives on (two nodes may share one address; tests)."""
        import ray

        return ray.get_runtime_context().get_node_id()

    def job_pid(self, job_id: str) -> int | None:
        """The process id of the job's own process while it runs (tests, diagnostics)."""
        with self._lock:
            handle = self._jobs.get(job_id)
        return handle.pid if handle is not None else None

    def run(self, job_id: str, spec: dict[str, Any], checkpoint: tuple[str, bytes] | None) -> str:
        """Runs the job in a child process; returns "" when it ended by itself (its Done message
        is in the buffer), else how its process ended ("signal 9", "exit code 1")."""
        from multiprocessing.connection import wait

        folder = Path(tempfile.mkdtemp(prefix=f"ganapp-ray-{os.getpid()}-{job_id}-"))
        try:
            spec = dict(spec, out_dir=str(folder / "out"))
            if checkpoint is not None:
                name, data = checkpoint
                path = folder / "in" / name
                path.parent.mkdir()
                path.write_bytes(data)
                spec["checkpoint"] = str(path)
            handle = self._processes.start(job_id, spec)
            with self._lock:
                self._jobs[job_id] = handle
                if job_id in self._stops:
                    handle.request_stop()
                if job_id in self._kills:
                    handle.kill()
                for command in self._commands.pop(job_id, []):
                    handle.control(command)
            done = False
            while True:
                for message in handle.drain():
                    done = done or isinstance(message, Done)
                    self._keep(job_id, message, folder, spec)
                if not handle.alive():
                    break
                wait([handle._reader, handle.process.sentinel], timeout=1.0)
            handle.join(5.0)
            for message in handle.drain(final=True):
                done = done or isinstance(message, Done)
                self._keep(job_id, message, folder, spec)
            ended = "" if done else handle.exit_description()
            handle.close()
            return ended
        finally:
            with self._lock:
                self._jobs.pop(job_id, None)
                self._stops.discard(job_id)
                self._kills.discard(job_id)
                self._commands.pop(job_id, None)
                self._early.pop(job_id, None)
                self._expected.pop(job_id, None)
                self._ended.append(job_id)
            shutil.rmtree(folder, ignore_errors=True)  # its files are in the buffer now

    def _keep(self, job_id: str, message: Message, folder: Path, spec: dict[str, Any]) -> None:
        files = _collect_files(message, folder / "out", spec) if isinstance(message, Done) else None
        with self._lock:
            self._buffers.setdefault(job_id, []).append((message, files))

    def drain(self, job_id: str) -> list[tuple[Message, dict[str, tuple[str, bytes]] | None]]:
        with self._lock:
            return self._buffers.pop(job_id, [])

    def stop(self, job_id: str) -> None:
        with self._lock:
            handle = self._jobs.get(job_id)
            if handle is None:
                self._stops.add(job_id)
                return
        handle.request_stop()

    def terminate(self, job_id: str) -> None:
        """End the job's process now (SIGKILL); the runner itself goes on."""
        with self._lock:
            handle = self._jobs.get(job_id)
            if handle is None:
                self._kills.add(job_id)
                return
        handle.kill()

    def control(self, job_id: str, number: int, command: Command) -> bool:
        """A play command for the running job, the handle's `number`-th: a threaded actor may
        run two calls out of order, so commands are handed to the job in their numbers' order.
        A command may come before the job's `run` call (kept for it) but not after its end.
        False when the job has ended here or has not read the last 100."""
        with self._lock:
            if job_id in self._ended:
                return False
            early = self._early.setdefault(job_id, {})
            if len(early) >= 100 or len(self._early) > 100:
                return False
            early[number] = command
            expected = self._expected.get(job_id, 0)
            handle = self._jobs.get(job_id)
            try:
                while expected in early:
                    if handle is not None:
                        if not handle.control(early[expected]):
                            return False
                    else:
                        waiting = self._commands.setdefault(job_id, [])
                        if len(waiting) >= 100:
                            return False
                        waiting.append(early[expected])
                    del early[expected]
                    expected += 1
            finally:
                self._expected[job_id] = expected
        return True


ORPHAN_FOLDER_AGE_S = 120.0


def _remove_orphaned_folders() -> None:
    """Temporary folders of runners that died (their server gone, their machine restarted):
    their job processes wrote their files there after the runner could send them nowhere."""
    now = time.time()
    for folder in Path(tempfile.gettempdir()).glob("ganapp-ray-*-*-*"):
        try:
            pid = int(folder.name.split("-")[2])
            if now - folder.stat().st_mtime < ORPHAN_FOLDER_AGE_S:
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, IndexError, OSError):
            continue


def _collect_files(done: Done, out_dir: Path, spec: dict[str, Any]) -> dict[str, tuple[str, bytes]]:
    """The files a job wrote, read back within the run's byte budget (small files first)."""
    budget = (spec.get("limits") or {}).get("run_bytes")
    out = out_dir.resolve()
    files: dict[str, tuple[str, bytes]] = {}
    used = 0
    for key in sorted(done.files, key=lambda k: FILE_ORDER.index(k) if k in FILE_ORDER else len(FILE_ORDER)):
        path = Path(done.files[key]).resolve()
        if path.parent != out or not path.is_file():
            continue  # only what the job wrote into its own folder travels
        size = path.stat().st_size
        if isinstance(budget, int) and used + size > budget:
            continue
        files[key] = (path.name, path.read_bytes())
        used += size
    return files


@dataclasses.dataclass(eq=False)
class _Slot:
    """A runner actor and what it holds on the cluster."""

    actor: Any
    gpu: bool
    idle_since: float = 0.0
    used: bool = False  # has run a job (a fresh runner may still be importing torch: no ping)


class RayJobHandle:
    """A job on a Ray runner, as the manager sees it (ganapp.server.backend.JobHandle).

    Every method returns at once: `drain` picks up a batch only when it has arrived and
    keeps the next request in flight; `alive` asks whether the runner's `run` call is done
    (it is also "done" when the runner or its machine died). `close` gives a runner whose
    job ended normally back to the backend's pool, and kills any other.
    """

    def __init__(self, ray, backend: "RayJobs", slot: _Slot, job_id: str, spec: dict[str, Any],
                 checkpoint: tuple[str, bytes] | None):
        self._ray, self._backend, self._slot, self._job_id = ray, backend, slot, job_id
        self._out_dir = Path(spec["out_dir"])
        self._run_bytes = (spec.get("limits") or {}).get("run_bytes")
        actor = slot.actor
        self._result = actor.run.remote(job_id, spec, checkpoint)
        self._where = actor.where.remote()
        self._pending = actor.drain.remote(job_id)
        self._lock = threading.Lock()
        self._closed = False
        self._killed = False
        self._started = time.monotonic()
        self._noted = False
        self._commands_sent = 0
        slot.used = True

    def drain(self, final: bool = False) -> list[Message]:
        messages: list[Message] = []
        with self._lock:
            if self._closed:
                return messages
            if not self._noted and time.monotonic() - self._started > WAITING_NOTE_S:
                self._noted = True  # once: the page says why nothing shows yet (Started clears it)
                if not self.runner_ready():
                    messages.append(Note(text="waiting for a free place on the cluster, or for the job's "
                                              "process to start there"))
            deadline = time.monotonic() + (FINAL_DRAIN_S if final else 0.0)
            while True:
                if self._pending is None:
                    self._pending = self._slot.actor.drain.remote(self._job_id)
                ready, _ = self._ray.wait([self._pending], timeout=max(0.0, deadline - time.monotonic()))
                if not ready:
                    break
                reference, self._pending = self._pending, None
                try:
                    batch = self._ray.get(reference)
                except self._ray.exceptions.RayError:  # the runner is gone; alive() and exit_description say so
                    break
                for message, files in batch:
                    messages.extend(self._receive(message, files))
                if not final:
                    self._pending = self._slot.actor.drain.remote(self._job_id)  # the next batch travels meanwhile
                    break
                if not batch:
                    break
        return messages

    def _receive(self, message: Message, files: dict[str, tuple[str, bytes]] | None) -> list[Message]:
        """The message as the manager expects it; a Done's files are written into the run's folder."""
        if not isinstance(message, Done):
            return [message]
        kept: dict[str, str] = {}
        used, problems = 0, []
        for key, (name, data) in (files or {}).items():
            if not isinstance(name, str) or Path(name).name != name or name.startswith("."):
                continue
            if self._run_bytes is not None and used + len(data) > self._run_bytes:
                problems.append(f"{name} would pass the run's byte budget")
                continue
            target = self._out_dir / name
            try:
                self._out_dir.mkdir(parents=True, exist_ok=True)
                temporary = target.with_name(f".{name}.part")
                temporary.write_bytes(data)
                os.replace(temporary, target)
            except OSError as error:
                problems.append(f"{name}: {error.strerror or error}")
                continue
            kept[key] = str(target)
            used += len(data)
        done = dataclasses.replace(message, files=kept)
        if problems:
            return [Metrics(step=0, numbers={}, warning="could not keep all of the run's files: "
                            + "; ".join(problems)), done]
        return [done]

    def alive(self) -> bool:
        if self._closed:
            return False
        ready, _ = self._ray.wait([self._result], timeout=0)
        return not ready

    def _ended_cleanly(self) -> bool:
        """Whether the runner's `run` call came back (the runner is sound, whatever the job's
        process did: it ran in a child of the runner)."""
        try:
            self._ray.get(self._result, timeout=0)
            return True
        except Exception:
            return False

    def exit_description(self) -> str:
        if self._killed:
            return "stopped by the server"
        try:
            ended = self._ray.get(self._result, timeout=0)
        except self._ray.exceptions.GetTimeoutError:
            return "still running"
        except self._ray.exceptions.RayError as error:
            return _describe_death(error, self._node())
        node = self._node()
        return f"its process on the cluster{f' on {node}' if node else ''} died ({ended or 'without a word'})"

    def job_pid(self) -> int | None:
        """The process id of the job's own process on its machine (tests, diagnostics); waits."""
        return self._ray.get(self._slot.actor.job_pid.remote(self._job_id), timeout=30)

    def _node(self) -> str | None:
        try:
            return self._ray.get(self._where, timeout=0)[0]
        except Exception:  # the runner died before it said where it was
            return None

    def runner_ready(self) -> bool:
        """Whether the job's runner is up (Ray has placed it and it has imported the engine)."""
        return bool(self._ray.wait([self._where], timeout=0)[0])

    def where(self) -> tuple[str, int]:
        """(node address, process id) of the job's runner; waits for it (tests, diagnostics)."""
        return self._ray.get(self._where, timeout=30)

    def request_stop(self) -> None:
        if not self._closed:
            self._slot.actor.stop.remote(self._job_id)

    def control(self, command: Command) -> bool:
        """Sent without waiting for the runner's answer (the job's PlayState messages say
        what it did); numbered, so that the runner hands them to the job in order."""
        with self._lock:
            if self._closed or self._killed:
                return False
            number, self._commands_sent = self._commands_sent, self._commands_sent + 1
            self._slot.actor.control.remote(self._job_id, number, command)
        return True

    def terminate(self) -> None:
        """The job's process is killed by its runner, which stays sound for the next job; a
        runner that does not come back from the job is killed at close."""
        if not self._closed and not self._killed:
            self._killed = True
            self._slot.actor.terminate.remote(self._job_id)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._ended_cleanly():
            self._backend._give_back(self._slot)
        else:
            self._backend._kill(self._slot)


def _describe_death(error: Exception, node: str | None) -> str:
    """Ray's long account of a dead actor, in a few words a visitor can read."""
    text = str(error).lower()
    where = f" on {node}" if node else ""
    if "no module named 'ganapp" in text:
        return f"ganapp is not installed on the cluster machine{where} (install the server's version there)"
    if "outofmemory" in type(error).__name__.lower() or "out of memory" in text:
        return f"the cluster machine{where} ran out of memory"
    if "node" in text and ("died" in text or "dead" in text) and "worker process" not in text:
        return f"the cluster machine{where} was lost"
    if type(error).__name__ == "ActorUnavailableError":  # its connection broke before Ray knew why
        return f"the cluster machine{where} was lost (it stopped answering)"
    return f"its process on the cluster{where} died ({type(error).__name__})"


def _check_reachable(address: str) -> None:
    """A HOST:PORT head must answer a TCP connection within CONNECT_S; else one sentence, at once."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # "auto" (Ray finds the cluster this machine joined, or says there is none) and ray:// addresses
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_S).close()
    except OSError as error:
        raise SettingsError(f"GANAPP_RAY_ADDRESS={address!r}: nothing answers there ({error.strerror or error}); "
                            "start the cluster's head with `ray start --head --port=PORT`, or unset the "
                            "variable to train on this machine") from None


class RayJobs:
    """The cluster backend (ganapp.server.backend.JobBackend): jobs on a pool of warm Ray runners.

    address: as GANAPP_RAY_ADDRESS ("local", "auto", "HOST:6379", "ray://HOST:10001").
    init_options: extra ray.init keywords (the tests give "local" a fixed number of CPUs).
    When Ray is already initialised in this process, that connection is used and left open.

    A runner holds one CPU of the cluster (and a GPU, if it took one) while it exists;
    one whose job ended normally waits in the pool for the next job, at most IDLE_S, then
    gives its CPU back to the cluster. A runner whose job was killed, or that died, is
    never reused.
    """

    def __init__(self, address: str = "auto", *, init_options: dict[str, Any] | None = None,
                 warm_runners: int = WARM_RUNNERS):
        ray = import_ray(address)
        self._ray = ray
        self._owns_connection = not ray.is_initialized()
        if self._owns_connection:
            options: dict[str, Any] = {"namespace": "ganapp", "include_dashboard": False}
            if address != "local":
                options["address"] = address
                _check_reachable(address)  # ray.init would retry an unreachable head for minutes
            options.update(init_options or {})
            try:
                ray.init(**options)
            except Exception as error:
                first_line = (str(error).splitlines() or [""])[0][:200]
                raise SettingsError(f"GANAPP_RAY_ADDRESS={address!r}: could not reach the Ray cluster "
                                    f"({type(error).__name__}: {first_line}); start it with `ray start --head`, "
                                    "or unset the variable to train on this machine") from None
        self._runner_class = ray.remote(max_concurrency=ACTOR_THREADS)(_Runner)
        self._idle: list[_Slot] = []
        self._handles: list[RayJobHandle] = []
        self._lock = threading.Lock()
        self._closed = False
        # A few runners now (each imports torch once, in the background), so the first visitors
        # do not wait; in the pool at once, where a job queues behind their imports.
        try:
            cpus = int(ray.cluster_resources().get("CPU", 0))
        except Exception:
            cpus = 0
        for _ in range(min(warm_runners, cpus)):
            self._give_back(self._new_slot(gpu=self._gpu_free()))
        threading.Thread(target=self._reap_idle_loop, name="ray-idle-runners", daemon=True).start()

    def warm_up(self) -> None:
        pass  # done in __init__: a job started at once must find the warm runners in the pool

    def start(self, job_id: str, spec: dict[str, Any]) -> RayJobHandle:
        checkpoint = None
        if spec.get("checkpoint"):  # continue / view: the file goes to the job's machine as bytes
            path = Path(spec["checkpoint"])
            checkpoint = (path.name, path.read_bytes())
        slot = self._take_slot()
        handle = RayJobHandle(self._ray, self, slot, job_id, spec, checkpoint)
        with self._lock:
            self._handles = [h for h in self._handles if not h._closed] + [handle]
        return handle

    def _gpu_free(self) -> bool:
        """Whether the cluster has a GPU none of our runners holds (our own count: Ray's free
        resources lag behind the runners just asked for)."""
        try:
            gpus = int(self._ray.cluster_resources().get("GPU", 0))
        except Exception:
            return False
        with self._lock:
            ours = sum(1 for s in self._idle if s.gpu) + sum(1 for h in self._handles if not h._closed and h._slot.gpu)
        return ours < gpus

    def _reap_idle(self) -> None:
        """Runners idle longer than IDLE_S give their CPU (and GPU) back to the cluster."""
        now = time.monotonic()
        with self._lock:
            stale = [s for s in self._idle if now - s.idle_since > IDLE_S]
            self._idle = [s for s in self._idle if s not in stale]
        for slot in stale:
            self._kill(slot)

    def _reap_idle_loop(self) -> None:
        while not self._closed:
            time.sleep(IDLE_S / 10)
            if not self._closed:
                self._reap_idle()

    def _take_slot(self) -> _Slot:
        """A runner for the next job: on a GPU when the cluster has one (an idle GPU runner, else a
        new one while a GPU is free), else on a CPU (an idle runner, else a new one). A class is not
        held up waiting for a busy GPU while CPUs are free."""
        self._reap_idle()
        slot = self._take_idle(gpu=True)
        if slot is None and self._gpu_free():
            slot = self._new_slot(gpu=True)
        return slot or self._take_idle(gpu=False) or self._new_slot(gpu=False)

    def _take_idle(self, gpu: bool) -> _Slot | None:
        while True:
            with self._lock:
                slot = next((s for s in self._idle if s.gpu == gpu), None)
                if slot is None:
                    return None
                self._idle.remove(slot)
            if not slot.used:  # still starting (warm runners): its job queues behind its imports
                return slot
            try:  # an idle runner whose machine left the cluster must not take a visitor's job down with it
                self._ray.get(slot.actor.ready.remote(), timeout=PING_S)
                return slot
            except Exception:
                self._kill(slot)

    def _new_slot(self, gpu: bool) -> _Slot:
        options: dict[str, Any] = {"num_cpus": 1, "max_restarts": 0, "max_task_retries": 0}
        if gpu:
            options["num_gpus"] = 1
        return _Slot(actor=self._runner_class.options(**options).remote(), gpu=gpu)

    def _give_back(self, slot: _Slot) -> None:
        """Keep a runner whose job ended normally for the next job, unless our runners outnumber the
        cluster's CPUs: then a new runner is waiting for the CPU this one holds, and gets it."""
        with self._lock:
            runners = len(self._idle) + sum(1 for h in self._handles if not h._closed and h._slot is not slot) + 1
        try:
            cpus = self._ray.cluster_resources().get("CPU", 0)
        except Exception:
            cpus = 0
        if runners > cpus:
            self._kill(slot)
            return
        with self._lock:
            if not self._closed:
                slot.idle_since = time.monotonic()
                self._idle.append(slot)
                return
        self._kill(slot)

    def _kill(self, slot: _Slot) -> None:
        try:
            self._ray.kill(slot.actor, no_restart=True)
        except Exception:
            pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._handles = []
        for slot in idle:
            self._kill(slot)
        if self._owns_connection and self._ray.is_initialized():
            self._ray.shutdown()
