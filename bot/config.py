"""Bot settings (environment / YAML) and per-repository project config (`.autoresearch.yml`).

Both are validated up front. A problem raises `ConfigError(field, problem)` where `field` is a dotted path,
so that the bot can tell the user exactly what to fix instead of showing a stack trace.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import configyaml, presets
from .configmodel import (
    ALWAYS_PROTECTED,
    GENERIC_DEFAULTS,
    MAX_WAVES,
    PROJECT_CONFIG_FILE,
    PUSH_TARGETS,
    ConfigError,
    build_project,
)
from .configmodel import validate_options as _validate_options

# the project config's model, defaults and error type live in bot/configmodel.py; these names stay here
__all__ = [
    "ALWAYS_PROTECTED",
    "GENERIC_DEFAULTS",
    "MAX_WAVES",
    "PROJECT_CONFIG_FILE",
    "PUSH_TARGETS",
    "ConfigError",
    "Metric",
    "ProjectConfig",
    "Settings",
    "validate_options",
]


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
        value = (self.raw.get("parallel") or {}).get("max_vms_per_arch")
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
        """The config file's text read as the bot reads it: size, depth and node count capped
        (bot/configyaml.py); every problem in one ConfigError, each with the line it points at."""
        if text is None or not text.strip():
            raise ConfigError(PROJECT_CONFIG_FILE, "file is missing or empty")
        try:
            data, root = configyaml.load(text)
        except configyaml.YamlProblem as exc:
            error = ConfigError(PROJECT_CONFIG_FILE, str(exc))
            error.line = exc.line
            raise error from None
        if not isinstance(data, dict):
            raise ConfigError(PROJECT_CONFIG_FILE, "must be a YAML mapping at the top level")
        try:
            return cls.from_dict(data, known_architectures)
        except ConfigError as exc:
            for e in exc.errors:
                e.line = configyaml.line_of(root, e.field)
            exc.line = exc.errors[0].line
            raise

    @classmethod
    def from_dict(cls, data: dict[str, Any], known_architectures: list[str] | None = None) -> ProjectConfig:
        """`data` (a parsed config, or `to_dict()`'s output) validated by the model in bot/configmodel.py,
        defaults filled: the preset's over the generic ones."""
        return cls(raw=build_project(data, known_architectures))

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


def validate_options(schema: dict[str, Any], values: Any, where: str) -> dict[str, Any]:
    """A preset's options section ({key: schema.Option}) checked, with the defaults filled in; ConfigError
    with every problem (bot/configmodel.py validates it with a model made from the schema)."""
    from types import SimpleNamespace

    out, errors = _validate_options(SimpleNamespace(NAME="options", OPTIONS=schema), values, where)
    if errors:
        raise ConfigError.of(errors)
    return out


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


STATUS_PAGES = ("token", "loopback", "off")


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
    # check the project's other archs' correctness under emulation (cross toolchain + qemu-user, in the jail;
    # bot/experiments/emulation.py): off by default, so a run's rows do not depend on what the host has
    local_emulate: bool = False
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
    status_token: str | None = None  # for the status pages and /api
    # token: the pages need status_token (none set: the pages are refused); loopback: also tokenless for a
    # direct loopback client (opt-in, e.g. the demo; unsafe behind a proxy on the same host); off: 404
    status_pages: str = "token"
    # where load() found each setting (AUTORESEARCH_X, AUTORESEARCH_X_FILE=<path>, settings file <path>),
    # for doctor's messages; not a setting itself
    origins: dict[str, str] = field(
        default_factory=dict, repr=False, compare=False, metadata={"internal": True}
    )

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
        if self.status_pages not in STATUS_PAGES:
            raise ConfigError(
                "status_pages",
                f"must be one of {', '.join(STATUS_PAGES)} (token: the status_token is required; "
                "loopback: also tokenless for direct loopback clients; off: no status pages), "
                f"got {self.status_pages!r}",
            )
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
                loaded = configyaml.load(Path(path).read_text())[0] or {}
            except FileNotFoundError:
                raise ConfigError("config", f"settings file {path} does not exist") from None
            except configyaml.YamlProblem as exc:
                raise ConfigError("config", f"settings file {path} is not valid YAML: {exc}") from None
            if not isinstance(loaded, dict):
                raise ConfigError("config", f"settings file {path} must be a mapping")
            data.update(loaded)
        origins = {key: f"settings file {path}" for key in data}
        fields = {f.name: f for f in cls.__dataclass_fields__.values() if not f.metadata.get("internal")}
        for key in list(data):
            if key not in fields:
                raise ConfigError(key, "unknown setting")
        for name in fields:
            env_name = cls.ENV_PREFIX + name.upper()
            if env_name in env:
                data[name] = env[env_name]
                origins[name] = env_name
            file_env = env_name + "_FILE"
            if file_env in env:
                try:
                    data[name] = Path(env[file_env]).read_text().strip()
                except OSError as exc:
                    raise ConfigError(
                        name, f"cannot read {file_env}={env[file_env]}: {exc.strerror}"
                    ) from None
                origins[name] = f"{file_env}={env[file_env]}"
        # well-known names used by GitHub tooling
        for name, env_name in (("github_token", "GITHUB_TOKEN"), ("anthropic_api_key", "ANTHROPIC_API_KEY")):
            if name not in data and env.get(env_name):
                data[name], origins[name] = env[env_name], env_name
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            kwargs[name] = _coerce(name, value, fields[name].type)
        return cls(**kwargs, origins=origins).validate()


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
