"""The sandbox GitHub driven through PyGithub, the git CLI and raw HTTP; responses checked against GitHub's
OpenAPI description."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import github
import pytest
import requests
from github import Auth, Github, GithubIntegration
from ground_truth import (
    ExchangeError,
    openapi_spec,
    validate_exchange,
    validate_log,
    validate_webhook,
    webhook_examples,
)
from sandbox_helpers import WebhookReceiver, git, make_source_repo, rsa_keypair

from bot.sandbox import Sandbox
from bot.signature import verify


@pytest.fixture(scope="module")
def sb(sandbox: Sandbox) -> Sandbox:
    """conftest's sandbox, under the name these tests use."""
    return sandbox


@pytest.fixture(scope="module")
def world(sb: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """alice owns alice/proj (imported from a local repo); bob is an outsider; carol has read; dave has
    write."""
    src = make_source_repo(tmp_path_factory.mktemp("src") / "proj")
    tokens = {}
    for login in ("alice", "bob", "carol", "dave"):
        resp = requests.post(f"{sb.url}/_sandbox/users", json={"login": login})
        assert resp.status_code == 201, resp.text
        tokens[login] = resp.json()["token"]
    resp = requests.post(
        f"{sb.url}/_sandbox/repos", json={"owner": "alice", "name": "proj", "source_path": str(src)}
    )
    assert resp.status_code == 201, resp.text
    for login, perm in (("carol", "read"), ("dave", "write")):
        r = requests.put(
            f"{sb.url}/_sandbox/repos/alice/proj/collaborators/{login}", json={"permission": perm}
        )
        assert r.json()["permission"] == perm
    return {"src": src, "tokens": tokens}


def gh(sb: Sandbox, token: str, **kw: Any) -> Github:
    """PyGithub throttles writes (1 s) and requests (0.25 s) by default; a local server needs neither."""
    return Github(
        base_url=sb.api_url,
        auth=Auth.Token(token),
        seconds_between_requests=0,
        seconds_between_writes=0,
        **kw,
    )


def push_url(sb: Sandbox, repo: str, token: str | None) -> str:
    host = sb.url.removeprefix("http://")
    return f"http://x-access-token:{token}@{host}/{repo}.git" if token else f"{sb.url}/{repo}.git"


def test_imported_repo_reads_like_github(sb: Sandbox, world: dict[str, Any], tmp_path: Path) -> None:
    repo = gh(sb, world["tokens"]["alice"]).get_repo("alice/proj")
    assert repo.full_name == "alice/proj" and repo.default_branch == "main" and not repo.fork
    assert repo.url.startswith(sb.api_url) and repo.html_url.startswith(sb.url)
    main_sha = git(world["src"], "rev-parse", "main").strip()
    assert repo.get_branch("main").commit.sha == main_sha
    assert repo.get_git_ref("heads/dev").object.sha == main_sha
    content = repo.get_contents("src/kernel.c", ref="main")
    assert content.decoded_content == (world["src"] / "src" / "kernel.c").read_bytes()
    assert {c.path for c in repo.get_contents("")} == {"README.md", "src"}
    commit = repo.get_commit(main_sha)
    assert commit.commit.message == "format kernel" and [f.filename for f in commit.files] == ["src/kernel.c"]
    git(tmp_path, "clone", "-q", push_url(sb, "alice/proj", None), "clone")  # anonymous clone
    assert git(tmp_path / "clone", "rev-parse", "HEAD").strip() == main_sha
    assert gh(sb, world["tokens"]["alice"]).get_user().login == "alice"


def test_permissions_and_errors(sb: Sandbox, world: dict[str, Any]) -> None:
    t = world["tokens"]
    repo = gh(sb, t["alice"]).get_repo("alice/proj")
    assert repo.get_collaborator_permission("dave") == "write"
    assert repo.get_collaborator_permission("carol") == "read"
    assert repo.get_collaborator_permission("bob") == "read"  # public repo: anyone reads
    assert repo.get_collaborator_permission("alice") == "admin"
    with pytest.raises(github.BadCredentialsException):
        gh(sb, "ghp_wrong").get_repo("alice/proj")
    with pytest.raises(github.UnknownObjectException):
        gh(sb, t["alice"]).get_repo("alice/missing")
    resp = requests.get(f"{sb.api_url}/repos/alice/missing")
    assert resp.status_code == 404 and set(resp.json()) >= {"message", "documentation_url"}


def test_fork_push_over_http_and_compare_across_forks(
    sb: Sandbox, world: dict[str, Any], tmp_path: Path
) -> None:
    t = world["tokens"]
    fork = gh(sb, t["bob"]).get_repo("alice/proj").create_fork()
    assert fork.full_name == "bob/proj" and fork.fork and fork.parent.full_name == "alice/proj"
    assert fork.source.full_name == "alice/proj"
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", push_url(sb, "bob/proj", None), "w")
    git(work, "checkout", "-q", "-b", "faster")
    (work / "src" / "kernel.c").write_text("static inline int add(int a, int b) {\n  return a + b;\n}\n")
    (work / "src" / "simd.c").write_text("/* vectorized */\n")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "inline add, add simd stub")
    with pytest.raises(subprocess.CalledProcessError) as err:  # anonymous push is refused (401 -> no prompt)
        git(work, "push", "-q", push_url(sb, "bob/proj", None), "faster")
    assert "terminal prompts disabled" in err.value.stderr or "401" in err.value.stderr
    with pytest.raises(subprocess.CalledProcessError) as err:  # carol (read) cannot push to alice/proj
        git(work, "push", "-q", push_url(sb, "alice/proj", t["carol"]), "faster")
    assert "403" in err.value.stderr
    git(work, "push", "-q", push_url(sb, "bob/proj", t["bob"]), "faster")
    head_sha = git(work, "rev-parse", "HEAD").strip()
    base = gh(sb, t["alice"]).get_repo("alice/proj")
    cmp = base.compare("main", "bob:faster")
    assert (cmp.ahead_by, cmp.behind_by, cmp.status, cmp.total_commits) == (1, 0, "ahead", 1)
    assert cmp.commits[0].sha == head_sha and cmp.commits[0].commit.message == "inline add, add simd stub"
    files = {f.filename: f for f in cmp.files}
    assert files["src/simd.c"].status == "added" and files["src/simd.c"].additions == 1
    assert (
        files["src/kernel.c"].status == "modified" and "+static inline int add" in files["src/kernel.c"].patch
    )
    assert [f.full_name for f in base.get_forks()] == ["bob/proj"]
    assert base.compare("main", "main").status == "identical"


