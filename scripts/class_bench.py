"""A class on one server: N visitors each start a preset pair at once (a benchmark, not a test).

Starts `python app.py` on a free loopback port (load_test.Server, the app's own API), runs
one short warm-up job (as a server that has been up a while has its job imports done),
then N simulated visitors arrive: each takes a token (/new_token) and starts a technique
preset beside its vanilla partner, as the page's "Start this preset beside its vanilla
partner" does (partner first, through /start_run with each preset's settings), then
polls its runs (/list_runs) until both have ended. Measured per run, from the moment
the visitor asked for it:

  queue wait      until the run left "queued" (a job was started for it)
  first picture   until its first sample picture was there (samples_count > 0)
  finished        until it had ended
  training s      the run's own training time (one torch thread: about its core-seconds)

and for the class: every run ended (makespan), steps per second of all jobs together,
the sum of training seconds (core-seconds of work) and what k machines would give.

A visitor polls 5 times a second while a run of theirs is about to show its first
picture (starting, or first or second in the queue), else once a second, so waits are
measured to about 0.2 s without 60 runs' worth of polls at 5 Hz loading the server.
The visitors run in this process at nice 19, standing in for browsers elsewhere.
Bounded: at most 60 visitors and --max-minutes (then every run still going is stopped
and the figures say how many ended). Loopback only.

    python scripts/class_bench.py [--visitors 30] [--preset NAME] [--max-minutes 20] [--json out.json]
    GANAPP_RAY_ADDRESS=local python scripts/class_bench.py ...   # the same class on a Ray backend

A class running an assigned ablation together (`--class-ablation KIND`, issue 12): a teacher
opens a class (/open_class: KIND "techniques" is each technique against vanilla, "ablation"
the sweep's 8 variants, on --data with --steps), N students each take a token, join by the
short code (/join_class) and press Start once (/start_assignment), then poll their run
(/poll_run, once a second, as a page does) while the teacher's screen reads the pooled
table (/class_table) every 2 s, as the board's timer does. Measured: the time from the
first Start until the table is complete (every student's run ended and pooled), each
student's wait from Start to their run's end, and the table endpoint's reply time.

    python scripts/class_bench.py --class-ablation ablation --visitors 30 [--steps 2000] [--json out.json]

What Ray adds to one job, without the web server: `--first-picture-rounds N` starts the
preset N times on each backend in this process (a JobManager with local processes, one
with a private Ray instance of 2 CPUs, or the cluster GANAPP_RAY_ADDRESS names), alternating, after one warm-up round each (the
forkserver's imports, the Ray runners' imports): the time to its first picture, then its
training speed over the next TRAIN_WINDOW_S seconds (steps per wall-clock second), then
it is stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from load_test import Server, free_port  # noqa: E402

from ganapp.presets import PRESETS  # noqa: E402
from ganapp.server.limits import available_cores  # noqa: E402

DEFAULT_PRESET = "ring8, G without batch norm: minibatch discrimination"  # the collapse-and-cure pair
ENDED = ("finished", "stopped", "failed", "interrupted")
FAST_POLL_S, SLOW_POLL_S = 0.2, 1.0
TRAIN_WINDOW_S = 4.0


def partner_of(preset: str) -> str:
    return preset.split(":")[0] + ": vanilla"  # as the page's pair button picks it


def visitor(server: Server, number: int, preset: str, clock_zero: float, deadline: float,
            stop_all: threading.Event) -> dict:
    """One student: a token, the pair, then polls until both runs have ended (or time is up)."""
    token = server.api("new_token")
    runs = {}
    for name in (partner_of(preset), preset):
        asked_at = time.monotonic()
        reply = server.api("start_run", token, dict(PRESETS[name]), name)
        runs[reply["run_id"]] = {"preset": name, "asked_s": round(asked_at - clock_zero, 3), "asked_at": asked_at,
                                 "queue_wait_s": None, "first_picture_s": None, "finished_s": None,
                                 "state": reply["state"]}
    while True:
        now = time.monotonic()
        summaries = {s["run_id"]: s for s in server.api("list_runs", token)}
        soon = False
        for run_id, run in runs.items():
            summary = summaries.get(run_id)
            if summary is None:
                continue
            run.update(state=summary["state"], step=summary["step"], steps=summary["steps"],
                       training_s=summary["seconds"], reason=summary["reason"])
            since = round(now - run["asked_at"], 3)
            if run["queue_wait_s"] is None and summary["state"] != "queued":
                run["queue_wait_s"] = since
            if run["first_picture_s"] is None and summary["samples_count"] > 0:
                run["first_picture_s"] = since
            if run["finished_s"] is None and summary["state"] in ENDED:
                run["finished_s"] = since
            if summary["state"] in ("starting", "running") and summary["samples_count"] == 0:
                soon = True
            if summary["state"] == "queued" and (summary["queue_position"] or 99) <= 2:
                soon = True
        if all(run["finished_s"] is not None for run in runs.values()):
            break
        if now > deadline or stop_all.is_set():
            for run_id, run in runs.items():
                if run["finished_s"] is None:
                    server.api("stop_run", token, run_id)
            break
        time.sleep(FAST_POLL_S if soon else SLOW_POLL_S)
    for run in runs.values():
        run.pop("asked_at")
    return {"visitor": number, "runs": list(runs.values())}


def describe(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {"n": len(values), "min": round(ordered[0], 2), "median": round(statistics.median(ordered), 2),
            "p90": round(ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))], 2),
            "max": round(ordered[-1], 2)}


def summarise(visitors: list[dict], makespan_s: float, jobs: int, preset: str) -> dict:
    runs = [run for v in visitors for run in v["runs"]]
    ended = [r for r in runs if r["state"] == "finished"]
    # From the visitor's click: a run's own waits count from its own /start_run.
    visitor_first = [min(r["asked_s"] + r["first_picture_s"] for r in v["runs"] if r["first_picture_s"] is not None)
                     - min(r["asked_s"] for r in v["runs"]) for v in visitors
                     if any(r["first_picture_s"] is not None for r in v["runs"])]
    pair_first = [max(r["asked_s"] + r["first_picture_s"] for r in v["runs"]) - min(r["asked_s"] for r in v["runs"])
                  for v in visitors if all(r["first_picture_s"] is not None for r in v["runs"])]
    pair_done = [max(r["asked_s"] + r["finished_s"] for r in v["runs"]) - min(r["asked_s"] for r in v["runs"])
                 for v in visitors if all(r["state"] == "finished" for r in v["runs"])]
    work = {}
    for name in (partner_of(preset), preset):
        work[name] = describe([r["training_s"] for r in ended if r["preset"] == name])
    core_seconds = sum(r.get("training_s") or 0.0 for r in runs)
    steps = sum(r.get("step") or 0 for r in runs)
    return {
        "runs": len(runs), "finished": len(ended),
        "states": {s: sum(1 for r in runs if r["state"] == s) for s in sorted({r["state"] for r in runs})},
        "jobs_at_once": jobs,
        "first_picture_s (each run)": describe([r["first_picture_s"] for r in runs
                                                if r["first_picture_s"] is not None]),
        "first_picture_s (a visitor's first, either run)": describe(visitor_first),
        "first_picture_s (a visitor's pair, both shown)": describe(pair_first),
        "queue_wait_s": describe([r["queue_wait_s"] for r in runs if r["queue_wait_s"] is not None]),
        "pair_finished_s": describe(pair_done),
        "makespan_s": round(makespan_s, 1),
        "training_s per run": work,
        "core_seconds_total": round(core_seconds, 1),
        "steps_total": steps,
        "steps_per_s_all_jobs": round(steps / makespan_s, 1) if makespan_s > 0 else None,
        "runs_per_minute": round(60 * len(ended) / makespan_s, 2) if makespan_s > 0 else None,
        "busy_share": round(core_seconds / (jobs * makespan_s), 3) if makespan_s > 0 else None,
    }


def print_table(summary: dict) -> None:
    print(f"\n{summary['runs']} runs ({summary['states']}), {summary['jobs_at_once']} jobs at once; "
          f"every run ended after {summary['makespan_s']} s")
    print(f"{'seconds from asking':<48} {'n':>4} {'min':>7} {'median':>7} {'p90':>7} {'max':>7}")
    for key in ("first_picture_s (each run)", "first_picture_s (a visitor's first, either run)",
                "first_picture_s (a visitor's pair, both shown)", "queue_wait_s", "pair_finished_s"):
        row = summary[key]
        if row["n"]:
            print(f"{key:<48} {row['n']:>4} {row['min']:>7} {row['median']:>7} {row['p90']:>7} {row['max']:>7}")
    for name, row in summary["training_s per run"].items():
        if row["n"]:
            print(f"{'training s: ' + name[:36]:<48} {row['n']:>4} {row['min']:>7} {row['median']:>7} "
                  f"{row['p90']:>7} {row['max']:>7}")
    print(f"work: {summary['core_seconds_total']} core-seconds of training, {summary['steps_total']:,} steps, "
          f"{summary['steps_per_s_all_jobs']} steps/s for all jobs, {summary['runs_per_minute']} runs/minute, "
          f"slots busy {summary['busy_share']:.0%} of the time")
    cores = summary["jobs_at_once"]
    print("k machines of the same size (work / (k x jobs), the longest run as a floor):")
    longest = max((row.get("max", 0) for row in summary["training_s per run"].values()), default=0)
    for k in (1, 2, 4, 8):
        print(f"  k={k}: about {max(summary['core_seconds_total'] / (k * cores), longest):.0f} s")


def first_picture_rounds(preset: str, rounds: int) -> dict:
    """Submit -> first picture with local processes and with Ray runners, alternating (needs Ray)."""
    import tempfile

    from ganapp.server.ray_backend import LOOPBACK_ONLY

    address = os.environ.get("GANAPP_RAY_ADDRESS", "").strip() or "local"  # a running cluster, if given
    if address == "local":
        os.environ.update(LOOPBACK_ONLY)
    from ganapp.jobs import JobManager, Limits
    from ganapp.presets import preset_config
    from ganapp.server.backend import LocalProcesses
    from ganapp.server.ray_backend import RayJobs

    config = preset_config(preset)
    limits = Limits(max_running=2, max_running_per_owner=2)
    ray_options = {"num_cpus": 2, "_temp_dir": tempfile.mkdtemp(prefix="ganapp-ray-", dir="/tmp"),
                   "log_to_driver": False}
    managers = {"local processes": JobManager(limits=limits, backend=LocalProcesses()),
                "ray": JobManager(limits=limits, backend=RayJobs(address, init_options=ray_options
                                                                 if address == "local" else None))}
    seconds: dict[str, list[float]] = {name: [] for name in managers}
    speeds: dict[str, list[float]] = {name: [] for name in managers}
    try:
        for round_number in range(-1, rounds):
            for name, manager in managers.items():
                owner = manager.issue_token()
                started = time.perf_counter()
                run = manager.submit(owner, config)
                deadline = started + 300
                while run.picture_count == 0 and run.active and time.perf_counter() < deadline:
                    time.sleep(0.002)
                waited = time.perf_counter() - started
                first_step, first_time = run.step, time.perf_counter()
                time.sleep(TRAIN_WINDOW_S)
                speed = (run.step - first_step) / (time.perf_counter() - first_time)
                manager.stop(owner, run.id)
                manager.wait(owner, run.id, timeout_s=60)
                if round_number >= 0:  # round -1 warms both backends
                    seconds[name].append(waited)
                    speeds[name].append(speed)
                print(f"round {round_number:>2} {name:<16} first picture {waited:6.3f} s, {speed:6.1f} steps/s",
                      flush=True)
    finally:
        for manager in managers.values():
            manager.shutdown()
    ratios = [ray / local for ray, local in zip(speeds["ray"], speeds["local processes"]) if local > 0]
    return {"first_picture_s": {name: describe(values) for name, values in seconds.items()},
            "steps_per_s": {name: describe(values) for name, values in speeds.items()},
            "ray_speed_over_local_per_round": describe(ratios)}


def class_student(server: Server, number: int, short_code: str, clock_zero: float, deadline: float,
                  stop_all: threading.Event) -> dict:
    """One student: a token, join by the board's code, one Start, then poll the run to its end."""
    token = server.api("new_token")
    joined = server.api("join_class", token, short_code, "")
    asked_at = time.monotonic()
    reply = server.api("start_assignment", token, joined["code"])
    run = {"student": number, "variant": reply["variant"], "seed": reply["seed"],
           "asked_s": round(asked_at - clock_zero, 3), "queue_wait_s": None, "finished_s": None,
           "state": reply["state"]}
    while True:
        summary = server.api("poll_run", token, reply["run_id"], False, 1)
        now = time.monotonic()
        run.update(state=summary["state"], step=summary["step"], training_s=summary["seconds"])
        if run["queue_wait_s"] is None and summary["state"] != "queued":
            run["queue_wait_s"] = round(now - asked_at, 3)
        if summary["state"] in ENDED:
            run["finished_s"] = round(now - asked_at, 3)
            return run
        if now > deadline or stop_all.is_set():
            server.api("stop_run", token, reply["run_id"])
            return run
        time.sleep(SLOW_POLL_S)


