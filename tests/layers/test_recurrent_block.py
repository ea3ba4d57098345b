"""RecurrentBlock: shapes, masking, serialization round trip, training step, argument errors."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from rnnkit.layers import RECURRENT_KINDS, RecurrentBlock

B, T, F, U = 2, 4, 3, 5


def test_registry():
    assert RECURRENT_KINDS == {
        "rnn": keras.layers.SimpleRNN,
        "lstm": keras.layers.LSTM,
        "gru": keras.layers.GRU,
    }


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_shapes_all_options(kind):
    x = np.zeros((B, T, F), "float32")
    num_states = {"rnn": 1, "lstm": 2, "gru": 1}[kind]
    combos = itertools.product([False, True], ["concat", "sum"], [False, True], [False, True])
    for index, (bidirectional, merge_mode, return_sequences, return_state) in enumerate(combos):
        if not bidirectional and merge_mode != "concat":
            continue
        num_layers = 1 + index % 2
        block = RecurrentBlock(
            kind,
            U,
            num_layers=num_layers,
            bidirectional=bidirectional,
            merge_mode=merge_mode,
            return_sequences=return_sequences,
            return_state=return_state,
        )
        width = 2 * U if bidirectional and merge_mode == "concat" else U
        expected = (B, T, width) if return_sequences else (B, width)
        outputs = block(x)
        symbolic = block.compute_output_shape((B, T, F))
        if return_state:
            assert isinstance(outputs, list)
            expected_states = (2 if bidirectional else 1) * num_states
            assert len(outputs) == 1 + expected_states == len(symbolic)
            assert all(tuple(s.shape) == (B, U) for s in outputs[1:])
            outputs, symbolic = outputs[0], symbolic[0]
        assert tuple(outputs.shape) == expected == tuple(symbolic)
        assert len(block.rnn_layers) == num_layers


def test_rnn_layers_structure():
    block = RecurrentBlock(
        "gru",
        U,
        num_layers=3,
        bidirectional=True,
        merge_mode="ave",
        dropout_rate=0.1,
        return_state=True,
    )
    layers = block.rnn_layers
    assert [type(layer) for layer in layers] == [keras.layers.Bidirectional] * 3
    inner = [layer.forward_layer for layer in layers]
    assert all(isinstance(layer, keras.layers.GRU) and layer.cell.reset_after for layer in inner)
    assert [layer.return_sequences for layer in inner] == [True, True, False]
    assert [layer.return_state for layer in inner] == [False, False, True]
    assert all(layer.dropout == 0.1 for layer in inner)
    no_cudnn = RecurrentBlock("lstm", U, bidirectional=True, use_cudnn=False).rnn_layers[0]
    assert no_cudnn.forward_layer.use_cudnn is False
    assert no_cudnn.backward_layer.use_cudnn is False
    plain = RecurrentBlock("rnn", U, activation="relu").rnn_layers[0]
    assert isinstance(plain, keras.layers.SimpleRNN)
    assert plain.cell.activation is keras.activations.relu


def test_symbolic_shapes_and_mask_propagation():
    inp = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(10, F, mask_zero=True)(inp)
    sequences = RecurrentBlock("lstm", U, bidirectional=True, return_sequences=True)(embedded)
    assert tuple(sequences.shape) == (None, None, 2 * U)
    assert getattr(sequences, "_keras_mask", None) is not None
    last, h, c = RecurrentBlock("lstm", U, return_state=True)(sequences)
    assert tuple(last.shape) == tuple(h.shape) == tuple(c.shape) == (None, U)
    assert getattr(last, "_keras_mask", None) is None

    block = RecurrentBlock("gru", U, return_sequences=True, return_state=True)
    mask = np.array([[True, False]])
    output_mask, state_mask = block.compute_mask(np.zeros((1, 2, F)), mask)
    assert output_mask is mask and state_mask is None
    assert RecurrentBlock("gru", U).compute_mask(np.zeros((1, 2, F)), mask) is None


def test_masked_steps_do_not_change_result():
    """Padding after a row's end (with the mask) gives the same result as no padding."""
    block = RecurrentBlock("lstm", U, bidirectional=True)
    x = np.random.default_rng(0).normal(size=(1, 3, F)).astype("float32")
    padded = np.concatenate([x, np.full((1, 2, F), 9.0, "float32")], axis=1)
    mask = np.array([[True, True, True, False, False]])
    np.testing.assert_allclose(block(x), block(padded, mask=mask), atol=1e-6)


