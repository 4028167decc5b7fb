"""Visitor tokens: issued by this server only, so that nobody can make up an owner.

A token is `<random>.<tag>`: 18 random bytes and an HMAC of them under the server's
secret. Only tokens the server issued pass `TokenIssuer.owner_key`, so filling the
queue takes tokens from /new_token, which is rate-limited per client address. The
secret lives in the runs folder (mode 0600) when that folder outlives the server, so a
visitor's token still finds their runs after a restart. What the server stores and
names folders by is `owner_key(token)`, a hash, never the token itself.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from .limits import JobError, LimitError

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{24}\.[A-Za-z0-9_-]{22}")
MALFORMED = "missing or malformed visitor token: reload the page, or call /new_token for a script"


def check_token_format(token: Any) -> str:
    if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token):
        raise JobError(MALFORMED, key="malformed_token")
    return token


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


class TokenIssuer:
    """Issues and checks visitor tokens; counts issues per client address in a sliding minute."""

    def __init__(self, *, secret_file: Path | None = None, per_minute: int = 120):
        self._secret = self._load_secret(secret_file) if secret_file is not None else secrets.token_bytes(32)
        self.per_minute = per_minute
        self._issued: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _load_secret(path: Path) -> bytes:
        try:
            secret = path.read_bytes()
            if len(secret) == 32:
                return secret
        except OSError:
            pass
        secret = secrets.token_bytes(32)
        temporary = path.with_name(path.name + f".{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(secret)
        os.replace(temporary, path)
        return secret

    def _tag(self, body: str) -> str:
        digest = hmac.new(self._secret, body.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def issue(self, client: str = "") -> str:
        """A new token for `client` (an address); LimitError when that client asks too often."""
        now = time.monotonic()
        with self._lock:
            recent = self._issued.setdefault(str(client)[:100], collections.deque())
            while recent and now - recent[0] > 60:
                recent.popleft()
            if len(recent) >= self.per_minute:
                raise LimitError(f"too many new visitors from your address ({self.per_minute} a minute); "
                                 "wait a minute, or keep using the token you have", key="tokens_per_minute",
                                 most=str(self.per_minute))
            recent.append(now)
            if len(self._issued) > 10_000:  # forget quiet addresses
                for key in [k for k, v in self._issued.items() if not v or now - v[-1] > 60]:
                    del self._issued[key]
        body = secrets.token_urlsafe(18)
        return f"{body}.{self._tag(body)}"

    def owner_key(self, token: Any) -> str:
        """The stored name of a token this server issued; JobError for any other."""
        body, _, tag = check_token_format(token).partition(".")
        if not hmac.compare_digest(tag, self._tag(body)):
            raise JobError("this visitor token was not issued by this server: reload the page, "
                           "or call /new_token for a script", key="foreign_token")
        return _hash(token)
