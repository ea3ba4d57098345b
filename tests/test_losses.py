"""rnnkit.losses against plain numpy references."""

import itertools

import keras
import numpy as np
import pytest

from rnnkit.losses import CTCLoss, MaskedSparseCategoricalCrossentropy, ctc_loss


def log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


# ---------------------------------------------------------------- masked cross-entropy


def test_masked_crossentropy_averages_over_real_tokens():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 5)).astype("float32")
    y_true = np.array([[3, 1, 4, 0], [2, 0, 0, 0]])
    loss = float(MaskedSparseCategoricalCrossentropy()(y_true, logits))
    lp = log_softmax(logits.astype("float64"))
    real = [(0, 0), (0, 1), (0, 2), (1, 0)]
    expected = -np.mean([lp[b, t, y_true[b, t]] for b, t in real])
    assert loss == pytest.approx(expected, rel=1e-5)


def test_masked_crossentropy_padding_changes_nothing():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 6)).astype("float32")
    y_true = np.array([[1, 2, 3], [4, 5, 0]])
    loss = MaskedSparseCategoricalCrossentropy()
    padded_logits = np.concatenate([logits, rng.normal(size=(2, 5, 6)).astype("float32")], 1)
    padded_true = np.concatenate([y_true, np.zeros((2, 5), dtype=int)], 1)
    assert float(loss(padded_true, padded_logits)) == pytest.approx(float(loss(y_true, logits)))
    # Another pad id.
    other = MaskedSparseCategoricalCrossentropy(pad_id=5)
    y_other = np.array([[1, 2, 3], [4, 5, 5]])
    assert float(other(y_other, logits)) == pytest.approx(
        float(loss(np.array([[1, 2, 3], [4, 0, 0]]), logits))
    )


def test_label_smoothing_raises_loss_on_confident_correct_prediction():
    # Two confident, correct predictions (classes 2 and 1); no padding (pad_id=3).
    logits = np.array([[[-10.0, -10.0, 10.0, -10.0], [-10.0, 10.0, -10.0, -10.0]]], "float32")
    y_true = np.array([[2, 1]])
    plain = float(MaskedSparseCategoricalCrossentropy(pad_id=3)(y_true, logits))
    smoothed = float(
        MaskedSparseCategoricalCrossentropy(pad_id=3, label_smoothing=0.2)(y_true, logits)
    )
    assert plain < 1e-6
    assert smoothed > 1.0
    # Exact value: -(0.8 * log p_true + 0.2 / V * sum_v log p_v), same at both positions.
    lp = log_softmax(logits[0, 0].astype("float64"))
    expected = -(0.8 * lp[2] + 0.2 / 4 * lp.sum())
    assert smoothed == pytest.approx(expected, rel=1e-4)


def test_masked_crossentropy_probabilities_reduction_and_weights():
    probs = np.array([[[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]], "float32")
    y_true = np.array([[1, 2]])
    probabilities = MaskedSparseCategoricalCrossentropy(from_logits=False)
    assert float(probabilities(y_true, probs)) == pytest.approx(
        -(np.log(0.2) + np.log(0.8)) / 2, rel=1e-5
    )
    none = MaskedSparseCategoricalCrossentropy(from_logits=False, reduction="none")
    per_token = np.asarray(none(np.array([[1, 0]]), probs))
    assert per_token.shape == (1, 2)
    assert per_token[0, 1] == 0.0
    weighted = float(probabilities(y_true, probs, sample_weight=np.array([[1.0, 3.0]])))
    assert weighted == pytest.approx(-(np.log(0.2) + 3 * np.log(0.8)) / 4, rel=1e-5)


def test_masked_crossentropy_serializes_and_trains():
    loss = MaskedSparseCategoricalCrossentropy(pad_id=0, label_smoothing=0.1)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, MaskedSparseCategoricalCrossentropy)
    assert (restored.pad_id, restored.label_smoothing, restored.from_logits) == (0, 0.1, True)
    with pytest.raises(ValueError, match="label_smoothing"):
        MaskedSparseCategoricalCrossentropy(label_smoothing=1.0)

    model = keras.Sequential([keras.Input((3, 4)), keras.layers.Dense(5)])
    model.compile(optimizer="sgd", loss=loss)
    x = np.ones((2, 3, 4), "float32")
    y = np.array([[1, 2, 0], [3, 0, 0]])
    value = model.train_on_batch(x, y)
    assert np.isfinite(value)


