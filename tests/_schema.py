"""JSON Schema checks shared by the tests of the output contracts (result.json, tracks.json)."""

import json
from pathlib import Path

import jsonschema  # the `test` extra

DOCS = Path(__file__).resolve().parents[1] / "docs"


def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    """The validator of ``docs/<name>``, itself checked against the 2020-12 meta-schema."""
    schema = json.loads((DOCS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def problems(validator: jsonschema.Draft202012Validator, document: dict) -> list[str]:
    """Where and why ``document`` breaks the schema (empty when it follows it)."""
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]
