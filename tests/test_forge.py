"""GitHubForge against the real sandbox server over HTTP, through PyGithub (no mocks).

The sandbox is set up through its admin API (/_sandbox); everything the bot does goes through bot.forge.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from loopback import LoopbackServer
from sandbox_helpers import Admin

from bot.demo import rsa_keypair
from bot.forge import (
    AppAuth,
    ForgeError,
    GitHubForge,
    NotFound,
    PermissionDenied,
    RateLimited,
    RetryPolicy,
    TokenAuth,
    Unprocessable,
)
from bot.sandbox import Sandbox

MARKER = "<!-- autoresearch:run:7 -->"
FAST = RetryPolicy(
    total=3,
    backoff_factor=0.05,
    backoff_max_s=0.5,
    max_wait_s=5,
    secondary_rate_wait_s=1,
    connection_attempts=2,
)


# --------------------------------------------------------------------------- sandbox helpers


def git(*args: str, cwd: Path | None = None) -> str:
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd or "/tmp"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args[:2])} failed: {proc.stderr.strip()[:500]}")
    return proc.stdout.strip()


def seed_project(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "src").mkdir()
    (path / "src" / "softmax.c").write_text("float softmax(float x) { return x; }\n")
    (path / "README.md").write_text("# proj\n")
    (path / ".autoresearch.yml").write_text("preset: generic\nbenchmark:\n  command: ./bench\n")
    git("init", "-q", "-b", "main", cwd=path)
    git("add", ".", cwd=path)
    git("commit", "-q", "-m", "initial", cwd=path)
    return path


rsa_pair = rsa_keypair


@pytest.fixture(scope="module")
def world(sandbox: Sandbox, sandbox_admin: Admin, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One sandbox with: alice/proj (public), alice/secret (private), a fork by forker with one commit."""
    tmp = tmp_path_factory.mktemp("forge")
    sb, admin = sandbox, sandbox_admin
    tokens = {login: admin.user(login) for login in ("alice", "bob", "carol", "mallory", "forker")}
    repo = admin.repo("alice", "proj", seed_project(tmp / "seed"))
    secret = admin.repo("alice", "secret", private=True)
    admin.collaborator(repo, "bob", "write")
    admin.collaborator(repo, "carol", "read")
    fork = admin.fork(repo, "forker")
    work = tmp / "fork-work"
    forker_url = f"{sb.url}/{fork}.git".replace("://", f"://forker:{tokens['forker']}@")
    git("clone", "-q", forker_url, str(work))
    git("checkout", "-q", "-b", "fast-softmax", cwd=work)
    (work / "src" / "softmax.c").write_text("float softmax(float x) { return x * 0.5f; }\n")
    git("commit", "-qam", "softmax: halve the work", cwd=work)
    (work / "NOTES.md").write_text("notes\n")
    git("add", "NOTES.md", cwd=work)
    git("commit", "-qm", "notes", cwd=work)
    git("push", "-q", "origin", "fast-softmax", cwd=work)
    return {
        "sb": sb,
        "admin": admin,
        "tokens": tokens,
        "repo": repo,
        "secret": secret,
        "fork": fork,
        "tmp": tmp,
    }


def token_forge(world: dict[str, Any], login: str = "alice", **kw: Any) -> GitHubForge:
    kw.setdefault("retry", FAST)
    return GitHubForge(
        TokenAuth(world["tokens"][login]), base_url=world["sb"].api_url, min_interval_s=0, **kw
    )


def new_issue(world: dict[str, Any], title: str, author: str = "carol") -> int:
    gh = token_forge(world, author)
    data = gh._raw(
        world["repo"],
        "POST",
        "/issues",
        {"title": title, "body": "please speed up softmax"},
        idempotent=False,
    )
    return int(data["number"])


# --------------------------------------------------------------------------- token auth basics