def test_branches_through_the_refs_api(sb: Sandbox, world: dict[str, Any]) -> None:
    t = world["tokens"]
    repo = gh(sb, t["dave"]).get_repo("alice/proj")
    main = repo.get_branch("main").commit.sha
    first = repo.get_commit(main).parents[0].sha
    ref = repo.create_git_ref("refs/heads/bot/candidate-1", first)
    assert ref.object.sha == first
    ref.edit(main)  # fast-forward
    assert repo.get_branch("bot/candidate-1").commit.sha == main
    with pytest.raises(github.GithubException) as err:
        ref.edit(first)  # not a fast-forward
    assert err.value.status == 422
    ref.edit(first, force=True)
    with pytest.raises(github.GithubException) as err:
        repo.create_git_ref("refs/heads/bot/candidate-1", main)
    assert err.value.status == 422
    with pytest.raises(github.GithubException) as err:
        gh(sb, t["carol"]).get_repo("alice/proj").create_git_ref("refs/heads/nope", main)
    assert err.value.status == 403


def test_issues_labels_comments_reactions(sb: Sandbox, world: dict[str, Any]) -> None:
    t = world["tokens"]
    repo = gh(sb, t["alice"]).get_repo("alice/proj")
    issue = repo.create_issue("speed up add()", body="make it fast")
    assert issue.number >= 1 and issue.user.login == "alice" and issue.html_url.startswith(sb.url)
    issue.add_to_labels("autoresearch")
    assert [lab.name for lab in repo.get_issue(issue.number).labels] == ["autoresearch"]
    assert "autoresearch" in [lab.name for lab in repo.get_labels()]
    issue.remove_from_labels("autoresearch")
    assert repo.get_issue(issue.number).labels == []
    # carol (read) may comment but not label
    carol_issue = gh(sb, t["carol"]).get_repo("alice/proj").get_issue(issue.number)
    carol_issue.create_comment("me too")
    with pytest.raises(github.GithubException) as err:
        carol_issue.add_to_labels("autoresearch")
    assert err.value.status == 403
    for i in range(4):
        issue.create_comment(f"status {i}")
    paged = gh(sb, t["alice"], per_page=2).get_repo("alice/proj").get_issue(issue.number).get_comments()
    assert [c.body for c in paged] == ["me too", "status 0", "status 1", "status 2", "status 3"]
    resp = requests.get(f"{sb.api_url}/repos/alice/proj/issues/{issue.number}/comments?per_page=2&page=2")
    assert 'rel="next"' in resp.headers["Link"] and 'rel="prev"' in resp.headers["Link"]
    comment = list(issue.get_comments())[-1]
    comment.edit("status: done")
    assert repo.get_issue(issue.number).get_comment(comment.id).body == "status: done"
    with pytest.raises(github.GithubException) as err:  # carol cannot edit alice's comment
        gh(sb, t["carol"]).get_repo("alice/proj").get_issue(issue.number).get_comment(comment.id).edit("x")
    assert err.value.status == 403
    headers = {"Authorization": f"token {t['bob']}"}
    url = f"{sb.api_url}/repos/alice/proj/issues/{issue.number}/reactions"
    assert requests.post(url, json={"content": "eyes"}, headers=headers).status_code == 201
    assert requests.post(url, json={"content": "eyes"}, headers=headers).status_code == 200
    assert requests.post(url, json={"content": "nope"}, headers=headers).status_code == 422
    assert comment.create_reaction("rocket").content == "rocket"
    assert repo.get_issue(issue.number).reactions["eyes"] == 1
    issue.edit(state="closed")
    assert repo.get_issue(issue.number).state == "closed"


