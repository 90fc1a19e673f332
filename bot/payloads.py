"""Shapes of the webhook payloads the bot reads, checked at the edge before anything is routed or recorded.

GitHub's payloads (the octokit webhook schemas and @octokit/webhooks-examples) are big; the router reads only
a few fields of them. Each of those fields is checked here for type and range, so that a signed but
type-confused body (a string where an object belongs, a number beyond SQLite's 64 bits, a lone surrogate that
UTF-8 cannot encode) is refused with 400 and a message naming the field, never half-processed. Fields the bot
does not read are not checked. Spec notation: a dict is an object whose listed keys are checked ("key?" = may
be absent or null); `Str`, `Int`, `List`, `AnyObject` are the leaves.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any


class PayloadShapeError(ValueError):
    """A payload field of the wrong type or range; `field` is its dotted path."""

    def __init__(self, field: str, problem: str):
        self.field = field
        super().__init__(f"payload field {field or '<root>'} {problem}")


@dataclass(frozen=True)
class Str:
    max_len: int
    pattern: str | None = None

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, str):
            raise PayloadShapeError(where, f"must be a string, got {_kind(value)}")
        if len(value) > self.max_len:
            raise PayloadShapeError(where, f"is longer than {self.max_len} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise PayloadShapeError(where, "is not valid Unicode (lone surrogate)") from None
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise PayloadShapeError(where, f"is not a valid value ({_preview(value)})")


@dataclass(frozen=True)
class Int:
    lo: int = 1
    hi: int = 2**53 - 1  # GitHub's ids and numbers are JavaScript-safe integers; SQLite holds 64 bits

    def check(self, value: Any, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and not math.isfinite(value):
                raise PayloadShapeError(where, "must be an integer, got a non-finite number")
            raise PayloadShapeError(where, f"must be an integer, got {_kind(value)}")
        if not self.lo <= value <= self.hi:
            raise PayloadShapeError(where, f"must be between {self.lo} and {self.hi}")


@dataclass(frozen=True)
class List:
    item: Any
    max_items: int = 10_000

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, list):
            raise PayloadShapeError(where, f"must be a list, got {_kind(value)}")
        if len(value) > self.max_items:
            raise PayloadShapeError(where, f"has more than {self.max_items} items")
        for i, item in enumerate(value):
            check(item, self.item, f"{where}[{i}]")


class AnyObject:
    """An object whose content the bot does not read (only its presence matters)."""

    @staticmethod
    def check(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise PayloadShapeError(where, f"must be an object, got {_kind(value)}")


LOGIN = Str(100, r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?(?:\[bot\])?")
FULL_NAME = Str(201, r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")
ACTION = Str(64, r"[a-z0-9_]+")
SHA = Str(64, r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
REF = Str(255, r"[^\x00-\x20\x7f]+")
ID = Int()
USER = {"login": LOGIN, "type?": Str(32)}
REPOSITORY = {"full_name": FULL_NAME}
INSTALLATION_REF = {"id": ID}
REPO_LIST = List({"full_name": FULL_NAME})

_COMMON = {"action?": ACTION, "installation?": INSTALLATION_REF}

SHAPES: dict[str, dict[str, Any]] = {
    "ping": {**_COMMON, "zen?": Str(1000), "hook_id?": ID, "sender?": USER},
    "issues": {
        **_COMMON,
        "sender": USER,
        "repository": REPOSITORY,
        "issue": {"number": ID, "state?": Str(32)},
        "label?": {"name": Str(256)},
    },
    "issue_comment": {
        **_COMMON,
        "sender": USER,
        "repository": REPOSITORY,
        "issue": {"number": ID, "pull_request?": AnyObject},
        "comment": {"id": ID, "body?": Str(262_144), "user": USER, "performed_via_github_app?": AnyObject},
    },
    "pull_request_review": {
        **_COMMON,
        "sender": USER,
        "repository": REPOSITORY,
        "review": {"id": ID, "state": Str(64), "user?": USER},
        "pull_request": {"number": ID, "head": {"sha": SHA, "ref": REF}, "base": {"sha": SHA}},
    },
    "check_run": {
        **_COMMON,
        "sender": USER,
        "repository": REPOSITORY,
        "check_run": {
            "id": ID,
            "head_sha": SHA,
            "name?": Str(1024),
            "external_id?": Str(1024),
            "pull_requests?": List({"number": ID}, max_items=100),
        },
        "requested_action?": {"identifier?": Str(20)},
    },
    "installation": {
        **_COMMON,
        "sender": USER,
        "installation": {"id": ID, "account?": {"login?": LOGIN}},
        "repositories?": REPO_LIST,
    },
    "installation_repositories": {
        **_COMMON,
        "sender": USER,
        "installation": {"id": ID, "account?": {"login?": LOGIN}},
        "repositories_added?": REPO_LIST,
        "repositories_removed?": REPO_LIST,
    },
}
OTHER_EVENTS = {"action?": ACTION}  # events the bot ignores: only what is recorded (the action) is checked


def check(value: Any, spec: Any, where: str = "") -> None:
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise PayloadShapeError(where, f"must be an object, got {_kind(value)}")
        for key, sub in spec.items():
            optional = key.endswith("?")
            name = key.rstrip("?")
            path = f"{where}.{name}" if where else name
            if value.get(name) is None:
                if optional:
                    continue
                raise PayloadShapeError(path, "is missing")
            check(value[name], sub, path)
        return
    spec.check(value, where)


def validate_payload(event: str, payload: Any) -> None:
    """Raise PayloadShapeError when a field the bot reads for `event` has the wrong type or range."""
    if not isinstance(payload, dict):
        raise PayloadShapeError("", f"must be a JSON object, got {_kind(payload)}")
    check(payload, SHAPES.get(event, OTHER_EVENTS))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _preview(value: str) -> str:
    return ascii(value[:40]) + ("..." if len(value) > 40 else "")
