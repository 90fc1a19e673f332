"""The page GitHub shows at /settings/apps/new (and /organizations/<org>/settings/apps/new) in the
App-manifest flow: the browser POSTs a form with a `manifest` field (JSON) there; the sandbox creates the App
at once (no confirmation click; the owner is the organization, else `?owner=LOGIN`, else "sandbox-apps"),
pings its webhook and redirects to the manifest's `redirect_url` with `code` and `state`.
`POST /api/v3/app-manifests/{code}/conversions` (api/meta.py) then hands out the App's id, key, webhook
secret and client secret, once, within the hour.

A manifest GitHub would refuse gets a 422 page naming the field."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from flask import Flask, Response, redirect, render_template_string, request

from bot.sandbox.render import Renderer
from bot.sandbox.state import ApiError, SandboxState, now_iso

# GitHub's manifest parameters (docs: "Registering a GitHub App from a manifest")
MANIFEST_KEYS = {
    "name",
    "url",
    "hook_attributes",
    "redirect_url",
    "callback_urls",
    "setup_url",
    "description",
    "public",
    "default_events",
    "default_permissions",
    "request_oauth_on_install",
    "setup_on_update",
}
LEVELS = ("read", "write", "admin")


class ManifestError(ValueError):
    pass


def _url(value: Any, field: str) -> str:
    if not isinstance(value, str) or urllib.parse.urlsplit(value).scheme not in ("http", "https"):
        raise ManifestError(f"{field} must be an http(s) URL, got {value!r}")
    return value


def check_manifest(raw: str) -> dict[str, Any]:
    """The manifest as GitHub reads it; ManifestError names the first field it would refuse."""
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise ManifestError("manifest is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise ManifestError("manifest must be a JSON object")
    unknown = sorted(set(manifest) - MANIFEST_KEYS)
    if unknown:
        raise ManifestError(f"unknown manifest field {unknown[0]!r}")
    _url(manifest.get("url"), "url")
    if manifest.get("redirect_url") is not None:
        _url(manifest["redirect_url"], "redirect_url")
    hook = manifest.get("hook_attributes")
    if hook is not None:
        if not isinstance(hook, dict):
            raise ManifestError("hook_attributes must be an object")
        _url(hook.get("url"), "hook_attributes.url")
    perms = manifest.get("default_permissions") or {}
    if not isinstance(perms, dict):
        raise ManifestError("default_permissions must be an object")
    for name, level in perms.items():
        if level not in LEVELS:
            choices = ", ".join(LEVELS)
            raise ManifestError(f"default_permissions.{name} must be one of {choices}, got {level!r}")
    events = manifest.get("default_events") or []
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise ManifestError("default_events must be a list of event names")
    name = manifest.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 34):
        raise ManifestError("name must be 1 to 34 characters")
    return manifest


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }} - sandbox</title></head>
<body><h1>{{ title }}</h1><p>{{ text }}</p></body></html>"""


def register_manifest_flow(app: Flask, state: SandboxState) -> None:
    def new_app(org: str | None) -> Any:
        try:
            manifest = check_manifest(request.form.get("manifest", ""))
        except ManifestError as exc:
            return Response(
                render_template_string(_PAGE, title="Invalid GitHub App manifest", text=str(exc)),
                status=422,
                content_type="text/html",
            )
        owner = org or request.args.get("owner") or "sandbox-apps"
        with state.lock:
            if org is not None and org not in state.users:
                state.create_user(org, "Organization")
            elif owner not in state.users:
                state.create_user(owner)
            try:
                created, code = state.create_app_from_manifest(manifest, owner)
            except ApiError as exc:  # the name is taken
                return Response(
                    render_template_string(_PAGE, title="Invalid GitHub App manifest", text=exc.message),
                    status=422,
                    content_type="text/html",
                )
            r = Renderer(request.host_url, state)
            for hook in [h for h in state.hooks.values() if h.app_id == created.id]:
                state.sender.ping(  # GitHub pings the new App's webhook
                    hook,
                    {
                        "zen": "Keep it logically awesome.",
                        "hook_id": hook.id,
                        "hook": {
                            "type": "App",
                            "id": hook.id,
                            "name": "web",
                            "active": True,
                            "events": hook.events,
                            "config": {"content_type": "json", "insecure_ssl": "0", "url": hook.url},
                            "updated_at": now_iso(),
                            "created_at": now_iso(),
                            "app_id": created.id,
                        },
                        "sender": r.user(owner),
                    },
                )
        target = manifest.get("redirect_url") or r.app(created)["html_url"]
        query = {"code": code}
        if request.args.get("state") is not None:
            query["state"] = request.args["state"]
        sep = "&" if urllib.parse.urlsplit(target).query else "?"
        return redirect(target + sep + urllib.parse.urlencode(query), code=302)

    @app.post("/settings/apps/new")
    def new_user_app() -> Any:
        return new_app(None)

    @app.post("/organizations/<org>/settings/apps/new")
    def new_org_app(org: str) -> Any:
        return new_app(org)


__all__ = ["ManifestError", "check_manifest", "register_manifest_flow"]
