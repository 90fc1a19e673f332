"""The JSON Schema of `.autoresearch.yml` (docs/autoresearch.schema.json, generated from bot/configmodel.py):
the committed file is the generated one, and it accepts every config the repository ships (the examples,
the test fixtures, the demo's) and refuses what the bot refuses."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from bot.cli import main
from bot.config import ConfigError, ProjectConfig
from bot.configschema import project_schema
from bot.demo import llamacpp_project_yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "docs" / "autoresearch.schema.json"
SHIPPED = sorted(ROOT.glob("examples/**/.autoresearch.yml")) + sorted(ROOT.glob("tests/**/.autoresearch.yml"))


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_the_generated_one(tmp_path: Path) -> None:
    assert json.loads(SCHEMA.read_text()) == project_schema(), (
        "regenerate it: autoresearch-bot config schema --out docs/autoresearch.schema.json"
    )
    assert main(["config", "schema", "--out", str(tmp_path / "s.json")]) == 0
    assert (tmp_path / "s.json").read_text() == SCHEMA.read_text()


@pytest.mark.parametrize(
    "name, text",
    [(str(p.relative_to(ROOT)), p.read_text()) for p in SHIPPED]
    + [("bot/demo.py llama.cpp project", llamacpp_project_yaml())],
)
def test_schema_accepts_every_config_the_repository_ships(name: str, text: str) -> None:
    data = yaml.safe_load(text)
    assert [e.message for e in validator().iter_errors(data)] == [], name
    ProjectConfig.from_yaml(text)  # and the bot reads it


def test_examples_are_found() -> None:
    assert ROOT / "examples" / "attention" / ".autoresearch.yml" in SHIPPED


@pytest.mark.parametrize(
    "text",
    [
        "benchmark: {command: ./b, metrics: [{name: t}], rounds: 1}\n",
        "benchmark: {command: ./b, metrics: [{name: t}]}\nbenchmarks: {}\n",
        "benchmark: {command: ./b, metrics: [{name: 'a b'}]}\n",
        "benchmark: {metrics: [{name: t}]}\n",  # generic needs a command
        "benchmark: {command: ./b}\n",  # ... and a metric
        "preset: llama.cpp\npreset_options: {n_gen: 0}\n",
        "preset: llama.cpp\npreset_options: {colour: red}\n",
        "llamacpp: {n_gen: 8}\nbenchmark: {command: ./b, metrics: [{name: t}]}\n",  # llama.cpp's section only
        "preset: tensorflow\n",
        "publish: {push_to: upstream}\nbenchmark: {command: ./b, metrics: [{name: t}]}\n",
    ],
)
def test_schema_refuses_what_the_bot_refuses(text: str) -> None:
    assert list(validator().iter_errors(yaml.safe_load(text)))
    with pytest.raises(ConfigError):
        ProjectConfig.from_yaml(text)
