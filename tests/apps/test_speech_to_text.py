"""speech_to_text: text normalization, synthetic and user splits (recorded), tiny train →
evaluate → export → predict (Keras, ONNX Runtime, LiteRT), bad audio, the manifest spec, and
the shipped model."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from apps.speech_to_text.config import SpeechToTextConfig
from apps.speech_to_text.data import (
    BLANK_ID,
    VOCABULARY,
    SpeechSet,
    encode_text,
    is_held_out_text,
    normalize_transcript,
    synthetic_split,
    user_splits,
)
from apps.speech_to_text.spec import SpeechSpec
from apps.speech_to_text.task import TASK, error_rates
from apps.speech_to_text.transcriber import Transcriber, decode_ids
from rnnkit.errors import ArtifactError, UserError
from rnnkit.task import RunDir

SHIPPED = Path(__file__).resolve().parents[2] / "exported" / "speech_to_text"

TINY = dict(train_size=24, val_size=6, test_size=6, epochs=1, units=8, num_layers=1,
            conv_filters=[8, 8], num_mel_bins=16, batch_size=8, max_audio_seconds=4.0,
            max_seconds=4.0)


def test_normalize_and_encode():
    assert normalize_transcript("Hello, World! It's 42.") == "hello world it's forty two"
    assert normalize_transcript("  'Quoted'  ") == "quoted"
    ids = encode_text("ab c")
    assert decode_ids(ids, VOCABULARY, BLANK_ID) == "ab c" and BLANK_ID not in ids
    assert VOCABULARY[BLANK_ID] == "<blank>"
    # blanks between repeats, collapsed spaces, out-of-range ids dropped
    assert decode_ids([3, 0, 1, 1, 0, 4, 99], VOCABULARY, BLANK_ID) == "a b"


@pytest.fixture(scope="module")
def cache(isolated_cache):
    return isolated_cache


def test_synthetic_splits_hold_out_texts_and_are_cached(cache):
    config = SpeechToTextConfig(**TINY)
    train = synthetic_split("train", 12, config)
    val = synthetic_split("validation", 6, config)
    assert len(train) == 12 and len(val) == 6
    assert not set(train.texts) & set(val.texts)
    assert all(is_held_out_text(t) for t in val.texts)
    assert not any(is_held_out_text(t) for t in train.texts)
    assert all(0 < n <= 4.0 * 16000 for n in train.lengths())
    again = synthetic_split("train", 12, config)  # from the .npz cache: identical
    np.testing.assert_array_equal(again.audio, train.audio)
    assert again.texts == train.texts and list(cache.glob("speech_to_text/train-12-*.npz"))
    # the recorded split reads back as the same utterances (from the cache)
    back = SpeechSet.from_records(val.records("validation"), config)
    np.testing.assert_array_equal(back.audio, val.audio)
    changed = [{**record, "text": "other"} for record in val.records("validation")]
    with pytest.raises(ArtifactError, match="no longer gives the texts"):
        SpeechSet.from_records(changed, config)


def test_user_data_split_is_recorded_and_read_back_without_the_other_files(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "wavs").mkdir()
    lines = []
    for i in range(60):
        soundfile.write(tmp_path / "wavs" / f"u{i}.wav", rng.normal(0, 0.1, 800), 16000)
        lines.append(f"u{i}|Utterance {i}|utterance {i}")
    (tmp_path / "metadata.csv").write_text("\n".join(lines) + "\n")
    config = SpeechToTextConfig(user_val_fraction=0.1)
    splits = user_splits(tmp_path, config)
    assert sum(map(len, splits.values())) == 60
    assert splits["test"] and splits["validation"] and not set(splits["test"]) & set(splits["train"])
    assert user_splits(tmp_path, config) == splits  # stable: by the hash of the file name
    with pytest.raises(UserError, match="user_val_fraction"):
        user_splits(tmp_path, SpeechToTextConfig(user_val_fraction=0.5))
    from apps.speech_to_text.data import read_speech

    test = read_speech(splits["test"], config)
    records = test.records()
    assert records[0] == {"path": splits["test"][0][0], "text": splits["test"][0][1]}
    for path, _ in splits["train"]:  # evaluate/export read only the recorded files
        Path(path).unlink()
    back = SpeechSet.from_records(records, config)
    np.testing.assert_array_equal(back.audio, test.audio)
    assert back.texts == [text for _, text in splits["test"]]


@pytest.fixture(scope="module")
def tiny_run(cache, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run") / "stt"
    metrics = TASK.train(SpeechToTextConfig(**TINY), run_dir)
    return run_dir, metrics


def test_train_writes_a_run_directory_with_recorded_splits(tiny_run):
    run_dir, metrics = tiny_run
    for name in ("run.json", "config.json", "model.keras", "metrics.json", "wer_curve.csv",
                 "assets/vocabulary.json", "assets/features.json", "history.csv"):
        assert (run_dir / name).is_file(), name
    assert 0.0 <= metrics["cer"] and set(metrics["utterances"]) == {"best", "median", "worst"}
    assert metrics["examples"] == TINY["test_size"]
    assert json.loads((run_dir / "metrics.json").read_text())["train"]["wer"] == metrics["wer"]
    index = json.loads((run_dir / "data" / "splits.json").read_text())
    assert {name: entry["examples"] for name, entry in index.items()} == {
        "train": TINY["train_size"], "validation": TINY["val_size"], "test": TINY["test_size"]}
    assert json.loads((run_dir / "run.json").read_text())["data"] == "synthetic"


def test_evaluate_scores_the_recorded_test_split(tiny_run):
    run_dir, trained = tiny_run
    metrics = TASK.evaluate(run_dir)
    assert metrics["data"] == "test split" and metrics["examples"] == TINY["test_size"]
    assert metrics["wer"] == pytest.approx(trained["wer"]) and len(metrics["utterances"]["worst"]) >= 1
    sections = json.loads((run_dir / "metrics.json").read_text())
    assert set(sections) == {"train", "evaluate"} and sections["evaluate"]["cer"] == metrics["cer"]
    # per engine beside the total (rows from every installed engine), and the real recordings
    engines = metrics["by_engine"]
    assert sum(row["examples"] for row in engines.values()) == TINY["test_size"]
    assert set(engines) <= {"espeak", "mbrola", "flite", "festival"} and "espeak" in engines
    assert sum(row["examples"] for row in metrics["by_voice"].values()) == TINY["test_size"]
    from apps.speech_to_text.real_speech import real_sets

    if real_sets():  # .ci/run installs pocketsphinx-testdata (tests/apps/test_speech_data.py)
        assert metrics["real_speech"]["all"]["examples"] == 12
        assert trained["real_speech"]["all"]["examples"] == 12


def _bad_audio(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    files = {}
    soundfile.write(folder / "empty.wav", np.zeros(0, np.float32), 16000)
    soundfile.write(folder / "silent.wav", np.zeros(16000, np.float32), 16000)
    soundfile.write(folder / "short.wav", rng.normal(scale=0.1, size=160), 16000)  # 0.01 s
    soundfile.write(folder / "long.flac", rng.normal(scale=0.05, size=16000 * 600).astype(
        np.float32), 16000, subtype="PCM_16")  # 10 minutes
    nan = rng.normal(scale=0.1, size=8000).astype(np.float32)
    nan[5] = np.nan
    soundfile.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    (folder / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00garbage")
    (folder / "song.mp3").write_bytes(b"ID3\x03\x00" + bytes(100))
    for name in ("empty.wav", "silent.wav", "short.wav", "long.flac", "nan.wav", "corrupt.wav",
                 "song.mp3"):
        files[name] = folder / name
    return files


def _check_bad_audio(predict_one):
    """Empty/too short → empty transcript; silent/10 min → a string; bad files → UserError."""
    assert predict_one("empty.wav")["transcript"] == ""
    assert predict_one("short.wav")["transcript"] == ""
    assert isinstance(predict_one("silent.wav")["transcript"], str)
    long = predict_one("long.flac")
    assert isinstance(long["transcript"], str) and long["seconds"] == 600.0
    for name, match in (("nan.wav", "NaN"), ("corrupt.wav", "Cannot read"),
                        ("song.mp3", "Cannot read"), ("missing.wav", "not found")):
        with pytest.raises(UserError, match=match):
            predict_one(name)


def test_keras_predict_handles_bad_audio(tiny_run, tmp_path):
    files = _bad_audio(tmp_path)
    _check_bad_audio(lambda name: TASK.predict(tiny_run[0], [files.get(name, tmp_path / name)],
                                               {"backend": "keras"})[0])
    with pytest.raises(UserError, match="does not take explain"):
        TASK.predict(tiny_run[0], [files["silent.wav"]], {"backend": "keras", "explain": True})


@pytest.mark.slow
def test_export_transcripts_match_keras_and_runtime_handles_bad_audio(tiny_run, tmp_path,
                                                                      monkeypatch):
    out = tmp_path / "export"
    manifest = TASK.export(tiny_run[0], out, formats=("onnx", "tflite"), quantize=("none",))
    agreement = manifest["agreement"]
    assert agreement["compared"] == "transcript" and agreement["source"] == "validation split"
    assert agreement["examples"] == TINY["val_size"]
    assert agreement["vs_keras"] == {"onnx/none": 1.0, "tflite/none": 1.0}
    rates = manifest["metrics"]["agreement_error_rates"]
    assert rates["onnx/none"] == rates["keras"] == rates["tflite/none"]
    assert manifest["metrics"]["test_split"]["examples"] == TINY["test_size"]
    assert manifest["parity"]["model"]["onnx"]["none"] < 1e-3
    assert manifest["graphs"]["model"]["tflite"]["inputs"]["waveform"] == [1, None]  # any length
    spec = SpeechSpec.from_manifest(manifest)
    assert (spec.sample_rate, spec.blank_id, spec.max_samples, spec.min_samples) == (
        16000, BLANK_ID, 64000, 400)
    assert manifest["heldout_sample"]["utterances"] >= 1
    files = _bad_audio(tmp_path)
    for backend in ("onnx", "tflite"):
        _check_bad_audio(lambda name, b=backend: TASK.predict(
            out, [files.get(name, tmp_path / name)], {"backend": b})[0])
    written = json.loads((out / "manifest.json").read_text())
    assert written["agreement"] == agreement  # part of the written manifest

    # A failure in the checks (inside the atomic export) keeps the good export.
    import apps.speech_to_text.task as task

    def broken(*args, **kwargs):
        raise RuntimeError("transcript check failed")

    monkeypatch.setattr(task, "_variant_error_rates", broken)
    with pytest.raises(RuntimeError, match="transcript check failed"):
        TASK.export(tiny_run[0], out, formats=("onnx",), quantize=("none",))
    assert json.loads((out / "manifest.json").read_text()) == written
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def _shipped_sample():
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    sample = manifest["heldout_sample"]
    with np.load(SHIPPED / sample["file"]) as data:
        audio, offsets = data["audio"].astype(np.float32) / 32767.0, data["offsets"]
        texts = [str(t) for t in data["texts"]]
    return sample, texts, [audio[offsets[i]:offsets[i + 1]] for i in range(len(texts))]


@pytest.mark.parametrize("backend", ["onnx", "tflite"])
def test_shipped_model_reproduces_its_sample_transcripts(backend):
    sample, texts, waves = _shipped_sample()
    hyps = Transcriber(SHIPPED, backend=backend).transcribe_many(waves)
    assert hyps == sample["transcripts"]
    assert error_rates(texts, hyps)["wer"] == pytest.approx(sample["wer"], abs=1e-9)


def test_transcriber_runs_without_tensorflow():
    code = ("import sys, json; from apps.speech_to_text.transcriber import Transcriber; "
            "import numpy as np; "
            f"s = json.load(open({str(SHIPPED / 'manifest.json')!r}))['heldout_sample']; "
            f"d = np.load({str(SHIPPED / 'heldout_sample.npz')!r}); "
            "a, o = d['audio'].astype(np.float32) / 32767.0, d['offsets']; "
            f"t = Transcriber({str(SHIPPED)!r}).transcribe_many([a[o[0]:o[1]], a[o[1]:o[2]]]); "
            "assert t == s['transcripts'][:2], t; "
            "bad = [m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_missing_manifest_field_is_an_artifact_error_naming_it(tmp_path):
    for item in SHIPPED.iterdir():
        if item.name != "manifest.json":
            (tmp_path / item.name).symlink_to(item)
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    del manifest["vocabulary"]["blank_id"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"manifest.vocabulary: missing required field `blank_id`"):
        Transcriber(tmp_path)  # the schema check at load names it
    with pytest.raises(ArtifactError, match=r"no `vocabulary.blank_id` \(SpeechSpec.blank_id\)"):
        SpeechSpec.from_manifest(manifest)
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    del manifest["chunking"]["min_samples"]
    with pytest.raises(ArtifactError, match="chunking.min_samples"):
        SpeechSpec.from_manifest(manifest)


def test_shipped_model_has_every_format_within_15_mb():
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    files = manifest["graphs"]["model"]["files"]
    assert set(files["onnx"]) == {"none", "int8"}
    assert set(files["tflite"]) == {"none", "int8", "float16"}
    assert (SHIPPED / files["saved_model"]["none"] / "saved_model.pb").is_file()
    total = sum(path.stat().st_size for path in SHIPPED.rglob("*") if path.is_file())
    assert total <= 15_000_000, total
    agreement = manifest["agreement"]
    assert agreement["compared"] == "transcript" and agreement["examples"] == 64
    assert set(agreement["vs_keras"]) == {"onnx/none", "onnx/int8", "tflite/none",
                                          "tflite/int8", "tflite/float16"}
    for variant in ("onnx/none", "tflite/none"):
        assert agreement["vs_keras"][variant] == 1.0, variant
    # Quantized weights change a few transcripts, not the error rate (the frontend stays
    # float32 in int8: an 8-bit power spectrum made the WER 0.5-0.9).
    rates = manifest["metrics"]["agreement_error_rates"]
    for variant in ("onnx/int8", "tflite/int8", "tflite/float16"):
        assert rates[variant]["wer"] <= rates["keras"]["wer"] + 0.05, variant
    # The four-engine model (#13) on its 300 held-out utterances (unseen texts, half from
    # held-out voices): WER 0.201, CER 0.064 when exported.
    test_split = manifest["metrics"]["test_split"]
    assert test_split["examples"] == 300
    assert test_split["wer"] < 0.25 and test_split["cer"] < 0.08, test_split


def test_batches_allow_any_label_width_and_reshuffle_per_epoch():
    # Regression: with shapes inferred from the first batches (all label width 6 here), the
    # wider last batch failed inside fit with "yielded an element of shape (2, 12)".
    from apps.speech_to_text.data import speech_dataset

    rng = np.random.default_rng(0)
    texts = ["aaaaaa"] * 10 + ["bbbbbbbbbbbb", "cc"]
    waves = [rng.normal(0, 0.1, 1600 + 160 * i).astype(np.float32) for i in range(len(texts))]
    data = SpeechSet.from_waveforms(waves, texts, ["test"] * len(texts))
    config = SpeechToTextConfig(**{**TINY, "batch_size": 2, "noise_probability": 0.0})
    dataset = speech_dataset(data, config, training=True, seed=3)
    assert dataset.element_spec[0]["labels"].shape.as_list() == [None, None]
    assert len(dataset) == 6
    widths = [x["labels"].shape[1] for x, _ in dataset]
    assert sorted(widths) == [6, 6, 6, 6, 6, 12]
    first = [x["lengths"].numpy().tolist() for x, _ in dataset]
    second = [x["lengths"].numpy().tolist() for x, _ in dataset]
    assert sorted(map(tuple, first)) == sorted(map(tuple, second)) and first != second


def test_reverb_adds_a_decaying_tail_and_keeps_length_and_level():
    from apps.speech_to_text.data import add_reverb

    impulse = np.zeros(16000, np.float32)
    impulse[100] = 0.5
    wet = add_reverb(impulse, 0.4, np.random.default_rng(0), 16000)
    assert wet.shape == impulse.shape and wet.dtype == np.float32
    assert np.isclose(np.sqrt(np.mean(wet**2)), np.sqrt(np.mean(impulse**2)), rtol=1e-3)
    assert np.max(np.abs(wet[:100])) < 1e-6  # causal
    # energy after the direct path decays: the first 100 ms after it outweigh 200-300 ms
    early = np.sum(wet[101:1700] ** 2)
    late = np.sum(wet[3300:4900] ** 2)
    assert early > 5 * late > 0
    assert np.array_equal(add_reverb(impulse, 0.0, np.random.default_rng(0)), impulse)


def test_random_eq_band_limits_and_keeps_level():
    from apps.speech_to_text.data import random_eq

    rng = np.random.default_rng(1)
    t = np.arange(16000) / 16000
    low, high = np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 7900 * t)
    for seed in range(5):
        out = random_eq((low + high).astype(np.float32), np.random.default_rng(seed))
        spectrum = np.abs(np.fft.rfft(out))
        # low-pass at <= 8 kHz with an 8th-power slope: 7.9 kHz is always cut relative to 1 kHz
        assert spectrum[7900] < 0.75 * spectrum[1000]
        assert np.isclose(np.sqrt(np.mean(out**2)), 1.0, rtol=1e-3)
    assert random_eq(np.zeros(0, np.float32), rng).size == 0


def test_room_and_channel_augmentation_only_in_training_batches():
    from apps.speech_to_text.data import augment_waveform, speech_dataset

    rng = np.random.default_rng(0)
    waves = [rng.normal(0, 0.1, 3200).astype(np.float32) for _ in range(2)]
    plain = SpeechToTextConfig(**{**TINY, "noise_probability": 0.0})
    room = SpeechToTextConfig(**{**TINY, "noise_probability": 0.0, "reverb_probability": 1.0,
                                 "eq_probability": 1.0})
    dry = augment_waveform(waves[0], plain, np.random.default_rng(5))
    wet = augment_waveform(waves[0], room, np.random.default_rng(5))
    assert dry.shape == wet.shape == waves[0].shape and not np.allclose(dry, wet)
    data = SpeechSet.from_waveforms(waves, ["ab", "cd"], ["test"] * 2)
    for config in (plain, room):
        (evaluation, _), = speech_dataset(data, config, training=False).as_numpy_iterator()
        np.testing.assert_array_equal(evaluation["waveform"][:, :3200], np.stack(waves))
    (train, _), = speech_dataset(data, room, training=True).as_numpy_iterator()
    assert not np.allclose(np.sort(train["waveform"][:, :3200], 0), np.sort(np.stack(waves), 0))
    assert not train["waveform"][:, 3200:].any()  # padding stays silent


def test_cmvn_normalises_valid_frames_and_ignores_padding():
    from apps.speech_to_text.model import MaskedCMVN

    rng = np.random.default_rng(2)
    features = rng.normal(3.0, 2.0, (2, 10, 4)).astype(np.float32)
    mask = np.arange(10)[None, :] < np.array([[10], [6]])
    padded = features.copy()
    padded[1, 6:] = 1e3  # whatever sits in the padding must not matter
    out = np.asarray(MaskedCMVN()([padded, mask]))
    assert np.allclose(out[1, 6:], 0.0)
    for row, length in ((0, 10), (1, 6)):
        valid = out[row, :length]
        assert np.allclose(valid.mean(axis=0), 0.0, atol=1e-5)
        assert np.allclose(valid.std(axis=0), 1.0, atol=1e-3)
    alone = np.asarray(MaskedCMVN()([features[1:, :6], np.ones((1, 6), bool)]))
    assert np.allclose(alone[0], out[1, :6], atol=1e-5)


@pytest.mark.slow
def test_cmvn_model_exports_with_parity(cache, tmp_path):
    run_dir = tmp_path / "cmvn"
    TASK.train(SpeechToTextConfig(**{**TINY, "feature_cmvn": True}), run_dir)
    manifest = TASK.export(run_dir, tmp_path / "export", formats=("onnx", "tflite"),
                           quantize=("none",))
    assert manifest["parity"]["model"]["onnx"]["none"] < 1e-3
    assert manifest["parity"]["model"]["tflite"]["none"] < 1e-3
    assert manifest["agreement"]["vs_keras"]["onnx/none"] == 1.0


@pytest.mark.slow
def test_user_data_run_evaluates_and_exports_from_its_recorded_file_lists(cache, tmp_path):
    data = synthetic_split("train", 24, SpeechToTextConfig(**TINY))
    (tmp_path / "lj" / "wavs").mkdir(parents=True)
    lines = []
    for i in range(len(data)):
        soundfile.write(tmp_path / "lj" / "wavs" / f"u{i}.wav", data.waveform(i), 16000)
        lines.append(f"u{i}|{data.texts[i]}")
    (tmp_path / "lj" / "metadata.csv").write_text("\n".join(lines) + "\n")
    config = SpeechToTextConfig(**{**TINY, "user_val_fraction": 0.15})
    run_dir = tmp_path / "run"
    TASK.train(config, run_dir, data=tmp_path / "lj")
    run = RunDir.open(run_dir, "speech_to_text")
    recorded = {name: [r["path"] for r in run.split(name)]
                for name in ("train", "validation", "test")}
    assert sum(map(len, recorded.values())) == 24 and recorded["test"] and recorded["validation"]
    for path in recorded["train"]:  # evaluate and export read only the recorded lists
        Path(path).unlink()
    metrics = TASK.evaluate(run_dir)
    assert metrics["data"] == "test split" and metrics["examples"] == len(recorded["test"])
    manifest = TASK.export(run_dir, tmp_path / "export", formats=("onnx",), quantize=("none",))
    assert manifest["agreement"]["examples"] == len(recorded["validation"])
    assert manifest["agreement"]["vs_keras"] == {"onnx/none": 1.0}
    assert "heldout_sample" not in manifest  # only for the synthetic default data
