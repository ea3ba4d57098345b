"""rnnkit.metrics on hand-computed cases."""

import math

import numpy as np
import pytest
from sacrebleu.metrics import BLEU

from rnnkit import metrics


def test_classification_report_hand_computed():
    labels = ["neg", "neu", "pos"]
    y_true = ["neg", "neg", "pos", "pos", "pos", "neu"]
    y_pred = ["neg", "pos", "pos", "pos", "neg", "pos"]
    report = metrics.classification_report(y_true, y_pred, labels)
    assert report["confusion_matrix"] == [[1, 0, 1], [0, 0, 1], [1, 0, 2]]
    assert report["accuracy"] == pytest.approx(3 / 6)
    neg, neu, pos = (report["per_class"][k] for k in labels)
    assert neg == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    # "neu" never predicted: zero division gives 0.
    assert neu == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert pos["precision"] == pytest.approx(2 / 4)
    assert pos["recall"] == pytest.approx(2 / 3)
    assert pos["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert report["macro_f1"] == pytest.approx((0.5 + 0.0 + pos["f1"]) / 3)
    # Indices work the same way.
    by_index = metrics.classification_report([0, 0, 2, 2, 2, 1], [0, 2, 2, 2, 0, 2], labels)
    assert by_index["confusion_matrix"] == report["confusion_matrix"]


def test_classification_report_matches_sklearn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 4, size=50)
    y_pred = rng.integers(0, 4, size=50)
    report = metrics.classification_report(y_true, y_pred, ["a", "b", "c", "d"])
    expected = f1_score(y_true, y_pred, average="macro", labels=[0, 1, 2, 3], zero_division=0)
    assert report["macro_f1"] == pytest.approx(expected)


def test_classification_report_errors():
    with pytest.raises(ValueError, match="same length"):
        metrics.classification_report([0, 1], [0], ["a", "b"])
    with pytest.raises(ValueError, match="unknown values"):
        metrics.classification_report(["x"], ["a"], ["a", "b"])


