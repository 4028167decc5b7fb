"""The job server's public names, for the page and for scripts (the code lives in ganapp.server)."""

from __future__ import annotations

import secrets
from typing import Any

from .config import ConfigError  # noqa: F401  (the page catches it beside JobError)
from .server import (ACTIVE_STATES, DISPLAY_ROWS_CAP, ENDED_STATES, LOSS_COLUMNS, JobError,  # noqa: F401
                     JobManager, LimitError, Limits, Run, RunNotFound, SettingsError, available_cores)
from .server.manager import STOP_GRACE_S, VIEW_JOBS_AT_ONCE  # noqa: F401
from .server.tokens import check_token_format


def check_owner(owner: Any) -> str:
    """The token's form only (a page checks this before asking the server); the server also
    checks that it issued the token (JobManager.owner_key)."""
    return check_token_format(owner)


def new_owner_token() -> str:
    """A well-formed token that no server issued: JobManager refuses it. Real tokens come from
    JobManager.issue_token (the page's /new_token)."""
    return f"{secrets.token_urlsafe(18)}.{secrets.token_urlsafe(16)[:22]}"
