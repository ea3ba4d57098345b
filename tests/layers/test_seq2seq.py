"""Tests for the seq2seq builders (rnnkit.layers.seq2seq)."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from rnnkit.layers.seq2seq import (  # noqa: E402
    PaddingMask,
    build_attention_decoder,
    build_encoder,
    build_seq2seq_model,
)

SOURCE = np.array([[5, 6, 7, 8, 0, 0], [4, 9, 3, 0, 0, 0]], dtype="int32")
TARGET = np.array([[2, 5, 6, 7, 4], [2, 8, 9, 0, 0]], dtype="int32")


def _build(kind="lstm", attention="luong", bidirectional=True, **kwargs):
    keras.utils.set_random_seed(0)
    encoder = build_encoder(12, embedding_dim=8, units=6, kind=kind, bidirectional=bidirectional,
                            decoder_units=10, decoder_kind=kind)
    decoder = build_attention_decoder(11, values_dim=12 if bidirectional else 6,
                                      embedding_dim=7, units=10, kind=kind,
                                      attention=attention, **kwargs)
    return encoder, decoder


@pytest.mark.parametrize("kind,attention,bidirectional", [
    ("lstm", "luong", True), ("gru", "bahdanau", True), ("lstm", "bahdanau", False),
])
def test_shapes(kind, attention, bidirectional):
    encoder, decoder = _build(kind, attention, bidirectional)
    outputs, *states = [np.asarray(t) for t in encoder(SOURCE)]
    width = 12 if bidirectional else 6
    assert tuple(outputs.shape) == (2, 6, width)
    assert len(states) == (2 if kind == "lstm" else 1)
    assert all(tuple(s.shape) == (2, 10) for s in states)
    mask = SOURCE != 0
    logits = decoder.training_model([TARGET, *states, outputs, mask])
    assert tuple(logits.shape) == (2, 5, 11)
    step = decoder.step_model([TARGET[:, :1], *states, outputs, mask])
    assert len(step) == 2 + len(states)
    assert tuple(step[0].shape) == (2, 11)
    assert tuple(step[-1].shape) == (2, 6)


@pytest.mark.parametrize("kind,attention", [("lstm", "luong"), ("gru", "bahdanau")])
def test_step_model_equals_teacher_forcing(kind, attention):
    """Running the step model T times reproduces the teacher-forcing logits exactly."""
    encoder, decoder = _build(kind, attention)
    outputs, *states = [np.asarray(t) for t in encoder(SOURCE)]
    mask = SOURCE != 0
    expected = np.asarray(decoder.training_model([TARGET, *states, outputs, mask]))
    step_states = states
    for t in range(TARGET.shape[1]):
        logits, *step_states, weights = [np.asarray(a) for a in decoder.step_model(
            [TARGET[:, t:t + 1], *step_states, outputs, mask])]
        np.testing.assert_allclose(logits, expected[:, t], rtol=1e-5, atol=1e-5)
        # Attention is a distribution over the unpadded source positions only.
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
        assert np.all(weights[~mask] == 0.0)


def test_source_padding_does_not_change_outputs():
    encoder, decoder = _build()
    padded = np.pad(SOURCE, ((0, 0), (0, 3)))
    a = np.asarray(build_seq2seq_model(encoder, decoder)({"source_ids": SOURCE,
                                                          "target_in": TARGET}))
    b = np.asarray(build_seq2seq_model(encoder, decoder)({"source_ids": padded,
                                                          "target_in": TARGET}))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_training_step_and_serialization(tmp_path):
    encoder, decoder = _build()
    model = build_seq2seq_model(encoder, decoder)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    labels = np.concatenate([TARGET[:, 1:], np.zeros((2, 1), "int32")], axis=1)
    history = model.fit({"source_ids": SOURCE, "target_in": TARGET}, labels, epochs=1,
                        verbose=0)
    assert np.isfinite(history.history["loss"][0])
    path = tmp_path / "step.keras"
    decoder.step_model.save(path)
    restored = keras.models.load_model(path)
    outputs, *states = [np.asarray(t) for t in encoder(SOURCE)]
    inputs = [TARGET[:, :1], *states, outputs, SOURCE != 0]
    for a, b in zip(decoder.step_model(inputs), restored(inputs), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


def test_padding_mask_and_bad_arguments():
    mask = np.asarray(PaddingMask()(SOURCE))
    assert mask.dtype == bool and mask.sum() == 7
    with pytest.raises(ValueError, match="attention"):
        build_attention_decoder(5, values_dim=4, attention="xyz")
    with pytest.raises(ValueError, match="luong_score"):
        build_attention_decoder(5, values_dim=4, units=8, luong_score="dot")
    with pytest.raises(ValueError, match="vocab_size"):
        build_encoder(0)
