"""Assembly: settings -> store, forge, pipeline, worker, Flask app. The one place that wires modules together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask

from .config import ConfigError, Settings
from .pipeline import Pipeline
from .store import FINAL_STATES, Store
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


def run_in_progress(store: Store, run_id: int) -> bool:
    """Is the run still going (not done, failed or cancelled)? A run the store does not know is over."""
    try:
        return store.get_run(run_id).state not in FINAL_STATES
    except KeyError:
        return False


def make_executor(settings: Settings, store: Store | None = None) -> Any:
    if settings.executor == "skypilot":
        from .experiments.skypilot_exec import SkyPilotExecutor

        # the reconciler downs the clusters of runs that are over (their release lost to a crash)
        run_active = None if store is None else (lambda run_id: run_in_progress(store, run_id))
        return SkyPilotExecutor(settings.data_path / "executor" / "skypilot", run_active=run_active)
    from .experiments.executors import LocalExecutor

    return LocalExecutor(settings.data_path / "executor" / "local", trust=settings.local_trust,
                         jail_paths=settings.local_jail_paths)


def make_llm_factory(settings: Settings, store: Store) -> Any:
    """LLM per run (its own budget and usage records), or None without an API key."""
    if not settings.anthropic_api_key:
        return lambda ctx: None

    def factory(ctx: Any) -> Any:
        from .agent.llm import LLM

        run_id = ctx.run.id

        def sink(usage: dict) -> None:
            store.record_usage(run_id, "llm", tokens_in=int(usage.get("input_tokens", 0)),
                               tokens_out=int(usage.get("output_tokens", 0)), usd=float(usage.get("usd", 0.0)),
                               detail=str(usage.get("purpose", "")))

        spent = store.usage_totals(run_id)
        tokens_left = max(0, min(ctx.project.budget_tokens, settings.budget_llm_tokens)
                          - int(spent["tokens_in"] + spent["tokens_out"]))
        usd_left = max(0.0, min(ctx.project.budget_usd, settings.budget_usd) - float(spent["usd"]))
        return LLM(api_key=settings.anthropic_api_key, max_tokens_budget=tokens_left, usd_budget=usd_left,
                   model=settings.anthropic_model, base_url=settings.anthropic_base_url, usage_sink=sink)

    return factory


def default_services(settings: Settings, store: Store) -> dict[str, Any]:
    return {"executor": make_executor(settings, store), "llm_factory": make_llm_factory(settings, store)}


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
    services = {**default_services(settings, store), **(services or {})}
    pipeline = Pipeline(settings, store, forge, services=services)
    worker = Worker(settings, store, pipeline, owner=owner)
    return Bot(settings, store, forge, pipeline, worker, create_app(settings, store))
