"""Webhook signature verification and routing of GitHub events to bot commands.

Routing is pure: payload in, `Command` (or `Ignored`) out. Nothing here talks to GitHub; the permission check
and every side effect happen later in the worker, so the webhook handler answers in milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import commands
from .payloads import PayloadShapeError, validate_payload
from .text import markdown_lines, strip_comments, strip_hidden_html


class PayloadError(ValueError):
    """A webhook payload that is not shaped like GitHub's (names the missing/invalid field)."""


@dataclass(frozen=True)
class Command:
    kind: str  # a name in bot/commands.py REGISTRY (start, stop, rerun, bench, ...) or installation
    repo: str
    issue_number: int
    user: str
    is_pull: bool = False
    comment_id: int | None = None
    args: dict[str, Any] = field(default_factory=dict)
    key: str | None = None  # what the command is (comment/review id + action): a replayed body is one command
    installation: int | None = None  # the payload's installation.id (the worker compares it with the repo's)


@dataclass(frozen=True)
class Ignored:
    reason: str


def _req(payload: dict, *path: str) -> Any:
    cur: Any = payload
    for i, key in enumerate(path):
        if not isinstance(cur, dict) or key not in cur or cur[key] is None:
            raise PayloadError(f"payload field {'.'.join(path[: i + 1])} is missing")
        cur = cur[key]
    return cur


def _repo(payload: dict) -> str:
    name = _req(payload, "repository", "full_name")
    if not isinstance(name, str) or name.count("/") != 1:
        raise PayloadError("payload field repository.full_name is not owner/name")
    return name


def _is_bot(user: dict | None) -> bool:
    return bool(user) and (user.get("type") == "Bot" or str(user.get("login", "")).endswith("[bot]"))


_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_RAW_HTML_RE = re.compile(r"^ {0,3}<(pre|script|style|textarea)(?=[\s>]|$)", re.IGNORECASE)


