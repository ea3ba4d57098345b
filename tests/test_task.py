"""The Task contract: registry, RunDir files, manifest specs, the shared split and batcher."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from rnnkit.errors import ArtifactError, UserError
from rnnkit.runtime.spec import ManifestSpec, spec_field
from rnnkit.task import RunDir, Task, available_tasks, get_task, variant_key

APPS = ("sentiment", "translation", "speech_to_text", "captioning", "forecasting")


def test_registry_finds_every_app_package_in_demo_order():
    tasks = available_tasks()
    assert [name for name in tasks if name in APPS] == list(APPS)
    for name, task in tasks.items():
        assert isinstance(task, Task) and task.name == name
        assert task.description and task.config_class and task.runtime_module
    with pytest.raises(UserError, match="Unknown app 'nope'"):
        get_task("nope")


@pytest.mark.parametrize("app", APPS)
def test_every_runtime_predictor_imports_without_tensorflow(app):
    module = get_task(app).runtime_module
    code = (f"import sys, rnnkit.task, {module}; "
            "bad = [m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_run_dir_metrics_sections_and_recorded_splits(tmp_path):
    @dataclass
    class Config:
        units: int = 3

    run = RunDir.create("demo", Config(), tmp_path / "run", info={"labels": ["a", "b"]})
    assert RunDir.open(run.path, "demo").info["labels"] == ["a", "b"]
    with pytest.raises(UserError, match="is a 'demo' run, not a 'other' run"):
        RunDir.open(run.path, "other")
    with pytest.raises(UserError, match="not a training run directory"):
        RunDir.open(tmp_path)
    run.write_metrics("train", {"loss": 1.5})
    run.write_metrics("evaluate", {"accuracy": 0.5})
    run.write_metrics("train", {"loss": 0.5})
    assert json.loads(run.file("metrics.json").read_text()) == {
        "train": {"loss": 0.5}, "evaluate": {"accuracy": 0.5}}
    records = [{"id": "1", "text": "line\u2028separator", "label": "a"}, {"id": "2", "x": [1, 2]}]
    run.record_split("test", records)
    assert run.split("test") == records
    assert run.split_index()["test"]["examples"] == 2
    with pytest.raises(ArtifactError, match="recorded no 'validation' split"):
        run.split("validation")
    assert run.config(Config).units == 3


@dataclass(frozen=True)
class _Spec(ManifestSpec):
    labels: list = spec_field("labels")
    max_length: int = spec_field("tokenizer.max_length")


def test_manifest_spec_round_trip_and_missing_field_names_it():
    spec = _Spec(labels=["a"], max_length=7)
    manifest = spec.to_manifest()
    assert manifest == {"labels": ["a"], "tokenizer": {"max_length": 7}}
    assert _Spec.from_manifest(manifest) == spec
    with pytest.raises(ArtifactError, match=r"has no `tokenizer.max_length` \(_Spec.max_length\)"):
        _Spec.from_manifest({"labels": ["a"], "tokenizer": {}}, "x/manifest.json")


def test_predict_rejects_options_the_app_does_not_take(tmp_path):
    with pytest.raises(UserError, match="neither a run directory"):
        get_task("sentiment").predict(tmp_path, ["text"])
    assert variant_key("onnx", "int8") == "onnx/int8"


def test_hash_split_and_bucketed_dataset():
    from rnnkit.data.batching import bucketed_dataset
    from rnnkit.data.split import hash_order, split_items

    items = [f"k{i}" for i in range(2000)]
    groups = split_items(items, key=str)
    assert sum(map(len, groups.values())) == 2000 and 0.07 < len(groups["test"]) / 2000 < 0.13
    assert split_items(items[::-1], key=str)["test"] == groups["test"][::-1]
    assert sorted(hash_order(items)) == list(range(2000))

    rows = [np.arange(1, n + 1, dtype=np.int32) for n in (1, 5, 9, 3, 17, 2)]
    labels = np.arange(6, dtype=np.float32)
    dataset = bucketed_dataset({"ids": rows, "y": list(labels)}, lambda b: (b["ids"], b["y"]),
                               batch_size=2, bucket_width=4, shuffle=True, seed=3)
    seen = []
    for ids, y in dataset.as_numpy_iterator():
        assert ids.shape[1] % 4 == 0 and ids.dtype == np.int32
        for row, value in zip(ids, y, strict=True):
            length = len(rows[int(value)])
            np.testing.assert_array_equal(row[:length], rows[int(value)])
            assert not row[length:].any()  # right padding with 0
            seen.append(int(value))
    assert sorted(seen) == list(range(6))
