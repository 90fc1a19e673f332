"""GitHub-shaped JSON for sandbox objects; every URL points back at the sandbox itself."""

from __future__ import annotations

import base64
from typing import Any

from bot.sandbox import gitrepo
from bot.sandbox.state import (
    REACTIONS,
    App,
    CheckRun,
    Comment,
    Installation,
    Issue,
    Label,
    Reaction,
    Repo,
    Review,
    SandboxState,
    User,
    now_iso,
)


def node_id(kind: str, ident: int | str) -> str:
    return base64.b64encode(f"{kind}:{ident}".encode()).decode().rstrip("=")


class Renderer:
    """Builds API objects for one request; `base` is the sandbox root URL (no trailing slash)."""

    def __init__(self, base: str, state: SandboxState) -> None:
        self.base = base.rstrip("/")
        self.api = self.base + "/api/v3"
        self.state = state

    # ---- users ---------------------------------------------------------------------------------
    def user(self, user: User | str) -> dict[str, Any]:
        if isinstance(user, str):
            user = self.state.user(user)
        u = f"{self.api}/users/{user.login}"
        return {
            "login": user.login,
            "id": user.id,
            "node_id": node_id("User", user.id),
            "avatar_url": f"{self.base}/avatars/{user.login}",
            "gravatar_id": "",
            "url": u,
            "html_url": f"{self.base}/{user.login}",
            "followers_url": f"{u}/followers",
            "following_url": f"{u}/following{{/other_user}}",
            "gists_url": f"{u}/gists{{/gist_id}}",
            "starred_url": f"{u}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{u}/subscriptions",
            "organizations_url": f"{u}/orgs",
            "repos_url": f"{u}/repos",
            "events_url": f"{u}/events{{/privacy}}",
            "received_events_url": f"{u}/received_events",
            "type": user.type,
            "site_admin": False,
            "user_view_type": "public",
        }

    def private_user(self, user: User) -> dict[str, Any]:
        d = self.user(user)
        d.update(
            {
                "name": user.login,
                "company": None,
                "blog": "",
                "location": None,
                "email": None,
                "hireable": None,
                "bio": None,
                "twitter_username": None,
                "public_repos": 0,
                "public_gists": 0,
                "followers": 0,
                "following": 0,
                "created_at": user.created_at,
                "updated_at": user.created_at,
                "private_gists": 0,
                "total_private_repos": 0,
                "owned_private_repos": 0,
                "disk_usage": 0,
                "collaborators": 0,
                "two_factor_authentication": False,
                "plan": {"name": "free", "space": 976562499, "private_repos": 10000, "collaborators": 0},
            }
        )
        return d

    # ---- repos ---------------------------------------------------------------------------------
    def repo(self, repo: Repo, full: bool = True, caller_perm: str | None = None) -> dict[str, Any]:
        r = f"{self.api}/repos/{repo.full_name}"
        d: dict[str, Any] = {
            "id": repo.id,
            "node_id": node_id("Repository", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self.user(repo.owner),
            "private": repo.private,
            "html_url": f"{self.base}/{repo.full_name}",
            "description": repo.description,
            "fork": bool(repo.parent),
            "url": r,
            "archive_url": f"{r}/{{archive_format}}{{/ref}}",
            "assignees_url": f"{r}/assignees{{/user}}",
            "blobs_url": f"{r}/git/blobs{{/sha}}",
            "branches_url": f"{r}/branches{{/branch}}",
            "collaborators_url": f"{r}/collaborators{{/collaborator}}",
            "comments_url": f"{r}/comments{{/number}}",
            "commits_url": f"{r}/commits{{/sha}}",
            "compare_url": f"{r}/compare/{{base}}...{{head}}",
            "contents_url": f"{r}/contents/{{+path}}",
            "contributors_url": f"{r}/contributors",
            "deployments_url": f"{r}/deployments",
            "downloads_url": f"{r}/downloads",
            "events_url": f"{r}/events",
            "forks_url": f"{r}/forks",
            "git_commits_url": f"{r}/git/commits{{/sha}}",
            "git_refs_url": f"{r}/git/refs{{/sha}}",
            "git_tags_url": f"{r}/git/tags{{/sha}}",
            "git_url": f"{self.base}/{repo.full_name}.git".replace("http://", "git://", 1),
            "hooks_url": f"{r}/hooks",
            "issue_comment_url": f"{r}/issues/comments{{/number}}",
            "issue_events_url": f"{r}/issues/events{{/number}}",
            "issues_url": f"{r}/issues{{/number}}",
            "keys_url": f"{r}/keys{{/key_id}}",
            "labels_url": f"{r}/labels{{/name}}",
            "languages_url": f"{r}/languages",
            "merges_url": f"{r}/merges",
            "milestones_url": f"{r}/milestones{{/number}}",
            "notifications_url": f"{r}/notifications{{?since,all,participating}}",
            "pulls_url": f"{r}/pulls{{/number}}",
            "releases_url": f"{r}/releases{{/id}}",
            "ssh_url": f"git@sandbox:{repo.full_name}.git",
            "stargazers_url": f"{r}/stargazers",
            "statuses_url": f"{r}/statuses/{{sha}}",
            "subscribers_url": f"{r}/subscribers",
            "subscription_url": f"{r}/subscription",
            "tags_url": f"{r}/tags",
            "teams_url": f"{r}/teams",
            "trees_url": f"{r}/git/trees{{/sha}}",
            "clone_url": f"{self.base}/{repo.full_name}.git",
            "mirror_url": None,
            "svn_url": f"{self.base}/{repo.full_name}",
            "homepage": None,
            "language": None,
            "forks_count": len(self.state.forks_of(repo)),
            "stargazers_count": 0,
            "watchers_count": 0,
            "size": 0,
            "default_branch": repo.default_branch,
            "open_issues_count": sum(1 for i in repo.issues.values() if i.state == "open"),
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": False,
            "has_wiki": False,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "visibility": "private" if repo.private else "public",
            "pushed_at": repo.pushed_at,
            "created_at": repo.created_at,
            "updated_at": repo.updated_at,
            "allow_forking": True,
            "web_commit_signoff_required": False,
            "license": None,
        }
        d["forks"] = d["forks_count"]
        d["open_issues"] = d["open_issues_count"]
        d["watchers"] = 0
        if caller_perm is not None:
            from bot.sandbox.state import perm_at_least

            d["permissions"] = {p: perm_at_least(caller_perm, p) for p in ("admin", "maintain", "triage")}
            d["permissions"]["push"] = perm_at_least(caller_perm, "write")
            d["permissions"]["pull"] = perm_at_least(caller_perm, "read")
        if full:
            d["network_count"] = len(self.state.network(repo)) - 1
            d["subscribers_count"] = 0
            if repo.parent:
                parent = self.state.repo(*repo.parent.split("/", 1))
                source = self.state.repo(*(repo.source or repo.parent).split("/", 1))
                d["parent"] = self.repo(parent, full=False)
                d["source"] = self.repo(source, full=False)
        return d

    # ---- labels, reactions -----------------------------------------------------------------------
    def label(self, repo: Repo, label: Label) -> dict[str, Any]:
        return {
            "id": label.id,
            "node_id": node_id("Label", label.id),
            "name": label.name,
            "url": f"{self.api}/repos/{repo.full_name}/labels/{label.name}",
            "color": label.color,
            "description": label.description,
            "default": False,
        }

    def reaction(self, r: Reaction) -> dict[str, Any]:
        return {
            "id": r.id,
            "node_id": node_id("Reaction", r.id),
            "user": self.user(r.user),
            "content": r.content,
            "created_at": r.created_at,
        }

    def rollup(self, url: str, reactions: list[Reaction]) -> dict[str, Any]:
        d: dict[str, Any] = {"url": url, "total_count": len(reactions)}
        for c in REACTIONS:
            d[c] = sum(1 for r in reactions if r.content == c)
        return d

    def association(self, repo: Repo, login: str) -> str:
        if login == repo.owner:
            return "OWNER"
        if login in repo.collaborators and repo.collaborators[login] != "none":
            return "COLLABORATOR"
        if any(i.user == login for i in repo.issues.values()):
            return "CONTRIBUTOR" if any(i.pull and i.user == login for i in repo.issues.values()) else "NONE"
        return "NONE"

    # ---- issues & comments -------------------------------------------------------------------------
    def issue(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        r = f"{self.api}/repos/{repo.full_name}"
        u = f"{r}/issues/{issue.number}"
        kind = "pull" if issue.pull else "issues"
        d: dict[str, Any] = {
            "id": issue.id,
            "node_id": node_id("Issue", issue.id),
            "url": u,
            "repository_url": r,
            "labels_url": f"{u}/labels{{/name}}",
            "comments_url": f"{u}/comments",
            "events_url": f"{u}/events",
            "html_url": f"{self.base}/{repo.full_name}/{kind}/{issue.number}",
            "number": issue.number,
            "state": issue.state,
            "state_reason": issue.state_reason,
            "title": issue.title,
            "body": issue.body,
            "user": self.user(issue.user),
            "labels": [
                self.label(repo, lab) for n in issue.labels if (lab := self.state.find_label(repo, n))
            ],
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "locked": False,
            "active_lock_reason": None,
            "comments": len(issue.comment_ids),
            "closed_at": issue.closed_at,
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_by": None,
            "author_association": self.association(repo, issue.user),
            "reactions": self.rollup(f"{u}/reactions", issue.reactions),
            "timeline_url": f"{u}/timeline",
            "performed_via_github_app": None,
        }
        if issue.pull:
            d["pull_request"] = {
                "url": f"{r}/pulls/{issue.number}",
                "html_url": d["html_url"],
                "diff_url": d["html_url"] + ".diff",
                "patch_url": d["html_url"] + ".patch",
                "merged_at": None,
            }
            d["draft"] = issue.pull.draft
        return d

    def comment(self, repo: Repo, c: Comment) -> dict[str, Any]:
        r = f"{self.api}/repos/{repo.full_name}"
        issue = repo.issues[c.issue_number]
        kind = "pull" if issue.pull else "issues"
        return {
            "id": c.id,
            "node_id": node_id("IssueComment", c.id),
            "url": f"{r}/issues/comments/{c.id}",
            "html_url": f"{self.base}/{repo.full_name}/{kind}/{c.issue_number}#issuecomment-{c.id}",
            "body": c.body,
            "user": self.user(c.user),
            "created_at": c.created_at,
            "updated_at": c.updated_at,
            "issue_url": f"{r}/issues/{c.issue_number}",
            "author_association": self.association(repo, c.user),
            "reactions": self.rollup(f"{r}/issues/comments/{c.id}/reactions", c.reactions),
            "performed_via_github_app": None,
        }

    # ---- pulls -------------------------------------------------------------------------------------
    def pull(self, repo: Repo, issue: Issue, full: bool = True) -> dict[str, Any]:
        assert issue.pull is not None
        p = issue.pull
        r = f"{self.api}/repos/{repo.full_name}"
        u = f"{r}/pulls/{issue.number}"
        html = f"{self.base}/{repo.full_name}/pull/{issue.number}"
        head_repo = self.state.head_repo(p)
        if head_repo is not None:
            head_sha = gitrepo.branch_sha(head_repo.path, p.head_ref) or ""
        else:  # the head's repository was deleted: head.repo is null, the sha is refs/pull/<n>/head's
            head_sha = gitrepo.resolve(repo.path, f"refs/pull/{issue.number}/head") or ""
        head_owner = p.head_repo.split("/", 1)[0]
        base_sha = gitrepo.branch_sha(repo.path, p.base_ref) or p.base_sha
        iss = self.issue(repo, issue)
        d: dict[str, Any] = {
            "url": u,
            "id": issue.id,
            "node_id": node_id("PullRequest", issue.id),
            "html_url": html,
            "diff_url": html + ".diff",
            "patch_url": html + ".patch",
            "issue_url": f"{r}/issues/{issue.number}",
            "commits_url": f"{u}/commits",
            "review_comments_url": f"{u}/comments",
            "review_comment_url": f"{r}/pulls/comments{{/number}}",
            "comments_url": f"{r}/issues/{issue.number}/comments",
            "statuses_url": f"{r}/statuses/{head_sha}",
            "number": issue.number,
            "state": issue.state,
            "locked": False,
            "title": issue.title,
            "user": iss["user"],
            "body": issue.body,
            "labels": iss["labels"],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
            "merged_at": None,
            "merge_commit_sha": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "draft": p.draft,
            "author_association": iss["author_association"],
            "auto_merge": None,
            "head": {
                "label": f"{head_owner}:{p.head_ref}",
                "ref": p.head_ref,
                "sha": head_sha,
                "user": self.user(head_owner),
                "repo": self.repo(head_repo, full=False) if head_repo is not None else None,
            },
            "base": {
                "label": f"{repo.owner}:{p.base_ref}",
                "ref": p.base_ref,
                "sha": base_sha,
                "user": self.user(repo.owner),
                "repo": self.repo(repo, full=False),
            },
            "_links": {
                "self": {"href": u},
                "html": {"href": html},
                "issue": {"href": f"{r}/issues/{issue.number}"},
                "comments": {"href": f"{r}/issues/{issue.number}/comments"},
                "review_comments": {"href": f"{u}/comments"},
                "review_comment": {"href": f"{r}/pulls/comments{{/number}}"},
                "commits": {"href": f"{u}/commits"},
                "statuses": {"href": f"{r}/statuses/{head_sha}"},
            },
        }
        if full:
            stats = self._pull_stats(repo, head_repo or repo, p.base_ref, head_sha)
            d.update(
                {
                    "merged": False,
                    "mergeable": None,
                    "rebaseable": None,
                    "mergeable_state": "unknown",
                    "merged_by": None,
                    "comments": len(issue.comment_ids),
                    "review_comments": 0,
                    "maintainer_can_modify": p.maintainer_can_modify,
                    **stats,
                }
            )
        return d

    def _pull_stats(self, repo: Repo, head_repo: Repo, base_ref: str, head_sha: str) -> dict[str, int]:
        base_sha = gitrepo.branch_sha(repo.path, base_ref)
        if not base_sha or not head_sha:
            return {"commits": 0, "additions": 0, "deletions": 0, "changed_files": 0}
        alt = [head_repo.path] if head_repo is not repo else None
        mb = gitrepo.merge_base(repo.path, base_sha, head_sha, alternates=alt) or base_sha
        files = gitrepo.diff_files(repo.path, mb, head_sha, alternates=alt)
        return {
            "commits": len(gitrepo.commits_between(repo.path, mb, head_sha, alternates=alt)),
            "additions": sum(f.additions for f in files),
            "deletions": sum(f.deletions for f in files),
            "changed_files": len(files),
        }

    def review(self, repo: Repo, issue: Issue, rv: Review) -> dict[str, Any]:
        r = f"{self.api}/repos/{repo.full_name}"
        html = f"{self.base}/{repo.full_name}/pull/{issue.number}"
        return {
            "id": rv.id,
            "node_id": node_id("PullRequestReview", rv.id),
            "user": self.user(rv.user),
            "body": rv.body,
            "state": rv.state,
            "commit_id": rv.commit_id,
            "html_url": f"{html}#pullrequestreview-{rv.id}",
            "pull_request_url": f"{r}/pulls/{issue.number}",
            "_links": {
                "html": {"href": f"{html}#pullrequestreview-{rv.id}"},
                "pull_request": {"href": f"{r}/pulls/{issue.number}"},
            },
            "submitted_at": rv.submitted_at,
            "author_association": self.association(repo, rv.user),
        }

    # ---- git objects -------------------------------------------------------------------------------
    def commit(
        self, repo: Repo, sha: str, alternates: list[Any] | None = None, with_files: bool = False
    ) -> dict[str, Any]:
        info = gitrepo.commit_info(repo.path, sha, alternates=alternates)
        r = f"{self.api}/repos/{repo.full_name}"
        d: dict[str, Any] = {
            "url": f"{r}/commits/{sha}",
            "sha": sha,
            "node_id": node_id("Commit", sha),
            "html_url": f"{self.base}/{repo.full_name}/commit/{sha}",
            "comments_url": f"{r}/commits/{sha}/comments",
            "commit": {
                "url": f"{r}/git/commits/{sha}",
                "message": info.message,
                "comment_count": 0,
                "author": {"name": info.author_name, "email": info.author_email, "date": info.author_date},
                "committer": {
                    "name": info.committer_name,
                    "email": info.committer_email,
                    "date": info.committer_date,
                },
                "tree": {"sha": info.tree, "url": f"{r}/git/trees/{info.tree}"},
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "author": self._user_by_email(info.author_email),
            "committer": self._user_by_email(info.committer_email),
            "parents": [
                {"sha": p, "url": f"{r}/commits/{p}", "html_url": f"{self.base}/{repo.full_name}/commit/{p}"}
                for p in info.parents
            ],
        }
        if with_files:
            base = (
                info.parents[0]
                if info.parents
                else gitrepo.git(repo.path, "hash-object", "-t", "tree", "/dev/null").strip()
            )
            files = gitrepo.diff_files(repo.path, base, sha, alternates=alternates)
            d["files"] = [self.file_change(repo, sha, f) for f in files]
            adds, dels = sum(f.additions for f in files), sum(f.deletions for f in files)
            d["stats"] = {"total": adds + dels, "additions": adds, "deletions": dels}
        return d

    def _user_by_email(self, email: str) -> dict[str, Any] | None:
        local = email.split("@", 1)[0]
        user = self.state.users.get(local)
        return self.user(user) if user else None

    def file_change(self, repo: Repo, sha: str, f: gitrepo.FileChange) -> dict[str, Any]:
        d: dict[str, Any] = {
            "sha": f.blob_sha or "0" * 40,
            "filename": f.filename,
            "status": f.status,
            "additions": f.additions,
            "deletions": f.deletions,
            "changes": f.additions + f.deletions,
            "blob_url": f"{self.base}/{repo.full_name}/blob/{sha}/{f.filename}",
            "raw_url": f"{self.base}/{repo.full_name}/raw/{sha}/{f.filename}",
            "contents_url": f"{self.api}/repos/{repo.full_name}/contents/{f.filename}?ref={sha}",
        }
        if f.patch is not None:
            d["patch"] = f.patch
        if f.previous_filename:
            d["previous_filename"] = f.previous_filename
        return d

    def ref(self, repo: Repo, ref: str, sha: str) -> dict[str, Any]:
        r = f"{self.api}/repos/{repo.full_name}"
        return {
            "ref": ref,
            "node_id": node_id("Ref", f"{repo.id}:{ref}"),
            "url": f"{r}/git/{ref}",
            "object": {"type": "commit", "sha": sha, "url": f"{r}/git/commits/{sha}"},
        }

    def branch(self, repo: Repo, name: str, sha: str) -> dict[str, Any]:
        r = f"{self.api}/repos/{repo.full_name}"
        return {
            "name": name,
            "commit": self.commit(repo, sha),
            "_links": {"self": f"{r}/branches/{name}", "html": f"{self.base}/{repo.full_name}/tree/{name}"},
            "protected": False,
            "protection": {
                "enabled": False,
                "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []},
            },
            "protection_url": f"{r}/branches/{name}/protection",
        }

    def content(self, repo: Repo, path: str, ref: str, sha: str, data: bytes) -> dict[str, Any]:
        r = f"{self.api}/repos/{repo.full_name}"
        html = f"{self.base}/{repo.full_name}/blob/{ref}/{path}"
        git_url = f"{r}/git/blobs/{sha}"
        url = f"{r}/contents/{path}?ref={ref}"
        return {
            "type": "file",
            "encoding": "base64",
            "size": len(data),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": base64.encodebytes(data).decode(),
            "sha": sha,
            "url": url,
            "git_url": git_url,
            "html_url": html,
            "download_url": f"{self.base}/{repo.full_name}/raw/{ref}/{path}",
            "_links": {"self": url, "git": git_url, "html": html},
        }

    def dir_entry(
        self, repo: Repo, ref: str, parent: str, typ: str, sha: str, name: str, size: int
    ) -> dict[str, Any]:
        path = f"{parent}/{name}" if parent else name
        r = f"{self.api}/repos/{repo.full_name}"
        kind = "dir" if typ == "tree" else "file"
        html = f"{self.base}/{repo.full_name}/{'tree' if kind == 'dir' else 'blob'}/{ref}/{path}"
        url = f"{r}/contents/{path}?ref={ref}"
        git_url = f"{r}/git/{'trees' if kind == 'dir' else 'blobs'}/{sha}"
        return {
            "type": kind,
            "size": size,
            "name": name,
            "path": path,
            "sha": sha,
            "url": url,
            "git_url": git_url,
            "html_url": html,
            "download_url": None if kind == "dir" else f"{self.base}/{repo.full_name}/raw/{ref}/{path}",
            "_links": {"self": url, "git": git_url, "html": html},
        }

    # ---- checks & apps -----------------------------------------------------------------------------
    def app(self, app: App) -> dict[str, Any]:
        return {
            "id": app.id,
            "slug": app.slug,
            "node_id": node_id("Integration", app.id),
            "client_id": f"Iv1.{app.id:016x}",
            "owner": self.user(app.owner),
            "name": app.name,
            "description": app.description if app.description is not None else f"{app.name} (sandbox)",
            "external_url": app.external_url or f"{self.base}/apps/{app.slug}",
            "html_url": f"{self.base}/apps/{app.slug}",
            "created_at": app.created_at,
            "updated_at": app.created_at,
            "permissions": dict(app.permissions),
            "events": list(app.events),
            "installations_count": sum(1 for i in self.state.installations.values() if i.app_id == app.id),
        }

    def installation(self, inst: Installation) -> dict[str, Any]:
        app = self.state.apps[inst.app_id]
        account = self.state.user(inst.account)
        return {
            "id": inst.id,
            "account": self.user(account),
            "access_tokens_url": f"{self.api}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{self.api}/installation/repositories",
            "html_url": f"{self.base}/settings/installations/{inst.id}",
            "app_id": app.id,
            "app_slug": app.slug,
            "target_id": account.id,
            "target_type": "Organization" if account.type == "Organization" else "User",
            "permissions": dict(inst.permissions),
            "events": list(app.events),
            "created_at": inst.created_at,
            "updated_at": inst.created_at,
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "repository_selection": "selected",
            "suspended_by": None,
            "suspended_at": None,
        }

    def check_run(self, repo: Repo, run: CheckRun) -> dict[str, Any]:
        r = f"{self.api}/repos/{repo.full_name}"
        app = self.state.apps.get(run.app_id) if run.app_id else None
        out = run.output
        return {
            "id": run.id,
            "head_sha": run.head_sha,
            "node_id": node_id("CheckRun", run.id),
            "external_id": run.external_id,
            "url": f"{r}/check-runs/{run.id}",
            "html_url": f"{self.base}/{repo.full_name}/runs/{run.id}",
            # GitHub: without one given, the App's homepage
            "details_url": run.details_url or (f"{self.base}/apps/{app.slug}" if app else None),
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": run.started_at,
            "completed_at": run.completed_at,
            "name": run.name,
            "check_suite": {"id": run.id},
            "output": {
                "title": out.get("title"),
                "summary": out.get("summary"),
                "text": out.get("text"),
                "annotations_count": 0,
                "annotations_url": f"{r}/check-runs/{run.id}/annotations",
            },
            "app": self.app(app) if app else None,
            "pull_requests": self.check_pulls(repo, run.head_sha),
        }

    def check_pulls(self, repo: Repo, sha: str) -> list[dict[str, Any]]:
        """The open pull requests of `repo` whose head is `sha`, as a check run lists them (minimal)."""
        out = []
        for issue in repo.issues.values():
            p = issue.pull
            if p is None or issue.state != "open":
                continue
            head_repo = self.state.repos.get(p.head_repo)
            head_sha = gitrepo.resolve(head_repo.path, f"refs/heads/{p.head_ref}") if head_repo else None
            if head_sha != sha:
                continue

            def side(r: Repo, ref: str, at: str | None) -> dict[str, Any]:
                return {
                    "ref": ref,
                    "sha": at or "",
                    "repo": {"id": r.id, "url": f"{self.api}/repos/{r.full_name}", "name": r.name},
                }

            base_sha = gitrepo.resolve(repo.path, f"refs/heads/{p.base_ref}")
            out.append(
                {
                    "id": issue.id,
                    "number": issue.number,
                    "url": f"{self.api}/repos/{repo.full_name}/pulls/{issue.number}",
                    "head": side(head_repo or repo, p.head_ref, head_sha),
                    "base": side(repo, p.base_ref, base_sha),
                }
            )
        return out

    def check_run_event(self, repo: Repo, run: CheckRun) -> dict[str, Any]:
        """A check run as the `check_run` webhook carries it: with its check suite spelled out."""
        d = self.check_run(repo, run)
        app = self.state.apps.get(run.app_id) if run.app_id else None
        d["check_suite"] = {
            "id": run.id,
            "node_id": node_id("CheckSuite", run.id),
            "head_branch": None,
            "head_sha": run.head_sha,
            "status": run.status,
            "conclusion": run.conclusion,
            "url": f"{self.api}/repos/{repo.full_name}/check-suites/{run.id}",
            "before": None,
            "after": run.head_sha,
            "pull_requests": d["pull_requests"],
            "app": self.app(app) if app else None,
            "created_at": run.created_at,
            "updated_at": run.updated_at,
        }
        return d


def installation_ref(inst: Installation | None) -> dict[str, Any] | None:
    if inst is None:
        return None
    return {"id": inst.id, "node_id": node_id("Installation", inst.id)}


__all__ = ["Renderer", "node_id", "installation_ref", "now_iso"]
