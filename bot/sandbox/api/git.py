"""Git data: branches, refs (read, create, move, delete) and blobs."""

from __future__ import annotations

import base64
import functools
from typing import Any

from flask import Blueprint, Response, g, jsonify

from bot.sandbox import gitrepo
from bot.sandbox.api.common import Api
from bot.sandbox.state import ApiError, Repo


def register(api: Api) -> Blueprint:
    bp = api.blueprint("git")
    route = functools.partial(api.route, bp)

    def existing_ref(repo: Repo, ref: str) -> tuple[str, str]:
        """(full name, sha) of refs/`ref`; 422 when there is no such ref."""
        full = "refs/" + ref
        old = gitrepo.refs(repo.path).get(full)
        if old is None:
            raise ApiError(422, "Reference does not exist")
        return full, old

    def require_object(repo: Repo, sha: str) -> None:
        if not sha or not gitrepo.has_object(repo.path, sha):
            raise ApiError(422, "Object does not exist")

    @route("/repos/<owner>/<name>/branches")
    def list_branches(owner: str, name: str) -> Any:
        repo = api.load(owner, name)
        heads = sorted(
            (ref[len("refs/heads/") :], sha)
            for ref, sha in gitrepo.refs(repo.path).items()
            if ref.startswith("refs/heads/")
        )
        url = f"{g.r.api}/repos/{repo.full_name}"
        return api.listing(
            heads,
            lambda b: {
                "name": b[0],
                "commit": {"sha": b[1], "url": f"{url}/commits/{b[1]}"},
                "protected": False,
            },
        )

    @route("/repos/<owner>/<name>/branches/<path:branch>")
    def get_branch(owner: str, name: str, branch: str) -> Any:
        repo = api.load(owner, name)
        sha = gitrepo.branch_sha(repo.path, branch)
        if sha is None:
            raise ApiError(404, "Branch not found")
        return jsonify(g.r.branch(repo, branch, sha))

    @route("/repos/<owner>/<name>/git/ref/<path:ref>")
    @route("/repos/<owner>/<name>/git/refs/<path:ref>")
    def get_ref(owner: str, name: str, ref: str) -> Any:
        repo = api.load(owner, name)
        full = "refs/" + ref
        sha = gitrepo.refs(repo.path).get(full)
        if sha is None and full.startswith("refs/pull/"):  # a pull request's head, kept by GitHub itself
            sha = gitrepo.resolve(repo.path, full)
        if sha is None:
            raise ApiError(404, "Not Found")
        return jsonify(g.r.ref(repo, full, sha))

    @route("/repos/<owner>/<name>/git/blobs/<sha>")
    def get_blob(owner: str, name: str, sha: str) -> Any:
        repo = api.load(owner, name)
        if gitrepo.git(repo.path, "cat-file", "-t", sha, check=False).strip() != "blob":
            raise ApiError(404, "Not Found")
        data = gitrepo.blob_bytes(repo.path, sha)
        return jsonify(
            {
                "sha": sha,
                "node_id": f"B_{sha[:20]}",
                "size": len(data),
                "url": f"{g.r.api}/repos/{repo.full_name}/git/blobs/{sha}",
                "content": base64.encodebytes(data).decode(),
                "encoding": "base64",
            }
        )

    @route("/repos/<owner>/<name>/git/refs")
    def list_refs(owner: str, name: str) -> Any:
        repo = api.load(owner, name)
        return api.listing(sorted(gitrepo.refs(repo.path).items()), lambda kv: g.r.ref(repo, kv[0], kv[1]))

    @route("/repos/<owner>/<name>/git/refs", ["POST"])
    def create_ref(owner: str, name: str) -> Any:
        repo, c = api.load_for(owner, name, "write")
        data = api.body()
        ref, sha = data.get("ref", ""), data.get("sha", "")
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise ApiError(422, "Reference name must start with 'refs/' and have at least two slashes.")
        if ref in gitrepo.refs(repo.path):
            raise ApiError(422, "Reference already exists")
        require_object(repo, sha)
        gitrepo.update_ref(repo.path, ref, sha)
        api.after_ref_changes(repo, {ref: (None, sha)}, c.login)
        return api.created(g.r.ref(repo, ref, sha))

    @route("/repos/<owner>/<name>/git/refs/<path:ref>", ["PATCH"])
    def update_ref(owner: str, name: str, ref: str) -> Any:
        repo, c = api.load_for(owner, name, "write")
        data = api.body()
        full, old = existing_ref(repo, ref)
        sha = data.get("sha", "")
        require_object(repo, sha)
        if not data.get("force") and not gitrepo.is_ancestor(repo.path, old, sha):
            raise ApiError(422, "Update is not a fast forward")
        gitrepo.update_ref(repo.path, full, sha)
        api.after_ref_changes(repo, {full: (old, sha)}, c.login)
        return jsonify(g.r.ref(repo, full, sha))

    @route("/repos/<owner>/<name>/git/refs/<path:ref>", ["DELETE"])
    def delete_ref(owner: str, name: str, ref: str) -> Any:
        repo, c = api.load_for(owner, name, "write")
        full, old = existing_ref(repo, ref)
        gitrepo.delete_ref(repo.path, full)
        api.after_ref_changes(repo, {full: (old, None)}, c.login)
        return Response(status=204)

    return bp
