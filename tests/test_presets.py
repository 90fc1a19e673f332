"""Preset registry (bot/presets/): options validated by one schema validator, the deprecated `llamacpp:`
alias, and the driver's hook module chosen from the spec. A toy preset is one module plus one registry
entry."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import types
from pathlib import Path

import pytest

from bot import presets
from bot.config import ConfigError, ProjectConfig
from bot.presets.schema import Option

ROOT = Path(__file__).resolve().parents[1]
GENERIC = "benchmark: {command: ./bench, metrics: [{name: t_ns, higher_is_better: false}]}\n"


def toy_module() -> types.ModuleType:
    """A preset as a module: what a new bot/presets/<name>.py would export."""
    toy = types.ModuleType("toy_preset")
    toy.NAME = "toy"
    toy.DEFAULTS = {"benchmark": {"command": "./toy-bench", "metrics": [{"name": "ops", "unit": "op/s"}]}}
    toy.OPTIONS = {
        "size": Option(int, 8, minimum=1, maximum=64),
        "mode": Option(str, "fast"),
        "ratio": Option(float, 0.5, minimum=0.0, maximum=1.0),
        "seed_file": Option(str, None, nullable=True),
    }
    toy.HOOKS = "toyhooks"
    toy.REQUIRED = ()
    toy.LEGACY_SECTION = None
    toy.VM_PACKAGES = ("toypkg",)
    return toy


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = presets.check(toy_module())
    monkeypatch.setitem(presets.REGISTRY, module.NAME, module)  # the one registry line
    return module


def test_registry_names_every_preset_once() -> None:
    assert list(presets.REGISTRY) == ["generic", "llama.cpp"]
    assert presets.legacy_sections() == {"llamacpp": "llama.cpp"}
    assert presets.vm_packages("llama.cpp") == ["gguf", "numpy"] and presets.vm_packages("generic") == []
    with pytest.raises(TypeError, match="lacks"):
        presets.check(types.ModuleType("half_a_preset"))


def test_toy_preset_is_selectable_and_its_options_are_validated(toy: types.ModuleType) -> None:
    cfg = ProjectConfig.from_yaml("preset: toy\npreset_options: {size: 16, ratio: 1}\n")
    assert cfg.preset == "toy" and cfg.target == "ops" and cfg.raw["benchmark"]["command"] == "./toy-bench"
    assert cfg.preset_options == {"size": 16, "mode": "fast", "ratio": 1.0, "seed_file": None}
    assert cfg.preset_hooks == "toyhooks"
    assert ProjectConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()  # round trip
    assert presets.vm_packages("toy") == ["toypkg"]
    for text, field, words in [
        ("preset: toy\npreset_options: {size: 0}\n", "preset_options.size", "between 1 and 64, got 0"),
        ("preset: toy\npreset_options: {size: 2.5}\n", "preset_options.size", "type int"),
        ("preset: toy\npreset_options: {ratio: true}\n", "preset_options.ratio", "must be a number"),
        ("preset: toy\npreset_options: {mode: null}\n", "preset_options.mode", "is required"),
        ("preset: toy\npreset_options: {colour: red}\n", "preset_options.colour", "unknown field"),
        ("preset: toy\npreset_options: [1]\n", "preset_options", "mapping"),
        ("preset: toy\npreset_hooks: driver\n", "preset_hooks", "set by the preset"),
        ("preset: toy\nllamacpp: {n_gen: 8}\n", "llamacpp", "preset llama.cpp"),
    ]:
        with pytest.raises(ConfigError) as info:
            ProjectConfig.from_yaml(text)
        assert (info.value.field, words in info.value.problem) == (field, True), text


def test_llamacpp_options_and_its_deprecated_alias() -> None:
    new = ProjectConfig.from_yaml("preset: llama.cpp\npreset_options: {n_gen: 8, model: m.gguf}\n")
    old = ProjectConfig.from_yaml("preset: llama.cpp\nllamacpp: {n_gen: 8, model: m.gguf}\n")
    assert new.to_dict() == old.to_dict() and "llamacpp" not in new.to_dict()
    assert new.preset_options == {
        "model": "m.gguf",
        "n_prompt": 64,
        "n_gen": 8,
        "kl_max": 0.01,
        "ctest": False,
        "quant": "q4_0",
        "bench_reps": 3,
    }
    with pytest.raises(ConfigError) as info:  # errors name the section as written
        ProjectConfig.from_yaml("preset: llama.cpp\nllamacpp: {n_prompt: 0}\n")
    assert (info.value.field, info.value.problem) == ("llamacpp.n_prompt", "must be >= 1, got 0")
    with pytest.raises(ConfigError, match="not both"):
        ProjectConfig.from_yaml("preset: llama.cpp\nllamacpp: {}\npreset_options: {}\n")


def test_generic_project_takes_no_options_and_no_llamacpp_section() -> None:
    cfg = ProjectConfig.from_yaml(GENERIC)
    assert (cfg.preset_options, cfg.preset_hooks) == ({}, None)
    with pytest.raises(ConfigError) as info:
        ProjectConfig.from_yaml(GENERIC + "llamacpp: {n_gen: 8}\n")
    assert info.value.field == "llamacpp"
    assert info.value.problem == (
        "is the options section of preset llama.cpp (deprecated name of preset_options:); "
        "this project's preset is generic"
    )
    with pytest.raises(ConfigError, match="this preset has no options"):
        ProjectConfig.from_yaml(GENERIC + "preset_options: {n_gen: 8}\n")
    with pytest.raises(ConfigError) as info:
        ProjectConfig.from_yaml("benchmark: {metrics: [{name: t_ns}]}\n")  # generic REQUIRED
    assert info.value.field == "benchmark.command"


def test_stored_project_of_an_older_bot_still_loads() -> None:
    """Artifacts written before the registry: every project had a `llamacpp` section, none preset_options."""
    stored = ProjectConfig.from_yaml(GENERIC).to_dict()
    del stored["preset_options"], stored["preset_hooks"]
    stored["llamacpp"] = {"model": None, "n_prompt": 64, "n_gen": 32, "kl_max": 0.01, "ctest": False}
    assert ProjectConfig.from_stored(stored).to_dict() == ProjectConfig.from_yaml(GENERIC).to_dict()
    llama = ProjectConfig.from_yaml("preset: llama.cpp\n").to_dict()
    llama["llamacpp"] = dict(llama.pop("preset_options"), n_gen=4)
    del llama["preset_hooks"]
    assert ProjectConfig.from_stored(llama).preset_options["n_gen"] == 4


def _driver_copy(tmp_path: Path, hooks: dict[str, str]) -> types.ModuleType:
    """sky/*.py copied like a batch's files dir, plus hook modules; that copy of driver.py, imported."""
    for src in (ROOT / "sky").glob("*.py"):
        shutil.copy2(src, tmp_path / src.name)
    for name, text in hooks.items():
        (tmp_path / f"{name}.py").write_text(text)
    spec = importlib.util.spec_from_file_location(f"driver_copy_{tmp_path.name}", tmp_path / "driver.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


TOY_HOOKS = """
def prepare(ctx):
    ctx.state["toy"] = True
def build(worktree, ctx):
    return True, "toy build"
def validate(worktree, baseline_worktree, ctx):
    return [{"name": "toy", "ok": True, "detail": ""}]
def bench(worktree, ctx):
    return {"ops": [1.0]}
"""


def test_driver_loads_the_hook_module_the_spec_names(toy: types.ModuleType, tmp_path: Path) -> None:
    driver = _driver_copy(
        tmp_path, {"toyhooks": TOY_HOOKS, "halfhooks": "def build(w, c):\n    return True, ''\n"}
    )
    earlier = sys.modules.pop("llamacpp", None)  # another test may have imported sky/llamacpp.py
    try:
        project = ProjectConfig.from_yaml("preset: toy\n").to_dict()
        hooks = driver.load_preset(project)
        assert Path(hooks.__file__).resolve() == (tmp_path / "toyhooks.py").resolve()
        assert hooks.build(tmp_path, None) == (True, "toy build")
        assert driver.load_preset(ProjectConfig.from_yaml(GENERIC).to_dict()) is driver.GenericPreset
        llama = driver.load_preset(ProjectConfig.from_yaml("preset: llama.cpp\n").to_dict())
        assert Path(llama.__file__).resolve() == (tmp_path / "llamacpp.py").resolve()
        for bad, words in [
            ("../etc/passwd", "not a hook module"),
            ("paired", "not a hook module"),
            ("missing", "not a hook module"),
            ("halfhooks", "lacks the hook(s) prepare, validate, bench"),
        ]:
            with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
                driver.load_preset({"preset_hooks": bad})
    finally:
        for name in ("toyhooks", "halfhooks", "llamacpp", driver.__name__):
            sys.modules.pop(name, None)
        if earlier is not None:
            sys.modules["llamacpp"] = earlier
        while str(tmp_path) in sys.path:
            sys.path.remove(str(tmp_path))
