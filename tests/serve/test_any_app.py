"""An app with no adapter of its own (a later forecasting app) is served through its Task's
``runtime_predictor``: JSON ``input``/``inputs`` and the predictor's keyword options."""

from __future__ import annotations

import json
import shutil

import pytest
from starlette.testclient import TestClient

import rnnkit.task
from rnnkit.serve import create_app, load_models
from rnnkit.serve.predictors import TaskAdapter
from tests.serve.conftest import EXPORTED


class DoublingPredictor:
    def __init__(self):
        self.calls = []

    def predict(self, inputs, horizon=1):
        self.calls.append(len(inputs))
        return [{"forecast": [2 * value for value in series[-1:]] * horizon}
                for series in inputs]


class FakeTask:
    name = "doubling"

    def __init__(self):
        self.predictor = DoublingPredictor()

    def runtime_predictor(self, export_dir, backend="onnx", quantization="none",
                          num_threads=None):
        return self.predictor


@pytest.fixture
def doubling_dir(tmp_path, monkeypatch):
    directory = tmp_path / "doubling"
    shutil.copytree(EXPORTED / "sentiment", directory,
                    ignore=shutil.ignore_patterns("saved_model", "*.tflite"))
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["app"] = "doubling"
    (directory / "manifest.json").write_text(json.dumps(manifest))
    task = FakeTask()
    monkeypatch.setattr(rnnkit.task, "get_task",
                        lambda name: task if name == "doubling" else pytest.fail(name))
    return directory


def test_any_registered_app_is_served(doubling_dir):
    models = load_models([doubling_dir])
    assert isinstance(models["doubling"], TaskAdapter)
    with TestClient(create_app(models).app, raise_server_exceptions=False) as client:
        one = client.post("/v1/models/doubling/predict", json={"input": [1.0, 3.0], "horizon": 2})
        assert one.status_code == 200
        assert one.json()["result"] == {"forecast": [6.0, 6.0]}
        many = client.post("/v1/models/doubling/predict", json={"inputs": [[1], [5]]})
        assert many.json()["results"] == [{"forecast": [2]}, {"forecast": [10]}]
        bad = client.post("/v1/models/doubling/predict", json={"input": [1], "horizn": 2})
        assert bad.status_code == 422 and "horizn" in bad.json()["error"]["message"]
        assert "horizon" in bad.json()["error"]["message"]
        neither = client.post("/v1/models/doubling/predict", json={"series": [1]})
        assert neither.status_code == 422
        form = client.post("/v1/models/doubling/predict", files={"x": ("a", b"1")})
        assert form.status_code == 415
        listed = client.get("/v1/models").json()["models"][0]
        assert listed["app"] == "doubling" and listed["input"] == "json"
