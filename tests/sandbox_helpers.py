"""Helpers for sandbox tests: the admin API client, real git source repos, RSA app keys, a webhook
receiver."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from bot.demo import rsa_keypair  # noqa: F401  (one key generator for the bot's demo and the tests)
from bot.sandbox import Sandbox

GIT_ID = ["-c", "user.name=Tester", "-c", "user.email=tester@example.com", "-c", "commit.gpgsign=false"]


class Admin:
    """Thin client of the sandbox admin API (set-up only; the code under test never uses it)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox
        self.http = requests.Session()

    def _call(self, verb: str, path: str, **json: Any) -> Any:
        resp = self.http.request(verb, f"{self.sb.url}/_sandbox{path}", json=json or None, timeout=30)
        assert resp.status_code < 300, f"{verb} {path}: {resp.status_code} {resp.text[:300]}"
        return resp.json() if resp.content else None

    def user(self, login: str) -> str:
        return self._call("POST", "/users", login=login)["token"]

    def repo(self, owner: str, name: str, source: Path | None = None, private: bool = False) -> str:
        kw: dict[str, Any] = {"owner": owner, "name": name, "private": private}
        if source is not None:
            kw["source_path"] = str(source)
        else:
            kw["auto_init"] = True
        return self._call("POST", "/repos", **kw)["full_name"]

    def fork(self, repo: str, owner: str) -> str:
        return self._call("POST", f"/repos/{repo}/forks", owner=owner)["full_name"]

    def collaborator(self, repo: str, login: str, permission: str) -> None:
        self._call("PUT", f"/repos/{repo}/collaborators/{login}", permission=permission)

    def app(self, slug: str, public_key_pem: str) -> int:
        return int(self._call("POST", "/apps", slug=slug, public_key_pem=public_key_pem)["id"])

    def install(self, app_id: int, account: str, repos: list[str]) -> int:
        return int(self._call("POST", f"/apps/{app_id}/installations", account=account, repos=repos)["id"])

    def token_ttl(self, seconds: float) -> None:
        self._call("PUT", "/settings", installation_token_ttl_s=seconds)

    def fault(
        self,
        path_regex: str,
        status: int,
        times: int = 1,
        method: str = "*",
        headers: dict[str, str] | None = None,
        message: str | None = None,
    ) -> None:
        self._call(
            "POST",
            "/faults",
            path_regex=path_regex,
            status=status,
            times=times,
            method=method,
            headers=headers or {},
            message=message,
        )

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def rate_limit(
        self, login: str | None, seconds: float, kind: str = "primary", status: int = 403
    ) -> dict[str, Any]:
        """Impose a GitHub rate limit on `login`'s REST calls until `seconds` from now (sandbox clock)."""
        body: dict[str, Any] = {"seconds": seconds, "kind": kind, "status": status}
        if login is not None:
            body["login"] = login
        return self._call("POST", "/rate-limits", **body)

    def clear_rate_limits(self) -> None:
        self._call("DELETE", "/rate-limits")

    def advance_clock(self, seconds: float) -> float:
        """Move the sandbox's clock forward (rate limits reset by it); its new time."""
        return float(self._call("POST", "/clock", advance_s=seconds)["now"])

    def requests(self) -> list[dict[str, Any]]:
        return self._call("GET", "/requests")

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *GIT_ID, *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(cwd)},
    ).stdout


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
