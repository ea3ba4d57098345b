"""Forecasting app: the ``Task`` (train / evaluate / export / predict) and its Keras predictor."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apps.forecasting import baselines
from apps.forecasting.config import ForecastingConfig
from apps.forecasting.data import (
    SPLITS,
    load_splits,
    read_csv_series,
    split_series,
    values_of,
    windows,
)
from apps.forecasting.runtime import ForecasterBase, round_digits, scale_windows
from apps.forecasting.spec import GRAPH, INPUT_NAME, OUTPUT_NAME, ForecastingSpec
from rnnkit.config import save_config
from rnnkit.errors import UserError
from rnnkit.task import CONFIG_FILE, ExportPlan, RunDir, Task

MODEL_FILE = "model.keras"
BASELINES = ("seasonal_naive", "naive", "ets", "arima")


class KerasForecaster(ForecasterBase):
    """The run directory's Keras model behind the same ``predict`` as the runtime predictor."""

    def __init__(self, run: RunDir):
        import keras

        import apps.forecasting.model  # noqa: F401 - registers the custom layer

        self.run = run
        self.config = run.config(ForecastingConfig)
        info = run.info
        if "scale" not in info:
            raise UserError(f"{run.path} is not a finished forecasting run (no scale in run.json)")
        self.scale = float(info["scale"])
        self.window = int(self.config.window)
        self.horizon = int(self.config.horizon)
        self.levels = [float(q) for q in self.config.quantiles]
        self.digits = round_digits(self.scale)
        self.model = keras.saving.load_model(
            run.require(MODEL_FILE, what="not a finished forecasting run"), compile=False)

    def run_scaled(self, inputs: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(inputs, training=False)[OUTPUT_NAME])


def recorded_values(run: RunDir) -> tuple[np.ndarray, list[str], dict[str, int]]:
    """The whole series from the recorded splits, its time labels and each split's size."""
    records = {name: run.split(name) for name in SPLITS}
    every = [r for name in SPLITS for r in records[name]]
    return (values_of(every), [r["time"] for r in every],
            {name: len(records[name]) for name in SPLITS})


# ---------------------------------------------------------------------------------------------
# train


def fit_run(config: ForecastingConfig, run: RunDir, data: str | None) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    from apps.forecasting.model import build_model, pinball_loss
    from rnnkit.training import fit, set_seed

    started = time.perf_counter()
    config, series, splits = load_splits(config, data)
    save_config(config, run.path / CONFIG_FILE)  # the resolved values evaluate/export read
    for name in SPLITS:
        run.record_split(name, splits[name])
    values = values_of([r for name in SPLITS for r in splits[name]])
    n_train, n_validation = len(splits["train"]), len(splits["validation"])
    scale = float(np.std(np.diff(values[:n_train])))
    if scale == 0.0:
        raise UserError(f"{series.name}: the training part is constant; nothing to forecast")
    run.update_info(series=series.name, target_column=series.target_column,
                    data=data or f"statsmodels.datasets ({config.series})", scale=scale,
                    points={name: len(splits[name]) for name in SPLITS})
    set_seed(config.seed)
    levels = list(config.quantiles)

    def dataset(first: int, last: int, shuffle: bool):
        x, y = windows(values, config.window, config.horizon, first, last)
        inputs, offsets = scale_windows(x, scale)
        targets = ((y - offsets[:, None]) / scale).astype(np.float32)
        ds = tf.data.Dataset.from_tensor_slices((inputs, {OUTPUT_NAME: targets}))
        if shuffle:
            ds = ds.shuffle(len(inputs), seed=config.seed, reshuffle_each_iteration=True)
        return ds.batch(config.batch_size), len(inputs)

    train, train_windows = dataset(0, n_train, shuffle=True)
    validation, validation_windows = dataset(n_train, n_train + n_validation, shuffle=False)
    model = build_model(config)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm),
                  loss={OUTPUT_NAME: pinball_loss(levels)})
    history = fit(model, train, validation, run_dir=run.path, epochs=config.epochs,
                  patience=config.patience, tensorboard=False, verbose=0)
    model.save(run.path / MODEL_FILE)
    best = int(np.argmin(history["val_loss"]))
    return {"series": series.name, "points": {name: len(splits[name]) for name in SPLITS},
            "train_windows": train_windows, "validation_windows": validation_windows,
            "epochs_run": len(history["loss"]), "best_epoch": best + 1,
            "best_val_pinball": float(history["val_loss"][best]), "scale": scale,
            "parameters": int(model.count_params()),
            "train_seconds": round(time.perf_counter() - started, 1)}


# ---------------------------------------------------------------------------------------------
# evaluate


