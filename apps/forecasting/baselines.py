"""Forecast metrics and the classical baselines the model is compared with.

All forecasts are rolling-origin: from every origin ``t`` of the held-out tail (with
``t + horizon`` still inside it) each method forecasts ``y[t:t+horizon]`` from ``y[:t]`` only.
The baselines: seasonal-naive (the value one period earlier), naive (the last value), ETS
(additive trend, additive seasonality when ``period > 1``) and ARIMA, both statsmodels state
space models fitted once on everything before the tail and then run forward with the fitted
parameters to each origin.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np


def mase_scale(train: np.ndarray, period: int) -> float:
    """Mean absolute in-sample seasonal-naive error of the training part (MASE's divisor)."""
    if len(train) <= period:
        raise ValueError(f"MASE needs more than {period} training points. Received: {len(train)}")
    scale = float(np.mean(np.abs(train[period:] - train[:-period])))
    if scale == 0.0:
        raise ValueError("The training part's seasonal-naive error is 0 (a constant series)")
    return scale


def point_metrics(actual: np.ndarray, forecast: np.ndarray, scale: float) -> dict[str, float]:
    """MAE, RMSE, MASE (``scale``: :func:`mase_scale`) and sMAPE (percent) over all cells."""
    actual = np.asarray(actual, dtype=np.float64)
    forecast = np.asarray(forecast, dtype=np.float64)
    error = forecast - actual
    denominator = np.abs(actual) + np.abs(forecast)
    ratio = np.divide(2 * np.abs(error), denominator, out=np.zeros_like(error),
                      where=denominator > 0)
    mae = float(np.mean(np.abs(error)))
    return {"mae": mae, "rmse": float(np.sqrt(np.mean(error ** 2))), "mase": mae / scale,
            "smape": 100.0 * float(np.mean(ratio))}


def pinball(actual: np.ndarray, quantiles: np.ndarray, levels: Sequence[float]) -> float:
    """Mean pinball loss of ``quantiles`` ``(..., Q)`` for ``actual`` ``(...)``."""
    diff = np.asarray(actual)[..., None] - quantiles
    levels = np.asarray(levels)
    return float(np.mean(np.maximum(levels * diff, (levels - 1) * diff)))


def coverage(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    return float(np.mean((actual >= low) & (actual <= high)))


def origins(length: int, test_start: int, horizon: int) -> list[int]:
    """Forecast origins of the held-out tail: every t with y[t:t+horizon] inside it."""
    return list(range(test_start, length - horizon + 1))


def targets(values: np.ndarray, starts: Sequence[int], horizon: int) -> np.ndarray:
    return np.stack([values[t:t + horizon] for t in starts])


def seasonal_naive(values: np.ndarray, starts: Sequence[int], horizon: int,
                   period: int) -> np.ndarray:
    """``y[t + h]`` forecast as the last observed value of the same season."""
    out = np.zeros((len(starts), horizon))
    for row, t in enumerate(starts):
        for h in range(horizon):
            out[row, h] = values[t + h - period * (h // period + 1)]
    return out


def _state_space_forecasts(results: Any, values: np.ndarray, starts: Sequence[int],
                           horizon: int) -> np.ndarray:
    out = np.zeros((len(starts), horizon))
    for row, t in enumerate(starts):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[row] = np.asarray(results.apply(values[:t]).forecast(horizon))
    return out


def fit_ets(train: np.ndarray, period: int) -> Any:
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

    model = ExponentialSmoothing(train, trend=True,
                                 seasonal=period if period > 1 else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(disp=False)


def fit_arima(train: np.ndarray, order: Sequence[int], period: int, seasonal: bool) -> Any:
    from statsmodels.tsa.arima.model import ARIMA

    seasonal_order = (0, 1, 1, period) if seasonal and period > 1 else (0, 0, 0, 0)
    trend = "t" if order[1] == 1 and seasonal_order[1] == 0 else (
        "c" if order[1] == 0 and seasonal_order[1] == 0 else "n")
    model = ARIMA(train, order=tuple(order), seasonal_order=seasonal_order, trend=trend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit()


def baseline_forecasts(values: np.ndarray, history_end: int, starts: Sequence[int],
                       horizon: int, period: int, arima_order: Sequence[int],
                       arima_seasonal: bool) -> dict[str, np.ndarray]:
    """Point forecasts ``(len(starts), horizon)`` of every baseline; ETS and ARIMA are fitted on
    ``values[:history_end]``."""
    fitted_on = values[:history_end]
    forecasts = {"seasonal_naive": seasonal_naive(values, starts, horizon, period),
                 "naive": seasonal_naive(values, starts, horizon, 1)}
    forecasts["ets"] = _state_space_forecasts(fit_ets(fitted_on, period), values, starts,
                                              horizon)
    forecasts["arima"] = _state_space_forecasts(
        fit_arima(fitted_on, arima_order, period, arima_seasonal), values, starts, horizon)
    return forecasts
