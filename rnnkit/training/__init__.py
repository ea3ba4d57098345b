"""Thin helpers over ``model.fit``: seeding, optimizer with clipping, callbacks, resume, plots,
and ``tf.distribute`` strategies (:mod:`rnnkit.training.distribute`).

The names are loaded on first use, so ``rnnkit.training.distribute``'s constants (the CLI's
choices) can be read without importing Keras.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "empty_dataset_error": "loop",
    "fit": "loop",
    "make_optimizer": "loop",
    "set_seed": "loop",
    "TimeLimit": "loop",
    "plot_curves": "plots",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f"rnnkit.training.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'rnnkit.training' has no attribute {name!r}")
