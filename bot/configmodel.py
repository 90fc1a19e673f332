"""The project config's typed model (`.autoresearch.yml`): pydantic v2 models give each field its type, bounds
and default, collect every error of a config at once, and generate the JSON Schema shipped as
docs/autoresearch.schema.json (editors, SchemaStore).

`build_project(data)` is the whole reading: the preset's defaults merged over the generic ones, the project's
values over both, each section validated by its model, the preset's `preset_options:` by a model made from its
OPTIONS, then the checks that span fields (a target among the metrics, architectures the bot knows). Every
problem is a `ConfigError(field, problem)` with a dotted field path; several are raised as one whose `errors`
lists them all, in the order of the model's fields.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model
from pydantic.fields import FieldInfo

from . import presets

PROJECT_CONFIG_FILE = ".autoresearch.yml"
ALWAYS_PROTECTED = [".github/**", PROJECT_CONFIG_FILE]
MAX_WAVES = 10
PUSH_TARGETS = ("base", "fork")
MAX_PROBLEM = 200  # characters of one error message (a value is never echoed whole)
MAX_FIELD = 120  # characters of a field path in a message
MAX_LIST = 200  # items of any list in the config


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show(value: Any) -> str:
    """A value as an error message quotes it: its repr, at most 40 characters."""
    return clip(repr(value), 40)


class ConfigError(ValueError):
    """A configuration problem, pointing at one field (`field`: a dotted path, `problem`: what is wrong).
    One raised for several problems carries them all in `errors` (itself first); `line` is the line of the
    YAML file it points at, where the error came from a file."""

    def __init__(self, field: str, problem: str, *, errors: list[ConfigError] | None = None):
        self.field = clip(str(field), MAX_FIELD)
        self.problem = clip(str(problem), MAX_PROBLEM)
        self.line: int | None = None
        self.errors: list[ConfigError] = [self, *errors[1:]] if errors else [self]
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__((f"{self.field}: {self.problem}" if self.field else self.problem) + more)

    @classmethod
    def of(cls, errors: list[ConfigError]) -> ConfigError:
        """One error standing for `errors` (at least one)."""
        first = errors[0]
        out = cls(first.field, first.problem, errors=errors)
        out.line = first.line
        return out

    def lines(self, limit: int = 20) -> list[str]:
        """One line per problem (`line N, field: problem`), at most `limit`, then how many more."""
        out = []
        for e in self.errors[:limit]:
            where = f"line {e.line}: " if e.line else ""
            out.append(f"{where}{e.field}: {e.problem}" if e.field else f"{where}{e.problem}")
        if len(self.errors) > limit:
            out.append(f"... and {len(self.errors) - limit} more")
        return out


# ------------------------------------------------------------------------------------------------------------
# the model

Text = Annotated[str, StringConstraints(min_length=1, max_length=4096)]  # a command
OptText = Annotated[str, StringConstraints(max_length=4096)]  # an optional command ("" as good as none)
Glob = Annotated[str, StringConstraints(min_length=1, max_length=1024)]  # a path pattern
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")]
Arch = Annotated[str, StringConstraints(min_length=1, max_length=64)]
RepoName = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^/\s]+/[^/\s]+$")]
Account = Annotated[str, StringConstraints(max_length=39, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$")]

PATTERN_PROBLEMS = {  # what a pattern means, for the error message
    r"^[A-Za-z0-9_]+$": "must be letters, digits and underscores",
    r"^[^/\s]+/[^/\s]+$": "must look like owner/repo",
    r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$": "must be a GitHub account or organization name",
}


def _list(item: Any, **kw: Any) -> Any:
    return Annotated[list[item], Field(max_length=MAX_LIST, **kw)]


class Section(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class Build(Section):
    commands: _list(Text) = Field(
        default_factory=list, description="run in the worktree root; each must exit 0"
    )
    strategy: Literal["auto", "incremental", "ccache", "clean"] = "auto"
    ccache: bool = True
    shared_cache: bool = Field(
        False, description="local executor: a compiler cache filled from baselines only"
    )
    timeout: int = Field(1800, ge=1, description="seconds")


class Validate(Section):
    commands: _list(Text) = Field(default_factory=list, description="each must exit 0")
    compare_output: OptText | None = Field(
        None, description="a command whose stdout must equal the baseline's"
    )
    timeout: int = Field(900, ge=1, description="seconds")


class Metric(Section):
    name: Name
    unit: Annotated[str, StringConstraints(max_length=32)] = ""
    higher_is_better: bool = True


class Benchmark(Section):
    command: Text | None = Field(
        None, description="prints `METRIC name=value` lines; one invocation = one sample"
    )
    timeout: int = Field(600, ge=1, description="seconds")
    metrics: Annotated[list[Metric], Field(max_length=50)] = Field(default_factory=list)
    target: Name | None = Field(None, description="the metric a winner must improve (default: the first)")
    repetitions: int = Field(3, ge=1, description="invocations per variant per round")
    rounds: int = Field(10, ge=2, description="rounds x repetitions = the most wall-time pairs per candidate")
    min_pairs: int = Field(10, ge=2, description="the first look; then every min_pairs pairs")
    max_pairs: int | None = Field(None, ge=2, description="overrides rounds x repetitions")
    warmup: int = Field(1, ge=0, description="invocations discarded per variant before the pairs")
    threads: int = Field(2, ge=1)


class Simulate(Section):
    enabled: bool = Field(True, description="the simulated-cost tier (cachegrind)")
    command: OptText | None = Field(None, description="default: benchmark.command")
    timeout: int | None = Field(None, ge=1, description="default: 100 x the slowest wall-time invocation")


class Paths(Section):
    allowed: _list(Glob) = Field(
        default_factory=lambda: ["**"], description="what the coding agent may write"
    )
    protected: _list(Glob) = Field(
        default_factory=list, description="never writable (plus .github/** and .autoresearch.yml, always)"
    )
    hot: _list(Glob) = Field(default_factory=lambda: ["**"], description="what research looks at")


class Research(Section):
    arxiv: bool = True
    max_forks: int = Field(30, ge=0)
    related: _list(RepoName) = Field(default_factory=list, description="owner/repo of related projects")
    max_waves: int = Field(
        3, ge=1, le=MAX_WAVES, description="measure -> learn -> try again, at most this often"
    )
    profile: bool = Field(True, description="profile the baseline before research")


class Decision(Section):
    alpha: float = Field(0.05, ge=1e-6, le=0.5)
    min_effect: float = Field(0.02, ge=0.0, le=1.0, description="speedups under this are 'no change'")
    slowdown_tolerance: float = Field(0.02, ge=0.0, le=1.0)
    max_noise_cv: float = Field(0.10, ge=0.0, le=10.0)
    bootstrap: int = Field(10000, ge=100)
    interference_sigmas: float = Field(3.0, ge=0.0, le=100.0, description="0 = off")
    primary: Literal["both", "simulated", "wall"] = Field("both", description="which tier decides")


class Agent(Section):
    max_candidates: int = Field(3, ge=0, description="agent candidates per wave")
    max_turns: int = Field(30, ge=1)
    max_minutes: int = Field(20, ge=1)


class Budget(Section):
    usd: float = Field(20.0, ge=0.0)
    llm_tokens: int = Field(2_000_000, ge=0)


class Publish(Section):
    push_to: Literal["base", "fork"] = Field(
        "base", description="base: branches in the repository; fork: in the bot's fork of it"
    )
    fork_owner: Account | None = Field(
        None, description="the organization to fork into (null: the bot's account)"
    )


class Parallel(Section):
    max_vms_per_arch: int | None = Field(
        None,
        ge=1,
        le=64,
        description="fan-out: VMs per arch a wave's candidates are split over (null: from the budget)",
    )


class Project(Section):
    """`.autoresearch.yml`. Defaults are the generic preset's; another preset fills its own first."""

    preset: str = Field("generic", description="bot/presets/: generic or llama.cpp")
    build: Build = Field(default_factory=Build)
    validate_: Validate = Field(default_factory=Validate, alias="validate")
    benchmark: Benchmark = Field(default_factory=Benchmark)
    simulate: Simulate = Field(default_factory=Simulate)
    architectures: _list(Arch, min_length=1) = Field(
        default_factory=lambda: ["x86", "arm"], description="keys of the bot's architectures setting"
    )
    paths: Paths = Field(default_factory=Paths)
    research: Research = Field(default_factory=Research)
    decision: Decision = Field(default_factory=Decision)
    preset_options: dict[str, Any] = Field(
        default_factory=dict, description="the preset's options, checked against its OPTIONS"
    )
    preset_hooks: str | None = None  # set from the preset registry, never by a project
    agent: Agent = Field(default_factory=Agent)
    budget: Budget = Field(default_factory=Budget)
    publish: Publish = Field(default_factory=Publish)
    parallel: Parallel = Field(default_factory=Parallel)


