"""`publish.push_to: fork` at the forge and sandbox level, over real HTTP and real git: the bot's fork is
found or created (POST /repos/{owner}/{repo}/forks), pushed to, the draft PR on the base comes from it
(`head.repo` the fork), a deleted fork is made again, and a name taken by something that is not a fork is a
clear error. Every exchange is checked against GitHub's OpenAPI description."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from ground_truth import openapi_spec, validate_log
from sandbox_helpers import git, make_source_repo, rsa_keypair

from bot import stages
from bot.config import ProjectConfig, Settings
from bot.forge import AppAuth, ForgeError, GitHubForge, PermissionDenied, TokenAuth, Unprocessable
from bot.model import StageFailed
from bot.pipeline import Pipeline, StageContext
from bot.store import Store


@pytest.fixture(scope="module")
def scene(sandbox: Any, sandbox_admin: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """alice/proj (main + dev); robot: the bot's machine account, with write access; forks-org: an
    organization robot belongs to; closed-org: one it does not."""
    src = make_source_repo(tmp_path_factory.mktemp("src") / "proj")
    tokens = {login: sandbox_admin.user(login) for login in ("alice", "robot", "eve")}
    sandbox_admin.repo("alice", "proj", source=src)
    sandbox_admin.collaborator("alice/proj", "robot", "write")
    for org, members in (("forks-org", ["robot"]), ("closed-org", [])):
        sandbox_admin._call("POST", "/users", login=org, type="Organization", members=members)
    return {"src": src, "tokens": tokens}


def forge(sandbox: Any, token: str) -> GitHubForge:
    return GitHubForge(TokenAuth(token), base_url=sandbox.api_url, min_interval_s=0)


def api(sandbox: Any, token: str, verb: str, path: str, **body: Any) -> requests.Response:
    return requests.request(
        verb, f"{sandbox.api_url}{path}", json=body or None, headers={"Authorization": f"token {token}"}
    )


def heads(sandbox: Any, repo: str) -> dict[str, str]:
    data = requests.get(f"{sandbox.api_url}/repos/{repo}/branches", params={"per_page": 100}).json()
    return {b["name"]: b["commit"]["sha"] for b in data}


def push(work: Path, url: str, sha: str, branch: str) -> None:
    git(work, "push", "-q", "--force", url, f"{sha}:refs/heads/{branch}")


def test_the_bots_fork_is_made_once_pushed_to_and_the_pr_comes_from_it(
    sandbox: Any, sandbox_admin: Any, scene: dict[str, Any], tmp_path: Path
) -> None:
    bot = forge(sandbox, scene["tokens"]["robot"])
    sandbox_admin.clear_requests()
    fork = bot.ensure_fork("alice/proj")
    assert fork == "robot/proj"
    assert bot.ensure_fork("alice/proj") == fork  # found, not made twice
    posts = [r for r in sandbox_admin.requests() if r["method"] == "POST" and r["path"].endswith("/forks")]
    assert [(p["path"], p["status"], p["request_json"]) for p in posts] == [
        ("/repos/alice/proj/forks", 202, {"default_branch_only": True})
    ]
    info = requests.get(f"{sandbox.api_url}/repos/{fork}").json()
    assert info["fork"] and info["parent"]["full_name"] == "alice/proj" and info["owner"]["login"] == "robot"
    assert set(heads(sandbox, fork)) == {"main"}  # default_branch_only: no `dev`

    # a candidate commit pushed to the fork only
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", str(scene["src"]), "w")
    (work / "src" / "kernel.c").write_text("static inline int add(int a, int b) { return a + b; }\n")
    git(work, "commit", "-qam", "inline add")
    sha = git(work, "rev-parse", "HEAD").strip()
    push(work, bot.clone_url(fork, write=True), sha, "autoresearch/1/inline")
    assert heads(sandbox, fork)["autoresearch/1/inline"] == sha
    assert "autoresearch/1/inline" not in heads(sandbox, "alice/proj")

    # the draft PR on the base, its head in the fork; check runs on its head sha in the base
    pr = bot.create_pull("alice/proj", "Inline add", "measured", "robot:autoresearch/1/inline", "main")
    assert pr.draft and pr.head_repo == fork and pr.head_ref == "autoresearch/1/inline" and pr.head_sha == sha
    assert bot.find_open_pull("alice/proj", "autoresearch/1/inline", "robot").number == pr.number
    assert bot.find_open_pull("alice/proj", "autoresearch/1/inline") is None  # not a base branch
    ref = requests.get(f"{sandbox.api_url}/repos/alice/proj/git/ref/pull/{pr.number}/head")
    assert ref.status_code == 200 and ref.json()["object"]["sha"] == sha  # GitHub's refs/pull/<n>/head
    bot.edit_pull("alice/proj", pr.number, body="measured again")  # the bot's PR, the bot edits it

    # the fork is deleted: the PR stays, its head.repo null; ensure_fork makes the fork again
    assert api(sandbox, scene["tokens"]["robot"], "DELETE", f"/repos/{fork}").status_code == 204
    assert requests.get(f"{sandbox.api_url}/repos/{fork}").status_code == 404
    gone = bot.get_pull("alice/proj", pr.number)
    assert gone.head_repo == "" and gone.head_sha == sha
    assert bot.ensure_fork("alice/proj") == fork
    assert set(heads(sandbox, fork)) == {"main"}
    push(work, bot.clone_url(fork, write=True), sha, "autoresearch/1/inline")
    assert heads(sandbox, fork)["autoresearch/1/inline"] == sha

    # only the owner (admin) deletes a repository
    assert api(sandbox, scene["tokens"]["eve"], "DELETE", f"/repos/{fork}").status_code == 403


def stage_context(tmp_path: Path, forge: GitHubForge, publish: dict[str, Any]) -> StageContext:
    """A run of alice/proj's issue 1 in a real store, its project publishing as `publish` says."""
    settings = Settings(database=str(tmp_path / "db.sqlite"), data_dir=str(tmp_path / "data"))
    store = Store(settings.db_path)
    pipeline = Pipeline(
        settings, store, forge=forge, stages=stages.DEFAULT_STAGES, status_renderer=stages.render_status
    )
    project = ProjectConfig.from_dict(
        {"benchmark": {"command": "./bench", "metrics": [{"name": "t_ns"}]}, "publish": publish}
    )
    run = store.create_run("alice/proj", 1, "issue", "alice")
    return StageContext(pipeline, store.get_run(run.id), "test", project=project)


