"""`autoresearch-bot serve` (README's deployment step 7) runs gunicorn with deploy/gunicorn.conf.py's
settings, not werkzeug's development server: no "do not use it in a production deployment" banner, the
webhook service answers, the worker runs in the web process and stops at a safe point on SIGTERM, and the
log lines carry no colour codes when they do not go to a terminal."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("gunicorn")  # the serve extra (and the test extra)

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("no_worker", [False, True])
def test_serve_runs_gunicorn_without_the_development_banner(tmp_path: Path, no_worker: bool) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AUTORESEARCH_")},
        "AUTORESEARCH_WEBHOOK_SECRET": "s3cret",
        "AUTORESEARCH_GITHUB_TOKEN": "t",
        "AUTORESEARCH_DATA_DIR": str(tmp_path / "var"),
        "AUTORESEARCH_DATABASE": str(tmp_path / "var" / "bot.db"),
        "PYTHONPATH": os.pathsep.join([str(ROOT)] + sys.path),
        "HOME": str(tmp_path),  # gunicorn writes nothing there (no control socket)
    }
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "bot", "serve", "--port", str(port)] + (["--no-worker"] if no_worker else [])
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                        assert resp.status == 200
                        break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                    time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text()
    assert "Using worker: bot.serving.DeadlineThreadWorker" in text and "Booting worker" in text, text
    assert "development server" not in text and "production deployment" not in text, text
    assert "\x1b" not in text, text  # not a terminal: plain lines
    assert not (tmp_path / ".gunicorn").exists()
    if no_worker:
        assert text.count("Booting worker") == 2  # gunicorn.conf.py's process count
        assert "stopping the worker" not in text
    else:
        assert text.count("Booting worker") == 1  # one process: the worker lives in it
        assert "stopping the worker at a safe point" in text, text
