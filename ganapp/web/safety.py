"""What the page shows and what its API takes: escaped, bounded and checked in one place.

Gradio renders the message of gr.Error, gr.Warning and gr.Info as HTML, as it renders the
values of gr.HTML and gr.Markdown. Run names, upload file names, errors that quote what a
visitor typed and metric warnings all come from visitors (an uploaded checkpoint's config
once drew a fake "Session expired" link in an error toast, and an <img> in it made the
browser fetch an outside address). So every such text goes through `message` (toasts) or
`html_text` (pieces of gr.HTML): shortened to MESSAGE_CHARS, then escaped. A reply or a
log line can then never carry megabytes either.

An API parameter arrives as whatever JSON a script sends. `text_param`, `whole_number`,
`flag_param` and `settings_param` turn a wrong kind into a short InputError naming the
parameter, before anything else looks at the value.

`UploadGuard` stands in front of Gradio's upload route, which anyone may call without a
visitor token: it bounds each upload's size, each client's uploads per window and the
bytes that uploads hold on disk at once (see UploadPolicy).
"""

from __future__ import annotations

import html
import itertools
import json
import math
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse

MESSAGE_CHARS = 300  # what a toast, an error reply or a log line quotes at most
NAME_CHARS = 80  # a run name (the page's text box allows as many)


# ====================================================================================
# Text that reaches the browser as HTML
# ====================================================================================
def shorten(value: Any, limit: int = MESSAGE_CHARS) -> str:
    """`value` as text of at most `limit` characters, an ellipsis marking a cut."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message(value: Any, limit: int = MESSAGE_CHARS) -> str:
    """A toast's text (gr.Error, gr.Warning, gr.Info render it as HTML): shortened, then
    escaped, so that it shows literally. Quotes stay as they are: they are harmless
    outside attributes, and an API caller reads the same message."""
    return html.escape(shorten(value, limit), quote=False)


def html_text(value: Any, limit: int = MESSAGE_CHARS) -> str:
    """A piece of text, or an attribute's value, inside HTML we build: shortened, escaped."""
    return html.escape(shorten(value, limit), quote=True)


_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def markdown_text(value: Any, limit: int = MESSAGE_CHARS) -> str:
    """Plain text for gr.Markdown: escaped as HTML, and Markdown's punctuation made literal."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", message(value, limit))


def refusal(text: Any, title: str = "Refused") -> gr.Error:
    """The error toast (and API error) for a refused request. No traceback in the log: a
    refusal is the server working as meant, and the text is a visitor's to read."""
    return gr.Error(message(text), title=title, print_exception=False)


def warning(text: Any) -> None:
    gr.Warning(message(text))


def info(text: Any) -> None:
    gr.Info(message(text))


# ====================================================================================
# API parameters
# ====================================================================================
class InputError(ValueError):
    """A parameter of the wrong kind or size; the message names it and says what is right."""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "nothing (null)"
    return {str: "text", list: "a list", dict: "a dictionary"}.get(type(value), type(value).__name__)


