"""Executor registry (bot/experiments/registry.py): one table drives settings validation, construction, the
doctor and the CLI's reconciler; stages ask the executor's declared capabilities. A toy executor registered in
a test is one class plus one registry entry."""

from __future__ import annotations

import json
import types
import uuid
from pathlib import Path
from typing import Any

import pytest

from bot import cli, stages
from bot.app import make_executor
from bot.config import ConfigError, ProjectConfig, Settings
from bot.doctor import run_doctor
from bot.experiments import registry
from bot.experiments.executors import Batch, Capabilities, LocalExecutor
from bot.experiments.skypilot_exec import SkyPilotExecutor
from bot.pipeline import Pipeline, StageContext
from bot.store import Store

ROOT = Path(__file__).resolve().parents[1]
RECORDED = json.loads((ROOT / "tests" / "golden" / "attention_run.json").read_text())


class ReplayExecutor:
    """A toy executor: every batch 'measures' by returning the recorded real driver results of
    tests/golden/attention_run.json for the archs it asks for, at once (a batch is done when submitted)."""

    capabilities = Capabilities(
        archs="configured", priced=False, vm_seconds=True, logs=True, jail=False, reconciler=True
    )
    poll_interval = 0.0

    def __init__(self, base_dir: Path):
        self.base_dir = base_dir
        self.reconcilers: list[float] = []

    def submit(self, batch: Batch) -> str:
        handle = uuid.uuid4().hex[:12]
        self.base_dir.mkdir(parents=True, exist_ok=True)
        (self.base_dir / f"{handle}.json").write_text(json.dumps(sorted(batch.specs)))
        return handle

    def poll(self, handle: str) -> str:
        return "done" if (self.base_dir / f"{handle}.json").exists() else "failed"

    def collect(self, handle: str) -> dict[str, dict[str, Any]]:
        archs = json.loads((self.base_dir / f"{handle}.json").read_text())
        return {a: RECORDED["results"][a] for a in archs if a in RECORDED["results"]}

    def cancel(self, handle: str) -> None:
        (self.base_dir / f"{handle}.json").unlink(missing_ok=True)

    def logs(self, handle: str) -> str:
        return f"replayed {RECORDED['recorded_on']}"

    def vm_seconds(self, handle: str) -> dict[str, float]:
        return {a: r["timings"]["total_s"] for a, r in self.collect(handle).items()}

    def release(self, run_id: int) -> dict[str, dict[str, float]]:
        return {}

    def start_reconciler(self, interval_s: float) -> None:
        self.reconcilers.append(interval_s)


def _one_arch(settings: Settings) -> None:
    if len(settings.architectures) != 1:
        raise ConfigError("architectures", "the replay executor replays one recorded architecture")


@pytest.fixture
def replay(monkeypatch: pytest.MonkeyPatch) -> registry.ExecutorEntry:
    entry = registry.ExecutorEntry(
        "replay",
        lambda: ReplayExecutor,
        lambda s, _store: ReplayExecutor(s.data_path / "executor" / "replay"),
        _one_arch,
    )
    monkeypatch.setitem(registry.REGISTRY, entry.name, entry)  # the one registry line
    return entry


def _settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(database=str(tmp_path / "db.sqlite"), data_dir=str(tmp_path / "data"), **kw)


def _ctx(settings: Settings, executor: Any) -> StageContext:
    store = Store(settings.db_path)
    services = {"executor": executor} if executor is not None else {}
    pipeline = Pipeline(
        settings,
        store,
        forge=None,
        services=services,
        stages=stages.DEFAULT_STAGES,
        status_renderer=stages.render_status,
    )
    raw = {
        "benchmark": {"command": "./bench", "metrics": [{"name": "t_ns"}]},
        "architectures": ["x86", "arm"],
    }
    project = ProjectConfig.from_dict(raw)
    run = store.create_run("maria/attention", 7, "issue", "maria")
    return StageContext(pipeline, store.get_run(run.id), "test", project=project)


