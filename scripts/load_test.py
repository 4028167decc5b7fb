"""What a class of polling browsers costs the training jobs, on loopback (a benchmark, not a test).

Starts `python app.py` on a free loopback port, starts two long ring8 jobs through the API,
then measures in fixed windows:

  alone        the two jobs, nobody polling (baseline throughput and server CPU); one
               such window before and after each of the next three, whose baseline
               is the mean of the two around it
  1 visitor    one simulated page polling twice a second: poll latency p50/p95
  N visitors   N simulated pages (default 30) polling as the server tells them (it slows
               them to once a second above 10 open pages); --repeats such windows
               (default 3), each between quiet ones, and their median
  N Gradio     the same N polling the old way, a Gradio event per poll (what the page
               falls back to when its light route cannot be reached): the comparison
  no change    the jobs stopped, N pages polling twice a second: every poll finds
               nothing new (server CPU of an empty poll)

A simulated visitor does what the page does: the page's load event, then its live
script's questions to the light route (POST /ganapp/live, ganapp.web.live) at the
interval the server gives, and the Gradio poll (the hidden #live-refresh button's event)
when a rarer view's stamp moved or every few seconds while its run trains, with the
redraws whose State stamps that changed (queued events: POST /gradio_api/queue/join, then
the SSE stream; unqueued ones: POST /gradio_api/run/...), with its own session and the
owner token of one of the jobs, so every poll has news to send.
Server CPU comes from /proc/<server pid>/stat, the jobs' from the processes under it. The
visitors run in this process at nice 19, standing in for browsers on other machines: they
take as little CPU from the jobs as the scheduler allows, which is not nothing (the jobs
run at nice 10). So each window also reports the cores the job processes got and their
steps per CPU second: what the server took from them, apart from what the stand-in
browsers did. Their questions to the route go over HTTP/1.1 written by hand
(RouteConnection), a tenth of httpx's CPU per request, so that little of it is theirs. Bounded: at most 120 visitors, windows of at most 60 s, loopback only.

    python scripts/load_test.py [--visitors 30] [--window 15] [--repeats 3] [--json results.json]

Bounded: about (2 * repeats + 5) windows, under 3 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
JOB = {"data": "ring8", "steps": 200_000, "seed": 0}  # longer than the test: the jobs never finish in it


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (all its threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def descendants(pid: int) -> list[int]:
    """The processes under `pid` (the job server's forkserver and its job processes)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def jobs_cpu_seconds(pid: int) -> float:
    total = 0.0
    for child in descendants(pid):
        try:
            total += cpu_seconds(child)
        except (OSError, ValueError, IndexError):
            continue  # a process that ended meanwhile
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Server:
    """`python app.py` on loopback, plus the page's event ids read from /config."""

    def __init__(self, port: int, jobs: int = 2):
        env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
                   GANAPP_MAX_JOBS=str(jobs), GANAPP_MAX_JOBS_PER_VISITOR="2", GANAPP_MAX_STEPS="200000")
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                config = httpx.get(f"{self.url}/config", timeout=2).json()
                break
            except (httpx.HTTPError, ValueError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the app did not start: {self.process.stderr.read()[-2000:]}") from None
                time.sleep(0.2)
        components = {c["id"]: c for c in config["components"]}
        self.timer = next(i for i, c in components.items() if c.get("type") == "timer")
        refresh = next(i for i, c in components.items() if c.get("props", {}).get("elem_id") == "live-refresh")
        self.owner = next(i for i, c in components.items() if c.get("type") == "browserstate")
        self.overlay = next(i for i, c in components.items() if c.get("props", {}).get("elem_id") == "compare-curve")
        deps = config["dependencies"]
        self.tick = next(d for d in deps if any(t[0] == refresh and t[1] == "click" for t in d["targets"]))
        by_elem = {c.get("props", {}).get("elem_id"): i for i, c in components.items()}
        self.stamps = next(d for d in deps if any(t[0] == by_elem["stamps-refresh"] and t[1] == "click"
                                                   for t in d["targets"]))
        self.stamp_ids = {key: by_elem[f"{key}-stamp"] for key in ("metrics", "rare")}
        self.load = next(d for d in deps if any(t[1] == "load" for t in d["targets"]))
        # The events a State's change triggers (the page's rarer views), by State id.
        self.on_change = {t[0]: d for d in deps for t in d["targets"] if t[1] == "change"}

    def inputs(self, dependency: dict, token: str, page: dict) -> list:
        """What a page sends: its token, the default curve, nothing chosen, the values it holds
        (the hidden stamps); States go as null (the server keeps them)."""
        values = {**page, self.owner: token, self.overlay: "G loss"}
        return [values.get(component) for component in dependency["inputs"]]

    def api(self, name: str, *args):
        response = httpx.post(f"{self.url}/gradio_api/call/{name}", json={"data": list(args)}, timeout=30)
        response.raise_for_status()
        event = response.json()["event_id"]
        with httpx.stream("GET", f"{self.url}/gradio_api/call/{name}/{event}", timeout=60) as stream:
            kind = None
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind in ("complete", "error"):
                    data = json.loads(line[5:])
                    if kind == "error":
                        raise RuntimeError(f"/{name} failed: {data}")
                    return data[0]
        raise RuntimeError(f"/{name} gave no result")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            print("the app did not exit within 20 s of SIGTERM; killing it", file=sys.stderr)
            self.process.kill()
            self.process.wait(5)


async def call_event(client: httpx.AsyncClient, server: Server, dependency: dict, data: list, session: str):
    """One event as the browser sends it: join the queue, read the SSE stream to completion.
    Returns (seconds, bytes received, output: {"data": [...], "changed_state_ids": [...]})."""
    started = time.perf_counter()
    trigger = dependency["targets"][0][0]
    if dependency.get("queue") is False:  # the page calls such events directly, without the queue
        body = {"data": data, "event_data": None, "fn_index": dependency["id"], "trigger_id": trigger,
                "session_hash": session}
        url = f"{server.url}/gradio_api/run/{dependency['api_name']}"
        try:
            response = await client.post(url, json=body)
        except (httpx.ReadError, httpx.RemoteProtocolError):
            # The server closed an idle keep-alive connection as we reused it; a browser
            # retries such a request on a new connection, and so do we (once).
            response = await client.post(url, json=body)
        response.raise_for_status()
        return time.perf_counter() - started, len(response.content), response.json()
    joined = await client.post(f"{server.url}/gradio_api/queue/join", json={
        "data": data, "event_data": None, "fn_index": dependency["id"], "trigger_id": trigger,
        "session_hash": session})
    joined.raise_for_status()
    event_id = joined.json()["event_id"]
    received = 0
    async with client.stream("GET", f"{server.url}/gradio_api/queue/data",
                             params={"session_hash": session}) as stream:
        async for line in stream.aiter_lines():
            received += len(line) + 1
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed" and message.get("event_id") == event_id:
                if not message.get("success"):
                    raise RuntimeError(f"event failed: {message}")
                return time.perf_counter() - started, received, message["output"]
            if message.get("msg") == "close_stream":
                break
    raise RuntimeError("the stream closed before the event completed")


async def visit(client, server: Server, dependency: dict, token: str, session: str, page: dict,
                stats: dict | None, interval: list[float], follow: bool) -> None:
    """One event and, as the browser does, the change events of the values it changed."""
    data = server.inputs(dependency, token, page)
    seconds, size, output = await call_event(client, server, dependency, data, session)
    if stats is not None:
        stats["latency"].append(seconds)
        stats["bytes"].append(size)
    if server.timer in dependency["outputs"]:
        timer = output["data"][dependency["outputs"].index(server.timer)]
        if follow and isinstance(timer, dict) and timer.get("value"):
            interval[0] = float(timer["value"])  # the page follows the server's refresh rate
    changed = []
    for component, value in zip(dependency["outputs"], output["data"]):
        if component in server.on_change and isinstance(value, str) and value != page.get(component):
            page[component] = value
            changed.append(component)
    for component in changed:
        await visit(client, server, server.on_change[component], token, session, page,
                    stats and stats.setdefault("followups", {"latency": [], "bytes": []}), interval, follow)


class RouteConnection:
    """One page's keep-alive HTTP/1.1 connection to the light route, spoken by hand: the
    stand-in browsers run on the jobs' cores here, and httpx costs about ten times the CPU
    per request of these few lines, which would be counted against the server."""

    def __init__(self, url: str):
        host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.reader = self.writer = None

    async def post(self, path: str, payload: dict) -> tuple[int, bytes]:
        body = json.dumps(payload).encode()
        request = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        for attempt in (1, 2):
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
                self.writer.write(request)
                status = int((await self.reader.readline()).split()[1])
                length, close = 0, False
                while (line := await self.reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "connection" and value.strip().lower() == "close":
                        close = True
                reply = await self.reader.readexactly(length)
                if close:
                    await self.close()
                return status, reply
            except (ConnectionError, asyncio.IncompleteReadError, IndexError, ValueError):
                # The server closed an idle keep-alive connection as we reused it; a browser
                # retries such a request on a new connection, and so do we (once).
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def ask_route(route: RouteConnection, token: str, run_id: str, state: dict, stats: dict | None) -> dict:
    """One question of the page's live script to the light route; returns its answer."""
    started = time.perf_counter()
    body = {"token": token, "run": run_id, "partner": "", "lang": "en", "seen": state.get("seen"),
            "page": state["page"]}
    status, content = await route.post("/ganapp/live", body)
    if status != 200:
        raise RuntimeError(f"the light route answered {status}: {content[:200]!r}")
    if stats is not None:
        stats["latency"].append(time.perf_counter() - started)
        stats["bytes"].append(len(content))
    answer = json.loads(content)
    state["seen"] = answer["seen"]
    return answer


async def visitor(server: Server, token: str, run_id: str, window: dict, stats: dict, fixed_interval: float | None,
                  gradio: bool = False):
    """One page: load it (before the window), then poll as it would until the window ends:
    through the light route (the page's live script), or with `gradio` a Gradio event per poll."""
    session = uuid.uuid4().hex
    interval = [fixed_interval or 0.5]
    page: dict = {}  # the values this page holds that its events send back (the stamps)
    state = {"page": session, "seen": None, "stamps": None, "rare": time.monotonic()}
    route = RouteConnection(server.url)
    async with httpx.AsyncClient(timeout=60) as client:
        await visit(client, server, server.load, token, session, page, None, interval, fixed_interval is None)
        window["loaded"] += 1
        await window["go"].wait()
        next_tick = time.monotonic() + random.uniform(0, interval[0])  # pages do not tick in step
        while next_tick < window["until"]:
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            if gradio:
                await visit(client, server, server.tick, token, session, page, stats, interval,
                            fixed_interval is None)
            else:
                answer = await ask_route(route, token, run_id, state, stats)
                if fixed_interval is None:
                    interval[0] = max(0.25, float(answer["interval"]))
                # As the script (ganapp.web.live.LIVE_JS): a stamp its views were not drawn for
                # (the hidden stamp boxes), within the server's budget of rarer redraws.
                stamps = answer["stamps"]
                urgent = page.get(server.stamp_ids["rare"]) != stamps["rare"]
                metrics = page.get(server.stamp_ids["metrics"]) != stamps["metrics"]
                if not state.get("spread") and answer["rare_every"]:
                    state["rare"] = time.monotonic() - random.uniform(0, answer["rare_every"])
                    state["spread"] = True
                since = time.monotonic() - state["rare"]
                if ((urgent and since > 1.5) or (metrics and since > answer.get("rare_gap", 1.5))
                        or (answer["rare_every"] and since > answer["rare_every"])):
                    state["rare"] = time.monotonic()  # the script clicks the hidden stamps event
                    await visit(client, server, server.stamps, token, session, page,
                                stats.setdefault("followups", {"latency": [], "bytes": []}), interval, False)
            next_tick = max(next_tick + interval[0], time.monotonic())
    await route.close()


def job_steps(server: Server, runs: list[tuple[str, str]]) -> list[int]:
    return [server.api("poll_run", token, run_id, False, 2)["step"] for token, run_id in runs]


def window(server: Server, runs, seconds: float, visitors: int = 0, fixed_interval: float | None = None,
           gradio: bool = False) -> dict:
    """Run `visitors` simulated pages for `seconds`; measure jobs, server CPU and polls."""
    stats: dict = {"latency": [], "bytes": []}
    measured: dict = {}

    def begin():
        measured.update(steps=job_steps(server, runs), cpu=cpu_seconds(server.process.pid), wall=time.monotonic(),
                        own=time.process_time(), jobs=jobs_cpu_seconds(server.process.pid))

    if visitors:
        async def crowd():
            window = {"loaded": 0, "go": asyncio.Event(), "until": 0.0}
            pages = [asyncio.create_task(visitor(server, *runs[i % len(runs)], window, stats, fixed_interval, gradio))
                     for i in range(visitors)]
            while window["loaded"] < visitors:  # every page loaded before the clock starts
                await asyncio.sleep(0.05)
            await asyncio.to_thread(begin)
            window["until"] = time.monotonic() + seconds
            window["go"].set()
            await asyncio.gather(*pages)

        asyncio.run(crowd())
    else:
        begin()
        time.sleep(seconds)
    steps_before, cpu_before, wall_before = measured["steps"], measured["cpu"], measured["wall"]
    wall = time.monotonic() - wall_before
    cpu = cpu_seconds(server.process.pid) - cpu_before
    jobs_cpu = jobs_cpu_seconds(server.process.pid) - measured["jobs"]
    steps = [after - before for after, before in zip(job_steps(server, runs), steps_before)]
    result = {"seconds": round(wall, 2), "job_steps_per_s": [round(s / wall, 1) for s in steps],
              "total_steps_per_s": round(sum(steps) / wall, 1), "server_cpu_share": round(cpu / wall, 3),
              "visitors_cpu_share": round((time.process_time() - measured["own"]) / wall, 3),
              "jobs_cpu_share": round(jobs_cpu / wall, 3),  # cores the job processes got
              "steps_per_job_cpu_s": round(sum(steps) / jobs_cpu, 1) if jobs_cpu > 0 else None,
              "polls": len(stats["latency"])}
    if stats["latency"]:
        ms = [1000 * s for s in stats["latency"]]
        followups = stats.get("followups", {"latency": [], "bytes": []})
        result.update(polls_per_s=round(len(ms) / wall, 1), p50_ms=round(statistics.median(ms), 1),
                      p95_ms=round(percentile(ms, 0.95), 1),
                      bytes_per_poll=round((sum(stats["bytes"]) + sum(followups["bytes"])) / len(ms)),
                      followup_events=len(followups["latency"]))
    return result


def summarize(results: dict) -> dict:
    """Each phase against the mean of the quiet windows around it (`results` as main makes
    it, or as --json wrote it: `python -c` over a saved file gives the same summary)."""
    summary = {}
    order = results["phases"]
    crowd = f"{results['visitors']} visitors"
    fast = f"{crowd}, Gradio poll"
    crowds = [name for name in order if name.startswith(crowd + " #")]
    for name in ("1 visitor", *crowds, fast, "no change"):
        phase = results[name]
        if name == "no change":
            base_rate, base_cpu, base_jobs_cpu, base_visitors = None, 0.0, None, 0.0
        else:
            before, after = results[order[order.index(name) - 1]], results[order[order.index(name) + 1]]
            base_rate = (before["total_steps_per_s"] + after["total_steps_per_s"]) / 2
            base_cpu = (before["server_cpu_share"] + after["server_cpu_share"]) / 2
            base_jobs_cpu = (before["jobs_cpu_share"] + after["jobs_cpu_share"]) / 2
            base_visitors = (before["visitors_cpu_share"] + after["visitors_cpu_share"]) / 2
        extra_cpu = phase["server_cpu_share"] - base_cpu
        # The stand-in browsers run on the jobs' cores, and the jobs are always ready to run:
        # what the stand-ins used (beyond the quiet windows' bookkeeping) would have gone to
        # the jobs with the browsers on other machines, as in a classroom.
        browsers = max(0.0, phase["visitors_cpu_share"] - base_visitors)
        summary[name] = {
            "jobs_throughput_vs_alone": round(phase["total_steps_per_s"] / base_rate, 3) if base_rate else None,
            "jobs_cpu_vs_alone": round(phase["jobs_cpu_share"] / base_jobs_cpu, 3) if base_jobs_cpu else None,
            "jobs_cpu_vs_alone_browsers_elsewhere": (round((phase["jobs_cpu_share"] + browsers) / base_jobs_cpu, 3)
                                                     if base_jobs_cpu else None),
            "server_cores_for_visitors": round(extra_cpu, 3),
            "server_cpu_ms_per_poll": round(1000 * extra_cpu * phase["seconds"] / max(1, phase["polls"]), 2),
            "p50_ms": phase.get("p50_ms"), "p95_ms": phase.get("p95_ms"),
            "polls_per_s": phase.get("polls_per_s"), "bytes_per_poll": phase.get("bytes_per_poll"),
        }
    summary[crowd + " (median of rounds)"] = {
        key: statistics.median(summary[name][key] for name in crowds)
        for key in ("jobs_throughput_vs_alone", "jobs_cpu_vs_alone", "jobs_cpu_vs_alone_browsers_elsewhere",
                    "server_cores_for_visitors", "server_cpu_ms_per_poll", "p50_ms", "p95_ms", "polls_per_s")}
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=30)
    parser.add_argument("--window", type=float, default=15.0, help="seconds per measurement window")
    parser.add_argument("--repeats", type=int, default=3, help="windows with N visitors, each between quiet ones")
    parser.add_argument("--jobs", type=int, default=2, help="jobs training during the windows (1..8)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--nice", type=int, default=19,
                        help="niceness of the simulated visitors (default 19: they stand in for browsers on other "
                             "machines, so they take the CPU last)")
    args = parser.parse_args()
    if not (1 <= args.visitors <= 120 and 3 <= args.window <= 60 and 1 <= args.repeats <= 5 and 1 <= args.jobs <= 8):
        parser.error("--visitors must be 1..120, --window 3..60, --repeats 1..5 and --jobs 1..8")
    server = Server(free_port(), args.jobs)
    os.nice(args.nice)  # after starting the server, which must not inherit it
    results: dict = {"visitors": args.visitors, "window_s": args.window, "cores": os.cpu_count(),
                     "load_average_before": os.getloadavg()}
    try:
        warm = server.api("new_token")
        run = server.api("start_run", warm, {**JOB, "steps": 20}, "warm-up")
        deadline = time.monotonic() + 120
        while server.api("poll_run", warm, run["run_id"], False, 2)["state"] != "finished":
            if time.monotonic() > deadline:
                raise RuntimeError("the warm-up run did not finish")
            time.sleep(0.2)
        tokens = [server.api("new_token") for _ in range(args.jobs)]
        runs = [(token, server.api("start_run", token, JOB, f"job {i}")["run_id"]) for i, token in enumerate(tokens)]
        while min(job_steps(server, runs)) < 50:
            time.sleep(0.2)

        # Every measured window sits between two windows without visitors; its baseline is
        # their mean, so that drifts in the machine's load (other processes) cancel out.
        crowd, fast = f"{args.visitors} visitors", f"{args.visitors} visitors, Gradio poll"
        phases = [("alone 1", 0, None), ("1 visitor", 1, 0.5), ("alone 2", 0, None)]
        for round_number in range(1, args.repeats + 1):  # the class, alternating with quiet windows
            phases += [(f"{crowd} #{round_number}", args.visitors, None), (f"alone {2 + round_number}", 0, None)]
        phases += [(fast, args.visitors, None), (f"alone {3 + args.repeats}", 0, None)]
        for name, count, interval in phases:
            results[name] = window(server, runs, args.window, count, interval, gradio=name == fast)
            print(f"{name:>22}: {json.dumps(results[name])}", flush=True)
        for token, run_id in runs:
            server.api("stop_run", token, run_id)
        time.sleep(1.0)
        results["no change"] = window(server, runs, max(3.0, args.window / 2), args.visitors, 0.5)
        print(f"{'no change':>22}: {json.dumps(results['no change'])}", flush=True)
    finally:
        server.stop()

    results["phases"] = [name for name, _, _ in phases] + ["no change"]
    summary = summarize(results)
    results["summary"] = summary
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
