"""`quantize_exclude`: the named layers' ONNX nodes stay float32 in int8 exports."""

import keras
import numpy as np
import onnx
import pytest

from rnnkit.errors import UserError
from rnnkit.export import export_model
from rnnkit.export.formats import nodes_of_layers


def _two_dense_model():
    inputs = keras.Input((16,), name="x")
    hidden = keras.layers.Dense(64, name="keep_float")(inputs)
    outputs = keras.layers.Dense(64, name="quantized")(hidden)
    return keras.Model(inputs, outputs)


def test_excluded_layer_keeps_float_weights(tmp_path):
    model = _two_dense_model()
    feeds = {"x": np.random.default_rng(0).normal(size=(3, 16)).astype(np.float32)}
    manifest = export_model(
        {"model": model}, tmp_path / "out", formats=("onnx",), quantize=("int8",),
        parity_inputs={"model": [feeds]}, quantize_exclude={"model": ["keep_float"]},
    )
    proto = onnx.load(str(tmp_path / "out" / "model.int8.onnx"))
    ops = {n.name: n.op_type for n in proto.graph.node}
    float_ops = [op for name, op in ops.items() if name.startswith("keep_float/")]
    assert "MatMul" in float_ops and "MatMulInteger" not in float_ops
    assert any(op == "MatMulInteger" for name, op in ops.items()
               if not name.startswith("keep_float/"))
    assert "keep_float" in manifest["graphs"]["model"]["onnx"]["quantization_notes"]["int8"]


def test_unknown_layer_name_is_a_clear_error(tmp_path):
    from rnnkit.export.onnx_graph import convert_model

    proto = convert_model(_two_dense_model())
    assert nodes_of_layers(proto, ["quantized"])
    with pytest.raises(UserError, match="no_such_layer"):
        nodes_of_layers(proto, ["no_such_layer"])
    with pytest.raises(UserError, match="quantize_exclude"):
        export_model(_two_dense_model(), tmp_path / "bad", formats=("onnx",),
                     quantize_exclude={"other": ["quantized"]})


def test_int8_onnx_keeps_convolutions_float_and_quantizes_the_rest(tmp_path):
    inputs = keras.Input((40, 8), name="frames")
    x = keras.layers.Conv1D(16, 3, padding="same", name="conv")(inputs)
    x = keras.layers.LSTM(16, name="lstm")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, name="head")(x))
    feeds = {"frames": np.random.default_rng(1).normal(size=(2, 40, 8)).astype(np.float32)}
    manifest = export_model(
        {"model": model}, tmp_path / "out", formats=("onnx",), quantize=("int8",),
        parity_inputs={"model": [feeds]},
    )
    ops = [n.op_type for n in onnx.load(str(tmp_path / "out" / "model.int8.onnx")).graph.node]
    assert "Conv" in ops and "ConvInteger" not in ops
    assert "DynamicQuantizeLSTM" in ops and "MatMulInteger" in ops
    assert manifest["parity"]["model"]["onnx"]["int8"] < 0.05