def class_ablation(server: Server, args, results: dict) -> None:
    """The class of `args.visitors` students running the assigned ablation; figures into `results`."""
    teacher = server.api("new_token")
    opened = server.api("open_class", teacher, {"kind": args.class_ablation, "data": args.data, "steps": args.steps},
                        False)
    results["experiment"] = opened["what"]
    clock_zero = time.monotonic()
    deadline = clock_zero + 60 * args.max_minutes
    stop_all = threading.Event()
    board: dict = {"polls": [], "complete_s": None}

    def teacher_screen() -> None:  # the board's timer: the pooled table every 2 s until it is complete
        while not stop_all.is_set() and time.monotonic() < deadline + 30:
            started = time.monotonic()
            table = server.api("class_table", teacher, opened["code"])
            board["polls"].append(round(1000 * (time.monotonic() - started), 1))
            runs = sum(row["runs"] + row["active"] for row in table["rows"])
            if table["complete"] and runs >= args.visitors:
                board["complete_s"] = round(time.monotonic() - clock_zero, 2)
                board["table"] = table
                return
            time.sleep(2.0)

    screen = threading.Thread(target=teacher_screen, daemon=True)
    screen.start()
    with ThreadPoolExecutor(max_workers=args.visitors) as pool:
        try:
            runs = list(pool.map(lambda n: class_student(server, n, opened["short_code"], clock_zero, deadline,
                                                         stop_all), range(args.visitors)))
        except BaseException:
            stop_all.set()
            raise
    screen.join(60)
    stop_all.set()
    results["runs"] = runs
    results["markdown"] = server.api("export_class", teacher, opened["code"], "markdown")
    last_end = max((r["asked_s"] + (r["finished_s"] or 0.0) for r in runs), default=0.0)
    variants = sorted({r["variant"] for r in runs})
    results["summary"] = {
        "students": args.visitors, "finished": sum(1 for r in runs if r["state"] == "finished"),
        "states": {s: sum(1 for r in runs if r["state"] == s) for s in sorted({r["state"] for r in runs})},
        "runs_per_variant": {v: sum(1 for r in runs if r["variant"] == v) for v in variants},
        "last_run_ended_s": round(last_end, 1),
        "table_complete_s": board["complete_s"],
        "student_start_to_end_s": describe([r["finished_s"] for r in runs if r["finished_s"] is not None]),
        "queue_wait_s": describe([r["queue_wait_s"] for r in runs if r["queue_wait_s"] is not None]),
        "training_s per run": {v: describe([r["training_s"] for r in runs if r["variant"] == v
                                            and r["state"] == "finished"]) for v in variants},
        "class_table_reply_ms": describe(board["polls"]),
        "core_seconds_total": round(sum(r.get("training_s") or 0.0 for r in runs), 1),
    }


