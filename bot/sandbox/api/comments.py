"""Issue (and pull request) comments."""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from bot.sandbox.api.common import Api, invalid
from bot.sandbox.state import now_iso


def register(api: Api) -> Blueprint:
    bp = api.blueprint("comments")
    route, state = functools.partial(api.route, bp), api.state

    @route("/repos/<owner>/<name>/issues/<int:number>/comments")
    def list_comments(owner: str, name: str, number: int) -> Any:
        repo = api.load(owner, name)
        issue = state.issue(repo, number)
        since = request.args.get("since")
        items = [state.comments[i] for i in issue.comment_ids]
        if since:
            items = [x for x in items if x.updated_at >= since]
        return api.listing(items, lambda x: g.r.comment(repo, x))

    @route("/repos/<owner>/<name>/issues/<int:number>/comments", ["POST"])
    def create_comment(owner: str, name: str, number: int) -> Any:
        repo = api.load(owner, name)
        c = api.caller()
        issue = state.issue(repo, number)
        com = state.add_comment(repo, issue, c.login, api.body().get("body") or "")
        api.emit(
            "issue_comment",
            repo,
            c.login,
            action="created",
            issue=g.r.issue(repo, issue),
            comment=g.r.comment(repo, com),
        )
        return api.created(g.r.comment(repo, com))

    @route("/repos/<owner>/<name>/issues/comments/<int:cid>")
    def get_comment(owner: str, name: str, cid: int) -> Any:
        repo = api.load(owner, name)
        return jsonify(g.r.comment(repo, state.comment(repo, cid)))

    @route("/repos/<owner>/<name>/issues/comments/<int:cid>", ["PATCH", "DELETE"])
    def edit_comment(owner: str, name: str, cid: int) -> Any:
        repo = api.load(owner, name)
        c = api.caller()
        com = state.comment(repo, cid)
        api.require_author_or(repo, c, com.user, "write")
        issue = state.issue(repo, com.issue_number)
        if request.method == "DELETE":
            issue.comment_ids.remove(cid)
            del state.comments[cid]
            api.emit(
                "issue_comment",
                repo,
                c.login,
                action="deleted",
                issue=g.r.issue(repo, issue),
                comment=g.r.comment(repo, com),
            )
            return Response(status=204)
        text = api.body().get("body")
        if not text:
            raise invalid("IssueComment", "missing_field", "body")
        old = com.body
        com.body, com.updated_at = text, now_iso()
        api.emit(
            "issue_comment",
            repo,
            c.login,
            action="edited",
            issue=g.r.issue(repo, issue),
            comment=g.r.comment(repo, com),
            changes={"body": {"from": old}},
        )
        return jsonify(g.r.comment(repo, com))

    return bp
