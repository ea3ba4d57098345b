"""Forecasting app configuration: one typed dataclass; YAML / ``--set key=value`` override it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class ForecastingConfig:
    """Defaults train the shipped model (exported/forecasting: monthly CO2) in under a minute
    on 2 CPU cores. Fields left ``None`` take the chosen series' own default
    (``apps/forecasting/data.py``: ``DEFAULT_SERIES``)."""

    # Data. Without --data: one of the statsmodels series below. With --data: a CSV with
    # `time_column` and one or more value columns; `target_column` is the one forecast.
    series: Literal["co2", "sunspots", "unemp"] = "co2"
    time_column: str = "time"
    target_column: str = "value"
    period: int | None = None  # seasonal period (seasonal-naive, MASE, ETS); --data default 1
    # Chronological split: the last `test_size` points are held out, the `validation_size`
    # before them pick the best epoch, the rest trains.
    test_size: int | None = None
    validation_size: int | None = None

    # Model: (window - last value) / scale -> RecurrentBlock -> Dense -> horizon x quantiles.
    window: int | None = None  # past values the model reads
    horizon: int | None = None  # steps forecast at once (1: many-to-one, next step only)
    quantiles: list[float] = field(default_factory=lambda: [0.1, 0.5, 0.9])
    kind: Literal["lstm", "gru", "rnn"] = "lstm"
    units: int = 64
    num_layers: int = 1
    dropout_rate: float = 0.1

    # Training (pinball loss averaged over quantiles and horizon steps).
    batch_size: int = 32
    epochs: int = 150
    patience: int = 25
    learning_rate: float = 2e-3
    clipnorm: float = 1.0
    seed: int = 1234

    # Baselines (evaluate), fitted on everything before the test part.
    arima_order: list[int] | None = None  # (p, d, q); None: the series' default
    arima_seasonal: bool | None = None  # add a (0, 1, 1, period) seasonal part