def test_plot_confusion_matrix_writes_png(tmp_path):
    path = metrics.plot_confusion_matrix([[3, 1], [0, 4]], ["neg", "pos"], tmp_path / "cm.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="matrix"):
        metrics.plot_confusion_matrix([[1, 2]], ["a"], tmp_path / "bad.png")


def test_bleu_and_chrf():
    hyps = ["the cat sat on the mat", "a quick brown fox"]
    assert metrics.bleu(hyps, hyps) == pytest.approx(100.0)
    assert metrics.chrf(hyps, hyps) == pytest.approx(100.0)
    assert metrics.bleu(["xx yy zz ww"], ["the cat sat on"]) == pytest.approx(0.0)
    refs = ["the cat is on the mat", "the quick brown fox"]
    score = metrics.bleu(hyps, refs)
    assert 0.0 < score < 100.0
    assert score == pytest.approx(BLEU().corpus_score(hyps, [refs]).score)
    # Several references per hypothesis (ragged) can only help.
    multi = metrics.bleu(hyps, [["the cat is on the mat", "the cat sat on the mat"], [refs[1]]])
    assert score < multi < 100.0
    both = [["the cat is on the mat", "the cat sat on the mat"], [refs[1], "a quick brown fox"]]
    assert metrics.bleu(hyps, both) == pytest.approx(100.0)
    assert 0.0 < metrics.chrf(hyps, refs) < 100.0


def test_wer_cer_hand_computed():
    # 1 substitution + 1 insertion over 5 reference words.
    assert metrics.wer(["a b c", "d e"], ["a x c", "d e f"]) == pytest.approx(2 / 5)
    # "hello" vs "helo": one deletion over 5 characters.
    assert metrics.cer(["hello"], ["helo"]) == pytest.approx(1 / 5)
    assert metrics.wer(["same words"], ["same words"]) == 0.0


def test_wer_cer_empty_inputs():
    # Empty hypothesis: all deletions.
    assert metrics.wer(["a b", "c"], ["", "c"]) == pytest.approx(2 / 3)
    # Empty reference with a hypothesis: its words are insertions.
    assert metrics.wer(["", "a b"], ["x y", "a b"]) == pytest.approx(2 / 2)
    assert metrics.wer([""], [""]) == 0.0
    assert metrics.cer([""], ["ab"]) == pytest.approx(2.0)
    assert metrics.cer(["ab", ""], ["", ""]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same length"):
        metrics.wer(["a"], [])


# Two images so the IDF of image-specific n-grams is log(2); "a" is in both -> IDF 0.
REFS = [["a big red circle"], ["a small blue square"]]


def test_cider_identical_gets_the_maximum_and_unrelated_zero():
    assert metrics.cider_d(["a big red circle", "a small blue square"], REFS) == pytest.approx(10.0)
    assert metrics.cider_d(["green triangle left", "yellow star"], REFS) == 0.0
    # Punctuation and case do not matter.
    assert metrics.cider_d(["A big red circle.", "a small, blue square"], REFS) == pytest.approx(10)


def test_cider_partial_match_hand_computed():
    # Image 1: hyp "a red circle" vs ref "a big red circle" (image 2 scores 0).
    # n=1: overlap red, circle: 2L^2 / (L*sqrt2 * L*sqrt3); n=2: "red circle": 1/sqrt6;
    # n=3, n=4: 0. Length gaussian exp(-1/72).
    gaussian = math.exp(-1 / 72)
    image1 = 10 * gaussian * (2 / math.sqrt(6) + 1 / math.sqrt(6)) / 4
    score = metrics.cider_d(["a red circle", "nothing here"], REFS)
    assert score == pytest.approx(image1 / 2)
    assert score == pytest.approx(1.5098, abs=1e-4)


def test_cider_averages_over_references():
    refs = [["a big red circle", "a red circle that is big"], ["a small blue square"]]
    both = metrics.cider_d(["a big red circle", "a small blue square"], refs)
    assert 0.0 < both < 10.0


def test_caption_scores():
    hyps = ["a big red circle", "a small blue square"]
    perfect = metrics.caption_scores(hyps, REFS)
    assert perfect == pytest.approx(
        {"bleu1": 1.0, "bleu2": 1.0, "bleu3": 1.0, "bleu4": 1.0, "cider": 10.0}
    )
    hyps = ["a red circle", "a small blue square on the left"]
    refs = [["a big red circle", "the red circle"], ["a small blue square"]]
    scores = metrics.caption_scores(hyps, refs)
    # BLEU-1 by hand: clipped unigram matches 3 + 4 = 7 of 10 hypothesis words; the closest
    # reference lengths are 3 ("the red circle") and 4, so c=10 > r=7 and BP=1.
    assert scores["bleu1"] == pytest.approx(7 / 10)
    expected_bleu4 = (
        BLEU(tokenize="none")
        .corpus_score(hyps, [["a big red circle", "a small blue square"], ["the red circle", None]])
        .score
        / 100
    )
    assert scores["bleu4"] == pytest.approx(expected_bleu4)
    assert scores["bleu1"] >= scores["bleu2"] >= scores["bleu3"] >= scores["bleu4"] > 0
    assert 0.0 < scores["cider"] < 10.0


def test_paired_bootstrap_interval_and_one_sided_share():
    from rnnkit.metrics import paired_bootstrap

    rng = np.random.default_rng(1)
    b = rng.random(2000) < 0.80
    a = b.copy()
    flip = rng.choice(np.flatnonzero(~b), 60, replace=False)  # A fixes 60 of B's errors
    a[flip] = True
    result = paired_bootstrap(a, b, samples=1000, seed=0)
    assert result["difference"] == pytest.approx(60 / 2000)
    assert 0 < result["low"] < 0.03 < result["high"] < 0.05
    assert result["p_a_not_better"] == 0.0
    # Identical systems: a zero difference, A never ahead.
    same = paired_bootstrap(b, b, samples=200)
    assert same["difference"] == same["low"] == same["high"] == 0.0
    assert same["p_a_not_better"] == 1.0
    # A tiny, noisy edge: the interval spans 0.
    c = b.copy()
    c[np.flatnonzero(~b)[:3]] = True
    c[np.flatnonzero(b)[:2]] = False
    noisy = paired_bootstrap(c, b, samples=1000)
    assert noisy["low"] < 0 < noisy["high"] and 0.05 < noisy["p_a_not_better"] < 0.95
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap([1, 0], [1])
