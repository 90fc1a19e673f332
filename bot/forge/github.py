"""`GitHubForge`: the `Forge` over the GitHub REST API (PyGithub) for github.com, GitHub Enterprise Server
(``https://host/api/v3``) or the local sandbox, chosen by ``base_url``; and `forge_from_settings`.

Repositories are named ``"owner/name"``. Errors surface as `ForgeError` subclasses with short messages
that never contain a token.
"""

from __future__ import annotations

import base64
import itertools
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
import tenacity
from github import Auth, Github, GithubException, GithubIntegration, GithubRetry
from github.GithubException import RateLimitExceededExceedsMaxWait

from .apps import AppInfo, AppInstallation
from .auth import AppAuth, Credentials, TokenAuth
from .errors import ForgeError, NotFound, PermissionDenied, Unprocessable, redact, translate
from .models import (
    CHECK_CONCLUSIONS,
    CHECK_STATUSES,
    DEFAULT_BASE_URL,
    PERMISSIONS,
    REACTIONS,
    WRITE_PERMISSIONS,
    Comment,
    CommitInfo,
    CompareResult,
    FileChange,
    Issue,
    IssueSummary,
    PullRequest,
    PullSummary,
    RetryPolicy,
    split_repo,
)

T = TypeVar("T")


class _BoundedRetry(GithubRetry):
    """GithubRetry that also retries 429 and refuses Retry-After waits longer than the cap."""

    def increment(
        self, method: Any = None, url: Any = None, response: Any = None, *args: Any, **kw: Any
    ) -> Any:
        header = response.headers.get("Retry-After") if response is not None else None
        if header and self.max_rate_limit_wait is not None:
            try:
                wait = self.parse_retry_after(header)
            except Exception:  # malformed header: let urllib3 decide
                wait = None
            if wait is not None and wait > self.max_rate_limit_wait:
                message = (
                    f"rate limited: Retry-After {wait:.0f}s exceeds the {self.max_rate_limit_wait:.0f}s cap"
                )
                raise RateLimitExceededExceedsMaxWait(
                    response.status, {"message": message}, dict(response.headers), wait=wait
                )
        return super().increment(method, url, response, *args, **kw)


def make_retry(policy: RetryPolicy) -> GithubRetry:
    """The urllib3 retry object PyGithub uses for every request."""
    return _BoundedRetry(
        total=policy.total,
        backoff_factor=policy.backoff_factor,
        backoff_max=policy.backoff_max_s,
        status_forcelist=list(range(500, 600)) + [429],
        secondary_rate_wait=min(policy.secondary_rate_wait_s, policy.max_wait_s),
        max_rate_limit_wait=policy.max_wait_s,
        raise_on_status=False,
        respect_retry_after_header=True,
    )


# --------------------------------------------------------------------------- interface


def _ref_path(ref: str) -> str:
    return urllib.parse.quote(ref, safe="/")


# --------------------------------------------------------------------------- implementation


