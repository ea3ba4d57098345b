"""Native-op ONNX conversion: parity with Keras for every recurrent kind, no Loop nodes."""

import itertools

import keras
import numpy as np
import onnxruntime as ort
import pytest
from model_builders import (
    decoder_step_inputs,
    decoder_step_model,
    keras_outputs,
    padded_tokens,
    sentiment_model,
)

from rnnkit.export.formats import quantize_onnx
from rnnkit.export.onnx_graph import convert_model

FP32_TOLERANCE = 1e-4
# Measured on these tiny models (units 8, random weights): ~1e-3 at most. Bound with margin.
INT8_TOLERANCE = 0.05

MATRIX = list(itertools.product(("rnn", "lstm", "gru"), (False, True), (1, 2)))


def _session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _max_diff(reference, outputs):
    return max(
        float(np.max(np.abs(np.asarray(r) - o))) for r, o in zip(reference, outputs, strict=False)
    )


@pytest.mark.parametrize(("kind", "bidirectional", "num_layers"), MATRIX)
def test_onnx_parity_every_kind(kind, bidirectional, num_layers, tmp_path):
    model = sentiment_model(kind, bidirectional, num_layers)
    tokens = padded_tokens()
    proto = convert_model(model)
    op_types = {node.op_type for node in proto.graph.node}
    assert "Loop" not in op_types and "Scan" not in op_types
    assert {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[kind] in op_types
    reference = keras_outputs(model, {"tokens": tokens})
    assert _max_diff(reference, _session(proto).run(None, {"tokens": tokens})) < FP32_TOLERANCE

    quantize_onnx(proto, tmp_path / "model.int8.onnx")
    int8 = ort.InferenceSession(str(tmp_path / "model.int8.onnx"))
    assert _max_diff(reference, int8.run(None, {"tokens": tokens})) < INT8_TOLERANCE


def test_sentiment_graph_uses_native_lstm_not_loop():
    model = sentiment_model("lstm")
    op_types = [node.op_type for node in convert_model(model).graph.node]
    assert "Loop" not in op_types
    assert op_types.count("LSTM") == 1


def test_sequence_outputs_states_and_empty_rows():
    """Raw sequences (padded steps included), return_state, merge_mode sum, a length-0 row."""
    keras.utils.set_random_seed(3)
    tokens_in = keras.Input((None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(20, 8, mask_zero=True)(tokens_in)
    sequence, h, c = keras.layers.LSTM(8, return_sequences=True, return_state=True)(x)
    merged = keras.layers.Bidirectional(
        keras.layers.GRU(8, return_sequences=True), merge_mode="sum"
    )(sequence)
    last = keras.layers.Bidirectional(keras.layers.SimpleRNN(8), merge_mode="ave")(merged)
    model = keras.Model(tokens_in, [sequence, h, c, merged, last])
    tokens = padded_tokens((10, 6, 2, 0))
    reference = keras_outputs(model, {"tokens": tokens})
    outputs = _session(convert_model(model)).run(None, {"tokens": tokens})
    assert _max_diff(reference, outputs) < FP32_TOLERANCE


def test_bidirectional_return_state_and_mul_merge():
    keras.utils.set_random_seed(4)
    features = keras.Input((None, 5), name="features")
    outputs = keras.layers.Bidirectional(keras.layers.LSTM(8, return_state=True), merge_mode="mul")(
        features
    )
    model = keras.Model(features, outputs)
    feeds = {"features": np.random.default_rng(0).normal(size=(2, 7, 5)).astype("float32")}
    reference = keras_outputs(model, feeds)
    assert len(reference) == 5
    assert _max_diff(reference, _session(convert_model(model)).run(None, feeds)) < FP32_TOLERANCE


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_decoder_step_with_initial_state_and_mask_input(kind):
    model = decoder_step_model(kind)
    feeds = decoder_step_inputs(kind)
    proto = convert_model(model)
    assert {"LSTM" if kind == "lstm" else "GRU"} <= {n.op_type for n in proto.graph.node}
    reference = keras_outputs(model, feeds)
    assert _max_diff(reference, _session(proto).run(None, feeds)) < FP32_TOLERANCE


def test_conv_frontend_bidirectional_gru():
    """Speech shape: Conv1D → Bidirectional GRU (sequences) → Dense."""
    keras.utils.set_random_seed(5)
    features = keras.Input((None, 12), name="features")
    x = keras.layers.Conv1D(8, 3, padding="same", activation="relu")(features)
    x = keras.layers.Bidirectional(keras.layers.GRU(8, return_sequences=True))(x)
    model = keras.Model(features, keras.layers.Dense(5, name="logits")(x))
    feeds = {"features": np.random.default_rng(1).normal(size=(2, 11, 12)).astype("float32")}
    proto = convert_model(model)
    assert "Loop" not in {n.op_type for n in proto.graph.node}
    reference = keras_outputs(model, feeds)
    assert _max_diff(reference, _session(proto).run(None, feeds)) < FP32_TOLERANCE


def test_nested_functional_model_is_walked():
    inner = sentiment_model("gru")
    tokens = keras.Input((None,), dtype="int32", name="ids")
    outer = keras.Model(tokens, keras.layers.Softmax(name="probs")(inner(tokens)))
    proto = convert_model(outer)
    assert "GRU" in {n.op_type for n in proto.graph.node}
    feeds = {"ids": padded_tokens()}
    reference = keras_outputs(outer, feeds)
    assert _max_diff(reference, _session(proto).run(None, feeds)) < FP32_TOLERANCE


def test_unsupported_activation_is_rejected():
    features = keras.Input((None, 4), name="features")
    model = keras.Model(features, keras.layers.SimpleRNN(4, activation="elu")(features))
    with pytest.raises(ValueError, match="activation"):
        convert_model(model)


@pytest.mark.parametrize(("kind", "attention"), [("lstm", "luong"), ("gru", "bahdanau")])
def test_rnnkit_seq2seq_builders_export_with_parity(kind, attention, tmp_path):
    """The translation/captioning graphs from rnnkit.layers.seq2seq: native ops, parity."""
    seq2seq = pytest.importorskip("rnnkit.layers.seq2seq")
    from rnnkit.export import export_model

    keras.utils.set_random_seed(7)
    encoder = seq2seq.build_encoder(20, embedding_dim=8, units=8, kind=kind, decoder_units=8)
    values_dim = encoder.outputs[0].shape[-1]
    decoder = seq2seq.build_attention_decoder(
        20, values_dim, embedding_dim=8, units=8, kind=kind, attention=attention
    )
    source = padded_tokens((6, 4, 1), max_len=6)
    encoded = keras_outputs(encoder, {encoder.inputs[0].name: source})
    # step model inputs: (token, *states, encoder_outputs, encoder_mask)
    step_feeds, float_inputs = {}, []
    for spec in decoder.step_model.inputs:
        if spec.dtype == "int32":
            step_feeds[spec.name] = np.full((3, 1), 2, np.int32)
        elif spec.dtype == "bool":
            step_feeds[spec.name] = source != 0
        else:
            float_inputs.append(spec)
    *state_specs, values_spec = float_inputs
    for spec, state in zip(state_specs, encoded[1:], strict=True):
        step_feeds[spec.name] = state
    step_feeds[values_spec.name] = encoded[0]
    manifest = export_model(
        {"encoder": encoder, "decoder_step": decoder.step_model},
        tmp_path / "s2s",
        formats=("onnx",),
        quantize=("none", "int8"),
        parity_inputs={
            "encoder": [{encoder.inputs[0].name: source}],
            "decoder_step": [step_feeds],
        },
    )
    for graph in ("encoder", "decoder_step"):
        assert manifest["parity"][graph]["onnx"]["none"] < FP32_TOLERANCE
        assert manifest["parity"][graph]["onnx"]["int8"] < INT8_TOLERANCE
        assert manifest["graphs"][graph]["onnx"]["recurrent_ops"] == [kind.upper()]
