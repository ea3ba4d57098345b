"""rnnkit.runtime: TF-free import, results, and clear errors before ONNX Runtime/LiteRT run."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from model_builders import padded_tokens, sentiment_model

import rnnkit
from rnnkit import runtime
from rnnkit.errors import ArtifactError, UserError


def test_runtime_import_has_no_tensorflow():
    code = (
        "import sys, rnnkit.runtime, rnnkit.runtime.model; "
        "bad = [m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    from rnnkit.export import export_model

    model = sentiment_model("lstm", bidirectional=True)
    out_dir = tmp_path_factory.mktemp("runtime") / "sentiment"
    tokens = padded_tokens()
    export_model(
        {"model": model},
        out_dir,
        app="classifier",
        formats=("onnx", "tflite"),
        quantize=("none", "int8"),
        tflite_shapes={"model": {"tokens": (2, 12)}},
        assets={"labels.json": ["a", "b", "c"]},
    )
    return out_dir, np.asarray(model(tokens)), tokens


@pytest.fixture
def copy_dir(export_dir, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(export_dir[0], target)
    return target


@pytest.mark.parametrize(
    ("backend", "quantization", "tolerance"),
    [
        ("onnx", "none", 1e-4),
        ("onnx", "int8", 0.05),
        ("tflite", "none", 1e-4),
        ("tflite", "int8", 0.05),
    ],
)
def test_run_matches_keras(export_dir, backend, quantization, tolerance):
    out_dir, expected, tokens = export_dir
    model = runtime.load(out_dir, backend=backend, quantization=quantization, num_threads=1)
    assert model.graph_names == ["model"]
    result = model.run("model", {"tokens": tokens})
    assert list(result) == ["logits"]
    np.testing.assert_allclose(result["logits"], expected, atol=tolerance)
    # a single graph may be run without its name; short batches are padded for TFLite
    one = model.run({"tokens": tokens[1:2, :7]})
    np.testing.assert_allclose(one["logits"], expected[1:2], atol=tolerance)


def test_safe_dtype_is_cast(export_dir):
    out_dir, expected, tokens = export_dir
    result = runtime.load(out_dir).run("model", {"tokens": tokens.astype(np.int64)})
    np.testing.assert_allclose(result["logits"], expected, atol=1e-4)
    lists = runtime.load(out_dir).run("model", {"tokens": tokens.tolist()})
    np.testing.assert_allclose(lists["logits"], expected, atol=1e-4)


def test_manifest_and_max_length(export_dir):
    out_dir = export_dir[0]
    model = runtime.load(out_dir, backend="tflite")
    assert model.manifest["app"] == "classifier"
    assert model.max_length() == 12
    assert model.input_specs()[0]["name"] == "tokens"
    assert runtime.asset_path(out_dir, "labels.json").is_file()


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"ids": np.zeros((1, 3), np.int32)}, r"takes inputs \['tokens'\]"),
        ({"tokens": np.zeros((1, 3), np.int32), "extra": 1}, "unexpected"),
        ({"tokens": np.zeros((1, 3), np.float32)}, "dtype int32"),
        ({"tokens": np.full((1, 3), 2**40, np.int64)}, "dtype int32"),
        ({"tokens": np.zeros((3,), np.int32)}, "rank 2"),
        ({"tokens": np.zeros((1, 3, 1), np.int32)}, "rank 2"),
    ],
)
def test_bad_inputs(export_dir, inputs, message):
    model = runtime.load(export_dir[0])
    with pytest.raises(UserError, match=message):
        model.run("model", inputs)


def test_bad_graph_name_and_options(export_dir):
    model = runtime.load(export_dir[0])
    with pytest.raises(UserError, match="`name` must be one of"):
        model.run("decoder", {"tokens": np.zeros((1, 3), np.int32)})
    with pytest.raises(UserError, match="backend"):
        runtime.load(export_dir[0], backend="torch")
    with pytest.raises(ArtifactError, match="model.float16.onnx' is missing"):
        runtime.load(export_dir[0], backend="onnx", quantization="float16")


def test_tflite_rejects_too_long_sequence(export_dir):
    model = runtime.load(export_dir[0], backend="tflite")
    with pytest.raises(UserError, match="maximum 12"):
        model.run("model", {"tokens": np.ones((1, 13), np.int32)})


def test_missing_directory_and_manifest(tmp_path):
    with pytest.raises(ArtifactError, match="not found"):
        runtime.load(tmp_path / "nope")
    with pytest.raises(ArtifactError, match="manifest.json is missing"):
        runtime.load(tmp_path)


def test_corrupt_manifest(copy_dir):
    (copy_dir / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        runtime.load(copy_dir)


def test_newer_format_version(copy_dir):
    path = copy_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = rnnkit.EXPORT_FORMAT_VERSION + 1
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="newer than this rnnkit"):
        runtime.load(copy_dir)


def test_missing_model_file(copy_dir):
    (copy_dir / "model.int8.onnx").unlink()
    with pytest.raises(ArtifactError, match="model.int8.onnx.*missing"):
        runtime.load(copy_dir, quantization="int8")
    with pytest.raises(ArtifactError, match="missing"):
        runtime.load(copy_dir, backend="tflite", quantization="float16")


@pytest.mark.parametrize("backend", ["onnx", "tflite"])
def test_corrupt_model_file(copy_dir, backend):
    (copy_dir / f"model.{backend}").write_bytes(b"this is not a model")
    with pytest.raises(ArtifactError, match=rf"model\.{backend}"):
        runtime.load(copy_dir, backend=backend)


def test_load_tokenizer_missing_asset(export_dir):
    with pytest.raises(ArtifactError, match="tokenizer.json"):
        runtime.load_tokenizer(export_dir[0])


def test_load_tokenizer_from_assets(tmp_path):
    text = pytest.importorskip("rnnkit.text")
    tokenizer = text.Tokenizer.train(["a good film", "a bad film"], kind="word")
    (tmp_path / "assets").mkdir()
    tokenizer.save(tmp_path / "assets" / "tokenizer.json")
    loaded = runtime.load_tokenizer(tmp_path)
    assert loaded.encode("a good film") == tokenizer.encode("a good film")