def test_identity_and_permissions(world: dict[str, Any]) -> None:
    f = token_forge(world)
    repo = world["repo"]
    assert f.bot_login() == "alice"
    assert f.permission(repo, "alice") == "admin"
    assert f.permission(repo, "bob") == "write"
    assert f.permission(repo, "carol") == "read"
    assert f.permission(repo, "no-such-user") == "none"  # 404 from the server
    assert f.permission(world["secret"], "mallory") == "none"
    assert f.has_write(repo, "alice") and f.has_write(repo, "bob")
    assert not f.has_write(repo, "carol") and not f.has_write(repo, "mallory")


def test_missing_repo_and_bad_token_are_typed_errors(world: dict[str, Any]) -> None:
    f = token_forge(world)
    with pytest.raises(NotFound):
        f.default_branch("alice/does-not-exist")
    bad = GitHubForge(
        TokenAuth("ghp_" + "0" * 36), base_url=world["sb"].api_url, retry=FAST, min_interval_s=0
    )
    with pytest.raises(PermissionDenied) as info:
        bad.default_branch(world["repo"])
    assert info.value.status == 401 and "ghp_" not in str(info.value)


def test_issue_comments_reactions_labels(world: dict[str, Any]) -> None:
    f = token_forge(world)
    repo = world["repo"]
    n = new_issue(world, "speed up softmax")
    issue = f.get_issue(repo, n)
    assert (issue.number, issue.title, issue.user, issue.state) == (n, "speed up softmax", "carol", "open")
    assert issue.body == "please speed up softmax" and not issue.is_pull

    f.ensure_label(repo, "autoresearch", "#0e8a16", "run the research bot")
    f.ensure_label(repo, "autoresearch", "0e8a16", "run the research bot")  # already there: no error
    f.add_labels(repo, n, ["autoresearch"])
    assert f.get_issue(repo, n).labels == ["autoresearch"]
    f.remove_label(repo, n, "autoresearch")
    f.remove_label(repo, n, "autoresearch")  # second removal: 404 ignored
    assert f.get_issue(repo, n).labels == []

    c = f.create_comment(repo, n, "looking into it")
    assert c.user == "alice" and c.body == "looking into it" and c.html_url
    edited = f.edit_comment(repo, c.id, "looking into it (edited)")
    assert edited.id == c.id and edited.body.endswith("(edited)")
    f.react_issue(repo, n, "eyes")
    f.react_comment(repo, c.id, "rocket")
    with pytest.raises(ValueError):
        f.react_issue(repo, n, "thumbsup")
    reactions = requests.get(f"{world['sb'].api_url}/repos/{repo}/issues/{n}/reactions", timeout=10).json()
    assert [(r["content"], r["user"]["login"]) for r in reactions] == [("eyes", "alice")]
    assert [x.body for x in f.list_issue_comments(repo, n)] == ["looking into it (edited)"]
    assert [i.number for i in f.list_open_issues(repo, 50)].count(n) == 1


def test_ensure_label_fixes_color_and_description(world: dict[str, Any]) -> None:
    f = token_forge(world)
    repo = world["repo"]
    f.ensure_label(repo, "autoresearch-color", "ededed", "old")
    f.ensure_label(repo, "autoresearch-color", "#D93F0B", "new")
    data = requests.get(f"{world['sb'].api_url}/repos/{repo}/labels/autoresearch-color", timeout=10).json()
    assert (data["color"], data["description"]) == ("d93f0b", "new")


def test_upsert_marked_comment_creates_once_then_edits(world: dict[str, Any]) -> None:
    f = token_forge(world, "bob")
    repo = world["repo"]
    n = new_issue(world, "upsert")
    # Someone else's comment quoting the marker must be ignored.
    token_forge(world, "carol").create_comment(repo, n, f"copied: {MARKER} status: done!")
    first = f.upsert_marked_comment(repo, n, MARKER, f"{MARKER}\nstatus: queued")
    second = f.upsert_marked_comment(repo, n, MARKER, f"{MARKER}\nstatus: researching")
    third = f.upsert_marked_comment(repo, n, MARKER, f"{MARKER}\nstatus: researching")  # unchanged: no edit
    assert first.id == second.id == third.id
    comments = f.list_issue_comments(repo, n)
    mine = [c for c in comments if c.user == "bob"]
    assert len(mine) == 1 and mine[0].body == f"{MARKER}\nstatus: researching"
    assert [c.user for c in comments] == ["carol", "bob"]
    # The marker is added when the body lacks it.
    fourth = f.upsert_marked_comment(repo, n, MARKER, "status: done")
    assert fourth.id == first.id and fourth.body.startswith(MARKER)


