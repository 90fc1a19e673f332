"""Reactions on issues and comments."""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from bot.sandbox.api.common import Api
from bot.sandbox.state import ApiError


def register(api: Api) -> Blueprint:
    bp = api.blueprint("reactions")
    route, state = functools.partial(api.route, bp), api.state

    def reactions_view(target: list[Any]) -> Any:
        if request.method == "GET":
            content = request.args.get("content")
            return api.listing([r for r in target if not content or r.content == content], g.r.reaction)
        c = api.caller()
        reaction, new = state.react(target, c.login, api.body().get("content", ""))
        return jsonify(g.r.reaction(reaction)), 201 if new else 200

    @route("/repos/<owner>/<name>/issues/<int:number>/reactions", ["GET", "POST"])
    def issue_reactions(owner: str, name: str, number: int) -> Any:
        repo = api.load(owner, name)
        return reactions_view(state.issue(repo, number).reactions)

    @route("/repos/<owner>/<name>/issues/comments/<int:cid>/reactions", ["GET", "POST"])
    def comment_reactions(owner: str, name: str, cid: int) -> Any:
        repo = api.load(owner, name)
        return reactions_view(state.comment(repo, cid).reactions)

    @route("/repos/<owner>/<name>/issues/<int:number>/reactions/<int:rid>", ["DELETE"])
    def delete_issue_reaction(owner: str, name: str, number: int, rid: int) -> Any:
        repo = api.load(owner, name)
        c = api.caller()
        target = state.issue(repo, number).reactions
        match = [r for r in target if r.id == rid and r.user == c.login]
        if not match:
            raise ApiError(404, "Not Found")
        target.remove(match[0])
        return Response(status=204)

    return bp
