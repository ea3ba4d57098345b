"""speech_to_text: evaluate --data scores every row of the file, evaluate with a closed
vocabulary, and train --init-from (a run or an export directory; the shipped export's
SavedModel weights restored into Keras reproduce its ONNX outputs)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from apps.speech_to_text.config import SpeechToTextConfig
from apps.speech_to_text.data import synthetic_split
from apps.speech_to_text.task import TASK, initial_config, load_initial_weights
from rnnkit.errors import UserError
from rnnkit.task import RunDir

SHIPPED = Path(__file__).resolve().parents[2] / "exported" / "speech_to_text"
TINY = dict(train_size=24, val_size=6, test_size=6, epochs=1, units=8, num_layers=1,
            conv_filters=[8, 8], num_mel_bins=16, batch_size=8, max_audio_seconds=4.0,
            max_seconds=4.0, eval_wer_every_epoch=False)


@pytest.fixture(scope="module")
def cache(isolated_cache):
    return isolated_cache


@pytest.fixture(scope="module")
def tiny_run(cache, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run") / "stt"
    TASK.train(SpeechToTextConfig(**TINY), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def clips_csv(cache, tmp_path_factory):
    """A CSV of 40 rows (24 distinct clips, some listed twice under other names)."""
    folder = tmp_path_factory.mktemp("clips")
    data = synthetic_split("train", 24, SpeechToTextConfig(**TINY))
    lines = ["path,transcript"]
    for i in range(40):
        soundfile.write(folder / f"clip{i}.wav", data.waveform(i % 24), 16000)
        lines.append(f"clip{i}.wav,{data.texts[i % 24]}")
    (folder / "clips.csv").write_text("\n".join(lines) + "\n")
    return folder / "clips.csv"


def test_evaluate_data_scores_every_row(tiny_run, clips_csv, tmp_path):
    metrics = TASK.evaluate(tiny_run, data=clips_csv)
    assert metrics["examples"] == 40
    assert metrics["rows"] == {"rows": 40, "scored": 40, "no_transcript": 0, "empty_audio": 0}
    # A 2-row file (the old per-split reading listed one row twice) and a row without text.
    lines = clips_csv.read_text().splitlines()
    small = tmp_path / "small.csv"
    small.write_text("\n".join([lines[1].replace("clip0", str(clips_csv.parent / "clip0")),
                                lines[2].replace("clip1", str(clips_csv.parent / "clip1")),
                                f"{clips_csv.parent / 'clip2.wav'},  ..."]) + "\n")
    metrics = TASK.evaluate(tiny_run, data=small)
    assert metrics["examples"] == 2
    assert metrics["rows"] == {"rows": 3, "scored": 2, "no_transcript": 1, "empty_audio": 0}


def test_evaluate_with_a_closed_vocabulary(tiny_run, clips_csv, tmp_path):
    words = tmp_path / "words.txt"
    texts = [line.split(",", 1)[1] for line in clips_csv.read_text().splitlines()[1:]]
    words.write_text("\n".join(sorted({w for t in texts for w in t.split()})) + "\n")
    metrics = TASK.evaluate(tiny_run, options={"vocabulary": str(words)})
    assert metrics["data"] == "test split"
    assert metrics["closed_vocabulary"]["vocabulary_words"] == len(
        words.read_text().split())
    hyps = [u["hypothesis"] for part in metrics["utterances"].values() for u in part]
    assert all(set(h.split()) <= set(words.read_text().split()) for h in hyps)
    recorded = json.loads((tiny_run / "metrics.json").read_text())["evaluate"]
    assert recorded["closed_vocabulary"]["vocabulary"] == str(words)
    result = subprocess.run(
        [sys.executable, "-m", "rnnkit.cli", "speech_to_text", "evaluate", str(tiny_run),
         "--vocabulary", str(tmp_path / "none.txt")], capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == \
        f"error: Vocabulary file not found: {tmp_path / 'none.txt'}"
    with pytest.raises(UserError, match="sentiment evaluate does not take vocabulary"):
        from apps.sentiment.task import TASK as SENTIMENT

        SENTIMENT.evaluate(tiny_run, options={"vocabulary": "x"})


def _weights(model):
    return {w.path: np.asarray(w) for w in model.weights if "seed_generator" not in w.path}


def test_init_from_a_run_starts_from_its_weights_and_keeps_training(tiny_run, clips_csv,
                                                                     tmp_path):
    import keras

    from apps.speech_to_text.model import build_model

    source = TASK.init_source(tiny_run)
    # The user's config asks for another size: the source's architecture wins.
    config = initial_config(SpeechToTextConfig(**{**TINY, "units": 32}), source)
    assert config.units == TINY["units"] and config.num_mel_bins == TINY["num_mel_bins"]
    model = build_model(config)
    assert load_initial_weights(model, config, source) > 0
    trained = keras.saving.load_model(tiny_run / "model.keras", compile=False)
    expected = _weights(trained)
    got = _weights(model)
    assert got.keys() == expected.keys()
    for path, value in expected.items():
        np.testing.assert_array_equal(got[path], value, err_msg=path)

    run_dir = tmp_path / "tuned"
    metrics = TASK.train(SpeechToTextConfig(**{**TINY, "learning_rate": 1e-3}), run_dir,
                         data=clips_csv, init_from=tiny_run)
    assert metrics["init_from"] == str(tiny_run) and metrics["init_layers"] > 0
    assert RunDir.open(run_dir).info["init_from"] == {"path": str(tiny_run), "kind": "run"}
    tuned = _weights(keras.saving.load_model(run_dir / "model.keras", compile=False))
    changed = [p for p in expected if not np.array_equal(tuned[p], expected[p])]
    assert changed  # training went on from the source's weights
    assert TASK.evaluate(run_dir)["examples"] == metrics["examples"]


def test_init_from_an_export_restores_its_savedmodel_weights(tiny_run, tmp_path):
    from apps.speech_to_text.model import build_model

    export = tmp_path / "export"
    TASK.export(tiny_run, export, formats=("saved_model", "onnx"), quantize=("none",))
    source = TASK.init_source(export)
    assert source.manifest["architecture"]["units"] == TINY["units"]
    config = initial_config(SpeechToTextConfig(**{**TINY, "num_mel_bins": 64, "units": 16}),
                            source)
    # From the manifest's features and architecture.
    assert (config.num_mel_bins, config.units) == (TINY["num_mel_bins"], TINY["units"])
    model = build_model(config)
    load_initial_weights(model, config, source)
    from rnnkit import runtime

    onnx = runtime.load(export, backend="onnx")
    wave = np.random.default_rng(0).normal(0, 0.1, (2, 16000)).astype(np.float32)
    lengths = np.array([16000, 9600], np.int32)
    expected = onnx.run("model", {"waveform": wave, "lengths": lengths})["log_probs"]
    got = np.asarray(model.predict_on_batch([wave, lengths])[0])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # An architecture the export was not trained with is refused, naming the mismatch.
    with pytest.raises(UserError, match="shape|architecture"):
        wide = build_model(SpeechToTextConfig(**{**TINY, "units": 16}))
        load_initial_weights(wide, SpeechToTextConfig(**{**TINY, "units": 16}), source)


def test_shipped_export_weights_reproduce_its_onnx_outputs():
    """`--init-from exported/speech_to_text` starts from exactly the shipped model."""
    from apps.speech_to_text.model import build_model
    from rnnkit import runtime

    source = TASK.init_source(SHIPPED)
    config = initial_config(SpeechToTextConfig(), source)
    model = build_model(config)
    load_initial_weights(model, config, source)
    with np.load(SHIPPED / "heldout_sample.npz") as data:
        audio = data["audio"][: data["offsets"][1]].astype(np.float32) / 32767.0
    wave, lengths = audio[None], np.array([audio.size], np.int32)
    expected = runtime.load(SHIPPED).run("model", {"waveform": wave, "lengths": lengths})
    got = model.predict_on_batch([wave, lengths])[0]
    np.testing.assert_allclose(np.asarray(got), expected["log_probs"], atol=1e-3)


def test_init_from_errors(tmp_path):
    with pytest.raises(UserError, match="neither a run directory"):
        TASK.init_source(tmp_path)
    with pytest.raises(UserError, match="export of app 'sentiment'"):
        TASK.init_source(SHIPPED.parent / "sentiment")
    from apps.sentiment.task import TASK as SENTIMENT

    with pytest.raises(UserError, match="sentiment train does not take --init-from"):
        SENTIMENT.init_source(SHIPPED)


def test_cli_init_from_on_an_app_without_it_is_one_line_exit_2(tmp_path, capsys):
    """Through the CLI every app's ``train`` takes the flag (sentiment overrides ``train``)
    and refuses it before anything is written."""
    from rnnkit.cli import main

    code = main(["sentiment", "train", "--init-from", str(SHIPPED), "--run-dir",
                 str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "sentiment train does not take --init-from" in err
    assert not (tmp_path / "run").exists()
