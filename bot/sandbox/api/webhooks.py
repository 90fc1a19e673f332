"""Webhooks the sandbox fires for ref changes (git push or the refs API): push, pull_request synchronize."""

from __future__ import annotations

from typing import Any

from bot.sandbox import gitrepo
from bot.sandbox.render import Renderer, installation_ref
from bot.sandbox.state import Repo, SandboxState, now_iso


def fire_ref_events(
    state: SandboxState,
    r: Renderer,
    repo: Repo,
    changes: dict[str, tuple[str | None, str | None]],
    sender: str,
) -> None:
    """push webhooks for changed refs, and pull_request synchronize for open PRs whose head moved."""
    repo.pushed_at = now_iso()
    insts = repo_installations(state, repo)
    zero = "0" * 40
    for ref, (old, new) in changes.items():
        commits = []
        if new and old:
            commits = gitrepo.commits_between(repo.path, old, new)[-20:]
        elif new:
            commits = [new]
        payload: dict[str, Any] = {
            "ref": ref,
            "before": old or zero,
            "after": new or zero,
            "created": old is None,
            "deleted": new is None,
            "forced": bool(old and new and not gitrepo.is_ancestor(repo.path, old, new)),
            "base_ref": None,
            "compare": f"{r.base}/{repo.full_name}/compare/{(old or zero)[:12]}...{(new or zero)[:12]}",
            "commits": [_push_commit(r, repo, s) for s in commits],
            "head_commit": _push_commit(r, repo, new) if new else None,
            "repository": r.repo(repo, full=False),
            "pusher": {"name": sender, "email": None},
            "sender": r.user(sender),
        }
        state.sender.emit("push", payload, insts)
        if not ref.startswith("refs/heads/") or not new:
            continue
        branch = ref[len("refs/heads/") :]
        for base in state.network(repo):
            for issue in base.issues.values():
                p = issue.pull
                if p and issue.state == "open" and p.head_repo == repo.full_name and p.head_ref == branch:
                    sync: dict[str, Any] = {
                        "action": "synchronize",
                        "number": issue.number,
                        "before": old or zero,
                        "after": new,
                        "pull_request": r.pull(base, issue),
                        "repository": r.repo(base, full=False),
                        "sender": r.user(sender),
                    }
                    issue.updated_at = now_iso()
                    gitrepo.fetch_commit(base.path, repo.path, new, f"refs/pull/{issue.number}/head")
                    state.sender.emit("pull_request", sync, repo_installations(state, base))


def repo_installations(state: SandboxState, repo: Repo) -> dict[int, dict[str, Any]]:
    """app id -> webhook "installation" object, for the apps installed on `repo`."""
    return {i.app_id: installation_ref(i) for i in state.installations_for_repo(repo)}  # type: ignore[misc]


def _push_commit(r: Renderer, repo: Repo, sha: str) -> dict[str, Any]:
    info = gitrepo.commit_info(repo.path, sha)
    return {
        "id": sha,
        "tree_id": info.tree,
        "distinct": True,
        "message": info.message,
        "timestamp": info.committer_date,
        "url": f"{r.base}/{repo.full_name}/commit/{sha}",
        "author": {"name": info.author_name, "email": info.author_email},
        "committer": {"name": info.committer_name, "email": info.committer_email},
        "added": [],
        "removed": [],
        "modified": [],
    }
