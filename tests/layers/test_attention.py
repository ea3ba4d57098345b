"""Bahdanau and Luong attention against the numpy reference; masking; serialization."""

import keras
import numpy as np
import pytest

from rnnkit.layers import BahdanauAttention, LuongAttention

from . import numpy_reference as ref

rng = np.random.default_rng(0)
B, TQ, TV, D = 2, 3, 5, 4
QUERY = rng.normal(size=(B, TQ, D)).astype("float32")
VALUES = rng.normal(size=(B, TV, D)).astype("float32")
MASK = np.array([[True, True, True, False, False], [True] * TV])


def make(name):
    layer = {
        "bahdanau": lambda: BahdanauAttention(6),
        "dot": lambda: LuongAttention("dot"),
        "general": lambda: LuongAttention("general"),
    }[name]()
    layer(QUERY, VALUES)
    weights = layer.get_weights()
    layer.set_weights([np.random.default_rng(1).uniform(-0.5, 0.5, w.shape) for w in weights])
    return layer


def reference(layer, query, values, mask):
    if isinstance(layer, BahdanauAttention):
        w1 = layer.query_dense.get_weights()[0]
        w2, b2 = layer.values_dense.get_weights()
        v = layer.score_dense.get_weights()[0]
        scores = ref.bahdanau_scores(query, values, w1, w2, b2, v)
    else:
        kernel = layer.get_weights()[0] if layer.score == "general" else None
        scores = ref.luong_scores(query, values, kernel)
    return ref.attention(scores, values, mask)


NAMES = ["bahdanau", "dot", "general"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("use_mask", [False, True])
def test_matches_reference_3d_query(name, use_mask):
    layer = make(name)
    mask = MASK if use_mask else None
    context, weights = layer(QUERY, VALUES, mask=mask)
    assert tuple(context.shape) == (B, TQ, D) and tuple(weights.shape) == (B, TQ, TV)
    expected_context, expected_weights = reference(layer, QUERY, VALUES, mask)
    np.testing.assert_allclose(np.asarray(weights), expected_weights, atol=1e-5)
    np.testing.assert_allclose(np.asarray(context), expected_context, atol=1e-5)
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, atol=1e-6)
    if use_mask:
        assert (np.asarray(weights)[0, :, 3:] == 0.0).all()  # exactly zero


@pytest.mark.parametrize("name", NAMES)
def test_2d_query(name):
    layer = make(name)
    query = QUERY[:, 0]
    context, weights = layer(query, VALUES, mask=MASK)
    assert tuple(context.shape) == (B, D) and tuple(weights.shape) == (B, TV)
    expected_context, expected_weights = reference(layer, query[:, None], VALUES, MASK)
    np.testing.assert_allclose(np.asarray(weights), expected_weights[:, 0], atol=1e-5)
    np.testing.assert_allclose(np.asarray(context), expected_context[:, 0], atol=1e-5)
    assert (np.asarray(weights)[0, 3:] == 0.0).all()
    assert layer.compute_output_shape((B, D), (B, TV, D)) == ((B, D), (B, TV))


def test_large_scores_still_masked_exactly():
    values = VALUES * 1e3
    _, weights = LuongAttention("dot")(QUERY * 1e3, values, mask=MASK)
    weights = np.asarray(weights)
    assert (weights[0, :, 3:] == 0.0).all()
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)


def test_fully_masked_row_gives_zeros():
    mask = MASK.copy()
    mask[0] = False
    context, weights = BahdanauAttention(4)(QUERY, VALUES, mask=mask)
    assert (np.asarray(weights)[0] == 0).all() and (np.asarray(context)[0] == 0).all()


def test_general_score_with_different_dims_and_dot_error():
    values = rng.normal(size=(B, TV, 7)).astype("float32")
    context, _ = LuongAttention("general")(QUERY, values)
    assert tuple(context.shape) == (B, TQ, 7)
    with pytest.raises(ValueError, match="score='general'"):
        LuongAttention("dot")(QUERY, values)


def test_errors():
    with pytest.raises(
        ValueError,
        match=r"`score` must be one of 'dot', 'general'. "
        r"Received: score='concat'",
    ):
        LuongAttention("concat")
    with pytest.raises(ValueError, match=r"`units`.*Received: units=0"):
        BahdanauAttention(0)
    with pytest.raises(ValueError, match=r"`values` must be 3-D.*Received: values with shape"):
        BahdanauAttention(4)(QUERY, VALUES[:, 0])


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(tmp_path, name):
    query = keras.Input((None, D))
    values = keras.Input((None, D))
    mask = keras.Input((None,), dtype="bool")
    context, weights = make(name)(query, values, mask=mask)
    model = keras.Model([query, values, mask], [context, weights])
    model.save(tmp_path / "attention.keras")
    loaded = keras.models.load_model(tmp_path / "attention.keras")
    for a, b in zip(model([QUERY, VALUES, MASK]), loaded([QUERY, VALUES, MASK]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_context_keeps_query_mask_in_functional_model():
    tokens = keras.Input((None,), dtype="int32")
    query = keras.layers.Embedding(10, D, mask_zero=True)(tokens)
    values = keras.Input((None, D))
    context, weights = LuongAttention("dot")(query, values)
    assert getattr(context, "_keras_mask", None) is not None
    assert getattr(weights, "_keras_mask", None) is None