def test_files_branches_and_refs(world: dict[str, Any]) -> None:
    f = token_forge(world)
    repo = world["repo"]
    assert f.default_branch(repo) == "main"
    assert "softmax" in (f.get_file(repo, "src/softmax.c") or "")
    assert f.get_file(repo, ".autoresearch.yml", ref="main").startswith("preset: generic")
    assert f.get_file(repo, "missing.txt") is None
    main_sha = f.branch_sha(repo, "main")
    assert main_sha and len(main_sha) == 40
    assert f.branch_sha(repo, "no-such-branch") is None
    assert f.list_open_pulls(world["secret"], 5) == [] and f.list_forks(world["secret"], 5) == []
    f.create_branch(repo, "autoresearch/run-7/baseline", main_sha)
    f.create_branch(repo, "autoresearch/run-7/baseline", main_sha)  # idempotent
    assert f.branch_sha(repo, "autoresearch/run-7/baseline") == main_sha


def test_compare_across_fork_and_update_branch(world: dict[str, Any]) -> None:
    f = token_forge(world)
    repo, fork = world["repo"], world["fork"]
    assert f.list_forks(repo, 10) == [fork]
    result = f.compare(repo, "main", "forker:fast-softmax")
    assert (result.ahead_by, result.behind_by, result.status) == (2, 0, "ahead")
    assert [c.message for c in result.commits] == ["softmax: halve the work", "notes"]
    assert result.commits[0].author == "Test"
    assert result.commits[0].files == ["src/softmax.c"] and result.commits[1].files == ["NOTES.md"]
    by_name = {fc.filename: fc for fc in result.files}
    assert set(by_name) == {"src/softmax.c", "NOTES.md"}
    assert by_name["src/softmax.c"].status == "modified"
    assert (by_name["src/softmax.c"].additions, by_name["src/softmax.c"].deletions) == (1, 1)
    assert "x * 0.5f" in (by_name["src/softmax.c"].patch or "")
    assert by_name["NOTES.md"].status == "added"
    # Move a branch of the fork's owner along the same commits (fast-forward, then force back).
    ff = token_forge(world, "forker")
    head = ff.branch_sha(fork, "fast-softmax")
    base = ff.branch_sha(fork, "main")
    ff.create_branch(fork, "candidate", base)
    with pytest.raises(Unprocessable):
        ff.create_branch(fork, "candidate", head)  # exists at another sha
    ff.update_branch(fork, "candidate", head)
    assert ff.branch_sha(fork, "candidate") == head
    with pytest.raises(Unprocessable):
        ff.update_branch(fork, "candidate", base)  # not a fast-forward
    ff.update_branch(fork, "candidate", base, force=True)
    assert ff.branch_sha(fork, "candidate") == base


def test_pull_create_find_edit_no_duplicate(world: dict[str, Any]) -> None:
    f = token_forge(world)
    repo = world["repo"]
    assert f.find_open_pull(repo, "fast-softmax", "forker") is None
    pr = f.create_pull(repo, "autoresearch: faster softmax", "body v1", "forker:fast-softmax", "main")
    assert pr.draft and pr.state == "open" and pr.head_ref == "fast-softmax" and pr.base_ref == "main"
    assert pr.head_repo == world["fork"] and len(pr.head_sha) == 40
    again = f.create_pull(repo, "autoresearch: faster softmax", "body v1", "forker:fast-softmax", "main")
    assert again.number == pr.number
    found = f.find_open_pull(repo, "fast-softmax", "forker")
    assert found is not None and found.number == pr.number
    assert f.find_open_pull(repo, "fast-softmax") is None  # alice has no such branch
    edited = f.edit_pull(repo, pr.number, body="body v2")
    assert edited.body == "body v2" and edited.title == "autoresearch: faster softmax"
    pulls = f.list_open_pulls(repo, 10, with_files=True)
    assert [(p.number, p.head_ref, p.head_repo, sorted(p.files or [])) for p in pulls] == [
        (pr.number, "fast-softmax", world["fork"], ["NOTES.md", "src/softmax.c"])
    ]
    assert pr.number not in [i.number for i in f.list_open_issues(repo, 50)]


