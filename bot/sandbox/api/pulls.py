"""Pull requests: open, list, edit, files, commits, reviews."""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, g, jsonify, request

from bot.sandbox import gitrepo
from bot.sandbox.api.common import Api, invalid
from bot.sandbox.api.issues import edit_issue_fields
from bot.sandbox.state import ApiError, Issue, PullInfo, Repo, Review


def register(api: Api) -> Blueprint:
    bp = api.blueprint("pulls")
    route, state = functools.partial(api.route, bp), api.state

    @route("/repos/<owner>/<name>/pulls")
    def list_pulls(owner: str, name: str) -> Any:
        repo = api.load(owner, name)
        want_state = request.args.get("state", "open")
        head = request.args.get("head")
        base = request.args.get("base")
        items = [i for i in repo.issues.values() if i.pull and (want_state == "all" or i.state == want_state)]
        if head:
            howner, _, href = head.partition(":")
            items = [
                i
                for i in items
                if i.pull
                and (not href or i.pull.head_ref == href)
                and i.pull.head_repo.split("/")[0].lower() == howner.lower()
            ]
        if base:
            items = [i for i in items if i.pull and i.pull.base_ref == base]
        items.sort(key=lambda i: i.number, reverse=request.args.get("direction", "desc") == "desc")
        return api.listing(items, lambda i: g.r.pull(repo, i, full=False))

    @route("/repos/<owner>/<name>/pulls", ["POST"])
    def create_pull(owner: str, name: str) -> Any:
        repo = api.load(owner, name)
        c = api.caller()
        data = api.body()
        head, base = data.get("head") or "", data.get("base") or ""
        if not head or not base:
            raise invalid("PullRequest", "missing_field", "head" if not head else "base")
        howner, _, href = head.rpartition(":")
        head_repo = state.repo_in_network(repo, howner) if howner else repo
        base_sha = gitrepo.branch_sha(repo.path, base)
        head_sha = gitrepo.branch_sha(head_repo.path, href) if head_repo else None
        if head_repo is None or head_sha is None or base_sha is None:
            raise invalid("PullRequest", "invalid", "head" if base_sha else "base")
        if state.open_pull_for(repo, head_repo, href, base):
            raise invalid(
                "PullRequest",
                "custom",
                message=f"A pull request already exists for {head_repo.owner}:{href}.",
            )
        alts = [head_repo.path] if head_repo is not repo else None
        ahead, _ = gitrepo.ahead_behind(repo.path, base_sha, head_sha, alternates=alts)
        if ahead == 0:
            raise invalid("PullRequest", "custom", message=f"No commits between {base} and {href}")
        if not data.get("title"):
            raise invalid("PullRequest", "missing_field", "title")
        pull = PullInfo(
            head_repo.full_name,
            href,
            base,
            bool(data.get("draft")),
            bool(data.get("maintainer_can_modify")),
            base_sha,
        )
        issue = state.create_issue(repo, c.login, data["title"], data.get("body"), pull=pull)
        gitrepo.fetch_commit(repo.path, head_repo.path, head_sha, f"refs/pull/{issue.number}/head")
        api.emit_issue(repo, issue, "opened", c.login)
        return api.created(g.r.pull(repo, issue))

    def load_pull(repo: Repo, number: int) -> Issue:
        issue = state.issue(repo, number)
        if issue.pull is None:
            raise ApiError(404, "Not Found")
        return issue

    @route("/repos/<owner>/<name>/pulls/<int:number>")
    def get_pull(owner: str, name: str, number: int) -> Any:
        repo = api.load(owner, name)
        return jsonify(g.r.pull(repo, load_pull(repo, number)))

    @route("/repos/<owner>/<name>/pulls/<int:number>", ["PATCH"])
    def edit_pull(owner: str, name: str, number: int) -> Any:
        repo = api.load(owner, name)
        c = api.caller()
        issue = load_pull(repo, number)
        api.require_author_or(repo, c, issue.user, "write")
        data = api.body()
        data.pop("labels", None)
        edit_issue_fields(api, repo, issue, data, c)
        return jsonify(g.r.pull(repo, issue))

    def pull_head(owner: str, name: str, number: int) -> tuple[Repo, PullInfo, Repo, str]:
        """(repo, pull, head repository, head sha) of pull request `number`."""
        repo = api.load(owner, name)
        issue = load_pull(repo, number)
        p = issue.pull
        assert p is not None
        head_repo = state.head_repo(p)
        if head_repo is None:  # the head's repository was deleted: GitHub keeps refs/pull/<n>/head
            return repo, p, repo, gitrepo.resolve(repo.path, f"refs/pull/{issue.number}/head") or ""
        return repo, p, head_repo, gitrepo.branch_sha(head_repo.path, p.head_ref) or ""

    @route("/repos/<owner>/<name>/pulls/<int:number>/files")
    def pull_files(owner: str, name: str, number: int) -> Any:
        repo, p, head_repo, head_sha = pull_head(owner, name, number)
        alts = [head_repo.path]
        mb = gitrepo.merge_base(
            repo.path, gitrepo.branch_sha(repo.path, p.base_ref) or p.base_sha, head_sha, alternates=alts
        )
        files = gitrepo.diff_files(repo.path, mb or p.base_sha, head_sha, alternates=alts)
        return api.listing(files, lambda f: g.r.file_change(repo, head_sha, f))

    @route("/repos/<owner>/<name>/pulls/<int:number>/commits")
    def pull_commits(owner: str, name: str, number: int) -> Any:
        repo, p, head_repo, head_sha = pull_head(owner, name, number)
        alts = [head_repo.path]
        base_sha = gitrepo.branch_sha(repo.path, p.base_ref) or p.base_sha
        shas = gitrepo.commits_between(repo.path, base_sha, head_sha, alternates=alts)
        return api.listing(shas, lambda s: g.r.commit(repo, s, alternates=alts))

    @route("/repos/<owner>/<name>/pulls/<int:number>/reviews", ["GET", "POST"])
    def reviews(owner: str, name: str, number: int) -> Any:
        repo = api.load(owner, name)
        issue = load_pull(repo, number)
        if request.method == "GET":
            return api.listing(issue.reviews, lambda rv: g.r.review(repo, issue, rv))
        c = api.caller()
        data = api.body()
        event = data.get("event", "COMMENT")
        states = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}
        if event not in states:
            raise invalid("PullRequestReview", "invalid", "event")
        if event != "APPROVE" and event != "COMMENT" and not data.get("body"):
            raise ApiError(422, "Validation Failed: body is required for REQUEST_CHANGES")
        if c.login == issue.user and event != "COMMENT":
            raise ApiError(
                422, "Unprocessable Entity: can not approve or request changes on your own pull request"
            )
        p = issue.pull
        assert p is not None
        head_of = state.head_repo(p)
        head_sha = gitrepo.branch_sha(head_of.path, p.head_ref) if head_of else None
        rv = Review(
            state.next_id("review"),
            c.login,
            data.get("body") or "",
            states[event],
            data.get("commit_id") or head_sha,
        )
        issue.reviews.append(rv)
        api.emit(
            "pull_request_review",
            repo,
            c.login,
            action="submitted",
            review=g.r.review(repo, issue, rv),
            pull_request=g.r.pull(repo, issue, full=False),
        )
        return jsonify(g.r.review(repo, issue, rv))

    return bp
