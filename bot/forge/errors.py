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
    """403/429 rate limit that could not be waited out within the configured cap.

    `reset_at`: the epoch second GitHub names in `x-ratelimit-reset` when the primary limit is used up
    (`x-ratelimit-remaining: 0`); `wait_s`: seconds to wait from now (`retry-after` of a secondary limit, or
    PyGithub's computed backoff). `until(now)` is when to try again."""

    DEFAULT_WAIT_S = 60.0  # GitHub: without retry-after or a reset time, wait at least a minute

    def __init__(
        self, status: int, message: str, wait_s: float | None = None, reset_at: float | None = None
    ) -> None:
        super().__init__(status, message)
        self.wait_s = wait_s
        self.reset_at = reset_at

    def until(self, now: float) -> float:
        """The epoch second to retry at: the reset (plus a second: GitHub does not say when in that second
        it resets), else now + the wait; never earlier than a second from now."""
        if self.reset_at is not None:
            at = self.reset_at + 1.0
        else:
            at = now + (self.wait_s if self.wait_s is not None else self.DEFAULT_WAIT_S)
        return max(at, now + 1.0)


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


def _header(headers: object, name: str) -> str | None:
    if headers is None or not hasattr(headers, "items"):  # a dict, or urllib3's HTTPHeaderDict
        return None
    for key, value in headers.items():
        if str(key).lower() == name:
            return str(value)
    return None


def rate_limit_timing(exc: GithubException) -> tuple[float | None, float | None]:
    """(wait seconds, reset epoch) of a rate-limit answer: `retry-after` (secondary limits) wins; then
    `x-ratelimit-reset` when `x-ratelimit-remaining` is 0 (primary); then PyGithub's computed wait."""
    headers = getattr(exc, "headers", None)
    retry_after = _header(headers, "retry-after")
    if retry_after and retry_after.strip().isdigit():
        return float(retry_after), None
    remaining, reset = _header(headers, "x-ratelimit-remaining"), _header(headers, "x-ratelimit-reset")
    if remaining is not None and remaining.strip() == "0" and reset and reset.strip().isdigit():
        return None, float(reset)
    wait = getattr(exc, "wait", None)
    return (float(wait) if isinstance(wait, (int, float)) else None), None


def translate(exc: Exception, secrets: Iterable[str] = ()) -> ForgeError:
    """A PyGithub/requests exception as a short, token-free ForgeError (a ForgeError is returned as is)."""
    if isinstance(exc, ForgeError):
        return exc
    if isinstance(exc, GithubException):
        msg = redact(message_of(exc), secrets)[:MAX_MESSAGE]
        status = exc.status or 0
        if is_rate_limit(exc):
            wait, reset_at = rate_limit_timing(exc)
            return RateLimited(status, msg or "rate limited", wait, reset_at)
        if status == 404:
            return NotFound(status, msg)
        if status in (401, 403):
            return PermissionDenied(status, msg)
        if status == 422:
            return Unprocessable(status, msg)
        return ForgeError(status, msg)
    return ForgeError(0, redact(f"{type(exc).__name__}: {exc}", secrets)[:MAX_MESSAGE])
