"""Typed manifest specs: what a predictor reads from ``manifest.json``, declared once.

An app declares a frozen dataclass whose fields name their place in the manifest
(``spec_field("tokenizer.max_length")``). Export writes ``spec.to_manifest()`` into the
manifest; the predictor reads ``Spec.from_manifest(manifest)``, which fails with an
``ArtifactError`` naming the first missing field: a predictor never falls back to a config
default. TF-free (services import it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from rnnkit.errors import ArtifactError

S = TypeVar("S", bound="ManifestSpec")


def spec_field(key: str, **kwargs: Any) -> Any:
    """A spec field stored at the dotted manifest path ``key`` (e.g. ``"tokenizer.file"``)."""
    return dataclasses.field(metadata={"key": key}, **kwargs)


def _key(field: dataclasses.Field) -> str:
    return field.metadata.get("key", field.name)


@dataclasses.dataclass(frozen=True)
class ManifestSpec:
    """Base of the per-app manifest specs (subclass as a frozen dataclass)."""

    @classmethod
    def from_manifest(cls: type[S], manifest: Mapping[str, Any],
                      source: str = "manifest.json") -> S:
        values = {}
        for field in dataclasses.fields(cls):
            path = _key(field)
            node: Any = manifest
            for part in path.split("."):
                if not isinstance(node, Mapping) or part not in node:
                    raise ArtifactError(
                        f"{source} has no `{path}` ({cls.__name__}.{field.name}): the export "
                        "was written by another rnnkit version; export the run again")
                node = node[part]
            values[field.name] = node
        return cls(**values)

    def to_manifest(self) -> dict[str, Any]:
        """The nested manifest entries of this spec (merge into the manifest)."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            *parents, leaf = _key(field).split(".")
            node = out
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = getattr(self, field.name)
        return out


def merge_manifest(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in recursively (dicts merged, other values replaced)."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge_manifest(base[key], value)
        else:
            base[key] = value
    return base
