"""Tests for ganapp.server.classes: codes, expiry, limits, assignments, the pooled statistics,
and the class's table against `python -m ganapp sweep` on the same settings (real jobs)."""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time

import pytest

from ganapp import sweep
from ganapp.config import ConfigError, GANConfig
from ganapp.server import classes
from ganapp.server.classes import ALPHABET, SHORT_LENGTH, ClassNotFound, ClassRegistry, make_experiment, pooled
from ganapp.server.limits import ENVIRONMENT, LimitError, Limits, SettingsError

TINY = {"batch_size": 32, "hidden_dim": 32}
TINY_SPEC = {"kind": "ablation", "data": "ring8", "steps": 30, "settings": TINY}


@pytest.fixture()
def registry(manager):
    return ClassRegistry(manager, Limits(max_class_students=5, max_class_runs_per_student=2, max_classes_per_teacher=2,
                                         max_classes=3, max_class_joins_per_minute=12))


def _tokens(manager, n):
    return [manager.issue_token(f"test-classes-{time.monotonic_ns()}") for _ in range(n)]


def test_the_server_module_imports_neither_torch_nor_gradio():
    import subprocess

    code = ("import sys, ganapp.server.classes; "
            "print(sorted(m for m in ('torch', 'gradio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_codes_are_secret_short_and_unambiguous(manager, registry):
    teacher, = _tokens(manager, 1)
    room = registry.open_class(teacher, {"kind": "techniques", "data": "ring8", "steps": 30, "settings": TINY})
    assert len(room.code) == 32 and room.code != room.short  # 128 random bits in the link
    assert len(room.short) == SHORT_LENGTH and set(room.short) <= set(ALPHABET)
    assert not set("0O1IL") & set(ALPHABET)
    shorts = {ClassRegistry._new_short() for _ in range(2000)}
    assert len(shorts) > 1990  # random, not a counter
    # typed codes: lower case, spaces and a dash in the middle are fine
    student, = _tokens(manager, 1)
    typed = room.short.lower()[:3] + " - " + room.short.lower()[3:]
    joined, _ = registry.join(student, typed, client="a")
    assert joined is room
    assert registry._find(room.code) is room and registry._find(room.code[:-1]) is None


def test_wrong_codes_are_rate_limited_per_client(manager, registry):
    student, = _tokens(manager, 1)
    # 12 joins a minute, a wrong code costs 5: the third wrong guess from one address is refused
    for _ in range(2):
        with pytest.raises(ClassNotFound, match="code on the board"):
            registry.join(student, "ZZZZZZ", client="guesser")
    with pytest.raises(LimitError, match="too many attempts"):
        registry.join(student, "ZZZZZZ", client="guesser")
    with pytest.raises(ClassNotFound):  # another address is not held back
        registry.join(student, "ZZZZZZ", client="someone else")


def test_limits_classes_students_and_runs(manager, registry):
    teachers = _tokens(manager, 3)
    spec = {"kind": "techniques", "data": "ring8", "steps": 30, "settings": TINY}
    first = registry.open_class(teachers[0], spec)
    registry.open_class(teachers[0], spec)
    with pytest.raises(LimitError, match="classes open"):  # 2 per teacher
        registry.open_class(teachers[0], spec)
    registry.open_class(teachers[1], spec)
    with pytest.raises(LimitError, match="this server has 3 classes open"):  # 3 in all
        registry.open_class(teachers[2], spec)
    registry.close(teachers[0], first.code)  # closing makes room
    registry.open_class(teachers[2], spec)

    second = registry.teaching(teachers[1])
    students = _tokens(manager, 6)
    for index, token in enumerate(students[:5]):
        registry.join(token, second.short, client=f"c{index}")
    with pytest.raises(LimitError, match="full"):
        registry.join(students[5], second.short, client="c5")
    # joining again keeps one's place (and does not count as a new student)
    again, student = registry.join(students[0], second.code, client="c0")
    assert student.number == 1 and len(again.students) == 5
    # someone outside the class sees nothing of it
    with pytest.raises(ClassNotFound):
        registry.table(students[5], second.code)
    with pytest.raises(ClassNotFound):  # only its teacher assigns
        registry.assign(students[0], second.code, spec)


def test_the_limits_are_environment_variables_with_ranges():
    for name in ("max_class_students", "max_class_runs_per_student", "max_classes_per_teacher", "max_classes",
                 "class_seconds", "max_class_joins_per_minute"):
        assert name in ENVIRONMENT
    limits = Limits.from_env({"GANAPP_CLASS_STUDENTS": "40", "GANAPP_CLASS_HOURS": "2"})
    assert limits.max_class_students == 40 and limits.class_seconds == 7200
    with pytest.raises(SettingsError, match="GANAPP_CLASS_STUDENTS"):
        Limits.from_env({"GANAPP_CLASS_STUDENTS": "0"})
    with pytest.raises(SettingsError, match="GANAPP_CLASS_HOURS"):
        Limits.from_env({"GANAPP_CLASS_HOURS": "a lot"})



@pytest.mark.parametrize("variable, value, words", [
    ("GANAPP_CLASS_HOURS", "a lot", "GANAPP_CLASS_HOURS (hours a class stays open) must be a whole number between 1 "
                                    "and 168; got 'a lot'"),
    ("GANAPP_CLASS_HOURS", "169", "GANAPP_CLASS_HOURS (hours a class stays open) must be between 1 and 168; got 169"),
    ("GANAPP_CLASS_STUDENTS", "1.5", "GANAPP_CLASS_STUDENTS (students per class) must be a whole number"),
    ("GANAPP_CLASSES_PER_TEACHER", "0", "GANAPP_CLASSES_PER_TEACHER (open classes per teacher) must be between 1"),
    ("GANAPP_MAX_CLASSES", "-3", "GANAPP_MAX_CLASSES (open classes, all teachers together) must be between 1"),
    ("GANAPP_CLASS_RUNS_PER_STUDENT", "ten", "GANAPP_CLASS_RUNS_PER_STUDENT (class runs per student) must be a "
                                            "whole number"),
    ("GANAPP_CLASS_JOINS_PER_MINUTE", "0", "GANAPP_CLASS_JOINS_PER_MINUTE (class joins (and wrong codes) per client "
                                          "address per minute) must be between 1"),
])
def test_a_bad_class_variable_stops_the_job_server_with_one_sentence(tmp_path, monkeypatch, variable, value, words):
    """The class limits are read where every other limit is (Limits.from_env, when the job
    server starts), with the same one-sentence refusal naming the variable."""
    from ganapp.jobs import JobManager

    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:
        JobManager(runs_dir=tmp_path / "runs")
    message = str(refused.value)
    assert message.startswith(words) and "\n" not in message and len(message) < 200, message


def test_a_class_registry_obeys_the_class_variables_the_server_started_with(tmp_path, monkeypatch):
    from ganapp.jobs import JobManager

    monkeypatch.setenv("GANAPP_CLASSES_PER_TEACHER", "1")
    monkeypatch.setenv("GANAPP_CLASS_HOURS", "2")
    monkeypatch.setenv("GANAPP_CLASS_STUDENTS", "1")
    jobs = JobManager(runs_dir=tmp_path / "runs")
    try:
        registry = ClassRegistry(jobs)  # as the page makes it: the job server's limits
        teacher, first, second = (jobs.issue_token() for _ in range(3))
        started = time.time()
        room = registry.open_class(teacher, TINY_SPEC)
        assert started + 7200 - 5 <= room.closes <= time.time() + 7200
        with pytest.raises(LimitError, match="classes open"):
            registry.open_class(teacher, TINY_SPEC)
        registry.join(first, room.short, client="a")
        with pytest.raises(LimitError, match="full"):
            registry.join(second, room.short, client="b")
    finally:
        jobs.shutdown()

def test_a_class_closes_after_its_time(manager, registry, monkeypatch):
    teacher, student, late = _tokens(manager, 3)
    room = registry.open_class(teacher, {"kind": "techniques", "data": "ring8", "steps": 30, "settings": TINY},
                               hours=1)
    registry.join(student, room.short, client="x")
    now = time.time()
    monkeypatch.setattr(classes.time, "time", lambda: now + 3601)
    assert not room.open
    with pytest.raises(classes.JobError, match="closed"):
        registry.join(late, room.short, client="y")
    with pytest.raises(classes.JobError, match="closed"):
        registry.start_assignment(student, room.code)
    assert registry.table(teacher, room.code)["rows"]  # its table stays readable a while
    monkeypatch.setattr(classes.time, "time", lambda: now + 3601 + classes.CLOSED_KEPT_S + 1)
    assert registry.teaching(teacher) is None  # then it is gone, codes and all
    with pytest.raises(ClassNotFound):
        registry.join(late, room.short, client="z")


def test_assignments_are_balanced_with_distinct_seeds_per_variant(manager, registry):
    big = ClassRegistry(manager, Limits(max_class_students=40, max_class_joins_per_minute=100))
    teacher, *students = _tokens(manager, 31)
    room = big.open_class(teacher, TINY_SPEC)
    slots = []
    for token in students:
        _, _, variant, seed = big.assignment(*[token, big.join(token, room.short, client="school")[0].code])
        slots.append((variant, seed))
    assert len(set(slots)) == 30  # nobody runs what another runs
    per_variant = {v: sorted(s for variant, s in slots if variant == v) for v in sweep.VARIANTS}
    assert max(map(len, per_variant.values())) - min(map(len, per_variant.values())) <= 1  # balanced
    assert all(seeds == list(range(len(seeds))) for seeds in per_variant.values())  # seeds 0, 1, 2...
    # the first 24 students hold seeds 0-2 of each of the 8 variants: the sweep's `--seeds 3`
    assert set(slots[:24]) == {(v, s) for v in sweep.VARIANTS for s in range(3)}
    # a pair experiment: the technique preset and its vanilla partner, in turn
    pair = make_experiment({"kind": "pair", "preset": "ring8, G without batch norm: minibatch discrimination"},
                           manager.limits)
    assert list(pair.variants) == ["vanilla", "MBD"] and pair.data == "ring8"
    assert pair.config("MBD", 4) == GANConfig.from_dict({**sweep.VARIANTS["MBD"], "generator_batch_norm": False,
                                                         "lr_generator": 3e-4, "lr_discriminator": 3e-4,
                                                         "steps": 2000, "metrics_every": 2000, "seed": 4})
    big.assign(teacher, room.code, {"kind": "pair", "preset": "ring8, G without batch norm: minibatch discrimination",
                                    "steps": 30})
    again = [big.assignment(token, room.code)[2:] for token in students[:4]]
    assert again == [("vanilla", 0), ("MBD", 0), ("vanilla", 1), ("MBD", 1)]


def test_experiments_are_checked_before_a_class_opens(manager):
    with pytest.raises(ConfigError, match="kind"):
        make_experiment({"kind": "everything"}, manager.limits)
    with pytest.raises(ConfigError, match="data, steps and seed"):
        make_experiment({"kind": "techniques", "settings": {"seed": 3}}, manager.limits)
    with pytest.raises(ConfigError, match="technique preset"):
        make_experiment({"kind": "pair", "preset": "ring8: vanilla"}, manager.limits)
    with pytest.raises(LimitError, match="steps"):
        make_experiment({"kind": "techniques", "steps": 900_000}, manager.limits)
    with pytest.raises(ConfigError):
        make_experiment({"kind": "techniques", "data": "no such data"}, manager.limits)
    # the class builds each run as the sweep does
    experiment = make_experiment(TINY_SPEC, manager.limits)
    expected = {(v, s): c for v, s, c in sweep.sweep_configs("ring8", 3, 30, TINY)}
    assert {(v, s): experiment.config(v, s).to_dict() for v in sweep.VARIANTS for s in range(3)} == expected


def test_own_runs_are_named_as_the_sweep_names_them(manager):
    experiment = make_experiment({"kind": "techniques", "data": "ring8", "steps": 30, "settings": TINY},
                                 manager.limits)
    own = classes.own_variant
    assert own(experiment.config("LS", 7), experiment) == "LS"
    assert own(experiment.config_with(sweep.VARIANTS["our methods"], 1), experiment) == "our methods"
    assert own(experiment.config_with({"feature_matching": True, "label_smoothing": 0.9}, 0), experiment) == "FM+LS"
    assert own(experiment.config_with({"label_smoothing": 0.9, "steps": 40}, 0), experiment) == "LS (steps=40)"
    assert own(experiment.config_with({"label_smoothing": 0.8}, 0), experiment) == "LS (label_smoothing=0.8)"


def _result(variant, seed, status="finished", **metrics):
    return {"variant": variant, "seed": seed, "status": status, "step": 30,
            "metrics": metrics if status == "finished" else {}, "reference": {}, "train_seconds": 1.0,
            "seconds": 1.0}


def test_statistics_keep_failed_runs_apart_and_flag_small_n():
    results = [_result("vanilla", 0, modes_covered=8.0), _result("vanilla", 1, modes_covered=6.0),
               _result("vanilla", 2, modes_covered=7.0), _result("vanilla", 3, "failed"),
               _result("vanilla", 4, "stopped"), _result("MBD", 0, modes_covered=5.0),
               _result("MBD", 1, "active"), _result("FM+LS", 0, modes_covered=2.0)]
    table = pooled(results, ["vanilla", "MBD", "LS"])
    rows = {row["variant"]: row for row in table["rows"]}
    assert list(rows) == ["vanilla", "MBD", "LS", "FM+LS"]  # the experiment's order, then own variants
    vanilla = rows["vanilla"]
    assert (vanilla["n"], vanilla["apart"], vanilla["runs"], vanilla["few"]) == (3, 2, 5, False)
    assert vanilla["modes_covered_mean"] == 7.0 and vanilla["modes_covered_std"] == pytest.approx(1.0)
    mbd = rows["MBD"]
    assert (mbd["n"], mbd["active"], mbd["few"], mbd["modes_covered_std"]) == (1, 1, True, 0.0)
    assert rows["LS"]["n"] == 0 and math.isnan(rows["LS"]["modes_covered_mean"])
    assert not table["complete"]  # one run is still going
    assert sorted((d["variant"], d["seed"]) for d in table["dots"]) == [
        ("FM+LS", 0), ("MBD", 0), ("vanilla", 0), ("vanilla", 1), ("vanilla", 2)]
    text = classes.markdown(table, title="t")
    assert "| vanilla (2 failed or stopped, not averaged) | none | 3 | 7.00 ± 1.00 |" in text
    assert "MBD (n = 1 < 3: too few to trust)" in text and "| LS (n = 0 < 3: too few to trust) | LS | 0 | – |" in text
    lines = classes.csv_text(table).splitlines()
    assert lines[0].startswith("variant,runs,finished,apart,active,few,modes_covered_mean,modes_covered_std")
    assert lines[1].startswith("vanilla,5,3,2,0,False,7.0,1.0")


@pytest.mark.slow  # 24 real jobs through the job server, and the sweep's 24 in worker processes
def test_the_pooled_table_of_a_class_equals_the_sweep(tmp_path):
    """24 students run seeds 0-2 of the 8 variants through their assignments; one stops a
    25th run (counted apart). The table equals `python -m ganapp sweep --seeds 3` for the
    same settings, metric by metric, mean and std."""
    from ganapp.jobs import JobManager

    jobs = JobManager(limits=Limits(max_running=2, max_running_per_owner=2, max_waiting=64, max_waiting_per_owner=3),
                      runs_dir=tmp_path / "runs")
    try:
        registry = ClassRegistry(jobs)
        teacher = jobs.issue_token("t")
        room = registry.open_class(teacher, TINY_SPEC)
        students = [jobs.issue_token("school") for _ in range(24)]
        runs = []
        for token in students:
            registry.join(token, room.short, client="school")
            runs.append((token, registry.start_assignment(token, room.code)))
        extra = registry.start_own(students[0], room.code, room.experiment.config_with({"steps": 20_000}, 5))
        assert extra[1] == "vanilla (steps=20000)"
        jobs.stop(students[0], extra[0].id)
        for token, (run, _, _) in runs:
            assert jobs.wait(token, run.id, timeout_s=240).state == "finished", run.reason
        jobs.wait(students[0], extra[0].id, timeout_s=60)
        table = registry.table(students[3], room.short)
        # a finished assignment stays shown until the student starts again; then the next free slot
        first = runs[0][1][1:]
        room_, student, *slot = registry.assignment(students[0], room.code)
        assert tuple(slot) == first and registry.assignment_done(room_, student)
        again = registry.start_assignment(students[0], room.code)
        assert again[1:] == ("vanilla", 3)  # 24 slots taken: vanilla's seed 3 is the next
        jobs.stop(students[0], again[0].id)
    finally:
        jobs.shutdown()
    assert table["complete"]
    rows = {row["variant"]: row for row in table["rows"]}
    assert rows["vanilla (steps=20000)"]["apart"] == 1 and rows["vanilla (steps=20000)"]["n"] == 0

    args = argparse.Namespace(data="ring8", seeds=3, steps=30, out=str(tmp_path / "sweep"), workers=2,
                              set=[f"{k}={v}" for k, v in TINY.items()])
    assert sweep.main(args) == 0
    with open(tmp_path / "sweep" / "sweep.csv", newline="") as stream:
        expected = {row["variant"]: row for row in csv.DictReader(stream)}
    assert table["metrics"] == [c[:-5] for c in expected["vanilla"] if c.endswith("_mean") and c != "seconds_mean"]
    for variant in sweep.VARIANTS:
        row = rows[variant]
        assert (row["n"], row["apart"]) == (3, 0) and int(expected[variant]["finished"]) == 3
        for name in table["metrics"]:
            for stat in ("mean", "std"):
                assert row[f"{name}_{stat}"] == pytest.approx(float(expected[variant][f"{name}_{stat}"]),
                                                              rel=1e-9, abs=1e-12), (variant, name, stat)
