"""The README's runtime example feeds the input names the shipped sentiment manifest declares."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_runtime_example_uses_manifest_input_names():
    manifest = json.loads((ROOT / "exported" / "sentiment" / "manifest.json").read_text())
    names = {spec["name"] for spec in manifest["graphs"]["model"]["inputs"]}
    for path in (ROOT / "README.md", ROOT / "rnnkit" / "runtime" / "__init__.py"):
        fed = re.findall(r'\.run\("model", \{"(\w+)"', path.read_text(encoding="utf-8"))
        assert fed, f"no model.run example found in {path.name}"
        assert set(fed) <= names, f"{path.name} feeds {fed}; the manifest's inputs are {names}"