def text_param(name: str, value: Any, *, max_chars: int | None = None, default: str = "") -> str:
    """A text parameter (None: `default`); InputError for any other kind, or too long a text."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise InputError(f"{name} must be text; got {_kind(value)}")
    if max_chars is not None and len(value) > max_chars:
        raise InputError(f"{name} is too long: {len(value):,} characters; at most {max_chars:,}")
    return value


def whole_number(name: str, value: Any, low: int, high: int, *, default: int | None = None) -> int:
    """A whole number in [low, high] (None: `default`); also 50.0 or "50"."""
    if value is None and default is not None:
        return default
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and len(value) <= 30:
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number != int(number) or not low <= number <= high:
        shown = shorten(repr(value), 40) if isinstance(value, (int, float, str)) else _kind(value)
        raise InputError(f"{name} must be a whole number between {low:,} and {high:,}; got {shown}")
    return int(number)


def flag_param(name: str, value: Any, *, default: bool = False) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InputError(f"{name} must be true or false; got {_kind(value)}")
    return value


def settings_param(value: Any, known: Iterable[str], *, name: str = "config", shown: int = 3) -> dict[str, Any]:
    """A dictionary of settings whose keys are all in `known`. Unknown keys are named, the
    first `shown` of them, and counted: a million of them make one short line."""
    if not isinstance(value, dict):
        raise InputError(f"{name} must be a dictionary of settings (a JSON object); got {_kind(value)}")
    known = set(known)
    unknown = [key for key in value if key not in known]
    if unknown:
        names = ", ".join(shorten(key, 40) for key in itertools.islice(unknown, shown))
        more = f" ... and {len(unknown) - shown:,} more" if len(unknown) > shown else ""
        raise InputError(f"unknown setting{'s' if len(unknown) > 1 else ''}: {names}{more}")
    return dict(value)


def client_host(request: Any) -> str:
    """The address a request came from (gr.Request or None), for per-client limits."""
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    return host if isinstance(host, str) and host else "unknown"


# ====================================================================================
# Uploads
# ====================================================================================
UPLOAD_PATH = "/gradio_api/upload"
MULTIPART_OVERHEAD = 64 * 1024  # form boundaries and part headers around the file itself


@dataclass(frozen=True)
class UploadPolicy:
    """What Gradio's upload route accepts. Gradio itself only caps each file's size
    (launch(max_file_size=)), lets one request carry 1,000 files, and keeps them an hour."""

    max_request_bytes: int  # one upload request, files and form together
    per_client: int = 10  # upload requests per client address per window
    per_client_bytes: int = 200 * 1024 * 1024  # bytes per client address per window
    window_s: float = 60.0
    max_total_bytes: int = 500 * 1024 * 1024  # bytes that uploads hold on disk, all clients together
    max_records: int = 4096  # uploads remembered; beyond, the route is busy

    @classmethod
    def for_limits(cls, max_upload_bytes: int, uploads_per_minute: int) -> "UploadPolicy":
        """The policy for a job server's Limits: checkpoints of up to `max_upload_bytes`,
        `uploads_per_minute` per client address (a class behind one address shares them)."""
        return cls(max_request_bytes=max_upload_bytes + MULTIPART_OVERHEAD, per_client=uploads_per_minute,
                   per_client_bytes=max(4 * max_upload_bytes, 64 * 1024 * 1024), window_s=60.0,
                   max_total_bytes=max(10 * max_upload_bytes, 256 * 1024 * 1024))


class Refusal(NamedTuple):
    status: int
    text: str
    retry_after_s: int = 0


@dataclass
class _Upload:
    client: str
    time: float
    declared: int  # the request's Content-Length
    paths: list[str] | None = None  # the stored files, once Gradio has answered

    def held(self) -> int:
        """Bytes this upload holds on disk: its files that are still there."""
        if self.paths is None:
            return self.declared  # still arriving
        total = 0
        for path in self.paths:
            try:
                total += os.path.getsize(path)
            except OSError:  # deleted: copied by the job server, or by Gradio's cache cleanup
                pass
        return total


def _mb(size: float) -> str:
    return f"{size / 1e6:,.1f} MB"


def _span(seconds: float) -> str:
    if seconds % 60 == 0:
        return "a minute" if seconds == 60 else f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"


class UploadGuard:
    """ASGI middleware in front of Gradio's upload route (POST .../gradio_api/upload).

    Refuses, before reading the body, with a plain-text 411, 413 or 429: a request without
    a Content-Length, a request above the policy's size, a client over its count or bytes
    per window, and any upload while uploads hold too many bytes on disk. It remembers each
    upload's stored files (from Gradio's reply) to know what is still held. Other routes
    pass straight through.
    """

    def __init__(self, app, policy: UploadPolicy):
        self.app = app
        self.policy = policy
        self._uploads: list[_Upload] = []  # oldest first
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope["path"].endswith(UPLOAD_PATH):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown",))[0] or "unknown"
        verdict = self.admit(client, _content_length(scope["headers"]), time.monotonic())
        if isinstance(verdict, Refusal):
            headers = {"Retry-After": str(verdict.retry_after_s)} if verdict.retry_after_s else None
            response = PlainTextResponse(verdict.text, status_code=verdict.status, headers=headers)
            await response(scope, receive, send)
            return
        status, body = [0], bytearray()

        async def noting_send(event):
            if event["type"] == "http.response.start":
                status[0] = event["status"]
            elif event["type"] == "http.response.body" and status[0] == 200 and len(body) < 1_000_000:
                body.extend(event.get("body", b""))
            await send(event)

        try:
            await self.app(scope, receive, noting_send)
        finally:
            self._settle(verdict, bytes(body) if status[0] == 200 else b"")

    def admit(self, client: str, length: int | None, now: float) -> _Upload | Refusal:
        """Record an upload about to be read, or say why not."""
        policy = self.policy
        if length is None:
            return Refusal(411, "an upload needs a Content-Length header")
        if length > policy.max_request_bytes:
            return Refusal(413, f"this upload is {_mb(length)}; this server accepts at most "
                                f"{_mb(policy.max_request_bytes)} at once")
        with self._lock:
            self._forget_old(now)
            recent = [u for u in self._uploads if u.client == client and now - u.time < policy.window_s]
            if recent:
                retry = max(1, math.ceil(policy.window_s - (now - recent[0].time)))
                if len(recent) >= policy.per_client:
                    return Refusal(429, f"too many uploads from your address: at most {policy.per_client} "
                                        f"in {_span(policy.window_s)}; try again in {retry} s", retry)
                sent = sum(u.declared for u in recent)
                if sent + length > policy.per_client_bytes:
                    return Refusal(429, f"your address uploaded {_mb(sent)} in the last {_span(policy.window_s)}; "
                                        f"at most {_mb(policy.per_client_bytes)}; try again in {retry} s", retry)
            held = sum(u.held() for u in self._uploads)
            if held + length > policy.max_total_bytes or len(self._uploads) >= policy.max_records:
                return Refusal(429, f"the server holds too many uploads right now ({_mb(held)} waiting to be "
                                    "read); try again in a few minutes", 60)
            upload = _Upload(client=client, time=now, declared=length)
            self._uploads.append(upload)
            return upload

    def _settle(self, upload: _Upload, reply: bytes) -> None:
        """Note the files Gradio stored for an upload (none if it failed)."""
        try:
            paths = json.loads(reply) if reply else []
        except ValueError:
            paths = []
        upload.paths = [p for p in paths if isinstance(p, str)] if isinstance(paths, list) else []

    def _forget_old(self, now: float) -> None:
        """Forget uploads that left the window and hold nothing any more."""
        self._uploads = [u for u in self._uploads
                         if now - u.time < self.policy.window_s or u.paths is None or u.held() > 0]


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The request's declared body size; None when absent, chunked or malformed."""
    length = None
    for key, value in headers:
        key = key.lower()
        if key == b"transfer-encoding":
            return None
        if key == b"content-length":
            if not value.strip().isdigit() or (length is not None and int(value) != length):
                return None
            length = int(value)
    return length


def upload_middleware(policy: UploadPolicy) -> dict[str, Any]:
    """launch(app_kwargs=...) that puts an UploadGuard in front of Gradio's routes."""
    return {"middleware": [Middleware(UploadGuard, policy=policy)]}


def discard_upload(path: Any, uploads: set[str]) -> bool:
    """Delete an uploaded file once the job server has its own copy, with its folder if
    empty. Only files that came through the upload route (`uploads`: Gradio's record of
    them) are touched, never another file of the cache."""
    if not isinstance(path, str):
        return False
    path = path if path in uploads else os.path.abspath(path)
    if path not in uploads:
        return False
    file = Path(path)
    try:
        file.unlink()
    except OSError:
        return False
    uploads.discard(path)
    if file.parent != Path(gr.utils.get_upload_folder()):  # Gradio keeps each upload in a
        try:  # folder named by its hash; the upload folder itself stays
            file.parent.rmdir()
        except OSError:
            pass
    return True
