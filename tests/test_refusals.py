"""The job server's refusals and notices in the visitor's language: every JobError and
Notice the server raises with a key has a Traditional Chinese sentence (ganapp.web.text,
"refusal_" + key) that its values fill, and the real refusals come out in Chinese."""

from __future__ import annotations

import ast
import re
import struct
from pathlib import Path

import pytest

from ganapp.server import JobError, JobManager, LimitError, Limits
from ganapp.server.limits import MB
from ganapp.server.tokens import TokenIssuer
from ganapp.web.text import TEXT, refusal
from test_server import ScriptedBackend, started, tiny  # noqa: F401  (the scripted job backend)

SERVER = Path(__file__).resolve().parent.parent / "ganapp" / "server"
LATIN_WORDS = re.compile(r"[A-Za-z]{4,}")  # an English word left in a Chinese sentence


def _keys_in_server_code() -> dict[str, set[str]]:
    """key -> the value names passed with it, for every JobError/LimitError/Notice/... call
    (and _forget's notices, "deleted_" + key) in ganapp/server."""
    found: dict[str, set[str]] = {}
    for path in SERVER.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            key = keywords.get("key")
            if key is None:
                continue
            prefix = "deleted_" if getattr(node.func, "attr", "") == "_forget" else ""
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                names = {name for name in keywords if name != "key"}
                if prefix:
                    names.add("name")
                found[prefix + key.value] = names
            elif isinstance(key, ast.BinOp):  # "memory" + _of(what): both forms
                base = key.left.value
                for suffix in ("", "_checkpoint"):
                    found[base + suffix] = {name for name in keywords if name != "key"}
    return found


def test_every_keyed_refusal_in_the_server_has_a_chinese_sentence_its_values_fill():
    keys = _keys_in_server_code()
    assert len(keys) >= 25, sorted(keys)  # the parse found the server's refusals
    for key, names in keys.items():
        entry = TEXT.get(f"refusal_{key}")
        assert entry is not None, f"no refusal_{key} in ganapp/web/text.py"
        used = set(re.findall(r"\{(\w+)\}", entry[1]))
        assert used <= names, (key, used - names)  # every placeholder gets a value
        assert not LATIN_WORDS.search(re.sub(r"\{\w+\}|ring8|grid25|spiral|digits|MB", "", entry[1])), entry[1]


@pytest.fixture
def manager(tmp_path):
    made = JobManager(limits=Limits(max_running=1, max_running_per_owner=1, max_waiting_per_owner=1,
                                    max_runs_per_owner=2, max_hidden_dim=4096),
                      runs_dir=tmp_path / "runs", backend=ScriptedBackend(), pump_interval_s=0.005)
    yield made
    made.shutdown(grace_s=0.5)


def _said(call) -> tuple[JobError, str]:
    with pytest.raises(JobError) as raised:
        call()
    error = raised.value
    return error, refusal(error, "zh-TW")


def test_the_servers_refusals_reach_a_chinese_page_in_chinese(manager, tmp_path):
    owner = manager.issue_token()
    manager.limits.max_hidden_dim = 1024
    cases = {
        "max_steps": lambda: manager.submit(owner, tiny(steps=10**6)),
        "max_width": lambda: manager.submit(owner, tiny(hidden_dim=2048)),
        "memory": lambda: manager.submit(owner, tiny(batch_size=1024, minibatch_discrimination=True,
                                                     minibatch_kernels=1024)),
        "no_such_run": lambda: manager.get(owner, "12ab"),
        "upload_gone": lambda: manager.load_checkpoint(owner, tmp_path / "missing.safetensors"),
        "name_not_text": lambda: manager.submit(owner, tiny(), name=42),
        "foreign_token": lambda: manager.submit(TokenIssuer().issue(), tiny()),
    }
    for key, call in cases.items():
        error, chinese = _said(call)
        assert error.key == key, (key, str(error))
        assert chinese != str(error) and not LATIN_WORDS.search(chinese), (key, chinese)
        assert refusal(error, "en") == str(error)  # English pages and the API get the server's own sentence

    # Values reach the sentence: the server's limit and what was asked for.
    error, chinese = _said(lambda: manager.submit(owner, tiny(steps=30_000)))
    assert "20,000" in chinese and "30,000" in chinese, chinese

    # A bad checkpoint: the engine's detail stays as it was written, inside a Chinese sentence.
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 5) + b"{nope")
    error, chinese = _said(lambda: manager.load_checkpoint(owner, bad, "bad.safetensors"))
    assert error.key == "bad_checkpoint" and chinese.startswith("這個檢查點無法開啟")

    # Queue limits: one waiting run per visitor here (nothing starts while another trains).
    first = manager.submit(owner, tiny())
    started(manager, manager.backend, first)
    manager.submit(owner, tiny(seed=1))
    error, chinese = _said(lambda: manager.submit(owner, tiny(seed=2)))
    assert error.key == "own_queue_full" and "1" in chinese and "排隊" in chinese


def test_a_run_deleted_to_make_room_is_told_in_chinese(tmp_path):
    backend = ScriptedBackend()
    manager = JobManager(limits=Limits(max_running=1, max_running_per_owner=1, max_runs_per_owner=2),
                         runs_dir=tmp_path / "runs", backend=backend, pump_interval_s=0.005)
    try:
        owner = manager.issue_token()
        from conftest import wait_until
        for seed in range(3):
            run = manager.submit(owner, tiny(seed=seed), name=f"第 {seed} 次")
            started(manager, backend, run).finish(step=10)
            wait_until(lambda: run.state == "finished", 5, "the run to finish")
        (notice,) = manager.take_notices(owner)
        assert "'第 0 次' was deleted to make room" in notice and "2 runs per visitor" in notice
        chinese = refusal(notice, "zh-TW")
        assert chinese == "你的訓練「第 0 次」已被刪除以騰出空間：伺服器每位訪客最多保留 2 個訓練。"
        # The page's toasts: a fourth run deletes the second, told in the page's language.
        from ganapp.web.core import GanApp
        run = manager.submit(owner, tiny(seed=3), name="four")
        assert GanApp(manager).notices(owner, "zh-TW") == ["你的訓練「第 1 次」已被刪除以騰出空間：伺服器每位訪客最多保留 2 個訓練。"]
    finally:
        manager.shutdown(grace_s=0.5)


def test_a_refusal_without_a_key_or_with_missing_values_is_said_as_the_server_said_it():
    assert refusal(JobError("something new went wrong"), "zh-TW") == "something new went wrong"
    assert refusal(LimitError("limit", key="max_steps"), "zh-TW") == "limit"  # values missing: no KeyError
    assert refusal(ValueError("plain"), "zh-TW") == "plain"
    assert MB == 1024 * 1024
