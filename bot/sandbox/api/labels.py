"""A repository's labels."""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from bot.sandbox.api.common import Api, invalid
from bot.sandbox.state import ApiError


def register(api: Api) -> Blueprint:
    bp = api.blueprint("labels")
    route, state = functools.partial(api.route, bp), api.state

    @route("/repos/<owner>/<name>/labels")
    def list_labels(owner: str, name: str) -> Any:
        repo = api.load(owner, name)
        return api.listing(
            sorted(repo.labels.values(), key=lambda lab: lab.name.lower()), lambda lab: g.r.label(repo, lab)
        )

    @route("/repos/<owner>/<name>/labels", ["POST"])
    def create_label(owner: str, name: str) -> Any:
        repo = api.load(owner, name)
        state.require(repo, api.caller(), "write")
        data = api.body()
        lname = data.get("name")
        if not lname:
            raise invalid("Label", "missing_field", "name")
        if state.find_label(repo, lname):
            raise invalid("Label", "already_exists", "name")
        lab = state.ensure_label(
            repo, lname, (data.get("color") or "ededed").lstrip("#"), data.get("description")
        )
        return api.created(g.r.label(repo, lab))

    @route("/repos/<owner>/<name>/labels/<path:lname>")
    def get_label(owner: str, name: str, lname: str) -> Any:
        repo = api.load(owner, name)
        lab = state.find_label(repo, lname)
        if lab is None:
            raise ApiError(404, "Not Found")
        return jsonify(g.r.label(repo, lab))

    @route("/repos/<owner>/<name>/labels/<path:lname>", ["PATCH", "DELETE"])
    def edit_label(owner: str, name: str, lname: str) -> Any:
        repo = api.load(owner, name)
        state.require(repo, api.caller(), "write")
        lab = state.find_label(repo, lname)
        if lab is None:
            raise ApiError(404, "Not Found")
        if request.method == "DELETE":
            del repo.labels[lab.name]
            for issue in repo.issues.values():
                issue.labels = [n for n in issue.labels if n != lab.name]
            return Response(status=204)
        data = api.body()
        new_name = data.get("new_name") or data.get("name")
        if new_name and new_name != lab.name:
            if state.find_label(repo, new_name) and new_name.lower() != lab.name.lower():
                raise invalid("Label", "already_exists", "name")
            del repo.labels[lab.name]
            for issue in repo.issues.values():
                issue.labels = [new_name if n == lab.name else n for n in issue.labels]
            lab.name = new_name
            repo.labels[new_name] = lab
        if data.get("color"):
            lab.color = data["color"].lstrip("#")
        if "description" in data:
            lab.description = data["description"]
        return jsonify(g.r.label(repo, lab))

    return bp