def test_fork_into_an_organization_and_the_errors_in_words(
    sandbox: Any, sandbox_admin: Any, scene: dict[str, Any], tmp_path: Path
) -> None:
    bot = forge(sandbox, scene["tokens"]["robot"])
    assert bot.ensure_fork("alice/proj", "forks-org") == "forks-org/proj"
    assert (
        requests.get(f"{sandbox.api_url}/repos/forks-org/proj").json()["parent"]["full_name"] == "alice/proj"
    )
    with pytest.raises(PermissionDenied, match="closed-org"):  # not a member
        bot.ensure_fork("alice/proj", "closed-org")
    # eve owns a repository of that name that is no fork: never pushed to
    sandbox_admin.repo("eve", "proj")
    eve = forge(sandbox, scene["tokens"]["eve"])
    with pytest.raises(Unprocessable, match="eve/proj exists and is not a fork of alice/proj"):
        eve.ensure_fork("alice/proj")
    with pytest.raises(ForgeError, match="its own owner"):
        forge(sandbox, scene["tokens"]["alice"]).ensure_fork("alice/proj")
    # the pipeline's word for it: the stage fails with the reason (shown in the status comment)
    with pytest.raises(StageFailed) as failed:
        stages.push_target(stage_context(tmp_path, eve, {"push_to": "fork"}))
    assert failed.value.message == (
        "Could not find or create the bot's fork of `alice/proj` in the bot's account (`publish.push_to: "
        "fork`): eve/proj exists and is not a fork of alice/proj"
    )
    assert stages.push_target(stage_context(tmp_path, eve, {"push_to": "base"})) == "alice/proj"
    bad = api(sandbox, scene["tokens"]["robot"], "POST", "/repos/alice/proj/forks", organization="nobody")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "organization"


def test_a_github_app_forks_into_the_organization_it_is_installed_on(
    sandbox: Any, sandbox_admin: Any, scene: dict[str, Any], tmp_path: Path
) -> None:
    private, public = rsa_keypair()
    app_id = sandbox_admin.app("forkbot", public)
    sandbox_admin._call("POST", "/users", login="app-forks", type="Organization")
    sandbox_admin.install(app_id, "app-forks", [])
    app = GitHubForge(AppAuth(app_id, private), base_url=sandbox.api_url, min_interval_s=0)
    with pytest.raises(ForgeError, match="publish.fork_owner"):  # an App has no account of its own
        app.ensure_fork("alice/proj")
    fork = app.ensure_fork("alice/proj", "app-forks")
    assert fork == "app-forks/proj" and app.ensure_fork("alice/proj", "app-forks") == fork
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", str(scene["src"]), "w")
    sha = git(work, "rev-parse", "HEAD").strip()
    push(work, app.clone_url(fork, write=True), sha, "autoresearch/2/x")  # the installation's token
    assert heads(sandbox, fork)["autoresearch/2/x"] == sha
    with pytest.raises(ForgeError):  # installed on app-forks only: no fork into closed-org
        app.ensure_fork("alice/proj", "closed-org")


def test_fork_exchanges_match_githubs_openapi(sandbox: Any, scene: dict[str, Any]) -> None:
    spec = openapi_spec()
    checked, headless = [], []
    for entry in sandbox.requests:
        if entry["path"].startswith("/repos/alice/proj/pulls/") and entry["response_json"]:
            if entry["response_json"]["head"]["repo"] is None:
                # GitHub answers head.repo null once a pull request's head repository is deleted; the
                # OpenAPI description (@octokit/openapi 23.0.2) does not mark the field nullable
                headless.append(entry["path"])
                continue
        checked.append(entry)
    operations, failures = validate_log(spec, checked)
    assert not failures, "\n".join(dict.fromkeys(failures))
    assert headless == ["/repos/alice/proj/pulls/1"]
    assert {"repos/create-fork", "repos/delete", "pulls/create", "pulls/get"} <= operations, sorted(
        operations
    )
