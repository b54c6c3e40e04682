"""The published JSON Schema (docs/config-schema.json) and reference (docs/config.md) match the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mailstrata.cli import render_json, render_markdown
from mailstrata.config.model import json_schema
from tests.config._support import MINIMAL_YAML, default_data

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "docs" / "config-schema.json"
REFERENCE_FILE = ROOT / "docs" / "config.md"
BEGIN = "<!-- BEGIN GENERATED: mailstrata schema --format markdown"
END = "<!-- END GENERATED -->"


def _objects(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The top level and every object in $defs, by name."""
    defs = schema["$defs"]
    return {"(top level)": schema} | {k: v for k, v in defs.items() if v.get("type") == "object"}


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{name}.{key}", prop) for name, node in _objects(schema).items()
            for key, prop in node.get("properties", {}).items()]


def test_given_the_models_when_the_schema_is_generated_then_it_equals_the_committed_file() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_json(json_schema()), (
        "docs/config-schema.json is out of date: run `make schema`"
    )


def test_given_the_models_when_the_reference_is_generated_then_it_equals_the_section_in_config_md() -> None:
    text = REFERENCE_FILE.read_text(encoding="utf-8")
    section = text[text.index("\n", text.index(BEGIN)) + 1: text.index(END)]

    assert section.strip() == render_markdown(json_schema()).strip(), (
        "docs/config.md is out of date: replace its generated section with `mailstrata schema --format markdown`"
    )


def test_given_the_schema_when_checked_then_it_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_given_the_default_config_when_checked_against_the_schema_then_it_is_valid() -> None:
    errors = [e.message for e in jsonschema.Draft202012Validator(json_schema()).iter_errors(default_data())]

    assert errors == []


def test_given_the_minimal_config_when_checked_against_the_schema_then_it_is_valid() -> None:
    config = yaml.safe_load(MINIMAL_YAML)

    errors = [e.message for e in jsonschema.Draft202012Validator(json_schema()).iter_errors(config)]

    assert errors == []


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda c: c["layers"]["smtp_in"].update(flavour="m1.large"),
     "Additional properties are not allowed ('flavour' was unexpected)"),
    (lambda c: c.update(listeners=[{"layer": "imap_proxy", "port": 143}]),
     "'imap_proxy' is not one of ['smtp_in', 'smtp_out', 'mailstore', 'webmail']"),
    (lambda c: c["layers"]["smtp_in"].update(count=0), "0 is less than the minimum of 1"),
])
def test_given_a_bad_config_when_an_editor_checks_it_then_the_schema_flags_it(mutate: Any, message: str) -> None:
    config = default_data()
    mutate(config)

    errors = [e.message for e in jsonschema.Draft202012Validator(json_schema()).iter_errors(config)]

    assert errors == [message]


def test_given_every_mapping_when_the_schema_is_read_then_unknown_keys_are_refused() -> None:
    objects = _objects(json_schema())

    open_objects = [name for name, node in objects.items() if node.get("additionalProperties") is not False]

    assert open_objects == []


def test_given_every_key_when_the_schema_is_read_then_it_has_a_description_for_editors() -> None:
    schema = json_schema()
    defs = schema["$defs"]
    undescribed = [
        path for path, prop in _properties(schema)
        if not prop.get("description")
        and not defs.get(str(prop.get("$ref", "")).rsplit("/", 1)[-1], {}).get("description")
    ]

    assert undescribed == []


def test_given_a_key_without_a_value_by_default_when_documented_then_its_behaviour_is_said() -> None:
    # A default of null must read as behaviour ("Default: the cloud's default type"), never as "None".
    silent = [
        path for path, prop in _properties(json_schema())
        if "default" in prop and prop["default"] is None
        and "Default:" not in prop.get("description", "") and "Required w" not in prop.get("description", "")
    ]

    assert silent == []
