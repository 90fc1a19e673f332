"""Bot commands as specs: `REGISTRY` is the one list of what the bot can be asked to do.

Each `CommandSpec` names the command and carries its `parse` (slash-command words -> args, `UsageError` with
the message the user sees), its `handle` (worker, repo, number, user, args) -> `CommandResult`, its line in
the help text, its word in the status comment's footer and who may run it. From the registry come the slash
command routing (bot/events.py), the worker's dispatch (bot/worker.py), the help text, the refusal sentence
and the report footer (bot/report.py). Kinds without `parse` (start: the trigger label; approved: an approving
review) are routed from their webhook events but dispatched and refused the same way.

Adding a slash command: a spec (and its handler) plus its line in `REGISTRY`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .model import MAX_ROUNDS, Phase

BRANCH_RE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,38}:)?[A-Za-z0-9._/-]{1,200}$")
FOOTER_PREFIX = "/autoresearch"  # the footer of status comments shows the default prefix


@dataclass
class CommandResult:
    state: str  # done | refused | failed | ignored
    detail: str
    run_id: int | None = None


class UsageError(ValueError):
    """A slash command with words its parser does not accept; the message is posted with the help text."""


Handler = Callable[[Any, str, int, str, dict], CommandResult]  # (worker, repo, number, user, args)


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handle: Handler
    parse: Callable[[list[str]], dict[str, Any]] | None = None  # None: not a slash command
    help: str | None = None  # its part of the help text; `{p}` is the command prefix
    footer: str | None = None  # its word in the status comment's footer (None: not listed)
    rounds: bool = False  # takes `rounds=N` (named in the help text)
    needs_write: bool = True  # only people with write access may run it (else refused, once per issue)
    refusal: str | None = None  # what a refused stranger is told; None: "Only people with write access ..."
    refused: str = "nothing was started"  # the default refusal's ending


# -------------------------------------------------------------------------------------------------- parsers


def take_rounds(words: list[str], args: dict[str, Any]) -> list[str]:
    """Move a `rounds=N` word (more interleaved rounds for a noisy machine) into args; the rest stays."""
    rest = []
    for w in words:
        if w.lower().startswith("rounds="):
            value = w.split("=", 1)[1]
            if not value.isdigit() or not 2 <= int(value) <= MAX_ROUNDS:
                raise UsageError(f"rounds must be a whole number from 2 to {MAX_ROUNDS}, got {value!r}")
            args["rounds"] = int(value)
        else:
            rest.append(w)
    return rest


def parse_plain(words: list[str]) -> dict[str, Any]:
    """No arguments; words after the command are kept as `extra` (and ignored)."""
    return {"extra": words} if words else {}


def parse_rounds(words: list[str]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    words = take_rounds(words, args)
    return {**args, **parse_plain(words)}


def parse_bench(words: list[str]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    words = take_rounds(words, args)
    if len(words) != 1 or not BRANCH_RE.match(words[0]) or ".." in words[0]:
        raise UsageError("usage: /autoresearch bench <branch> [rounds=N] (or owner:branch for a fork)")
    args["branch"] = words[0]
    return args


def parse_help(words: list[str]) -> dict[str, Any]:
    return {"error": f"unknown command {words[0]!r}"} if words else {}


# ------------------------------------------------------------------------------------------------- handlers


def _rounds(args: dict) -> dict:
    """The `rounds=N` a slash command asked for, as run params (the benchmark stage applies it)."""
    return {"rounds": int(args["rounds"])} if args.get("rounds") else {}


def _closed(worker: Any, repo: str, number: int) -> bool:
    """Whether GitHub says the issue is closed now (the webhook's payload may be older): a closed issue
    starts nothing."""
    return worker.forge.get_issue(repo, number).state == "closed"


def handle_start(worker: Any, repo: str, number: int, user: str, args: dict) -> CommandResult:
    if _closed(worker, repo, number):  # nothing said, nothing recorded that runs
        return CommandResult("ignored", "the issue is closed; a closed issue starts nothing")
    worker.acknowledge_issue(repo, number)
    active = worker.store.active_run(repo, number)
    if active:
        return CommandResult("ignored", f"run {active.id} is already active", active.id)
    previous = [
        r for r in worker.store.runs_for_issue(repo, number) if r.state == Phase.DONE and r.kind == "issue"
    ]
    if previous:
        last = previous[-1]
        worker.pipeline.post_note(
            last,
            f"@{user} this issue was already researched (run {last.id}); its results "
            f"stand. Comment `{worker.settings.command_prefix} rerun` to start a new "
            "attempt.",
        )
        return CommandResult("ignored", f"run {last.id} already done; rerun needed", last.id)
    run = worker.store.create_run(
        repo, number, "issue", user, {"reason": args.get("reason", "")}, lease_owner=worker.owner
    )
    worker.announce(run)
    return CommandResult("done", f"run {run.id} queued", run.id)


def handle_rerun(worker: Any, repo: str, number: int, user: str, args: dict) -> CommandResult:
    if _closed(worker, repo, number):
        worker.pipeline.post_issue_note(
            repo, number, f"@{user} this issue is closed; reopen it to research it again."
        )
        return CommandResult("ignored", "the issue is closed; a closed issue starts nothing")
    active = worker.store.active_run(repo, number)
    if active:
        worker.pipeline.post_note(
            active,
            f"@{user} run {active.id} is still in progress; "
            f"`{worker.settings.command_prefix} stop` it first.",
        )
        return CommandResult("ignored", f"run {active.id} still active", active.id)
    run = worker.store.create_run(
        repo, number, "issue", user, {"reason": "rerun", **_rounds(args)}, lease_owner=worker.owner
    )
    worker.announce(run)
    return CommandResult("done", f"run {run.id} queued (attempt {run.attempt})", run.id)


def handle_bench(worker: Any, repo: str, number: int, user: str, args: dict) -> CommandResult:
    missing = worker.missing_branch(repo, args["branch"])
    if missing:
        p = worker.settings.command_prefix
        worker.pipeline.post_issue_note(
            repo,
            number,
            f"@{user} {missing}, so nothing was measured. "
            f"`{p} bench <branch>` takes a branch of this "
            "repository or `owner:branch` of a fork.",
        )
        return CommandResult("refused", missing)
    run = worker.store.create_run(
        repo,
        number,
        "bench",
        user,
        {"branch": args["branch"], "is_pull": args.get("is_pull", False), **_rounds(args)},
        lease_owner=worker.owner,
    )
    worker.announce(run)
    return CommandResult("done", f"bench run {run.id} queued for {args['branch']}", run.id)


def handle_rebench(worker: Any, repo: str, number: int, user: str, args: dict) -> CommandResult:
    if not args.get("is_pull"):
        worker.pipeline.post_issue_note(
            repo,
            number,
            f"@{user} `{worker.settings.command_prefix} rebench` works "
            "on pull requests; on issues use `rerun` or `bench <branch>`.",
        )
        return CommandResult("ignored", "rebench outside a pull request")
    run = worker.store.create_run(
        repo,
        number,
        "rebench",
        user,
        {"pull": number, "is_pull": True, **_rounds(args)},
        lease_owner=worker.owner,
    )
    worker.announce(run)
    return CommandResult("done", f"rebench run {run.id} queued", run.id)


def handle_approved(worker: Any, repo: str, number: int, user: str, args: dict) -> CommandResult:
    if not worker.pipeline.base_moved(repo, number):
        return CommandResult("ignored", "base did not move since the last measurement (or not the bot's PR)")
    run = worker.store.create_run(
        repo,
        number,
        "rebench",
        user,
        {"pull": number, "is_pull": True, "reason": "approved; base moved"},
        lease_owner=worker.owner,
    )
    worker.announce(run)
    return CommandResult("done", f"rebench run {run.id} queued after approval", run.id)


def handle_rerequest(worker: Any, repo: str, number: int, user: str, args: dict) -> CommandResult:
    """GitHub's Re-run button on one of the bot's check runs: measure that commit again. On a pull request's
    head: a rebench of the PR; else a bench of the branch the commit heads (the bench run's, or the
    candidate's), on the issue of the run that made the check run. Through the same runs as the slash
    commands, so the new run's check runs go queued -> in_progress -> completed on GitHub."""
    try:
        origin = worker.store.get_run(int(args["run_id"]))
    except KeyError:
        return CommandResult("ignored", f"run {args.get('run_id')} is not this bot's")
    if origin.repo.lower() != repo.lower() or origin.issue_number != number:
        return CommandResult("refused", f"check run of run {origin.id} does not belong to {repo}#{number}")
    head = str(args.get("head_sha") or "")
    pub = worker.store.get_artifact(origin.id, "publication") or {}
    pulls = [int(n) for n in args.get("pulls") or []]
    pull = pulls[0] if pulls else None
    if pull is None and pub.get("pr_number") and pub.get("head_sha") == head:
        pull = int(pub["pr_number"])
    where = pull or number
    active = worker.store.active_run(repo, where)
    if active:  # its own check runs already say it is measuring
        return CommandResult("ignored", f"run {active.id} is still active", active.id)
    params = {"reason": "check run re-run", **_rounds(origin.params)}
    if pull is not None:
        run = worker.store.create_run(
            repo, pull, "rebench", user, {**params, "pull": pull, "is_pull": True}, lease_owner=worker.owner
        )
    else:
        branch = origin.params.get("branch") if origin.kind == "bench" else None
        if branch is None:
            arts = [
                worker.store.get_artifact(origin.id, k) or []
                for k in worker.store.artifact_keys(origin.id)
                if k == "candidates" or k.startswith("candidates@")
            ]
            branch = next((c.get("branch") for cands in arts for c in cands if c.get("sha") == head), None)
        if not branch:
            return CommandResult("ignored", f"no branch of run {origin.id} has {head[:10]} at its head")
        run = worker.store.create_run(
            repo,
            number,
            "bench",
            user,
            {**params, "branch": branch, "is_pull": bool(origin.params.get("is_pull"))},
            lease_owner=worker.owner,
        )
    worker.announce(run)
    return CommandResult(
        "done", f"{run.kind} run {run.id} queued (re-run of a check of run {origin.id})", run.id
    )


def handle_stop(worker: Any, repo: str, number: int, user: str, args: dict) -> CommandResult:
    stopped = []
    for run in worker.store.runs_for_issue(repo, number):
        if run.active:
            worker.store.request_cancel(run.id)
            worker.store.add_event(
                run.id, "cancel", f"stop requested by {user}: {args.get('reason', 'command')}"
            )
            stopped.append(run.id)
    if not stopped and not args.get("quiet"):
        worker.pipeline.post_issue_note(repo, number, f"@{user} nothing is running for this issue.")
    return CommandResult(
        "done",
        f"cancel requested for runs {stopped}" if stopped else "nothing to stop",
        stopped[0] if stopped else None,
    )


def handle_status(worker: Any, repo: str, number: int, user: str, args: dict) -> CommandResult:
    runs = worker.store.runs_for_issue(repo, number)
    if not runs:
        worker.pipeline.post_issue_note(
            repo,
            number,
            f"@{user} no run for this issue yet. Add the "
            f"`{worker.settings.trigger_label}` label to start one.",
        )
        return CommandResult("done", "no runs")
    worker.pipeline.refresh_status(runs[-1])
    return CommandResult("done", f"status of run {runs[-1].id} refreshed", runs[-1].id)


def handle_help(worker: Any, repo: str, number: int, user: str, args: dict) -> CommandResult:
    error = f"{args['error']}\n\n" if args.get("error") else ""
    worker.pipeline.post_issue_note(
        repo, number, f"@{user} {error}{help_text(worker.settings.command_prefix)}"
    )
    return CommandResult("done", "help posted")


# ------------------------------------------------------------------------------------------------- registry

REGISTRY: dict[str, CommandSpec] = {
    c.name: c
    for c in (
        CommandSpec(
            "start",
            handle_start,
            refusal="Adding the `{label}` label starts the bot only when someone with write access to this "
            "repository adds it, so nothing was started",
        ),
        CommandSpec(
            "status",
            handle_status,
            parse_plain,
            help="`{p} status`",
            footer="status",
            refused="nothing was done",
        ),
        CommandSpec(
            "stop", handle_stop, parse_plain, help="`{p} stop`", footer="stop", refused="nothing was stopped"
        ),
        CommandSpec("rerun", handle_rerun, parse_rounds, help="`{p} rerun`", footer="rerun", rounds=True),
        CommandSpec(
            "bench",
            handle_bench,
            parse_bench,
            help="`{p} bench <branch>` (or `owner:branch` of a fork)",
            footer="bench <branch>",
            rounds=True,
        ),
        CommandSpec(
            "rebench",
            handle_rebench,
            parse_rounds,
            help="on pull requests `{p} rebench`",
            footer="rebench",
            rounds=True,
        ),
        CommandSpec("help", handle_help, parse_help, refused="nothing was done"),
        CommandSpec(
            "rerequest",
            handle_rerequest,
            refusal="Re-running the bot's checks measures again only when someone with write access to this "
            "repository asks, so nothing was started",
        ),
        CommandSpec(
            "approved",
            handle_approved,
            refusal="An approving review makes the bot re-measure this pull request only when the reviewer "
            "has write access to this repository, so nothing was started",
        ),
    )
}


def get(kind: str) -> CommandSpec | None:
    return REGISTRY.get(kind)


def slash_names() -> list[str]:
    """The words a slash command may start with."""
    return [c.name for c in REGISTRY.values() if c.parse is not None]


def help_text(prefix: str) -> str:
    """The help comment's list of commands (after the mention and any error)."""
    parts = [c.help.format(p=prefix) for c in REGISTRY.values() if c.help]
    listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])}, and {parts[-1]}"
    text = f"Commands: {listed}."
    rounds = [f"`{c.name}`" for c in REGISTRY.values() if c.rounds]
    if rounds:
        names = rounds[0] if len(rounds) == 1 else f"{', '.join(rounds[:-1])} and {rounds[-1]}"
        verb = "takes" if len(rounds) == 1 else "take"
        text += (
            f" {names} {verb} `rounds=N` (2-{MAX_ROUNDS}) to measure with more interleaved rounds when a "
            "result came back noisy."
        )
    return text


def footer_text(prefix: str = FOOTER_PREFIX) -> str:
    """The status comment's last line: the commands a reader can use there (`prefix`:
    Settings.command_prefix)."""
    words = " | ".join(c.footer for c in REGISTRY.values() if c.footer)
    return f"<sub>Commands: `{prefix} {words}`</sub>"


def refusal_sentence(kind: str, prefix: str, label: str) -> str:
    """The one polite refusal for someone without write access, worded for what they asked."""
    spec = REGISTRY.get(kind)
    if spec is not None and spec.refusal:
        what = spec.refusal.format(p=prefix, label=label, name=kind)
    else:
        refused = spec.refused if spec is not None else "nothing was started"
        what = f"Only people with write access to this repository can use `{prefix} {kind}`, so {refused}"
    return (
        f"thanks for the interest! {what}. A maintainer can do it for you (this note comes once per "
        "person per issue)."
    )


__all__ = [
    "REGISTRY",
    "CommandResult",
    "CommandSpec",
    "UsageError",
    "footer_text",
    "get",
    "help_text",
    "refusal_sentence",
    "slash_names",
]
