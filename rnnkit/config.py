"""Typed dataclass configs with YAML and ``--set key=value`` overrides."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from rnnkit.errors import UserError

T = TypeVar("T")


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert ``value`` (a YAML value or a ``--set`` string) to ``annotation``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except UserError as error:
                errors.append(str(error))
        raise UserError(errors[0] if errors else f"`{key}` cannot be None.")
    if origin is typing.Literal:
        for allowed in args:
            if str(value) == str(allowed):
                return allowed
        raise UserError(f"`{key}` must be one of {list(args)}. Received: {key}={value!r}")
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [item for item in value.split(",") if item.strip() != ""]
        item_type = args[0] if args else str
        items = [_coerce(item, item_type, key) for item in value]
        return items if origin is list else tuple(items)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise UserError(f"`{key}` must be true or false. Received: {key}={value!r}")
    if annotation in (int, float):
        try:
            number = float(value) if annotation is float else int(str(value), 0)
        except (TypeError, ValueError):
            raise UserError(
                f"`{key}` must be {annotation.__name__}. Received: {key}={value!r}"
            ) from None
        return number
    if annotation is str:
        return str(value)
    if annotation is Path:
        return Path(value)
    return value


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {field.name: hints[field.name] for field in dataclasses.fields(cls)}


def choice_fields(cls: type) -> dict[str, tuple[Any, ...]]:
    """The config fields that take one of a fixed set of values (``Literal``), with the values."""
    return {name: typing.get_args(hint) for name, hint in _field_types(cls).items()
            if typing.get_origin(hint) is typing.Literal}


def apply_overrides(config: T, overrides: dict[str, Any]) -> T:
    """Return a copy of ``config`` with ``overrides`` applied (unknown keys are errors)."""
    types_by_name = _field_types(type(config))
    changes = {}
    for key, value in overrides.items():
        if key not in types_by_name:
            allowed = ", ".join(sorted(types_by_name))
            raise UserError(f"Unknown config key {key!r}. Allowed keys: {allowed}")
        changes[key] = _coerce(value, types_by_name[key], key)
    return dataclasses.replace(config, **changes)


def parse_set_arguments(pairs: list[str] | None) -> dict[str, str]:
    """Parse ``["units=64", "kind=gru"]`` into a dict."""
    result: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UserError(f"--set expects key=value. Received: {pair!r}")
        key, value = pair.split("=", 1)
        result[key.strip()] = value.strip()
    return result


def load_config(cls: type[T], yaml_path: str | Path | None = None,
                overrides: list[str] | dict[str, Any] | None = None) -> T:
    """Build ``cls()`` defaults, then apply a YAML file, then ``--set`` overrides."""
    config = cls()
    if yaml_path is not None:
        path = Path(yaml_path)
        if not path.is_file():
            raise UserError(f"Config file not found: {path}")
        import yaml

        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise UserError(f"Config file {path} is not valid YAML: {error}") from None
        if not isinstance(data, dict):
            raise UserError(f"Config file {path} must hold a mapping. Received: {type(data).__name__}")
        config = apply_overrides(config, data)
    if isinstance(overrides, dict):
        config = apply_overrides(config, overrides)
    elif overrides:
        config = apply_overrides(config, parse_set_arguments(overrides))
    return config


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-friendly dict of a dataclass config."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def save_config(config: Any, path: str | Path) -> None:
    Path(path).write_text(json.dumps(config_to_dict(config), indent=2) + "\n")


def read_config(cls: type[T], path: str | Path) -> T:
    """Read a config saved by :func:`save_config` (unknown keys are ignored)."""
    data = json.loads(Path(path).read_text())
    known = {field.name for field in dataclasses.fields(cls)}
    return apply_overrides(cls(), {k: v for k, v in data.items() if k in known})
