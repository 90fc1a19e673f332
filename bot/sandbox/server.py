"""Flask app of the sandbox GitHub: REST (/api/v3), git smart HTTP, admin (/_sandbox), read-only HTML
views."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, render_template_string, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler, make_server

from bot import mdrender as markdown
from bot.gitutil import run as git_run
from bot.sandbox import gitrepo
from bot.sandbox.admin import make_admin
from bot.sandbox.api import fire_ref_events, make_api, parse_auth
from bot.sandbox.manifest import register_manifest_flow
from bot.sandbox.render import Renderer
from bot.sandbox.state import ApiError, Installation, SandboxState

DOCS = "https://docs.github.com/rest"
REQUEST_LOG_MAX = 20000  # oldest entries are dropped beyond this


def error_response(
    status: int,
    message: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    payload: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
    if errors:
        payload["errors"] = errors
    resp = jsonify(payload)
    resp.status_code = status
    resp.headers.update(headers or {})
    return resp


def create_app(state: SandboxState, checks_require_app: bool = True) -> Flask:
    """Flask app serving `state`. Check runs need an installation token unless `checks_require_app` is
    False."""
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    faults: list[dict[str, Any]] = []
    request_log: list[dict[str, Any]] = []
    app.extensions["sandbox"] = {"state": state, "faults": faults, "requests": request_log}

    def fire_installation(inst: Installation, r: Renderer) -> None:
        repos = [state.repo(*x.split("/", 1)) for x in inst.repos]
        state.sender.emit(
            "installation",
            {
                "action": "created",
                "installation": r.installation(inst),
                "repositories": [
                    {
                        "id": x.id,
                        "node_id": r.repo(x, full=False)["node_id"],
                        "name": x.name,
                        "full_name": x.full_name,
                        "private": x.private,
                    }
                    for x in repos
                ],
                "requester": None,
                "sender": r.user(inst.account),
            },
            {inst.app_id: r.installation(inst)},
        )

    def rate_limited() -> Response | None:
        """GitHub's answer to a caller whose imposed rate limit has not reset yet (REST only: git over HTTP
        is not rate-limited this way)."""
        if not request.path.startswith("/api/v3") or not state.rate_limits:
            return None
        try:
            caller, _ = parse_auth(state)
        except ApiError:
            return None
        if caller is None:
            return None
        limit = state.rate_limit_for(caller.login)
        if limit is None:
            return None
        limit.hits += 1
        reset = int(limit.reset_at) + (0 if limit.reset_at.is_integer() else 1)
        who = (
            f"installation ID {caller.installation.id}"
            if caller.installation
            else f"user ID {state.user(caller.login).id}"
        )
        if limit.kind == "primary":
            message = f"API rate limit exceeded for {who}."
            headers = {
                "X-RateLimit-Limit": "5000",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
                "X-RateLimit-Used": "5000",
                "X-RateLimit-Resource": "core",
            }
        else:
            message = (
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
            )
            wait = max(1, int(limit.reset_at - state.now() + 0.999))
            headers = {"Retry-After": str(wait), "X-RateLimit-Remaining": "4000"}
        return error_response(limit.status, message, headers=headers)

    app.register_blueprint(make_api(state, {"checks_require_app": checks_require_app}))
    app.register_blueprint(make_admin(state, faults, request_log, fire_installation))

    @app.errorhandler(ApiError)
    def on_api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.message, exc.errors, exc.headers)

    @app.errorhandler(HTTPException)
    def on_http_error(exc: HTTPException) -> Any:
        if request.path.startswith(("/api/v3", "/_sandbox")):
            return error_response(exc.code or 500, "Not Found" if exc.code == 404 else exc.name)
        return exc

    @app.before_request
    def inject_fault() -> Any:
        if request.path.startswith("/_sandbox"):
            return None
        limited = rate_limited()
        if limited is not None:
            return limited
        for rule in faults:
            if rule["times"] == 0:
                continue
            if rule["method"] not in ("*", request.method) or not re.search(rule["path_regex"], request.path):
                continue
            rule["times"] -= 1
            rule["hits"] += 1
            message = rule.get("message") or (
                "API rate limit exceeded" if rule["status"] in (403, 429) else "Server Error"
            )
            if rule["status"] >= 500 and not rule.get("message"):
                return Response(
                    "<html><body>502 Bad Gateway</body></html>",
                    status=rule["status"],
                    headers=rule["headers"],
                    content_type="text/html",
                )
            return error_response(rule["status"], message, headers=rule["headers"])
        return None

    @app.after_request
    def decorate(resp: Response) -> Response:
        if not request.path.startswith("/api/v3"):
            return resp
        resp.headers.setdefault("X-GitHub-Request-Id", uuid.uuid4().hex[:16].upper())
        resp.headers.setdefault("X-RateLimit-Limit", "5000")
        resp.headers.setdefault("X-RateLimit-Remaining", "4999")
        resp.headers.setdefault("X-RateLimit-Reset", str(int(time.time()) + 3600))
        resp.headers.setdefault("X-RateLimit-Used", "1")
        resp.headers.setdefault("X-RateLimit-Resource", "core")
        resp.headers.setdefault("X-GitHub-Media-Type", "github.v3; format=json")
        entry = {
            "method": request.method,
            "path": request.path[len("/api/v3") :] or "/",
            "query": request.query_string.decode(),
            "status": resp.status_code,
            "request_json": request.get_json(silent=True),
            "response_json": None,
        }
        if resp.is_json:
            entry["response_json"] = resp.get_json(silent=True)
        request_log.append(entry)
        if len(request_log) > REQUEST_LOG_MAX:
            del request_log[: len(request_log) - REQUEST_LOG_MAX]
        return resp

    register_git_http(app, state)
    register_manifest_flow(app, state)
    register_html(app, state)
    return app


# ---- git smart HTTP ----------------------------------------------------------------------------------


def register_git_http(app: Flask, state: SandboxState) -> None:
    @app.route("/<owner>/<name>.git/<path:rest>", methods=["GET", "POST"])
    def git_http(owner: str, name: str, rest: str) -> Response:
        try:
            repo = state.repo(owner, name)
        except ApiError:
            return Response("Repository not found\n", status=404, content_type="text/plain")
        pushing = rest == "git-receive-pack" or request.args.get("service") == "git-receive-pack"
        user = None
        if pushing or repo.private:
            try:
                caller, _ = parse_auth(state)
            except ApiError:
                caller = None
            need = "write" if pushing else "read"
            if caller is None:
                return Response(
                    "Authentication required\n",
                    status=401,
                    content_type="text/plain",
                    headers={"WWW-Authenticate": 'Basic realm="sandbox"'},
                )
            from bot.sandbox.state import perm_at_least

            if not perm_at_least(state.permission(repo, caller), need):
                return Response(
                    f"Permission to {repo.full_name}.git denied to {caller.login}.\n",
                    status=403,
                    content_type="text/plain",
                )
            user = caller.login
        before = gitrepo.refs(repo.path) if rest == "git-receive-pack" else None
        resp = run_http_backend(state.data_dir / "repos", f"/{repo.owner}/{repo.name}.git/{rest}", user)
        if before is not None and user is not None:
            after = gitrepo.refs(repo.path)
            changes = {
                ref: (before.get(ref), after.get(ref))
                for ref in set(before) | set(after)
                if before.get(ref) != after.get(ref)
            }
            if changes:
                with state.lock:
                    fire_ref_events(state, Renderer(request.host_url, state), repo, changes, user)
        return resp


def run_http_backend(root: Path, path_info: str, remote_user: str | None) -> Response:
    """Run `git http-backend` as a CGI for the current request."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": path_info,
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.query_string.decode(),
        "CONTENT_TYPE": request.content_type or "",
        "REMOTE_ADDR": request.remote_addr or "127.0.0.1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(root),
    }
    if remote_user:
        env["REMOTE_USER"] = remote_user
    if request.headers.get("Content-Encoding"):
        env["HTTP_CONTENT_ENCODING"] = request.headers["Content-Encoding"]
    if request.headers.get("Git-Protocol"):
        env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
    data = request.get_data()
    env["CONTENT_LENGTH"] = str(len(data))
    proc = git_run(None, "http-backend", input=data, env=env, inherit_env=False, check=False)
    head, _, payload = proc.stdout.partition(b"\r\n\r\n")
    if not _:
        head, _, payload = proc.stdout.partition(b"\n\n")
    status, headers = 200, {}
    for line in head.decode(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        elif key:
            headers[key.strip()] = value.strip()
    return Response(payload, status=status, headers=headers)


# ---- read-only HTML views ----------------------------------------------------------------------------

_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ title }} - sandbox</title>
<style>body{font-family:sans-serif;max-width:914px;margin:0 auto;padding:0 16px 2em;color:#1f2328;
box-sizing:border-box}
pre.raw{white-space:pre-wrap;background:#f6f8fa;padding:.6em;border-radius:4px}
.label{background:#ddf;border-radius:1em;padding:0 .5em;margin-right:.3em}
.box{border:1px solid #d1d9e0;border-radius:6px;margin:.8em 0}
.box>.meta{background:#f6f8fa;border-bottom:1px solid #d1d9e0;margin:0;padding:.5em 16px}
.box>.markdown-body{padding:16px}.box>.reactions{padding:0 16px 8px}
.meta{color:#59636e;font-size:90%}h1.title{font-weight:400;font-size:26px;margin:16px 0 4px}
.ok{color:#1a7f37}.bad{color:#d1242f}.neutral{color:#59636e}{{ css }}</style></head>\
<body><p class="meta"><a href="/">sandbox GitHub</a></p>{{ content|safe }}\
</body></html>"""

_ISSUE = """<h1 class="title">{{ issue.title }} <span class="meta">#{{ issue.number }}</span></h1>
<p class="meta">{{ kind }} · {{ issue.state }} · opened by {{ issue.user }} · {{ issue.created_at }}
{% if pull %} · {{ pull.head_repo }}:{{ pull.head_ref }} → {{ pull.base_ref }}\
{% if pull.draft %} · draft{% endif %}{% endif %}</p>
<p>{% for l in issue.labels %}<span class="label">{{ l }}</span>{% endfor %}</p>
<div class="box" id="issue-body"><p class="meta">{{ issue.user }} opened {{ issue.created_at }}</p>
<div class="markdown-body">{{ md(issue.body) }}</div>
<div class="reactions">{{ reactions(issue.reactions) }}</div>
</div>
{% for c in comments %}<div class="box comment" id="issuecomment-{{ c.id }}">
<p class="meta">{{ c.user }} commented
{{ c.created_at }}{% if c.updated_at != c.created_at %} (edited {{ c.updated_at }}){% endif %}</p>
<div class="markdown-body">{{ md(c.body) }}</div><div class="reactions">{{ reactions(c.reactions) }}</div>
</div>{% endfor %}
{% for rv in reviews %}<div class="box"><p class="meta">review by {{ rv.user }}: {{ rv.state }}</p>\
<div class="markdown-body">{{ md(rv.body) }}</div></div>{% endfor %}
{% if runs %}<h2>Checks</h2><ul>\
{% for r in runs %}<li><a href="/{{ repo }}/runs/{{ r.id }}">{{ r.name }}</a>: {{ r.status }}
{{ r.conclusion or '' }}{% if r.output.get('title') %} — {{ r.output.get('title') }}{% endif %}</li>\
{% endfor %}</ul>{% endif %}"""

_CHECK_RUN = """<h1 class="title">{{ r.name }}</h1>
<p class="meta">{{ r.status }}{% if r.conclusion %} · <span class="{{ 'ok' if r.conclusion == 'success' else
'bad' if r.conclusion == 'failure' else 'neutral' }}">{{ r.conclusion }}</span>{% endif %} · {{ r.head_sha }}
{% if (r.details_url or '').startswith(('http://', 'https://')) %} · \
<a href="{{ r.details_url }}">details</a>{% endif %}</p>
<div class="box"><p class="meta">{{ r.output.get('title') or '' }}</p>
<div class="markdown-body">{{ md(r.output.get('summary')) }}
{% if r.output.get('text') %}{{ md(r.output.get('text')) }}{% endif %}</div></div>"""


def register_html(app: Flask, state: SandboxState) -> None:
    from markupsafe import Markup, escape

    def reactions(items: list[Any]) -> Markup:
        counts: dict[str, int] = {}
        for r in items:
            counts[r.content] = counts.get(r.content, 0) + 1
        return Markup(" ".join(f'<span class="label">{escape(k)} {v}</span>' for k, v in counts.items()))

    def md(text: str | None) -> Markup:
        return Markup(markdown.render(text))  # sanitized by markdown.render (GitHub's allowlist)

    def page(title: str, content: str) -> str:
        return render_template_string(_PAGE, title=title, content=content, css=Markup(markdown.CSS))

    @app.get("/")
    def home() -> str:
        with state.lock:
            items = "".join(
                render_template_string(
                    '<li><a href="/{{ r.full_name }}">{{ r.full_name }}</a>'
                    "{% if r.parent %} (fork of {{ r.parent }}){% endif %} — {{ n }} issues/PRs</li>",
                    r=r,
                    n=len(r.issues),
                )
                for r in state.repos.values()
            )
        return page("repositories", f"<h1>Repositories</h1><ul>{items}</ul>")

    @app.get("/<owner>/<name>")
    def repo_page(owner: str, name: str) -> str:
        with state.lock:
            repo = state.repo(owner, name)
            branches = sorted(ref[11:] for ref in gitrepo.refs(repo.path) if ref.startswith("refs/heads/"))
            content = render_template_string(
                "<h1>{{ r.full_name }}</h1>"
                '{% if r.parent %}<p class="meta">fork of {{ r.parent }}</p>{% endif %}'
                "<p>clone: <code>{{ clone }}</code></p><h2>Branches</h2>"
                "<ul>{% for b in branches %}<li>{{ b }}</li>{% endfor %}</ul>"
                "<h2>Issues and pull requests</h2><ul>{% for i in issues %}<li>"
                '<a href="/{{ r.full_name }}/{{ "pull" if i.pull else "issues" }}/{{ i.number }}">'
                "#{{ i.number }} {{ i.title }}</a> ({{ i.state }})</li>{% endfor %}</ul>",
                r=repo,
                branches=branches,
                clone=f"{request.host_url}{repo.full_name}.git",
                issues=sorted(repo.issues.values(), key=lambda i: -i.number),
            )
        return page(repo.full_name, content)

    def issue_page(owner: str, name: str, number: int) -> str:
        with state.lock:
            repo = state.repo(owner, name)
            issue = state.issue(repo, number)
            runs = []
            if issue.pull:
                head_repo = state.head_repo(issue.pull)
                sha = (
                    gitrepo.branch_sha(head_repo.path, issue.pull.head_ref)
                    if head_repo
                    else gitrepo.resolve(repo.path, f"refs/pull/{number}/head")
                )
                runs = [r for r in state.check_runs.values() if r.head_sha == sha]
            content = render_template_string(
                _ISSUE,
                issue=issue,
                pull=issue.pull,
                kind="pull request" if issue.pull else "issue",
                comments=[state.comments[c] for c in issue.comment_ids],
                reviews=issue.reviews,
                runs=runs,
                reactions=reactions,
                md=md,
                repo=repo.full_name,
            )
        return page(f"{issue.title} #{number}", content)

    app.add_url_rule("/<owner>/<name>/issues/<int:number>", "issue_page", issue_page)
    app.add_url_rule("/<owner>/<name>/pull/<int:number>", "pull_page", issue_page)

    @app.get("/<owner>/<name>/commit/<sha>")
    def commit_page(owner: str, name: str, sha: str) -> str:
        repo = state.repo(owner, name)
        text = gitrepo.git(repo.path, "show", "--stat", "--patch", sha, check=False)
        return page(
            sha[:12], render_template_string("<h1>{{ sha }}</h1><pre>{{ text }}</pre>", sha=sha, text=text)
        )

    @app.get("/<owner>/<name>/runs/<int:run_id>")
    def run_page(owner: str, name: str, run_id: int) -> str:
        run = state.check_runs.get(run_id)
        if run is None:
            raise ApiError(404, "Not Found")
        return page(
            run.name,
            render_template_string(_CHECK_RUN, r=run, md=md),
        )


# ---- running it ----------------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class Sandbox:
    """The sandbox server on 127.0.0.1 (ephemeral port) in a background thread; a context manager."""

    def __init__(
        self,
        state: SandboxState | None = None,
        data_dir: Path | str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        checks_require_app: bool = True,
    ) -> None:
        self._tmp = None
        if state is None:
            if data_dir is None:
                self._tmp = tempfile.mkdtemp(prefix="sandbox-gh-")
                data_dir = self._tmp
            state = SandboxState(data_dir)
        self.state = state
        self.app = create_app(state, checks_require_app=checks_require_app)
        self._server = make_server(host, port, self.app, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://{host}:{self._server.server_port}"
        self.api_url = self.url + "/api/v3"
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-http", daemon=True)
        self._thread.start()

    @property
    def faults(self) -> list[dict[str, Any]]:
        return self.app.extensions["sandbox"]["faults"]

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.app.extensions["sandbox"]["requests"]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.state.sender.stop()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    data_dir: Path | str = "var/sandbox",
    checks_require_app: bool = True,
) -> None:
    """Serve the sandbox in the foreground until interrupted (CLI entry)."""
    state = SandboxState(data_dir)
    app = create_app(state, checks_require_app=checks_require_app)
    server = make_server(host, port, app, threaded=True)
    print(
        f"sandbox GitHub on http://{host}:{server.server_port} (API http://{host}:{server.server_port}/api/v3)",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        state.sender.stop()


__all__ = ["create_app", "Sandbox", "serve", "error_response"]
