"""Anthropic client with usage accounting, cost, budgets, prompt templates and structured output."""

from __future__ import annotations

import json
import string
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import jsonschema

from bot.resources import prompts_dir as _installed_prompts_dir

DEFAULT_MODEL = "claude-sonnet-4-6"  # claude-sonnet-4-5 reaches end-of-life 2026-11-30

# $ per million tokens: (input, output). Matched by longest model-name prefix.
# Cache writes cost 1.25x input, cache reads 0.1x input (Anthropic's published multipliers).
PRICES_USD_PER_MTOK: dict[str, tuple[float, float]] = {
    "claude-opus": (15.0, 75.0),
    "claude-sonnet": (3.0, 15.0),
    "claude-haiku": (0.8, 4.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-opus": (15.0, 75.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-haiku": (0.25, 1.25),
}
CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1
CHARS_PER_TOKEN_ESTIMATE = 3.0  # deliberately pessimistic: estimates should over-count
MIN_OUTPUT_TOKENS = 256  # below this a call is not worth making; refuse instead


class LLMError(RuntimeError):
    """The model could not produce a usable answer (or a template is broken)."""


class BudgetExceeded(LLMError):
    """A call would exceed the token or USD budget; nothing was sent."""


@dataclass
class Usage:
    """Accumulated usage over one or more calls."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
        )

    def add(self, other: Usage) -> None:
        for name in (
            "calls",
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "usd",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def minus(self, earlier: Usage) -> Usage:
        return Usage(**{k: v - getattr(earlier, k) for k, v in asdict(self).items()})

    def copy(self) -> Usage:
        return Usage(**asdict(self))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["usd"] = round(d["usd"], 6)
        d["total_tokens"] = self.total_tokens
        return d


def price_for(model: str, prices: Mapping[str, tuple[float, float]]) -> tuple[float, float]:
    """(input, output) $/MTok for `model`, by longest matching prefix; LLMError if unknown."""
    matches = [k for k in prices if model.startswith(k)]
    if not matches:
        raise LLMError(f"no price for model {model!r}; add it to the price table (prices=...)")
    return prices[max(matches, key=len)]


def cost_usd(usage: Usage, price: tuple[float, float]) -> float:
    p_in, p_out = price
    return (
        usage.input_tokens * p_in
        + usage.output_tokens * p_out
        + usage.cache_creation_input_tokens * p_in * CACHE_WRITE_FACTOR
        + usage.cache_read_input_tokens * p_in * CACHE_READ_FACTOR
    ) / 1e6


def estimate_tokens(payload: Any) -> int:
    """Rough, pessimistic token count of a request payload (chars / 3)."""
    text = payload if isinstance(payload, str) else json.dumps(payload, default=str)
    return int(len(text) / CHARS_PER_TOKEN_ESTIMATE) + 1


@dataclass
class LLM:
    """One Anthropic client with usage accounting; refuses calls that would exceed its budgets."""

    api_key: str = field(repr=False)
    max_tokens_budget: int
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    usd_budget: float | None = None
    prompts_dir: Path | None = None  # None: the installed prompts (bot.resources.prompts_dir())
    usage_sink: Callable[[dict[str, Any]], None] | None = None
    prices: Mapping[str, tuple[float, float]] = field(default_factory=lambda: dict(PRICES_USD_PER_MTOK))
    max_retries: int = 4
    timeout_s: float = 600.0
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        self.prompts_dir = (
            Path(self.prompts_dir) if self.prompts_dir is not None else _installed_prompts_dir()
        )
        self.price = price_for(self.model, self.prices)
        self._lock = threading.Lock()
        self.client = anthropic.Anthropic(
            api_key=self.api_key, base_url=self.base_url, max_retries=self.max_retries, timeout=self.timeout_s
        )

    # ---- templates -------------------------------------------------------------------------------
    def render(self, template_name: str, variables: Mapping[str, Any]) -> str:
        """Fill prompts/<template_name>.md; every `$var` must be supplied."""
        path = self.prompts_dir / f"{template_name}.md"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise LLMError(f"prompt template {path} unreadable: {e}") from e
        try:
            return string.Template(text).substitute({k: str(v) for k, v in variables.items()})
        except KeyError as e:
            raise LLMError(f"prompt template {template_name}: missing variable {e.args[0]}") from e
        except ValueError as e:
            raise LLMError(f"prompt template {template_name}: {e}") from e

    # ---- budget ----------------------------------------------------------------------------------
    def remaining_tokens(self) -> int:
        return self.max_tokens_budget - self.usage.total_tokens

    def _output_allowance(self, est_input: int, max_tokens: int, token_cap: int | None) -> int:
        """Largest max_tokens that keeps this call within every budget; BudgetExceeded if too small."""
        caps = [("tokens", self.remaining_tokens() - est_input)]
        if token_cap is not None:
            caps.append(("caller token limit", token_cap - est_input))
        if self.usd_budget is not None:
            p_in, p_out = self.price
            usd_left = self.usd_budget - self.usage.usd - est_input * p_in / 1e6
            caps.append(("usd", int(usd_left * 1e6 / p_out)))
        allowance = min([max_tokens] + [c for _, c in caps])
        if allowance < min(MIN_OUTPUT_TOKENS, max_tokens):
            which = min(caps, key=lambda c: c[1])[0]
            raise BudgetExceeded(
                f"{which} budget exhausted: ~{est_input} input tokens estimated, "
                f"{self.usage.total_tokens}/{self.max_tokens_budget} tokens and "
                f"${self.usage.usd:.4f}/{self.usd_budget} used"
            )
        return allowance

    def _record(self, message: Any, purpose: str) -> Usage:
        u = message.usage
        call = Usage(
            calls=1,
            input_tokens=u.input_tokens or 0,
            output_tokens=u.output_tokens or 0,
            cache_creation_input_tokens=u.cache_creation_input_tokens or 0,
            cache_read_input_tokens=u.cache_read_input_tokens or 0,
        )
        call.usd = cost_usd(call, self.price)
        with self._lock:
            self.usage.add(call)
        if self.usage_sink is not None:
            self.usage_sink({"model": self.model, "purpose": purpose, **call.to_dict()})
        return call

    # ---- calls -----------------------------------------------------------------------------------
    def chat(
        self,
        system: str,
        messages: list[dict[str, Any]],
        tools: Iterable[dict[str, Any]] = (),
        *,
        max_tokens: int = 4096,
        token_cap: int | None = None,
        tool_choice: dict | None = None,
        purpose: str = "chat",
    ) -> Any:
        """One Messages API call (anthropic.types.Message); budget checked before, usage recorded after.

        `token_cap` is an extra limit from the caller (e.g. a run's remaining tokens)."""
        tools = list(tools)
        est_input = estimate_tokens({"system": system, "messages": messages, "tools": tools})
        allowance = self._output_allowance(est_input, max_tokens, token_cap)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": allowance,
            "system": system,
            "messages": messages,
        }
        if tools:
            kwargs["tools"] = tools
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        try:
            message = self.client.messages.create(**kwargs)
        except anthropic.APIError as e:
            raise LLMError(f"Anthropic API call failed: {type(e).__name__}: {e}") from e
        self._record(message, purpose)
        return message

    def structured(
        self,
        template_name: str,
        variables: Mapping[str, Any],
        schema: dict[str, Any],
        *,
        system: str | None = None,
        max_tokens: int = 4096,
        token_cap: int | None = None,
        purpose: str | None = None,
    ) -> dict[str, Any]:
        """Ask for a JSON object matching `schema` through a forced `submit` tool; one repair retry."""
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        system = system if system is not None else self.render("system_structured", {})
        tool = {
            "name": "submit",
            "description": "Submit the answer as structured data.",
            "input_schema": schema,
        }
        messages: list[dict[str, Any]] = [{"role": "user", "content": self.render(template_name, variables)}]
        last_error = ""
        for _attempt in range(2):
            msg = self.chat(
                system,
                messages,
                [tool],
                max_tokens=max_tokens,
                token_cap=token_cap,
                tool_choice={"type": "tool", "name": "submit"},
                purpose=purpose or template_name,
            )
            block = next((b for b in msg.content if b.type == "tool_use" and b.name == "submit"), None)
            if block is None:
                last_error = "the answer did not call the submit tool"
                messages += [
                    {"role": "assistant", "content": _blocks_to_params(msg.content) or "(empty)"},
                    {"role": "user", "content": f"Error: {last_error}. Call submit."},
                ]
                continue
            errors = sorted(validator.iter_errors(block.input), key=lambda e: list(e.path))
            if not errors:
                return dict(block.input)
            last_error = "; ".join(
                f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:5]
            )
            messages += [
                {"role": "assistant", "content": _blocks_to_params(msg.content)},
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": block.id,
                            "is_error": True,
                            "content": f"Schema validation failed: {last_error}. Call submit again with "
                            f"corrected input that matches the schema.",
                        }
                    ],
                },
            ]
        raise LLMError(f"{template_name}: no valid structured answer after a repair retry: {last_error}")


def _blocks_to_params(blocks: Iterable[Any]) -> list[dict[str, Any]]:
    """Response content blocks -> request params (text and tool_use only)."""
    out: list[dict[str, Any]] = []
    for b in blocks:
        if b.type == "text" and b.text:
            out.append({"type": "text", "text": b.text})
        elif b.type == "tool_use":
            out.append({"type": "tool_use", "id": b.id, "name": b.name, "input": b.input})
    return out


blocks_to_params = _blocks_to_params


def __getattr__(name: str) -> Path:
    """DEFAULT_PROMPTS_DIR, resolved when first asked (installed package data or the checkout's prompts/)."""
    if name == "DEFAULT_PROMPTS_DIR":
        return _installed_prompts_dir()
    raise AttributeError(name)
