"""The JSON Schema of `.autoresearch.yml`, generated from the model in bot/configmodel.py and shipped as
docs/autoresearch.schema.json (editors, SchemaStore; `autoresearch-bot config schema` writes it, a test keeps
the committed file equal to it)."""

from __future__ import annotations

from typing import Any

from . import presets
from .configmodel import GENERIC_DEFAULTS, Project, merge, option_model


def _is(name: str) -> dict[str, Any]:
    """JSON Schema: the file's preset is `name` (generic: also when it names none)."""
    named = {"properties": {"preset": {"const": name}}, "required": ["preset"]}
    return {"anyOf": [{"not": {"required": ["preset"]}}, named]} if name == "generic" else named


def project_schema() -> dict[str, Any]:
    """The JSON Schema of `.autoresearch.yml` as a project writes it (before the preset's defaults are merged
    in): the model's, plus per preset its `preset_options:` and the fields it needs the project to set."""
    schema = Project.model_json_schema(by_alias=True)
    props = schema["properties"]
    del props["preset_hooks"]  # the registry sets it; a project never does
    props["preset"] = {
        "description": "bot/presets/: the defaults and the options this project starts from",
        "enum": list(presets.REGISTRY),
        "default": "generic",
    }
    props["preset_options"] = {
        "description": "the preset's options (generic: none); see the preset's OPTIONS",
        "type": "object",
    }
    rules = []
    for name, preset in presets.REGISTRY.items():
        options = option_model(preset).model_json_schema()
        options.pop("title", None)
        then: dict[str, Any] = {"properties": {"preset_options": options}}
        needs: dict[str, list[str]] = {}
        for dotted_field in preset.REQUIRED:
            section, key = dotted_field.split(".", 1)
            needs.setdefault(section, []).append(key)
        if not merge(GENERIC_DEFAULTS, preset.DEFAULTS)["benchmark"]["metrics"]:
            needs.setdefault("benchmark", []).append("metrics")
        if needs:
            then["required"] = sorted(needs)
            for section, keys in needs.items():
                then["properties"][section] = {"required": keys}
                if "metrics" in keys:
                    then["properties"][section]["properties"] = {"metrics": {"minItems": 1}}
        if preset.LEGACY_SECTION:
            props[preset.LEGACY_SECTION] = {
                "description": f"deprecated name of preset_options: (preset {name} only)",
                "type": "object",
            }
            then["properties"][preset.LEGACY_SECTION] = options
        rules.append({"if": _is(name), "then": then})
    for section, owner in presets.legacy_sections().items():
        rules.append({"if": {"not": _is(owner)}, "then": {"not": {"required": [section]}}})
    schema["allOf"] = rules
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "autoresearch-bot project config (.autoresearch.yml)",
        **{k: v for k, v in schema.items() if k != "title"},
    }
