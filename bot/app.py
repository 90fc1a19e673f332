"""Assembly: settings -> store, forge, pipeline, worker, Flask app. The one place that wires modules
together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask

from .config import ConfigError, Settings
from .pipeline import Pipeline
from .stages import DEFAULT_STAGES, render_status
from .store import Store
from .web import create_app
from .worker import Worker

if TYPE_CHECKING:
    from .forge import Forge


def make_forge(settings: Settings) -> Forge:
    from .forge import forge_from_settings

    if not settings.github_token and settings.github_app_id is None:
        raise ConfigError(
            "github_token",
            "set AUTORESEARCH_GITHUB_TOKEN (or GITHUB_TOKEN), or a GitHub App id and "
            "private key (AUTORESEARCH_GITHUB_APP_ID, AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE)",
        )
    key = settings.github_private_key
    key_path = None
    if key and not key.lstrip().startswith("-----BEGIN"):
        key_path, key = key, None  # a path to the PEM file
    return forge_from_settings(
        base_url=settings.github_base_url,
        token=settings.github_token,
        app_id=settings.github_app_id,
        private_key=key,
        private_key_path=key_path,
        installation_id=settings.github_installation_id,
    )


def make_executor(settings: Settings, store: Store | None = None) -> Any:
    """The executor `settings.executor` names (bot/experiments/registry.py); `store` lets an executor ask
    whether a run is still going (the SkyPilot reconciler downs the clusters of runs that are over)."""
    from .experiments import registry

    return registry.build(settings, store)


def make_llm_factory(settings: Settings, store: Store) -> Any:
    """LLM per run (its own budget and usage records), or None without an API key."""
    if not settings.anthropic_api_key:
        return lambda ctx: None

    def factory(ctx: Any) -> Any:
        from .agent.llm import LLM

        run_id = ctx.run.id

        def sink(usage: dict) -> None:
            store.record_usage(
                run_id,
                "llm",
                tokens_in=int(usage.get("input_tokens", 0)),
                tokens_out=int(usage.get("output_tokens", 0)),
                usd=float(usage.get("usd", 0.0)),
                detail=str(usage.get("purpose", "")),
            )

        spent = store.usage_totals(run_id)
        tokens_left = max(
            0,
            min(ctx.project.budget_tokens, settings.budget_llm_tokens)
            - int(spent["tokens_in"] + spent["tokens_out"]),
        )
        usd_left = max(0.0, min(ctx.project.budget_usd, settings.budget_usd) - float(spent["usd"]))
        return LLM(
            api_key=settings.anthropic_api_key,
            max_tokens_budget=tokens_left,
            usd_budget=usd_left,
            model=settings.anthropic_model,
            base_url=settings.anthropic_base_url,
            usage_sink=sink,
        )

    return factory


def default_services(settings: Settings, store: Store) -> dict[str, Any]:
    return {"executor": make_executor(settings, store), "llm_factory": make_llm_factory(settings, store)}


@dataclass
class Bot:
    settings: Settings
    store: Store
    forge: Forge
    pipeline: Pipeline
    worker: Worker
    app: Flask


def build_bot(
    settings: Settings,
    *,
    forge: Forge | None = None,
    services: dict[str, Any] | None = None,
    owner: str | None = None,
) -> Bot:
    settings.validate()
    store = Store(settings.db_path, clock=(services or {}).get("clock"))
    forge = forge if forge is not None else make_forge(settings)
    services = {**default_services(settings, store), **(services or {})}
    pipeline = Pipeline(
        settings, store, forge, stages=DEFAULT_STAGES, status_renderer=render_status, services=services
    )
    worker = Worker(settings, store, pipeline, owner=owner)
    return Bot(
        settings, store, forge, pipeline, worker, create_app(settings, store, services.get("repo_web_url"))
    )
