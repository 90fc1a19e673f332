"""Project config and bot settings: valid files load, broken ones name the field and the problem."""

import pytest

from bot.config import ALWAYS_PROTECTED, ConfigError, ProjectConfig, Settings

GOOD = """
build: {commands: ["make -j2 bench check"]}
validate: {commands: ["./check"]}
benchmark:
  command: ./bench
  metrics: [{name: attn_ms, unit: ms, higher_is_better: false}]
paths: {allowed: ["src/**"], protected: ["bench/**"]}
"""


def test_generic_config_loads_with_defaults_and_always_protects_ci_and_itself():
    cfg = ProjectConfig.from_yaml(GOOD, ["x86", "arm"])
    assert cfg.target == "attn_ms"
    assert cfg.metrics[0].higher_is_better is False
    assert cfg.raw["benchmark"]["rounds"] == 10 and cfg.raw["decision"]["min_effect"] == 0.02
    assert cfg.raw["decision"]["interference_sigmas"] == 3.0
    assert (cfg.build_commands, cfg.rounds, cfg.repetitions, cfg.warmup) == (
        ["make -j2 bench check"],
        10,
        3,
        1,
    )
    assert (cfg.simulate_enabled, cfg.primary, cfg.profile_enabled, cfg.max_waves) == (True, "both", True, 3)
    assert (cfg.max_candidates, cfg.agent_max_turns, cfg.agent_max_minutes) == (3, 30, 20)
    assert (cfg.push_to, cfg.fork_owner) == ("base", None)  # branches go to the repository by default
    fork = ProjectConfig.from_yaml(GOOD + "publish: {push_to: fork, fork_owner: bot-forks}\n")
    assert (fork.push_to, fork.fork_owner) == ("fork", "bot-forks")
    for p in ALWAYS_PROTECTED + ["bench/**"]:
        assert p in cfg.protected_paths
    again = ProjectConfig.from_dict(cfg.to_dict(), ["x86", "arm"])
    assert again.to_dict() == cfg.to_dict()


def test_llamacpp_preset_fills_everything():
    cfg = ProjectConfig.from_yaml("preset: llama.cpp\narchitectures: [x86]\n")
    assert cfg.preset == "llama.cpp"
    assert cfg.target == "tg"
    assert {m.name for m in cfg.metrics} == {"tg", "pp"}
    assert "ggml/src/ggml-cpu/**" in cfg.hot_paths
    assert cfg.preset_options["kl_max"] == 0.01 and cfg.preset_hooks == "llamacpp"


@pytest.mark.parametrize(
    "text, field, words",
    [
        ("build: [oops", ".autoresearch.yml", "line"),
        ("- a\n- b\n", ".autoresearch.yml", "mapping"),
        (GOOD + "benchmark_typo: 1\n", "benchmark_typo", "unknown field"),
        (GOOD.replace("./bench", "3"), "benchmark.command", "type str"),
        (GOOD + "decision: {alpha: 2}\n", "decision.alpha", "between"),
        (GOOD + "decision: {interference_sigmas: -1}\n", "decision.interference_sigmas", "between"),
        (
            GOOD.replace("higher_is_better: false", "higher_is_better: maybe"),
            "benchmark.metrics[0].higher_is_better",
            "bool",
        ),
        (GOOD + "architectures: [sparc]\n", "architectures", "not configured"),
        (GOOD.replace('["src/**"]', '["../etc/**"]'), "paths.allowed", ".."),
        ("preset: tensorflow\n", "preset", "unknown preset"),
        (GOOD + "research: {related: [notarepo]}\n", "research.related[0]", "owner/repo"),
        (GOOD + "research: {max_waves: 0}\n", "research.max_waves", "between 1 and 10, got 0"),
        (GOOD + "research: {max_waves: 11}\n", "research.max_waves", "between 1 and 10, got 11"),
        (GOOD + "research: {max_waves: two}\n", "research.max_waves", "type int"),
        (GOOD + "research: {profile: maybe}\n", "research.profile", "bool"),
        (GOOD + "publish: {push_to: upstream}\n", "publish.push_to", "base or fork"),
        (GOOD + "publish: {fork_owner: a/b}\n", "publish.fork_owner", "organization name"),
        (GOOD + "publish: {branch: x}\n", "publish.branch", "unknown field"),
    ],
)
def test_broken_config_names_field_and_problem(text, field, words):
    with pytest.raises(ConfigError) as info:
        ProjectConfig.from_yaml(text, ["x86", "arm"])
    assert info.value.field == field
    assert words in info.value.problem


