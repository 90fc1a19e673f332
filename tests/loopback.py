"""A TCP server on the host's loopback for tests: accepts connections on a thread and hands each to `handle`
(test_forge's flaky proxy to the sandbox, test_jail's listener for what escapes the jail)."""

from __future__ import annotations

import socket
import threading


class LoopbackServer:
    """Listens on 127.0.0.1:<free port> (`port`); `accepted` counts connections; `close()` stops accepting."""

    def __init__(self) -> None:
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        """One accepted connection (on the accepting thread); the default closes it."""
        conn.close()

    def close(self) -> None:
        self.sock.close()
