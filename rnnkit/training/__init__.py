"""Thin helpers over ``model.fit``: seeding, optimizer with clipping, callbacks, resume, plots."""

from rnnkit.training.loop import (
    empty_dataset_error,
    fit,
    make_optimizer,
    prepare_run_dir,
    set_seed,
)
from rnnkit.training.plots import plot_curves

__all__ = [
    "empty_dataset_error",
    "fit",
    "make_optimizer",
    "plot_curves",
    "prepare_run_dir",
    "set_seed",
]