# ------------------------------------------------------------------------------ CTC


def brute_force_ctc(log_probs, label, blank=0):
    """-log of the summed probability of every path that collapses to ``label``."""
    frames, classes = log_probs.shape
    probs = np.exp(log_probs)
    total = 0.0
    for path in itertools.product(range(classes), repeat=frames):
        collapsed, previous = [], None
        for token in path:
            if token != previous and token != blank:
                collapsed.append(token)
            previous = token
        if collapsed == list(label):
            total += float(np.prod(probs[np.arange(frames), path]))
    return -np.log(total)


@pytest.mark.parametrize(
    "label,frames,blank",
    [([1, 2], 4, 0), ([1, 1], 4, 0), ([2], 3, 0), ([0, 1], 4, 2)],
)
def test_ctc_loss_matches_brute_force(label, frames, blank):
    rng = np.random.default_rng(len(label) * 10 + frames + blank)
    logits = rng.normal(size=(1, frames, 3)).astype("float32")
    value = np.asarray(ctc_loss([label], logits, [len(label)], [frames], blank_id=blank))
    expected = brute_force_ctc(log_softmax(logits[0].astype("float64")), label, blank)
    assert value.shape == (1,)
    assert value[0] == pytest.approx(expected, rel=1e-4)


def test_ctc_padding_beyond_lengths_changes_nothing():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(2, 4, 3)).astype("float32")
    labels = np.array([[1, 2], [2, 0]])
    base = np.asarray(ctc_loss(labels, logits, [2, 1], [4, 3]))
    expected = [
        brute_force_ctc(log_softmax(logits[0].astype("float64")), [1, 2]),
        brute_force_ctc(log_softmax(logits[1, :3].astype("float64")), [2]),
    ]
    np.testing.assert_allclose(base, expected, rtol=1e-4)
    # Longer label padding (any value) and extra frames of noise.
    padded_labels = np.array([[1, 2, -1, 7], [2, 5, 5, 5]])
    padded_logits = np.concatenate([logits, rng.normal(size=(2, 3, 3)).astype("float32")], 1)
    padded = np.asarray(ctc_loss(padded_labels, padded_logits, [2, 1], [4, 3]))
    np.testing.assert_allclose(padded, base, rtol=1e-5)


def test_ctc_loss_class_uses_label_padding_and_frame_mask():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 4, 3)).astype("float32")
    y_true = np.array([[1, 2], [2, 0]])
    per_sample = CTCLoss(reduction="none")(y_true, logits)
    expected = ctc_loss(y_true, logits, [2, 1], [4, 4])
    np.testing.assert_allclose(np.asarray(per_sample), np.asarray(expected), rtol=1e-5)
    assert float(CTCLoss()(y_true, logits)) == pytest.approx(float(np.mean(expected)), rel=1e-5)

    import tensorflow as tf

    masked = tf.constant(logits)
    masked._keras_mask = tf.constant([[True, True, True, True], [True, True, True, False]])
    with_mask = CTCLoss(reduction="none")(y_true, masked)
    np.testing.assert_allclose(
        np.asarray(with_mask), np.asarray(ctc_loss(y_true, logits, [2, 1], [4, 3])), rtol=1e-5
    )


def test_ctc_loss_class_serializes_and_trains():
    loss = CTCLoss(blank_id=0, label_pad_id=0)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, CTCLoss) and restored.label_pad_id == 0
    # In model.compile the frame lengths come from the propagated Keras mask.
    inputs = keras.Input((6, 2))
    hidden = keras.layers.Masking()(inputs)
    hidden = keras.layers.GRU(4, return_sequences=True)(hidden)
    model = keras.Model(inputs, keras.layers.Dense(4)(hidden))
    model.compile(optimizer="sgd", loss=loss)
    x = np.ones((2, 6, 2), "float32")
    x[1, 4:] = 0.0  # the second row has 4 frames
    y = np.array([[1, 2, 3], [3, 0, 0]])
    expected = float(np.mean(np.asarray(ctc_loss(y, model(x), [3, 1], [6, 4]))))
    assert model.train_on_batch(x, y) == pytest.approx(expected, rel=1e-4)
