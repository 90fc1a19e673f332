"""deploy/gunicorn.conf.py over real HTTP: connections that send headers but no body do not stop a signed
delivery from being answered in time, and each stalled one gets a 400 once its body read times out."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bot.signature import sign

pytest.importorskip("gunicorn")  # in the test extras; deploy/ ships this config

ROOT = Path(__file__).resolve().parent.parent
SECRET = "gunicorn-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def gunicorn(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "AUTORESEARCH_WEBHOOK_SECRET": SECRET,
        "AUTORESEARCH_DATABASE": str(tmp_path / "bot.db"),
        "AUTORESEARCH_DATA_DIR": str(tmp_path),
        "AUTORESEARCH_BIND": f"127.0.0.1:{port}",
        "AUTORESEARCH_BODY_TIMEOUT": "3",
        "PYTHONPATH": os.pathsep.join([str(ROOT)] + sys.path),
    }
    log = (tmp_path / "gunicorn.log").open("wb")
    conf = str(ROOT / "deploy" / "gunicorn.conf.py")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", conf, "bot.wsgi:app"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError((tmp_path / "gunicorn.log").read_text()[-2000:]) from None
            time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(timeout=20)


def stall(port: int, count: int, tag: str) -> list[socket.socket]:
    """Connections that send a webhook request's headers and then none of its 5000-byte body."""
    out = []
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=15)
        s.sendall(
            f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-GitHub-Event: issues\r\nX-GitHub-Delivery: {tag}-{i}\r\n"
            "Content-Length: 5000\r\n\r\n".encode()
        )
        out.append(s)
    time.sleep(0.5)  # let every stalled request reach a worker thread
    return out


def deliver_ping(port: int, delivery: str) -> float:
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhook",
        data=body,
        method="POST",
        headers={
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": delivery,
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(SECRET, body),
        },
    )
    started = time.monotonic()
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200 and json.load(resp)["status"] == "pong"
    return time.monotonic() - started


def answered_400(sockets: list[socket.socket]) -> None:
    """Each stalled request is answered (400, body unreadable) once its read times out, never left hanging."""
    for s in sockets:
        head = s.recv(200).decode("latin-1")
        s.close()
        assert head.startswith("HTTP/1.1 400"), head


def test_idle_bodies_do_not_stall_deliveries(gunicorn):
    port = gunicorn
    # issue #11's probe: 8 idle bodies stalled gunicorn 2 x 4; here a delivery still goes straight through
    stalled = stall(port, 8, "idle")
    assert deliver_ping(port, "real-1") < 1.5
    answered_400(stalled)
    # more stalled bodies than all 2 x 16 threads: the delivery waits at most for the 3 s body timeout,
    # well inside GitHub's 10 s
    stalled = stall(port, 40, "flood")
    assert deliver_ping(port, "real-2") < 6.0
    answered_400(stalled)
