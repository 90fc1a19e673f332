"""The webhook service's gunicorn worker: gthread with one read deadline per request, not per read.

`deploy/gunicorn.conf.py` names `bot.serving.DeadlineThreadWorker`. gunicorn's gthread worker keeps idle
connections in its poller, but once a request's first bytes arrive a thread reads its headers and body with
blocking reads and no bound on their total: a socket timeout applies to each read, so a client that sends a
byte every 3 s holds a thread for as long as it likes (issue #20: 75 s and more), and enough of them starve
GitHub's deliveries (GitHub gives up after 10 s). Here each request gets one deadline
(`AUTORESEARCH_REQUEST_DEADLINE`, 5 s) from its first read until its body is read: every read
waits at most for what is left of it, and a read at the deadline ends the request (headers not in: the
connection is closed; body not in: 400, "body could not be read (RequestDeadline)"). A connection that ends
is closed on its own thread: gunicorn's lingering close (up to 2 s of draining what the client still sends)
otherwise runs on the worker's main loop, which would then stop accepting and dispatching for every stalled
client in turn.

With threads to spare (`AUTORESEARCH_WEB_THREADS`, 100 per worker) stalled clients only ever take threads
that deliveries do not need: up to workers x threads of them at once cost a delivery nothing, more delay it
by at most one deadline per wave. A buffering proxy in front (README, Deployment) absorbs any number.

TLS terminated by gunicorn itself (`certfile`) is not covered (the socket is wrapped by ssl first); the
deployment terminates TLS at the proxy.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import gunicorn
from gunicorn import util
from gunicorn.http.errors import NoMoreData
from gunicorn.workers import gthread
from gunicorn.workers.gthread import ThreadWorker

# the worker builds on gthread's internals as gunicorn 27 has them (TConn.initialized, handle() returning
# True / False / a defer sentinel, finish_request closing on the main loop): another version is refused
if not gunicorn.__version__.startswith("27.") or not hasattr(gthread, "_DEFER"):
    raise ImportError(
        f"bot.serving needs gunicorn 27 (found {gunicorn.__version__}): pip install 'gunicorn>=27,<28' "
        "(the serve extra pins it)"
    )

LINGER_S = 1.0  # a closing connection drains what its client still sends for at most this long


class RequestDeadline(NoMoreData):
    """The request's headers or body were not all in by its deadline.

    A NoMoreData (gunicorn closes the connection quietly while reading headers; werkzeug passes it to the
    app as the OSError of a body read, which answers 400)."""

    def __str__(self) -> str:
        return "the request was not received within its deadline"


class DeadlineSocket:
    """A connection's socket whose reads share one deadline (`arm`), restored to blocking after each read
    (so writing the response is not cut short by what was left of the deadline)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._budget: float | None = None
        self._deadline: float | None = None
        self._closed = False

    def arm(self, seconds: float) -> None:
        """The next request gets `seconds` from its first read on (gthread's own wait for a new
        connection's first bytes, up to 5 s on the thread, does not count against it)."""
        self._budget, self._deadline = seconds, None

    def disarm(self) -> None:
        self._budget = self._deadline = None

    def recv(self, size: int, *flags: int) -> bytes:
        if self._budget is None:
            return self._sock.recv(size, *flags)
        if self._deadline is None:
            self._deadline = time.monotonic() + self._budget
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise RequestDeadline()
        previous = self._sock.gettimeout()
        self._sock.settimeout(remaining)
        try:
            return self._sock.recv(size, *flags)
        except TimeoutError:
            raise RequestDeadline() from None
        finally:
            try:
                self._sock.settimeout(previous)
            except OSError:
                pass

    def setblocking(self, flag: bool) -> None:
        if not self._closed:  # closed on the request's thread already: gunicorn's own close finds it so
            self._sock.setblocking(flag)

    def settimeout(self, value: float | None) -> None:
        if not self._closed:
            self._sock.settimeout(value)

    def close(self) -> None:
        self._closed = True
        self._sock.close()

    def __getattr__(self, name: str) -> Any:  # fileno, sendall, shutdown, getpeername, ...
        return getattr(self._sock, name)


def request_deadline(env: dict[str, str] | None = None) -> float:
    """`AUTORESEARCH_REQUEST_DEADLINE` (seconds, default 5): how long one request may take to arrive."""
    env = os.environ if env is None else env
    if "AUTORESEARCH_BODY_TIMEOUT" in env:
        raise RuntimeError(
            "AUTORESEARCH_BODY_TIMEOUT is gone: it bounded each read, not the request; set "
            "AUTORESEARCH_REQUEST_DEADLINE (seconds for a request's headers and body together) instead"
        )
    raw = env.get("AUTORESEARCH_REQUEST_DEADLINE", "5")
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 60:
        raise RuntimeError(f"AUTORESEARCH_REQUEST_DEADLINE must be seconds in (0, 60], got {raw!r}")
    return value


class DeadlineThreadWorker(ThreadWorker):
    """gthread, with `DeadlineSocket` around each plain-TCP connection and closes on the request's thread."""

    deadline_s = 5.0

    def init_process(self) -> None:
        self.deadline_s = request_deadline()
        super().init_process()  # runs the worker's loop

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        super().check_config(cfg, log)
        if cfg.is_ssl:
            log.warning("TLS in gunicorn: the per-request read deadline is off; terminate TLS at the proxy")

    def handle(self, conn: Any) -> Any:
        if not self.cfg.is_ssl and not conn.initialized and not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock)
        guard = conn.sock if isinstance(conn.sock, DeadlineSocket) else None
        if guard is not None:
            guard.arm(self.deadline_s)
        try:
            result = super().handle(conn)
        finally:
            if guard is not None:
                guard.disarm()
        if result is False:  # not kept alive: close here, not in finish_request on the main loop
            util.close_graceful(conn.sock, timeout=LINGER_S)
        return result
