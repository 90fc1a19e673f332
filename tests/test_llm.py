"""LLM client: real anthropic SDK against the local Messages API double."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from anthropic_double import AnthropicDouble, Fail, Reply, text, tool_use

from bot.agent.llm import LLM, BudgetExceeded, LLMError, Usage, cost_usd, price_for

KEY = "sk-ant-test-key"
SCHEMA = {
    "type": "object",
    "properties": {"speedup": {"type": "number"}, "ideas": {"type": "array", "items": {"type": "string"}}},
    "required": ["speedup", "ideas"],
    "additionalProperties": False,
}


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    d = tmp_path / "prompts"
    d.mkdir()
    (d / "ask.md").write_text("Estimate the speedup of $change. Costs $$5.\n")
    (d / "system_structured.md").write_text("Answer with submit.\n")
    return d


def make_llm(double: AnthropicDouble, prompts: Path, **kw) -> LLM:
    return LLM(
        api_key=KEY, base_url=double.base_url, prompts_dir=prompts, **{"max_tokens_budget": 10**6, **kw}
    )


def test_render_substitutes_and_reports_missing(prompts: Path) -> None:
    llm = LLM(api_key=KEY, base_url="http://127.0.0.1:9", max_tokens_budget=1000, prompts_dir=prompts)
    assert llm.render("ask", {"change": "SIMD exp"}) == "Estimate the speedup of SIMD exp. Costs $5.\n"
    with pytest.raises(LLMError, match="missing variable change"):
        llm.render("ask", {})
    with pytest.raises(LLMError, match="unreadable"):
        llm.render("nope", {})


def test_structured_repairs_invalid_output_once(anthropic, prompts: Path) -> None:
    script = [
        Reply([tool_use("submit", speedup="fast", ideas=["a"])]),
        Reply([tool_use("submit", speedup=1.3, ideas=["vectorize exp"])]),
    ]
    d = anthropic(script, api_key=KEY)
    out = make_llm(d, prompts).structured("ask", {"change": "x"}, SCHEMA)
    assert out == {"speedup": 1.3, "ideas": ["vectorize exp"]}
    first, second = d.requests
    assert first["tool_choice"] == {"type": "tool", "name": "submit"}
    assert first["tools"][0]["input_schema"] == SCHEMA
    repair = second["messages"][-1]["content"][0]
    assert repair["type"] == "tool_result" and repair["is_error"] is True
    assert "speedup" in repair["content"] and "not of type 'number'" in repair["content"]


def test_structured_gives_up_after_one_repair(anthropic, prompts: Path) -> None:
    script = [Reply([tool_use("submit", ideas=[])]), Reply([text("I refuse to use tools")])]
    d = anthropic(script, api_key=KEY)
    with pytest.raises(LLMError, match="did not call the submit tool"):
        make_llm(d, prompts).structured("ask", {"change": "x"}, SCHEMA)
    assert len(d.requests) == 2


def test_usage_and_cost_accounting(anthropic, prompts: Path) -> None:
    sink: list[dict] = []
    script = [
        Reply([text("a")], usage={"input_tokens": 1_000_000, "output_tokens": 100_000}),
        Reply(
            [text("b")],
            usage={
                "input_tokens": 2000,
                "output_tokens": 500,
                "cache_creation_input_tokens": 4000,
                "cache_read_input_tokens": 10_000,
            },
        ),
    ]
    d = anthropic(script, api_key=KEY)
    llm = make_llm(d, prompts, max_tokens_budget=5_000_000, usage_sink=sink.append)
    for _ in range(2):
        llm.chat("s", [{"role": "user", "content": "hi"}], purpose="test")
    # sonnet: $3 in / $15 out per MTok; cache write 1.25x, read 0.1x of input price
    assert sink[0]["usd"] == pytest.approx(3.0 + 1.5)
    assert sink[1]["usd"] == pytest.approx((2000 * 3 + 500 * 15 + 4000 * 3.75 + 10_000 * 0.3) / 1e6)
    assert sink[0]["purpose"] == "test" and sink[0]["model"] == "claude-sonnet-4-6"
    assert llm.usage.calls == 2
    assert llm.usage.input_tokens == 1_002_000 and llm.usage.output_tokens == 100_500
    assert llm.usage.total_tokens == 1_002_000 + 100_500 + 14_000
    assert llm.usage.usd == pytest.approx(sink[0]["usd"] + sink[1]["usd"])


def test_price_table_prefix_and_override() -> None:
    assert price_for("claude-opus-4-1", {"claude-opus": (15, 75), "claude-opus-4-1": (10, 50)}) == (10, 50)
    assert price_for("claude-haiku-4-5", {"claude-haiku": (0.8, 4.0)}) == (0.8, 4.0)
    with pytest.raises(LLMError, match="no price"):
        price_for("gpt-4", {"claude": (1, 1)})
    assert cost_usd(Usage(input_tokens=10**6, output_tokens=10**6), (0.8, 4.0)) == pytest.approx(4.8)


def test_budget_refuses_before_sending(prompts: Path) -> None:
    with AnthropicDouble(
        [Reply([text("ok")], usage={"input_tokens": 9300, "output_tokens": 600})], api_key=KEY
    ) as d:
        llm = make_llm(d, prompts, max_tokens_budget=10_000)
        msg = llm.chat("s", [{"role": "user", "content": "hi"}], max_tokens=4096)
        assert msg.content[0].text == "ok"
        assert d.requests[0]["max_tokens"] == 4096
        with pytest.raises(BudgetExceeded, match="tokens budget exhausted"):
            llm.chat("s", [{"role": "user", "content": "hi"}])
        assert len(d.requests) == 1  # the refused call never reached the API


def test_budget_shrinks_max_tokens_and_usd_limit(anthropic, prompts: Path) -> None:
    d = anthropic([Reply([text("ok")]), Reply([text("ok")])], api_key=KEY)
    llm = make_llm(d, prompts, max_tokens_budget=3000)
    llm.chat("s", [{"role": "user", "content": "hi"}], max_tokens=4096)
    assert 256 <= d.requests[0]["max_tokens"] < 3000
    llm2 = make_llm(d, prompts, usd_budget=0.0001)  # $0.0001 buys ~6 output tokens at $15/MTok
    with pytest.raises(BudgetExceeded, match="usd"):
        llm2.chat("s", [{"role": "user", "content": "hi"}])


def test_rate_limit_and_overload_retried_by_sdk(anthropic, prompts: Path) -> None:
    script = [Fail(429), Fail(529, "overloaded_error", "Overloaded"), Reply([text("finally")])]
    d = anthropic(script, api_key=KEY)
    msg = make_llm(d, prompts, max_retries=2).chat("s", [{"role": "user", "content": "hi"}])
    assert msg.content[0].text == "finally"
    assert [h["x-stainless-retry-count"] for h in d.headers] == ["0", "1", "2"]


def test_retries_exhausted_raise_llm_error(anthropic, prompts: Path) -> None:
    d = anthropic([Fail(529, "overloaded_error"), Fail(529, "overloaded_error")], api_key=KEY)
    llm = make_llm(d, prompts, max_retries=1)
    t0 = time.monotonic()
    with pytest.raises(LLMError, match="API call failed"):
        llm.chat("s", [{"role": "user", "content": "hi"}])
    assert len(d.requests) == 2 and time.monotonic() - t0 < 5
    assert llm.usage.calls == 0


def test_wrong_key_is_a_clear_error(anthropic, prompts: Path) -> None:
    d = anthropic([], api_key="other")
    with pytest.raises(LLMError, match="AuthenticationError"):
        make_llm(d, prompts).chat("s", [{"role": "user", "content": "hi"}])


def test_api_key_not_in_repr(prompts: Path) -> None:
    llm = LLM(
        api_key="sk-ant-very-secret", base_url="http://127.0.0.1:9", max_tokens_budget=1, prompts_dir=prompts
    )
    assert "very-secret" not in repr(llm)
