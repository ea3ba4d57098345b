"""Forecasting data: the default statsmodels series, the CSV reader and the chronological split.

Every series is a list of (time label, value) points in time order. The split is chronological:
the last ``test_size`` points are the held-out tail, the ``validation_size`` before them the
validation part, the rest the training part (``RunDir.record_split`` keeps all three, so
evaluate and export read back exactly what training used).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.errors import UserError

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SeriesDefaults:
    """What a series fixes when the config leaves a field ``None``."""

    period: int
    window: int
    horizon: int
    test_size: int
    validation_size: int
    arima_order: tuple[int, int, int]
    arima_seasonal: bool
    description: str


DEFAULT_SERIES: dict[str, SeriesDefaults] = {
    # Weekly Mauna Loa CO2 1958-2001 (statsmodels.datasets.co2) averaged per month; the five
    # months with no reading are linearly interpolated. Held out: the last 5 years.
    "co2": SeriesDefaults(period=12, window=36, horizon=12, test_size=60, validation_size=60,
                          arima_order=(1, 1, 1), arima_seasonal=True,
                          description="monthly mean CO2 at Mauna Loa (ppm), 1958-2001"),
    # Yearly sunspot numbers 1700-2008 (statsmodels.datasets.sunspots); an 11-year cycle.
    "sunspots": SeriesDefaults(period=11, window=33, horizon=11, test_size=33,
                               validation_size=33, arima_order=(3, 0, 1), arima_seasonal=False,
                               description="yearly sunspot activity, 1700-2008"),
    # US quarterly unemployment rate 1959-2009 (statsmodels.datasets.macrodata, seasonally
    # adjusted, so the lag-4 "seasonal" naive is a year-ago naive). Held out: the last 6 years.
    "unemp": SeriesDefaults(period=4, window=16, horizon=4, test_size=24, validation_size=24,
                            arima_order=(2, 1, 0), arima_seasonal=False,
                            description="US quarterly unemployment rate (%), 1959-2009"),
}

CSV_DEFAULTS = SeriesDefaults(period=1, window=24, horizon=6, test_size=0, validation_size=0,
                              arima_order=(1, 1, 1), arima_seasonal=False,
                              description="user CSV")


@dataclass(frozen=True)
class Series:
    name: str
    times: list[str]
    values: np.ndarray  # float64 (N,)
    target_column: str

    def __len__(self) -> int:
        return len(self.values)


def load_default_series(name: str) -> Series:
    """One of ``DEFAULT_SERIES`` from the datasets inside the statsmodels wheel (no download)."""
    if name not in DEFAULT_SERIES:
        raise UserError(f"Unknown series {name!r}. Available: {', '.join(DEFAULT_SERIES)}")
    from statsmodels import datasets

    if name == "co2":
        weekly = datasets.co2.load_pandas().data["co2"]
        monthly = weekly.resample("MS").mean().interpolate("linear")
        times = [t.strftime("%Y-%m") for t in monthly.index]
        return Series(name, times, monthly.to_numpy(dtype=np.float64), "co2")
    if name == "sunspots":
        frame = datasets.sunspots.load_pandas().data
        times = [str(int(y)) for y in frame["YEAR"]]
        return Series(name, times, frame["SUNACTIVITY"].to_numpy(dtype=np.float64),
                      "SUNACTIVITY")
    frame = datasets.macrodata.load_pandas().data
    times = [f"{int(y)}Q{int(q)}" for y, q in zip(frame["year"], frame["quarter"], strict=True)]
    return Series(name, times, frame["unemp"].to_numpy(dtype=np.float64), "unemp")


def _time_key(text: str) -> Any:
    """A sortable key of a time label (number or ISO date), or None if it is neither."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time())
    except ValueError:
        return None