def test_clone_and_push_with_token(world: dict[str, Any]) -> None:
    f = token_forge(world, "bob")
    repo = world["repo"]
    read_url = f.clone_url(repo)
    write_url = f.clone_url(repo, write=True)
    token = world["tokens"]["bob"]
    assert token not in read_url and f"x-access-token:{token}@" in write_url
    assert token not in f.redact(f"git push {write_url} failed")
    work = world["tmp"] / "bob-clone"
    git("clone", "-q", read_url, str(work))
    (work / "src" / "softmax.c").write_text("float softmax(float x) { return x + 0.0f; }\n")
    git("checkout", "-q", "-b", "autoresearch/run-7/cand-1", cwd=work)
    git("commit", "-qam", "candidate 1", cwd=work)
    sha = git("rev-parse", "HEAD", cwd=work)
    with pytest.raises(AssertionError):
        git("push", "-q", read_url, "HEAD:refs/heads/autoresearch/run-7/cand-1", cwd=work)  # no credentials
    git("push", "-q", write_url, "HEAD:refs/heads/autoresearch/run-7/cand-1", cwd=work)
    assert f.branch_sha(repo, "autoresearch/run-7/cand-1") == sha


# --------------------------------------------------------------------------- retries


def _log_for(world: dict[str, Any], method: str, path: str) -> list[int]:
    return [e["status"] for e in world["admin"].requests() if e["method"] == method and e["path"] == path]


def test_retries_injected_502(world: dict[str, Any]) -> None:
    admin, repo = world["admin"], world["repo"]
    f = token_forge(world)
    admin.clear_requests()
    admin.fault(rf"^/api/v3/repos/{repo}$", 502, times=2, method="GET")
    assert f.default_branch(repo) == "main"
    assert _log_for(world, "GET", f"/repos/{repo}") == [502, 502, 200]
    # Retries exhausted: a short ForgeError with the final status, not a hang.
    admin.clear_requests()
    admin.fault(rf"^/api/v3/repos/{repo}$", 503, times=10, method="GET")
    with pytest.raises(ForgeError) as info:
        f.default_branch(repo)
    admin.clear_faults()
    assert info.value.status == 503
    assert _log_for(world, "GET", f"/repos/{repo}") == [503] * (FAST.total + 1)


def test_retries_secondary_rate_limit_with_retry_after(world: dict[str, Any]) -> None:
    admin, repo = world["admin"], world["repo"]
    f = token_forge(world)
    admin.clear_requests()
    admin.fault(
        rf"^/api/v3/repos/{repo}$",
        403,
        times=1,
        method="GET",
        headers={"Retry-After": "1"},
        message="You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
    )
    start = time.monotonic()
    assert f.default_branch(repo) == "main"
    assert time.monotonic() - start >= 0.9
    assert _log_for(world, "GET", f"/repos/{repo}") == [403, 200]


def test_retries_primary_rate_limit_until_reset(world: dict[str, Any]) -> None:
    admin, repo = world["admin"], world["repo"]
    f = token_forge(world)
    admin.clear_requests()
    reset = int(time.time()) + 1
    admin.fault(
        rf"^/api/v3/repos/{repo}/issues$",
        403,
        times=1,
        method="GET",
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
        message="API rate limit exceeded for user ID 1001.",
    )
    issues = f.list_open_issues(repo, 5)
    assert issues and time.time() >= reset
    assert _log_for(world, "GET", f"/repos/{repo}/issues") == [403, 200]


