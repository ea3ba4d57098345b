"""The contract between the CLI and an application package (``apps/<name>``).

Each app exposes ``APP: AppSpec`` in ``apps/<name>/__init__.py``; the CLI,
``rnnkit demo`` and the tests only talk to apps through it.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.errors import UserError

# Every app the suite knows, in demo order. An app whose package is missing is skipped.
APP_NAMES: tuple[str, ...] = ("sentiment", "translation", "speech_to_text", "captioning")


@dataclass(frozen=True)
class AppSpec:
    """What an app provides.

    train(config, run_dir, data=None) -> metrics dict; writes the run directory.
    evaluate(run_dir, data=None) -> metrics dict (also written to run_dir/metrics.json).
    export(run_dir, out_dir, formats, quantize) -> manifest dict; writes out_dir atomically.
    predict(model_dir, inputs, options) -> one dict per input; model_dir is a run
        directory (Keras) or an export directory (runtime).
    """

    name: str
    description: str
    config_class: type
    train: Callable[..., dict[str, Any]]
    evaluate: Callable[..., dict[str, Any]]
    export: Callable[..., dict[str, Any]]
    predict: Callable[..., list[dict[str, Any]]]
    # Config overrides for the quick model trained by `rnnkit demo` (the shipped
    # model in exported/ uses the default config, i.e. no overrides).
    demo_overrides: dict[str, Any] = field(default_factory=dict)
    # Metric keys shown in the demo summary table, best first.
    headline_metrics: Sequence[str] = ()
    # What `predict` takes: "text", "audio file", "image file".
    input_kind: str = "text"


def available_apps() -> dict[str, AppSpec]:
    """The apps whose packages are present, by name."""
    apps = {}
    for name in APP_NAMES:
        try:
            module = importlib.import_module(f"apps.{name}")
        except ModuleNotFoundError as error:
            if error.name in (f"apps.{name}", "apps"):
                continue
            raise
        apps[name] = module.APP
    return apps


def get_app(name: str) -> AppSpec:
    apps = available_apps()
    if name not in apps:
        raise UserError(f"Unknown app {name!r}. Available: {', '.join(apps) or 'none'}")
    return apps[name]


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    """The ``run.json`` of a training run directory (names the app)."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise UserError(f"{run_dir} is not a training run directory (no run.json)")
    return json.loads(path.read_text())
