"""Forecasting inference on an export directory, without TensorFlow.

Uses only ``rnnkit.runtime`` (ONNX Runtime / LiteRT), numpy and the manifest's
``ForecastingSpec``: the scaling is the training one (offset by the window's last value,
divided by the recorded ``scale``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apps.forecasting.spec import GRAPH, ForecastingSpec
from rnnkit.errors import UserError


def parse_history(value: Any, window: int) -> np.ndarray:
    """The last ``window`` values of one history: a sequence of numbers or a string of numbers
    separated by commas or spaces. A UserError if it is shorter or holds a non-number."""
    if isinstance(value, str):
        parts = [p for p in value.replace(",", " ").split() if p]
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            bad = next(p for p in parts if not _is_float(p))
            raise UserError(f"A history must be numbers separated by commas or spaces. "
                            f"Received: {bad!r}") from None
    else:
        numbers = [float(v) for v in value]
    array = np.asarray(numbers, dtype=np.float64)
    if array.size < window:
        raise UserError(f"A history needs at least {window} values (the model's window). "
                        f"Received: {array.size}")
    if not np.all(np.isfinite(array)):
        raise UserError("A history must hold finite numbers only (no NaN/inf)")
    return array[-window:]


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def scale_windows(windows: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Graph input ``(N, L, 1)`` float32 and the offsets ``(N,)`` of raw windows ``(N, L)``."""
    offsets = windows[:, -1].astype(np.float64)
    scaled = (windows - offsets[:, None]) / scale
    return scaled[:, :, None].astype(np.float32), offsets


def unscale(outputs: np.ndarray, offsets: np.ndarray, scale: float) -> np.ndarray:
    """Raw-unit quantiles ``(N, H, Q)`` from the graph's scaled ones."""
    return offsets[:, None, None] + scale * outputs.astype(np.float64)


def round_digits(scale: float) -> int:
    """Decimals that round the median path to about a tenth of ``scale`` (at least 0)."""
    return max(0, 1 - math.floor(math.log10(scale)))


def format_forecast(quantiles: np.ndarray, levels: Sequence[float], digits: int
                    ) -> dict[str, Any]:
    """One result: the median path, the path rounded to ``digits`` decimals and every quantile."""
    median = quantiles[:, _median_index(levels)]
    return {
        "forecast": [float(v) for v in median],
        "forecast_rounded": [round(float(v), digits) for v in median],
        "quantiles": {f"{q:g}": [float(v) for v in quantiles[:, i]]
                      for i, q in enumerate(levels)},
    }


def _median_index(levels: Sequence[float]) -> int:
    return int(np.argmin([abs(q - 0.5) for q in levels]))


class ForecasterBase:
    """Shared history → forecast logic of the Keras and the runtime predictors."""

    window: int
    scale: float
    levels: list[float]
    digits: int

    def run_scaled(self, inputs: np.ndarray) -> np.ndarray:
        """Scaled quantiles ``(N, H, Q)`` for graph inputs ``(N, L, 1)``."""
        raise NotImplementedError

    def forecast_windows(self, windows: np.ndarray) -> np.ndarray:
        """Raw-unit quantiles ``(N, H, Q)`` for raw windows ``(N, L)``."""
        windows = np.asarray(windows, dtype=np.float64)
        if windows.ndim != 2 or windows.shape[1] != self.window:
            raise UserError(f"Windows must have shape (N, {self.window}). "
                            f"Received: {windows.shape}")
        inputs, offsets = scale_windows(windows, self.scale)
        return unscale(self.run_scaled(inputs), offsets, self.scale)

    @property
    def median_index(self) -> int:
        return _median_index(self.levels)

    def predict(self, histories: Sequence[Any]) -> list[dict[str, Any]]:
        if isinstance(histories, str):
            histories = [histories]
        windows = np.stack([parse_history(h, self.window) for h in histories])
        quantiles = self.forecast_windows(windows)
        return [format_forecast(q, self.levels, self.digits) for q in quantiles]


class ForecastingPredictor(ForecasterBase):
    """Load once, predict many:
    ``ForecastingPredictor("exported/forecasting").predict(["315.4, 316.2, ..."])``."""

    def __init__(self, export_dir: str | os.PathLike, backend: str = "onnx",
                 quantization: str = "none", num_threads: int | None = None):
        from rnnkit import runtime

        self.export_dir = Path(export_dir)
        self.model = runtime.load(self.export_dir, backend=backend, quantization=quantization,
                                  num_threads=num_threads)
        self.spec = ForecastingSpec.from_manifest(self.model.manifest,
                                                  str(self.export_dir / "manifest.json"))
        self.window = int(self.spec.window)
        self.horizon = int(self.spec.horizon)
        self.scale = float(self.spec.scale)
        self.levels = [float(q) for q in self.spec.quantiles]
        self.digits = int(self.spec.round_digits)

    def run_scaled(self, inputs: np.ndarray) -> np.ndarray:
        return self.model.run(GRAPH, {self.spec.input_name: inputs})[self.spec.output_name]
