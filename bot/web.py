"""Flask app factory: POST /webhook, GET /healthz, read-only status pages behind a token.

The webhook handler only validates, records and enqueues: size and signature first (on the raw body), then the
headers, the body format (JSON, or form-encoded `payload=`), the payload's shape (bot.payloads) and the
routing. A delivery refused at any of these steps gets a 4xx and a log line and is not recorded; an accepted
one is recorded with its command in one transaction. The worker does everything that needs GitHub.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import logging
import re
import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, jsonify, render_template, request
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from . import mdrender, runpage
from .config import Settings
from .events import Command, PayloadError, route
from .pipeline import web_url
from .signature import verify as verify_signature
from .store import Store

log = logging.getLogger("autoresearch.web")

EVENT_RE = re.compile(r"[a-z_]{1,64}")
DELIVERY_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
FORM_TYPE = "application/x-www-form-urlencoded"
PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded", "X-Forwarded-Host")
OPEN_ENDPOINTS = frozenset({"webhook", "healthz"})  # every other route is a status page: token


class Refused(Exception):
    """A delivery refused before anything is recorded: (HTTP status, message)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def create_app(settings: Settings, store: Store, web_base: str | None = None) -> Flask:
    """`web_base`: the forge's web root for links to issues and branches (the sandbox's URL in the demo);
    default: from settings.github_base_url."""
    # templates ship in the package (bot/templates, package data); Jinja2 autoescapes every .html template
    app = Flask("autoresearch-bot", template_folder=str(Path(__file__).parent / "templates"))
    # one byte over the limit: a chunked body (no Content-Length) that is too long shows itself by its length
    # instead of being cut silently at the limit (and then failing the signature check)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes + 1
    app.extensions["autoresearch"] = {"settings": settings, "store": store}

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):  # JSON errors, never HTML tracebacks
        if exc.code == 413:
            return _error(413, f"body larger than {settings.max_body_bytes} bytes")
        return jsonify(error=exc.name, message=exc.description), exc.code

    @app.errorhandler(Exception)
    def _internal_error(exc: Exception):  # the details go to the log, never to the client
        log.error(
            "unhandled %s on %s %s: %s", type(exc).__name__, request.method, request.path, exc, exc_info=exc
        )
        return jsonify(error="internal error", message="the bot's log has the details"), 500

    @app.post("/webhook")
    def webhook():
        delivery = request.headers.get("X-GitHub-Delivery", "")
        event = request.headers.get("X-GitHub-Event", "")
        try:
            return _webhook(settings, store, event, delivery)
        except Refused as exc:
            log.warning(
                "refused delivery %s (event %s): %d %s",
                ascii(delivery[:128]),
                ascii(event[:64]),
                exc.code,
                exc.message,
            )
            return _error(exc.code, exc.message)

    @app.before_request
    def _status_auth():
        # /webhook and /healthz are open; every other route is a status page and needs the token (fail
        # closed: a route added later is covered); a path no route knows (`/webhook/`, `/nope`) gets
        # routing's own 404/405, never "status pages need the status token"
        if request.routing_exception is not None or request.endpoint in OPEN_ENDPOINTS:
            return None
        return _check_status_auth(settings)

    @app.get("/healthz")
    def healthz():
        started = time.perf_counter()
        version = store.schema_version
        return jsonify(
            status="ok", schema_version=version, db_ms=round((time.perf_counter() - started) * 1000, 2)
        )

    @app.get("/api/runs")
    def api_runs():
        return jsonify(_scrub([_run_dict(store, r) for r in store.list_runs(200)]))

    @app.get("/api/runs/<int:run_id>")
    def api_run(run_id: int):
        try:
            run = store.get_run(run_id)
        except KeyError:
            abort(404, f"run {run_id} does not exist")
        d = _run_dict(store, run)
        d["events"] = store.events(run_id)
        d["artifacts"] = {k: store.get_artifact(run_id, k) for k in store.artifact_keys(run_id)}
        d["experiments"] = store.experiments(run_id)
        return jsonify(_scrub(d))

    @app.get("/api/runs/<int:run_id>/artifacts/<path:key>")
    def api_artifact(run_id: int, key: str):
        try:
            store.get_run(run_id)
        except KeyError:
            abort(404, f"run {run_id} does not exist")
        if key not in store.artifact_keys(run_id):
            abort(404, f"run {run_id} has no artifact {key!r}")
        return jsonify(_scrub({"run": run_id, "key": key, "value": store.get_artifact(run_id, key)}))

    base = (web_base or web_url(settings.github_base_url)).rstrip("/")

    def view(template: str, **context: Any) -> Response:
        html = render_template(
            template, ts=_ts, state_class=_state_class, css=Markup(mdrender.CSS), **context
        )
        return Response(html, mimetype="text/html")

    @app.get("/")
    def index():
        return view(
            "index.html", title="Runs", runs=runpage.run_list(store, base), prefix=settings.command_prefix
        )

    @app.get("/runs/<int:run_id>")
    def run_page(run_id: int):
        try:
            run = store.get_run(run_id)
        except KeyError:
            abort(404, f"run {run_id} does not exist")
        v = runpage.run_view(store, run, base)
        return view("run.html", title=f"Run {run.id}", v=v, refresh=v["running"])

    return app


