"""The page and its API against hostile or careless input (security review of the app).

Through the real server on loopback (gradio_client for the API, httpx for Gradio's upload
route) and by calling the handlers directly where that is simpler. The browser's side of
the HTML injection is in test_browser.py.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio_client import Client

import app
from conftest import free_port
from ganapp.config import GANConfig
from ganapp.jobs import LimitError, Run, new_owner_token
from ganapp.presets import ready_made_checkpoint, ready_made_runs
from ganapp.web import safety, views

pytestmark = pytest.mark.slow  # most of these start a real server (see conftest's fast tier)

TINY = {"data": "ring8", "batch_size": 32, "hidden_dim": 32, "log_every": 5, "sample_every": 20,
        "metrics_every": 0}


def checkpoint_with_config(path: Path, config: dict) -> Path:
    """A safetensors file without tensors whose ganapp metadata carries `config`: the loader
    reads and judges the config before it looks for weights (ganapp.checkpoint)."""
    meta = {"format": "ganapp-checkpoint", "format_version": 1, "config": config, "step": 0, "seconds": 0.0,
            "history": []}
    header = json.dumps({"__metadata__": {"ganapp": json.dumps(meta)}}).encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    return path


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False)


# ------------------------------------------------------------------ 1. nothing of a visitor's is HTML
def test_toast_messages_are_escaped_and_bounded():
    assert safety.message('<img src=http://x/y onerror="alert(1)">') == '&lt;img src=http://x/y onerror="alert(1)"&gt;'
    long = safety.message("<b>" * 10_000)
    assert "<" not in long and long.endswith("…")
    assert len(safety.shorten("x" * 10_000)) == safety.MESSAGE_CHARS
    assert safety.html_text('" onload="x') == "&quot; onload=&quot;x"  # safe inside an attribute too
    assert safety.markdown_text("[Session expired](http://x) <i>") == r"\[Session expired\]\(http://x\) &lt;i&gt;"
    error = safety.refusal("<a href=http://x>click</a>" + "!" * 1000)
    assert "<a" not in error.message and len(error.message) < 400


def test_a_checkpoint_whose_config_holds_html_is_refused_as_plain_text(server, manager, tmp_path):
    payload = '<img src=http://127.0.0.1:9/x onerror=alert(1)>'
    path = checkpoint_with_config(tmp_path / "evil.safetensors", {**TINY, "data": payload})
    owner = manager.issue_token("test")
    with pytest.raises(gr.Error) as refused:  # refused when the job server reads it, or by the job
        server.app.open_upload(owner, str(path))
    text = refused.value.message
    assert "data must be one of" in text and "&lt;img src=http://127.0.0.1:9/x" in text
    assert "<img" not in text
    assert server.app.jobs.runs(owner) == []  # nothing left behind
    assert path.exists()  # a file outside Gradio's upload folder is never deleted


def test_the_status_box_shows_run_data_as_text(server, tmp_path):
    run = Run(id="abcd1234", owner="x" * 32, name='<img src=x onerror=alert(1)>"', kind="train",
              config=GANConfig(), folder=tmp_path, state="failed",
              reason="<a href=http://evil>Session expired</a>" + "!" * 100_000,
              metrics_warning="<script>alert(1)</script>")
    run.warning = "<b>losses grew to 1e6</b>: training diverged; try a smaller learning rate"
    box = server.app.status_html(run)
    assert "<img" not in box and "<a " not in box and "<script" not in box and "<b>" not in box
    assert "&lt;img src=x onerror=alert(1)&gt;&quot;" in box and "&lt;b&gt;losses grew to 1e6" in box
    assert len(box) < 5_000  # a 100 kB reason is shortened
    picture = views.picture_html(b"png", alt='" onerror="alert(1)')
    assert 'alt="&quot; onerror=&quot;alert(1)"' in picture


def test_the_scoreboard_csv_holds_run_names_as_text_not_formulas(server, manager, tmp_path):
    owner = manager.issue_token("test")
    runs = [Run(id=f"abcd123{i}", owner="x" * 32, name=name, kind="train", config=GANConfig(), folder=tmp_path,
                state="finished") for i, name in enumerate(('=HYPERLINK("http://evil","click")', "@SUM(1)", "plain"))]
    table, download = server.app.scoreboard_view(owner, runs)
    assert list(table["name"])[0] == '=HYPERLINK("http://evil","click")'  # the page shows the name as it is
    text = Path(download.value["path"] if isinstance(download.value, dict) else download.value).read_text()
    assert "'=HYPERLINK(" in text and "'@SUM(1)" in text and ",plain," in text


# ------------------------------------------------------------------ 2. wrong kinds of API input
@pytest.mark.parametrize("api_name, args, message", [
    ("/start_run", ({"steps": 10}, 5), "name must be text; got a number"),
    ("/start_run", ({"steps": 10}, ["a", "b"]), "name must be text; got a list"),
    ("/start_run", ({"steps": 10}, "n" * 81), "name is too long: 81 characters; at most 80"),
    ("/start_run", ([1, 2], ""), "config must be a dictionary of settings"),
    ("/start_run", ("steps=5", ""), "config must be a dictionary of settings"),
    ("/start_run", ({"colour": "blue", "size": 3}, ""), "unknown settings: colour, size"),
    ("/poll_run", ("abcd1234", False, "many"), "max_rows must be a whole number between 1 and 2,000; got 'many'"),
    ("/poll_run", ("abcd1234", False, 10**9), "max_rows must be a whole number between 1 and 2,000"),
    ("/poll_run", ("abcd1234", False, [1]), "max_rows must be a whole number between 1 and 2,000; got a list"),
    ("/poll_run", ("abcd1234", "yes"), "with_samples must be true or false"),
    ("/poll_run", (["abcd1234"],), "run_id must be text; got a list"),
    ("/stop_run", (5,), "run_id must be text; got a number"),
])
def test_wrong_kinds_of_api_input_get_short_clear_errors(client, api_name, args, message):
    token = client.predict(api_name="/new_token")
    with pytest.raises(Exception, match=message) as error:
        client.predict(token, *args, api_name=api_name)
    assert len(str(error.value)) < 500 and "Traceback" not in str(error.value)
    assert client.predict(token, api_name="/list_runs") == []  # nothing half-made


def test_a_million_unknown_settings_get_one_short_line(client, capfd):
    token = client.predict(api_name="/new_token")
    capfd.readouterr()
    with pytest.raises(Exception, match=r"unknown settings: k0, k1, k2 \.\.\. and 999,997 more") as error:
        client.predict(token, {f"k{i}": 0 for i in range(1_000_000)}, "", api_name="/start_run")
    assert len(str(error.value)) < 500
    logged = capfd.readouterr()
    assert len(logged.out) + len(logged.err) < 20_000  # the server's log stays short too
    assert client.predict(token, api_name="/list_runs") == []  # and the server still serves
    assert client.predict(token, {**TINY, "steps": 5}, "after", api_name="/start_run")["name"] == "after"


# ------------------------------------------------------------------ 3. say what is true
def test_run_files_of_a_failed_run_say_what_exists(client, manager, tmp_path):
    owner = manager.issue_token("test")
    # A checkpoint with a valid config but no weights: accepted at upload, failed by its job.
    empty = checkpoint_with_config(tmp_path / "empty.safetensors", TINY)
    run = manager.wait(owner, manager.load_checkpoint(owner, empty).id, timeout_s=60)
    assert run.state == "failed" and run.reason and not run.files
    with pytest.raises(Exception, match="this run failed before writing files: " + re.escape(run.reason[:40])) as error:
        client.predict(owner, run.id, api_name="/run_files")
    assert "written when it ends" not in str(error.value)
    # A failed run that did write some files: those that exist are handed out.
    (tmp_path / "config.json").write_text("{}")
    run.files = {"config": str(tmp_path / "config.json"), "checkpoint": str(tmp_path / "missing.safetensors")}
    assert [Path(f).name for f in client.predict(owner, run.id, api_name="/run_files")] == ["config.json"]


def test_notices_and_run_warnings_reach_the_visitor(client, server, manager, monkeypatch):
    notices = {}
    monkeypatch.setattr(manager, "take_notices", lambda owner: notices.pop(owner, []), raising=False)
    token = client.predict(api_name="/new_token")
    notices[token] = ["your oldest run 'ring8 <b>old</b>' was deleted to make room"]
    started = client.predict(token, {**TINY, "steps": 20_000}, "watched", api_name="/start_run")
    assert started["notices"] == ["your oldest run 'ring8 <b>old</b>' was deleted to make room"]  # data, not HTML
    assert client.predict(token, {**TINY, "steps": 5}, "", api_name="/start_run")["notices"] == []  # once only
    run = manager.get(token, started["run_id"])
    try:
        run.warning = "losses grew to 1e6: training diverged; try a smaller learning rate"
        polled = client.predict(token, run.id, api_name="/poll_run")
        assert polled["warning"] == run.warning
        assert [r["warning"] for r in client.predict(token, api_name="/list_runs")][0] == run.warning
        assert "losses grew to 1e6: training diverged" in server.app.status_html(run)
        # On the page, notices are warning toasts (outside a request Gradio warns in Python).
        notices[token] = ["<i>a notice</i>"]
        with pytest.warns(UserWarning, match="&lt;i&gt;a notice&lt;/i&gt;"):
            server.app.show_notices(token)
    finally:
        manager.stop(token, run.id)


# ------------------------------------------------------------------ 5. tokens from the job server
def test_new_tokens_come_from_the_job_server_per_client(client, manager, monkeypatch):
    asked = []

    def issue_token(client_host: str) -> str:
        asked.append(client_host)
        if len(asked) > 2:
            raise LimitError("too many new tokens from your address <b>now</b>; try again in a minute")
        return f"token {len(asked)}"

    monkeypatch.setattr(manager, "issue_token", issue_token, raising=False)
    first, second = client.predict(api_name="/new_token"), client.predict(api_name="/new_token")
    assert first != second and asked == ["127.0.0.1", "127.0.0.1"]
    with pytest.raises(Exception, match="too many new tokens from your address &lt;b&gt;now&lt;/b&gt;"):
        client.predict(api_name="/new_token")


def test_a_token_the_server_did_not_issue_is_refused_by_the_page(server, manager):
    made_up = new_owner_token()  # well formed, but not signed by this server
    assert not server.app.valid_owner(made_up) and server.app.valid_owner(manager.issue_token("test"))
    with pytest.raises(gr.Error, match="not issued by this server"):
        server.app.owner(made_up)


# ------------------------------------------------------------------ 4. Gradio's upload route
def _upload(base_url: str, size: int, name: str = "blob.safetensors") -> httpx.Response:
    return httpx.post(f"{base_url}gradio_api/upload", files={"files": (name, os.urandom(size))}, timeout=30)


def test_an_upload_is_deleted_once_the_job_server_has_read_it(server, manager):
    owner = manager.issue_token("test")
    shipped = ready_made_checkpoint(ready_made_runs()[0])  # a real checkpoint, read and kept
    for content, name in ((shipped.read_bytes(), "mine.safetensors"), (b"not a checkpoint", "junk.safetensors")):
        reply = httpx.post(f"{server.url}gradio_api/upload", files={"files": (name, content)}, timeout=30)
        assert reply.status_code == 200, reply.text
        (stored,) = reply.json()
        assert os.path.isfile(stored) and stored in server.demo.upload_file_set
        if name == "mine.safetensors":
            run = server.app.open_upload(owner, stored)
            assert run.state == "finished" and (run.folder / "upload" / name).read_bytes() == content
        else:
            with pytest.raises(gr.Error, match="junk.safetensors is not a ganapp checkpoint"):
                server.app.open_upload(owner, stored)
        assert not os.path.exists(stored) and stored not in server.demo.upload_file_set
    assert len(manager.runs(owner)) == 1  # the refused file left no run
    assert server.demo.max_file_size == manager.limits.max_upload_bytes


@pytest.fixture(scope="module")
def guarded_url(manager):
    """A second server of the app whose upload guard has small limits, so that this module
    can reach them without closing the upload route of the shared server."""
    policy = safety.UploadPolicy(max_request_bytes=64 * 1024, per_client=4, per_client_bytes=10**6,
                                 window_s=600, max_total_bytes=100 * 1024)
    demo = app.build_demo(manager)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                            quiet=True, **app.launch_options(manager, uploads=policy, demo=demo))
    yield url
    demo.close()


def _raw_request(url: str, head: str) -> tuple[int, str]:
    """Send only a request's head on a plain socket; the status and body of the reply."""
    host, port = httpx.URL(url).host, httpx.URL(url).port
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(head.encode())
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < 10:
            chunk = connection.recv(65536)
            if not chunk:
                break
            reply += chunk
    status_line, _, rest = reply.decode().partition("\r\n")
    return int(status_line.split()[1]), rest.split("\r\n\r\n", 1)[1]


