"""The language-neutral manifest schema (``manifest.schema.json``) and a validator for it.

``validate_manifest(manifest)`` lists every violation (``[]`` when valid);
``check_manifest(manifest, source)`` raises an ``ArtifactError`` naming them. The validator
implements the JSON Schema keywords the schema file uses (``type``, ``required``,
``properties``, ``additionalProperties``, ``items``, ``enum``, ``const``, ``minimum``,
``minItems``, ``allOf``, ``if``/``then``, local ``$ref``), so services need no extra package;
the file itself is plain JSON Schema (draft 2020-12) for other languages' validators.
TF-free.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from rnnkit.errors import ArtifactError

SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
SCHEMA_VERSION = 1

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}
_KNOWN = {"$schema", "$id", "$defs", "title", "description", "type", "required", "properties",
          "additionalProperties", "items", "enum", "const", "minimum", "minItems", "allOf",
          "if", "then", "$ref"}


@cache
def load_schema() -> dict[str, Any]:
    """The parsed ``manifest.schema.json``."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def _errors(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> list[str]:
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValueError(f"manifest schema keyword(s) {sorted(unknown)} at {path} are not "
                         "supported by rnnkit.runtime.schema")
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"only local #/$defs/ references are supported. Received: {ref!r}")
        return _errors(value, root["$defs"][ref.removeprefix("#/$defs/")], root, path)
    errors: list[str] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, n) for n in names):
            return [f"{path}: expected {' or '.join(names)}, got {type(value).__name__} "
                    f"({value!r:.60})"]
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: must be {schema['const']!r}, got {value!r:.60}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: must be one of {schema['enum']}, got {value!r:.60}")
    if "minimum" in schema and _is_type(value, "number") and value < schema["minimum"]:
        errors.append(f"{path}: must be >= {schema['minimum']}, got {value!r}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing required field `{key}`")
        properties = schema.get("properties", {})
        for key, sub in properties.items():
            if key in value:
                errors.extend(_errors(value[key], sub, root, f"{path}.{key}"))
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in value.keys() - properties.keys():
                errors.extend(_errors(value[key], extra, root, f"{path}.{key}"))
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{path}: needs at least {schema['minItems']} items, got {len(value)}")
        if "items" in schema:
            for index, item in enumerate(value):
                errors.extend(_errors(item, schema["items"], root, f"{path}[{index}]"))
    for sub in schema.get("allOf", []):
        errors.extend(_errors(value, sub, root, path))
    if "if" in schema and not _errors(value, schema["if"], root, path):
        errors.extend(_errors(value, schema.get("then", {}), root, path))
    return errors


def validate_manifest(manifest: Any, schema: dict[str, Any] | None = None) -> list[str]:
    """Every violation of the manifest schema, as ``"manifest.<path>: <problem>"`` strings."""
    schema = load_schema() if schema is None else schema
    return _errors(manifest, schema, schema, "manifest")


def check_manifest(manifest: Any, source: str = "manifest.json") -> None:
    """Raise an ``ArtifactError`` listing the schema violations of ``manifest``."""
    errors = validate_manifest(manifest)
    if errors:
        shown = "; ".join(errors[:5]) + (f"; ... ({len(errors)} in all)" if len(errors) > 5 else "")
        raise ArtifactError(f"{source} does not follow the manifest schema "
                            f"(rnnkit/runtime/manifest.schema.json): {shown}")