def _webhook(settings: Settings, store: Store, event: str, delivery: str) -> Any:
    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise Refused(413, f"body larger than {limit} bytes")
    try:
        body = request.get_data(cache=False)
    except OSError as exc:  # the client went away or stalled past the server's timeout
        raise Refused(400, f"body could not be read ({type(exc).__name__})") from None
    if len(body) > limit:
        raise Refused(413, f"body larger than {limit} bytes")
    if not verify_signature(settings.webhook_secret, body, request.headers.get("X-Hub-Signature-256")):
        raise Refused(401, "missing or invalid X-Hub-Signature-256")
    if not event or not delivery:
        raise Refused(400, "X-GitHub-Event and X-GitHub-Delivery headers are required")
    if not EVENT_RE.fullmatch(event) or not DELIVERY_RE.fullmatch(delivery):
        raise Refused(400, "X-GitHub-Event or X-GitHub-Delivery is not shaped like GitHub's")
    payload = _parse_body(body, request.mimetype)
    try:
        outcome = route(event, payload, trigger_label=settings.trigger_label, prefix=settings.command_prefix)
    except PayloadError as exc:
        raise Refused(400, f"malformed {event} payload: {exc}") from None
    except (
        TypeError,
        ValueError,
        AttributeError,
        KeyError,
        IndexError,
        OverflowError,
        RecursionError,
    ) as exc:
        # a shape bot.payloads does not describe yet: still the payload's fault, never a 500
        raise Refused(400, f"malformed {event} payload ({type(exc).__name__})") from None
    action = payload.get("action")
    command = None
    if isinstance(outcome, Command):
        command = {
            "kind": outcome.kind,
            "repo": outcome.repo,
            "issue_number": outcome.issue_number,
            "user": outcome.user,
            "args": _command_args(outcome),
            "key": outcome.key,
        }
        status, detail = "accepted", f"command {outcome.kind}"
    else:
        status, detail = "ignored", outcome.reason
    try:
        new, command_id = store.accept_delivery(delivery, event, action, status, detail, command)
    except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:  # disk full, locked too long: try later
        log.error("delivery %s not recorded: %s", delivery, exc)
        return _error(503, "the bot could not record the delivery; redeliver it later")
    if not new:
        return jsonify(status="duplicate", delivery=delivery), 200
    if event == "ping":
        return jsonify(status="pong", zen=payload.get("zen")), 200
    if command is None:
        return jsonify(status="ignored", reason=detail), 200
    if command_id is None:  # the same comment (id + action) under a fresh delivery id
        log.info("delivery %s replays %s; no second command", delivery, outcome.key)
        return jsonify(status="duplicate", reason=f"{outcome.key} was already received"), 200
    return jsonify(status="accepted", command=outcome.kind, command_id=command_id), 202


def _parse_body(body: bytes, mimetype: str) -> Any:
    """JSON, or a form-encoded delivery (`payload=<json>`, what GitHub sends for that content type)."""
    text: str | bytes = body
    if mimetype == FORM_TYPE:
        try:
            fields = urllib.parse.parse_qs(
                body.decode("ascii"), strict_parsing=True, max_num_fields=20, errors="strict"
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise Refused(400, f"form-encoded body is malformed: {type(exc).__name__}") from None
        if len(fields.get("payload", [])) != 1:
            raise Refused(400, "form-encoded body must hold exactly one `payload` field")
        text = fields["payload"][0]
    try:
        return json.loads(text)
    except RecursionError:
        raise Refused(400, "body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f"body is not valid JSON: {str(exc)[:200]}") from None


def _check_status_auth(settings: Settings) -> Any:
    """Status pages and /api (`status_pages` setting): `token` (the default) needs the `status_token`
    (Bearer, or as the password of Basic auth), and refuses everyone while none is set, whatever the client's
    address: behind a proxy on the same host every request comes from loopback, and a plain `proxy_pass`
    adds no header that would tell. `loopback` (an explicit opt-in, e.g. the demo) also lets a direct loopback
    client without proxy headers in without the token. `off`: 404."""
    mode = settings.status_pages
    if mode == "off":
        return _error(404, "the status pages are turned off (status_pages: off)")
    token = settings.status_token
    given = _presented_token(request.headers.get("Authorization", ""))
    if token and given is not None and hmac.compare_digest(given.encode(), token.encode()):
        return None
    if mode == "loopback" and _direct_loopback():
        return None
    if not token:
        return _error(
            403,
            "status pages need the status token: set the status_token setting (AUTORESEARCH_STATUS_TOKEN) "
            "and send it as a Bearer token or Basic auth password (or status_pages: loopback for tokenless "
            "access from this host only, when no proxy runs on it)",
        )
    resp = _error(401, "status pages need the status token (Bearer, or the password of Basic auth)")
    return resp[0], 401, {"WWW-Authenticate": 'Basic realm="autoresearch-bot status", charset="UTF-8"'}


def _presented_token(header: str) -> str | None:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return None
    return None


def _direct_loopback() -> bool:
    if any(h in request.headers for h in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address((request.remote_addr or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def _scrub(value: Any) -> Any:
    """API output without tracebacks: no `traceback` fields, tracebacks in strings reduced to a message."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k != "traceback"}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return runpage.no_traceback(value)
    return value


def _command_args(cmd: Command) -> dict[str, Any]:
    args = {**cmd.args, "is_pull": cmd.is_pull, "comment_id": cmd.comment_id}
    if cmd.installation is not None:
        args["installation"] = cmd.installation
    return args


def _run_dict(store: Store, run) -> dict[str, Any]:
    return {
        "id": run.id,
        "repo": run.repo,
        "issue": run.issue_number,
        "kind": run.kind,
        "attempt": run.attempt,
        "state": run.state,
        "stage": run.stage,
        "trigger_user": run.trigger_user,
        "error": run.error,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "deferred_until": run.deferred_until,  # a GitHub rate limit: resumes at this epoch second
        "deferred_reason": run.deferred_reason,
        "usage": store.usage_totals(run.id),
    }


def _error(code: int, message: str):
    return jsonify(error=message), code


def _ts(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _state_class(state: str) -> str:
    return state if state in ("done", "failed", "cancelled") else "running"