def print_class_table(results: dict) -> None:
    summary = results["summary"]
    print(f"\n{summary['students']} students, {results['experiment']}: {summary['states']}; "
          f"runs per variant {summary['runs_per_variant']}")
    print(f"the pooled table was complete {summary['table_complete_s']} s after the first Start "
          f"(the last run ended at {summary['last_run_ended_s']} s; the teacher's screen reads it every 2 s)")
    print(f"{'seconds':<40} {'n':>4} {'min':>7} {'median':>7} {'p90':>7} {'max':>7}")
    for key in ("student_start_to_end_s", "queue_wait_s"):
        row = summary[key]
        if row["n"]:
            print(f"{key:<40} {row['n']:>4} {row['min']:>7} {row['median']:>7} {row['p90']:>7} {row['max']:>7}")
    for name, row in summary["training_s per run"].items():
        if row["n"]:
            print(f"{'training s: ' + name:<40} {row['n']:>4} {row['min']:>7} {row['median']:>7} "
                  f"{row['p90']:>7} {row['max']:>7}")
    row = summary["class_table_reply_ms"]
    if row["n"]:
        print(f"{'/class_table reply, ms':<40} {row['n']:>4} {row['min']:>7} {row['median']:>7} {row['p90']:>7} "
              f"{row['max']:>7}")
    print(f"work: {summary['core_seconds_total']} core-seconds of training\n")
    print(results["markdown"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=30, help="simulated students (1..60)")
    parser.add_argument("--preset", default=DEFAULT_PRESET, help="the technique preset each visitor starts "
                        "beside its vanilla partner")
    parser.add_argument("--jobs", type=int, default=None, help="GANAPP_MAX_JOBS for the server (default: "
                        "this machine's cores, the server's own default)")
    parser.add_argument("--arrival-s", type=float, default=0.0, help="visitors arrive spread over this many "
                        "seconds (default 0: the whole class clicks at once)")
    parser.add_argument("--max-minutes", type=float, default=20.0, help="stop every run still going after this")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--class-ablation", choices=("techniques", "ablation"), help="instead of pairs: a class "
                        "runs this assigned experiment (techniques: each against vanilla; ablation: the sweep's 8 "
                        "variants), one Start per student, pooled on the teacher's screen")
    parser.add_argument("--data", default="ring8", help="the class experiment's data set (--class-ablation)")
    parser.add_argument("--steps", type=int, default=2000, help="steps per run of the class experiment")
    parser.add_argument("--first-picture-rounds", type=int, default=0, help="instead of a class: submit -> first "
                        "picture with local processes and with Ray runners, this many alternating rounds (1..20)")
    args = parser.parse_args()
    if args.first_picture_rounds:
        if not 1 <= args.first_picture_rounds <= 20:
            parser.error("--first-picture-rounds must be 1..20")
        results = {"preset": args.preset, "load_average_before": os.getloadavg(),
                   **first_picture_rounds(args.preset, args.first_picture_rounds),
                   "load_average_after": os.getloadavg()}
        print(json.dumps(results, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        return 0
    if args.class_ablation and not 1 <= args.steps <= 20_000:
        parser.error("--steps must be 1..20,000")
    if not 1 <= args.visitors <= 60 or not 0.5 <= args.max_minutes <= 60 or not 0 <= args.arrival_s <= 600:
        parser.error("--visitors must be 1..60, --max-minutes 0.5..60, --arrival-s 0..600")
    if args.preset not in PRESETS or args.preset.endswith(": vanilla"):
        techniques = ", ".join(p for p in PRESETS if not p.endswith(": vanilla"))
        parser.error(f"--preset must be a technique preset, one of: {techniques}")
    jobs = args.jobs or available_cores()
    if not 1 <= jobs <= 256:
        parser.error("--jobs must be 1..256")
    backend = os.environ.get("GANAPP_RAY_ADDRESS") and f"ray ({os.environ['GANAPP_RAY_ADDRESS']})" or "local processes"
    results: dict = {"visitors": args.visitors, "preset": args.preset, "partner": partner_of(args.preset),
                     "backend": backend, "cores": os.cpu_count(), "load_average_before": os.getloadavg()}
    server = Server(free_port(), jobs)
    os.nice(19)  # after starting the server, which must not inherit it
    try:
        warm = server.api("new_token")
        run = server.api("start_run", warm, {"data": "ring8", "steps": 20}, "warm-up")
        started = time.monotonic()
        while server.api("poll_run", warm, run["run_id"], False, 2)["state"] not in ENDED:
            if time.monotonic() - started > 180:
                raise RuntimeError("the warm-up run did not end within 3 minutes")
            time.sleep(0.1)
        results["warm_up_s"] = round(time.monotonic() - started, 2)

        if args.class_ablation:
            class_ablation(server, args, results)
            results["load_average_after"] = os.getloadavg()
            print_class_table(results)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=2))
            return 0
        clock_zero = time.monotonic()
        deadline = clock_zero + 60 * args.max_minutes
        stop_all = threading.Event()
        delays = sorted(random.Random(0).uniform(0, args.arrival_s) for _ in range(args.visitors))

        def arrive(number: int) -> dict:
            time.sleep(max(0.0, clock_zero + delays[number] - time.monotonic()))
            return visitor(server, number, args.preset, clock_zero, deadline, stop_all)

        with ThreadPoolExecutor(max_workers=args.visitors) as pool:
            try:
                visitors = list(pool.map(arrive, range(args.visitors)))
            except BaseException:
                stop_all.set()
                raise
        makespan = max(r["asked_s"] + (r["finished_s"] or 0.0) for v in visitors for r in v["runs"])
        results["load_average_after"] = os.getloadavg()
        results["visitors_detail"] = visitors
        results["summary"] = summarise(visitors, makespan, jobs, args.preset)
    finally:
        server.stop()
    print_table(results["summary"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
