"""Bot settings (environment / YAML) and per-repository project config (`.autoresearch.yml`).

Both are validated up front. A problem raises `ConfigError(field, problem)` where `field` is a dotted path,
so that the bot can tell the user exactly what to fix instead of showing a stack trace.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import presets
from .presets.schema import Option

PROJECT_CONFIG_FILE = ".autoresearch.yml"


class ConfigError(ValueError):
    """A configuration problem, pointing at one field."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


# ------------------------------------------------------------------------------------------------------------
# small validation helpers


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_keys(d: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        path = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(path, f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _get(d: dict, key: str, typ: type | tuple[type, ...], where: str, *, required: bool = True) -> Any:
    path = f"{where}.{key}" if where else key
    if key not in d or d[key] is None:
        if required:
            raise ConfigError(path, "is required")
        return None
    value = d[key]
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and typ in (int, float):
        raise ConfigError(path, f"must be a number, got {value!r}")
    if not isinstance(value, typ):
        names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise ConfigError(path, f"must be of type {names}, got {type(value).__name__} ({value!r:.60})")
    return value


def _str_list(d: dict, key: str, where: str, *, required: bool = True) -> list[str]:
    value = _get(d, key, list, where, required=required)
    if value is None:
        return []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{where}.{key}[{i}]", "must be a non-empty string")
    return list(value)


def _positive_int(d: dict, key: str, where: str, minimum: int = 1) -> int:
    value = _get(d, key, int, where)
    if value < minimum:
        raise ConfigError(f"{where}.{key}", f"must be >= {minimum}, got {value}")
    return value


def _fraction(d: dict, key: str, where: str, lo: float = 0.0, hi: float = 1.0) -> float:
    value = _get(d, key, float, where)
    if not lo <= value <= hi:
        raise ConfigError(f"{where}.{key}", f"must be between {lo} and {hi}, got {value}")
    return value


# ------------------------------------------------------------------------------------------------------------
# project config

ALWAYS_PROTECTED = [".github/**", PROJECT_CONFIG_FILE]
MAX_WAVES = 10
PUSH_TARGETS = ("base", "fork")

GENERIC_DEFAULTS: dict[str, Any] = {
    "preset": "generic",
    "build": {"commands": [], "strategy": "auto", "ccache": True, "shared_cache": False, "timeout": 1800},
    "validate": {"commands": [], "compare_output": None, "timeout": 900},
    "benchmark": {
        "command": None,
        "timeout": 600,
        "metrics": [],
        "target": None,
        "repetitions": 3,
        "rounds": 10,  # at most rounds x repetitions pairs per candidate (paired design, sky/paired.py)
        "min_pairs": 10,  # the first look; then every min_pairs pairs until the maximum
        "max_pairs": None,  # overrides rounds x repetitions
        "warmup": 1,
        "threads": 2,
    },
    "simulate": {"enabled": True, "command": None, "timeout": None},  # cachegrind tier (sky/simulate.py)
    "architectures": ["x86", "arm"],
    "paths": {"allowed": ["**"], "protected": [], "hot": ["**"]},
    # max_waves: measure -> learn -> try again, at most this many waves (bot/stages.py); profile: a simulated
    # profile of the baseline (one baseline-only batch) is research's first input
    "research": {"arxiv": True, "max_forks": 30, "related": [], "max_waves": 3, "profile": True},
    "decision": {
        "alpha": 0.05,
        "min_effect": 0.02,
        "slowdown_tolerance": 0.02,
        "max_noise_cv": 0.10,
        "bootstrap": 10000,
        "interference_sigmas": 3.0,  # screen: samples worse than median + 3 robust sigmas; 0 = off
        "primary": "both",  # both | simulated | wall: which tier decides (bot/experiments/stats/policy.py)
    },
    # the chosen preset's options, validated by its OPTIONS schema (bot/presets/); preset_hooks: the driver's
    # hook module for the preset (set from the registry, never by a project)
    "preset_options": {},
    "preset_hooks": None,
    "agent": {"max_candidates": 3, "max_turns": 30, "max_minutes": 20},
    "budget": {"usd": 20.0, "llm_tokens": 2_000_000},
    # fan-out (bot/experiments/shards.py): a wave's candidates split over this many VMs per arch, each with
    # its own baseline; None: chosen from the budget and the candidate count; 1: one VM per arch
    "parallel": {"max_vms_per_arch": None},
    # where candidate and stack branches are pushed: "base" (the repository itself) or "fork" (a fork owned
    # by the bot's account, so the draft PR comes from a fork and the base repository's CI never runs
    # candidate code with its secrets); fork_owner: an organization to fork into instead of the bot's account
    "publish": {"push_to": "base", "fork_owner": None},
}


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str = ""
    higher_is_better: bool = True


@dataclass(frozen=True)
class ProjectConfig:
    """The validated per-repository config. `raw` holds the full merged dict (ARCHITECTURE.md shape)."""

    raw: dict[str, Any] = field(repr=False)

    # convenient views --------------------------------------------------------------------------------------
    @property
    def preset(self) -> str:
        return self.raw["preset"]

    @property
    def preset_options(self) -> dict[str, Any]:
        """The preset's validated options (its OPTIONS' defaults where the project sets none)."""
        return copy.deepcopy(self.raw["preset_options"])

    @property
    def preset_hooks(self) -> str | None:
        """The driver's hook module for the preset (sky/<name>.py), None for the driver's built-in hooks."""
        return self.raw["preset_hooks"]

    @property
    def metrics(self) -> list[Metric]:
        return [Metric(**m) for m in self.raw["benchmark"]["metrics"]]

    @property
    def target(self) -> str:
        return self.raw["benchmark"]["target"]

    @property
    def architectures(self) -> list[str]:
        return list(self.raw["architectures"])

    @property
    def allowed_paths(self) -> list[str]:
        return list(self.raw["paths"]["allowed"])

    @property
    def protected_paths(self) -> list[str]:
        return list(self.raw["paths"]["protected"])

    @property
    def hot_paths(self) -> list[str]:
        return list(self.raw["paths"]["hot"])

    @property
    def build_commands(self) -> list[str]:
        return list(self.raw["build"]["commands"])

    @property
    def rounds(self) -> int:
        return int(self.raw["benchmark"]["rounds"])

    @property
    def repetitions(self) -> int:
        return int(self.raw["benchmark"]["repetitions"])

    @property
    def warmup(self) -> int:
        return int(self.raw["benchmark"]["warmup"])

    @property
    def simulate_enabled(self) -> bool:
        return bool(self.raw["simulate"]["enabled"])

    @property
    def primary(self) -> str:
        """decision.primary: which tier decides (both | simulated | wall)."""
        return str(self.raw["decision"]["primary"])

    @property
    def profile_enabled(self) -> bool:
        """research.profile: profile the baseline before research."""
        return bool(self.raw["research"]["profile"])

    @property
    def max_waves(self) -> int:
        return int(self.raw["research"]["max_waves"])

    @property
    def max_candidates(self) -> int:
        """agent.max_candidates: agent candidates per wave (0: none)."""
        return int(self.raw["agent"]["max_candidates"])

    @property
    def agent_max_turns(self) -> int:
        return int(self.raw["agent"]["max_turns"])

    @property
    def agent_max_minutes(self) -> int:
        return int(self.raw["agent"]["max_minutes"])

    @property
    def push_to(self) -> str:
        """publish.push_to: "base" (branches in the repository) or "fork" (in the bot's fork of it)."""
        return str(self.raw["publish"]["push_to"])

    @property
    def fork_owner(self) -> str | None:
        """publish.fork_owner: the organization the bot forks into; None: the bot's own account."""
        return self.raw["publish"]["fork_owner"]

    @property
    def budget_usd(self) -> float:
        return float(self.raw["budget"]["usd"])

    @property
    def max_vms_per_arch(self) -> int | None:
        """parallel.max_vms_per_arch: VMs per arch one wave may fan out over (None: from the budget)."""
        value = self.raw["parallel"]["max_vms_per_arch"]
        return None if value is None else int(value)

    @property
    def budget_tokens(self) -> int:
        return int(self.raw["budget"]["llm_tokens"])

    def section(self, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.raw[name])

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw)

    # construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, text: str | None, known_architectures: list[str] | None = None) -> ProjectConfig:
        if text is None or not text.strip():
            raise ConfigError(PROJECT_CONFIG_FILE, "file is missing or empty")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise ConfigError(PROJECT_CONFIG_FILE, f"{problem}{where}") from None
        if not isinstance(data, dict):
            raise ConfigError(PROJECT_CONFIG_FILE, "must be a YAML mapping at the top level")
        return cls.from_dict(data, known_architectures)

    @classmethod
    def from_dict(cls, data: dict[str, Any], known_architectures: list[str] | None = None) -> ProjectConfig:
        if not isinstance(data, dict):
            raise ConfigError("", "project config must be a mapping")
        legacy = presets.legacy_sections()
        _check_keys(data, set(GENERIC_DEFAULTS) | set(legacy), "")
        name = data.get("preset", "generic")
        if not isinstance(name, str) or name not in presets.REGISTRY:
            raise ConfigError("preset", f"unknown preset {name!r} (known: {', '.join(presets.REGISTRY)})")
        preset = presets.get(name)
        data = dict(data)
        options_at = "preset_options"
        for section, owner in legacy.items():
            if section not in data:
                continue
            if owner != name:
                raise ConfigError(
                    section,
                    f"is the options section of preset {owner} (deprecated name of "
                    f"preset_options:); this project's preset is {name}",
                )
            if "preset_options" in data:
                raise ConfigError(
                    section, "is the deprecated name of preset_options: set one of them, not both"
                )
            options_at = section
            data["preset_options"] = data.pop(section)
        if data.get("preset_hooks", preset.HOOKS) != preset.HOOKS:
            raise ConfigError(
                "preset_hooks",
                f"is set by the preset ({preset.HOOKS!r} for {name}), not by the project; remove it",
            )
        options = data.pop("preset_options", None)
        merged = _merge(_merge(GENERIC_DEFAULTS, preset.DEFAULTS), data)
        merged["preset"] = name
        merged["preset_hooks"] = preset.HOOKS
        merged["preset_options"] = validate_options(preset.OPTIONS, options, options_at)
        _validate_project(merged, known_architectures, preset.REQUIRED)
        protected = list(merged["paths"]["protected"])
        for p in ALWAYS_PROTECTED:
            if p not in protected:
                protected.append(p)
        merged["paths"]["protected"] = protected
        return cls(raw=merged)

    @classmethod
    def from_stored(cls, data: dict[str, Any], known_architectures: list[str] | None = None) -> ProjectConfig:
        """A stored `project` artifact; one written before the preset registry (no preset_options, every
        project carrying a `llamacpp` section) reads as it meant: that section is the llama.cpp preset's
        options and nothing for any other preset."""
        if isinstance(data, dict) and "preset_options" not in data:
            data = dict(data)
            name = data.get("preset", "generic")
            for section, owner in presets.legacy_sections().items():
                value = data.pop(section, None)
                if owner == name and value is not None:
                    data["preset_options"] = value
        return cls.from_dict(data, known_architectures)


def validate_options(schema: dict[str, Option], values: Any, where: str) -> dict[str, Any]:
    """A preset's options section checked against its schema ({key: Option}), with the defaults filled in.
    `where` is the section's name as the project wrote it (preset_options, or a deprecated alias)."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(where, "must be a mapping")
    if values and not schema:
        raise ConfigError(f"{where}.{min(values)}", "unknown field (this preset has no options)")
    _check_keys(values, set(schema), where)
    out: dict[str, Any] = {}
    for key, opt in schema.items():
        box = {key: copy.deepcopy(values[key]) if key in values else copy.deepcopy(opt.default)}
        value = _get(box, key, opt.kind, where, required=not opt.nullable)
        if value is not None and opt.kind in (int, float):
            lo, hi = opt.minimum, opt.maximum
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                problem = (
                    f"must be between {lo} and {hi}"
                    if lo is not None and hi is not None
                    else f"must be >= {lo}"
                    if lo is not None
                    else f"must be <= {hi}"
                )
                raise ConfigError(f"{where}.{key}", f"{problem}, got {value}")
        out[key] = value
    return out


def _validate_project(
    d: dict[str, Any], known_architectures: list[str] | None, required: tuple[str, ...] = ()
) -> None:
    for section in (
        "build",
        "validate",
        "benchmark",
        "simulate",
        "paths",
        "research",
        "decision",
        "agent",
        "budget",
        "publish",
        "parallel",
    ):
        if not isinstance(d[section], dict):
            raise ConfigError(section, "must be a mapping")
        _check_keys(d[section], set(GENERIC_DEFAULTS[section]), section)

    _str_list(d["build"], "commands", "build")
    strategy = _get(d["build"], "strategy", str, "build")
    if strategy not in ("auto", "incremental", "ccache", "clean"):
        raise ConfigError("build.strategy", f"must be auto, incremental, ccache or clean, got {strategy!r}")
    _get(d["build"], "ccache", bool, "build")
    _get(d["build"], "shared_cache", bool, "build")
    for section in ("build", "validate", "benchmark"):
        _positive_int(d[section], "timeout", section)
    _str_list(d["validate"], "commands", "validate")
    _get(d["validate"], "compare_output", str, "validate", required=False)

    for dotted in required:  # what the preset needs the project to set (generic: benchmark.command)
        where, _, key = dotted.rpartition(".")
        container = d
        for part in where.split(".") if where else []:
            container = container[part]
        _get(container, key, str, where)

    b = d["benchmark"]
    metrics = _get(b, "metrics", list, "benchmark")
    if not metrics:
        raise ConfigError(
            "benchmark.metrics", "needs at least one metric, e.g. {name: time_ms, higher_is_better: false}"
        )
    names = []
    for i, m in enumerate(metrics):
        where = f"benchmark.metrics[{i}]"
        if not isinstance(m, dict):
            raise ConfigError(where, "must be a mapping with name, unit, higher_is_better")
        _check_keys(m, {"name", "unit", "higher_is_better"}, where)
        name = _get(m, "name", str, where)
        if not name.replace("_", "").isalnum():
            raise ConfigError(f"{where}.name", f"must be letters, digits and underscores, got {name!r}")
        _get(m, "unit", str, where, required=False)
        hib = _get(m, "higher_is_better", bool, where, required=False)
        m.setdefault("unit", "")
        m["higher_is_better"] = True if hib is None else hib
        names.append(name)
    if len(set(names)) != len(names):
        raise ConfigError("benchmark.metrics", "metric names must be unique")
    target = b.get("target") or names[0]
    if target not in names:
        raise ConfigError("benchmark.target", f"{target!r} is not one of the metrics ({', '.join(names)})")
    b["target"] = target
    _positive_int(b, "repetitions", "benchmark")
    _positive_int(b, "rounds", "benchmark", minimum=2)
    _positive_int(b, "warmup", "benchmark", minimum=0)
    _positive_int(b, "threads", "benchmark")
    _positive_int(b, "min_pairs", "benchmark", minimum=2)
    if (
        b.get("max_pairs") is not None
        and _positive_int(b, "max_pairs", "benchmark", minimum=2) < b["min_pairs"]
    ):
        raise ConfigError("benchmark.max_pairs", f"must be >= benchmark.min_pairs ({b['min_pairs']})")

    sim = d["simulate"]
    _get(sim, "enabled", bool, "simulate")
    _get(sim, "command", str, "simulate", required=False)
    if sim.get("timeout") is not None:
        _positive_int(sim, "timeout", "simulate")

    archs = _str_list(d, "architectures", "")
    if not archs:
        raise ConfigError("architectures", "needs at least one architecture")
    if known_architectures is not None:
        for a in archs:
            if a not in known_architectures:
                raise ConfigError(
                    "architectures",
                    f"{a!r} is not configured in the bot (known: {', '.join(known_architectures)})",
                )

    for key in ("allowed", "protected", "hot"):
        _str_list(d["paths"], key, "paths")
    for pattern in d["paths"]["allowed"]:
        if pattern.startswith("/") or ".." in pattern.split("/"):
            raise ConfigError(
                "paths.allowed", f"{pattern!r} must be relative to the repository root, without '..'"
            )

    r = d["research"]
    _get(r, "arxiv", bool, "research")
    _positive_int(r, "max_forks", "research", minimum=0)
    for i, rel in enumerate(_str_list(r, "related", "research")):
        if rel.count("/") != 1:
            raise ConfigError(f"research.related[{i}]", f"must look like owner/repo, got {rel!r}")
    if _positive_int(r, "max_waves", "research") > MAX_WAVES:
        raise ConfigError("research.max_waves", f"must be <= {MAX_WAVES}, got {r['max_waves']}")
    _get(r, "profile", bool, "research")

    dec = d["decision"]
    _fraction(dec, "alpha", "decision", 1e-6, 0.5)
    _fraction(dec, "min_effect", "decision", 0.0, 1.0)
    _fraction(dec, "slowdown_tolerance", "decision", 0.0, 1.0)
    _fraction(dec, "max_noise_cv", "decision", 0.0, 10.0)
    _positive_int(dec, "bootstrap", "decision", minimum=100)
    _fraction(dec, "interference_sigmas", "decision", 0.0, 100.0)
    if _get(dec, "primary", str, "decision") not in ("both", "simulated", "wall"):
        raise ConfigError("decision.primary", f"must be both, simulated or wall, got {dec['primary']!r}")

    if d["parallel"]["max_vms_per_arch"] is not None:
        _positive_int(d["parallel"], "max_vms_per_arch", "parallel")

    ag = d["agent"]
    _positive_int(ag, "max_candidates", "agent", minimum=0)
    _positive_int(ag, "max_turns", "agent")
    _positive_int(ag, "max_minutes", "agent")

    pub = d["publish"]
    if _get(pub, "push_to", str, "publish") not in PUSH_TARGETS:
        raise ConfigError("publish.push_to", f"must be base or fork, got {pub['push_to']!r}")
    owner = _get(pub, "fork_owner", str, "publish", required=False)
    if owner is not None and not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})", owner):
        raise ConfigError(
            "publish.fork_owner", f"must be a GitHub account or organization name, got {owner!r}"
        )

    bud = d["budget"]
    if _get(bud, "usd", float, "budget") < 0:
        raise ConfigError("budget.usd", "must be >= 0")
    _positive_int(bud, "llm_tokens", "budget", minimum=0)


# ------------------------------------------------------------------------------------------------------------
# bot settings

DEFAULT_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "x86": {
        "cloud": "aws",
        "instance_type": "c7i.xlarge",  # Intel Xeon (Sapphire Rapids), 4 vCPU
        "region": "us-east-1",
        "use_spot": False,
        "disk_size": 64,
        "price_per_hour": 0.1785,
    },
    "arm": {
        "cloud": "aws",
        "instance_type": "c7g.xlarge",  # Graviton3, 4 vCPU
        "region": "us-east-1",
        "use_spot": False,
        "disk_size": 64,
        "price_per_hour": 0.145,
    },
}


@dataclass
class Settings:
    """Bot-wide settings. Secrets come from the environment or *_file paths, never from repositories."""

    webhook_secret: str = ""
    github_base_url: str = "https://api.github.com"
    github_token: str | None = None
    github_app_id: int | None = None
    github_private_key: str | None = None
    github_installation_id: int | None = None
    trigger_label: str = "autoresearch"
    command_prefix: str = "/autoresearch"
    database: str = "var/autoresearch.db"
    data_dir: str = "var"
    max_body_bytes: int = 5 * 1024 * 1024
    executor: str = "local"  # a name in bot/experiments/registry.py: local | skypilot
    local_trust: str = "none"  # none: candidates run only in the jail (bubblewrap); all: UNSAFE, no jail
    local_jail_paths: list[str] = field(default_factory=list)  # extra read-only dirs in the jail (/opt/...)
    # shared compiler cache (build.shared_cache projects); default <data_dir>/executor/local/_shared-ccache
    local_build_cache: str | None = None
    architectures: dict[str, dict[str, Any]] = field(
        default_factory=lambda: copy.deepcopy(DEFAULT_ARCHITECTURES)
    )
    budget_usd: float = 20.0
    budget_llm_tokens: int = 2_000_000
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-sonnet-4-6"
    arxiv_enabled: bool = True
    arxiv_base_url: str | None = None
    worker_poll_seconds: float = 1.0
    max_concurrent_runs: int = 1  # run threads of one worker: each drives its own leased run
    experiment_deadline_minutes: float = 360.0  # a batch's wall-clock cap (the budget may cut it shorter)
    keep_warm_minutes: float = 30.0  # SkyPilot: a released cluster waits this long for the repo's next run
    public_url: str = ""  # where the status page is reachable; used for links
    status_token: str | None = None  # for the status pages and /api (unset: direct loopback clients only)

    ENV_PREFIX = "AUTORESEARCH_"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def db_path(self) -> Path:
        db = self.database
        if db.startswith("sqlite:///"):
            db = db[len("sqlite:///") :]
        return Path(db)

    def validate(self) -> Settings:
        from .experiments import registry  # noqa: PLC0415  (the executors import this module)

        if self.executor not in registry.REGISTRY:
            raise ConfigError("executor", f"must be {registry.names_text()}, got {self.executor!r}")
        if self.local_trust not in ("none", "all"):
            raise ConfigError(
                "local_trust",
                f"must be 'none' (candidates run in the jail) or 'all' (UNSAFE: "
                f"no isolation), got {self.local_trust!r}",
            )
        for path in self.local_jail_paths:
            if not str(path).startswith("/"):
                raise ConfigError("local_jail_paths", f"must be absolute paths, got {path!r}")
        if self.local_build_cache is not None and not str(self.local_build_cache).startswith("/"):
            raise ConfigError(
                "local_build_cache", f"must be an absolute path, got {self.local_build_cache!r}"
            )
        if not self.trigger_label.strip():
            raise ConfigError("trigger_label", "must not be empty")
        if self.github_app_id is not None and not self.github_private_key:
            raise ConfigError("github_private_key", "is required when github_app_id is set")
        if isinstance(self.max_concurrent_runs, bool) or not isinstance(self.max_concurrent_runs, int):
            raise ConfigError(
                "max_concurrent_runs", f"must be a whole number, got {self.max_concurrent_runs!r}"
            )
        if self.max_concurrent_runs < 1:
            raise ConfigError("max_concurrent_runs", f"must be at least 1, got {self.max_concurrent_runs}")
        if not self.experiment_deadline_minutes > 0:
            raise ConfigError(
                "experiment_deadline_minutes", f"must be above 0, got {self.experiment_deadline_minutes!r}"
            )
        if isinstance(self.keep_warm_minutes, bool) or not (
            isinstance(self.keep_warm_minutes, (int, float)) and self.keep_warm_minutes >= 0
        ):
            raise ConfigError("keep_warm_minutes", f"must be a number >= 0, got {self.keep_warm_minutes!r}")
        if self.max_body_bytes < 1024:
            raise ConfigError("max_body_bytes", "must be at least 1024")
        for name, arch in self.architectures.items():
            if not isinstance(arch, dict):
                raise ConfigError(f"architectures.{name}", "must be a mapping")
            # SkyPilot resource syntax, passed through to the task (validated by SkyPilot's schema when
            # the task is rendered); only what SkyPilot itself would reject late is checked here
            if arch.get("infra") and any(arch.get(k) for k in ("cloud", "region", "zone")):
                raise ConfigError(
                    f"architectures.{name}.infra",
                    "set either infra (cloud/region/zone) or cloud/region/zone, not both",
                )
            price = arch.get("price_per_hour")
            if price is not None and (
                isinstance(price, bool) or not isinstance(price, (int, float)) or price < 0
            ):
                raise ConfigError(
                    f"architectures.{name}.price_per_hour", f"must be a number >= 0, got {price!r}"
                )
        check = registry.get(self.executor).validate
        if check is not None:
            check(self)
        return self

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> Settings:
        """YAML file (optional) then AUTORESEARCH_* environment variables (env wins)."""
        env = dict(os.environ if env is None else env)
        data: dict[str, Any] = {}
        path = path or env.get("AUTORESEARCH_CONFIG")
        if path:
            try:
                loaded = yaml.safe_load(Path(path).read_text()) or {}
            except FileNotFoundError:
                raise ConfigError("config", f"settings file {path} does not exist") from None
            except yaml.YAMLError as exc:
                raise ConfigError("config", f"settings file {path} is not valid YAML: {exc}") from None
            if not isinstance(loaded, dict):
                raise ConfigError("config", f"settings file {path} must be a mapping")
            data.update(loaded)
        fields = {f.name: f for f in cls.__dataclass_fields__.values()}
        for key in list(data):
            if key not in fields:
                raise ConfigError(key, "unknown setting")
        for name in fields:
            env_name = cls.ENV_PREFIX + name.upper()
            if env_name in env:
                data[name] = env[env_name]
            file_env = env_name + "_FILE"
            if file_env in env:
                try:
                    data[name] = Path(env[file_env]).read_text().strip()
                except OSError as exc:
                    raise ConfigError(
                        name, f"cannot read {file_env}={env[file_env]}: {exc.strerror}"
                    ) from None
        # well-known names used by GitHub tooling
        if "github_token" not in data and env.get("GITHUB_TOKEN"):
            data["github_token"] = env["GITHUB_TOKEN"]
        if "anthropic_api_key" not in data and env.get("ANTHROPIC_API_KEY"):
            data["anthropic_api_key"] = env["ANTHROPIC_API_KEY"]
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            kwargs[name] = _coerce(name, value, fields[name].type)
        return cls(**kwargs).validate()


def _coerce(name: str, value: Any, typ: Any) -> Any:
    typ = str(typ)
    try:
        if value is None:
            return None
        if typ.startswith("list"):
            if isinstance(value, str):  # from the environment: PATH-like, colon-separated
                value = [p for p in value.split(os.pathsep) if p]
            if not isinstance(value, list):
                raise ValueError("expected a list")
            return [str(v) for v in value]
        if "dict" in typ:
            if isinstance(value, str):
                value = yaml.safe_load(value)
            if not isinstance(value, dict):
                raise ValueError("expected a mapping")
            return value
        if typ.startswith("bool"):
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"expected true/false, got {value!r}")
        if typ.startswith("int"):
            return int(value)
        if typ.startswith("float"):
            return float(value)
        return str(value)
    except (TypeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(name, f"invalid value: {exc}") from None
