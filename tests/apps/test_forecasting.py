"""Forecasting app: the statsmodels series, the CSV reader and its errors, the chronological
split, metrics and baselines, the quantile head, a TF-free runtime, an end-to-end tiny run on
a CSV (train → evaluate → export → runtime predict vs Keras) and the shipped export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit.errors import ArtifactError, UserError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "exported" / "forecasting"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _write_csv(path: Path, rows: list[list[object]], header=("time", "value", "other")) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _seasonal_series(length: int, period: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return 10 + 0.05 * t + 2 * np.sin(2 * np.pi * t / period) + 0.1 * rng.standard_normal(length)


# ------------------------------------------------------------------------------ data


@pytest.mark.parametrize(("name", "length", "first", "last"), [
    ("co2", 526, "1958-03", "2001-12"), ("sunspots", 309, "1700", "2008"),
    ("unemp", 203, "1959Q1", "2009Q3")])
def test_default_series_come_from_the_statsmodels_wheel(name, length, first, last):
    from apps.forecasting.data import load_default_series

    series = load_default_series(name)
    assert len(series) == length and len(series.times) == length
    assert (series.times[0], series.times[-1]) == (first, last)
    assert np.all(np.isfinite(series.values))


def test_split_is_chronological_with_the_series_defaults():
    from apps.forecasting.config import ForecastingConfig
    from apps.forecasting.data import load_splits

    config, series, splits = load_splits(ForecastingConfig(series="co2"), None)
    assert (config.period, config.window, config.horizon) == (12, 36, 12)
    sizes = {name: len(records) for name, records in splits.items()}
    assert sizes == {"train": 406, "validation": 60, "test": 60}
    times = [r["time"] for name in ("train", "validation", "test") for r in splits[name]]
    assert times == series.times  # contiguous, in order, the test part is the last 5 years
    assert splits["test"][-1]["time"] == "2001-12"


def test_csv_reader_takes_the_target_column_in_file_order(tmp_path):
    from apps.forecasting.data import read_csv_series

    path = _write_csv(tmp_path / "s.csv", [["2020-01-01", 1.5, 9], ["2020-01-02", 2.5, 8],
                                           ["2020-01-03", 3.0, 7]])
    series = read_csv_series(path, "time", "other", min_length=3)
    assert series.values.tolist() == [9.0, 8.0, 7.0]
    assert series.times == ["2020-01-01", "2020-01-02", "2020-01-03"]


@pytest.mark.parametrize(("rows", "column", "message"), [
    ([[1, 1.0, 0]] * 3, "sales", r"no column 'sales' \(config `target_column`\). Columns: time, "
                                 r"value, other"),
    ([[1, 1.0, 0], [2, "n/a", 0], [3, 2.0, 0]], "value", r"s.csv:3: 'value' must be a number. "
                                                         r"Received: 'n/a'"),
    ([[1, 1.0, 0], [2, "", 0], [3, 2.0, 0]], "value", r"s.csv:3: 'value' must be a number"),
    ([[1, 1.0, 0], [2, "inf", 0], [3, 2.0, 0]], "value", r"s.csv:3: 'value' must be finite"),
    ([[1, 1.0, 0], [2, 2.0, 0]], "value", r"the series has 2 points; this config needs at "
                                          r"least 3"),
    ([[1, 1.0, 0], [3, 2.0, 0], [2, 2.0, 0]], "value", r"s.csv:4: times must be strictly "
                                                       r"increasing"),
])
def test_csv_reader_errors_name_the_problem(tmp_path, rows, column, message):
    from apps.forecasting.data import read_csv_series

    path = _write_csv(tmp_path / "s.csv", rows)
    with pytest.raises(UserError, match=message):
        read_csv_series(path, "time", column, min_length=3)


def test_csv_without_the_time_column_is_a_user_error(tmp_path):
    from apps.forecasting.data import read_csv_series

    path = _write_csv(tmp_path / "s.csv", [[1, 2, 3]], header=("date", "value", "x"))
    with pytest.raises(UserError, match=r"no column 'time' \(config `time_column`\)"):
        read_csv_series(path, "time", "value", min_length=1)


def test_config_checks_and_too_short_training_part(tmp_path):
    from apps.forecasting.config import ForecastingConfig
    from apps.forecasting.data import load_splits

    with pytest.raises(UserError, match="`quantiles` must be increasing"):
        load_splits(ForecastingConfig(quantiles=[0.9, 0.1]), None)
    with pytest.raises(UserError, match="`horizon` must be >= 1"):
        load_splits(ForecastingConfig(horizon=0), None)
    path = _write_csv(tmp_path / "s.csv", [[i, v, 0] for i, v in enumerate(_seasonal_series(60))])
    with pytest.raises(UserError, match="leave 24 for training"):
        load_splits(ForecastingConfig(window=24, horizon=6, test_size=18, validation_size=18),
                    str(path))


def test_windows_pair_each_history_with_the_next_horizon():
    from apps.forecasting.data import windows

    values = np.arange(20.0)
    x, y = windows(values, window=4, horizon=3, first_target=10, last_target=15)
    assert x.tolist() == [[6, 7, 8, 9], [7, 8, 9, 10], [8, 9, 10, 11]]
    assert y.tolist() == [[10, 11, 12], [11, 12, 13], [12, 13, 14]]


# ------------------------------------------------------------------------------ metrics, baselines


def test_point_metrics_on_known_errors():
    from apps.forecasting.baselines import mase_scale, point_metrics

    actual = np.array([[1.0, 2.0], [3.0, 4.0]])
    forecast = np.array([[2.0, 2.0], [3.0, 2.0]])
    scale = mase_scale(np.array([0.0, 2.0, 4.0, 6.0]), period=1)
    assert scale == 2.0
    metrics = point_metrics(actual, forecast, scale)
    assert metrics["mae"] == pytest.approx(0.75)
    assert metrics["rmse"] == pytest.approx(np.sqrt(5 / 4))
    assert metrics["mase"] == pytest.approx(0.375)
    assert metrics["smape"] == pytest.approx(100 * (2 / 3 + 0 + 0 + 4 / 6) / 4)
    with pytest.raises(ValueError, match="constant series"):
        mase_scale(np.ones(10), period=2)


def test_seasonal_naive_repeats_the_last_season():
    from apps.forecasting.baselines import origins, seasonal_naive

    values = np.arange(30.0)
    starts = origins(len(values), test_start=20, horizon=5)
    assert starts == list(range(20, 26))
    forecast = seasonal_naive(values, starts, horizon=5, period=3)
    # From origin 20: steps 0..2 repeat values 17..19, steps 3..4 repeat 17..18 again.
    assert forecast[0].tolist() == [17, 18, 19, 17, 18]
    periodic = np.tile([1.0, 5.0, 2.0, 7.0], 10)
    exact = seasonal_naive(periodic, origins(40, 32, 4), 4, 4)
    assert np.array_equal(exact, np.stack([periodic[t:t + 4] for t in range(32, 37)]))


def test_ets_and_arima_fit_the_training_part_and_beat_naive_on_a_seasonal_trend():
    from apps.forecasting.baselines import baseline_forecasts, origins, point_metrics, targets

    values = _seasonal_series(160)
    starts = origins(len(values), 136, 6)
    actual = targets(values, starts, 6)
    forecasts = baseline_forecasts(values, 136, starts, 6, period=12, arima_order=(1, 1, 1),
                                   arima_seasonal=True)
    assert set(forecasts) == {"seasonal_naive", "naive", "ets", "arima"}
    mae = {name: point_metrics(actual, f, 1.0)["mae"] for name, f in forecasts.items()}
    assert mae["ets"] < mae["naive"] and mae["arima"] < mae["naive"]
    assert mae["ets"] < 0.3 and mae["arima"] < 0.3  # the noise is 0.1; the trend 0.6/season


def test_interval_coverage_and_pinball():
    from apps.forecasting.baselines import coverage, pinball

    actual = np.array([0.0, 1.0, 2.0, 3.0])
    assert coverage(actual, np.full(4, 0.5), np.full(4, 2.5)) == 0.5
    quantiles = np.stack([actual - 1, actual, actual + 1], axis=-1)
    assert pinball(actual, quantiles, [0.1, 0.5, 0.9]) == pytest.approx((0.1 + 0 + 0.1) / 3)


# ------------------------------------------------------------------------------ model, runtime


@pytest.mark.parametrize("horizon", [1, 3])
def test_quantile_head_never_crosses_and_pinball_loss_matches_numpy(horizon):
    from apps.forecasting.baselines import pinball
    from apps.forecasting.config import ForecastingConfig
    from apps.forecasting.model import build_model, pinball_loss

    config = ForecastingConfig(window=8, horizon=horizon, units=4, quantiles=[0.1, 0.5, 0.9])
    model = build_model(config)
    x = np.random.default_rng(0).standard_normal((5, 8, 1)).astype("float32") * 10
    out = np.asarray(model(x)["quantiles"])
    assert out.shape == (5, horizon, 3)
    assert np.all(np.diff(out, axis=-1) > 0)
    y = np.random.default_rng(1).standard_normal((5, horizon)).astype("float32")
    loss = float(np.mean(np.asarray(pinball_loss([0.1, 0.5, 0.9])(y, out))))
    assert loss == pytest.approx(pinball(y, out, [0.1, 0.5, 0.9]), rel=1e-5)


def test_runtime_predictor_imports_without_tensorflow():
    from rnnkit.task import get_task

    module = get_task("forecasting").runtime_module
    code = (f"import sys, rnnkit.task, {module}; "
            "bad = [m for m in ('tensorflow', 'keras', 'tf2onnx', 'statsmodels') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_history_parsing_and_scaling():
    from apps.forecasting.runtime import parse_history, round_digits, scale_windows, unscale

    assert parse_history("1, 2 3,4", 3).tolist() == [2.0, 3.0, 4.0]
    assert parse_history([5, 6], 2).tolist() == [5.0, 6.0]
    with pytest.raises(UserError, match="at least 4 values"):
        parse_history("1,2,3", 4)
    with pytest.raises(UserError, match="Received: 'x'"):
        parse_history("1,x,3", 2)
    with pytest.raises(UserError, match="finite"):
        parse_history([1.0, float("nan")], 2)
    windows = np.array([[1.0, 3.0, 5.0], [10.0, 10.0, 12.0]])
    scaled, offsets = scale_windows(windows, 2.0)
    assert scaled.shape == (2, 3, 1) and scaled[:, -1, 0].tolist() == [0.0, 0.0]
    assert scaled[0, :, 0].tolist() == [-2.0, -1.0, 0.0]
    assert unscale(np.ones((2, 1, 1)), offsets, 2.0)[:, 0, 0].tolist() == [7.0, 14.0]
    assert (round_digits(1.16), round_digits(20.0), round_digits(0.3)) == (1, 0, 2)


# ------------------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_train_evaluate_export_predict_on_a_csv(tmp_path):
    from apps.forecasting.config import ForecastingConfig
    from apps.forecasting.runtime import ForecastingPredictor
    from apps.forecasting.spec import ForecastingSpec
    from apps.forecasting.task import TASK
    from rnnkit.cli import main

    values = _seasonal_series(150)
    path = _write_csv(tmp_path / "shop.csv",
                      [[f"t{i}", round(v, 4), i] for i, v in enumerate(values)])
    config = ForecastingConfig(target_column="value", period=12, window=24, horizon=6,
                               test_size=24, validation_size=18, units=8, epochs=3, patience=3)
    run_dir = tmp_path / "run"
    train = TASK.train(config, run_dir, data=path)
    assert train["points"] == {"train": 108, "validation": 18, "test": 24}
    assert train["train_windows"] == 108 - 24 - 6 + 1
    metrics = TASK.evaluate(run_dir)
    assert metrics["origins"] == 24 - 6 + 1 and metrics["horizon"] == 6
    for name in ("model", "seasonal_naive", "naive", "ets", "arima"):
        assert set(metrics[name]) >= {"mae", "rmse", "mase", "smape", "one_step"}
    assert 0.0 <= metrics["coverage"] <= 1.0
    assert Path(metrics["forecast_png"]).stat().st_size > 10_000
    # Evaluate with --data reads the same CSV and splits it the same way.
    again = TASK.evaluate(run_dir, data=path)
    assert again["mase"] == pytest.approx(metrics["mase"])

    out = tmp_path / "export"
    manifest = TASK.export(run_dir, out)
    assert manifest["formats"] == ["saved_model", "onnx", "tflite"]
    vs_keras = manifest["agreement"]["vs_keras"]
    assert manifest["agreement"]["compared"] == "forecast_rounded"
    assert vs_keras["onnx/none"] == 1.0 and vs_keras["tflite/none"] == 1.0
    assert set(vs_keras) == {"onnx/none", "onnx/int8", "tflite/none", "tflite/int8",
                             "tflite/float16"}
    assert manifest["parity"]["model"]["onnx"]["none"] < 1e-4
    held_out = manifest["metrics"]["test_origins"]
    assert held_out["onnx/none"]["mase"] == pytest.approx(held_out["keras"]["mase"], rel=1e-4)
    assert held_out["keras"]["mase"] == pytest.approx(metrics["mase"], rel=1e-6)
    spec = ForecastingSpec.from_manifest(manifest)
    assert (spec.window, spec.horizon, spec.period) == (24, 6, 12)

    history = ",".join(str(v) for v in values[-30:])
    keras_result = TASK.predict(run_dir, [history])[0]
    for backend in ("onnx", "tflite"):
        result = TASK.predict(out, [history], {"backend": backend})[0]
        assert len(result["forecast"]) == 6
        assert np.allclose(result["forecast"], keras_result["forecast"], atol=1e-4)
        assert all(lo <= mid <= hi for lo, mid, hi in zip(
            result["quantiles"]["0.1"], result["forecast"], result["quantiles"]["0.9"],
            strict=True))
    with pytest.raises(UserError, match="at least 24 values"):
        TASK.predict(out, ["1,2,3"])
    # A manifest missing a spec field fails naming it (no fallback to a config default).
    broken = json.loads((out / "manifest.json").read_text())
    del broken["scaling"]["scale"]
    (out / "manifest.json").write_text(json.dumps(broken))
    with pytest.raises(ArtifactError, match="`scaling.scale`"):
        ForecastingPredictor(out)
    # The CLI turns a bad CSV column into "error: ..." and exit code 2.
    code = main(["forecasting", "train", "--data", str(path), "--set", "target_column=sales",
                 "--run-dir", str(tmp_path / "bad")])
    assert code == 2


@pytest.mark.slow
def test_many_to_one_next_step_model_on_a_default_series(tmp_path):
    from apps.forecasting.config import ForecastingConfig
    from apps.forecasting.task import TASK

    config = ForecastingConfig(series="unemp", horizon=1, units=8, epochs=2, patience=2)
    train = TASK.train(config, tmp_path / "run")
    assert train["points"] == {"train": 155, "validation": 24, "test": 24}
    metrics = TASK.evaluate(tmp_path / "run")
    assert metrics["horizon"] == 1 and metrics["origins"] == 24
    # With one step, the multi-step and the one-step figures are the same numbers.
    assert metrics["model"]["one_step"]["mase"] == pytest.approx(metrics["mase"])
    manifest = TASK.export(tmp_path / "run", tmp_path / "export", ["onnx"], ["none"])
    assert manifest["task"]["horizon"] == 1 and manifest["agreement"]["vs_keras"] == {
        "onnx/none": 1.0}
    result = TASK.predict(tmp_path / "export", [list(range(16))])[0]
    assert len(result["forecast"]) == 1 and set(result["quantiles"]) == {"0.1", "0.5", "0.9"}


# ------------------------------------------------------------------------------ shipped export


def test_shipped_export_reproduces_its_held_out_mase():
    from apps.forecasting.baselines import mase_scale, origins, point_metrics, targets
    from apps.forecasting.data import DEFAULT_SERIES, load_default_series
    from apps.forecasting.runtime import ForecastingPredictor

    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    assert manifest["app"] == "forecasting" and manifest["series"]["name"] == "co2"
    assert manifest["size_bytes"] < 2_000_000
    series = load_default_series("co2")
    defaults = DEFAULT_SERIES["co2"]
    test_start = len(series) - defaults.test_size
    train_end = test_start - defaults.validation_size
    scale = mase_scale(series.values[:train_end], defaults.period)
    figures = manifest["metrics"]["test_origins"]
    for backend in ("onnx", "tflite"):
        predictor = ForecastingPredictor(SHIPPED, backend)
        starts = origins(len(series), test_start, predictor.horizon)
        quantiles = predictor.forecast_windows(
            np.stack([series.values[t - predictor.window:t] for t in starts]))
        mase = point_metrics(targets(series.values, starts, predictor.horizon),
                             quantiles[:, :, predictor.median_index], scale)["mase"]
        assert mase == pytest.approx(figures[f"{backend}/none"]["mase"], rel=1e-5)
        assert mase < manifest["metrics"]["test_split"]["seasonal_naive_mase"]