def test_the_upload_route_refuses_what_it_cannot_hold(guarded_url):
    # A request announcing 10 GB is refused before a byte of it is read.
    status, text = _raw_request(guarded_url, "POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\n"
                                             "Content-Type: multipart/form-data; boundary=b\r\n"
                                             "Content-Length: 10000000000\r\n\r\n")
    assert status == 413 and "this server accepts at most 0.1 MB at once" in text
    chunked = httpx.post(f"{guarded_url}gradio_api/upload", content=iter([b"--b\r\n"]),
                         headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert chunked.status_code == 411 and "Content-Length" in chunked.text
    assert _upload(guarded_url, 80 * 1024).status_code == 413  # one file above the request cap

    # The bytes that uploads hold on disk at once are bounded...
    kept = [_upload(guarded_url, 40 * 1024) for _ in range(2)]
    assert [r.status_code for r in kept] == [200, 200]
    full = _upload(guarded_url, 40 * 1024)
    assert full.status_code == 429 and "holds too many uploads" in full.text
    for reply in kept:  # ...and freed once they are deleted (the app deletes what it has read)
        os.remove(reply.json()[0])
    # Each client address gets a few uploads per window, then a plain 429 with a delay.
    answers = []
    for _ in range(6):  # bounded: 2 more are allowed (4 per window)
        reply = _upload(guarded_url, 1024)
        answers.append(reply.status_code)
        if reply.status_code != 200:
            break
        os.remove(reply.json()[0])
    assert answers == [200, 200, 429]
    assert "too many uploads from your address: at most 4 in 10 minutes" in reply.text
    assert int(reply.headers["Retry-After"]) > 0 and reply.headers["content-type"].startswith("text/plain")
    assert httpx.get(guarded_url, timeout=30).status_code == 200  # the page itself is served as before
