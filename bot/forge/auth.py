"""How the forge authenticates: a token, or a GitHub App (JWT from its private key, exchanged for
per-installation access tokens that are cached and refreshed before they expire).

`Credentials` owns the PyGithub clients, the installation look-ups and the token cache, and knows every secret
it has seen so that `GitHubForge.redact` can mask them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from github import Auth, Github, GithubIntegration

from .errors import NotFound
from .models import split_repo

log = logging.getLogger("bot.forge")
T = TypeVar("T")


@dataclass(frozen=True)
class TokenAuth:
    """A personal access token (or any token GitHub accepts as `Authorization: token ...`)."""

    token: str

    def __repr__(self) -> str:
        return "TokenAuth(token=***)"


@dataclass(frozen=True)
class AppAuth:
    """A GitHub App: JWT from the private key, exchanged for per-installation access tokens."""

    app_id: int | str
    private_key_pem: str
    installation_id: int | None = None

    def __repr__(self) -> str:
        return (
            f"AppAuth(app_id={self.app_id!r}, private_key_pem=***, installation_id={self.installation_id!r})"
        )


@dataclass
class _InstallationToken:
    token: str
    expires_at: datetime
    client: Github


class Credentials:
    """The clients behind one forge. `client(auth)` builds a PyGithub client; `call(fn)` runs one request
    with the forge's connection retries and error translation; `integration(auth)` builds the App's client."""

    def __init__(
        self,
        auth: TokenAuth | AppAuth,
        client: Callable[[Auth.Auth], Github],
        call: Callable[[Callable[[], Any]], Any],
        integration: Callable[[Auth.AppAuth], GithubIntegration],
        refresh_margin_s: float = 300.0,
    ) -> None:
        self.auth = auth
        self.refresh_margin_s = refresh_margin_s
        self._new_client = client
        self._call = call
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._installations: dict[str, int] = {}  # owner/name -> installation id
        self._tokens: dict[int, _InstallationToken] = {}
        self.token_client: Github | None = None
        self.integration: GithubIntegration | None = None
        if isinstance(auth, TokenAuth):
            if not auth.token:
                raise ValueError("token is empty")
            self._secrets.add(auth.token)
            self.token_client = client(Auth.Token(auth.token))
        else:
            if not auth.private_key_pem.strip():
                raise ValueError("private key is empty")
            self._secrets.add(auth.private_key_pem)
            self.integration = integration(Auth.AppAuth(auth.app_id, auth.private_key_pem))

    def secrets(self) -> list[str]:
        """Every token and key this forge holds or has held."""
        with self._lock:
            return list(self._secrets)

    def app(self) -> GithubIntegration:
        assert self.integration is not None
        return self.integration

    def _known_installation(self, repo: str) -> int | None:
        assert isinstance(self.auth, AppAuth)
        if self.auth.installation_id is not None:
            return int(self.auth.installation_id)
        with self._lock:
            return self._installations.get(repo)

    def _look_up_installation(self, repo: str) -> int:
        owner, name = split_repo(repo)
        inst_id = int(self._call(lambda: self.app().get_repo_installation(owner, name)).id)
        with self._lock:
            self._installations[repo] = inst_id
        return inst_id

    def installation_id(self, repo: str) -> int:
        """The installation whose token serves `repo`; for a repository the App is not installed on (a fork,
        a related project) any installation already known: its token reads public repositories on GitHub,
        and writes there fail with 403/404 as they should."""
        known = self._known_installation(repo)
        if known is not None:
            return known
        try:
            return self._look_up_installation(repo)
        except NotFound:
            with self._lock:
                known_ids = list(self._installations.values())
            if not known_ids:
                raise
            return known_ids[0]

    def repo_installation_id(self, repo: str) -> int | None:
        """The App installation that covers `repo` (None with token auth); NotFound where not installed."""
        if not isinstance(self.auth, AppAuth):
            return None
        known = self._known_installation(repo)
        return known if known is not None else self._look_up_installation(repo)

    def installation(self, repo: str) -> tuple[str, datetime, Github]:
        """(token, expiry, client) for `repo`, minted or refreshed when less than the margin is left."""
        inst_id = self.installation_id(repo)
        with self._lock:
            cached = self._tokens.get(inst_id)
        now = datetime.now(UTC)
        if cached is None or (cached.expires_at - now).total_seconds() < self.refresh_margin_s:
            cached = self._mint(inst_id)
        return cached.token, cached.expires_at, cached.client

    def _mint(self, inst_id: int) -> _InstallationToken:
        access = self._call(lambda: self.app().get_access_token(inst_id))
        expires = access.expires_at
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        entry = _InstallationToken(access.token, expires, self._new_client(Auth.Token(access.token)))
        with self._lock:  # the replaced client may still serve another thread: left to the GC
            self._tokens[inst_id] = entry
            self._secrets.add(access.token)
        log.info("minted installation token for installation %s (expires %s)", inst_id, expires.isoformat())
        return entry

    def account_client(self, account: str) -> Github:
        """A client acting for `account` (an organization or user): the token's own client, or the token of
        the App's installation on that account (GET /orgs/{org}/installation, else /users/{user}/...)."""
        if self.token_client is not None:
            return self.token_client
        try:
            inst = self._call(lambda: self.app().get_org_installation(account))
        except NotFound:
            inst = self._call(lambda: self.app().get_user_installation(account))
        with self._lock:
            cached = self._tokens.get(int(inst.id))
        now = datetime.now(UTC)
        if cached is None or (cached.expires_at - now).total_seconds() < self.refresh_margin_s:
            cached = self._mint(int(inst.id))
        return cached.client

    def invalidate(self, repo: str) -> None:
        """Drop the cached installation token serving `repo` (after a 401)."""
        if not isinstance(self.auth, AppAuth):
            return
        with self._lock:
            inst = self.auth.installation_id or self._installations.get(repo)
            if inst is not None:
                self._tokens.pop(int(inst), None)

    def client_for(self, repo: str) -> Github:
        if self.token_client is not None:
            return self.token_client
        return self.installation(repo)[2]

    def token_for(self, repo: str) -> str:
        if isinstance(self.auth, TokenAuth):
            return self.auth.token
        return self.installation(repo)[0]

    def close(self) -> None:
        """Release HTTP connection pools."""
        if self.token_client is not None:
            self.token_client.close()
        if self.integration is not None:
            self.integration.close()
        with self._lock:
            tokens = list(self._tokens.values())
            self._tokens.clear()
        for entry in tokens:
            entry.client.close()
