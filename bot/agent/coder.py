"""The coding agent: a tool-use loop in a sandboxed worktree, a self-review, one commit per candidate."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.agent.llm import LLM, BudgetExceeded, LLMError, Usage, blocks_to_params
from bot.agent.tools import TOOL_DEFINITIONS, ToolError, Workspace, dispatch
from bot.gitutil import bot_identity
from bot.gitutil import output as git
from bot.text import fence, sanitize

STATUSES = ("committed", "no_change", "failed", "budget_exceeded", "rejected")
REVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approve": {"type": "boolean"},
        "problems": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["approve", "problems"],
    "additionalProperties": False,
}
MAX_DIFF_CHARS = 60_000
MAX_TOOL_RESULT_CHARS = 30_000
HYPOTHESIS_TRAILER = "Autoresearch-Hypothesis"


@dataclass
class Limits:
    max_turns: int = 40
    max_tokens: int = 400_000
    max_seconds: float = 1800.0
    max_output_tokens: int = 8192


@dataclass
class AgentResult:
    status: str
    commit_sha: str | None
    message: str
    transcript_summary: str
    refusals: list[dict[str, str]]
    usage: dict[str, Any]
    review: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "commit_sha": self.commit_sha,
            "message": self.message,
            "transcript_summary": self.transcript_summary,
            "refusals": self.refusals,
            "usage": self.usage,
            "review": self.review,
        }


class _Stop(Exception):
    """Ends the loop early with a status (budget, time, turns, API failure)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def citations_of(hypothesis: dict[str, Any], sources: Iterable[dict[str, Any]] = ()) -> list[dict[str, str]]:
    """Citations as [{title, url}]. Hypothesis citations are dossier source ids (resolved through
    `sources`, the dossier's source list), URLs, or {title, url} dicts."""
    by_id = {str(src.get("id")): src for src in sources if isinstance(src, dict)}
    out = []
    for c in hypothesis.get("citations") or []:
        if isinstance(c, dict):
            out.append(
                {"title": str(c.get("title") or c.get("url") or "source"), "url": str(c.get("url") or "")}
            )
        elif str(c) in by_id:
            src = by_id[str(c)]
            out.append({"title": str(src.get("title") or c), "url": str(src.get("url") or "")})
        else:
            out.append({"title": str(c), "url": str(c) if str(c).startswith("http") else ""})
    return out


def commit_message(hypothesis: dict[str, Any], summary: str, sources: Iterable[dict[str, Any]] = ()) -> str:
    """Subject, agent summary, a Sources list (title + URL) and the hypothesis trailer."""
    title = _one_line(sanitize(str(hypothesis.get("title") or "autoresearch candidate")))[:72]
    body = sanitize(summary).strip()[:4000]
    lines = [title, "", body, "", "Sources:"] if body else [title, "", "Sources:"]
    cites = citations_of(hypothesis, sources)
    lines += [f"- {_one_line(sanitize(c['title']))} {_one_line(sanitize(c['url']))}".rstrip() for c in cites]
    if not cites:
        lines.append("- (none given)")
    lines += ["", f"{HYPOTHESIS_TRAILER}: {_one_line(str(hypothesis.get('id', 'unknown')))}"]
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass
class _Session:
    """State of one implement() call."""

    workspace: Workspace
    llm: LLM
    limits: Limits
    clock: Callable[[], float]
    started: float
    usage_start: Usage
    system: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    turns: int = 0
    log: list[str] = field(default_factory=list)

    def spent(self) -> Usage:
        return self.llm.usage.minus(self.usage_start)

    def check_limits(self) -> None:
        if self.turns >= self.limits.max_turns:
            raise _Stop("budget_exceeded", f"turn limit reached ({self.limits.max_turns} turns)")
        if self.clock() - self.started > self.limits.max_seconds:
            raise _Stop("budget_exceeded", f"time limit reached ({self.limits.max_seconds:g} s)")
        if self.spent().total_tokens >= self.limits.max_tokens:
            raise _Stop("budget_exceeded", f"token limit reached ({self.spent().total_tokens} tokens)")

    def add_user_text(self, text: str) -> None:
        """Append text to the conversation, joining the last user turn if there is one (roles alternate)."""
        last = self.messages[-1] if self.messages else None
        if last and last["role"] == "user" and isinstance(last["content"], list):
            last["content"].append({"type": "text", "text": text})
        else:
            self.messages.append({"role": "user", "content": text})

    def call(self, purpose: str) -> Any:
        self.check_limits()
        self.turns += 1
        try:
            return self.llm.chat(
                self.system,
                self.messages,
                TOOL_DEFINITIONS,
                max_tokens=self.limits.max_output_tokens,
                token_cap=self.limits.max_tokens - self.spent().total_tokens,
                purpose=purpose,
            )
        except BudgetExceeded as e:
            raise _Stop("budget_exceeded", f"token budget: {e}") from e
        except LLMError as e:
            raise _Stop("failed", str(e)) from e


