"""Flask app factory: POST /webhook, GET /healthz, a read-only status page.

The webhook handler only validates, records and enqueues: signature first (on the raw body), then size and JSON,
then the delivery id for idempotency. The worker does everything that needs GitHub.
"""

from __future__ import annotations

import html
import json
import time
from typing import Any

from flask import Flask, Response, abort, jsonify, request
from werkzeug.exceptions import HTTPException

from .config import Settings
from .events import Command, PayloadError, route, verify_signature
from .store import Store


def create_app(settings: Settings, store: Store) -> Flask:
    app = Flask("autoresearch-bot")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["autoresearch"] = {"settings": settings, "store": store}

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):  # JSON errors, never HTML tracebacks
        return jsonify(error=exc.name, message=exc.description), exc.code

    @app.post("/webhook")
    def webhook():
        if request.content_length is not None and request.content_length > settings.max_body_bytes:
            return _error(413, f"body larger than {settings.max_body_bytes} bytes")
        body = request.get_data(cache=False)
        if len(body) > settings.max_body_bytes:
            return _error(413, f"body larger than {settings.max_body_bytes} bytes")
        if not verify_signature(settings.webhook_secret, body, request.headers.get("X-Hub-Signature-256")):
            return _error(401, "missing or invalid X-Hub-Signature-256")
        event = request.headers.get("X-GitHub-Event", "")
        delivery = request.headers.get("X-GitHub-Delivery", "")
        if not event or not delivery:
            return _error(400, "X-GitHub-Event and X-GitHub-Delivery headers are required")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, f"body is not valid JSON: {exc}")
        action = payload.get("action") if isinstance(payload, dict) else None
        action = action if isinstance(action, str) else None
        command = None
        try:
            outcome = route(event, payload, trigger_label=settings.trigger_label, prefix=settings.command_prefix)
        except (PayloadError, TypeError, ValueError) as exc:
            new, _ = store.accept_delivery(delivery, event, action, "rejected", str(exc))
            if not new:
                return jsonify(status="duplicate", delivery=delivery), 200
            return _error(400, f"malformed {event} payload: {exc}")
        if isinstance(outcome, Command):
            command = {"kind": outcome.kind, "repo": outcome.repo, "issue_number": outcome.issue_number,
                       "user": outcome.user, "args": _command_args(outcome)}
            status, detail = "accepted", f"command {outcome.kind}"
        else:
            status, detail = "ignored", outcome.reason
        new, command_id = store.accept_delivery(delivery, event, action, status, detail, command)
        if not new:
            return jsonify(status="duplicate", delivery=delivery), 200
        if event == "ping":
            return jsonify(status="pong", zen=payload.get("zen") if isinstance(payload, dict) else None), 200
        if command is None:
            return jsonify(status="ignored", reason=detail), 200
        return jsonify(status="accepted", command=outcome.kind, command_id=command_id), 202

    @app.get("/healthz")
    def healthz():
        started = time.perf_counter()
        version = store.schema_version
        return jsonify(status="ok", schema_version=version, db_ms=round((time.perf_counter() - started) * 1000, 2))

    @app.get("/api/runs")
    def api_runs():
        return jsonify([_run_dict(store, r) for r in store.list_runs(200)])

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
        return jsonify(d)

    @app.get("/")
    def index():
        rows = "".join(
            f"<tr><td><a href='/runs/{r.id}'>{r.id}</a></td><td>{_e(r.repo)}#{r.issue_number}</td><td>{_e(r.kind)}"
            f"</td><td>{r.attempt}</td><td>{_e(r.state)}</td><td>{_e(r.stage or '')}</td><td>{_e(r.trigger_user)}</td>"
            f"<td>{_ts(r.created_at)}</td><td>{_e((r.error or '')[:120])}</td></tr>"
            for r in store.list_runs(200)
        )
        body = ("<h1>autoresearch-bot</h1><table border=1 cellpadding=4><tr><th>run</th><th>issue</th><th>kind</th>"
                "<th>attempt</th><th>state</th><th>stage</th><th>by</th><th>created</th><th>error</th></tr>"
                f"{rows}</table>")
        return _page("Runs", body)

    @app.get("/runs/<int:run_id>")
    def run_page(run_id: int):
        try:
            run = store.get_run(run_id)
        except KeyError:
            abort(404, f"run {run_id} does not exist")
        events = "".join(f"<tr><td>{_ts(e['ts'])}</td><td>{_e(e['kind'])}</td><td><pre>{_e(e['message'])}</pre></td>"
                         "</tr>" for e in store.events(run_id))
        arts = "".join(f"<li><a href='/api/runs/{run_id}'>{_e(k)}</a></li>" for k in store.artifact_keys(run_id))
        body = (f"<h1>Run {run.id}: {_e(run.repo)}#{run.issue_number}</h1><p>state <b>{_e(run.state)}</b>, "
                f"stage {_e(run.stage or '-')}, attempt {run.attempt}</p><h2>Artifacts</h2><ul>{arts}</ul>"
                f"<h2>Events</h2><table border=1 cellpadding=4>{events}</table>")
        return _page(f"Run {run.id}", body)

    return app


def _command_args(cmd: Command) -> dict[str, Any]:
    return {**cmd.args, "is_pull": cmd.is_pull, "comment_id": cmd.comment_id}


def _run_dict(store: Store, run) -> dict[str, Any]:
    return {"id": run.id, "repo": run.repo, "issue": run.issue_number, "kind": run.kind, "attempt": run.attempt,
            "state": run.state, "stage": run.stage, "trigger_user": run.trigger_user, "error": run.error,
            "created_at": run.created_at, "updated_at": run.updated_at, "usage": store.usage_totals(run.id)}


def _error(code: int, message: str):
    return jsonify(error=message), code


def _e(text: str) -> str:
    return html.escape(str(text))


def _ts(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _page(title: str, body: str) -> Response:
    doc = (f"<!doctype html><html><head><meta charset=utf-8><title>{_e(title)}</title><meta http-equiv=refresh "
           f"content=10></head><body style='font-family:sans-serif'>{body}</body></html>")
    return Response(doc, mimetype="text/html")
