"""GitHub's own published descriptions, used as ground truth by tests.

Public API (stable; other tests depend on it):

    openapi_spec() -> dict
        The dereferenced OpenAPI description of api.github.com (npm package @octokit/openapi,
        generated/api.github.com.deref.json), parsed once per process.

    webhook_examples() -> dict[str, list[dict]]
        Real webhook payload examples by event name ("issues", "issue_comment", "ping", "installation",
        "pull_request", ...) from the npm package @octokit/webhooks-examples (api.github.com/index.json).

    validate_exchange(spec, method, path, status, response_json, request_json=None) -> str
        Find the operation whose path template matches `path` (an API path such as "/repos/o/r/issues/1",
        without the "/api/v3" prefix and without the query string), validate `request_json` against its
        requestBody schema (when given) and `response_json` against the documented response schema for
        `status`. Returns the operationId; raises ExchangeError (an AssertionError) with the details.
        Undocumented error statuses (>= 400) are checked against GitHub's basic error shape.

    validate_log(spec, entries) -> (operations, failures)
        validate_exchange over recorded exchanges (the sandbox's request log entries: method, path, status,
        response_json, request_json): the operationIds that validated and the failure messages.

    validate_webhook(spec, event, payload) -> str
        Validate a webhook payload (X-GitHub-Event `event`, e.g. "issue_comment") against the description's
        x-webhooks schema for that event and payload["action"] ("issue-comment-created"); returns that key.

Packages are fetched with `npm pack` into $AUTORESEARCH_CACHE (default <repo>/.cache/npm) and reused.
The OpenAPI description is OpenAPI 3.0.3: `nullable: true` is translated to JSON Schema before validating, and
`oneOf` is read as `anyOf` (GitHub's alternatives overlap, e.g. the label list forms of issues/add-labels).
A request body is only checked when the response status is < 400 (a rejected request may be invalid on
purpose).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema

OPENAPI_PKG = "@octokit/openapi@23.0.2"
WEBHOOKS_PKG = "@octokit/webhooks-examples@7.6.1"
REPO_ROOT = Path(__file__).resolve().parent.parent


class ExchangeError(AssertionError):
    """A request or response that does not match GitHub's OpenAPI description."""


def cache_dir() -> Path:
    return Path(os.environ.get("AUTORESEARCH_CACHE") or REPO_ROOT / ".cache" / "npm")


def _npm_package(spec: str) -> Path:
    """Directory holding the unpacked npm package `spec` (name@version), fetched once."""
    name = spec.rsplit("@", 1)[0].lstrip("@").replace("/", "-")
    version = spec.rsplit("@", 1)[1]
    dest = cache_dir() / f"{name}-{version}"
    if (dest / "package" / "package.json").exists():
        return dest / "package"
    npm = shutil.which("npm")
    if npm is None:
        import pytest

        pytest.skip(f"npm is not installed: cannot fetch {spec} (GitHub's published API description)")
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        proc = subprocess.run(
            [npm, "pack", spec, "--pack-destination", str(tmp), "--silent"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"npm pack {spec} failed: {proc.stderr.strip()}")
        tgz = next(tmp.glob("*.tgz"))
        with tarfile.open(tgz) as tar:
            tar.extractall(tmp, filter="data")
        tgz.unlink()
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)  # atomic: a half-fetched package is never mistaken for a cached one
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest / "package"


@functools.lru_cache(maxsize=1)
def openapi_spec() -> dict[str, Any]:
    path = _npm_package(OPENAPI_PKG) / "generated" / "api.github.com.deref.json"
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


@functools.lru_cache(maxsize=1)
def webhook_examples() -> dict[str, list[dict[str, Any]]]:
    path = _npm_package(WEBHOOKS_PKG) / "api.github.com" / "index.json"
    with open(path, encoding="utf-8") as fh:
        events = json.load(fh)
    return {e["name"]: list(e.get("examples") or []) for e in events}


# ---- validation ------------------------------------------------------------------------------------

# GitHub's description of these says "You can also pass an array of labels directly" (PyGithub does), but the
# schema lists only {"labels": [...]}; a bare list is validated as that object.
_BARE_LABEL_LIST_OPS = {"issues/add-labels", "issues/set-labels"}
_BASIC_ERROR = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}, "documentation_url": {"type": "string"}},
}


def _template_regex(template: str, loose: bool) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    out = []
    for i, part in enumerate(parts):
        if part.startswith("{"):
            last = i >= len(parts) - 2
            out.append(".*" if loose and last else "[^/]+")
        else:
            out.append(re.escape(part))
    return re.compile("^" + "".join(out) + "$")


