"""GitHub Apps: the App-manifest flow's code conversion (`POST /app-manifests/{code}/conversions`, no
authentication) and what an App looks like to itself (`GET /app`, `GET /app/installations`, with its JWT),
for `autoresearch-bot app create` and the doctor. Both through PyGithub (its requester and `GithubApp`),
errors translated into `ForgeError`s without secrets."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

import requests
from github import Github, GithubException
from github.GithubApp import GithubApp

from .errors import translate

GITHUB_WEB = "https://github.com"


def api_url(github_url: str) -> str:
    """The REST API under a GitHub web URL: github.com -> api.github.com, GHES and the sandbox -> /api/v3."""
    url = github_url.rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {github_url!r}")
    if parts.hostname in ("github.com", "www.github.com"):
        return "https://api.github.com"
    return url + "/api/v3"


@dataclass(frozen=True)
class AppCredentials:
    """What the manifest conversion hands out once: the App and its secrets (never in repr)."""

    id: int
    slug: str
    name: str
    html_url: str
    owner: str
    permissions: dict[str, str]
    events: list[str]
    client_id: str
    client_secret: str = field(repr=False)
    webhook_secret: str | None = field(repr=False)
    pem: str = field(repr=False)


@dataclass(frozen=True)
class AppInstallation:
    id: int
    account: str
    permissions: dict[str, str]
    repository_selection: str


@dataclass(frozen=True)
class AppInfo:
    """The App as `GET /app` and `GET /app/installations` describe it."""

    id: int
    slug: str
    name: str
    html_url: str
    permissions: dict[str, str]
    events: list[str]
    installations: list[AppInstallation]


def convert_manifest_code(api_base: str, code: str, timeout: float = 30.0) -> AppCredentials:
    """Exchange the manifest flow's `code` for the new App's credentials (once: the code is spent).
    ValueError for a code that cannot be one; ForgeError (status 0: no answer) from GitHub."""
    if not code or not code.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"not a manifest code: {code!r}")
    client = Github(base_url=api_base.rstrip("/"), timeout=int(max(1, timeout)), retry=0)
    try:
        headers, data = client.requester.requestJsonAndCheck("POST", f"/app-manifests/{code}/conversions")
        app = GithubApp(client.requester, headers, data, completed=True)
        return AppCredentials(
            id=int(app.id),
            slug=app.slug,
            name=app.name,
            html_url=app.html_url,
            owner=app.owner.login,
            permissions=dict(app.permissions or {}),
            events=list(app.events or []),
            client_id=app.client_id,
            client_secret=app.client_secret,
            webhook_secret=app.webhook_secret,
            pem=app.pem,
        )
    except (GithubException, requests.RequestException) as exc:
        raise translate(exc, [code]) from None
    finally:
        client.close()


__all__ = ["GITHUB_WEB", "AppCredentials", "AppInfo", "AppInstallation", "api_url", "convert_manifest_code"]