def build_model():
    inp = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(12, F, mask_zero=True)(inp)
    x = RecurrentBlock(
        "lstm",
        U,
        num_layers=2,
        bidirectional=True,
        merge_mode="sum",
        return_sequences=True,
        name="encoder",
    )(x)
    x = RecurrentBlock("gru", U, dropout_rate=0.2, name="summary")(x)
    return keras.Model(inp, keras.layers.Dense(2)(x))


TOKENS = np.array([[3, 4, 5, 6], [7, 8, 0, 0]])


def test_save_load_round_trip(tmp_path):
    model = build_model()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(np.asarray(model(TOKENS)), np.asarray(loaded(TOKENS)))
    block = loaded.get_layer("encoder")
    assert isinstance(block, RecurrentBlock)
    assert block.get_config() == model.get_layer("encoder").get_config()


def test_get_config_from_config():
    block = RecurrentBlock(
        "rnn",
        7,
        num_layers=2,
        bidirectional=True,
        merge_mode="mul",
        dropout_rate=0.25,
        recurrent_dropout_rate=0.5,
        return_sequences=True,
        return_state=True,
        activation="relu",
        name="block",
    )
    config = block.get_config()
    assert config["name"] == "block"
    clone = RecurrentBlock.from_config(config)
    assert clone.get_config() == config


def test_one_training_step_lowers_loss():
    model = build_model()
    labels = np.array([0, 1])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.SGD(learning_rate=0.1)

    def loss_and_grads(training):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(TOKENS, training=training))
        grads = tape.gradient(loss, model.trainable_variables)
        return loss, [tf.convert_to_tensor(g) for g in grads]  # Embedding: IndexedSlices

    _, grads = loss_and_grads(training=True)  # dropout active
    assert all(np.isfinite(np.asarray(g)).all() for g in grads)
    loss, grads = loss_and_grads(training=False)
    assert all(np.abs(np.asarray(g)).sum() > 0 for g in grads)
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    new_loss, _ = loss_and_grads(training=False)
    assert float(new_loss) < float(loss)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"kind": "xyz"}, "`kind` must be one of 'rnn', 'lstm', 'gru'. Received: kind='xyz'"),
        ({"units": 0}, "Received: units=0"),
        ({"units": 2.5}, "Received: units=2.5"),
        ({"num_layers": 0}, "Received: num_layers=0"),
        ({"bidirectional": True, "merge_mode": "max"}, "Received: merge_mode='max'"),
        ({"dropout_rate": 1.0}, "Received: dropout_rate=1.0"),
        ({"recurrent_dropout_rate": -0.1}, "Received: recurrent_dropout_rate=-0.1"),
        ({"kind": "lstm", "activation": "relu"}, "Received: activation='relu'"),
        ({"kind": "rnn", "activation": "sigmoid"}, "Received: activation='sigmoid'"),
        ({"use_cudnn": "yes"}, "Received: use_cudnn='yes'"),
    ],
)
def test_argument_errors(kwargs, fragment):
    with pytest.raises(ValueError) as info:
        RecurrentBlock(**kwargs)
    assert fragment in str(info.value)
    name = next(iter(k for k in kwargs if k != "bidirectional"))
    if "activation" in kwargs:
        name = "activation"
    assert f"`{name}`" in str(info.value)


def test_lstm_activation_error_explains_cudnn():
    with pytest.raises(ValueError, match="cuDNN"):
        RecurrentBlock("gru", activation="relu")


def test_input_rank_error():
    with pytest.raises(ValueError, match=r"3-D inputs .* Received: .*shape=\(2, 3\)"):
        RecurrentBlock("lstm", U)(np.zeros((2, 3), "float32"))
    block = RecurrentBlock("lstm", U)
    block(np.zeros((2, 3, F), "float32"))
    with pytest.raises(ValueError, match=r"Received: .*shape=\(2, 3, 4, 5\)"):
        block(np.zeros((2, 3, 4, 5), "float32"))


def test_initial_state_count_error():
    block = RecurrentBlock("lstm", U, bidirectional=True)
    x = np.zeros((2, 3, F), "float32")
    with pytest.raises(ValueError, match="list of 4 tensors.*Received: 2"):
        block(x, initial_state=[np.zeros((2, U), "float32")] * 2)