class _Index:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.entries = [
            (t, _template_regex(t, False), _template_regex(t, True), len(re.sub(r"\{[^}]+\}", "", t)))
            for t in spec["paths"]
        ]
        self.validators: dict[tuple[str, str, str], jsonschema.protocols.Validator] = {}

    def find(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        method = method.lower()
        for loose in (False, True):
            cands = [
                (lit, t)
                for t, strict, lenient, lit in self.entries
                if (lenient if loose else strict).match(path) and method in self.spec["paths"][t]
            ]
            if cands:
                template = max(cands)[1]
                return template, self.spec["paths"][template][method]
        raise ExchangeError(f"no documented operation for {method.upper()} {path}")

    def validator(self, key: tuple[str, str, str], schema: dict[str, Any]) -> Any:
        if key not in self.validators:
            self.validators[key] = jsonschema.Draft4Validator(to_json_schema(schema))
        return self.validators[key]


_INDEX_SPECS: dict[int, _Index] = {}


def _index(spec: dict[str, Any]) -> _Index:
    if id(spec) not in _INDEX_SPECS:
        _INDEX_SPECS[id(spec)] = _Index(spec)
    return _INDEX_SPECS[id(spec)]


def to_json_schema(schema: Any) -> Any:
    """Translate OpenAPI 3.0 schema keywords (`nullable`) into JSON Schema, recursively."""
    if isinstance(schema, list):
        return [to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        ("anyOf" if k == "oneOf" else k): to_json_schema(v)
        if k not in ("example", "examples", "enum", "default")
        else v
        for k, v in schema.items()
        if k != "nullable"
    }
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: to_json_schema(v) for k, v in schema["properties"].items()}
    if schema.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _json_schema_of(content: dict[str, Any] | None) -> dict[str, Any] | None:
    for ctype, media in (content or {}).items():
        if "json" in ctype and "schema" in media:
            return media["schema"]
    return None


def _check(validator: Any, instance: Any, what: str) -> None:
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{what}: {len(errors)} schema error(s)"]
        for e in errors[:8]:
            loc = "/".join(str(p) for p in e.absolute_path) or "<root>"
            lines.append(f"  at {loc}: {e.message[:300]}")
        raise ExchangeError("\n".join(lines))


def validate_exchange(
    spec: dict[str, Any], method: str, path: str, status: int, response_json: Any, request_json: Any = None
) -> str:
    """Validate one HTTP exchange against GitHub's OpenAPI description; return the operationId."""
    index = _index(spec)
    template, op = index.find(method, path.split("?", 1)[0])
    op_id = op.get("operationId", f"{method} {template}")
    where = f"{method.upper()} {path} ({op_id})"
    if op_id in _BARE_LABEL_LIST_OPS and isinstance(request_json, list):
        request_json = {"labels": request_json}  # allowed by the operation's description, not its schema
    if request_json is not None and status < 400:
        req_schema = _json_schema_of((op.get("requestBody") or {}).get("content"))
        if req_schema is not None:
            _check(
                index.validator((template, method, "request"), req_schema), request_json, f"{where} request"
            )
    responses = op.get("responses", {})
    documented = responses.get(str(status))
    if documented is None:
        if status >= 400:
            if response_json is not None:
                _check(jsonschema.Draft4Validator(_BASIC_ERROR), response_json, f"{where} error {status}")
            return op_id
        raise ExchangeError(f"{where}: status {status} is not documented (documented: {sorted(responses)})")
    schema = _json_schema_of(documented.get("content"))
    if schema is None:
        if status != 204 and response_json not in (None, {}, []):
            raise ExchangeError(f"{where}: status {status} documents no JSON body")
        return op_id
    _check(
        index.validator((template, method, str(status)), schema), response_json, f"{where} response {status}"
    )
    return op_id


def validate_log(spec: dict[str, Any], entries: Iterable[dict[str, Any]]) -> tuple[set[str], list[str]]:
    """Validate recorded exchanges; returns (operationIds that validated, failure messages)."""
    operations: set[str] = set()
    failures: list[str] = []
    for e in entries:
        try:
            operations.add(
                validate_exchange(
                    spec, e["method"], e["path"], e["status"], e["response_json"], e["request_json"]
                )
            )
        except ExchangeError as exc:
            failures.append(str(exc))
    return operations, failures


def validate_webhook(spec: dict[str, Any], event: str, payload: dict[str, Any]) -> str:
    """Validate a webhook payload against the OpenAPI description's x-webhooks entry; return its key."""
    hooks = spec.get("x-webhooks") or {}
    key = event.replace("_", "-") + (f"-{payload['action']}" if payload.get("action") else "")
    if key not in hooks:
        key = event.replace("_", "-")
    if key not in hooks:
        raise ExchangeError(f"no documented webhook for event {event!r} action {payload.get('action')!r}")
    schema = _json_schema_of(hooks[key]["post"]["requestBody"]["content"])
    index = _index(spec)
    _check(index.validator(("x-webhooks", key, "payload"), schema or {}), payload, f"webhook {key}")
    return key
