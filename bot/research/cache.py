"""On-disk JSON cache and retry policy shared by the research sources."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_none

T = TypeVar("T")


class JsonCache:
    """A directory of JSON files, one per (namespace, key); writes are atomic."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def _path(self, namespace: str, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        return self.root / namespace / f"{digest}.json"

    def get(self, namespace: str, key: str, max_age_s: float | None = None) -> Any | None:
        """The stored value, or None when absent, unreadable, or older than `max_age_s`."""
        path = self._path(namespace, key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        if max_age_s is not None and time.time() - float(data.get("stored_at", 0)) > max_age_s:
            return None
        return data.get("value")

    def put(self, namespace: str, key: str, value: Any) -> None:
        path = self._path(namespace, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"key": key, "stored_at": time.time(), "value": value}, fh)
        os.replace(tmp, path)


def with_retries(
    fn: Callable[[], T],
    attempts: int = 3,
    wait_s: float = 1.0,
    retry_on: Callable[[BaseException], bool] = lambda exc: True,
) -> T:
    """Call `fn` up to `attempts` times with exponential back-off; re-raise the last error. A GitHub rate
    limit is raised at once (retrying in seconds cannot help; the run is deferred until the reset)."""
    from ..forge.errors import RateLimited

    retrying = Retrying(
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait_exponential(multiplier=wait_s, max=max(wait_s, 30.0)) if wait_s > 0 else wait_none(),
        retry=retry_if_exception(lambda exc: not isinstance(exc, RateLimited) and retry_on(exc)),
        reraise=True,
    )
    return retrying(fn)
