"""Issues and the labels on them."""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, g, jsonify, request

from bot.sandbox import gitrepo
from bot.sandbox.api.common import Api, invalid
from bot.sandbox.state import ApiError, Caller, Issue, Repo, now_iso, perm_at_least


def edit_issue_fields(api: Api, repo: Repo, issue: Issue, data: dict[str, Any], c: Caller) -> None:
    """PATCH an issue or pull request: title, body, labels, base, state; webhooks for what changed."""
    changes: dict[str, Any] = {}
    for key in ("title", "body"):
        if key in data and data[key] != getattr(issue, key):
            if key == "title" and not data[key]:
                raise invalid("Issue", "missing_field", "title")
            changes[key] = {"from": getattr(issue, key)}
            setattr(issue, key, data[key])
    issue.updated_at = now_iso()
    if changes:
        api.emit_issue(repo, issue, "edited", c.login, changes=changes)
    if "labels" in data and isinstance(data["labels"], list):
        api.state.require(repo, c, "triage")
        names = [x if isinstance(x, str) else x.get("name", "") for x in data["labels"]]
        set_labels(api, repo, issue, names, c)
    if "base" in data and issue.pull:
        if gitrepo.branch_sha(repo.path, data["base"]) is None:
            raise invalid("PullRequest", "invalid", "base")
        issue.pull.base_ref = data["base"]
    new_state = data.get("state")
    if new_state in ("open", "closed") and new_state != issue.state:
        issue.state = new_state
        issue.closed_at = now_iso() if new_state == "closed" else None
        issue.state_reason = data.get("state_reason") or (
            "completed" if new_state == "closed" else "reopened"
        )
        api.emit_issue(repo, issue, "closed" if new_state == "closed" else "reopened", c.login)
    elif new_state not in (None, "open", "closed"):
        raise invalid("Issue", "invalid", "state")


def set_labels(api: Api, repo: Repo, issue: Issue, names: list[str], c: Caller, replace: bool = True) -> None:
    """Make `names` the issue's labels (with `replace`; else add them), creating labels as needed."""
    wanted = []
    for n in names:
        lab = api.state.ensure_label(repo, n)
        if lab.name not in wanted:
            wanted.append(lab.name)
    removed = [n for n in issue.labels if n not in wanted] if replace else []
    added = [n for n in wanted if n not in issue.labels]
    issue.labels = [n for n in issue.labels if n not in removed] + added
    issue.updated_at = now_iso()
    for n in removed:
        lab = api.state.find_label(repo, n)
        api.emit_issue(repo, issue, "unlabeled", c.login, label=g.r.label(repo, lab) if lab else {"name": n})
    for n in added:
        api.emit_issue(repo, issue, "labeled", c.login, label=g.r.label(repo, api.state.find_label(repo, n)))


def label_names(data: Any) -> list[str]:
    """Label names from a body that is a list, or an object with "labels" (names or {"name": ...})."""
    items = data.get("labels", []) if isinstance(data, dict) else data if isinstance(data, list) else []
    return [x if isinstance(x, str) else x.get("name", "") for x in items]


def register(api: Api) -> Blueprint:
    bp = api.blueprint("issues")
    route, state = functools.partial(api.route, bp), api.state

    @route("/repos/<owner>/<name>/issues")
    def list_issues(owner: str, name: str) -> Any:
        repo = api.load(owner, name)
        want_state = request.args.get("state", "open")
        labels = [x for x in request.args.get("labels", "").split(",") if x]
        creator = request.args.get("creator")
        items = [
            i
            for i in repo.issues.values()
            if (want_state == "all" or i.state == want_state)
            and all(any(lab.lower() == n.lower() for n in i.labels) for lab in labels)
            and (not creator or i.user == creator)
        ]
        items.sort(key=lambda i: i.number, reverse=request.args.get("direction", "desc") == "desc")
        return api.listing(items, lambda i: g.r.issue(repo, i))

    @route("/repos/<owner>/<name>/issues", ["POST"])
    def create_issue(owner: str, name: str) -> Any:
        repo = api.load(owner, name)
        c = api.caller()
        data = api.body()
        labels = data.get("labels") or []
        if labels and not perm_at_least(state.permission(repo, c), "triage"):
            labels = []  # GitHub silently drops labels from users without triage
        issue = state.create_issue(repo, c.login, data.get("title") or "", data.get("body"))
        api.emit_issue(repo, issue, "opened", c.login)
        for lname in labels:
            lab = state.ensure_label(repo, lname)
            issue.labels.append(lab.name)
            api.emit_issue(repo, issue, "labeled", c.login, label=g.r.label(repo, lab))
        return api.created(g.r.issue(repo, issue))

    @route("/repos/<owner>/<name>/issues/<int:number>")
    def get_issue(owner: str, name: str, number: int) -> Any:
        repo = api.load(owner, name)
        return jsonify(g.r.issue(repo, state.issue(repo, number)))

    @route("/repos/<owner>/<name>/issues/<int:number>", ["PATCH"])
    def edit_issue(owner: str, name: str, number: int) -> Any:
        repo = api.load(owner, name)
        c = api.caller()
        issue = state.issue(repo, number)
        api.require_author_or(repo, c, issue.user, "triage")
        edit_issue_fields(api, repo, issue, api.body(), c)
        return jsonify(g.r.issue(repo, issue))

    @route("/repos/<owner>/<name>/issues/<int:number>/labels")
    def issue_labels(owner: str, name: str, number: int) -> Any:
        repo = api.load(owner, name)
        issue = state.issue(repo, number)
        return api.listing(
            [state.find_label(repo, n) for n in issue.labels], lambda lab: g.r.label(repo, lab)
        )

    @route("/repos/<owner>/<name>/issues/<int:number>/labels", ["POST", "PUT"])
    def add_labels(owner: str, name: str, number: int) -> Any:
        repo = api.load(owner, name)
        c = api.caller()
        state.require(repo, c, "triage")
        issue = state.issue(repo, number)
        names = label_names(request.get_json(silent=True))
        if request.method == "POST" and not names:
            raise invalid("Label", "missing_field", "labels")
        set_labels(api, repo, issue, names, c, replace=request.method == "PUT")
        return jsonify([g.r.label(repo, state.find_label(repo, n)) for n in issue.labels])

    @route("/repos/<owner>/<name>/issues/<int:number>/labels/<path:lname>", ["DELETE"])
    def remove_label(owner: str, name: str, number: int, lname: str) -> Any:
        repo = api.load(owner, name)
        c = api.caller()
        state.require(repo, c, "triage")
        issue = state.issue(repo, number)
        match = next((n for n in issue.labels if n.lower() == lname.lower()), None)
        if match is None:
            raise ApiError(404, "Label does not exist")
        set_labels(api, repo, issue, [n for n in issue.labels if n != match], c)
        return jsonify([g.r.label(repo, state.find_label(repo, n)) for n in issue.labels])

    return bp