def read_csv_series(path: str | Path, time_column: str, target_column: str,
                    min_length: int) -> Series:
    """The ``target_column`` of a CSV with a header, in file order.

    UserErrors: a missing column (the columns are listed), an empty or non-numeric value (its
    line is named), times that are numbers/dates but not strictly increasing, fewer than
    ``min_length`` points.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        for column, what in ((time_column, "time_column"), (target_column, "target_column")):
            if column not in columns:
                raise UserError(f"{path}: no column {column!r} (config `{what}`). "
                                f"Columns: {', '.join(columns) or 'none'}")
        times, values = [], []
        for line, row in enumerate(reader, start=2):
            text = (row.get(target_column) or "").strip()
            try:
                value = float(text)
            except ValueError:
                raise UserError(f"{path}:{line}: {target_column!r} must be a number. "
                                f"Received: {text!r}") from None
            if not math.isfinite(value):
                raise UserError(f"{path}:{line}: {target_column!r} must be finite. "
                                f"Received: {text!r}")
            times.append((row.get(time_column) or "").strip())
            values.append(value)
    if len(values) < min_length:
        raise UserError(f"{path}: the series has {len(values)} points; this config needs at "
                        f"least {min_length} (window + horizon + the validation and test parts)")
    keys = [_time_key(t) for t in times]
    if all(k is not None for k in keys) and len({type(k) for k in keys}) == 1:
        for line, (before, after) in enumerate(zip(keys, keys[1:], strict=False), start=3):
            if not after > before:
                raise UserError(f"{path}:{line}: times must be strictly increasing "
                                f"({time_column!r} {times[line - 3]!r} then {times[line - 2]!r})")
    return Series(path.stem, times, np.asarray(values, dtype=np.float64), target_column)


def resolve(config: Any, data: str | None) -> Any:
    """``config`` with every ``None`` field filled from the series' defaults (checked)."""
    defaults = CSV_DEFAULTS if data is not None else DEFAULT_SERIES[config.series]
    changes = {name: getattr(defaults, name) for name in
               ("period", "window", "horizon", "test_size", "validation_size",
                "arima_seasonal") if getattr(config, name) is None}
    if config.arima_order is None:
        changes["arima_order"] = list(defaults.arima_order)
    config = replace(config, **changes)
    for name in ("period", "window", "horizon"):
        if getattr(config, name) < 1:
            raise UserError(f"`{name}` must be >= 1. Received: {name}={getattr(config, name)}")
    if len(config.arima_order) != 3 or min(config.arima_order) < 0:
        raise UserError(f"`arima_order` must be three integers >= 0 (p, d, q). "
                        f"Received: {config.arima_order}")
    levels = list(config.quantiles)
    if not levels or levels != sorted(set(levels)) or not all(0 < q < 1 for q in levels):
        raise UserError(f"`quantiles` must be increasing, distinct and within (0, 1). "
                        f"Received: {levels}")
    return config


def held_out_sizes(config: Any, length: int) -> tuple[int, int]:
    """(validation, test) sizes: the config's, or for user data 15 % each (at least a horizon)."""
    test = config.test_size or max(config.horizon, round(0.15 * length))
    validation = config.validation_size or max(config.horizon, round(0.15 * length))
    return validation, test


def min_length(config: Any) -> int:
    """The shortest series the config can split: a few training windows, validation and test
    parts of at least one horizon each."""
    return config.window + config.horizon + 8 + 2 * config.horizon


def split_series(series: Series, config: Any) -> dict[str, list[dict[str, Any]]]:
    """The chronological train / validation / test records (``{"time", "value"}``)."""
    validation, test = held_out_sizes(config, len(series))
    if test < config.horizon or validation < config.horizon:
        raise UserError(f"`test_size` and `validation_size` must be >= horizon "
                        f"({config.horizon}). Received: {test}, {validation}")
    train = len(series) - validation - test
    if train < config.window + config.horizon + 8:
        raise UserError(f"{series.name}: {len(series)} points leave {train} for training; the "
                        f"config needs at least {config.window + config.horizon + 8} there "
                        f"(window {config.window} + horizon {config.horizon} + 8)")
    records = [{"time": t, "value": float(v)} for t, v in zip(series.times, series.values,
                                                              strict=True)]
    return {"train": records[:train], "validation": records[train:train + validation],
            "test": records[train + validation:]}


def load_splits(config: Any, data: str | None) -> tuple[Any, Series, dict[str, list[dict]]]:
    """(resolved config, series, split records) of the default series or a user CSV."""
    config = resolve(config, data)
    if data is None:
        series = load_default_series(config.series)
    else:
        series = read_csv_series(data, config.time_column, config.target_column,
                                 min_length(config))
    return config, series, split_series(series, config)


def values_of(records: list[dict[str, Any]]) -> np.ndarray:
    return np.asarray([r["value"] for r in records], dtype=np.float64)


def windows(values: np.ndarray, window: int, horizon: int, first_target: int,
            last_target: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (window, next ``horizon`` values) pair whose targets lie in
    ``values[first_target:last_target]``: ``(N, window)``, ``(N, horizon)``."""
    starts = range(max(first_target, window), last_target - horizon + 1)
    x = np.stack([values[t - window:t] for t in starts]) if len(starts) else np.zeros((0, window))
    y = np.stack([values[t:t + horizon] for t in starts]) if len(starts) else np.zeros((0, horizon))
    return x, y