def prose_lines(body: str) -> list[str]:
    """The lines of a markdown comment a reader sees as plain prose, stripped of spaces and tabs.

    Lines end where GitHub's renderer ends them (\n, \r\n, \r; never at U+2028, NEL, VT or FF). Left out:
    HTML comments (`<!-- ... -->`, also unclosed), fenced code blocks (``` and ~~~, also unclosed), raw
    <pre>/<script>/<style>/<textarea> blocks, lines indented by 4 or more columns (indented code, or text
    nested in something else), block quotes and their lazy continuation lines, and the content of HTML a
    reader does not see (`<details>`, `hidden` elements, ...: `text.strip_hidden_html`). Inline code and
    list items stay in (a command must start the line, so they never match)."""
    text = strip_comments(body or "")
    out: list[str] = []
    fence: tuple[str, int] | None = None  # (fence char, length) of the open fenced block
    raw_tag: str | None = None
    in_quote = False
    for line in markdown_lines(text):
        if fence is not None:
            m = _FENCE_RE.match(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= fence[1] and not m.group(2).strip():
                fence = None
            continue
        if raw_tag is not None:
            if f"</{raw_tag}" in line.lower():
                raw_tag = None
            continue
        if not line.strip(" \t"):
            in_quote = False
            continue
        expanded = line.expandtabs(4)
        if len(expanded) - len(expanded.lstrip(" ")) >= 4:
            continue
        m = _FENCE_RE.match(expanded)
        if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
            fence = (m.group(1)[0], len(m.group(1)))
            in_quote = False
            continue
        m = _RAW_HTML_RE.match(expanded)
        if m:
            tag = m.group(1).lower()
            raw_tag = None if f"</{tag}" in expanded.lower() else tag
            continue
        stripped = expanded.strip(" \t")
        if stripped.startswith(">"):
            in_quote = True
            continue
        if in_quote:  # a lazy continuation line belongs to the quote above it
            continue
        out.append(stripped)
    visible = markdown_lines(strip_hidden_html("\n".join(out)))
    return [line.strip(" \t") for line in visible if line.strip(" \t")]


def parse_slash_command(body: str, prefix: str = "/autoresearch") -> tuple[str, list[str]] | None:
    """First prose line starting with the prefix -> (command, args). Unknown words give ("help", [word]).

    Only prose counts: a command inside code (fenced, ~~~, indented, inline), a quote or an HTML comment is
    text about a command, not a command (see `prose_lines`)."""
    for line in prose_lines(body):
        if line == prefix or line.startswith((prefix + " ", prefix + "\t")):
            words = line[len(prefix) :].split()
            if not words:
                return "help", []
            cmd, args = words[0].lower(), words[1:]
            if cmd not in commands.slash_names():
                return "help", [cmd]
            return cmd, args
    return None


def route(
    event: str, payload: dict, *, trigger_label: str, prefix: str = "/autoresearch"
) -> Command | Ignored:
    """Map one webhook delivery to what the bot should do; PayloadError when a field it reads is malformed."""
    try:
        validate_payload(event, payload)
    except PayloadShapeError as exc:
        raise PayloadError(str(exc)) from None
    action = payload.get("action")
    installation = (payload.get("installation") or {}).get("id")
    if event == "ping":
        return Ignored("ping")
    if event in ("installation", "installation_repositories"):
        inst = _req(payload, "installation")
        repos = [
            r.get("full_name")
            for r in (payload.get("repositories") or payload.get("repositories_added") or [])
        ]
        return Command(
            "installation",
            repo="",
            issue_number=0,
            user=_req(payload, "sender", "login"),
            args={
                "installation_id": _req(inst, "id"),
                "action": action,
                "account": (inst.get("account") or {}).get("login"),
                "repositories": repos,
            },
        )
    if event == "issues":
        issue = _req(payload, "issue")
        sender = _req(payload, "sender")
        if _is_bot(sender):
            return Ignored("event caused by a bot")
        repo, number, user = _repo(payload), int(_req(issue, "number")), _req(sender, "login")
        if action in ("labeled", "unlabeled"):
            label = _req(payload, "label", "name")
            if label != trigger_label:
                return Ignored(f"label {label!r} is not the trigger label")
            if action == "labeled" and issue.get("state") == "closed":
                # a label on a closed issue starts nothing (the worker asks GitHub again before a start)
                return Ignored("the issue is closed: a label on a closed issue starts nothing")
            kind = "start" if action == "labeled" else "stop"
            args: dict[str, Any] = {"reason": f"label {action}"}
            if action == "unlabeled":
                args["quiet"] = True  # nothing running is not worth a comment
            return Command(kind, repo, number, user, args=args, installation=installation)
        if action == "closed":
            return Command(
                "stop",
                repo,
                number,
                user,
                args={"reason": "issue closed", "quiet": True},
                installation=installation,
            )
        return Ignored(f"issues.{action} is not handled")
    if event == "issue_comment":
        if action != "created":
            return Ignored(f"issue_comment.{action} is not handled")
        comment = _req(payload, "comment")
        if _is_bot(comment.get("user")) or comment.get("performed_via_github_app"):
            return Ignored("comment written by a bot")
        parsed = parse_slash_command(str(_req(comment, "body")), prefix)
        if parsed is None:
            return Ignored("no slash command")
        cmd, words = parsed
        issue = _req(payload, "issue")
        comment_id = int(_req(comment, "id"))
        common = {
            "repo": _repo(payload),
            "issue_number": int(_req(issue, "number")),
            "user": _req(comment, "user", "login"),
            "is_pull": bool(issue.get("pull_request")),
            "comment_id": comment_id,
            "key": f"issue_comment:{comment_id}:{action}",
            "installation": installation,
        }
        try:
            args = commands.REGISTRY[cmd].parse(words)
        except commands.UsageError as e:
            return Command("help", args={"error": str(e)}, **common)
        return Command(cmd, args=args, **common)
    if event == "pull_request_review":
        if action != "submitted":
            return Ignored(f"pull_request_review.{action} is not handled")
        review = _req(payload, "review")
        if str(review.get("state", "")).lower() != "approved":
            return Ignored("review is not an approval")
        pr = _req(payload, "pull_request")
        return Command(
            "approved",
            _repo(payload),
            int(_req(pr, "number")),
            _req(review, "user", "login"),
            is_pull=True,
            args={
                "head_sha": _req(pr, "head", "sha"),
                "base_sha": _req(pr, "base", "sha"),
                "head_ref": _req(pr, "head", "ref"),
            },
            key=f"pull_request_review:{int(_req(review, 'id'))}:{action}",
            installation=installation,
        )
    if event == "check_run":
        return _check_run(payload, action, installation)
    return Ignored(f"event {event!r} is not handled")


# the events the bot acts on: deploy/app-manifest.json subscribes to exactly these (tests/test_doctor.py);
# ping, installation and installation_repositories reach every App without a subscription
SUBSCRIBED_EVENTS = ("issues", "issue_comment", "pull_request_review", "check_run")


def _check_run(payload: dict, action: Any, installation: Any) -> Command | Ignored:
    """GitHub's Re-run button on one of the bot's check runs (`rerequested`): measure that commit again.
    `requested_action` is not handled: the bot's check runs offer no actions."""
    if action != "rerequested":
        return Ignored(f"check_run.{action} is not handled")
    from .checkruns import parse_external_id

    check = _req(payload, "check_run")
    origin = parse_external_id(check.get("external_id"))
    if origin is None:
        return Ignored("check run not created by this bot")
    run_id, issue_number, kind = origin
    sender = _req(payload, "sender")
    if _is_bot(sender):
        return Ignored("event caused by a bot")
    pulls = [int(p["number"]) for p in check.get("pull_requests") or [] if isinstance(p, dict)]
    check_id = int(_req(check, "id"))
    return Command(
        "rerequest",
        _repo(payload),
        issue_number,
        _req(sender, "login"),
        args={
            "run_id": run_id,
            "check_run_id": check_id,
            "head_sha": _req(check, "head_sha"),
            "pulls": pulls,
        },
        # one Re-run click is one command, whatever the redeliveries
        key=f"check_run:{check_id}:{action}",
        installation=installation,
    )