def plot_forecasts(path: Path, times: list[str], values: np.ndarray, test_start: int,
                   starts: Sequence[int], quantiles: np.ndarray, levels: Sequence[float],
                   baseline: dict[str, np.ndarray], title: str) -> Path:
    """Two panels: one-step-ahead forecasts over the held-out tail with the outer quantile
    band, and the full-horizon forecast from the tail's first origin beside the baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    low, high = 0, len(levels) - 1
    middle = int(np.argmin([abs(q - 0.5) for q in levels]))
    band = f"{levels[low]:g}-{levels[high]:g} quantiles"
    context = max(0, test_start - 3 * quantiles.shape[1])
    axis_x = np.arange(len(values))
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7))
    step = np.asarray(starts)
    for ax in (top, bottom):
        ax.plot(axis_x[context:], values[context:], color="black", lw=1, label="actual")
        ax.axvline(test_start - 0.5, color="grey", ls=":", lw=1)
    top.fill_between(step, quantiles[:, 0, low], quantiles[:, 0, high], alpha=0.3,
                     color="tab:blue", label=band)
    top.plot(step, quantiles[:, 0, middle], color="tab:blue", lw=1.2, label="model median")
    top.set_title(f"{title}: one step ahead over the held-out tail")
    horizon = np.arange(starts[0], starts[0] + quantiles.shape[1])
    bottom.fill_between(horizon, quantiles[0, :, low], quantiles[0, :, high], alpha=0.3,
                        color="tab:blue", label=band)
    bottom.plot(horizon, quantiles[0, :, middle], color="tab:blue", lw=1.5, label="model median")
    for name, color in (("seasonal_naive", "tab:orange"), ("ets", "tab:green"),
                        ("arima", "tab:red")):
        bottom.plot(horizon, baseline[name][0], color=color, lw=1, ls="--", label=name)
    bottom.set_title(f"{title}: {quantiles.shape[1]} steps from {times[starts[0]]}")
    for ax in (top, bottom):
        ticks = ax.get_xticks()
        ax.set_xticks([t for t in ticks if 0 <= t < len(times)])
        ax.set_xticklabels([times[int(t)] for t in ax.get_xticks()], fontsize=8)
        ax.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def score_run(run: RunDir, data: str | None) -> dict[str, Any]:
    """Model vs seasonal-naive, naive, ETS and ARIMA on the held-out tail (rolling origins)."""
    predictor = KerasForecaster(run)
    config = predictor.config
    if data is None:
        values, times, sizes = recorded_values(run)
        source, title = "test split", str(run.info.get("series"))
    else:
        series = read_csv_series(data, config.time_column, config.target_column,
                                 config.window + config.horizon)
        parts = split_series(series, config)
        values, times = series.values, series.times
        sizes = {name: len(parts[name]) for name in SPLITS}
        source, title = str(data), series.name
    n_train, test_start = sizes["train"], sizes["train"] + sizes["validation"]
    horizon, period = config.horizon, config.period
    starts = baselines.origins(len(values), test_start, horizon)
    if not starts:
        raise UserError(f"{source}: the held-out tail is shorter than the horizon ({horizon})")
    actual = baselines.targets(values, starts, horizon)
    quantiles = predictor.forecast_windows(np.stack([values[t - config.window:t]
                                                     for t in starts]))
    median = quantiles[:, :, predictor.median_index]
    forecasts = {"model": median, **baselines.baseline_forecasts(
        values, test_start, starts, horizon, period, config.arima_order, config.arima_seasonal)}
    scale = baselines.mase_scale(values[:n_train], period)
    levels = predictor.levels
    metrics: dict[str, Any] = {
        "data": source, "series": title, "origins": len(starts), "horizon": horizon,
        "period": period, "test_points": sizes["test"],
        "mase_scale": scale,
    }
    for name, forecast in forecasts.items():
        metrics[name] = baselines.point_metrics(actual, forecast, scale)
        metrics[name]["one_step"] = baselines.point_metrics(actual[:, 0], forecast[:, 0], scale)
    for name in ("mae", "rmse", "mase", "smape"):
        metrics[name] = metrics["model"][name]
    for name in BASELINES:
        metrics[f"{name}_mase"] = metrics[name]["mase"]
    metrics["interval"] = {
        "quantiles": [levels[0], levels[-1]], "nominal": levels[-1] - levels[0],
        "coverage": baselines.coverage(actual, quantiles[..., 0], quantiles[..., -1]),
        "pinball": baselines.pinball(actual, quantiles, levels)}
    metrics["coverage"] = metrics["interval"]["coverage"]
    metrics["forecast_png"] = str(plot_forecasts(
        run.path / "plots" / "forecast.png", times, values, test_start, starts, quantiles,
        levels, forecasts, title))
    _print_summary(metrics)
    return metrics


def _print_summary(metrics: dict[str, Any]) -> None:
    lines = [f"forecasting {metrics['series']}: {metrics['origins']} origins x "
             f"{metrics['horizon']} steps on {metrics['data']}",
             f"{'':16}{'MAE':>10}{'RMSE':>10}{'MASE':>8}{'sMAPE %':>9}{'MASE h=1':>10}"]
    for name in ("model", *BASELINES):
        m = metrics[name]
        lines.append(f"{name:16}{m['mae']:>10.4g}{m['rmse']:>10.4g}{m['mase']:>8.3f}"
                     f"{m['smape']:>9.2f}{m['one_step']['mase']:>10.3f}")
    interval = metrics["interval"]
    lines.append(f"{interval['quantiles'][0]:g}-{interval['quantiles'][1]:g} interval coverage "
                 f"{interval['coverage']:.3f} (nominal {interval['nominal']:.2f}); plot: "
                 f"{metrics['forecast_png']}")
    print("\n".join(lines), file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# export

EVALUATE_KEYS = ("data", "series", "origins", "horizon", "mae", "rmse", "mase", "smape",
                 "coverage", "seasonal_naive_mase", "naive_mase", "ets_mase", "arima_mase")


def export_plan(run: RunDir, predictor: KerasForecaster) -> ExportPlan:
    config = predictor.config
    values, _, sizes = recorded_values(run)
    test_start = sizes["train"] + sizes["validation"]
    starts = baselines.origins(len(values), test_start, config.horizon)
    if not starts:
        raise UserError(f"{run.path} has no held-out origins to check the export on")
    histories = [values[t - config.window:t].tolist() for t in starts]
    scaled, _ = scale_windows(np.asarray(histories), predictor.scale)
    evaluated = run.metrics("evaluate")
    spec = ForecastingSpec(
        series=str(run.info["series"]), target_column=str(run.info["target_column"]),
        period=config.period, scale=predictor.scale, offset="last value of the window",
        window=config.window, horizon=config.horizon, quantiles=list(predictor.levels),
        input_name=INPUT_NAME, output_name=OUTPUT_NAME, round_digits=predictor.digits)

    actual = baselines.targets(values, starts, config.horizon)
    mase_scale = baselines.mase_scale(values[:sizes["train"]], config.period)

    def held_out(forecaster: ForecasterBase) -> dict[str, float]:
        quantiles = forecaster.forecast_windows(np.asarray(histories))
        return {"mase": baselines.point_metrics(
                    actual, quantiles[:, :, forecaster.median_index], mase_scale)["mase"],
                "coverage": baselines.coverage(actual, quantiles[..., 0], quantiles[..., -1])}

    def finalize(staging: Path, manifest: dict[str, Any]) -> None:
        from apps.forecasting.runtime import ForecastingPredictor
        from rnnkit.runtime import runtime_variants
        from rnnkit.task import variant_key

        # The held-out MASE and interval coverage of Keras and of every exported variant.
        figures = {"origins": len(starts), "keras": held_out(predictor)}
        for backend, quantization in runtime_variants(manifest):
            figures[variant_key(backend, quantization)] = held_out(
                ForecastingPredictor(staging, backend, quantization))
        manifest["metrics"]["test_origins"] = figures
        manifest["size_bytes"] = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())

    return ExportPlan(
        models={GRAPH: predictor.model}, spec=spec, keras_predictor=predictor,
        agreement_inputs=histories, agreement_source="held-out origins of the test split",
        tflite_shapes={GRAPH: {INPUT_NAME: (1, config.window, 1)}},
        parity_inputs={GRAPH: [{INPUT_NAME: scaled}, {INPUT_NAME: scaled[:1]}]},
        manifest_extra={
            "task": {"kind": config.kind, "units": config.units,
                     "num_layers": config.num_layers},
            "metrics": {"test_split": {k: evaluated[k] for k in EVALUATE_KEYS if k in evaluated}},
        },
        finalize=finalize)


# ---------------------------------------------------------------------------------------------
# the Task


class ForecastingTask(Task):
    name = "forecasting"
    description = ("time-series forecasting with quantile intervals (default: monthly CO2 from "
                   "statsmodels)")
    config_class = ForecastingConfig
    input_kind = "history"  # numbers separated by commas or spaces, at least `window` of them
    compared_output = "forecast_rounded"
    batch_rule = "all histories in one batch"
    runtime_module = "apps.forecasting.runtime"
    demo_order = 50
    demo_overrides = {"epochs": 20, "units": 32}
    headline_metrics = ("mase", "seasonal_naive_mase", "ets_mase", "arima_mase", "coverage")

    def fit(self, config: ForecastingConfig, run: RunDir, data: str | None) -> dict[str, Any]:
        return fit_run(config, run, data)

    def score(self, run: RunDir, data: str | None) -> dict[str, Any]:
        return score_run(run, data)

    def keras_predictor(self, run: RunDir) -> KerasForecaster:
        return KerasForecaster(run)

    def runtime_predictor(self, export_dir, backend="onnx", quantization="none",
                          num_threads=None):
        from apps.forecasting.runtime import ForecastingPredictor

        return ForecastingPredictor(export_dir, backend, quantization, num_threads)

    def export_plan(self, run: RunDir, formats: Sequence[str]) -> ExportPlan:
        return export_plan(run, KerasForecaster(run))


TASK = ForecastingTask()
