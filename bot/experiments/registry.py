"""The executor registry: `REGISTRY` is the one table of executors. Each entry names the executor, how to
build it from the bot's Settings, and (optionally) the settings checks it needs beyond the common ones.

Settings validation (`Settings.validate`: which `executor` values exist), the bot's assembly (`bot.app`),
the CLI's reconciler and the doctor's checks all read this table and the executor's declared `capabilities`
(`executors.Capabilities`); nothing else names an executor. Adding one: a module with the executor class
(the `executors.Executor` protocol, `capabilities` included) and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .executors import Capabilities, Executor


@dataclass(frozen=True)
class ExecutorEntry:
    name: str
    load: Callable[[], type]  # the executor class (its module imported when asked)
    build: Callable[[Any, Any], Executor]  # (Settings, Store or None) -> a ready executor
    validate: Callable[[Any], None] | None = None  # Settings -> None, or ConfigError for what is wrong

    @property
    def capabilities(self) -> Capabilities:
        return self.load().capabilities


def _local() -> type:
    from .executors import LocalExecutor

    return LocalExecutor


def _build_local(settings: Any, store: Any = None) -> Executor:
    return _local()(
        settings.data_path / "executor" / "local",
        trust=settings.local_trust,
        jail_paths=settings.local_jail_paths,
        shared_cache=settings.local_build_cache,
    )


def _skypilot() -> type:
    from .skypilot_exec import SkyPilotExecutor

    return SkyPilotExecutor


def run_in_progress(store: Any, run_id: int) -> bool:
    """Is the run still going (not done, failed or cancelled)? A run the store does not know is over."""
    from ..store import FINAL_STATES

    try:
        return store.get_run(run_id).state not in FINAL_STATES
    except KeyError:
        return False


def _build_skypilot(settings: Any, store: Any = None) -> Executor:
    # the reconciler downs the clusters of runs that are over (their release lost to a crash)
    run_active = None if store is None else (lambda run_id: run_in_progress(store, run_id))
    charge = (
        None
        if store is None
        else (lambda run_id, detail, usd: store.record_usage(run_id, "vm", usd=usd, detail=detail))
    )
    return _skypilot()(
        settings.data_path / "executor" / "skypilot",
        run_active=run_active,
        keep_warm_minutes=float(getattr(settings, "keep_warm_minutes", 0) or 0),
        charge=charge,
    )


REGISTRY: dict[str, ExecutorEntry] = {
    e.name: e
    for e in (
        ExecutorEntry("local", _local, _build_local),
        ExecutorEntry("skypilot", _skypilot, _build_skypilot),
    )
}


def get(name: str) -> ExecutorEntry:
    """The registered executor called `name` (KeyError if none)."""
    return REGISTRY[name]


def names_text() -> str:
    """'local' or 'skypilot' (every registered name, quoted, for error messages)."""
    quoted = [repr(n) for n in REGISTRY]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def build(settings: Any, store: Any = None) -> Executor:
    """The executor `settings.executor` names, built from the settings (and the store, when there is one)."""
    return get(settings.executor).build(settings, store)


__all__ = ["REGISTRY", "ExecutorEntry", "build", "get", "names_text"]
