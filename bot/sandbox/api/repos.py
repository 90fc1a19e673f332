"""Repositories: metadata, collaborators' permissions, forks, contents, commits, comparisons."""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from bot.sandbox import gitrepo
from bot.sandbox.api.checks import runs_for_ref
from bot.sandbox.api.common import Api, invalid
from bot.sandbox.state import ApiError, Caller, Repo, perm_at_least


def register(api: Api) -> Blueprint:
    bp = api.blueprint("repos")
    route, state = functools.partial(api.route, bp), api.state

    @route("/repos/<owner>/<name>")
    def get_repo(owner: str, name: str) -> Any:
        repo = api.load(owner, name)
        perm = state.permission(repo, g.caller) if g.caller else None
        return jsonify(g.r.repo(repo, caller_perm=perm))

    @route("/repos/<owner>/<name>/collaborators/<login>/permission")
    def collaborator_permission(owner: str, name: str, login: str) -> Any:
        repo = api.load(owner, name)
        api.caller()
        user = state.user(login)
        perm = state.permission(repo, Caller(login))
        legacy = {"maintain": "write", "triage": "read"}.get(perm, perm)
        u = g.r.user(user)
        u["permissions"] = {
            "admin": perm_at_least(perm, "admin"),
            "maintain": perm_at_least(perm, "maintain"),
            "push": perm_at_least(perm, "write"),
            "triage": perm_at_least(perm, "triage"),
            "pull": perm_at_least(perm, "read"),
        }
        u["role_name"] = perm
        return jsonify({"permission": legacy, "role_name": perm, "user": u})

    @route("/repos/<owner>/<name>/forks")
    def list_forks(owner: str, name: str) -> Any:
        repo = api.load(owner, name)
        return api.listing(state.forks_of(repo), lambda r: g.r.repo(r, full=False))

    @route("/repos/<owner>/<name>/forks", ["POST"])
    def create_fork(owner: str, name: str) -> Any:
        repo = api.load(owner, name)
        c = api.caller()
        data = api.body()
        org = data.get("organization")
        if org is not None:
            account = state.users.get(org) if isinstance(org, str) else None
            if account is None or account.type != "Organization":
                raise invalid("Fork", "invalid", "organization")
            member = c.installation.account == org if c.installation else state.is_org_member(org, c.login)
            if not member:
                raise ApiError(403, f"You do not have permission to create repositories in {org}")
        target = org or (c.installation.account if c.installation else c.login)
        name_ = data.get("name")
        if name_ is not None and (not isinstance(name_, str) or not name_.strip()):
            raise invalid("Fork", "invalid", "name")
        fork = state.fork(repo, target, name_, default_branch_only=bool(data.get("default_branch_only")))
        return api.created(g.r.repo(fork), 202)

    @route("/repos/<owner>/<name>", ["DELETE"])
    def delete_repo(owner: str, name: str) -> Any:
        repo, _ = api.load_for(owner, name, "admin")
        state.delete_repo(repo)
        return Response(status=204)

    @route("/repos/<owner>/<name>/contents")
    @route("/repos/<owner>/<name>/contents/")
    @route("/repos/<owner>/<name>/contents/<path:path>")
    def contents(owner: str, name: str, path: str = "") -> Any:
        repo = api.load(owner, name)
        ref = request.args.get("ref") or repo.default_branch
        path = path.strip("/")
        blob = gitrepo.read_blob(repo.path, ref, path) if path else None
        if blob is not None:
            return jsonify(g.r.content(repo, path, ref, blob[0], blob[1]))
        entries = gitrepo.list_tree(repo.path, ref, path)
        if entries is None:
            raise ApiError(404, "Not Found")
        return jsonify([g.r.dir_entry(repo, ref, path, *e) for e in entries])

    @route("/repos/<owner>/<name>/commits/<path:ref>")
    def get_commit(owner: str, name: str, ref: str) -> Any:
        repo = api.load(owner, name)
        if ref.endswith("/check-runs"):
            return runs_for_ref(api, repo, ref[: -len("/check-runs")])
        sha = gitrepo.resolve(repo.path, ref)
        if sha is None:
            raise ApiError(422, f"No commit found for SHA: {ref}")
        return jsonify(g.r.commit(repo, sha, with_files=True))

    @route("/repos/<owner>/<name>/compare/<path:basehead>")
    def compare(owner: str, name: str, basehead: str) -> Any:
        repo = api.load(owner, name)
        if "..." not in basehead:
            raise ApiError(404, "Not Found")
        base_spec, head_spec = basehead.split("...", 1)
        base_repo, base_sha = resolve_spec(repo, base_spec)
        head_repo, head_sha = resolve_spec(repo, head_spec)
        alts = [
            r.path
            for r in {base_repo.full_name: base_repo, head_repo.full_name: head_repo}.values()
            if r is not repo
        ]
        mb = gitrepo.merge_base(repo.path, base_sha, head_sha, alternates=alts)
        if mb is None:
            raise ApiError(404, f"No common ancestor between {base_spec} and {head_spec}.")
        ahead, behind = gitrepo.ahead_behind(repo.path, base_sha, head_sha, alternates=alts)
        status = (
            "identical"
            if ahead == behind == 0
            else "ahead"
            if behind == 0
            else "behind"
            if ahead == 0
            else "diverged"
        )
        shas = gitrepo.commits_between(repo.path, mb, head_sha, alternates=alts)
        files = gitrepo.diff_files(repo.path, mb, head_sha, alternates=alts)
        html = f"{g.r.base}/{repo.full_name}/compare/{basehead}"
        return jsonify(
            {
                "url": f"{g.r.api}/repos/{repo.full_name}/compare/{basehead}",
                "html_url": html,
                "permalink_url": f"{g.r.base}/{repo.full_name}/compare/{base_sha}...{head_sha}",
                "diff_url": html + ".diff",
                "patch_url": html + ".patch",
                "base_commit": g.r.commit(repo, base_sha, alternates=alts),
                "merge_base_commit": g.r.commit(repo, mb, alternates=alts),
                "status": status,
                "ahead_by": ahead,
                "behind_by": behind,
                "total_commits": len(shas),
                "commits": [g.r.commit(repo, s, alternates=alts) for s in shas[-250:]],
                "files": [g.r.file_change(repo, head_sha, f) for f in files[:300]],
            }
        )

    def resolve_spec(repo: Repo, spec: str) -> tuple[Repo, str]:
        target = repo
        ref = spec
        if ":" in spec:
            owner, ref = spec.split(":", 1)
            if ":" in ref:  # owner:repo:ref
                rname, ref = ref.split(":", 1)
                target = state.repo(owner, rname)
            else:
                found = state.repo_in_network(repo, owner)
                if found is None:
                    raise ApiError(404, "Not Found")
                target = found
        sha = gitrepo.resolve(target.path, ref)
        if sha is None:
            raise ApiError(404, "Not Found")
        return target, sha

    return bp
