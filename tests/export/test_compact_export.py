"""Compact exports: ``"format:q"`` quantizations (no float32 copy) and float16-weight ONNX."""

import json

import keras
import numpy as np
import onnx
import pytest

from rnnkit import runtime
from rnnkit.errors import UserError
from rnnkit.export import export_model, format_quantizations
from rnnkit.export.onnx_graph import FLOAT16_SUFFIX, convert_model, float16_weights


def _conv_lstm_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12, 6), name="frames")
    x = keras.layers.Conv1D(24, 3, padding="same", name="conv")(inputs)
    x = keras.layers.LSTM(32, name="lstm")(x)
    return keras.Model(inputs, keras.layers.Dense(5, name="head")(x))


def _feeds(seed=1):
    return {"frames": np.random.default_rng(seed).normal(size=(3, 12, 6)).astype(np.float32)}


def test_format_quantizations_plain_and_per_format_entries():
    formats = ("saved_model", "onnx", "tflite")
    assert format_quantizations(formats, ("none", "int8", "float16")) == {
        "saved_model": ("none",), "onnx": ("none", "int8"), "tflite": ("none", "int8", "float16")}
    assert format_quantizations(("onnx", "tflite"), ("onnx:float16", "tflite:int8")) == {
        "onnx": ("float16",), "tflite": ("int8",)}
    assert format_quantizations(("onnx",), ()) == {"onnx": ("none",)}  # float32 only
    # a format without its own entries keeps the plain ones (and float32)
    assert format_quantizations(("onnx", "tflite"), ("int8", "onnx:float16")) == {
        "onnx": ("float16",), "tflite": ("none", "int8")}
    with pytest.raises(UserError, match="saved_model:int8"):
        format_quantizations(("saved_model",), ("saved_model:int8",))
    with pytest.raises(UserError, match="tflite:float16"):
        format_quantizations(("onnx",), ("tflite:float16",))


def test_float16_onnx_stores_half_weights_and_computes_in_float32(tmp_path):
    model = _conv_lstm_model()
    proto = convert_model(model)
    half, note = float16_weights(proto)
    stored = {i.name: i.data_type for i in half.graph.initializer}
    halved = [n for n, t in stored.items() if t == onnx.TensorProto.FLOAT16]
    assert halved and all(n.endswith(FLOAT16_SUFFIX) for n in halved)
    casts = [n for n in half.graph.node if n.op_type == "Cast"]
    assert len(casts) == len(halved)
    assert "float16 weights" in note
    assert len(half.SerializeToString()) < 0.6 * len(proto.SerializeToString())

    manifest = export_model({"model": model}, tmp_path / "out", formats=("onnx",),
                            quantize=("onnx:none", "onnx:float16"),
                            parity_inputs={"model": [_feeds()]})
    assert set(manifest["graphs"]["model"]["files"]["onnx"]) == {"none", "float16"}
    error = manifest["parity"]["model"]["onnx"]["float16"]
    assert 0 < error < 5e-2
    # The same weights rounded to float16 in Keras give the float16 file's outputs: the
    # arithmetic is float32, only the stored weights lost precision.
    model.set_weights([w.astype(np.float16).astype(np.float32) for w in model.get_weights()])
    expected = model(_feeds()["frames"]).numpy()
    got = runtime.load(tmp_path / "out", quantization="float16").run(_feeds())
    np.testing.assert_allclose(got["head"], expected, atol=2e-5)


def test_compact_export_holds_only_the_named_variants_and_loads_them_by_default(tmp_path):
    model = _conv_lstm_model(seed=3)
    out = tmp_path / "compact"
    manifest = export_model({"model": model}, out, formats=("onnx", "tflite"),
                            quantize=("onnx:float16", "tflite:int8"),
                            parity_inputs={"model": [_feeds()]})
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    assert files == ["manifest.json", "model.float16.onnx", "model.int8.tflite"]
    assert manifest["quantization"] == ["int8", "float16"]
    assert json.loads((out / "manifest.json").read_text())["graphs"]["model"]["files"] == {
        "onnx": {"float16": "model.float16.onnx"}, "tflite": {"int8": "model.int8.tflite"}}
    assert set(manifest["parity"]["model"]) == {"onnx", "tflite"}
    reference = model(_feeds()["frames"]).numpy()
    # "none" (the default) on an export without float32 files loads what it holds
    onnx_model = runtime.load(out)
    tflite_model = runtime.load(out, backend="tflite")
    assert (onnx_model.quantization, tflite_model.quantization) == ("float16", "int8")
    for loaded, tolerance in ((onnx_model, 5e-2), (tflite_model, 0.2)):
        got = loaded.run(_feeds())["head"]
        assert np.max(np.abs(got - reference)) < tolerance
    with pytest.raises(Exception, match="model.int8.onnx' is missing"):
        runtime.load(out, quantization="int8")


def test_saved_model_has_no_quantized_variant(tmp_path):
    with pytest.raises(UserError, match="quantize"):
        export_model(_conv_lstm_model(), tmp_path / "bad", formats=("saved_model",),
                     quantize=("saved_model:float16",))
    assert not (tmp_path / "bad").exists()