GENERIC_DEFAULTS: dict[str, Any] = Project().model_dump(by_alias=True)


def option_model(preset: Any) -> type[BaseModel]:
    """The model of `preset`'s `preset_options:` section, made from its OPTIONS ({key: schema.Option})."""
    fields: dict[str, Any] = {}
    for key, opt in preset.OPTIONS.items():
        kind = Annotated[str, StringConstraints(max_length=4096)] if opt.kind is str else opt.kind
        fields[key] = (
            kind | None if opt.nullable else kind,
            Field(opt.default, ge=opt.minimum, le=opt.maximum, description=opt.help or None),
        )
    safe = re.sub(r"\W", "_", preset.NAME)
    return create_model(f"Options_{safe}", __base__=Section, **fields)


# ------------------------------------------------------------------------------------------------------------
# pydantic's errors in the project's words


def dotted(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_in(typ: Any) -> type[BaseModel] | None:
    if isinstance(typ, type) and issubclass(typ, BaseModel):
        return typ
    for arg in get_args(typ):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _field(model: type[BaseModel], loc: tuple[Any, ...]) -> FieldInfo | None:
    """The info of the field at `loc` in `model` (list indexes skipped), None where there is none."""
    holder: type[BaseModel] | None = model
    info = None
    for part in loc:
        if isinstance(part, int):
            continue
        if holder is None:
            return None
        info = next((f for n, f in holder.model_fields.items() if (f.alias or n) == part), None)
        if info is None:
            return None
        holder = _model_in(info.annotation)
    return info


def _bounds(info: FieldInfo | None) -> tuple[Any, Any]:
    lo = hi = None
    for m in info.metadata if info else ():
        lo = getattr(m, "ge", lo)
        hi = getattr(m, "le", hi)
    return lo, hi


TYPE_WORDS = {"int_type": "int", "string_type": "str", "bool_type": "bool"}


def _problem(err: dict[str, Any], model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    got = f"{type(value).__name__} ({show(value)})"
    if value is None and kind in ("model_type", "dict_type", "list_type"):
        return f"must be a {'list' if kind == 'list_type' else 'mapping'} (it is empty)"
    if kind == "missing" or (value is None and kind.endswith("_type")):
        return "is required"
    if kind == "extra_forbidden":
        parent = _field(model, loc[:-1]) if len(loc) > 1 else None
        holder = _model_in(parent.annotation) if parent is not None else model
        allowed = sorted((f.alias or n) for n, f in holder.model_fields.items()) if holder else []
        if not allowed:
            return "unknown field (this preset has no options)"
        near = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        if near:
            return f"unknown field; did you mean {near[0]!r}?"
        return f"unknown field (allowed: {', '.join(allowed)})"
    if kind in TYPE_WORDS:
        return f"must be of type {TYPE_WORDS[kind]}, got {got}"
    if kind == "float_type":
        return f"must be a number, got {got}"
    if kind in ("list_type",):
        return f"must be a list, got {got}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping, got {type(value).__name__}"
    if kind == "literal_error":
        info = _field(model, loc)
        choices = [str(c) for c in get_args(info.annotation)] if info else []
        choices = choices or [str(ctx.get("expected", ""))]
        words = ", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else choices[0]
        return f"must be {words}, got {show(value)}"
    if kind in ("greater_than_equal", "less_than_equal"):
        lo, hi = _bounds(_field(model, loc))
        if lo is not None and hi is not None:
            return f"must be between {lo} and {hi}, got {value}"
        return (
            f"must be >= {lo}, got {value}"
            if kind == "greater_than_equal"
            else f"must be <= {hi}, got {value}"
        )
    if kind == "string_too_short":
        return "must be a non-empty string"
    if kind == "string_too_long":
        return f"is too long ({len(value):,} characters; at most {ctx.get('max_length')})"
    if kind == "too_long":
        return f"has too many items ({len(value):,}; at most {ctx.get('max_length')})"
    if kind == "too_short":
        return "needs at least one entry" if ctx.get("min_length") == 1 else f"needs {ctx.get('min_length')}+"
    if kind == "string_pattern_mismatch":
        return f"{PATTERN_PROBLEMS.get(ctx.get('pattern'), 'has the wrong form')}, got {show(value)}"
    return clip(err.get("msg", "is invalid"), 80)


def translate(
    exc: ValidationError, model: type[BaseModel], prefix: tuple[Any, ...] = ()
) -> list[ConfigError]:
    """pydantic's errors as ConfigErrors; `model` is the one validated, `prefix` where it sits."""
    return [
        ConfigError(dotted(prefix + tuple(e["loc"])), _problem(e, model, tuple(e["loc"])))
        for e in exc.errors(include_url=False)
    ]


# one model per top-level field: each section is validated on its own, so a broken one does not hide the
# checks of the others
_WRAPPERS: dict[str, type[BaseModel]] = {
    key: create_model("Top_" + name, __base__=Section, **{name: (f.annotation, f)})
    for name, f in Project.model_fields.items()
    for key in [f.alias or name]
}


def validate_section(key: str, value: Any) -> tuple[Any, list[ConfigError]]:
    """(the validated value as plain data, []) or (None, its errors)."""
    model = _WRAPPERS[key]
    try:
        return model.model_validate({key: value}).model_dump(by_alias=True)[key], []
    except ValidationError as exc:
        return None, translate(exc, model)


# ------------------------------------------------------------------------------------------------------------
# reading a project's config


def merge(base: dict, override: dict) -> dict:
    """`override` over `base`, mappings merged key by key (neither is changed)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _preset(data: dict[str, Any], errors: list[ConfigError]) -> tuple[Any, dict[str, Any], str]:
    """(the preset module, data with the options under preset_options, the name the options came under)."""
    name = data.get("preset", "generic")
    if not isinstance(name, str) or name not in presets.REGISTRY:
        known = ", ".join(presets.REGISTRY)
        errors.append(ConfigError("preset", f"unknown preset {show(name)} (known: {known})"))
        return None, data, "preset_options"
    preset = presets.get(name)
    data = dict(data)
    options_at = "preset_options"
    for section, owner in presets.legacy_sections().items():
        if section not in data:
            continue
        if owner != name:
            errors.append(
                ConfigError(
                    section,
                    f"is the options section of preset {owner} (deprecated name of "
                    f"preset_options:); this project's preset is {name}",
                )
            )
        elif "preset_options" in data:
            errors.append(
                ConfigError(section, "is the deprecated name of preset_options: set one of them, not both")
            )
        else:
            options_at = section
            data["preset_options"] = data[section]
        del data[section]
    if data.get("preset_hooks", preset.HOOKS) != preset.HOOKS:
        errors.append(
            ConfigError(
                "preset_hooks",
                f"is set by the preset ({preset.HOOKS!r} for {name}), not by the project; remove it",
            )
        )
    return preset, data, options_at


def validate_options(preset: Any, values: Any, where: str) -> tuple[dict[str, Any], list[ConfigError]]:
    """A preset's options section checked against its OPTIONS, with the defaults filled in; `where` is the
    section's name as the project wrote it (preset_options, or a deprecated alias)."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        return {}, [ConfigError(where, "must be a mapping")]
    model = option_model(preset)
    try:
        return model.model_validate(values).model_dump(), []
    except ValidationError as exc:
        return {}, translate(exc, model, (where,))


def _cross_checks(d: dict[str, Any], preset: Any, known: list[str] | None) -> list[ConfigError]:
    """What spans fields; `d` holds the validated sections (None for one that did not validate). Fills in
    what is derived: the target (default: the first metric), the always-protected paths."""
    errors = []
    for dotted_field in preset.REQUIRED if preset else ():  # generic: benchmark.command
        section, *rest = dotted_field.split(".")
        value = d.get(section)
        for part in rest:
            value = value.get(part) if isinstance(value, dict) else ...
        if value is None:
            errors.append(ConfigError(dotted_field, "is required"))
    b = d.get("benchmark")
    if b is not None:
        names = [m["name"] for m in b["metrics"]]
        if not names:
            errors.append(
                ConfigError(
                    "benchmark.metrics",
                    "needs at least one metric, e.g. {name: time_ms, higher_is_better: false}",
                )
            )
        elif len(set(names)) != len(names):
            errors.append(ConfigError("benchmark.metrics", "metric names must be unique"))
        elif (b["target"] or names[0]) not in names:
            errors.append(
                ConfigError(
                    "benchmark.target", f"{show(b['target'])} is not one of the metrics ({', '.join(names)})"
                )
            )
        else:
            b["target"] = b["target"] or names[0]
        if b["max_pairs"] is not None and b["max_pairs"] < b["min_pairs"]:
            errors.append(
                ConfigError("benchmark.max_pairs", f"must be >= benchmark.min_pairs ({b['min_pairs']})")
            )
    if d.get("architectures") is not None and known is not None:
        for a in d["architectures"]:
            if a not in known:
                errors.append(
                    ConfigError(
                        "architectures", f"{show(a)} is not configured in the bot (known: {', '.join(known)})"
                    )
                )
    if d.get("paths") is not None:
        for pattern in d["paths"]["allowed"]:
            if pattern.startswith("/") or ".." in pattern.split("/"):
                errors.append(
                    ConfigError(
                        "paths.allowed",
                        f"{show(pattern)} must be relative to the repository root, without '..'",
                    )
                )
        protected = d["paths"]["protected"]
        protected += [p for p in ALWAYS_PROTECTED if p not in protected]
    return errors


def _bounded(data: Any) -> None:
    """Data not read through bot/configyaml.py (a dict from code or JSON) within its limits too: nesting
    depth and value count, walked without recursion."""
    from .configyaml import MAX_DEPTH, MAX_NODES

    stack, seen = [(data, 1)], 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if depth > MAX_DEPTH or seen > MAX_NODES:
            why = f"nested more than {MAX_DEPTH} levels deep" if depth > MAX_DEPTH else "too many values"
            raise ConfigError(PROJECT_CONFIG_FILE, why)
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def build_project(data: Any, known_architectures: list[str] | None = None) -> dict[str, Any]:
    """The merged, validated project config as plain data (ARCHITECTURE.md's shape), or ConfigError with
    every problem found."""
    if not isinstance(data, dict):
        raise ConfigError("", "project config must be a mapping")
    _bounded(data)
    errors: list[ConfigError] = []
    legacy = set(presets.legacy_sections())
    known = [k for k in _WRAPPERS if k != "preset_hooks"]  # (preset_hooks: accepted, never suggested)
    for key in data:
        if key not in _WRAPPERS and key not in legacy:
            near = difflib.get_close_matches(str(key), known, n=1)
            problem = f"did you mean {near[0]!r}?" if near else f"(allowed: {', '.join(known)})"
            errors.append(ConfigError(str(key), f"unknown field{';' if near else ''} {problem}"))
    data = {k: v for k, v in data.items() if k in _WRAPPERS or k in legacy}
    preset, data, options_at = _preset(data, errors)
    options = data.pop("preset_options", None)
    merged = merge(merge(GENERIC_DEFAULTS, preset.DEFAULTS if preset else {}), data)
    out: dict[str, Any] = {}
    for key in _WRAPPERS:
        if key == "preset":
            out[key] = preset.NAME if preset else None
        elif key == "preset_hooks":
            out[key] = preset.HOOKS if preset else None
        elif key == "preset_options":
            out[key], problems = validate_options(preset, options, options_at) if preset else ({}, [])
            errors += problems
        else:
            out[key], problems = validate_section(key, merged[key])
            errors += problems
    errors += _cross_checks(out, preset, known_architectures)
    if errors:
        raise ConfigError.of(errors)
    return out
