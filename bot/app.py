"""Assembly: settings -> store, forge, pipeline, worker, Flask app. The one place that wires modules together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask

from .config import ConfigError, Settings
from .pipeline import Pipeline
from .store import Store
from .web import create_app
from .worker import Worker


def make_forge(settings: Settings) -> Any:
    from .forge import forge_from_settings

    if not settings.github_token and settings.github_app_id is None:
        raise ConfigError("github_token", "set AUTORESEARCH_GITHUB_TOKEN (or GITHUB_TOKEN), or a GitHub App id and "
                                          "private key (AUTORESEARCH_GITHUB_APP_ID, AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE)")
    key = settings.github_private_key
    key_path = None
    if key and not key.lstrip().startswith("-----BEGIN"):
        key_path, key = key, None  # a path to the PEM file
    return forge_from_settings(base_url=settings.github_base_url, token=settings.github_token,
                               app_id=settings.github_app_id, private_key=key, private_key_path=key_path,
                               installation_id=settings.github_installation_id)


@dataclass
class Bot:
    settings: Settings
    store: Store
    forge: Any
    pipeline: Pipeline
    worker: Worker
    app: Flask


def build_bot(settings: Settings, *, forge: Any = None, services: dict[str, Any] | None = None,
              owner: str | None = None) -> Bot:
    settings.validate()
    store = Store(settings.db_path)
    forge = forge if forge is not None else make_forge(settings)
    pipeline = Pipeline(settings, store, forge, services=services)
    worker = Worker(settings, store, pipeline, owner=owner)
    return Bot(settings, store, forge, pipeline, worker, create_app(settings, store))
