"""Errors of GitHub calls, their translation from PyGithub's exceptions, and token redaction."""

from __future__ import annotations

import re
from collections.abc import Iterable

from github import GithubException
from github.GithubException import RateLimitExceededExceedsMaxWait, RateLimitExceededException
from github.Requester import Requester

MAX_MESSAGE = 300  # characters of a server's message kept in a ForgeError


class ForgeError(Exception):
    """A GitHub call failed. `status` is the HTTP status (0 when no response came back)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"{status}: {message}" if status else message)


class NotFound(ForgeError):
    """404: the repository, issue, ref or file does not exist (or is invisible to the bot)."""


class PermissionDenied(ForgeError):
    """401/403: bad credentials or missing permission."""


class RateLimited(ForgeError):
    """403/429 rate limit that could not be waited out within the configured cap."""

    def __init__(self, status: int, message: str, wait_s: float | None = None) -> None:
        super().__init__(status, message)
        self.wait_s = wait_s


class Unprocessable(ForgeError):
    """422: GitHub rejected the request (validation failed, already exists, ...)."""


# --------------------------------------------------------------------------- redaction

_TOKEN_PATTERNS = [
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9_]{16,}|github_pat_[A-Za-z0-9_]{20,})"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWT
    re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+(?=@)"),  # userinfo in URLs
    re.compile(r"(?i)(?<=authorization: )(?:token|bearer|basic) \S+"),
]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask tokens in `text`: the given secrets, GitHub token shapes, JWTs and URL credentials."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub("***", text)
    return text


# --------------------------------------------------------------------------- translation


def message_of(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, dict):
        msg = str(data.get("message") or "")
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            details = [e.get("message") or e.get("code") if isinstance(e, dict) else str(e) for e in errors]
            msg = f"{msg} ({'; '.join(str(d) for d in details if d)})"
        return msg or f"HTTP {exc.status}"
    return str(data or f"HTTP {exc.status}")


def is_rate_limit(exc: GithubException) -> bool:
    if isinstance(exc, (RateLimitExceededException, RateLimitExceededExceedsMaxWait)):
        return True
    if exc.status == 429:
        return True
    return exc.status == 403 and Requester.isRateLimitError(message_of(exc))


def translate(exc: Exception, secrets: Iterable[str] = ()) -> ForgeError:
    """A PyGithub/requests exception as a short, token-free ForgeError (a ForgeError is returned as is)."""
    if isinstance(exc, ForgeError):
        return exc
    if isinstance(exc, GithubException):
        msg = redact(message_of(exc), secrets)[:MAX_MESSAGE]
        status = exc.status or 0
        if is_rate_limit(exc):
            wait = getattr(exc, "wait", None)
            return RateLimited(status, msg or "rate limited", wait)
        if status == 404:
            return NotFound(status, msg)
        if status in (401, 403):
            return PermissionDenied(status, msg)
        if status == 422:
            return Unprocessable(status, msg)
        return ForgeError(status, msg)
    return ForgeError(0, redact(f"{type(exc).__name__}: {exc}", secrets)[:MAX_MESSAGE])
