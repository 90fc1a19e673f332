"""In-memory state of the sandbox GitHub: users, repos (real bare git repos on disk), issues, PRs, apps.

All mutation goes through `SandboxState` methods under one lock. Errors raise `ApiError` carrying the HTTP
status GitHub would answer with.
"""

from __future__ import annotations

import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.sandbox import gitrepo
from bot.sandbox.hooks import WebhookSender

PERMISSIONS = ("none", "read", "triage", "write", "maintain", "admin")
# what an App registered through the admin API gets unless it names its own (the bot's manifest's set)
DEFAULT_APP_PERMISSIONS = {
    "issues": "write",
    "pull_requests": "write",
    "contents": "write",
    "checks": "write",
    "metadata": "read",
}
DEFAULT_APP_EVENTS = ["issues", "issue_comment", "pull_request_review", "check_run"]
MANIFEST_CODE_TTL_S = 3600.0  # GitHub: the code of the manifest flow expires after one hour
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


class ApiError(Exception):
    """An error answered to the client in GitHub's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.errors, self.headers = status, message, errors, headers or {}


def now_iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def perm_at_least(have: str, need: str) -> bool:
    return PERMISSIONS.index(have) >= PERMISSIONS.index(need)


@dataclass
class User:
    id: int
    login: str
    type: str = "User"  # "User" | "Bot" | "Organization"
    created_at: str = field(default_factory=now_iso)


@dataclass
class Label:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None


@dataclass
class Reaction:
    id: int
    content: str
    user: str
    created_at: str = field(default_factory=now_iso)


@dataclass
class Comment:
    id: int
    repo: str
    issue_number: int
    body: str
    user: str
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    reactions: list[Reaction] = field(default_factory=list)


@dataclass
class PullInfo:
    head_repo: str  # full name of the repo holding the head branch
    head_ref: str
    base_ref: str
    draft: bool = False
    maintainer_can_modify: bool = False
    base_sha: str = ""


@dataclass
class Review:
    id: int
    user: str
    body: str
    state: str
    commit_id: str | None
    submitted_at: str = field(default_factory=now_iso)


@dataclass
class Issue:
    id: int
    number: int
    title: str
    body: str | None
    user: str
    state: str = "open"
    state_reason: str | None = None
    labels: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    closed_at: str | None = None
    reactions: list[Reaction] = field(default_factory=list)
    comment_ids: list[int] = field(default_factory=list)
    pull: PullInfo | None = None
    reviews: list[Review] = field(default_factory=list)


@dataclass
class CheckRun:
    id: int
    repo: str
    head_sha: str
    name: str
    app_id: int | None
    status: str = "queued"
    conclusion: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    details_url: str | None = None
    external_id: str | None = None
    output: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    path: Path
    default_branch: str = "main"
    description: str | None = None
    parent: str | None = None
    source: str | None = None
    private: bool = False
    created_at: str = field(default_factory=now_iso)
    pushed_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    collaborators: dict[str, str] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    next_number: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class App:
    id: int
    slug: str
    name: str
    owner: str
    public_key_pem: str
    bot_login: str
    created_at: str = field(default_factory=now_iso)
    permissions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_APP_PERMISSIONS))
    events: list[str] = field(default_factory=lambda: list(DEFAULT_APP_EVENTS))
    description: str | None = None
    external_url: str | None = None


@dataclass
class ManifestCode:
    """The one-time code of the App-manifest flow and what its conversion hands out (once)."""

    code: str
    app_id: int
    pem: str
    webhook_secret: str | None
    client_secret: str
    expires_at: float


@dataclass
class Installation:
    id: int
    app_id: int
    account: str
    repos: list[str]
    created_at: str = field(default_factory=now_iso)
    permissions: dict[str, str] = field(default_factory=dict)  # as accepted at install time


@dataclass
class InstallationToken:
    token: str
    installation_id: int
    expires_at: float


@dataclass
class Hook:
    id: int
    url: str
    secret: str | None
    events: list[str]
    active: bool = True
    app_id: int | None = None  # an app's webhook: only events where the app is installed

    def wants(self, event: str) -> bool:
        return self.active and ("*" in self.events or event in self.events)


@dataclass
class RateLimit:
    """A rate limit imposed on a caller (admin API): until `reset_at` (sandbox clock) its REST calls are
    answered as GitHub answers a used-up primary limit (403/429, x-ratelimit-remaining: 0,
    x-ratelimit-reset) or a secondary limit (403/429 with retry-after)."""

    id: int
    login: str | None  # None: every caller with a token
    kind: str  # "primary" | "secondary"
    status: int  # 403 | 429
    reset_at: float
    hits: int = 0


@dataclass
class Caller:
    """Who is making a request."""

    login: str
    installation: Installation | None = None


class SandboxState:
    """All state of one sandbox server; every public method is thread-safe."""

    def __init__(self, data_dir: Path | str, installation_token_ttl_s: float = 3600.0) -> None:
        self.data_dir = Path(data_dir)
        (self.data_dir / "repos").mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.installation_token_ttl_s = installation_token_ttl_s
        self.users: dict[str, User] = {}
        self.tokens: dict[str, str] = {}
        self.repos: dict[str, Repo] = {}
        self.comments: dict[int, Comment] = {}
        self.check_runs: dict[int, CheckRun] = {}
        self.apps: dict[int, App] = {}
        self.installations: dict[int, Installation] = {}
        self.installation_tokens: dict[str, InstallationToken] = {}
        self.hooks: dict[int, Hook] = {}
        self.org_members: dict[str, set[str]] = {}
        self.manifest_codes: dict[str, ManifestCode] = {}
        self._ids: dict[str, int] = {}
        self.rate_limits: list[RateLimit] = []
        self.clock_offset_s = 0.0  # the admin API moves the sandbox's clock (rate-limit resets) forward
        self.sender = WebhookSender(lambda: list(self.hooks.values()))

    # ---- clock and rate limits -------------------------------------------------------------------
    def now(self) -> float:
        """The sandbox's clock (epoch seconds): real time plus what the admin API advanced it by."""
        return time.time() + self.clock_offset_s

    def impose_rate_limit(self, login: str | None, seconds: float, kind: str, status: int) -> RateLimit:
        if kind not in ("primary", "secondary"):
            raise ApiError(422, f"rate limit kind must be primary or secondary, got {kind!r}")
        if status not in (403, 429):
            raise ApiError(422, f"a rate limit answers 403 or 429, not {status}")
        with self.lock:
            limit = RateLimit(self.next_id("rate_limit"), login, kind, status, self.now() + float(seconds))
            self.rate_limits.append(limit)
            return limit

    def rate_limit_for(self, login: str) -> RateLimit | None:
        """The limit `login`'s requests hit now (the latest imposed that has not reset), or None."""
        with self.lock:
            now = self.now()
            live = [r for r in self.rate_limits if r.reset_at > now and r.login in (None, login)]
            return live[-1] if live else None

    # ---- ids -----------------------------------------------------------------------------------
    def next_id(self, kind: str) -> int:
        with self.lock:
            base = {"user": 1000, "repo": 5000, "app": 100, "installation": 2000}.get(kind, 1)
            self._ids[kind] = self._ids.get(kind, base) + 1
            return self._ids[kind]

    # ---- users & auth ----------------------------------------------------------------------------
    def create_user(self, login: str, type: str = "User", token: str | None = None) -> tuple[User, str]:
        """Create (or fetch) a user and issue a personal token for it."""
        with self.lock:
            user = self.users.get(login)
            if user is None:
                if type not in ("User", "Bot", "Organization"):
                    raise ApiError(422, f"invalid user type {type!r}")
                user = User(self.next_id("user"), login, type)
                self.users[login] = user
            tok = token or "ghp_" + secrets.token_hex(18)
            self.tokens[tok] = login
            return user, tok

    def add_org_member(self, org: str, login: str) -> None:
        with self.lock:
            if self.user(org).type != "Organization":
                raise ApiError(422, f"{org} is not an organization")
            if login not in self.users:
                self.create_user(login)
            self.org_members.setdefault(org, set()).add(login)

    def is_org_member(self, org: str, login: str) -> bool:
        with self.lock:
            return login in self.org_members.get(org, set())

    def user(self, login: str) -> User:
        with self.lock:
            if login not in self.users:
                raise ApiError(404, "Not Found")
            return self.users[login]

    def authenticate(self, token: str) -> Caller | None:
        """Map a personal or installation token to a caller; None when unknown or expired."""
        with self.lock:
            if token in self.tokens:
                return Caller(self.tokens[token])
            itok = self.installation_tokens.get(token)
            if itok is None or itok.expires_at <= time.time():
                return None
            inst = self.installations[itok.installation_id]
            return Caller(self.apps[inst.app_id].bot_login, inst)

    def permission(self, repo: Repo, caller: Caller | None) -> str:
        if caller is None:
            return "none" if repo.private else "read"
        if caller.installation is not None:
            return "write" if repo.full_name in caller.installation.repos else "read"
        if caller.login == repo.owner or caller.login in self.org_members.get(repo.owner, set()):
            return "admin"  # an organization's members are its owners here (no teams or member roles)
        return repo.collaborators.get(caller.login, "none" if repo.private else "read")

    def require(self, repo: Repo, caller: Caller | None, need: str) -> None:
        if caller is None:
            raise ApiError(401, "Requires authentication")
        have = self.permission(repo, caller)
        if not perm_at_least(have, need):
            msg = (
                "Resource not accessible by integration"
                if caller.installation
                else "Must have push access to this repository"
                if need == "write"
                else "Must have admin rights to Repository."
            )
            raise ApiError(403, msg)

    # ---- repos -------------------------------------------------------------------------------------
    def repo(self, owner: str, name: str) -> Repo:
        with self.lock:
            repo = self.repos.get(f"{owner}/{name}".lower())
            if repo is None:
                raise ApiError(404, "Not Found")
            return repo

    def create_repo(
        self,
        owner: str,
        name: str,
        source_path: str | None = None,
        default_branch: str | None = None,
        description: str | None = None,
        auto_init: bool = False,
        private: bool = False,
    ) -> Repo:
        """Create a repo owned by `owner` (created if missing), optionally importing a local git repo."""
        with self.lock:
            if f"{owner}/{name}".lower() in self.repos:
                raise ApiError(
                    422,
                    "Repository creation failed.",
                    [
                        {
                            "resource": "Repository",
                            "code": "custom",
                            "field": "name",
                            "message": "name already exists on this account",
                        }
                    ],
                )
            if owner not in self.users:
                self.create_user(owner)
            path = self.data_dir / "repos" / owner / f"{name}.git"
            branch = default_branch or "main"
            gitrepo.init_bare(path, branch)
            if source_path:
                head = gitrepo.import_local(path, Path(source_path))
                branch = default_branch or head or "main"
                gitrepo.git(path, "symbolic-ref", "HEAD", f"refs/heads/{branch}")
            elif auto_init:
                gitrepo.seed_readme(path, branch, f"# {name}\n{description or ''}\n")
            repo = Repo(self.next_id("repo"), owner, name, path, branch, description, private=private)
            self.repos[repo.full_name.lower()] = repo
            return repo

    def fork(
        self, repo: Repo, owner: str, name: str | None = None, default_branch_only: bool = False
    ) -> Repo:
        """Fork `repo` into `owner`'s account (returns the existing fork when there is one). The fork joins
        the installations on `owner`'s account (as an App installed on all of an account's repositories)."""
        with self.lock:
            for other in self.repos.values():
                if other.owner == owner and other.parent == repo.full_name:
                    return other
            if owner not in self.users:
                self.create_user(owner)
            name = name or repo.name
            if f"{owner}/{name}".lower() in self.repos:
                raise ApiError(422, f"{owner}/{name} already exists")
            path = self.data_dir / "repos" / owner / f"{name}.git"
            gitrepo.clone_bare(repo.path, path)
            if default_branch_only:
                gitrepo.keep_only_branch(path, repo.default_branch)
            fork = Repo(
                self.next_id("repo"),
                owner,
                name,
                path,
                repo.default_branch,
                repo.description,
                parent=repo.full_name,
                source=repo.source or repo.full_name,
            )
            self.repos[fork.full_name.lower()] = fork
            for inst in self.installations.values():
                if inst.account == owner and fork.full_name not in inst.repos:
                    inst.repos = sorted([*inst.repos, fork.full_name])
            return fork

    def delete_repo(self, repo: Repo) -> None:
        """Delete a repository: its git data, issues and pull requests (forks of it stay, as on GitHub)."""
        with self.lock:
            self.repos.pop(repo.full_name.lower(), None)
            for inst in self.installations.values():
                if repo.full_name in inst.repos:
                    inst.repos = [r for r in inst.repos if r != repo.full_name]
            shutil.rmtree(repo.path, ignore_errors=True)

    def head_repo(self, pull: PullInfo) -> Repo | None:
        """The repository holding a pull request's head branch; None once it was deleted."""
        with self.lock:
            return self.repos.get(pull.head_repo.lower())

    def network(self, repo: Repo) -> list[Repo]:
        root = repo.source or repo.full_name
        with self.lock:
            return [r for r in self.repos.values() if r.full_name == root or r.source == root]

    def forks_of(self, repo: Repo) -> list[Repo]:
        with self.lock:
            return sorted((r for r in self.repos.values() if r.parent == repo.full_name), key=lambda r: r.id)

    def repo_in_network(self, repo: Repo, owner: str) -> Repo | None:
        if owner.lower() == repo.owner.lower():
            return repo
        for r in self.network(repo):
            if r.owner.lower() == owner.lower():
                return r
        return None

    def set_collaborator(self, repo: Repo, login: str, permission: str) -> None:
        if permission == "pull":
            permission = "read"
        if permission == "push":
            permission = "write"
        if permission not in PERMISSIONS:
            raise ApiError(422, f"invalid permission {permission!r}")
        with self.lock:
            if login not in self.users:
                self.create_user(login)
            repo.collaborators[login] = permission

    # ---- labels ------------------------------------------------------------------------------------
    def ensure_label(
        self, repo: Repo, name: str, color: str = "ededed", description: str | None = None
    ) -> Label:
        with self.lock:
            for lab in repo.labels.values():
                if lab.name.lower() == name.lower():
                    return lab
            lab = Label(self.next_id("label"), name, color, description)
            repo.labels[name] = lab
            return lab

    def find_label(self, repo: Repo, name: str) -> Label | None:
        for lab in repo.labels.values():
            if lab.name.lower() == name.lower():
                return lab
        return None

    # ---- issues & pulls --------------------------------------------------------------------------
    def issue(self, repo: Repo, number: int) -> Issue:
        with self.lock:
            if number not in repo.issues:
                raise ApiError(404, "Not Found")
            return repo.issues[number]

    def create_issue(
        self,
        repo: Repo,
        user: str,
        title: str,
        body: str | None,
        labels: list[str] | None = None,
        pull: PullInfo | None = None,
    ) -> Issue:
        if not title:
            raise ApiError(
                422, "Validation Failed", [{"resource": "Issue", "code": "missing_field", "field": "title"}]
            )
        with self.lock:
            number = repo.next_number
            repo.next_number += 1
            issue = Issue(self.next_id("issue"), number, title, body, user, pull=pull)
            for name in labels or []:
                issue.labels.append(self.ensure_label(repo, name).name)
            repo.issues[number] = issue
            return issue

    def add_comment(self, repo: Repo, issue: Issue, user: str, body: str) -> Comment:
        if not body:
            raise ApiError(
                422,
                "Validation Failed",
                [{"resource": "IssueComment", "code": "missing_field", "field": "body"}],
            )
        with self.lock:
            c = Comment(self.next_id("comment"), repo.full_name, issue.number, body, user)
            self.comments[c.id] = c
            issue.comment_ids.append(c.id)
            issue.updated_at = now_iso()
            return c

    def comment(self, repo: Repo, comment_id: int) -> Comment:
        with self.lock:
            c = self.comments.get(comment_id)
            if c is None or c.repo != repo.full_name:
                raise ApiError(404, "Not Found")
            return c

    def react(self, target: list[Reaction], user: str, content: str) -> tuple[Reaction, bool]:
        """Add a reaction; returns (reaction, created). An identical one by the same user is returned."""
        if content not in REACTIONS:
            raise ApiError(
                422, "Validation Failed", [{"resource": "Reaction", "code": "invalid", "field": "content"}]
            )
        with self.lock:
            for r in target:
                if r.user == user and r.content == content:
                    return r, False
            r = Reaction(self.next_id("reaction"), content, user)
            target.append(r)
            return r, True

    def open_pull_for(self, repo: Repo, head_repo: Repo, head_ref: str, base_ref: str) -> Issue | None:
        for iss in repo.issues.values():
            p = iss.pull
            if (
                p
                and iss.state == "open"
                and p.head_repo == head_repo.full_name
                and p.head_ref == head_ref
                and p.base_ref == base_ref
            ):
                return iss
        return None

    # ---- check runs --------------------------------------------------------------------------------
    def create_check_run(
        self, repo: Repo, app_id: int | None, name: str, head_sha: str, **fields: Any
    ) -> CheckRun:
        if not name or not head_sha:
            raise ApiError(
                422,
                "Validation Failed",
                [
                    {
                        "resource": "CheckRun",
                        "code": "missing_field",
                        "field": "name" if not name else "head_sha",
                    }
                ],
            )
        with self.lock:
            sha = gitrepo.resolve(repo.path, head_sha)
            if sha is None or sha != head_sha:
                raise ApiError(422, "No commit found for SHA: " + head_sha)
            run = CheckRun(self.next_id("check_run"), repo.full_name, sha, name, app_id)
            self.update_check_run(run, **fields)
            self.check_runs[run.id] = run
            return run

    def update_check_run(self, run: CheckRun, **fields: Any) -> None:
        with self.lock:
            for key in (
                "name",
                "status",
                "conclusion",
                "started_at",
                "completed_at",
                "details_url",
                "external_id",
            ):
                if fields.get(key) is not None:
                    setattr(run, key, fields[key])
            if fields.get("output"):
                run.output = {**run.output, **fields["output"]}
            run.updated_at = now_iso()
            if fields.get("conclusion") is not None:
                run.status = "completed"
            if run.status == "completed":
                run.completed_at = run.completed_at or now_iso()
                if run.conclusion is None:
                    raise ApiError(422, "Validation Failed: conclusion is required when status is completed")
            if run.status in ("in_progress", "completed") and run.started_at is None:
                run.started_at = now_iso()

    # ---- apps ----------------------------------------------------------------------------------------
    def register_app(
        self,
        slug: str,
        public_key_pem: str,
        app_id: int | None = None,
        name: str | None = None,
        owner: str = "sandbox-apps",
        permissions: dict[str, str] | None = None,
        events: list[str] | None = None,
    ) -> App:
        with self.lock:
            app_id = app_id or self.next_id("app")
            if app_id in self.apps:
                raise ApiError(422, f"app {app_id} already registered")
            if owner not in self.users:
                self.create_user(owner, "Organization")
            bot_login = f"{slug}[bot]"
            if bot_login not in self.users:
                self.users[bot_login] = User(self.next_id("user"), bot_login, "Bot")
            app = App(app_id, slug, name or slug, owner, public_key_pem, bot_login)
            if permissions is not None:
                app.permissions = dict(permissions)
            if events is not None:
                app.events = list(events)
            self.apps[app_id] = app
            return app

    def update_app(
        self, app_id: int, permissions: dict[str, str] | None = None, events: list[str] | None = None
    ) -> App:
        """Change an App's permissions/events as its settings page does: installations keep the permissions
        they accepted until their owner accepts the new ones (`accept_permissions`)."""
        with self.lock:
            app = self.apps.get(app_id)
            if app is None:
                raise ApiError(404, "Not Found")
            if permissions is not None:
                app.permissions = dict(permissions)
            if events is not None:
                app.events = list(events)
            return app

    def accept_permissions(self, installation_id: int) -> Installation:
        with self.lock:
            inst = self.installations.get(installation_id)
            if inst is None:
                raise ApiError(404, "Not Found")
            inst.permissions = dict(self.apps[inst.app_id].permissions)
            return inst

    def create_app_from_manifest(self, manifest: dict[str, Any], owner: str) -> tuple[App, str]:
        """Register the App a (validated) manifest describes, owned by `owner`, with a fresh key pair, a
        webhook secret and its hook; (app, the one-time code its conversion is fetched with)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(  # GitHub hands out PKCS#1 ("BEGIN RSA PRIVATE KEY")
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
        public = (
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        name = str(manifest.get("name") or f"{owner}-app")
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "app"
        hook = manifest.get("hook_attributes") or {}
        with self.lock:
            if any(a.slug == slug for a in self.apps.values()):  # App names are unique on a GitHub
                raise ApiError(422, f"Name {name!r} is already in use")
            app = self.register_app(
                slug,
                public,
                name=name,
                owner=owner,
                permissions=dict(manifest.get("default_permissions") or {}),
                events=list(manifest.get("default_events") or []),
            )
            app.description = manifest.get("description")
            app.external_url = manifest.get("url")
            secret = secrets.token_hex(20) if hook.get("url") else None
            if hook.get("url") and hook.get("active", True):
                self.add_hook(hook["url"], secret, app.events or ["*"], app.id)
            code = secrets.token_hex(10)
            self.manifest_codes[code] = ManifestCode(
                code, app.id, pem, secret, secrets.token_hex(20), time.time() + MANIFEST_CODE_TTL_S
            )
            return app, code

    def convert_manifest_code(self, code: str) -> tuple[App, ManifestCode]:
        """What `POST /app-manifests/{code}/conversions` returns; a code works once, within the hour."""
        with self.lock:
            entry = self.manifest_codes.pop(code, None)
            if entry is None or entry.expires_at < time.time():
                raise ApiError(404, "Not Found")
            return self.apps[entry.app_id], entry

    def install_app(self, app_id: int, account: str, repos: list[str]) -> Installation:
        with self.lock:
            if app_id not in self.apps:
                raise ApiError(404, "Not Found")
            for full in repos:
                owner, name = full.split("/", 1)
                self.repo(owner, name)
            for inst in self.installations.values():
                if inst.app_id == app_id and inst.account == account:
                    inst.repos = sorted(
                        set(inst.repos) | {self.repo(*r.split("/", 1)).full_name for r in repos}
                    )
                    return inst
            if account not in self.users:
                self.create_user(account)
            inst = Installation(
                self.next_id("installation"),
                app_id,
                account,
                [self.repo(*r.split("/", 1)).full_name for r in repos],
                permissions=dict(self.apps[app_id].permissions),
            )
            self.installations[inst.id] = inst
            return inst

    def installation_for_repo(self, app_id: int, repo: Repo) -> Installation:
        with self.lock:
            for inst in self.installations.values():
                if inst.app_id == app_id and repo.full_name in inst.repos:
                    return inst
        raise ApiError(404, "Not Found")

    def installations_for_repo(self, repo: Repo) -> list[Installation]:
        with self.lock:
            return [i for i in self.installations.values() if repo.full_name in i.repos]

    def issue_installation_token(self, installation_id: int) -> InstallationToken:
        with self.lock:
            if installation_id not in self.installations:
                raise ApiError(404, "Not Found")
            tok = InstallationToken(
                "ghs_" + secrets.token_hex(18), installation_id, time.time() + self.installation_token_ttl_s
            )
            self.installation_tokens[tok.token] = tok
            return tok

    # ---- hooks ---------------------------------------------------------------------------------------
    def add_hook(
        self, url: str, secret: str | None = None, events: list[str] | None = None, app_id: int | None = None
    ) -> Hook:
        with self.lock:
            if app_id is not None and app_id not in self.apps:
                raise ApiError(422, f"unknown app {app_id}")
            hook = Hook(self.next_id("hook"), url, secret, events or ["*"], app_id=app_id)
            self.hooks[hook.id] = hook
            return hook