def test_concurrent_writers_get_distinct_numbers(sb: Sandbox, world: dict[str, Any]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    token = world["tokens"]["dave"]

    def open_issue(i: int) -> int:
        resp = requests.post(
            f"{sb.api_url}/repos/alice/proj/issues",
            json={"title": f"race {i}"},
            headers={"Authorization": f"token {token}"},
            timeout=30,
        )
        assert resp.status_code == 201, resp.text
        return int(resp.json()["number"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        numbers = list(pool.map(open_issue, range(12)))
    assert len(set(numbers)) == 12


def test_pull_requests_across_forks(sb: Sandbox, world: dict[str, Any]) -> None:
    t = world["tokens"]
    base = gh(sb, t["bob"]).get_repo("alice/proj")
    pr = base.create_pull(title="Inline add", body="bench inside", head="bob:faster", base="main", draft=True)
    assert pr.draft and pr.head.ref == "faster" and pr.head.repo.full_name == "bob/proj" and not pr.merged
    assert pr.base.ref == "main" and pr.commits == 1 and pr.changed_files == 2
    issue_numbers = [i.number for i in base.get_issues(state="all")]
    assert pr.number not in [n for n in issue_numbers if n != pr.number] and pr.number in issue_numbers
    with pytest.raises(github.GithubException) as err:
        base.create_pull(title="again", body="", head="bob:faster", base="main")
    assert err.value.status == 422 and "already exists" in json.dumps(err.value.data)
    with pytest.raises(github.GithubException) as err:
        base.create_pull(title="empty", body="", head="dev", base="main")
    assert err.value.status == 422
    alice_repo = gh(sb, t["alice"]).get_repo("alice/proj")
    found = alice_repo.get_pulls(state="open", head="bob:faster")
    assert [p.number for p in found] == [pr.number]
    assert list(alice_repo.get_pulls(state="open", head="bob:nothing")) == []
    assert [f.filename for f in alice_repo.get_pull(pr.number).get_files()] == ["src/kernel.c", "src/simd.c"]
    alice_repo.get_pull(pr.number).create_review(body="looks fine", event="APPROVE")
    assert [r.state for r in alice_repo.get_pull(pr.number).get_reviews()] == ["APPROVED"]
    alice_repo.get_pull(pr.number).edit(title="Inline add (verified)")
    assert alice_repo.get_pull(pr.number).title == "Inline add (verified)"


def test_app_jwt_flow_installation_tokens_and_check_runs(sb: Sandbox, world: dict[str, Any]) -> None:
    private, public = rsa_keypair()
    app = requests.post(
        f"{sb.url}/_sandbox/apps", json={"slug": "autoresearch", "public_key_pem": public}
    ).json()
    inst = requests.post(
        f"{sb.url}/_sandbox/apps/{app['id']}/installations",
        json={"account": "alice", "repos": ["alice/proj"]},
    ).json()
    integration = GithubIntegration(
        base_url=sb.api_url,
        auth=Auth.AppAuth(app["id"], private),
        seconds_between_requests=0,
        seconds_between_writes=0,
    )
    assert integration.get_app().slug == "autoresearch"
    installation = integration.get_repo_installation("alice", "proj")
    assert installation.id == inst["id"]
    token = integration.get_access_token(installation.id)
    assert token.token.startswith("ghs_") and token.expires_at.timestamp() > time.time() + 3000
    repo = integration.get_github_for_installation(installation.id).get_repo("alice/proj")
    sha = repo.get_branch("main").commit.sha
    run = repo.create_check_run(name="autoresearch/bench", head_sha=sha, status="in_progress")
    run.edit(conclusion="success", output={"title": "2 winners", "summary": "table"})
    runs = list(repo.get_commit(sha).get_check_runs())
    assert [(r.name, r.status, r.conclusion) for r in runs] == [
        ("autoresearch/bench", "completed", "success")
    ]
    comment = repo.get_issue(repo.create_issue("from the bot").number).create_comment("ack")
    assert comment.user.login == "autoresearch[bot]" and comment.user.type == "Bot"
    with pytest.raises(github.GithubException) as err:  # personal tokens cannot create check runs
        gh(sb, world["tokens"]["alice"]).get_repo("alice/proj").create_check_run(name="x", head_sha=sha)
    assert err.value.status == 403
    other_private, _ = rsa_keypair()  # a JWT signed with the wrong key is refused
    with pytest.raises(github.GithubException) as err:
        GithubIntegration(base_url=sb.api_url, auth=Auth.AppAuth(app["id"], other_private)).get_app()
    assert err.value.status == 401
    requests.put(f"{sb.url}/_sandbox/settings", json={"installation_token_ttl_s": -1})
    expired = integration.get_access_token(installation.id).token
    requests.put(f"{sb.url}/_sandbox/settings", json={"installation_token_ttl_s": 3600})
    with pytest.raises(github.BadCredentialsException):
        gh(sb, expired).get_repo("alice/proj").get_issue(1)


def test_listing_filters_labels_and_refs(sb: Sandbox, world: dict[str, Any]) -> None:
    t = world["tokens"]
    repo = gh(sb, t["dave"]).get_repo("alice/proj")
    label = repo.create_label("perf-x86", "00ff00", "x86 runs")
    assert (label.name, label.color) == ("perf-x86", "00ff00")
    with pytest.raises(github.GithubException) as err:
        repo.create_label("PERF-x86", "00ff00")
    assert err.value.status == 422
    label.edit("perf-x86", "0000ff", "x86 benchmark runs")
    assert repo.get_label("perf-x86").color == "0000ff"
    readme = repo.get_contents("README.md")
    assert base64.b64decode(repo.get_git_blob(readme.sha).content) == readme.decoded_content
    tagged = repo.create_issue("tagged", labels=["perf-x86"])
    plain = repo.create_issue("plain")
    assert [i.number for i in repo.get_issues(labels=[label])] == [tagged.number]
    plain.edit(state="closed")
    open_numbers = [i.number for i in repo.get_issues(state="open")]
    assert tagged.number in open_numbers and plain.number not in open_numbers
    assert plain.number in [i.number for i in repo.get_issues(state="closed")]
    bob_issue = gh(sb, t["bob"]).get_repo("alice/proj").create_issue("outsider", labels=["perf-x86"])
    assert bob_issue.labels == []  # labels from users without triage are dropped, as on GitHub
    assert {b.name for b in repo.get_branches()} >= {"main", "dev"}
    sha = repo.get_branch("main").commit.sha
    ref = repo.create_git_ref("refs/heads/tmp-delete", sha)
    ref.delete()
    with pytest.raises(github.GithubException) as err:
        repo.get_git_ref("heads/tmp-delete")
    assert err.value.status == 404
    with pytest.raises(github.GithubException) as err:
        repo.get_contents("missing.txt")
    assert err.value.status == 404


def _verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    return verify(secret, body, headers["X-Hub-Signature-256"])


def test_webhooks_are_signed_ordered_and_redeliverable(
    sb: Sandbox, world: dict[str, Any], tmp_path: Path
) -> None:
    receiver = WebhookReceiver()
    try:
        hook = requests.post(
            f"{sb.url}/_sandbox/hooks", json={"url": receiver.url, "secret": "s3cret", "events": ["*"]}
        ).json()
        t = world["tokens"]
        repo = gh(sb, t["alice"]).get_repo("alice/proj")
        issue = repo.create_issue("hooked", labels=["perf"])
        issue.create_comment("/autoresearch status")
        # a push to the head of an open PR fires push + pull_request synchronize
        work = tmp_path / "w"
        git(tmp_path, "clone", "-q", push_url(sb, "alice/proj", None), "w")
        git(work, "checkout", "-q", "-b", "hooked")
        for step in ("one", "two"):
            (work / "NOTES").write_text(step + "\n")
            git(work, "add", ".")
            git(work, "commit", "-q", "-m", step)
            git(work, "push", "-q", push_url(sb, "alice/proj", t["dave"]), "hooked")
            if step == "one":
                repo.create_pull(title="hooked", body="", head="hooked", base="main")
        assert requests.post(f"{sb.url}/_sandbox/deliveries/wait", json={"timeout": 10}).json()["idle"]
        ping, *events = receiver.events()
        assert ping[0] == "ping" and ping[1]["hook_id"] == hook["id"]
        names = [(e, p.get("action")) for e, p in events]
        assert names[:5] == [
            ("issues", "opened"),
            ("issues", "labeled"),
            ("issue_comment", "created"),
            ("push", None),
            ("pull_request", "opened"),
        ]
        assert ("pull_request", "synchronize") in names
        for headers, body in receiver.received:
            assert _verify("s3cret", headers, body)
            assert headers["User-Agent"].startswith("GitHub-Hookshot/")
            assert headers["X-GitHub-Hook-ID"] == str(hook["id"]) and len(headers["X-GitHub-Delivery"]) == 36
        labeled = events[1][1]
        assert labeled["label"]["name"] == "perf" and labeled["sender"]["login"] == "alice"
        assert labeled["repository"]["full_name"] == "alice/proj"
        log = [d for d in requests.get(f"{sb.url}/_sandbox/deliveries").json() if d["hook_id"] == hook["id"]]
        assert (
            log[1]["event"] == "issues" and log[1]["status_code"] == 200 and log[1]["duration_ms"] is not None
        )
        again = requests.post(f"{sb.url}/_sandbox/deliveries/{log[1]['id']}/redeliver").json()
        assert again["redelivery"] and again["guid"] == log[1]["guid"]
        requests.post(f"{sb.url}/_sandbox/deliveries/wait", json={"timeout": 10})
        assert receiver.received[-1][1] == receiver.received[1][1]
        # an app installed while the hook exists announces itself
        _, public = rsa_keypair()
        app2 = requests.post(
            f"{sb.url}/_sandbox/apps", json={"slug": "second", "public_key_pem": public}
        ).json()
        app_receiver = WebhookReceiver()  # the app's own webhook sees only its installation
        requests.post(f"{sb.url}/_sandbox/hooks", json={"url": app_receiver.url, "app_id": app2["id"]})
        issue.create_comment("before install")  # app2 not installed yet: no delivery to its hook
        requests.post(
            f"{sb.url}/_sandbox/apps/{app2['id']}/installations",
            json={"account": "alice", "repos": ["alice/proj"]},
        )
        issue.create_comment("after install")
        requests.post(f"{sb.url}/_sandbox/deliveries/wait", json={"timeout": 10})
        app_receiver.stop()
        _ping, installed, commented = app_receiver.events()
        assert commented[1]["comment"]["body"] == "after install"
        assert commented[1]["installation"]["id"] == installed[1]["installation"]["id"]
        installed = receiver.events()[-2]
        assert installed[0] == "installation" and installed[1]["action"] == "created"
        assert installed[1]["repositories"][0]["full_name"] == "alice/proj"
        # every payload validates against GitHub's x-webhooks schemas
        spec = openapi_spec()
        checked = {validate_webhook(spec, event, payload) for event, payload in receiver.events()}
        assert {
            "ping",
            "issues-opened",
            "issues-labeled",
            "issue-comment-created",
            "push",
            "pull-request-synchronize",
            "installation-created",
        } <= checked
        # the payload shapes match GitHub's published examples at the top level
        examples = webhook_examples()
        for event, payload in receiver.events():
            if event in ("issues", "issue_comment", "pull_request"):
                sample = next(x for x in examples[event] if x.get("action") == payload["action"])
                missing = set(sample) - set(payload) - {"organization", "enterprise", "installation"}
                assert not missing, (event, missing)
    finally:
        receiver.stop()


def test_fault_injection(sb: Sandbox, world: dict[str, Any]) -> None:
    reset = int(time.time()) + 30
    requests.post(
        f"{sb.url}/_sandbox/faults",
        json={
            "path_regex": r"/repos/alice/proj$",
            "method": "GET",
            "status": 403,
            "times": 1,
            "headers": {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
        },
    )
    with pytest.raises(github.RateLimitExceededException):
        gh(sb, world["tokens"]["alice"], retry=None).get_repo("alice/proj")
    assert gh(sb, world["tokens"]["alice"], retry=None).get_repo("alice/proj").name == "proj"  # only once
    requests.post(f"{sb.url}/_sandbox/faults", json={"path_regex": r"/issues/1$", "status": 502, "times": 2})
    assert requests.get(f"{sb.api_url}/repos/alice/proj/issues/1").status_code == 502
    assert requests.get(f"{sb.api_url}/repos/alice/proj/issues/1").status_code == 502
    assert requests.get(f"{sb.api_url}/repos/alice/proj/issues/1").status_code == 200
    rules = requests.get(f"{sb.url}/_sandbox/faults").json()
    assert [r["hits"] for r in rules] == [1, 2]
    assert requests.delete(f"{sb.url}/_sandbox/faults").status_code == 204


def test_html_views_show_what_the_bot_did(sb: Sandbox, world: dict[str, Any]) -> None:
    repo = gh(sb, world["tokens"]["alice"]).get_repo("alice/proj")
    issue = repo.create_issue("<script>x</script> speed", body="**bold** body")
    issue.add_to_labels("autoresearch")
    issue.create_comment(
        "| variant | ns |\n|---|---|\n| a | 12 ns |\n\n- [x] done\n- [ ] to do\n\n"
        "<details><summary>More</summary>\n\n```mermaid\nxychart-beta\n```\n\n</details>\n\n"
        '<script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:alert(3)">j</a> '
        '<b onclick="alert(4)">b</b><!-- autoresearch:run:1 -->'
    )
    page = requests.get(issue.html_url).text
    assert "&lt;script&gt;" in page and "<script>x" not in page
    # rendered as GitHub renders it: bold, a GFM table, a task list, <details>, mermaid left as code
    assert "autoresearch" in page and "<strong>bold</strong> body" in page
    assert "<th>variant</th>" in page and "<td>12 ns</td>" in page
    assert page.count('class="task-list-item-checkbox"') == 2 and 'checked="checked"' in page
    assert "<details><summary>More</summary>" in page and '<code class="language-mermaid">' in page
    # sanitized as GitHub sanitizes: no script, no event handler, no javascript: link, no hidden comment
    assert "alert(" not in page and "onerror" not in page and "onclick" not in page
    assert "javascript:" not in page and "autoresearch:run:1" not in page
    assert "alice/proj" in requests.get(sb.url + "/").text
    pr = next(p for p in repo.get_pulls(state="all") if p.title.startswith("Inline add"))
    assert "Inline add" in requests.get(pr.html_url).text


def test_every_logged_exchange_matches_githubs_openapi(sb: Sandbox, world: dict[str, Any]) -> None:
    spec = openapi_spec()
    assert sb.requests, "no API traffic was logged"
    # 502: an injected gateway error, not an API response
    operations, failures = validate_log(spec, [e for e in sb.requests if e["status"] != 502])
    assert not failures, "\n".join(dict.fromkeys(failures))
    assert len(operations) >= 40, sorted(operations)


def test_validate_exchange_rejects_wrong_shapes() -> None:
    spec = openapi_spec()
    with pytest.raises(ExchangeError, match="title"):
        validate_exchange(
            spec, "POST", "/repos/o/r/issues", 201, {"id": 1}, request_json={"body": "no title"}
        )
    with pytest.raises(ExchangeError):
        validate_exchange(spec, "GET", "/repos/o/r/issues/1", 200, {"id": "not-an-int"})
    with pytest.raises(ExchangeError, match="no documented operation"):
        validate_exchange(spec, "GET", "/nothing/here", 200, {})
    assert {"issues", "issue_comment", "ping", "installation"} <= set(webhook_examples())


def test_app_jwt_must_expire_within_ten_minutes(sb: Sandbox) -> None:
    private, public = rsa_keypair()
    app = requests.post(f"{sb.url}/_sandbox/apps", json={"slug": "longjwt", "public_key_pem": public}).json()
    now = int(time.time())
    import jwt

    token = jwt.encode(
        {"iat": now - 60, "exp": now + 3600, "iss": str(app["id"])}, private, algorithm="RS256"
    )
    resp = requests.get(f"{sb.api_url}/app", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401 and "too far in the future" in resp.json()["message"]
    ok = jwt.encode({"iat": now - 60, "exp": now + 540, "iss": str(app["id"])}, private, algorithm="RS256")
    assert (
        requests.get(f"{sb.api_url}/app", headers={"Authorization": f"Bearer {ok}"}).json()["slug"]
        == "longjwt"
    )