def implement(
    hypothesis: dict[str, Any],
    issue_text: str,
    workspace: Workspace,
    llm: LLM,
    limits: Limits | None = None,
    *,
    comments: Iterable[str] = (),
    conventions: str = "",
    sources: Iterable[dict[str, Any]] = (),
    clock: Callable[[], float] = time.monotonic,
) -> AgentResult:
    """Implement `hypothesis` in `workspace` (a throwaway worktree); commit it if the review approves.

    `sources` is the dossier's source list, used to turn citation ids into titles and URLs."""
    limits = limits or Limits()
    sources = list(sources)
    root = workspace.root
    base_sha = git(root, "rev-parse", "HEAD").strip()
    s = _Session(
        workspace,
        llm,
        limits,
        clock,
        clock(),
        llm.usage.copy(),
        llm.render(
            "agent_system",
            {"allowed": ", ".join(workspace.allowed), "protected": ", ".join(workspace.protected)},
        ),
    )
    s.messages.append(
        {
            "role": "user",
            "content": _task_prompt(llm, hypothesis, issue_text, comments, conventions, workspace, sources),
        }
    )
    review: dict[str, Any] | None = None
    try:
        summary = _loop(s)
        if not _changed(workspace):
            return _result(s, "no_change", None, f"agent made no change: {summary}", base_sha)
        review = _review(s, hypothesis, conventions, base_sha)
        if not review["approve"]:
            s.add_user_text(
                llm.render(
                    "agent_fix", {"problems": fence("reviewer findings", _bullets(review["problems"]))}
                )
            )
            summary = _loop(s) or summary
            if not _changed(workspace):
                return _result(s, "no_change", None, "fix round reverted every change", base_sha, review)
            review = _review(s, hypothesis, conventions, base_sha)
            if not review["approve"]:
                return _result(
                    s,
                    "rejected",
                    None,
                    "rejected by review: " + "; ".join(review["problems"])[:2000],
                    base_sha,
                    review,
                )
        sha = _commit(workspace, commit_message(hypothesis, summary, sources))
        s.log.append(f"committed {sha[:12]}")
        return _result(s, "committed", sha, summary, base_sha, review, keep=True)
    except _Stop as stop:
        return _result(s, stop.status, None, str(stop), base_sha, review)
    except (RuntimeError, OSError) as e:  # git failures: report, discard, lose nothing upstream
        return _result(s, "failed", None, f"{type(e).__name__}: {e}", base_sha, review)


def _task_prompt(
    llm: LLM,
    hypothesis: dict[str, Any],
    issue_text: str,
    comments: Iterable[str],
    conventions: str,
    ws: Workspace,
    sources: list[dict[str, Any]],
) -> str:
    cites = "\n".join(f"- {c['title']} {c['url']}" for c in citations_of(hypothesis, sources)) or "(none)"
    hyp = {k: v for k, v in hypothesis.items() if k not in ("citations", "sources")}
    comment_blocks = "\n\n".join(fence(f"issue comment {i}", c) for i, c in enumerate(comments, 1))
    return llm.render(
        "agent_task",
        {
            "hypothesis": fence(
                "hypothesis from the research dossier", json.dumps(hyp, indent=2, default=str)
            ),
            "citations": fence("hypothesis sources", cites),
            "issue": fence("issue text", issue_text),
            "comments": comment_blocks or "(no comments)",
            "conventions": fence("project conventions", conventions)
            if conventions.strip()
            else "(none given)",
            "allowed": ", ".join(ws.allowed),
            "protected": ", ".join(ws.protected),
            "build": "; ".join(ws.build_commands) or "(none)",
            "check": "; ".join(ws.check_commands) or "(none)",
        },
    )


def _loop(s: _Session) -> str:
    """Run tool turns until the model calls finish; returns its summary."""
    nudged = False
    while True:
        msg = s.call("coder")
        s.messages.append(
            {
                "role": "assistant",
                "content": blocks_to_params(msg.content) or [{"type": "text", "text": "(no output)"}],
            }
        )
        tool_uses = [b for b in msg.content if b.type == "tool_use"]
        if not tool_uses:
            if msg.stop_reason == "max_tokens" or nudged:
                raise _Stop("failed", f"model stopped without calling finish (stop_reason={msg.stop_reason})")
            nudged = True
            s.messages.append(
                {
                    "role": "user",
                    "content": "Continue with the tools; call finish(summary) when the change is complete.",
                }
            )
            continue
        results, summary = [], None
        for block in tool_uses:
            if block.name == "finish":
                summary = str((block.input or {}).get("summary", "")).strip()
                results.append(_tool_result(block.id, "finished", False))
                s.log.append(f"turn {s.turns}: finish")
                continue
            results.append(_run_tool(s, block))
        s.messages.append({"role": "user", "content": results})
        if summary is not None:
            return summary


