"""What every resource of the sandbox's REST API shares: authentication (tokens, app JWTs), the request
context (`Api`: caller, repository look-up, JSON body, pagination, listings, webhooks) and error bodies."""

from __future__ import annotations

import base64
import functools
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import jwt
from flask import Blueprint, Response, g, jsonify, request

from bot.sandbox.api.webhooks import fire_ref_events, repo_installations
from bot.sandbox.render import Renderer
from bot.sandbox.state import ApiError, App, Caller, Issue, Repo, SandboxState


def parse_auth(state: SandboxState) -> tuple[Caller | None, str | None]:
    """(caller, raw bearer) from the Authorization header; raises 401 for unknown tokens."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None, None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value).decode().split(":", 1)[1]
        except (ValueError, IndexError):
            raise ApiError(401, "Bad credentials") from None
    elif scheme.lower() not in ("token", "bearer"):
        raise ApiError(401, "Bad credentials")
    caller = state.authenticate(value)
    if caller is None and value.count(".") == 2:
        return None, value  # a JWT: only app endpoints accept it
    if caller is None:
        raise ApiError(401, "Bad credentials")
    return caller, None


def app_from_jwt(state: SandboxState, token: str | None) -> App:
    """Verify an app JWT (RS256, iss = app id) against the registered public key."""
    if not token:
        raise ApiError(401, "A JSON web token could not be decoded")
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        app = state.apps.get(int(claims.get("iss")))
    except (jwt.PyJWTError, TypeError, ValueError):
        raise ApiError(401, "A JSON web token could not be decoded") from None
    if app is None:
        raise ApiError(401, "Integration not found")
    try:
        claims = jwt.decode(
            token,
            app.public_key_pem,
            algorithms=["RS256"],
            options={"require": ["iat", "exp", "iss"]},
            leeway=60,
        )
    except jwt.ExpiredSignatureError:
        raise ApiError(
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the future time "
            "at which the assertion expires",
        ) from None
    except jwt.PyJWTError:
        raise ApiError(401, "A JSON web token could not be decoded") from None
    if float(claims["exp"]) - time.time() > 600 + 60:
        raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
    return app


def invalid(resource: str, code: str, field: str | None = None, message: str | None = None) -> ApiError:
    """422 "Validation Failed" with GitHub's one-error body ({"resource", "code", "field"|"message"})."""
    error = {"resource": resource, "code": code}
    if field is not None:
        error["field"] = field
    if message is not None:
        error["message"] = message
    return ApiError(422, "Validation Failed", [error])


class Api:
    """The state behind one sandbox app and the helpers its route functions share.

    Route functions run under `state.lock` with `g.caller`/`g.jwt` (from the Authorization header) and
    `g.r` (the renderer for this request's host) set."""

    def __init__(self, state: SandboxState, options: dict[str, Any]) -> None:
        self.state = state
        self.options = options

    def blueprint(self, name: str) -> Blueprint:
        return Blueprint(name, __name__)

    def route(
        self, bp: Blueprint, rule: str, methods: list[str] | None = None
    ) -> Callable[[Callable[..., Any]], Any]:
        """Register `fn` for `rule` on `bp`, wrapped in the lock and the per-request context."""
        state = self.state

        def deco(fn: Callable[..., Any]) -> Any:
            @functools.wraps(fn)
            def view(**kw: Any) -> Any:
                with state.lock:
                    g.caller, g.jwt = parse_auth(state)
                    g.r = Renderer(request.host_url, state)
                    return fn(**kw)

            bp.add_url_rule(rule, f"{fn.__name__}:{rule}", view, methods=methods or ["GET"])
            return fn

        return deco

    @staticmethod
    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if data is None and request.get_data():
            raise ApiError(400, "Problems parsing JSON")
        return data if isinstance(data, dict) else {}

    @staticmethod
    def caller() -> Caller:
        if g.caller is None:
            raise ApiError(401, "Requires authentication")
        return g.caller

    def load(self, owner: str, name: str) -> Repo:
        repo = self.state.repo(owner, name)
        if self.state.permission(repo, g.caller) == "none":
            raise ApiError(404, "Not Found")
        return repo

    def load_for(self, owner: str, name: str, perm: str) -> tuple[Repo, Caller]:
        """The repository and the caller, who must hold at least `perm` on it."""
        repo = self.load(owner, name)
        c = self.caller()
        self.state.require(repo, c, perm)
        return repo, c

    def require_author_or(self, repo: Repo, c: Caller, author: str, perm: str) -> None:
        """The caller `c` must be `author` or hold at least `perm` on `repo` (editing an issue, a comment)."""
        if c.login != author:
            self.state.require(repo, c, perm)

    @staticmethod
    def paginate(items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        try:
            per_page = max(1, min(100, int(request.args.get("per_page", 30))))
            page = max(1, int(request.args.get("page", 1)))
        except ValueError:
            raise ApiError(422, "Invalid pagination parameters") from None
        last = max(1, -(-len(items) // per_page))
        links = []

        def link(p: int, rel: str) -> str:
            args = dict(request.args)
            args.update(page=str(p), per_page=str(per_page))
            return f'<{request.base_url}?{urllib.parse.urlencode(args)}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        headers = {"Link": ", ".join(links)} if links else {}
        return items[(page - 1) * per_page : page * per_page], headers

    def listing(self, items: list[Any], render: Callable[[Any], Any]) -> Response:
        page, headers = self.paginate(items)
        resp = jsonify([render(x) for x in page])
        resp.headers.update(headers)
        return resp

    def counted(self, items: list[Any], key: str, render: Callable[[Any], Any], **extra: Any) -> Response:
        """A page of `items` as {"total_count": n, **extra, key: [...]} (installation repos, check runs)."""
        page, headers = self.paginate(items)
        resp = jsonify({"total_count": len(items), **extra, key: [render(x) for x in page]})
        resp.headers.update(headers)
        return resp

    @staticmethod
    def created(obj: Any, status: int = 201) -> tuple[Response, int]:
        return jsonify(obj), status

    def emit(self, event: str, repo: Repo | None, sender: str, **payload: Any) -> None:
        insts = {}
        if repo is not None:
            payload["repository"] = g.r.repo(repo, full=False)
            insts = repo_installations(self.state, repo)
        payload["sender"] = g.r.user(sender)
        self.state.sender.emit(event, payload, insts)

    def emit_issue(self, repo: Repo, issue: Issue, action: str, sender: str, **extra: Any) -> None:
        if issue.pull:
            self.emit(
                "pull_request",
                repo,
                sender,
                action=action,
                number=issue.number,
                pull_request=g.r.pull(repo, issue),
                **extra,
            )
        else:
            self.emit("issues", repo, sender, action=action, issue=g.r.issue(repo, issue), **extra)

    def after_ref_changes(
        self, repo: Repo, changes: dict[str, tuple[str | None, str | None]], sender: str
    ) -> None:
        """Fire push + pull_request synchronize for ref updates (from git push or the refs API)."""
        fire_ref_events(self.state, g.r, repo, changes, sender)
