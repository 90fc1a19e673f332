"""The GitHub REST subset served under /api/v3 (JSON shapes as api.github.com's), one blueprint per resource.

common.py holds what the resources share (authentication, the request context `Api`, pagination, error
bodies); webhooks.py the events fired for ref changes. `make_api` nests every resource's blueprint in the
one "api" blueprint, so the URL map is the one the single-module API had.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from bot.sandbox.api import checks, comments, git, issues, labels, meta, pulls, reactions, repos
from bot.sandbox.api.common import Api, app_from_jwt, invalid, parse_auth
from bot.sandbox.api.webhooks import fire_ref_events, repo_installations
from bot.sandbox.state import SandboxState

RESOURCES = (meta, repos, git, labels, issues, comments, reactions, pulls, checks)


def make_api(state: SandboxState, options: dict[str, Any]) -> Blueprint:
    """Blueprint for /api/v3. `options`: {"checks_require_app": bool}."""
    bp = Blueprint("api", __name__, url_prefix="/api/v3")
    api = Api(state, options)
    for resource in RESOURCES:
        bp.register_blueprint(resource.register(api))
    return bp


__all__ = [
    "Api",
    "app_from_jwt",
    "fire_ref_events",
    "invalid",
    "make_api",
    "parse_auth",
    "repo_installations",
]
