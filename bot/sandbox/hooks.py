"""Signed webhook delivery (GitHub-Hookshot-like): one background thread, in order, with a delivery log."""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.signature import sign


@dataclass
class Delivery:
    id: int
    guid: str
    hook_id: int
    event: str
    action: str | None
    body: bytes
    status_code: int | None = None
    duration_ms: float | None = None
    error: str | None = None
    delivered_at: str | None = None
    redelivery: bool = False
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def to_dict(self, with_payload: bool = False) -> dict[str, Any]:
        d = {
            "id": self.id,
            "guid": self.guid,
            "hook_id": self.hook_id,
            "event": self.event,
            "action": self.action,
            "status_code": self.status_code,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "delivered_at": self.delivered_at,
            "redelivery": self.redelivery,
        }
        if with_payload:
            d["payload"] = json.loads(self.body)
        return d


class WebhookSender:
    """Queues deliveries and POSTs them one at a time from a daemon thread."""

    def __init__(self, hooks: Callable[[], list[Any]], timeout_s: float = 10.0) -> None:
        self._hooks = hooks
        self._timeout = timeout_s
        self._queue: queue.Queue[tuple[Delivery, Any] | None] = queue.Queue()
        self._lock = threading.Lock()
        self.log: list[Delivery] = []
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    def emit(
        self, event: str, payload: dict[str, Any], installations: dict[int, dict[str, Any]] | None = None
    ) -> list[Delivery]:
        """Queue `payload` for every active hook subscribed to `event`.

        `installations` maps app id -> the "installation" object for this event's repository: a hook bound to
        an app (hook.app_id) only gets events where that app is installed, carrying its own installation."""
        installations = installations or {}
        if installations and "installation" not in payload:
            payload = {**payload, "installation": next(iter(installations.values()))}
        out = []
        for hook in self._hooks():
            if not hook.wants(event):
                continue
            body_payload = payload
            if hook.app_id is not None:
                if hook.app_id not in installations:
                    continue
                body_payload = {**payload, "installation": installations[hook.app_id]}
            body = json.dumps(body_payload, separators=(",", ":")).encode()
            out.append(self._enqueue(hook, event, payload.get("action"), body, str(uuid.uuid4()), False))
        return out

    def ping(self, hook: Any, payload: dict[str, Any]) -> Delivery:
        """The `ping` GitHub sends to a newly created hook (only to that hook)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        return self._enqueue(hook, "ping", None, body, str(uuid.uuid4()), False)

    def redeliver(self, delivery_id: int) -> Delivery:
        with self._lock:
            orig = next((d for d in self.log if d.id == delivery_id), None)
        if orig is None:
            raise KeyError(delivery_id)
        hook = next((h for h in self._hooks() if h.id == orig.hook_id), None)
        if hook is None:
            raise KeyError(orig.hook_id)
        return self._enqueue(hook, orig.event, orig.action, orig.body, orig.guid, True)

    def _enqueue(
        self, hook: Any, event: str, action: str | None, body: bytes, guid: str, redelivery: bool
    ) -> Delivery:
        with self._lock:
            d = Delivery(len(self.log) + 1, guid, hook.id, event, action, body, redelivery=redelivery)
            self.log.append(d)
        self._queue.put((d, hook))
        return d

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until every queued delivery has been attempted."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            pending = list(self.log)
        for d in pending:
            if not d.done.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self.log)

    def stop(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            delivery, hook = item
            try:
                self._deliver(delivery, hook)
            finally:
                delivery.done.set()

    def _deliver(self, d: Delivery, hook: Any) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/sandbox",
            "X-GitHub-Event": d.event,
            "X-GitHub-Delivery": d.guid,
            "X-GitHub-Hook-ID": str(hook.id),
        }
        if hook.secret:
            headers["X-Hub-Signature-256"] = sign(hook.secret, d.body)
        url = urllib.parse.urlsplit(hook.url)
        conn_cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        start = time.monotonic()
        try:  # http.client keeps header names as GitHub spells them (urllib would capitalize them)
            conn = conn_cls(url.hostname or "127.0.0.1", url.port, timeout=self._timeout)
            try:
                conn.request(
                    "POST", (url.path or "/") + (f"?{url.query}" if url.query else ""), d.body, headers
                )
                resp = conn.getresponse()
                resp.read()
                d.status_code = resp.status
                if resp.status >= 400:
                    d.error = f"HTTP {resp.status} {resp.reason}"
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            d.error = str(exc) or type(exc).__name__
        d.duration_ms = round((time.monotonic() - start) * 1000, 2)
        d.delivered_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
