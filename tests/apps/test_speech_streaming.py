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


@pytest.fixture(scope="module")
def stream_export(tmp_path_factory):
    import os

    from apps.speech_to_text.task import TASK

    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("RNNKIT_CACHE")
    os.environ["RNNKIT_CACHE"] = str(cache)
    try:  # the tiny splits are read back from this cache by the tests too
        run_dir = tmp_path_factory.mktemp("run") / "stream"
        config = dataclasses.replace(_config(), train_size=24, val_size=6, test_size=6, epochs=1,
                                     batch_size=8, max_audio_seconds=4.0, max_seconds=4.0)
        TASK.train(config, run_dir)
        out = run_dir / "export"
        manifest = TASK.export(run_dir, out, formats=("onnx", "tflite"),
                               quantize=("none", "int8"))
        yield run_dir, out, manifest
    finally:
        if old is None:
            os.environ.pop("RNNKIT_CACHE")
        else:
            os.environ["RNNKIT_CACHE"] = old


@pytest.mark.slow
def test_export_holds_a_step_graph_whose_stream_equals_the_offline_graph(stream_export):
    from apps.speech_to_text.data import SpeechSet
    from apps.speech_to_text.streaming import StreamingTranscriber
    from apps.speech_to_text.transcriber import Transcriber
    from rnnkit import runtime
    from rnnkit.runtime.streaming import StepRunner
    from rnnkit.task import RunDir

    run_dir, out, manifest = stream_export
    runtime.check_manifest(manifest)
    section = manifest["streaming"]
    assert section["graph"] == "stream_step" and section["chunk_samples"] == 2880
    graph = manifest["graphs"]["stream_step"]
    assert [i["name"] for i in graph["inputs"]] == ["audio_chunk"] + [
        s["input"] for s in section["states"]]
    assert {o["name"] for o in graph["outputs"]} == {"log_probs"} | {
        s["output"] for s in section["states"]}
    assert sorted(graph["files"]["tflite"]) == ["int8", "none"]
    for backend in ("onnx", "tflite"):
        assert manifest["parity"]["stream_step"][backend]["none"] < 1e-3
    # Streamed == offline transcripts on the held-out utterances in float; int8 scales are
    # computed per input tensor (a chunk vs the whole utterance), so int8 is only measured.
    agreement = section["agreement"]
    assert agreement["utterances"] == 6
    assert sorted(agreement["equal"]) == ["onnx/int8", "onnx/none", "tflite/int8", "tflite/none"]
    assert agreement["equal"]["onnx/none"] == agreement["equal"]["tflite/none"] == 1.0
    # The runtime's chunk-by-chunk log-probs are the whole-utterance graph's.
    run = RunDir(run_dir)
    validation = SpeechSet.from_records(run.split("validation"), run.config(SpeechToTextConfig))
    wave = max((validation.waveform(i) for i in range(len(validation))), key=len)
    for backend in ("onnx", "tflite"):
        model = runtime.load(out, backend=backend)
        whole = model.run("model", {"waveform": wave[None], "lengths": np.array([wave.size])})
        frames = int(whole["logit_lengths"][0])
        step = StepRunner(model)
        streamed = np.concatenate([step(chunk)["log_probs"][0]
                                   for chunk, _ in rechunk([wave], step.chunk_samples)])
        np.testing.assert_allclose(streamed[:frames], whole["log_probs"][0, :frames], atol=1e-3)
        offline = Transcriber(out, backend).transcribe(wave)
        pieces = np.array_split(wave, 7)  # uneven chunk sizes
        results = list(StreamingTranscriber(out, backend).stream(iter(pieces)))
        assert results[-1].final and results[-1].text == offline
        assert all(not r.final for r in results[:-1])
        words = results[-1].words
        assert " ".join(w.text for w in words) == offline
        assert all(0 <= w.start < w.end <= wave.size / 16000 + 0.03 for w in words)


@pytest.mark.slow
def test_cli_predict_stream_prints_partials_then_the_final_transcript(stream_export, tmp_path):
    import json
    import os
    import subprocess
    import sys

    import soundfile

    from apps.speech_to_text.streaming import StreamingTranscriber

    run_dir, out, _ = stream_export
    rng = np.random.default_rng(5)
    wave = (0.2 * np.sin(np.arange(16000 * 2) * 0.07) * rng.uniform(0.5, 1, 32000))
    soundfile.write(tmp_path / "a.wav", wave.astype(np.float32), 16000)
    command = [sys.executable, "-m", "rnnkit.cli", "speech_to_text", "predict", str(out),
               str(tmp_path / "a.wav"), "--stream", "--backend", "tflite", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    expected = list(StreamingTranscriber(out, "tflite").stream(tmp_path / "a.wav"))
    assert [line.get("partial", line.get("transcript")) for line in lines] == [
        r.text for r in expected]
    assert "transcript" in lines[-1] and all("partial" in line for line in lines[:-1])
    assert lines[-1]["seconds"] == 2.0
    # A run directory (Keras) cannot stream: one-line error, exit 2.
    done = subprocess.run(command[:5] + [str(run_dir), str(tmp_path / "a.wav"), "--stream"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().startswith("error:")
    assert "export directory" in done.stderr


def test_causal_and_valid_framing_give_the_frames_of_left_padded_audio():
    from rnnkit.layers.audio import LogMelFrontend

    rng = np.random.default_rng(2)
    wave = rng.normal(0, 0.1, (1, 1999)).astype(np.float32)
    settings = dict(num_mel_bins=16)
    causal = np.asarray(LogMelFrontend(framing="causal", **settings)(wave))
    assert causal.shape == (1, 1999 // 160, 16)
    padded = np.pad(wave, [(0, 0), (240, 0)])
    right = np.asarray(LogMelFrontend(**settings)(padded))
    np.testing.assert_allclose(causal[0], right[0, :causal.shape[1]], atol=1e-4)
    valid = np.asarray(LogMelFrontend(framing="valid", **settings)(padded))
    np.testing.assert_allclose(valid, causal, atol=1e-4)
    with pytest.raises(ValueError, match="framing"):
        LogMelFrontend(framing="centre")


@pytest.mark.slow
def test_streaming_transcriber_runs_without_tensorflow(stream_export):
    import subprocess
    import sys

    out = stream_export[1]
    code = ("import sys; import numpy as np; "
            "from apps.speech_to_text.streaming import StreamingTranscriber; "
            f"s = StreamingTranscriber({str(out)!r}, 'tflite', 'int8'); "
            "r = s.stream_all(iter([np.zeros(999, np.float32), np.ones(5000, np.int16)])); "
            "assert r.final and abs(r.seconds - 5999 / 16000) < 1e-9, r; "
            "bad = [m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_export_without_a_step_graph_cannot_stream():
    from pathlib import Path

    from apps.speech_to_text.streaming import StreamingTranscriber
    from rnnkit.errors import ArtifactError

    shipped = Path(__file__).resolve().parents[2] / "exported" / "speech_to_text"
    with pytest.raises(ArtifactError, match="no `streaming` section.*streaming=true"):
        StreamingTranscriber(shipped)


def test_stream_refuses_a_closed_vocabulary_or_language_model(tmp_path):
    from apps.speech_to_text.streaming import stream_predict
    from rnnkit.errors import UserError

    with pytest.raises(UserError, match="greedily.*--vocabulary, --word-bonus"):
        list(stream_predict(tmp_path, ["a.wav"], {"vocabulary": "words.txt", "word_bonus": 1.0,
                                                  "lm_weight": None}))
