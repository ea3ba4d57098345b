"""What a forecasting predictor reads from ``manifest.json`` (TF-free)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.runtime.spec import ManifestSpec, spec_field

GRAPH = "model"
INPUT_NAME = "window"
OUTPUT_NAME = "quantiles"


@dataclass(frozen=True)
class ForecastingSpec(ManifestSpec):
    """The window the graph reads, what it forecasts and how values are scaled.

    The graph sees ``(window - window[-1]) / scale`` and forecasts ``(y - window[-1]) / scale``
    for each quantile, so ``scale`` (the standard deviation of the training part's first
    differences) is the series' one scaling fact; ``round_digits`` is the rounding of the
    median path compared between Keras and every runtime variant.
    """

    series: str = spec_field("series.name")
    target_column: str = spec_field("series.target_column")
    period: int = spec_field("series.period")
    scale: float = spec_field("scaling.scale")
    offset: str = spec_field("scaling.offset")
    window: int = spec_field("task.window")
    horizon: int = spec_field("task.horizon")
    quantiles: list[float] = spec_field("task.quantiles")
    input_name: str = spec_field("task.input")
    output_name: str = spec_field("task.output")
    round_digits: int = spec_field("task.round_digits")