def test_missing_file_is_reported():
    with pytest.raises(ConfigError, match="missing or empty"):
        ProjectConfig.from_yaml(None)


def test_settings_from_yaml_and_env(tmp_path):
    f = tmp_path / "bot.yml"
    f.write_text("trigger_label: perf\nexecutor: local\nbudget_usd: 5\n")
    key = tmp_path / "secret"
    key.write_text("s3cret\n")
    s = Settings.load(
        f,
        env={
            "AUTORESEARCH_WORKER_POLL_SECONDS": "0.5",
            "AUTORESEARCH_WEBHOOK_SECRET_FILE": str(key),
            "GITHUB_TOKEN": "ghp_x",
        },
    )
    assert s.trigger_label == "perf" and s.budget_usd == 5.0 and s.worker_poll_seconds == 0.5
    assert s.webhook_secret == "s3cret" and s.github_token == "ghp_x"


@pytest.mark.parametrize(
    "env, field",
    [
        ({"AUTORESEARCH_EXECUTOR": "kubernetes"}, "executor"),
        ({"AUTORESEARCH_ARXIV_ENABLED": "perhaps"}, "arxiv_enabled"),
        ({"AUTORESEARCH_GITHUB_APP_ID": "12"}, "github_private_key"),
        ({"AUTORESEARCH_MAX_BODY_BYTES": "ten"}, "max_body_bytes"),
        ({"AUTORESEARCH_KEEP_WARM_MINUTES": "-1"}, "keep_warm_minutes"),
        ({"AUTORESEARCH_KEEP_WARM_MINUTES": "half an hour"}, "keep_warm_minutes"),
    ],
)
def test_broken_settings_name_the_field(env, field):
    with pytest.raises(ConfigError) as info:
        Settings.load(None, env=env)
    assert info.value.field == field


def test_unknown_setting_in_file(tmp_path):
    f = tmp_path / "bot.yml"
    f.write_text("trigger_lable: perf\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.load(f, env={})


def test_web_links_follow_the_api_host() -> None:
    from bot.pipeline import web_url

    assert web_url(None) == "https://github.com"
    assert web_url("https://api.github.com") == "https://github.com"
    assert web_url("https://ghe.example.com/api/v3") == "https://ghe.example.com"  # GitHub Enterprise
    assert web_url("http://127.0.0.1:5000/api/v3/") == "http://127.0.0.1:5000"  # the sandbox


def test_keep_warm_minutes_defaults_to_30_and_reads_the_environment():
    assert Settings.load(None, env={}).keep_warm_minutes == 30.0
    assert Settings.load(None, env={"AUTORESEARCH_KEEP_WARM_MINUTES": "0"}).keep_warm_minutes == 0.0
    assert Settings.load(None, env={"AUTORESEARCH_KEEP_WARM_MINUTES": "45"}).keep_warm_minutes == 45.0


THREE_MISTAKES = """\
benchmark:
  command: ./bench
  rounds: 1
  metrics: [{name: t_ns, higher_is_better: nope}]
benchmarks: {}
"""


def test_every_problem_is_reported_at_once_with_its_line():
    with pytest.raises(ConfigError) as info:
        ProjectConfig.from_yaml(THREE_MISTAKES, ["x86", "arm"])
    got = [(e.line, e.field, e.problem) for e in info.value.errors]
    assert got == [
        (5, "benchmarks", "unknown field; did you mean 'benchmark'?"),
        (4, "benchmark.metrics[0].higher_is_better", "must be of type bool, got str ('nope')"),
        (3, "benchmark.rounds", "must be >= 2, got 1"),
    ]
    assert str(info.value) == "benchmarks: unknown field; did you mean 'benchmark'? (and 2 more)"


def test_hostile_sizes_get_a_short_error_never_an_internal_one():
    """A 10 MB metric name, a 10 MB file, 5,000 nested lists, a billion laughs: refused in a few lines."""
    huge = "a" * 10_000_000
    with pytest.raises(ConfigError) as info:
        ProjectConfig.from_dict({"benchmark": {"command": "./b", "metrics": [{"name": huge}]}})
    assert (info.value.field, info.value.problem) == (
        "benchmark.metrics[0].name",
        "is too long (10,000,000 characters; at most 64)",
    )
    with pytest.raises(ConfigError) as info:  # a value echoed in a message is cut short
        ProjectConfig.from_dict({"build": {"strategy": huge}})
    assert len(str(info.value)) < 200 and "…" in info.value.problem
    with pytest.raises(ConfigError) as info:  # an unknown key of any length: the field path is cut too
        ProjectConfig.from_dict({huge: 1})
    assert len(str(info.value)) < 400
    deep = leaf = {}
    for _ in range(5000):  # a dict from code or JSON, not from YAML: bounded as well, without recursion
        leaf["a"] = leaf = {}
    with pytest.raises(ConfigError, match="nested more than 32 levels deep"):
        ProjectConfig.from_dict({"preset_options": deep})
    cases = [
        (f"benchmark: {{command: ./b, metrics: [{{name: {huge}}}]}}\n", "10,000,047 bytes", None),
        ("benchmark: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 32 levels deep", 1),
        ("x:\n" + "".join("  " * i + "- \n" for i in range(1, 40)), "nested more than 32 levels deep", 33),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{k}: &{k} [{', '.join([f'*{p}'] * 10)}]\n"
                for p, k in zip("abcdefgh", "bcdefghi", strict=True)
            ),
            "more than 20,000 values (aliases expanded)",
            5,
        ),
    ]
    for text, words, line in cases:
        with pytest.raises(ConfigError) as info:
            ProjectConfig.from_yaml(text)
        assert info.value.field == ".autoresearch.yml" and words in info.value.problem, info.value
        assert info.value.line == line and len(str(info.value)) < 200


