"""The web client's type generator (clients/web/scripts/generate_types.py) writes JSON Schemas as pydantic makes
them as the TypeScript types the client is checked against; and the committed files are current."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "clients" / "web" / "scripts" / "generate_types.py"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_types", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_schemas_become_typescript_types() -> None:
    gen = generator()
    schema = {
        "title": "Example",
        "description": "An example.",
        "type": "object",
        "required": ["id", "kind", "tags", "when", "ok"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "kind": {"enum": ["a", "b"]},
            "tags": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
            "when": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "ok": {"const": True},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "ref": {"$ref": "#/components/schemas/Other"},
            "odd-name": {"type": "boolean"},
        },
    }
    assert gen.declaration("Example", schema) == (
        "/** An example. */\n"
        "export interface Example {\n"
        "  id: string;\n"
        '  kind: "a" | "b";\n'
        "  tags: (string | number)[];\n"
        "  when: string | null;\n"
        "  ok: true;\n"
        "  counts?: Record<string, number>;\n"
        "  ref?: Other;\n"
        '  "odd-name"?: boolean;\n'
        "}\n"
    )
    union = {"anyOf": [{"$ref": "#/components/schemas/A"}, {"$ref": "#/components/schemas/B"}]}
    assert gen.declaration("AOrB", union) == "export type AOrB = A | B;\n"


def test_the_committed_types_are_current() -> None:
    assert generator().main(["--check"]) == 0, "run `make schemas`"