def _run_tool(s: _Session, block: Any) -> dict[str, Any]:
    args = block.input if isinstance(block.input, dict) else {}
    target = args.get("path") or args.get("glob") or args.get("regex") or ""
    try:
        out = dispatch(s.workspace, block.name, args)
        s.log.append(f"turn {s.turns}: {block.name} {target}".rstrip())
        if block.name in ("read_file", "search"):
            out = fence(f"repository content from {block.name}", out)
        return _tool_result(block.id, _clip(out), False)
    except ToolError as e:
        s.log.append(f"turn {s.turns}: {block.name} {target} -> error: {e}".rstrip())
        return _tool_result(block.id, f"error: {e}", True)


def _clip(out: str, limit: int = MAX_TOOL_RESULT_CHARS) -> str:
    """Keep the head and the tail of an over-long tool output."""
    if len(out) <= limit:
        return out
    half = limit // 2
    return f"{out[:half]}\n... ({len(out) - limit} characters omitted) ...\n{out[-half:]}"


def _tool_result(tool_use_id: str, content: str, is_error: bool) -> dict[str, Any]:
    return {
        "type": "tool_result",
        "tool_use_id": tool_use_id,
        "content": content or "(empty)",
        "is_error": is_error,
    }


def _changed(ws: Workspace) -> bool:
    return bool(ws.touched) and bool(git(ws.root, "status", "--porcelain", "--", *sorted(ws.touched)).strip())


def _diff(ws: Workspace, base_sha: str) -> str:
    """Diff of everything the agent touched, new files included."""
    paths = sorted(ws.touched)
    git(ws.root, "add", "--intent-to-add", "--", *paths)
    diff = git(ws.root, "diff", base_sha, "--", *paths)
    return diff if len(diff) <= MAX_DIFF_CHARS else diff[:MAX_DIFF_CHARS] + "\n... (diff truncated)"


def _review(s: _Session, hypothesis: dict[str, Any], conventions: str, base_sha: str) -> dict[str, Any]:
    s.check_limits()
    s.turns += 1
    variables = {
        "hypothesis": fence("hypothesis", json.dumps(hypothesis, indent=2, default=str)),
        "conventions": fence("project conventions", conventions) if conventions.strip() else "(none given)",
        "diff": fence("candidate diff", _diff(s.workspace, base_sha)),
    }
    try:
        verdict = s.llm.structured(
            "review",
            variables,
            REVIEW_SCHEMA,
            system=s.llm.render("review_system", {}),
            token_cap=s.limits.max_tokens - s.spent().total_tokens,
            purpose="review",
        )
    except BudgetExceeded as e:
        raise _Stop("budget_exceeded", f"token budget during review: {e}") from e
    except LLMError as e:
        raise _Stop("failed", f"review failed: {e}") from e
    s.log.append(
        f"review: {'approved' if verdict['approve'] else 'rejected'} ({len(verdict['problems'])} problems)"
    )
    return verdict


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- {i}" for i in items) or "- (no details given)"


def _commit(ws: Workspace, message: str) -> str:
    paths = sorted(ws.touched)
    git(ws.root, "add", "--", *paths)
    _git_commit(ws.root, message, paths)
    return git(ws.root, "rev-parse", "HEAD").strip()


def _git_commit(root: Path, message: str, paths: list[str]) -> None:
    name, email = bot_identity()
    git(
        root,
        "-c",
        f"user.name={name}",
        "-c",
        f"user.email={email}",
        "commit",
        "--no-verify",
        "--no-gpg-sign",
        "-q",
        "-F",
        "-",
        "--",
        *paths,
        input=message,
    )


def _discard(ws: Workspace, base_sha: str) -> None:
    """Put the throwaway worktree back to the base commit (tracked and untracked changes)."""
    git(ws.root, "reset", "-q", "--hard", base_sha)
    git(ws.root, "clean", "-q", "-fd")


def _result(
    s: _Session,
    status: str,
    sha: str | None,
    message: str,
    base_sha: str,
    review: dict[str, Any] | None = None,
    keep: bool = False,
) -> AgentResult:
    if not keep:
        _discard(s.workspace, base_sha)
    return AgentResult(
        status=status,
        commit_sha=sha,
        message=message,
        transcript_summary="\n".join(s.log),
        refusals=s.workspace.refusal_dicts(),
        usage=s.spent().to_dict(),
        review=review,
    )
