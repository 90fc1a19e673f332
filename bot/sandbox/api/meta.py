"""Users, the rate limit, GitHub Apps and their installations (app JWT or installation token), and the
App-manifest flow's code conversion (no authentication, like GitHub's)."""

from __future__ import annotations

import functools
import time
from typing import Any

from flask import Blueprint, g, jsonify

from bot.sandbox.api.common import Api, app_from_jwt
from bot.sandbox.state import ApiError, Installation, now_iso


def register(api: Api) -> Blueprint:
    bp = api.blueprint("meta")
    route, state = functools.partial(api.route, bp), api.state

    def own_installation(inst_id: int) -> Installation:
        """The installation `inst_id` of the app whose JWT authenticates this request."""
        app = app_from_jwt(state, g.jwt)
        inst = state.installations.get(inst_id)
        if inst is None or inst.app_id != app.id:
            raise ApiError(404, "Not Found")
        return inst

    @route("/rate_limit")
    def rate_limit() -> Any:
        reset = int(time.time()) + 3600
        core = {"limit": 5000, "used": 1, "remaining": 4999, "reset": reset}
        return jsonify(
            {
                "resources": {
                    "core": core,
                    "search": {**core, "limit": 30, "remaining": 29},
                    "graphql": core,
                },
                "rate": core,
            }
        )

    @route("/user")
    def get_user() -> Any:
        c = api.caller()
        if c.installation:
            raise ApiError(403, "Resource not accessible by integration")
        return jsonify(g.r.private_user(state.user(c.login)))

    @route("/users/<login>")
    def get_user_by_login(login: str) -> Any:
        return jsonify(g.r.user(state.user(login)))

    @route("/app")
    def get_app() -> Any:
        return jsonify(g.r.app(app_from_jwt(state, g.jwt)))

    @route("/app/installations")
    def list_installations() -> Any:
        app = app_from_jwt(state, g.jwt)
        insts = [i for i in state.installations.values() if i.app_id == app.id]
        return api.listing(insts, g.r.installation)

    @route("/app/installations/<int:inst_id>")
    def get_installation(inst_id: int) -> Any:
        return jsonify(g.r.installation(own_installation(inst_id)))

    @route("/repos/<owner>/<name>/installation")
    def repo_installation(owner: str, name: str) -> Any:
        app = app_from_jwt(state, g.jwt)
        return jsonify(g.r.installation(state.installation_for_repo(app.id, state.repo(owner, name))))

    @route("/orgs/<org>/installation")
    @route("/users/<org>/installation")
    def account_installation(org: str) -> Any:
        app = app_from_jwt(state, g.jwt)
        state.user(org)
        for inst in state.installations.values():
            if inst.app_id == app.id and inst.account.lower() == org.lower():
                return jsonify(g.r.installation(inst))
        raise ApiError(404, "Not Found")

    @route("/app/installations/<int:inst_id>/access_tokens", ["POST"])
    def access_token(inst_id: int) -> Any:
        inst = own_installation(inst_id)
        tok = state.issue_installation_token(inst_id)
        return api.created(
            {
                "token": tok.token,
                "expires_at": now_iso(tok.expires_at),
                "permissions": g.r.installation(inst)["permissions"],
                "repository_selection": "selected",
            }
        )

    @route("/app-manifests/<code>/conversions", ["POST"])
    def manifest_conversion(code: str) -> Any:
        app, entry = state.convert_manifest_code(code)
        return api.created(
            {
                **g.r.app(app),
                "client_secret": entry.client_secret,
                "webhook_secret": entry.webhook_secret,
                "pem": entry.pem,
            }
        )

    @route("/installation/repositories")
    def installation_repos() -> Any:
        c = api.caller()
        if not c.installation:
            raise ApiError(403, "This endpoint requires an installation token")
        repos = [state.repo(*r.split("/", 1)) for r in c.installation.repos]
        return api.counted(
            repos, "repositories", lambda r: g.r.repo(r, full=False), repository_selection="selected"
        )

    return bp
