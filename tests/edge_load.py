"""The shipped webhook server under load, over loopback only: real gunicorn with deploy/gunicorn.conf.py,
signed deliveries, and hostile clients that stall or trickle their requests. Used by
tests/test_deploy_gunicorn.py (bounds no busy machine can hide) and `scripts/bench_webhook.py --server
gunicorn` (the timing figures).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.signature import sign

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "deploy" / "gunicorn.conf.py"
SECRET = "gunicorn-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(workdir: Path, conf: Path = CONF, **env_overrides: str) -> Iterator[int]:
    """gunicorn -c `conf` bot.wsgi:app on a free loopback port (yields the port); its log in workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "AUTORESEARCH_WEBHOOK_SECRET": SECRET,
        "AUTORESEARCH_DATABASE": str(workdir / "bot.db"),
        "AUTORESEARCH_DATA_DIR": str(workdir),
        "AUTORESEARCH_BIND": f"127.0.0.1:{port}",
        "PYTHONPATH": os.pathsep.join([str(ROOT)] + sys.path),
        **env_overrides,
    }
    log_path = workdir / "gunicorn.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(conf), "bot.wsgi:app"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log_path.read_text()[-3000:]) from None
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ping_body() -> bytes:
    return json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()


def deliver(port: int, delivery: str | None = None, timeout: float = 30) -> float:
    """One signed ping delivery on a fresh connection; seconds until its 200 "pong" was read."""
    body = ping_body()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhook",
        data=body,
        method="POST",
        headers={
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(SECRET, body),
        },
    )
    started = time.monotonic()
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        ok = resp.status == 200 and json.load(resp)["status"] == "pong"
    elapsed = time.monotonic() - started
    if not ok:
        raise AssertionError("the delivery was not acknowledged with a pong")
    return elapsed


def raw_delivery(delivery: str) -> bytes:
    """A signed ping delivery as the bytes on the wire (HTTP/1.1, Connection: close)."""
    body = ping_body()
    head = (
        "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-GitHub-Event: ping\r\nX-GitHub-Delivery: {delivery}\r\n"
        f"X-Hub-Signature-256: {sign(SECRET, body)}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def send_raw(port: int, request: bytes, timeout: float = 30) -> float:
    """Send prepared request bytes on a fresh connection; seconds until the whole response was read (the
    server closes the connection after it). The client does as little as it can, so that the figure is the
    server's."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    elapsed = time.monotonic() - started
    if not data.startswith(b"HTTP/1.1 200") or b'"pong"' not in data:
        raise AssertionError(f"the delivery was not acknowledged with a pong: {data[:200]!r}")
    return elapsed


def concurrent_deliveries(port: int, total: int, concurrency: int) -> list[float]:
    """`total` deliveries, `concurrency` at a time (each on its own connection, prepared beforehand); their
    latencies, seconds."""
    requests = [raw_delivery(str(uuid.uuid4())) for _ in range(total)]
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda r: send_raw(port, r), requests))


class SlowClient(threading.Thread):
    """A client that sends a webhook request's headers and then its 5000-byte body one byte every `every`
    seconds (`trickle_headers`: the headers themselves a byte at a time). `held` is how long the server kept
    the connection before answering or closing it (None while it still holds it); `answer` its first bytes.
    """

    def __init__(self, port: int, every: float, limit: float, trickle_headers: bool = False) -> None:
        super().__init__(daemon=True)
        self.port, self.every, self.limit, self.trickle_headers = port, every, limit, trickle_headers
        self.held: float | None = None
        self.answer = b""
        self.error: str | None = None

    def run(self) -> None:
        head = (
            "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-GitHub-Event: ping\r\nX-GitHub-Delivery: slow-{uuid.uuid4()}\r\n"
            "Content-Length: 5000\r\n\r\n"
        ).encode()
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=self.limit) as s:
                if self.trickle_headers:
                    pieces = [head[i : i + 1] for i in range(len(head))] + [b"{"] * 5000
                else:
                    s.sendall(head)
                    pieces = [b"{"] * 5000
                for piece in pieces:
                    if time.monotonic() - started > self.limit:
                        return  # still held at the limit: `held` stays None
                    try:
                        s.sendall(piece)
                    except OSError:
                        break  # the server closed it
                    s.settimeout(self.every)
                    try:
                        data = s.recv(200)
                    except TimeoutError:
                        continue
                    self.answer = data
                    break
                self.held = time.monotonic() - started
        except OSError as exc:
            self.held = time.monotonic() - started
            self.error = repr(exc)


def slow_clients(port: int, count: int, every: float, limit: float, **kw: bool) -> list[SlowClient]:
    clients = [SlowClient(port, every, limit, **kw) for _ in range(count)]
    for c in clients:
        c.start()
    return clients
