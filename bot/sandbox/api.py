"""The GitHub REST subset served under /api/v3 (JSON shapes as api.github.com's)."""
from __future__ import annotations

import base64
import functools
import time
import urllib.parse
from typing import Any, Callable

import jwt
from flask import Blueprint, Response, g, jsonify, request

from bot.sandbox import gitrepo
from bot.sandbox.render import Renderer, installation_ref
from bot.sandbox.state import (ApiError, App, Caller, Issue, PullInfo, Repo, Review, SandboxState, now_iso,
                               perm_at_least)


def parse_auth(state: SandboxState) -> tuple[Caller | None, str | None]:
    """(caller, raw bearer) from the Authorization header; raises 401 for unknown tokens."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None, None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value).decode().split(":", 1)[1]
        except (ValueError, IndexError):
            raise ApiError(401, "Bad credentials")
    elif scheme.lower() not in ("token", "bearer"):
        raise ApiError(401, "Bad credentials")
    caller = state.authenticate(value)
    if caller is None and value.count(".") == 2:
        return None, value  # a JWT: only app endpoints accept it
    if caller is None:
        raise ApiError(401, "Bad credentials")
    return caller, None


def app_from_jwt(state: SandboxState, token: str | None) -> App:
    """Verify an app JWT (RS256, iss = app id) against the registered public key."""
    if not token:
        raise ApiError(401, "A JSON web token could not be decoded")
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        app = state.apps.get(int(claims.get("iss")))
    except (jwt.PyJWTError, TypeError, ValueError):
        raise ApiError(401, "A JSON web token could not be decoded")
    if app is None:
        raise ApiError(401, "Integration not found")
    try:
        claims = jwt.decode(token, app.public_key_pem, algorithms=["RS256"],
                            options={"require": ["iat", "exp", "iss"]}, leeway=60)
    except jwt.ExpiredSignatureError:
        raise ApiError(401, "'Expiration time' claim ('exp') must be a numeric value representing the future time "
                            "at which the assertion expires")
    except jwt.PyJWTError:
        raise ApiError(401, "A JSON web token could not be decoded")
    if float(claims["exp"]) - time.time() > 600 + 60:
        raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
    return app


def make_api(state: SandboxState, options: dict[str, Any]) -> Blueprint:
    """Blueprint for /api/v3. `options`: {"checks_require_app": bool}."""
    bp = Blueprint("api", __name__, url_prefix="/api/v3")

    def route(rule: str, methods: list[str] | None = None) -> Callable[[Callable[..., Any]], Any]:
        def deco(fn: Callable[..., Any]) -> Any:
            @functools.wraps(fn)
            def view(**kw: Any) -> Any:
                with state.lock:
                    g.caller, g.jwt = parse_auth(state)
                    g.r = Renderer(request.host_url, state)
                    return fn(**kw)
            bp.add_url_rule(rule, f"{fn.__name__}:{rule}", view, methods=methods or ["GET"])
            return fn
        return deco

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if data is None and request.get_data():
            raise ApiError(400, "Problems parsing JSON")
        return data if isinstance(data, dict) else {}

    def caller() -> Caller:
        if g.caller is None:
            raise ApiError(401, "Requires authentication")
        return g.caller

    def load(owner: str, name: str) -> Repo:
        repo = state.repo(owner, name)
        if state.permission(repo, g.caller) == "none":
            raise ApiError(404, "Not Found")
        return repo

    def paginate(items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        try:
            per_page = max(1, min(100, int(request.args.get("per_page", 30))))
            page = max(1, int(request.args.get("page", 1)))
        except ValueError:
            raise ApiError(422, "Invalid pagination parameters")
        last = max(1, -(-len(items) // per_page))
        links = []

        def link(p: int, rel: str) -> str:
            args = dict(request.args)
            args.update(page=str(p), per_page=str(per_page))
            return f'<{request.base_url}?{urllib.parse.urlencode(args)}>; rel="{rel}"'
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        headers = {"Link": ", ".join(links)} if links else {}
        return items[(page - 1) * per_page: page * per_page], headers

    def listing(items: list[Any], render: Callable[[Any], Any]) -> Response:
        page, headers = paginate(items)
        resp = jsonify([render(x) for x in page])
        resp.headers.update(headers)
        return resp

    def created(obj: Any, status: int = 201) -> tuple[Response, int]:
        return jsonify(obj), status

    # ---- webhooks ---------------------------------------------------------------------------------
    def emit(event: str, repo: Repo | None, sender: str, **payload: Any) -> None:
        insts = {}
        if repo is not None:
            payload["repository"] = g.r.repo(repo, full=False)
            insts = repo_installations(state, repo)
        payload["sender"] = g.r.user(sender)
        state.sender.emit(event, payload, insts)

    def emit_issue(repo: Repo, issue: Issue, action: str, sender: str, **extra: Any) -> None:
        if issue.pull:
            emit("pull_request", repo, sender, action=action, number=issue.number,
                 pull_request=g.r.pull(repo, issue), **extra)
        else:
            emit("issues", repo, sender, action=action, issue=g.r.issue(repo, issue), **extra)

    def after_ref_changes(repo: Repo, changes: dict[str, tuple[str | None, str | None]], sender: str) -> None:
        """Fire push + pull_request synchronize for ref updates (from git push or the refs API)."""
        fire_ref_events(state, g.r, repo, changes, sender)
    bp.after_ref_changes = after_ref_changes  # type: ignore[attr-defined]

    # ---- meta, users, apps ----------------------------------------------------------------------
    @route("/rate_limit")
    def rate_limit() -> Any:
        reset = int(time.time()) + 3600
        core = {"limit": 5000, "used": 1, "remaining": 4999, "reset": reset}
        return jsonify({"resources": {"core": core, "search": {**core, "limit": 30, "remaining": 29},
                                      "graphql": core}, "rate": core})

    @route("/user")
    def get_user() -> Any:
        c = caller()
        if c.installation:
            raise ApiError(403, "Resource not accessible by integration")
        return jsonify(g.r.private_user(state.user(c.login)))

    @route("/users/<login>")
    def get_user_by_login(login: str) -> Any:
        return jsonify(g.r.user(state.user(login)))

    @route("/app")
    def get_app() -> Any:
        return jsonify(g.r.app(app_from_jwt(state, g.jwt)))

    @route("/app/installations")
    def list_installations() -> Any:
        app = app_from_jwt(state, g.jwt)
        insts = [i for i in state.installations.values() if i.app_id == app.id]
        return listing(insts, g.r.installation)

    @route("/app/installations/<int:inst_id>")
    def get_installation(inst_id: int) -> Any:
        app = app_from_jwt(state, g.jwt)
        inst = state.installations.get(inst_id)
        if inst is None or inst.app_id != app.id:
            raise ApiError(404, "Not Found")
        return jsonify(g.r.installation(inst))

    @route("/repos/<owner>/<name>/installation")
    def repo_installation(owner: str, name: str) -> Any:
        app = app_from_jwt(state, g.jwt)
        return jsonify(g.r.installation(state.installation_for_repo(app.id, state.repo(owner, name))))

    @route("/app/installations/<int:inst_id>/access_tokens", ["POST"])
    def access_token(inst_id: int) -> Any:
        app = app_from_jwt(state, g.jwt)
        inst = state.installations.get(inst_id)
        if inst is None or inst.app_id != app.id:
            raise ApiError(404, "Not Found")
        tok = state.issue_installation_token(inst_id)
        return created({"token": tok.token, "expires_at": now_iso(tok.expires_at),
                        "permissions": g.r.installation(inst)["permissions"],
                        "repository_selection": "selected"})

    @route("/installation/repositories")
    def installation_repos() -> Any:
        c = caller()
        if not c.installation:
            raise ApiError(403, "This endpoint requires an installation token")
        repos = [state.repo(*r.split("/", 1)) for r in c.installation.repos]
        page, headers = paginate(repos)
        resp = jsonify({"total_count": len(repos), "repository_selection": "selected",
                        "repositories": [g.r.repo(r, full=False) for r in page]})
        resp.headers.update(headers)
        return resp

    # ---- repos ------------------------------------------------------------------------------------
    @route("/repos/<owner>/<name>")
    def get_repo(owner: str, name: str) -> Any:
        repo = load(owner, name)
        perm = state.permission(repo, g.caller) if g.caller else None
        return jsonify(g.r.repo(repo, caller_perm=perm))

    @route("/repos/<owner>/<name>/collaborators/<login>/permission")
    def collaborator_permission(owner: str, name: str, login: str) -> Any:
        repo = load(owner, name)
        caller()
        user = state.user(login)
        perm = state.permission(repo, Caller(login))
        legacy = {"maintain": "write", "triage": "read"}.get(perm, perm)
        u = g.r.user(user)
        u["permissions"] = {"admin": perm_at_least(perm, "admin"), "maintain": perm_at_least(perm, "maintain"),
                            "push": perm_at_least(perm, "write"), "triage": perm_at_least(perm, "triage"),
                            "pull": perm_at_least(perm, "read")}
        u["role_name"] = perm
        return jsonify({"permission": legacy, "role_name": perm, "user": u})

    @route("/repos/<owner>/<name>/forks")
    def list_forks(owner: str, name: str) -> Any:
        repo = load(owner, name)
        return listing(state.forks_of(repo), lambda r: g.r.repo(r, full=False))

    @route("/repos/<owner>/<name>/forks", ["POST"])
    def create_fork(owner: str, name: str) -> Any:
        repo = load(owner, name)
        c = caller()
        data = body()
        target = data.get("organization") or (c.installation.account if c.installation else c.login)
        fork = state.fork(repo, target, data.get("name"))
        return created(g.r.repo(fork), 202)

    # ---- git data ---------------------------------------------------------------------------------
    @route("/repos/<owner>/<name>/branches")
    def list_branches(owner: str, name: str) -> Any:
        repo = load(owner, name)
        heads = sorted((ref[len("refs/heads/"):], sha) for ref, sha in gitrepo.refs(repo.path).items()
                       if ref.startswith("refs/heads/"))
        api = f"{g.r.api}/repos/{repo.full_name}"
        return listing(heads, lambda b: {"name": b[0], "commit": {"sha": b[1], "url": f"{api}/commits/{b[1]}"},
                                         "protected": False})

    @route("/repos/<owner>/<name>/branches/<path:branch>")
    def get_branch(owner: str, name: str, branch: str) -> Any:
        repo = load(owner, name)
        sha = gitrepo.branch_sha(repo.path, branch)
        if sha is None:
            raise ApiError(404, "Branch not found")
        return jsonify(g.r.branch(repo, branch, sha))

    @route("/repos/<owner>/<name>/git/ref/<path:ref>")
    @route("/repos/<owner>/<name>/git/refs/<path:ref>")
    def get_ref(owner: str, name: str, ref: str) -> Any:
        repo = load(owner, name)
        full = "refs/" + ref
        sha = gitrepo.refs(repo.path).get(full)
        if sha is None:
            raise ApiError(404, "Not Found")
        return jsonify(g.r.ref(repo, full, sha))

    @route("/repos/<owner>/<name>/git/blobs/<sha>")
    def get_blob(owner: str, name: str, sha: str) -> Any:
        repo = load(owner, name)
        if gitrepo.git(repo.path, "cat-file", "-t", sha, check=False).strip() != "blob":
            raise ApiError(404, "Not Found")
        data = gitrepo.blob_bytes(repo.path, sha)
        return jsonify({"sha": sha, "node_id": f"B_{sha[:20]}", "size": len(data),
                        "url": f"{g.r.api}/repos/{repo.full_name}/git/blobs/{sha}",
                        "content": base64.encodebytes(data).decode(), "encoding": "base64"})

    @route("/repos/<owner>/<name>/git/refs")
    def list_refs(owner: str, name: str) -> Any:
        repo = load(owner, name)
        return listing(sorted(gitrepo.refs(repo.path).items()), lambda kv: g.r.ref(repo, kv[0], kv[1]))

    @route("/repos/<owner>/<name>/git/refs", ["POST"])
    def create_ref(owner: str, name: str) -> Any:
        repo = load(owner, name)
        c = caller()
        state.require(repo, c, "write")
        data = body()
        ref, sha = data.get("ref", ""), data.get("sha", "")
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise ApiError(422, "Reference name must start with 'refs/' and have at least two slashes.")
        if ref in gitrepo.refs(repo.path):
            raise ApiError(422, "Reference already exists")
        if not sha or not gitrepo.has_object(repo.path, sha):
            raise ApiError(422, "Object does not exist")
        gitrepo.update_ref(repo.path, ref, sha)
        after_ref_changes(repo, {ref: (None, sha)}, c.login)
        return created(g.r.ref(repo, ref, sha))

    @route("/repos/<owner>/<name>/git/refs/<path:ref>", ["PATCH"])
    def update_ref(owner: str, name: str, ref: str) -> Any:
        repo = load(owner, name)
        c = caller()
        state.require(repo, c, "write")
        data = body()
        full, sha = "refs/" + ref, data.get("sha", "")
        old = gitrepo.refs(repo.path).get(full)
        if old is None:
            raise ApiError(422, "Reference does not exist")
        if not sha or not gitrepo.has_object(repo.path, sha):
            raise ApiError(422, "Object does not exist")
        if not data.get("force") and not gitrepo.is_ancestor(repo.path, old, sha):
            raise ApiError(422, "Update is not a fast forward")
        gitrepo.update_ref(repo.path, full, sha)
        after_ref_changes(repo, {full: (old, sha)}, c.login)
        return jsonify(g.r.ref(repo, full, sha))

    @route("/repos/<owner>/<name>/git/refs/<path:ref>", ["DELETE"])
    def delete_ref(owner: str, name: str, ref: str) -> Any:
        repo = load(owner, name)
        c = caller()
        state.require(repo, c, "write")
        full = "refs/" + ref
        old = gitrepo.refs(repo.path).get(full)
        if old is None:
            raise ApiError(422, "Reference does not exist")
        gitrepo.delete_ref(repo.path, full)
        after_ref_changes(repo, {full: (old, None)}, c.login)
        return Response(status=204)

    def contents(owner: str, name: str, path: str = "") -> Any:
        with state.lock:
            g.caller, g.jwt = parse_auth(state)
            g.r = Renderer(request.host_url, state)
            repo = load(owner, name)
            ref = request.args.get("ref") or repo.default_branch
            path = path.strip("/")
            blob = gitrepo.read_blob(repo.path, ref, path) if path else None
            if blob is not None:
                return jsonify(g.r.content(repo, path, ref, blob[0], blob[1]))
            entries = gitrepo.list_tree(repo.path, ref, path)
            if entries is None:
                raise ApiError(404, "Not Found")
            return jsonify([g.r.dir_entry(repo, ref, path, *e) for e in entries])
    bp.add_url_rule("/repos/<owner>/<name>/contents", "contents_root", contents)
    bp.add_url_rule("/repos/<owner>/<name>/contents/", "contents_root_slash", contents)
    bp.add_url_rule("/repos/<owner>/<name>/contents/<path:path>", "contents", contents)

    @route("/repos/<owner>/<name>/commits/<path:ref>")
    def get_commit(owner: str, name: str, ref: str) -> Any:
        repo = load(owner, name)
        if ref.endswith("/check-runs"):
            return list_check_runs_for_ref(repo, ref[: -len("/check-runs")])
        sha = gitrepo.resolve(repo.path, ref)
        if sha is None:
            raise ApiError(422, f"No commit found for SHA: {ref}")
        return jsonify(g.r.commit(repo, sha, with_files=True))

    @route("/repos/<owner>/<name>/compare/<path:basehead>")
    def compare(owner: str, name: str, basehead: str) -> Any:
        repo = load(owner, name)
        if "..." not in basehead:
            raise ApiError(404, "Not Found")
        base_spec, head_spec = basehead.split("...", 1)
        base_repo, base_sha = resolve_spec(repo, base_spec)
        head_repo, head_sha = resolve_spec(repo, head_spec)
        alts = [r.path for r in {base_repo.full_name: base_repo, head_repo.full_name: head_repo}.values()
                if r is not repo]
        mb = gitrepo.merge_base(repo.path, base_sha, head_sha, alternates=alts)
        if mb is None:
            raise ApiError(404, f"No common ancestor between {base_spec} and {head_spec}.")
        ahead, behind = gitrepo.ahead_behind(repo.path, base_sha, head_sha, alternates=alts)
        status = ("identical" if ahead == behind == 0 else "ahead" if behind == 0
                  else "behind" if ahead == 0 else "diverged")
        shas = gitrepo.commits_between(repo.path, mb, head_sha, alternates=alts)
        files = gitrepo.diff_files(repo.path, mb, head_sha, alternates=alts)
        html = f"{g.r.base}/{repo.full_name}/compare/{basehead}"
        return jsonify({
            "url": f"{g.r.api}/repos/{repo.full_name}/compare/{basehead}", "html_url": html,
            "permalink_url": f"{g.r.base}/{repo.full_name}/compare/{base_sha}...{head_sha}",
            "diff_url": html + ".diff", "patch_url": html + ".patch",
            "base_commit": g.r.commit(repo, base_sha, alternates=alts),
            "merge_base_commit": g.r.commit(repo, mb, alternates=alts), "status": status, "ahead_by": ahead,
            "behind_by": behind, "total_commits": len(shas),
            "commits": [g.r.commit(repo, s, alternates=alts) for s in shas[-250:]],
            "files": [g.r.file_change(repo, head_sha, f) for f in files[:300]]})

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

    # ---- labels -----------------------------------------------------------------------------------
    @route("/repos/<owner>/<name>/labels")
    def list_labels(owner: str, name: str) -> Any:
        repo = load(owner, name)
        return listing(sorted(repo.labels.values(), key=lambda lab: lab.name.lower()),
                       lambda lab: g.r.label(repo, lab))

    @route("/repos/<owner>/<name>/labels", ["POST"])
    def create_label(owner: str, name: str) -> Any:
        repo = load(owner, name)
        state.require(repo, caller(), "write")
        data = body()
        lname = data.get("name")
        if not lname:
            raise ApiError(422, "Validation Failed", [{"resource": "Label", "code": "missing_field", "field": "name"}])
        if state.find_label(repo, lname):
            raise ApiError(422, "Validation Failed", [{"resource": "Label", "code": "already_exists",
                                                       "field": "name"}])
        lab = state.ensure_label(repo, lname, (data.get("color") or "ededed").lstrip("#"), data.get("description"))
        return created(g.r.label(repo, lab))

    @route("/repos/<owner>/<name>/labels/<path:lname>")
    def get_label(owner: str, name: str, lname: str) -> Any:
        repo = load(owner, name)
        lab = state.find_label(repo, lname)
        if lab is None:
            raise ApiError(404, "Not Found")
        return jsonify(g.r.label(repo, lab))

    @route("/repos/<owner>/<name>/labels/<path:lname>", ["PATCH", "DELETE"])
    def edit_label(owner: str, name: str, lname: str) -> Any:
        repo = load(owner, name)
        state.require(repo, caller(), "write")
        lab = state.find_label(repo, lname)
        if lab is None:
            raise ApiError(404, "Not Found")
        if request.method == "DELETE":
            del repo.labels[lab.name]
            for issue in repo.issues.values():
                issue.labels = [n for n in issue.labels if n != lab.name]
            return Response(status=204)
        data = body()
        new_name = data.get("new_name") or data.get("name")
        if new_name and new_name != lab.name:
            if state.find_label(repo, new_name) and new_name.lower() != lab.name.lower():
                raise ApiError(422, "Validation Failed", [{"resource": "Label", "code": "already_exists",
                                                           "field": "name"}])
            del repo.labels[lab.name]
            for issue in repo.issues.values():
                issue.labels = [new_name if n == lab.name else n for n in issue.labels]
            lab.name = new_name
            repo.labels[new_name] = lab
        if data.get("color"):
            lab.color = data["color"].lstrip("#")
        if "description" in data:
            lab.description = data["description"]
        return jsonify(g.r.label(repo, lab))

    # ---- issues -----------------------------------------------------------------------------------
    @route("/repos/<owner>/<name>/issues")
    def list_issues(owner: str, name: str) -> Any:
        repo = load(owner, name)
        want_state = request.args.get("state", "open")
        labels = [x for x in request.args.get("labels", "").split(",") if x]
        creator = request.args.get("creator")
        items = [i for i in repo.issues.values()
                 if (want_state == "all" or i.state == want_state)
                 and all(any(lab.lower() == n.lower() for n in i.labels) for lab in labels)
                 and (not creator or i.user == creator)]
        items.sort(key=lambda i: i.number, reverse=request.args.get("direction", "desc") == "desc")
        return listing(items, lambda i: g.r.issue(repo, i))

    @route("/repos/<owner>/<name>/issues", ["POST"])
    def create_issue(owner: str, name: str) -> Any:
        repo = load(owner, name)
        c = caller()
        data = body()
        labels = data.get("labels") or []
        if labels and not perm_at_least(state.permission(repo, c), "triage"):
            labels = []  # GitHub silently drops labels from users without triage
        issue = state.create_issue(repo, c.login, data.get("title") or "", data.get("body"))
        emit_issue(repo, issue, "opened", c.login)
        for lname in labels:
            lab = state.ensure_label(repo, lname)
            issue.labels.append(lab.name)
            emit_issue(repo, issue, "labeled", c.login, label=g.r.label(repo, lab))
        return created(g.r.issue(repo, issue))

    @route("/repos/<owner>/<name>/issues/<int:number>")
    def get_issue(owner: str, name: str, number: int) -> Any:
        repo = load(owner, name)
        return jsonify(g.r.issue(repo, state.issue(repo, number)))

    @route("/repos/<owner>/<name>/issues/<int:number>", ["PATCH"])
    def edit_issue(owner: str, name: str, number: int) -> Any:
        repo = load(owner, name)
        c = caller()
        issue = state.issue(repo, number)
        if c.login != issue.user:
            state.require(repo, c, "triage")
        edit_issue_fields(repo, issue, body(), c)
        return jsonify(g.r.issue(repo, issue))

    def edit_issue_fields(repo: Repo, issue: Issue, data: dict[str, Any], c: Caller) -> None:
        changes: dict[str, Any] = {}
        for key in ("title", "body"):
            if key in data and data[key] != getattr(issue, key):
                if key == "title" and not data[key]:
                    raise ApiError(422, "Validation Failed", [{"resource": "Issue", "code": "missing_field",
                                                               "field": "title"}])
                changes[key] = {"from": getattr(issue, key)}
                setattr(issue, key, data[key])
        issue.updated_at = now_iso()
        if changes:
            emit_issue(repo, issue, "edited", c.login, changes=changes)
        if "labels" in data and isinstance(data["labels"], list):
            state.require(repo, c, "triage")
            set_labels(repo, issue, [x if isinstance(x, str) else x.get("name", "") for x in data["labels"]], c)
        if "base" in data and issue.pull:
            if gitrepo.branch_sha(repo.path, data["base"]) is None:
                raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "code": "invalid",
                                                           "field": "base"}])
            issue.pull.base_ref = data["base"]
        new_state = data.get("state")
        if new_state in ("open", "closed") and new_state != issue.state:
            issue.state = new_state
            issue.closed_at = now_iso() if new_state == "closed" else None
            issue.state_reason = data.get("state_reason") or ("completed" if new_state == "closed" else "reopened")
            emit_issue(repo, issue, "closed" if new_state == "closed" else "reopened", c.login)
        elif new_state not in (None, "open", "closed"):
            raise ApiError(422, "Validation Failed", [{"resource": "Issue", "code": "invalid", "field": "state"}])

    def set_labels(repo: Repo, issue: Issue, names: list[str], c: Caller, replace: bool = True) -> None:
        wanted = []
        for n in names:
            lab = state.ensure_label(repo, n)
            if lab.name not in wanted:
                wanted.append(lab.name)
        removed = [n for n in issue.labels if n not in wanted] if replace else []
        added = [n for n in wanted if n not in issue.labels]
        issue.labels = [n for n in issue.labels if n not in removed] + added
        issue.updated_at = now_iso()
        for n in removed:
            lab = state.find_label(repo, n)
            emit_issue(repo, issue, "unlabeled", c.login, label=g.r.label(repo, lab) if lab else {"name": n})
        for n in added:
            emit_issue(repo, issue, "labeled", c.login, label=g.r.label(repo, state.find_label(repo, n)))

    def label_names(data: Any) -> list[str]:
        items = data.get("labels", []) if isinstance(data, dict) else data if isinstance(data, list) else []
        return [x if isinstance(x, str) else x.get("name", "") for x in items]

    @route("/repos/<owner>/<name>/issues/<int:number>/labels")
    def issue_labels(owner: str, name: str, number: int) -> Any:
        repo = load(owner, name)
        issue = state.issue(repo, number)
        return listing([state.find_label(repo, n) for n in issue.labels], lambda lab: g.r.label(repo, lab))

    @route("/repos/<owner>/<name>/issues/<int:number>/labels", ["POST", "PUT"])
    def add_labels(owner: str, name: str, number: int) -> Any:
        repo = load(owner, name)
        c = caller()
        state.require(repo, c, "triage")
        issue = state.issue(repo, number)
        names = label_names(request.get_json(silent=True))
        if request.method == "POST" and not names:
            raise ApiError(422, "Validation Failed", [{"resource": "Label", "code": "missing_field",
                                                       "field": "labels"}])
        set_labels(repo, issue, names, c, replace=request.method == "PUT")
        return jsonify([g.r.label(repo, state.find_label(repo, n)) for n in issue.labels])

    @route("/repos/<owner>/<name>/issues/<int:number>/labels/<path:lname>", ["DELETE"])
    def remove_label(owner: str, name: str, number: int, lname: str) -> Any:
        repo = load(owner, name)
        c = caller()
        state.require(repo, c, "triage")
        issue = state.issue(repo, number)
        match = next((n for n in issue.labels if n.lower() == lname.lower()), None)
        if match is None:
            raise ApiError(404, "Label does not exist")
        set_labels(repo, issue, [n for n in issue.labels if n != match], c)
        return jsonify([g.r.label(repo, state.find_label(repo, n)) for n in issue.labels])

    # ---- comments ---------------------------------------------------------------------------------
    @route("/repos/<owner>/<name>/issues/<int:number>/comments")
    def list_comments(owner: str, name: str, number: int) -> Any:
        repo = load(owner, name)
        issue = state.issue(repo, number)
        since = request.args.get("since")
        items = [state.comments[i] for i in issue.comment_ids]
        if since:
            items = [x for x in items if x.updated_at >= since]
        return listing(items, lambda x: g.r.comment(repo, x))

    @route("/repos/<owner>/<name>/issues/<int:number>/comments", ["POST"])
    def create_comment(owner: str, name: str, number: int) -> Any:
        repo = load(owner, name)
        c = caller()
        issue = state.issue(repo, number)
        com = state.add_comment(repo, issue, c.login, body().get("body") or "")
        emit("issue_comment", repo, c.login, action="created", issue=g.r.issue(repo, issue),
             comment=g.r.comment(repo, com))
        return created(g.r.comment(repo, com))

    @route("/repos/<owner>/<name>/issues/comments/<int:cid>")
    def get_comment(owner: str, name: str, cid: int) -> Any:
        repo = load(owner, name)
        return jsonify(g.r.comment(repo, state.comment(repo, cid)))

    @route("/repos/<owner>/<name>/issues/comments/<int:cid>", ["PATCH", "DELETE"])
    def edit_comment(owner: str, name: str, cid: int) -> Any:
        repo = load(owner, name)
        c = caller()
        com = state.comment(repo, cid)
        if com.user != c.login:
            state.require(repo, c, "write")
        issue = state.issue(repo, com.issue_number)
        if request.method == "DELETE":
            issue.comment_ids.remove(cid)
            del state.comments[cid]
            emit("issue_comment", repo, c.login, action="deleted", issue=g.r.issue(repo, issue),
                 comment=g.r.comment(repo, com))
            return Response(status=204)
        text = body().get("body")
        if not text:
            raise ApiError(422, "Validation Failed", [{"resource": "IssueComment", "code": "missing_field",
                                                       "field": "body"}])
        old = com.body
        com.body, com.updated_at = text, now_iso()
        emit("issue_comment", repo, c.login, action="edited", issue=g.r.issue(repo, issue),
             comment=g.r.comment(repo, com), changes={"body": {"from": old}})
        return jsonify(g.r.comment(repo, com))

    # ---- reactions --------------------------------------------------------------------------------
    def reactions_view(target: list[Any]) -> Any:
        if request.method == "GET":
            content = request.args.get("content")
            return listing([r for r in target if not content or r.content == content], g.r.reaction)
        c = caller()
        reaction, new = state.react(target, c.login, body().get("content", ""))
        return jsonify(g.r.reaction(reaction)), 201 if new else 200

    @route("/repos/<owner>/<name>/issues/<int:number>/reactions", ["GET", "POST"])
    def issue_reactions(owner: str, name: str, number: int) -> Any:
        repo = load(owner, name)
        return reactions_view(state.issue(repo, number).reactions)

    @route("/repos/<owner>/<name>/issues/comments/<int:cid>/reactions", ["GET", "POST"])
    def comment_reactions(owner: str, name: str, cid: int) -> Any:
        repo = load(owner, name)
        return reactions_view(state.comment(repo, cid).reactions)

    @route("/repos/<owner>/<name>/issues/<int:number>/reactions/<int:rid>", ["DELETE"])
    def delete_issue_reaction(owner: str, name: str, number: int, rid: int) -> Any:
        repo = load(owner, name)
        c = caller()
        target = state.issue(repo, number).reactions
        match = [r for r in target if r.id == rid and r.user == c.login]
        if not match:
            raise ApiError(404, "Not Found")
        target.remove(match[0])
        return Response(status=204)

    # ---- pulls ------------------------------------------------------------------------------------
    @route("/repos/<owner>/<name>/pulls")
    def list_pulls(owner: str, name: str) -> Any:
        repo = load(owner, name)
        want_state = request.args.get("state", "open")
        head = request.args.get("head")
        base = request.args.get("base")
        items = [i for i in repo.issues.values() if i.pull and (want_state == "all" or i.state == want_state)]
        if head:
            howner, _, href = head.partition(":")
            items = [i for i in items if i.pull and (not href or i.pull.head_ref == href)
                     and i.pull.head_repo.split("/")[0].lower() == howner.lower()]
        if base:
            items = [i for i in items if i.pull and i.pull.base_ref == base]
        items.sort(key=lambda i: i.number, reverse=request.args.get("direction", "desc") == "desc")
        return listing(items, lambda i: g.r.pull(repo, i, full=False))

    @route("/repos/<owner>/<name>/pulls", ["POST"])
    def create_pull(owner: str, name: str) -> Any:
        repo = load(owner, name)
        c = caller()
        data = body()
        head, base = data.get("head") or "", data.get("base") or ""
        if not head or not base:
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "code": "missing_field",
                                                       "field": "head" if not head else "base"}])
        howner, _, href = head.rpartition(":")
        head_repo = state.repo_in_network(repo, howner) if howner else repo
        base_sha = gitrepo.branch_sha(repo.path, base)
        head_sha = gitrepo.branch_sha(head_repo.path, href) if head_repo else None
        if head_repo is None or head_sha is None or base_sha is None:
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "code": "invalid",
                                                       "field": "head" if base_sha else "base"}])
        if state.open_pull_for(repo, head_repo, href, base):
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "code": "custom",
                                                       "message": f"A pull request already exists for {head_repo.owner}:{href}."}])
        alts = [head_repo.path] if head_repo is not repo else None
        ahead, _ = gitrepo.ahead_behind(repo.path, base_sha, head_sha, alternates=alts)
        if ahead == 0:
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "code": "custom",
                                                       "message": f"No commits between {base} and {href}"}])
        if not data.get("title"):
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "code": "missing_field",
                                                       "field": "title"}])
        pull = PullInfo(head_repo.full_name, href, base, bool(data.get("draft")),
                        bool(data.get("maintainer_can_modify")), base_sha)
        issue = state.create_issue(repo, c.login, data["title"], data.get("body"), pull=pull)
        emit_issue(repo, issue, "opened", c.login)
        return created(g.r.pull(repo, issue))

    def load_pull(repo: Repo, number: int) -> Issue:
        issue = state.issue(repo, number)
        if issue.pull is None:
            raise ApiError(404, "Not Found")
        return issue

    @route("/repos/<owner>/<name>/pulls/<int:number>")
    def get_pull(owner: str, name: str, number: int) -> Any:
        repo = load(owner, name)
        return jsonify(g.r.pull(repo, load_pull(repo, number)))

    @route("/repos/<owner>/<name>/pulls/<int:number>", ["PATCH"])
    def edit_pull(owner: str, name: str, number: int) -> Any:
        repo = load(owner, name)
        c = caller()
        issue = load_pull(repo, number)
        if c.login != issue.user:
            state.require(repo, c, "write")
        data = body()
        data.pop("labels", None)
        edit_issue_fields(repo, issue, data, c)
        return jsonify(g.r.pull(repo, issue))

    @route("/repos/<owner>/<name>/pulls/<int:number>/files")
    def pull_files(owner: str, name: str, number: int) -> Any:
        repo = load(owner, name)
        p = load_pull(repo, number).pull
        assert p is not None
        head_repo = state.repo(*p.head_repo.split("/", 1))
        head_sha = gitrepo.branch_sha(head_repo.path, p.head_ref) or ""
        alts = [head_repo.path]
        mb = gitrepo.merge_base(repo.path, gitrepo.branch_sha(repo.path, p.base_ref) or p.base_sha, head_sha,
                                alternates=alts)
        files = gitrepo.diff_files(repo.path, mb or p.base_sha, head_sha, alternates=alts)
        return listing(files, lambda f: g.r.file_change(repo, head_sha, f))

    @route("/repos/<owner>/<name>/pulls/<int:number>/commits")
    def pull_commits(owner: str, name: str, number: int) -> Any:
        repo = load(owner, name)
        p = load_pull(repo, number).pull
        assert p is not None
        head_repo = state.repo(*p.head_repo.split("/", 1))
        head_sha = gitrepo.branch_sha(head_repo.path, p.head_ref) or ""
        alts = [head_repo.path]
        base_sha = gitrepo.branch_sha(repo.path, p.base_ref) or p.base_sha
        shas = gitrepo.commits_between(repo.path, base_sha, head_sha, alternates=alts)
        return listing(shas, lambda s: g.r.commit(repo, s, alternates=alts))

    @route("/repos/<owner>/<name>/pulls/<int:number>/reviews", ["GET", "POST"])
    def reviews(owner: str, name: str, number: int) -> Any:
        repo = load(owner, name)
        issue = load_pull(repo, number)
        if request.method == "GET":
            return listing(issue.reviews, lambda rv: g.r.review(repo, issue, rv))
        c = caller()
        data = body()
        event = data.get("event", "COMMENT")
        states = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}
        if event not in states:
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequestReview", "code": "invalid",
                                                       "field": "event"}])
        if event != "APPROVE" and event != "COMMENT" and not data.get("body"):
            raise ApiError(422, "Validation Failed: body is required for REQUEST_CHANGES")
        if c.login == issue.user and event != "COMMENT":
            raise ApiError(422, "Unprocessable Entity: can not approve or request changes on your own pull request")
        p = issue.pull
        assert p is not None
        head_sha = gitrepo.branch_sha(state.repo(*p.head_repo.split("/", 1)).path, p.head_ref)
        rv = Review(state.next_id("review"), c.login, data.get("body") or "", states[event],
                    data.get("commit_id") or head_sha)
        issue.reviews.append(rv)
        emit("pull_request_review", repo, c.login, action="submitted", review=g.r.review(repo, issue, rv),
             pull_request=g.r.pull(repo, issue, full=False))
        return jsonify(g.r.review(repo, issue, rv))

    # ---- check runs -------------------------------------------------------------------------------
    def check_fields(data: dict[str, Any]) -> dict[str, Any]:
        allowed = ("name", "status", "conclusion", "started_at", "completed_at", "details_url", "external_id",
                   "output")
        if data.get("status") not in (None, "queued", "in_progress", "completed"):
            raise ApiError(422, "Validation Failed", [{"resource": "CheckRun", "code": "invalid", "field": "status"}])
        return {k: data.get(k) for k in allowed}

    def check_caller(repo: Repo) -> Caller:
        c = caller()
        if options.get("checks_require_app", True) and c.installation is None:
            raise ApiError(403, "You must authenticate via a GitHub App.")
        state.require(repo, c, "write")
        return c

    @route("/repos/<owner>/<name>/check-runs", ["POST"])
    def create_check_run(owner: str, name: str) -> Any:
        repo = load(owner, name)
        c = check_caller(repo)
        data = body()
        fields = check_fields(data)
        fields.pop("name")
        run = state.create_check_run(repo, c.installation.app_id if c.installation else None,
                                     data.get("name") or "", data.get("head_sha") or "", **fields)
        return created(g.r.check_run(repo, run))

    @route("/repos/<owner>/<name>/check-runs/<int:rid>", ["GET", "PATCH"])
    def check_run(owner: str, name: str, rid: int) -> Any:
        repo = load(owner, name)
        run = state.check_runs.get(rid)
        if run is None or run.repo != repo.full_name:
            raise ApiError(404, "Not Found")
        if request.method == "PATCH":
            check_caller(repo)
            state.update_check_run(run, **check_fields(body()))
        return jsonify(g.r.check_run(repo, run))

    def list_check_runs_for_ref(repo: Repo, ref: str) -> Any:
        sha = gitrepo.resolve(repo.path, ref)
        if sha is None:
            raise ApiError(422, f"No commit found for SHA: {ref}")
        runs = [r for r in state.check_runs.values() if r.repo == repo.full_name and r.head_sha == sha]
        if request.args.get("check_name"):
            runs = [r for r in runs if r.name == request.args["check_name"]]
        if request.args.get("status"):
            runs = [r for r in runs if r.status == request.args["status"]]
        runs.sort(key=lambda r: r.id, reverse=True)
        page, headers = paginate(runs)
        resp = jsonify({"total_count": len(runs), "check_runs": [g.r.check_run(repo, r) for r in page]})
        resp.headers.update(headers)
        return resp

    return bp


def fire_ref_events(state: SandboxState, r: Renderer, repo: Repo, changes: dict[str, tuple[str | None, str | None]],
                    sender: str) -> None:
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
            "ref": ref, "before": old or zero, "after": new or zero, "created": old is None, "deleted": new is None,
            "forced": bool(old and new and not gitrepo.is_ancestor(repo.path, old, new)), "base_ref": None,
            "compare": f"{r.base}/{repo.full_name}/compare/{(old or zero)[:12]}...{(new or zero)[:12]}",
            "commits": [_push_commit(r, repo, s) for s in commits],
            "head_commit": _push_commit(r, repo, new) if new else None,
            "repository": r.repo(repo, full=False), "pusher": {"name": sender, "email": None},
            "sender": r.user(sender)}
        state.sender.emit("push", payload, insts)
        if not ref.startswith("refs/heads/") or not new:
            continue
        branch = ref[len("refs/heads/"):]
        for base in state.network(repo):
            for issue in base.issues.values():
                p = issue.pull
                if p and issue.state == "open" and p.head_repo == repo.full_name and p.head_ref == branch:
                    sync: dict[str, Any] = {"action": "synchronize", "number": issue.number, "before": old or zero,
                                            "after": new, "pull_request": r.pull(base, issue),
                                            "repository": r.repo(base, full=False), "sender": r.user(sender)}
                    issue.updated_at = now_iso()
                    state.sender.emit("pull_request", sync, repo_installations(state, base))


def repo_installations(state: SandboxState, repo: Repo) -> dict[int, dict[str, Any]]:
    """app id -> webhook "installation" object, for the apps installed on `repo`."""
    return {i.app_id: installation_ref(i) for i in state.installations_for_repo(repo)}  # type: ignore[misc]


def _push_commit(r: Renderer, repo: Repo, sha: str) -> dict[str, Any]:
    info = gitrepo.commit_info(repo.path, sha)
    return {"id": sha, "tree_id": info.tree, "distinct": True, "message": info.message,
            "timestamp": info.committer_date, "url": f"{r.base}/{repo.full_name}/commit/{sha}",
            "author": {"name": info.author_name, "email": info.author_email},
            "committer": {"name": info.committer_name, "email": info.committer_email},
            "added": [], "removed": [], "modified": []}
