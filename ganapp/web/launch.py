"""Starting the page: launch() settings and main(), for app.py, the tests and scripts."""

from __future__ import annotations

import signal
import sys
from typing import Any

from ganapp.jobs import JobManager, SettingsError

from . import live, safety
from .page import build_demo
from .style import HEAD

SESSIONS_KEPT = 1000  # Gradio sessions whose state the server keeps (launch's state_session_capacity)


def launch_options(manager: JobManager, *, uploads: safety.UploadPolicy | None = None,
                   demo=None) -> dict[str, Any]:
    """demo.launch() settings the page needs, for main() and for the tests' server.

    Gradio's upload route takes files from anyone, without a visitor token: each file is
    capped at the server's checkpoint size (max_file_size, which the page also checks
    before sending; gr.File takes no size of its own), and an UploadGuard in front of the
    route bounds each request, each client address's uploads per minute and the bytes
    uploads hold (`uploads`, by default from the job server's Limits)."""
    limits = manager.limits
    policy = uploads or safety.UploadPolicy.for_limits(limits.max_upload_bytes, limits.max_uploads_per_minute)
    # Gradio keeps each session's state (every API call is a session of its own) until
    # state_session_capacity sessions exist: 10,000 by default, about 0.7 GB here (measured by
    # scripts/soak.py). A class is 30 pages; 1,000 bounds the server's memory to about 0.1 GB.
    # The live panes' own route (ganapp.web.live), beside Gradio's: it answers the page's
    # twice-a-second questions for a fraction of a Gradio event's cost.
    # `demo`: the page this server serves (build_demo's); without it, the page last built
    # over `manager` answers, which is the same page unless one process builds several.
    page = getattr(demo, "ganapp", None)
    app_kwargs = dict(safety.upload_middleware(policy), routes=[live.LiveRoute(manager, page).route()])
    return dict(head=HEAD + live.LIVE_JS, allowed_paths=[str(manager.runs_dir)], max_file_size=limits.max_upload_bytes,
                footer_links=["api", "settings"], run_history=False, app_kwargs=app_kwargs,
                state_session_capacity=SESSIONS_KEPT)


def main() -> None:
    try:
        manager = JobManager()  # reads the GANAPP_* limits: a bad value stops here, in a sentence
    except SettingsError as error:
        print(f"ganapp: {error}", file=sys.stderr)
        sys.exit(2)
    demo = build_demo(manager)

    def on_sigterm(*_):  # atexit (and so manager.shutdown) runs on sys.exit, not on a bare SIGTERM
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    demo.launch(**launch_options(manager, demo=demo))  # GRADIO_SERVER_NAME, GRADIO_SERVER_PORT etc. apply
