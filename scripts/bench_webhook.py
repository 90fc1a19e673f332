#!/usr/bin/env python3
"""Webhook acknowledgement latency: N signed deliveries over loopback HTTP to the real Flask app + SQLite.

Prints p50 / p90 / p99 / max of the time from sending the request to receiving the 202 (the handler verifies
the signature, parses, records the delivery, routes and enqueues the command). Target: p99 < 50 ms.

    .venv/bin/python scripts/bench_webhook.py [--n 1000] [--server werkzeug]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402

from bot.config import Settings  # noqa: E402
from bot.signature import sign  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.web import create_app  # noqa: E402

SECRET = "bench-secret"


class Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


def payload(i: int) -> bytes:
    kind = i % 3
    if kind == 0:
        body = {
            "action": "labeled",
            "label": {"name": "autoresearch"},
            "issue": {"number": i, "title": "t", "body": "b"},
            "repository": {"full_name": "octo/llama"},
            "sender": {"login": "maria", "type": "User"},
        }
    elif kind == 1:
        body = {
            "action": "created",
            "issue": {"number": i},
            "comment": {"id": i, "body": "/autoresearch status", "user": {"login": "maria", "type": "User"}},
            "repository": {"full_name": "octo/llama"},
            "sender": {"login": "maria", "type": "User"},
        }
    else:
        body = {
            "action": "opened",
            "issue": {"number": i},
            "repository": {"full_name": "octo/llama"},
            "sender": {"login": "maria", "type": "User"},
        }
    return json.dumps(body).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(webhook_secret=SECRET, database=str(Path(tmp) / "bot.db"))
        store = Store(settings.db_path)
        server = make_server(
            "127.0.0.1", 0, create_app(settings, store), threaded=True, request_handler=Quiet
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        latencies = []
        codes: dict[int, int] = {}
        for i in range(args.warmup + args.n):
            body = payload(i)
            event = ("issues", "issue_comment", "issues")[i % 3]
            headers = {
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": sign(SECRET, body),
                "Content-Type": "application/json",
            }
            t0 = time.perf_counter()
            conn.request("POST", "/webhook", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            elapsed = (time.perf_counter() - t0) * 1000
            if resp.will_close:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            if i >= args.warmup:
                latencies.append(elapsed)
                codes[resp.status] = codes.get(resp.status, 0) + 1
        server.shutdown()
        latencies.sort()

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))]

        print(
            f"signed deliveries: {len(latencies)} over loopback HTTP (werkzeug threaded server, SQLite WAL)"
        )
        print(f"status codes: {dict(sorted(codes.items()))}  (202 accepted, 200 ignored)")
        print(f"commands enqueued: {len(store.pending_commands(limit=100000))}")
        print(
            f"latency ms: p50 {pct(50):.2f}  p90 {pct(90):.2f}  p99 {pct(99):.2f}  max {latencies[-1]:.2f}  "
            f"mean {statistics.fmean(latencies):.2f}"
        )
        ok = pct(99) < 50.0
        print(f"target p99 < 50 ms: {'met' if ok else 'NOT met'}")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
