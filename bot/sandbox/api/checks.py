"""Check runs: create, read, update; the runs on a commit (served under /commits/<ref>/check-runs)."""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from bot.sandbox import gitrepo
from bot.sandbox.api.common import Api, invalid
from bot.sandbox.api.webhooks import repo_installations
from bot.sandbox.state import ApiError, Caller, Repo

FIELDS = (
    "name",
    "status",
    "conclusion",
    "started_at",
    "completed_at",
    "details_url",
    "external_id",
    "output",
)


def check_fields(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("status") not in (None, "queued", "in_progress", "completed"):
        raise invalid("CheckRun", "invalid", "status")
    return {k: data.get(k) for k in FIELDS}


def check_caller(api: Api, repo: Repo) -> Caller:
    """The caller, who must write to `repo` and (unless the sandbox allows tokens) be a GitHub App."""
    c = api.caller()
    if api.options.get("checks_require_app", True) and c.installation is None:
        raise ApiError(403, "You must authenticate via a GitHub App.")
    api.state.require(repo, c, "write")
    return c


def runs_for_ref(api: Api, repo: Repo, ref: str) -> Response:
    """GET /repos/{owner}/{repo}/commits/{ref}/check-runs (filters: check_name, status)."""
    sha = gitrepo.resolve(repo.path, ref)
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {ref}")
    runs = [r for r in api.state.check_runs.values() if r.repo == repo.full_name and r.head_sha == sha]
    if request.args.get("check_name"):
        runs = [r for r in runs if r.name == request.args["check_name"]]
    if request.args.get("status"):
        runs = [r for r in runs if r.status == request.args["status"]]
    runs.sort(key=lambda r: r.id, reverse=True)
    return api.counted(runs, "check_runs", lambda r: g.r.check_run(repo, r))


def register(api: Api) -> Blueprint:
    bp = api.blueprint("checks")
    route, state = functools.partial(api.route, bp), api.state

    @route("/repos/<owner>/<name>/check-runs", ["POST"])
    def create_check_run(owner: str, name: str) -> Any:
        repo = api.load(owner, name)
        c = check_caller(api, repo)
        data = api.body()
        fields = check_fields(data)
        fields.pop("name")
        run = state.create_check_run(
            repo,
            c.installation.app_id if c.installation else None,
            data.get("name") or "",
            data.get("head_sha") or "",
            **fields,
        )
        return api.created(g.r.check_run(repo, run))

    @route("/repos/<owner>/<name>/check-runs/<int:rid>", ["GET", "PATCH"])
    def check_run(owner: str, name: str, rid: int) -> Any:
        repo = api.load(owner, name)
        run = state.check_runs.get(rid)
        if run is None or run.repo != repo.full_name:
            raise ApiError(404, "Not Found")
        if request.method == "PATCH":
            check_caller(api, repo)
            state.update_check_run(run, **check_fields(api.body()))
        return jsonify(g.r.check_run(repo, run))

    @route("/repos/<owner>/<name>/check-runs/<int:rid>/rerequest", ["POST"])
    def rerequest_check_run(owner: str, name: str, rid: int) -> Any:
        """GitHub's Re-run button: the App that created the check run gets `check_run` `rerequested`."""
        repo = api.load(owner, name)
        run = state.check_runs.get(rid)
        if run is None or run.repo != repo.full_name:
            raise ApiError(404, "Not Found")
        c = api.caller()
        state.require(repo, c, "write")
        if run.status != "completed":
            raise ApiError(422, "This check run is not rerequestable")
        emit_check_run(api, repo, run, "rerequested", c.login)
        return api.created({})

    return bp


def emit_check_run(api: Api, repo: Repo, run: Any, action: str, sender: str) -> None:
    """A `check_run` delivery, to the App that created the check run only (as GitHub sends rerequested and
    requested_action)."""
    insts = {k: v for k, v in repo_installations(api.state, repo).items() if k == run.app_id}
    payload = {
        "action": action,
        "check_run": g.r.check_run_event(repo, run),
        "repository": g.r.repo(repo, full=False),
        "sender": g.r.user(sender),
    }
    if insts:
        payload["installation"] = next(iter(insts.values()))
    api.state.sender.emit("check_run", payload, insts)