def test_registry_declares_the_real_executors() -> None:
    assert list(registry.REGISTRY) == ["local", "skypilot"]
    assert registry.get("local").capabilities is LocalExecutor.capabilities
    assert registry.get("skypilot").capabilities is SkyPilotExecutor.capabilities
    assert (LocalExecutor.capabilities.archs, LocalExecutor.capabilities.priced) == ("host", False)
    assert not LocalExecutor.capabilities.reconciler and SkyPilotExecutor.capabilities.reconciler
    assert (SkyPilotExecutor.capabilities.archs, SkyPilotExecutor.capabilities.priced) == ("configured", True)
    assert registry.names_text() == "'local' or 'skypilot'"


def test_toy_executor_is_validated_built_and_asked(replay: registry.ExecutorEntry, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:  # the entry's own settings check
        _settings(tmp_path, executor="replay").validate()
    assert (info.value.field, info.value.problem) == (
        "architectures",
        "the replay executor replays one recorded architecture",
    )
    settings = Settings.load(
        env={
            "AUTORESEARCH_EXECUTOR": "replay",
            "AUTORESEARCH_DATA_DIR": str(tmp_path),
            "AUTORESEARCH_ARCHITECTURES": "{x86: {cloud: aws, price_per_hour: 1.0}}",
        }
    )
    with pytest.raises(ConfigError, match="must be 'local', 'skypilot' or 'replay', got 'nope'"):
        _settings(tmp_path, executor="nope").validate()

    executor = make_executor(settings)  # construction from the table
    assert isinstance(executor, ReplayExecutor) and executor.base_dir == tmp_path / "executor" / "replay"
    handle = executor.submit(Batch(run_id=1, specs={"x86": {}, "arm": {}}))
    assert executor.poll(handle) == "done" and list(executor.collect(handle)) == ["x86"]
    assert executor.vm_seconds(handle) == {"x86": RECORDED["results"]["x86"]["timings"]["total_s"]}

    ctx = _ctx(settings, executor)  # stages ask the capabilities
    assert stages.measured_archs(ctx) == ["x86", "arm"]  # "configured": the project's archs
    assert stages._price(ctx, "x86") == 0.0  # not priced
    cli.start_reconciler(types.SimpleNamespace(pipeline=ctx.pipeline))
    assert executor.reconcilers == [300.0]


def test_local_capabilities_drive_the_stages(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    executor = make_executor(settings)
    assert isinstance(executor, LocalExecutor) and executor.vm_seconds("any") == {}
    for ctx in (_ctx(settings, executor), _ctx(settings, None)):  # the service's, else the registered one's
        assert stages.measured_archs(ctx) == [stages.local_arch()]
        assert stages._price(ctx, "x86") == 0.0
    _, lines = run_doctor(env={"AUTORESEARCH_DATA_DIR": str(tmp_path)})
    assert lines[0] == "ok    settings load (executor local, architectures x86, arm)"
    assert not any("architectures.x86" in ln for ln in lines)  # "host" archs: no SkyPilot task to check


def test_skypilot_entry_passes_keep_warm_and_charges_warm_time_to_the_store(tmp_path: Path) -> None:
    settings = _settings(tmp_path, keep_warm_minutes=45.0)
    store = Store(settings.db_path)
    run = store.create_run("maria/attention", 7, "issue", "maria")
    built = registry.get("skypilot").build(settings, store)
    assert built.keep_warm_minutes == 45.0 and built.charge is not None
    built.charge(run.id, "warm/x86 ar-r1-abcdef-x86-1: 600 s", 0.5)
    assert store.usage_totals(run.id)["usd"] == pytest.approx(0.5)
    assert (
        registry.get("skypilot").build(_settings(tmp_path, keep_warm_minutes=0), store).keep_warm_minutes == 0
    )