def test_retries_429_and_caps_long_waits(world: dict[str, Any]) -> None:
    admin, repo = world["admin"], world["repo"]
    f = token_forge(world)
    admin.clear_requests()
    admin.fault(rf"^/api/v3/repos/{repo}$", 429, times=1, method="GET", headers={"Retry-After": "1"})
    assert f.default_branch(repo) == "main"
    assert _log_for(world, "GET", f"/repos/{repo}") == [429, 200]
    # A wait beyond the cap (5 s here) fails fast with RateLimited instead of sleeping for minutes.
    admin.fault(
        rf"^/api/v3/repos/{repo}$",
        403,
        times=1,
        method="GET",
        headers={"Retry-After": "600"},
        message="You have exceeded a secondary rate limit.",
    )
    start = time.monotonic()
    with pytest.raises(RateLimited) as info:
        f.default_branch(repo)
    assert time.monotonic() - start < 3 and info.value.wait_s == 600
    reset = int(time.time()) + 3600
    admin.fault(
        rf"^/api/v3/repos/{repo}$",
        403,
        times=1,
        method="GET",
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
        message="API rate limit exceeded for user ID 1001.",
    )
    with pytest.raises(RateLimited):
        f.default_branch(repo)
    admin.clear_faults()


class FlakyProxy(LoopbackServer):
    """TCP proxy to the sandbox that drops the first `drops` connections (a real transient network error)."""

    def __init__(self, target_port: int, drops: int) -> None:
        self.target_port, self.drops = target_port, drops
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        if self.accepted <= self.drops:
            conn.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        for a, b in ((conn, upstream), (upstream, conn)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_tenacity_recovers_from_dropped_connections(world: dict[str, Any]) -> None:
    port = int(world["sb"].url.rsplit(":", 1)[1])
    proxy = FlakyProxy(port, drops=3)
    try:
        policy = RetryPolicy(
            total=1, backoff_factor=0.01, backoff_max_s=0.05, max_wait_s=5, connection_attempts=3
        )
        f = GitHubForge(
            TokenAuth(world["tokens"]["alice"]),
            base_url=f"http://127.0.0.1:{proxy.port}/api/v3",
            retry=policy,
            min_interval_s=0,
        )
        # urllib3 tries twice (total=1) per attempt; tenacity's second attempt gets through on its 2nd try.
        assert f.default_branch(world["repo"]) == "main"
        assert proxy.accepted == 4
    finally:
        proxy.close()


# --------------------------------------------------------------------------- GitHub App auth


@pytest.fixture(scope="module")
def app_world(world: dict[str, Any]) -> dict[str, Any]:
    private, public = rsa_pair()
    admin = world["admin"]
    app_id = admin.app("autoresearch-test", public)
    inst = admin.install(app_id, "alice", [world["repo"]])
    return {**world, "app_id": app_id, "private": private, "installation": inst}


def _token_mints(world: dict[str, Any]) -> int:
    return sum(
        1
        for e in world["admin"].requests()
        if e["method"] == "POST" and e["path"].endswith("/access_tokens") and e["status"] == 201
    )


def app_forge(w: dict[str, Any], **kw: Any) -> GitHubForge:
    kw.setdefault("retry", FAST)
    return GitHubForge(AppAuth(w["app_id"], w["private"]), base_url=w["sb"].api_url, min_interval_s=0, **kw)


def test_app_auth_identity_installation_and_check_runs(app_world: dict[str, Any]) -> None:
    w, repo = app_world, app_world["repo"]
    admin = w["admin"]
    admin.token_ttl(3600)
    admin.clear_requests()
    f = app_forge(w)
    assert f.bot_login() == "autoresearch-test[bot]"
    assert f.default_branch(repo) == "main"
    sha = f.branch_sha(repo, "main")
    paths = [e["path"] for e in admin.requests()]
    assert f"/repos/{repo}/installation" in paths  # installation discovered per repo
    assert _token_mints(w) == 1  # token cached across calls

    run_id = f.create_check_run(
        repo,
        sha,
        "autoresearch/bench",
        "in_progress",
        title="benchmarking",
        summary="2 candidates on x86",
        details_url="http://bot.example/runs/7",
    )
    f.update_check_run(
        repo,
        run_id,
        conclusion="success",
        title="1 winner",
        summary="softmax_ns -12%",
        text="| variant | ns |",
    )
    run = requests.get(
        f"{w['sb'].api_url}/repos/{repo}/check-runs/{run_id}",
        headers={"Authorization": f"token {w['tokens']['alice']}"},
        timeout=10,
    ).json()
    assert (run["status"], run["conclusion"], run["head_sha"]) == ("completed", "success", sha)
    assert run["output"]["title"] == "1 winner" and run["output"]["summary"] == "softmax_ns -12%"
    assert run["details_url"] == "http://bot.example/runs/7"
    with pytest.raises(ValueError):
        f.update_check_run(repo, run_id, status="in_progress", conclusion="success")

    # Token auth cannot create check runs on GitHub (or the sandbox): a typed error, not a crash.
    with pytest.raises(PermissionDenied):
        token_forge(w).create_check_run(repo, sha, "x", "queued")

    # Marked comment as the App: authored by the bot login, found again on the next upsert.
    n = new_issue(w, "app upsert")
    a = f.upsert_marked_comment(repo, n, MARKER, "status: queued")
    b = f.upsert_marked_comment(repo, n, MARKER, "status: running")
    assert a.id == b.id and a.user == "autoresearch-test[bot]"
    assert len(f.list_issue_comments(repo, n)) == 1

    # Push with the installation token.
    token, _ = f.installation_token(repo)
    write_url = f.clone_url(repo, write=True)
    assert token in write_url and token not in f.redact(write_url)
    work = w["tmp"] / "app-clone"
    git("clone", "-q", f.clone_url(repo), str(work))
    git("commit", "-q", "--allow-empty", "-m", "app commit", cwd=work)
    git("push", "-q", write_url, "HEAD:refs/heads/autoresearch/app-push", cwd=work)
    assert f.branch_sha(repo, "autoresearch/app-push") == git("rev-parse", "HEAD", cwd=work)


def test_app_token_refreshed_before_expiry(app_world: dict[str, Any]) -> None:
    w, repo = app_world, app_world["repo"]
    admin = w["admin"]
    admin.token_ttl(2.5)  # the sandbox renders expires_at in whole seconds: 1.5 to 2.5 s seen by the client
    try:
        admin.clear_requests()
        f = app_forge(w, refresh_margin_s=1.0)
        f.default_branch(repo)
        first, expires = f.installation_token(repo)
        f.default_branch(repo)
        assert _token_mints(w) == 1  # > 1.4 s left, margin 1 s: reused
        time.sleep(max(0.0, (expires.timestamp() - time.time()) - 0.9))  # now < 1 s left
        assert f.default_branch(repo) == "main"
        second, _ = f.installation_token(repo)
        assert second != first and _token_mints(w) == 2
        # With the default 5-minute margin, a short-lived token is renewed for every call.
        g = app_forge(w)
        admin.clear_requests()
        g.default_branch(repo)
        g.default_branch(repo)
        assert _token_mints(w) == 2
    finally:
        admin.token_ttl(3600)


def test_app_token_rejected_is_refreshed_once(app_world: dict[str, Any]) -> None:
    w, repo = app_world, app_world["repo"]
    admin = w["admin"]
    admin.token_ttl(3600)
    f = app_forge(w)
    f.default_branch(repo)
    admin.clear_requests()
    # The server revokes the token (answers 401 once): the forge mints a new one and repeats the call.
    admin.fault(rf"^/api/v3/repos/{repo}$", 401, times=1, method="GET", message="Bad credentials")
    assert f.default_branch(repo) == "main"
    assert _log_for(w, "GET", f"/repos/{repo}") == [401, 200]
    assert _token_mints(w) == 1


def test_app_with_explicit_installation_id(app_world: dict[str, Any]) -> None:
    w = app_world
    w["admin"].clear_requests()
    f = GitHubForge(
        AppAuth(w["app_id"], w["private"], w["installation"]),
        base_url=w["sb"].api_url,
        retry=FAST,
        min_interval_s=0,
    )
    assert f.default_branch(w["repo"]) == "main"
    assert not any(e["path"].endswith("/installation") for e in w["admin"].requests())
    with pytest.raises(NotFound):  # an App not installed on a repo cannot see it
        app_forge(w).default_branch(w["secret"])


# --------------------------------------------------------------------------- ground truth


def test_every_exchange_matches_githubs_openapi(app_world: dict[str, Any]) -> None:
    from ground_truth import openapi_spec, validate_log

    spec = openapi_spec()
    w, repo = app_world, app_world["repo"]
    admin = w["admin"]
    admin.token_ttl(3600)
    admin.clear_faults()
    admin.clear_requests()
    f = token_forge(w)
    app = app_forge(w)
    n = new_issue(w, "ground truth")
    f.permission(repo, "bob")
    f.permission(repo, "nobody-here")
    f.bot_login()
    app.bot_login()
    f.get_issue(repo, n)
    f.ensure_label(repo, "autoresearch-gt", "ededed", "ground truth")
    f.ensure_label(repo, "autoresearch-gt", "d93f0b", "ground truth v2")
    f.add_labels(repo, n, ["autoresearch-gt"])
    f.remove_label(repo, n, "autoresearch-gt")
    f.react_issue(repo, n, "+1")
    c = app.upsert_marked_comment(repo, n, MARKER, "status: 1")
    app.upsert_marked_comment(repo, n, MARKER, "status: 2")
    app.react_comment(repo, c.id, "heart")
    f.get_file(repo, "src/softmax.c")
    f.get_file(repo, "nope.txt")
    sha = f.branch_sha(repo, "main")
    f.branch_sha(repo, "nope")
    f.create_branch(repo, "gt-branch", sha)
    f.create_branch(repo, "gt-branch", sha)
    f.update_branch(repo, "gt-branch", sha)
    f.list_forks(repo, 5)
    f.compare(repo, "main", "forker:fast-softmax")
    pr = f.create_pull(repo, "autoresearch: faster softmax", "v1", "forker:fast-softmax", "main")
    f.create_pull(repo, "autoresearch: faster softmax", "v1", "forker:fast-softmax", "main")  # 422 -> found
    f.find_open_pull(repo, "fast-softmax", "forker")
    f.get_pull(repo, pr.number)
    f.edit_pull(repo, pr.number, title="autoresearch: faster softmax (gt)")
    f.list_open_pulls(repo, 5, with_files=True)
    f.list_open_issues(repo, 5)
    run_id = app.create_check_run(repo, sha, "autoresearch/gt", "queued")
    app.update_check_run(repo, run_id, conclusion="neutral", summary="nothing to do")
    f.clone_url(repo)

    log = admin.requests()
    assert len(log) >= 30
    operations, failures = validate_log(spec, log)
    print(f"validated {len(log)} exchanges, {len(operations)} operations: {sorted(operations)}")
    assert not failures, "\n".join(f[:600] for f in failures)
    for op in (
        "repos/get-collaborator-permission-level",
        "issues/create-comment",
        "issues/update-comment",
        "repos/compare-commits",
        "checks/create",
        "checks/update",
        "git/create-ref",
        "apps/create-installation-access-token",
        "apps/get-authenticated",
        "pulls/create",
        "pulls/update",
        "pulls/list-files",
        "repos/get-commit",
        "issues/update-label",
    ):
        assert op in operations, op


# --------------------------------------------------------------------------- rate limits that outlast the cap


@pytest.mark.parametrize(
    ("kind", "status"), [("primary", 403), ("primary", 429), ("secondary", 403), ("secondary", 429)]
)
def test_a_long_rate_limit_says_when_it_resets(world: dict[str, Any], kind: str, status: int) -> None:
    """The sandbox answers as GitHub does (403/429; x-ratelimit-remaining 0 + x-ratelimit-reset, or
    retry-after): the forge raises RateLimited at once with the time to retry, instead of sleeping 30 minutes
    or failing without one; once the sandbox's clock passes the reset the same call succeeds."""
    admin, repo = world["admin"], world["repo"]
    f = token_forge(world, "bob")
    admin.clear_requests()
    limit = admin.rate_limit("bob", 1800, kind, status)
    try:
        start = time.monotonic()
        with pytest.raises(RateLimited) as info:
            f.default_branch(repo)
        assert time.monotonic() - start < 5
        exc = info.value
        assert exc.status == status
        now = time.time()
        if kind == "primary":
            assert exc.reset_at == pytest.approx(limit["reset_at"], abs=1.01)
            assert exc.until(now) == pytest.approx(limit["reset_at"] + 1, abs=1.01)
        else:
            assert exc.reset_at is None and exc.wait_s == pytest.approx(1800, abs=1.01)
            assert exc.until(now) == pytest.approx(now + 1800, abs=1.01)
        # another caller is not limited
        assert token_forge(world, "alice").default_branch(repo) == "main"
        admin.advance_clock(1801)
        assert f.default_branch(repo) == "main"
    finally:
        admin.clear_rate_limits()
    statuses = _log_for(world, "GET", f"/repos/{repo}")
    assert statuses[-1] == 200 and set(statuses[:-2]) == {status}


def test_app_commit_identity_and_html_urls_come_from_the_api(app_world: dict[str, Any]) -> None:
    """An App's commits carry `<slug>[bot]` and the noreply address of its bot account (GET
    /users/<slug>[bot]: that account's id, as GitHub links bot commits); a token's, its user's. The
    repository's web address is the API's html_url."""
    w, repo = app_world, app_world["repo"]
    app = app_forge(w)
    name, email = app.commit_identity(repo)
    bot = requests.get(f"{w['sb'].api_url}/users/autoresearch-test[bot]", timeout=10).json()
    assert name == "autoresearch-test[bot]"
    assert email == f"{bot['id']}+autoresearch-test[bot]@users.noreply.127.0.0.1"
    alice = requests.get(f"{w['sb'].api_url}/users/alice", timeout=10).json()
    assert token_forge(w).commit_identity(repo) == ("alice", f"{alice['id']}+alice@users.noreply.127.0.0.1")
    assert app.repo_html_url(repo) == f"{w['sb'].url}/{repo}"


def test_rerequesting_a_check_run_sends_check_run_rerequested_to_its_app(app_world: dict[str, Any]) -> None:
    """GitHub's Re-run button (POST .../check-runs/{id}/rerequest) reaches the App that made the check run as
    a `check_run` webhook, action `rerequested`, shaped as GitHub's description says; the bot routes it."""
    from ground_truth import openapi_spec, validate_webhook
    from sandbox_helpers import WebhookReceiver

    from bot.events import Command, route

    w, repo, admin = app_world, app_world["repo"], app_world["admin"]
    receiver = WebhookReceiver()
    try:
        admin._call("POST", "/hooks", url=receiver.url, secret="s", app_id=w["app_id"])
        app = app_forge(w)
        sha = app.branch_sha(repo, "main")
        ext = "autoresearch:run=41:issue=3:kind=benchmark"
        cid = app.create_check_run(repo, sha, "autoresearch / benchmark", "queued", external_id=ext)
        headers = {"Authorization": f"token {w['tokens']['bob']}"}
        url = f"{w['sb'].api_url}/repos/{repo}/check-runs/{cid}/rerequest"
        assert requests.post(url, headers=headers, timeout=10).status_code == 422  # not completed yet
        app.update_check_run(repo, cid, conclusion="success", title="faster", summary="1.2x")
        assert requests.post(url, headers=headers, timeout=10).status_code == 201
        admin._call("POST", "/deliveries/wait", timeout=10)
        events = [(e, p) for e, p in receiver.events() if e == "check_run"]
        assert len(events) == 1
        event, payload = events[0]
        assert payload["action"] == "rerequested" and payload["check_run"]["id"] == cid
        assert payload["check_run"]["external_id"] == ext and payload["sender"]["login"] == "bob"
        assert validate_webhook(openapi_spec(), event, payload) == "check-run-rerequested"
        cmd = route(event, payload, trigger_label="autoresearch")
        assert isinstance(cmd, Command) and cmd.kind == "rerequest" and cmd.issue_number == 3
        assert cmd.args["run_id"] == 41 and cmd.args["head_sha"] == sha and cmd.user == "bob"
        assert cmd.key == f"check_run:{cid}:rerequested"
    finally:
        receiver.stop()