class GitHubForge:
    """`Forge` over the GitHub REST API (PyGithub), token or GitHub App authentication."""

    def __init__(
        self,
        auth: TokenAuth | AppAuth,
        base_url: str = DEFAULT_BASE_URL,
        retry: RetryPolicy | None = None,
        timeout: float = 15.0,
        min_interval_s: float | None = 0.25,
        refresh_margin_s: float = 300.0,
        user_agent: str = "autoresearch-bot",
        min_write_interval_s: float | None = None,
    ) -> None:
        """`min_interval_s`/`min_write_interval_s`: PyGithub's throttle between requests/writes (GitHub
        asks for >= 1 s between writes; None for writes means max(1.0, min_interval_s) unless
        min_interval_s is 0, as for the local sandbox)."""
        if not isinstance(auth, (TokenAuth, AppAuth)):
            raise TypeError("auth must be TokenAuth or AppAuth")
        self.auth = auth
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.min_interval_s = min_interval_s
        if min_write_interval_s is None:
            min_write_interval_s = 0.0 if not min_interval_s else max(1.0, min_interval_s)
        self.min_write_interval_s = min_write_interval_s
        self.refresh_margin_s = refresh_margin_s
        self.user_agent = user_agent
        self._login: str | None = None
        self._identity: tuple[str, str] | None = None
        self._html_urls: dict[str, str] = {}
        self._creds = Credentials(auth, self._client, self._call, self._integration, refresh_margin_s)

    # ----------------------------------------------------------------- clients and auth

    def _client(self, auth: Auth.Auth) -> Github:
        return Github(
            auth=auth,
            base_url=self.base_url,
            timeout=int(max(1, self.timeout)),
            user_agent=self.user_agent,
            retry=make_retry(self.retry),
            seconds_between_requests=self.min_interval_s,
            seconds_between_writes=self.min_write_interval_s,
            lazy=True,
        )

    def _integration(self, auth: Auth.AppAuth) -> GithubIntegration:
        return GithubIntegration(
            auth=auth,
            base_url=self.base_url,
            timeout=int(max(1, self.timeout)),
            user_agent=self.user_agent,
            retry=make_retry(self.retry),
        )

    def redact(self, text: str) -> str:
        """Mask every token this forge knows plus anything that looks like a token."""
        return redact(text, self._creds.secrets())

    def _error(self, exc: Exception) -> ForgeError:
        """Translate a PyGithub/requests exception into a short, token-free ForgeError."""
        return translate(exc, self._creds.secrets())

    def _call(self, fn: Callable[[], T], idempotent: bool = True) -> T:
        """Run one adapter operation: tenacity for connection errors, then error translation."""
        transient: tuple[type[BaseException], ...] = (
            (requests.ConnectionError, requests.Timeout) if idempotent else (requests.ConnectTimeout,)
        )
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(transient),
            stop=tenacity.stop_after_attempt(max(1, self.retry.connection_attempts)),
            wait=tenacity.wait_exponential(
                multiplier=self.retry.backoff_factor, max=self.retry.backoff_max_s
            ),
            reraise=True,
        )
        try:
            return retrying(fn)
        except (GithubException, requests.RequestException) as exc:
            raise self._error(exc) from None

    def repo_installation_id(self, repo: str) -> int | None:
        """The App installation that covers `repo` (None with token auth, which has no installations).

        Unlike the token look-up, no fallback: NotFound when the App is not installed on `repo`. The webhook's
        installation.id must equal this before the bot acts on the repository."""
        return self._creds.repo_installation_id(repo)

    def installation_token(self, repo: str) -> tuple[str, datetime]:
        """The cached installation token for `repo` (minted or refreshed when < margin left)."""
        return self._creds.installation(repo)[:2]

    def _repo_op(self, repo: str, op: Callable[[Any], T], idempotent: bool = True) -> T:
        """Run `op(pygithub_repo)`; with App auth, a 401 drops the cached token and retries once."""
        split_repo(repo)
        try:
            return self._call(lambda: op(self._creds.client_for(repo).get_repo(repo)), idempotent)
        except PermissionDenied as exc:
            if exc.status != 401 or not isinstance(self.auth, AppAuth):
                raise
            self._creds.invalidate(repo)
            return self._call(lambda: op(self._creds.client_for(repo).get_repo(repo)), idempotent)

    def _raw(self, repo: str, verb: str, path: str, body: dict | None = None, idempotent: bool = True) -> Any:
        """A REST call under /repos/{repo} through PyGithub's requester (same auth, retries, errors)."""

        def op(r: Any) -> Any:
            _, data = r.requester.requestJsonAndCheck(verb, f"{r.url}{path}", input=body)
            return data

        return self._repo_op(repo, op, idempotent)

    def app_info(self) -> AppInfo:
        """The App (its permissions and events) and its installations, with the App's JWT: a key that is
        not the App's gives PermissionDenied (401). Token auth has no App: ForgeError."""
        if not isinstance(self.auth, AppAuth):
            raise ForgeError(0, "token auth: no GitHub App to describe")
        integration = self._creds.app()
        app = self._call(integration.get_app)
        insts = self._call(lambda: list(integration.get_installations()))
        return AppInfo(
            id=int(app.id),
            slug=app.slug,
            name=app.name,
            html_url=app.html_url,
            permissions=dict(app.permissions or {}),
            events=list(app.events or []),
            installations=[
                AppInstallation(
                    int(i.id),
                    i.account.login if i.account is not None else "",
                    dict(i.permissions or {}),
                    str(i.repository_selection or ""),
                )
                for i in insts
            ],
        )

    # ----------------------------------------------------------------- identity and permissions

    def bot_login(self) -> str:
        """The login the bot posts as: the token's user, or '<slug>[bot]' for an App."""
        if self._login is None:
            if self._creds.token_client is not None:
                client = self._creds.token_client
                login = self._call(lambda: client.get_user().login)
            else:
                slug = self._call(lambda: self._creds.app().get_app().slug)
                login = f"{slug}[bot]"
            self._login = login
        return self._login

    def commit_identity(self, repo: str) -> tuple[str, str]:
        """(name, email) of the bot's commits: GitHub's noreply address of the account the bot acts as, so
        GitHub links the commits to it. An App: `<slug>[bot]` and `<bot user id>+<slug>[bot]@users.noreply.
        <host>` (the id of the App's bot account, GET /users/<slug>[bot]; the App's id when that account
        cannot be read); a token: its user's `<id>+<login>@users.noreply.<host>`. <host> is the web host of
        the account's `html_url` (github.com, a GHE.com subdomain, a GitHub Enterprise Server host)."""
        if self._identity is None:
            if self._creds.token_client is not None:
                client = self._creds.token_client
                me = self._call(lambda: client.get_user())
                login, uid, html = me.login, int(me.id), me.html_url
            else:
                app = self._call(lambda: self._creds.app().get_app())
                login = f"{app.slug}[bot]"
                uid, html = int(app.id), app.html_url
                try:
                    bot = self._call(lambda: self._creds.client_for(repo).get_user(login))
                    uid, html = int(bot.id), bot.html_url or html
                except ForgeError:  # the App's id still names the App
                    pass
            host = urllib.parse.urlsplit(html or "").hostname or "github.com"
            self._identity = (login, f"{uid}+{login}@users.noreply.{host}")
        return self._identity

    def repo_html_url(self, repo: str) -> str:
        """The repository's web address as the API gives it (`html_url`): right for github.com, GHE.com and
        GitHub Enterprise Server alike, where deriving it from the API's base URL is not."""
        if repo not in self._html_urls:
            self._html_urls[repo] = str(self._raw(repo, "GET", "")["html_url"]).rstrip("/")
        return self._html_urls[repo]

    def permission(self, repo: str, user: str) -> str:
        """The user's effective role on the repo; 'none' when unknown."""
        quoted = urllib.parse.quote(user, safe="")
        try:
            data = self._raw(repo, "GET", f"/collaborators/{quoted}/permission")
        except NotFound:
            return "none"
        role = str(data.get("role_name") or "")
        if role in PERMISSIONS:
            return role
        perm = str(data.get("permission") or "none")
        return perm if perm in PERMISSIONS else "none"

    def has_write(self, repo: str, user: str) -> bool:
        return self.permission(repo, user) in WRITE_PERMISSIONS

    # ----------------------------------------------------------------- issues and comments

    def get_issue(self, repo: str, number: int) -> Issue:
        data = self._raw(repo, "GET", f"/issues/{int(number)}")
        return Issue(
            number=int(data["number"]),
            title=data.get("title") or "",
            body=data.get("body") or "",
            labels=[lb["name"] if isinstance(lb, dict) else str(lb) for lb in data.get("labels") or []],
            state=data.get("state") or "",
            user=(data.get("user") or {}).get("login", ""),
            html_url=data.get("html_url") or "",
            is_pull=bool(data.get("pull_request")),
        )

    @staticmethod
    def _comment(c: Any) -> Comment:
        return Comment(
            id=int(c.id), body=c.body or "", user=c.user.login if c.user else "", html_url=c.html_url
        )

    def list_issue_comments(self, repo: str, number: int) -> list[Comment]:
        return self._repo_op(
            repo, lambda r: [self._comment(c) for c in r.get_issue(int(number)).get_comments()]
        )

    def create_comment(self, repo: str, number: int, body: str) -> Comment:
        return self._repo_op(
            repo, lambda r: self._comment(r.get_issue(int(number)).create_comment(body)), idempotent=False
        )

    def edit_comment(self, repo: str, comment_id: int, body: str) -> Comment:
        data = self._raw(repo, "PATCH", f"/issues/comments/{int(comment_id)}", {"body": body})
        return Comment(
            int(data["id"]),
            data.get("body") or "",
            (data.get("user") or {}).get("login", ""),
            data.get("html_url") or "",
        )

    def upsert_marked_comment(self, repo: str, number: int, marker: str, body: str) -> Comment:
        """Keep exactly one bot comment carrying `marker`: edit it when the body changed, else create it."""
        if not marker.strip():
            raise ValueError("marker is empty")
        if marker not in body:
            body = f"{marker}\n{body}"
        me = self.bot_login()
        for c in self.list_issue_comments(repo, number):
            if c.user == me and marker in c.body:
                return c if c.body == body else self.edit_comment(repo, c.id, body)
        return self.create_comment(repo, number, body)

    def react_issue(self, repo: str, number: int, content: str) -> None:
        self._check_reaction(content)
        self._raw(repo, "POST", f"/issues/{int(number)}/reactions", {"content": content})

    def react_comment(self, repo: str, comment_id: int, content: str) -> None:
        self._check_reaction(content)
        self._raw(repo, "POST", f"/issues/comments/{int(comment_id)}/reactions", {"content": content})

    @staticmethod
    def _check_reaction(content: str) -> None:
        if content not in REACTIONS:
            raise ValueError(f"unknown reaction {content!r}; expected one of {sorted(REACTIONS)}")

    # ----------------------------------------------------------------- labels

    def add_labels(self, repo: str, number: int, labels: list[str]) -> None:
        if labels:
            self._raw(repo, "POST", f"/issues/{int(number)}/labels", {"labels": list(labels)})

    def remove_label(self, repo: str, number: int, label: str) -> None:
        try:
            self._raw(repo, "DELETE", f"/issues/{int(number)}/labels/{urllib.parse.quote(label, safe='')}")
        except NotFound:
            pass

    def ensure_label(self, repo: str, name: str, color: str, description: str = "") -> None:
        """Create the label, or fix its color/description when they differ."""
        color = color.lstrip("#").lower()
        quoted = urllib.parse.quote(name, safe="")
        try:
            data = self._raw(repo, "GET", f"/labels/{quoted}")
        except NotFound:
            body = {"name": name, "color": color, "description": description}
            try:
                self._raw(repo, "POST", "/labels", body, idempotent=False)
            except Unprocessable:  # created concurrently
                pass
            return
        if (data.get("color") or "").lower() != color or (data.get("description") or "") != description:
            self._raw(repo, "PATCH", f"/labels/{quoted}", {"color": color, "description": description})

    # ----------------------------------------------------------------- contents and refs

    def get_file(self, repo: str, path: str, ref: str | None = None) -> str | None:
        """Text of a file at `ref` (default branch when None); None when it does not exist."""

        def op(r: Any) -> str | None:
            kwargs = {"ref": ref} if ref else {}
            content = r.get_contents(path.lstrip("/"), **kwargs)
            if isinstance(content, list):
                raise ForgeError(0, f"{path} is a directory")
            if content.encoding == "base64":
                return content.decoded_content.decode("utf-8", errors="replace")
            blob = r.get_git_blob(content.sha)  # large files come without inline content
            return base64.b64decode(blob.content).decode("utf-8", errors="replace")

        try:
            return self._repo_op(repo, op)
        except NotFound:
            return None

    def default_branch(self, repo: str) -> str:
        return str(self._raw(repo, "GET", "")["default_branch"])

    def branch_sha(self, repo: str, branch: str) -> str | None:
        try:
            data = self._raw(repo, "GET", f"/git/ref/heads/{_ref_path(branch)}")
        except NotFound:
            return None
        if isinstance(data, list):  # some servers answer prefix matches with a list
            data = next((d for d in data if d.get("ref") == f"refs/heads/{branch}"), None)
            if data is None:
                return None
        return str(data["object"]["sha"])

    def create_branch(self, repo: str, name: str, sha: str) -> None:
        """Create refs/heads/name at sha; an existing branch at the same sha is fine."""
        try:
            self._raw(repo, "POST", "/git/refs", {"ref": f"refs/heads/{name}", "sha": sha}, idempotent=False)
        except Unprocessable as exc:
            current = self.branch_sha(repo, name)
            if current == sha:
                return
            if current is None:
                raise
            raise Unprocessable(422, f"branch {name} exists at {current[:12]}, not {sha[:12]}") from exc

    def update_branch(self, repo: str, name: str, sha: str, force: bool = False) -> None:
        self._raw(repo, "PATCH", f"/git/refs/heads/{_ref_path(name)}", {"sha": sha, "force": bool(force)})

    # ----------------------------------------------------------------- forks and comparisons

    def list_forks(self, repo: str, limit: int = 30) -> list[str]:
        return self._repo_op(
            repo, lambda r: [f.full_name for f in itertools.islice(r.get_forks(), max(0, limit))]
        )

    def ensure_fork(self, repo: str, owner: str | None = None) -> str:
        """The bot's fork of `repo` ("owner/name"): found, or created (POST /repos/{repo}/forks) when missing,
        e.g. after someone deleted it. `owner`: an organization to fork into; None: the bot's own account
        (token auth: the token's user; a GitHub App has no account of its own and needs an organization).
        A repository of that name that is not a fork of `repo` is an `Unprocessable` error."""
        base_owner, name = split_repo(repo)
        if owner is None and isinstance(self.auth, AppAuth):
            raise ForgeError(
                0,
                "a GitHub App has no account of its own to fork into; set publish.fork_owner to an "
                "organization where the App is installed on all repositories",
            )
        target_owner = owner or self.bot_login()
        if target_owner.lower() == base_owner.lower():
            raise ForgeError(0, f"{repo} cannot be forked into its own owner's account ({target_owner})")
        found = self._fork_named(repo, f"{target_owner}/{name}")
        if found:
            return found
        body: dict[str, Any] = {"default_branch_only": True}
        if owner is not None and owner.lower() != self.bot_login().lower():
            body["organization"] = owner
        # with App auth the fork is made by the App's installation on the owning organization
        client = self._call(lambda: self._creds.account_client(target_owner))

        def fork() -> Any:
            _, data = client.requester.requestJsonAndCheck(
                "POST", f"{self.base_url}/repos/{repo}/forks", input=body
            )
            return data

        data = self._call(fork, idempotent=False)
        return str(data["full_name"])

    def _fork_named(self, repo: str, candidate: str) -> str | None:
        """`candidate`'s full name when it exists and is a fork of `repo`; None when it does not exist."""
        try:
            data = self._raw(candidate, "GET", "")
        except NotFound:
            return None
        related = {str((data.get(k) or {}).get("full_name") or "").lower() for k in ("parent", "source")} - {
            ""
        }
        if not data.get("fork") or repo.lower() not in related:
            name = data.get("full_name") or candidate
            raise Unprocessable(422, f"{name} exists and is not a fork of {repo}")
        return str(data["full_name"])

    def compare(
        self, repo: str, base: str, head: str, commit_files: bool = True, head_repo: str | None = None
    ) -> CompareResult:
        """base...head; head may be a sha, a branch, or 'owner:branch' of a fork in the same network.

        With `commit_files`, each commit's changed paths are fetched (one request per commit) from `repo`,
        falling back to `head_repo` (default: the head owner's repo of the same name) when `repo` cannot
        serve a fork's commit.
        """
        owner = head.split(":", 1)[0] if ":" in head else None
        fallback = head_repo or (f"{owner}/{split_repo(repo)[1]}" if owner else None)

        def op(r: Any) -> CompareResult:
            cmp = r.compare(base, head)
            commits = []
            for c in cmp.commits:
                author = c.commit.author.name if c.commit.author else (c.author.login if c.author else "")
                files = self._commit_files(repo, c.sha, fallback) if commit_files else None
                commits.append(CommitInfo(c.sha, c.commit.message, author or "", files))
            changes = [FileChange(f.filename, f.status, f.additions, f.deletions, f.patch) for f in cmp.files]
            base_sha = cmp.merge_base_commit.sha if cmp.merge_base_commit else ""
            return CompareResult(cmp.ahead_by, cmp.behind_by, commits, changes, cmp.status, base_sha)

        return self._repo_op(repo, op)

    def _commit_files(self, repo: str, sha: str, fallback: str | None) -> list[str] | None:
        """Paths changed by one commit, or None when no repo can serve it."""
        for where in [repo] + ([fallback] if fallback and fallback != repo else []):
            try:
                data = self._raw(where, "GET", f"/commits/{sha}")
            except (NotFound, Unprocessable):
                continue
            return [f["filename"] for f in data.get("files") or []]
        return None

    # ----------------------------------------------------------------- pulls and issues lists

    def list_open_pulls(self, repo: str, limit: int = 30, with_files: bool = False) -> list[PullSummary]:
        def op(r: Any) -> list[PullSummary]:
            out = []
            for p in itertools.islice(r.get_pulls(state="open"), max(0, limit)):
                files = [f.filename for f in p.get_files()] if with_files else None
                head_repo = p.head.repo.full_name if p.head.repo else ""
                out.append(
                    PullSummary(
                        p.number, p.title or "", p.body or "", p.html_url, p.head.ref, head_repo, files
                    )
                )
            return out

        return self._repo_op(repo, op)

    def list_open_issues(self, repo: str, limit: int = 30) -> list[IssueSummary]:
        def op(r: Any) -> list[IssueSummary]:
            out: list[IssueSummary] = []
            for i in r.get_issues(state="open"):
                if len(out) >= limit:
                    break
                if i.pull_request is not None:
                    continue
                out.append(
                    IssueSummary(
                        i.number, i.title or "", i.body or "", i.html_url, [lb.name for lb in i.labels]
                    )
                )
            return out

        return self._repo_op(repo, op)

    @staticmethod
    def _pull(p: Any) -> PullRequest:
        return PullRequest(
            number=p.number,
            html_url=p.html_url,
            head_ref=p.head.ref,
            head_sha=p.head.sha,
            base_ref=p.base.ref,
            draft=bool(p.draft),
            state=p.state,
            title=p.title or "",
            body=p.body or "",
            head_repo=p.head.repo.full_name if p.head.repo else "",
        )

    def find_open_pull(
        self, repo: str, head_branch: str, head_owner: str | None = None
    ) -> PullRequest | None:
        owner = head_owner or split_repo(repo)[0]

        def op(r: Any) -> PullRequest | None:
            for p in r.get_pulls(state="open", head=f"{owner}:{head_branch}"):
                head_owner_login = p.head.repo.owner.login if p.head.repo else owner
                if p.head.ref == head_branch and head_owner_login.lower() == owner.lower():
                    return self._pull(p)
            return None

        return self._repo_op(repo, op)

    def create_pull(
        self, repo: str, title: str, body: str, head: str, base: str, draft: bool = True
    ) -> PullRequest:
        """Open a PR; when one is already open for `head`, return it instead of failing."""
        try:
            return self._repo_op(
                repo,
                lambda r: self._pull(
                    r.create_pull(title=title, body=body, head=head, base=base, draft=draft)
                ),
                idempotent=False,
            )
        except Unprocessable:
            owner, _, branch = head.rpartition(":")
            existing = self.find_open_pull(repo, branch, owner or None)
            if existing is None:
                raise
            return existing

    def edit_pull(
        self, repo: str, number: int, title: str | None = None, body: str | None = None
    ) -> PullRequest:
        patch = {k: v for k, v in (("title", title), ("body", body)) if v is not None}
        if patch:
            self._raw(repo, "PATCH", f"/pulls/{int(number)}", patch)
        return self.get_pull(repo, number)

    def get_pull(self, repo: str, number: int) -> PullRequest:
        return self._repo_op(repo, lambda r: self._pull(r.get_pull(int(number))))

    # ----------------------------------------------------------------- check runs

    @staticmethod
    def _check_body(
        status: str | None,
        conclusion: str | None,
        title: str | None,
        summary: str | None,
        text: str | None,
        details_url: str | None,
    ) -> dict[str, Any]:
        if status is not None and status not in CHECK_STATUSES:
            raise ValueError(f"unknown check status {status!r}")
        if conclusion is not None and conclusion not in CHECK_CONCLUSIONS:
            raise ValueError(f"unknown check conclusion {conclusion!r}")
        if conclusion is not None and status not in (None, "completed"):
            raise ValueError("a conclusion requires status 'completed'")
        body: dict[str, Any] = {}
        if status is not None:
            body["status"] = status
        if conclusion is not None:
            body["conclusion"] = conclusion
            body["completed_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if details_url:
            body["details_url"] = details_url
        if title is not None or summary is not None or text:
            output = {"title": title or "", "summary": summary or ""}
            if text:
                output["text"] = text
            body["output"] = output
        return body

    def create_check_run(
        self,
        repo: str,
        head_sha: str,
        name: str,
        status: str,
        conclusion: str | None = None,
        title: str = "",
        summary: str = "",
        text: str = "",
        details_url: str | None = None,
        external_id: str | None = None,
    ) -> int:
        body = {"name": name, "head_sha": head_sha}
        if external_id:
            body["external_id"] = external_id
        body.update(self._check_body(status, conclusion, title or name, summary, text, details_url))
        data = self._raw(repo, "POST", "/check-runs", body, idempotent=False)
        return int(data["id"])

    def update_check_run(
        self,
        repo: str,
        check_run_id: int,
        status: str | None = None,
        conclusion: str | None = None,
        title: str | None = None,
        summary: str | None = None,
        text: str | None = None,
        details_url: str | None = None,
    ) -> None:
        if conclusion is not None and status is None:
            status = "completed"
        body = self._check_body(status, conclusion, title, summary, text, details_url)
        if body:
            self._raw(repo, "PATCH", f"/check-runs/{int(check_run_id)}", body)

    # ----------------------------------------------------------------- git transport

    def clone_url(self, repo: str, write: bool = False) -> str:
        """HTTPS clone URL; with write=True it carries the token as userinfo (never log it: use redact)."""
        url = str(self._raw(repo, "GET", "")["clone_url"])
        if not write:
            return url
        token = self._creds.token_for(repo)
        parts = urllib.parse.urlsplit(url)
        netloc = f"x-access-token:{urllib.parse.quote(token, safe='')}@{parts.hostname}"
        if parts.port:
            netloc += f":{parts.port}"
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def close(self) -> None:
        """Release HTTP connection pools."""
        self._creds.close()


# --------------------------------------------------------------------------- factory


def forge_from_settings(
    base_url: str = DEFAULT_BASE_URL,
    token: str | None = None,
    app_id: int | str | None = None,
    private_key: str | None = None,
    private_key_path: str | None = None,
    installation_id: int | None = None,
    retries: int = 5,
    timeout: float = 15.0,
    max_wait_s: float = 60.0,
    backoff_factor: float = 0.5,
    min_interval_s: float | None = None,
    refresh_margin_s: float = 300.0,
) -> GitHubForge:
    """Build a GitHubForge from plain settings: a token, or an App id plus its private key (text or path).

    `min_interval_s=None` throttles like PyGithub (0.25 s between requests, 1 s between writes) except for
    a loopback base_url (the local sandbox), which is not throttled.
    """
    if min_interval_s is None:
        host = urllib.parse.urlsplit(base_url).hostname or ""
        min_interval_s = 0.0 if host in ("localhost", "127.0.0.1", "::1") else 0.25
    if app_id is not None:
        if private_key is None and private_key_path:
            with open(private_key_path, encoding="utf-8") as fh:
                private_key = fh.read()
        if not private_key:
            raise ValueError("GitHub App auth needs private_key or private_key_path")
        auth: TokenAuth | AppAuth = AppAuth(app_id, private_key, installation_id)
    elif token:
        auth = TokenAuth(token)
    else:
        raise ValueError("GitHub auth needs a token or app_id + private key")
    policy = RetryPolicy(
        total=retries,
        backoff_factor=backoff_factor,
        max_wait_s=max_wait_s,
        secondary_rate_wait_s=min(60.0, max_wait_s),
    )
    return GitHubForge(
        auth,
        base_url=base_url,
        retry=policy,
        timeout=timeout,
        min_interval_s=min_interval_s,
        refresh_margin_s=refresh_margin_s,
    )
