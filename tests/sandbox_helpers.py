"""Helpers for sandbox tests: real git source repos, RSA app keys, a webhook receiver."""
from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bot.demo import rsa_keypair  # noqa: F401  (one key generator for the bot's demo and the tests)

GIT_ID = ["-c", "user.name=Tester", "-c", "user.email=tester@example.com", "-c", "commit.gpgsign=false"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin",
                               "HOME": str(cwd)}).stdout


def make_source_repo(path: Path) -> Path:
    """A small local repo on `main` with two commits and a `dev` branch."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "src").mkdir()
    (path / "src" / "kernel.c").write_text("int add(int a, int b) { return a + b; }\n")
    (path / "README.md").write_text("# demo\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    (path / "src" / "kernel.c").write_text("int add(int a, int b) {\n  return a + b;\n}\n")
    git(path, "commit", "-q", "-am", "format kernel")
    git(path, "branch", "dev")
    return path


class WebhookReceiver:
    """A tiny local HTTP server recording POSTed webhooks: .received = [(headers, raw body)]."""

    def __init__(self, status: int = 200) -> None:
        received: list[tuple[dict[str, str], bytes]] = []
        self.received = received
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((dict(self.headers.items()), body))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/webhook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        return [(h["X-GitHub-Event"], json.loads(b)) for h, b in self.received]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
