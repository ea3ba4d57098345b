"""The manifest JSON Schema: shipped manifests follow it, violations are named, and every
manifest field the Node.js reference client reads is a required field of the schema."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from rnnkit.errors import ArtifactError
from rnnkit.runtime.schema import SCHEMA_VERSION, check_manifest, load_schema, validate_manifest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "exported").glob("*/manifest.json"))


def _manifest(app: str) -> dict:
    return json.loads((ROOT / "exported" / app / "manifest.json").read_text())


def test_schema_file_is_declared_version():
    schema = load_schema()
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    assert schema["$schema"].endswith("2020-12/schema")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.parent.name)
def test_shipped_manifests_follow_schema(path):
    assert validate_manifest(json.loads(path.read_text())) == []


def test_violations_are_named():
    manifest = _manifest("translation")
    del manifest["translation"]["beam_width"]
    manifest["translation"]["long_input"] = "wrap"
    manifest["translation"]["max_source_length"] = "40"
    manifest["graphs"]["encoder"]["inputs"][0].pop("dtype")
    manifest["padding"] = "left"
    errors = validate_manifest(manifest)
    assert "manifest.translation: missing required field `beam_width`" in errors
    assert any(e.startswith("manifest.translation.long_input: must be one of") for e in errors)
    assert any(e.startswith("manifest.translation.max_source_length: expected integer")
               for e in errors)
    assert "manifest.graphs.encoder.inputs[0]: missing required field `dtype`" in errors
    assert any(e.startswith("manifest.padding: must be one of") for e in errors)
    assert len(errors) == 5
    with pytest.raises(ArtifactError, match="beam_width"):
        check_manifest(manifest, "x/manifest.json")


def test_app_sections_apply_only_to_their_app():
    manifest = _manifest("sentiment")
    del manifest["tokenizer"]["unk_id"]
    assert validate_manifest(manifest) == ["manifest.tokenizer: missing required field `unk_id`"]
    other = copy.deepcopy(manifest)
    other["app"] = "forecasting"  # no app section for it yet: only the common core applies
    assert validate_manifest(other) == []
    manifest["schema_version"] = 2
    assert any("schema_version: must be 1" in e for e in validate_manifest(manifest))
    assert validate_manifest({"app": 3})[0] == "manifest: missing required field `format_version`"
    assert validate_manifest([]) == ["manifest: expected object, got list ([])"]


def _declared_paths(schema: dict, app: str) -> set[str]:
    """Dotted paths the schema declares for `app` (top level + the app's `then` branch),
    required or optional."""
    paths: set[str] = set()

    def walk(node: dict, prefix: str) -> None:
        for key, child in node.get("properties", {}).items():
            paths.add(f"{prefix}{key}")
            walk(child, f"{prefix}{key}.")

    walk(schema, "")
    for branch in schema["allOf"]:
        if branch["if"]["properties"]["app"]["const"] == app:
            walk(branch["then"], "")
    return paths


@pytest.mark.parametrize("app", ["sentiment", "translation", "speech_to_text", "captioning"])
def test_node_client_reads_only_schema_fields(app):
    source = (ROOT / "clients" / "node" / "src" / "apps" / f"{app}.js").read_text()
    read = set(re.findall(r'exp\.field\("([\w.]+)"\)', source))
    # Section helpers: `const t = (name) => exp.field(`translation.${name}`);` then t("beam_width").
    for helper, section in re.findall(r"const (\w+) = \(name\) => exp\.field\(`([\w.]+)\.\$\{name\}`\)",
                                      source):
        read |= {f"{section}.{name}" for name in re.findall(rf'\b{helper}\("(\w+)"\)', source)}
    assert len(read) >= 5
    missing = sorted(read - _declared_paths(load_schema(), app))
    assert not missing, f"clients/node/src/apps/{app}.js reads fields the schema lacks: {missing}"
