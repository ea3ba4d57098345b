"""rnnkit.runtime.seq2seq: greedy/beam decoding, attention capture, and no TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit.runtime.seq2seq import Seq2Seq, log_softmax

ROOT = Path(__file__).resolve().parents[2]


def _toy() -> Seq2Seq:
    """A decoder that emits token 4 + row on its first two steps, then the end token 3; its
    attention is one-hot on the step's position."""

    def encode(inputs):
        batch = len(inputs)
        return np.ones((batch, 5, 2), np.float32), [np.zeros((batch, 1), np.float32)]

    def step(token, states, values, mask):
        assert token.shape == (len(values), 1) and token.dtype == np.int32
        steps = states[0][:, 0].astype(int)
        logits = np.zeros((len(token), 8), np.float32)
        rows = np.arange(len(token))
        logits[rows, np.where(steps >= 2, 3, 4 + rows % 2)] = 4.0
        attention = np.zeros(mask.shape, np.float32)
        attention[rows, np.minimum(steps, mask.shape[1] - 1)] = 1.0
        return logits, [states[0] + 1], attention

    return Seq2Seq(encode, step)


def test_greedy_and_beam_with_attention():
    model = _toy()
    greedy = model.decode(np.zeros((2, 1)), start_id=2, end_id=3, max_steps=10,
                          with_attention=True)
    assert [r["ids"] for r in greedy] == [[4, 4], [5, 5]]
    assert np.isnan(greedy[0]["score"])
    # One row per generated token plus the end step, the step's position attended.
    np.testing.assert_array_equal(greedy[1]["attention"], np.eye(5)[:3])
    beam = model.decode(np.zeros((1, 1)), start_id=2, end_id=3, max_steps=10, method="beam",
                        beam_width=2, num_return=2)
    assert beam[0]["ids"] == [4, 4] and beam[0]["score"] <= 0
    assert len(beam[0]["n_best"]) == 2 and beam[0]["n_best"][0] == ([4, 4], beam[0]["score"])
    capped = model.decode(np.zeros((1, 1)), start_id=2, end_id=3, max_steps=1)
    assert capped[0]["ids"] == [4]
    with pytest.raises(ValueError, match="method"):
        model.decode(np.zeros((1, 1)), start_id=2, end_id=3, max_steps=3, method="sample")


def test_log_softmax_is_normalised_in_float64():
    out = log_softmax(np.array([[1000.0, 0.0, -5.0]], np.float32))
    assert out.dtype == np.float64 and np.isclose(np.exp(out).sum(), 1.0)


def test_seq2seq_and_both_predictors_run_without_tensorflow():
    code = (
        "import sys\n"
        "import rnnkit.runtime.seq2seq\n"
        "from apps.translation.translator import TranslationPredictor\n"
        "from apps.captioning.captioner import Captioner\n"
        "t = TranslationPredictor('exported/translation').predict(['Germany and France'])\n"
        "c = Captioner('exported/captioning').predict(['exported/captioning/samples/000.png'])\n"
        "assert t[0]['translation'] and c[0]['caption']\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