def test_the_model_gives_the_defaults_and_each_preset_its_own():
    from bot.configmodel import GENERIC_DEFAULTS, Project

    assert GENERIC_DEFAULTS == Project().model_dump(by_alias=True)
    assert GENERIC_DEFAULTS["benchmark"]["rounds"] == 10 and GENERIC_DEFAULTS["validate"]["timeout"] == 900
    llama = ProjectConfig.from_yaml("preset: llama.cpp\n")
    assert llama.raw["build"]["shared_cache"] is True and llama.raw["benchmark"]["threads"] == 4
    assert llama.raw["build"]["timeout"] == 1800  # the generic default where the preset sets none


def test_the_issue_comment_lists_the_problems_briefly():
    """What the run's failure comment says about a broken config: one sentence for one problem, a short list
    for several (each with its line), values quoted inert, never a traceback, bounded whatever the file."""
    from bot.pipeline import config_problems

    with pytest.raises(ConfigError) as info:
        ProjectConfig.from_yaml(THREE_MISTAKES)
    assert config_problems(info.value) == (
        "The project configuration `.autoresearch.yml` has 3 problems:\n"
        "- **benchmark.rounds**: must be >= 2, got 1 (line 3)\n"
        "- **benchmark.metrics\\[0\\].higher_is_better**: must be of type bool, got str ('nope') (line 4)\n"
        "- **benchmarks**: unknown field; did you mean 'benchmark'? (line 5)"
    )
    with pytest.raises(ConfigError) as info:
        ProjectConfig.from_yaml("benchmark: " + "[" * 5000 + "]" * 5000 + "\n")
    assert config_problems(info.value) == (
        "The project configuration `.autoresearch.yml` has a problem: "
        "nested more than 32 levels deep (line 1)"
    )
    many = "\n".join(f"typo{i}: 1" for i in range(40)) + "\n" + GOOD
    with pytest.raises(ConfigError) as info:
        ProjectConfig.from_yaml(many)
    text = config_problems(info.value)
    assert len(info.value.errors) == 40 and text.count("\n- ") == 11 and text.endswith("- ... and 30 more")
    with pytest.raises(ConfigError) as info:
        ProjectConfig.from_yaml(GOOD.replace("attn_ms, unit", "'@maria [x](http://e.vil)', unit"))
    text = config_problems(info.value)
    assert "@maria" not in text and "](http://" not in text and "Traceback" not in text
