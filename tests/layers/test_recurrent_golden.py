"""Golden values: RecurrentBlock against the plain numpy reference (float64) within 1e-5."""

import keras
import numpy as np
import pytest

from rnnkit.layers import RecurrentBlock

from . import numpy_reference as ref

ATOL = 1e-5
KINDS = ["rnn", "lstm", "gru"]


def randomize(layer, seed=0, scale=0.5):
    """Non-trivial weights (biases too) so every term of the formulas is exercised."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.uniform(-scale, scale, w.shape) for w in layer.get_weights()])


def block_weights(block):
    """Per layer: [forward weights] or [forward weights, backward weights]."""
    weights = []
    for layer in block.rnn_layers:
        if isinstance(layer, keras.layers.Bidirectional):
            weights.append([layer.forward_layer.get_weights(), layer.backward_layer.get_weights()])
        else:
            weights.append([layer.get_weights()])
    return weights


def inputs(batch=3, time=5, features=4, seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, time, features)).astype("float32")


def build(block, x):
    block(x[:1, :2])  # builds with the right feature size
    randomize(block)
    return block


def check(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_single_layer_sequences_and_states(kind):
    x = inputs()
    block = build(RecurrentBlock(kind, units=3, return_sequences=True, return_state=True), x)
    outputs, *states = block(x)
    expected, expected_states, _ = ref.run_stack(kind, block_weights(block), x)
    check(outputs, expected)
    assert len(states) == ref.NUM_STATES[kind]
    for state, expected_state in zip(states, expected_states, strict=True):
        check(state, expected_state)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
def test_bidirectional(kind, merge_mode):
    x = inputs(seed=2)
    block = build(
        RecurrentBlock(
            kind,
            units=3,
            bidirectional=True,
            merge_mode=merge_mode,
            return_sequences=True,
            return_state=True,
        ),
        x,
    )
    outputs, *states = block(x)
    expected, expected_states, _ = ref.run_stack(
        kind, block_weights(block), x, bidirectional=True, merge_mode=merge_mode
    )
    check(outputs, expected)
    assert len(states) == 2 * ref.NUM_STATES[kind]
    for state, expected_state in zip(states, expected_states, strict=True):
        check(state, expected_state)


@pytest.mark.parametrize("kind", KINDS)
def test_stacked_two_layers_last_output(kind):
    x = inputs(seed=3)
    block = build(RecurrentBlock(kind, units=3, num_layers=2), x)
    _, _, expected_last = ref.run_stack(kind, block_weights(block), x)
    check(block(x), expected_last)


def test_vanilla_rnn_with_readout():
    """The seed formula: h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h), y_t = W_hy h_t + b_y."""
    x = inputs(seed=4)
    block = RecurrentBlock("rnn", units=3, return_sequences=True)
    readout = keras.layers.Dense(2)
    readout(block(x[:1, :2]))
    randomize(block, seed=5)
    randomize(readout, seed=6)
    (w_xh, w_hh, b_h), (w_hy, b_y) = block.rnn_layers[0].get_weights(), readout.get_weights()
    h = np.zeros((x.shape[0], 3))
    expected = []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t].astype(np.float64) @ w_xh + h @ w_hh + b_h)
        expected.append(h @ w_hy + b_y)
    check(readout(block(x)), np.stack(expected, axis=1))


def test_vanilla_rnn_relu():
    x = inputs(seed=7)
    block = build(RecurrentBlock("rnn", units=3, activation="relu", return_sequences=True), x)
    expected, _, _ = ref.run_stack("rnn", block_weights(block), x, activation="relu")
    check(block(x), expected)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_masked_mixed_lengths(kind, bidirectional):
    """Right-padded rows of mixed lengths: valid steps and final states match a reference
    that runs over only the valid part (backward direction: from each row's last valid step).
    """
    lengths = np.array([5, 3, 1])
    x = inputs(seed=8)
    mask = np.arange(5)[None, :] < lengths[:, None]
    x = np.where(mask[..., None], x, 0.0).astype("float32")
    block = build(
        RecurrentBlock(
            kind,
            units=3,
            num_layers=2,
            bidirectional=bidirectional,
            return_sequences=True,
            return_state=True,
        ),
        x,
    )
    outputs, *states = block(x, mask=mask)
    expected, expected_states, _ = ref.run_stack(
        kind, block_weights(block), x, lengths=lengths, bidirectional=bidirectional
    )
    check(np.asarray(outputs)[mask], expected[mask])
    for state, expected_state in zip(states, expected_states, strict=True):
        check(state, expected_state)

    # Last output (return_sequences=False) is taken at each row's last valid step.
    last_block = RecurrentBlock(kind, units=3, num_layers=2, bidirectional=bidirectional)
    last_block(x[:1, :2])
    last_block.set_weights(block.get_weights())
    _, _, expected_last = ref.run_stack(
        kind, block_weights(block), x, lengths=lengths, bidirectional=bidirectional
    )
    check(last_block(x, mask=mask), expected_last)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_mask_from_embedding_in_functional_model(kind):
    """Embedding(mask_zero=True) carries the mask end to end through two blocks."""
    tokens = np.array([[4, 2, 7, 1, 3], [5, 6, 0, 0, 0], [2, 0, 0, 0, 0]])
    lengths = (tokens != 0).sum(axis=1)
    inp = keras.Input((None,), dtype="int32")
    embedding = keras.layers.Embedding(8, 4, mask_zero=True)
    first = RecurrentBlock(
        kind, units=3, bidirectional=True, merge_mode="sum", return_sequences=True
    )
    second = RecurrentBlock(kind, units=3)
    model = keras.Model(inp, second(first(embedding(inp))))
    for i, layer in enumerate(model.layers[1:]):
        randomize(layer, seed=10 + i)
    x = np.asarray(embedding.embeddings)[tokens]
    hidden, _, _ = ref.run_stack(
        kind, block_weights(first), x, lengths=lengths, bidirectional=True, merge_mode="sum"
    )
    _, _, expected = ref.run_stack(kind, block_weights(second), hidden, lengths=lengths)
    check(model(tokens), expected)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_initial_state_with_mask(kind):
    """initial_state feeds the first layer; the inputs' Keras mask is still honoured."""
    tokens = np.array([[4, 2, 7, 1], [5, 6, 0, 0]])
    lengths = (tokens != 0).sum(axis=1)
    rng = np.random.default_rng(11)
    init = [rng.uniform(-1, 1, (2, 3)).astype("float32") for _ in range(ref.NUM_STATES[kind])]
    inp = keras.Input((None,), dtype="int32")
    state_inputs = [keras.Input((3,)) for _ in init]
    embedding = keras.layers.Embedding(8, 4, mask_zero=True)
    block = RecurrentBlock(kind, units=3, return_sequences=True, return_state=True)
    outputs = block(embedding(inp), initial_state=state_inputs)
    model = keras.Model([inp, *state_inputs], outputs)
    randomize(block, seed=12)
    x = np.asarray(embedding.embeddings)[tokens]
    expected, expected_states, _ = ref.run_stack(
        kind, block_weights(block), x, lengths=lengths, initial_state=init
    )
    outputs, *states = model([tokens, *init])
    valid = tokens != 0
    check(np.asarray(outputs)[valid], expected[valid])
    for state, expected_state in zip(states, expected_states, strict=True):
        check(state, expected_state)


def test_bidirectional_initial_state():
    x = inputs(batch=2, time=4, seed=13)
    rng = np.random.default_rng(14)
    init = [rng.uniform(-1, 1, (2, 3)).astype("float32") for _ in range(4)]
    block = build(RecurrentBlock("lstm", units=3, bidirectional=True, return_state=True), x)
    outputs, *states = block(x, initial_state=init)
    _, expected_states, expected_last = ref.run_stack(
        "lstm", block_weights(block), x, bidirectional=True, initial_state=init
    )
    check(outputs, expected_last)
    for state, expected_state in zip(states, expected_states, strict=True):
        check(state, expected_state)
