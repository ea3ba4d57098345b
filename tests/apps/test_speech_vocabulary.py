"""speech_to_text closed-vocabulary decoding on the shipped export: the same transcripts on
ONNX Runtime and LiteRT (decoding runs on the log-probabilities), the runtime API and the CLI
flags, and the errors for bad word lists."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from apps.speech_to_text.task import TASK
from apps.speech_to_text.transcriber import Transcriber, decode_ids
from rnnkit.decoding import Lexicon, NgramLM, ctc_lexicon_beam_search
from rnnkit.errors import UserError
from rnnkit.metrics import wer

SHIPPED = Path(__file__).resolve().parents[2] / "exported" / "speech_to_text"


@pytest.fixture(scope="module")
def sample():
    with np.load(SHIPPED / "heldout_sample.npz") as data:
        audio = data["audio"].astype(np.float32) / 32767.0
        offsets, texts = data["offsets"], [str(t) for t in data["texts"]]
    waves = [audio[offsets[i]:offsets[i + 1]] for i in range(len(texts))]
    return waves[:12], texts[:12]


@pytest.fixture(scope="module")
def transcribers():
    return {backend: Transcriber(SHIPPED, backend=backend) for backend in ("onnx", "tflite")}


def test_closed_vocabulary_is_the_same_on_onnx_and_tflite_and_helps(sample, transcribers):
    waves, texts = sample
    words = sorted({w for t in texts for w in t.split()})
    onnx, tflite = transcribers["onnx"], transcribers["tflite"]
    plain = onnx.transcribe_many(waves)
    closed = onnx.transcribe_many(waves, vocabulary=words)
    assert tflite.transcribe_many(waves, vocabulary=words) == closed
    assert all(set(t.split()) <= set(words) for t in closed)
    assert wer(texts, closed) < wer(texts, plain)  # measured 0.018 vs 0.066 on all 30
    # The transcriber's decode is the lexicon search on the model's own log-probabilities.
    log_probs, lengths = onnx.run_batch(waves[1][None], np.array([len(waves[1])], np.int32))
    lexicon = Lexicon(words, onnx.vocabulary, onnx.spec.blank_id)
    ids = ctc_lexicon_beam_search(log_probs[0, :int(lengths[0])], lexicon, beam_width=16)
    assert decode_ids(ids, onnx.vocabulary, onnx.spec.blank_id) == closed[1]
    # A vocabulary given at construction applies to every call; a call's own replaces it.
    fixed = Transcriber(SHIPPED, vocabulary=words)
    assert fixed.transcribe_many(waves) == closed
    digits = fixed.transcribe_many(waves[:1], vocabulary=["one", "two"])[0]
    assert set(digits.split()) <= {"one", "two"}


def test_lm_text_file_drives_the_decode(sample, transcribers, tmp_path):
    waves, texts = sample
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(t.upper() + "." for t in texts) + "\n")  # case, punctuation
    onnx = transcribers["onnx"]
    with_lm = onnx.transcribe_many(waves, lm=corpus)  # the LM's words are the vocabulary
    assert wer(texts, with_lm) <= wer(texts, onnx.transcribe_many(waves))
    assert with_lm == transcribers["tflite"].transcribe_many(waves, lm=corpus)
    words = onnx.word_decoding(lm=corpus, lm_weight=1.0, word_bonus=0.5)
    assert isinstance(words.lm, NgramLM) and len(words.lexicon) == len(
        {w for t in texts for w in t.split()})
    assert (words.lm_weight, words.word_bonus) == (1.0, 0.5)


def test_vocabulary_errors_name_the_problem(tmp_path, transcribers):
    onnx = transcribers["onnx"]
    with pytest.raises(UserError, match="not found"):
        onnx.word_decoding(vocabulary=tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(UserError, match="holds no words"):
        onnx.word_decoding(vocabulary=tmp_path / "empty.txt")
    with pytest.raises(UserError, match=r"'é' \(in 'café'\)"):
        onnx.word_decoding(vocabulary=["tea", "Café"])
    with pytest.raises(UserError, match="need a vocabulary or an lm"):
        onnx.word_decoding(lm_weight=0.3)
    with pytest.raises(UserError, match="Language model text file not found"):
        onnx.word_decoding(lm=tmp_path / "nope.txt")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "rnnkit.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_cli_predict_with_vocabulary_and_lm(sample, tmp_path):
    waves, texts = sample
    clip = tmp_path / "clip.wav"
    soundfile.write(clip, waves[0], 16000)
    words = tmp_path / "words.txt"
    words.write_text("zero one two three four five\nsix seven eight nine\n")
    for backend in ("onnx", "tflite"):
        result = _cli("speech_to_text", "predict", SHIPPED, clip, "--vocabulary", words,
                      "--backend", backend, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["transcript"] == texts[0]  # a digit string
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(texts[0] + "\n")
    result = _cli("speech_to_text", "predict", SHIPPED, clip, "--lm", corpus, "--lm-weight",
                  "0.8", "--word-bonus", "0.2", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["transcript"] == texts[0]
    bad = tmp_path / "bad.txt"
    bad.write_text("one naïve two\n")
    result = _cli("speech_to_text", "predict", SHIPPED, clip, "--vocabulary", bad)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: Vocabulary words use characters the model cannot spell: "
                           "'ï' (in 'naïve')")
    result = _cli("speech_to_text", "predict", SHIPPED, clip, "--vocabulary", tmp_path / "x")
    assert result.returncode == 2 and "Vocabulary file not found" in result.stderr


def test_task_predict_takes_the_options_and_other_apps_do_not_get_the_flags(sample, tmp_path):
    waves, texts = sample
    clip = tmp_path / "clip.wav"
    soundfile.write(clip, waves[0], 16000)
    [result] = TASK.predict(SHIPPED, [str(clip)], {"vocabulary": ["one", "two", "three"]})
    assert set(result["transcript"].split()) <= {"one", "two", "three"}
    result = _cli("sentiment", "predict", "x", "--vocabulary", "words.txt")
    assert result.returncode == 2 and "unrecognized arguments: --vocabulary" in result.stderr
