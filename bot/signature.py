"""The webhook signature (GitHub's `X-Hub-Signature-256`): HMAC-SHA256 of the raw body, hex, prefixed with
`sha256=`. The one signer: bot.web verifies deliveries with it, the sandbox's webhook sender signs them."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def sign(secret: str | bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` header value for `body`."""
    key = secret.encode() if isinstance(secret, str) else secret
    return PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """Whether `header` signs `body` with `secret`, compared in constant time; False without a secret."""
    if not secret or not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())
