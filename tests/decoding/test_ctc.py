"""CTC greedy and prefix beam search on hand-made frames, checked against brute force."""

import itertools
import math

import numpy as np
import pytest

from rnnkit.decoding import ctc_greedy_decode, ctc_prefix_beam_search

BLANK, A, B, C = 0, 1, 2, 3


def one_hot_frames(path, num_classes=4, peak=0.9):
    frames = np.full((len(path), num_classes), (1 - peak) / (num_classes - 1))
    frames[np.arange(len(path)), path] = peak
    return np.log(frames)


def collapse(path, blank=BLANK):
    out, previous = [], None
    for token in path:
        if token != previous and token != blank:
            out.append(token)
        previous = token
    return tuple(out)


def brute_force_labellings(probs):
    """Sum of path probabilities per labelling, over all C**T paths."""
    totals = {}
    frames, classes = probs.shape
    for path in itertools.product(range(classes), repeat=frames):
        p = float(np.prod(probs[np.arange(frames), path]))
        key = collapse(path)
        totals[key] = totals.get(key, 0.0) + p
    return totals


def test_greedy_merges_repeats_and_drops_blanks():
    path = [A, A, BLANK, A, B, B, BLANK, BLANK, C, C]
    assert ctc_greedy_decode(one_hot_frames(path)) == [A, A, B, C]


def test_greedy_blank_separates_identical_labels():
    assert ctc_greedy_decode(one_hot_frames([A, BLANK, A])) == [A, A]
    assert ctc_greedy_decode(one_hot_frames([A, A, A])) == [A]
    assert ctc_greedy_decode(one_hot_frames([BLANK, BLANK])) == []


def test_greedy_batch_respects_lengths():
    first = one_hot_frames([A, B, B, C, C, C])
    second = one_hot_frames([C, BLANK, C, A, A, B])  # only 4 frames valid
    batch = np.stack([first, second])
    assert ctc_greedy_decode(batch) == [[A, B, C], [C, C, A, B]]
    assert ctc_greedy_decode(batch, lengths=[6, 4]) == [[A, B, C], [C, C, A]]
    assert ctc_greedy_decode(batch, lengths=np.array([2, 0])) == [[A, B], []]


def test_greedy_non_zero_blank():
    frames = one_hot_frames([3, 3, 0, 3, 1])
    assert ctc_greedy_decode(frames, blank_id=3) == [0, 1]


# Best single path is all blanks (0.5**3 = 0.125), but the alignments of [A] sum to more.
SUMMING_PROBS = np.array(
    [
        [0.5, 0.4, 0.1],
        [0.5, 0.4, 0.1],
        [0.5, 0.3, 0.2],
    ]
)


def test_prefix_beam_beats_greedy_by_summing_alignments():
    totals = brute_force_labellings(SUMMING_PROBS)
    expected_best = max(totals, key=totals.get)
    assert expected_best == (A,)
    assert totals[(A,)] > 0.125

    log_probs = np.log(SUMMING_PROBS)
    assert ctc_greedy_decode(log_probs) == []
    assert ctc_prefix_beam_search(log_probs, beam_width=8) == [A]


def test_prefix_beam_scores_equal_brute_force_when_beam_is_wide():
    totals = brute_force_labellings(SUMMING_PROBS)
    ranked = sorted(totals.items(), key=lambda item: item[1], reverse=True)
    hyps = ctc_prefix_beam_search(np.log(SUMMING_PROBS), beam_width=16, num_return=5)
    assert [tuple(h.ids) for h in hyps] == [label for label, _ in ranked[:5]]
    assert [h.score for h in hyps] == pytest.approx([math.log(p) for _, p in ranked[:5]])


def test_prefix_beam_on_random_frames_matches_brute_force():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 3)) * 2.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    totals = brute_force_labellings(probs)
    best = max(totals, key=totals.get)
    # Logits are accepted too: a log-softmax is applied first.
    hyps = ctc_prefix_beam_search(logits, beam_width=32, num_return=1)
    assert tuple(hyps[0].ids) == best
    assert hyps[0].score == pytest.approx(math.log(totals[best]))


def test_prefix_beam_repeated_label_needs_a_blank():
    # Path A,A collapses to [A]; A,_,A gives [A, A].
    probs = np.array([[0.05, 0.9, 0.05], [0.6, 0.35, 0.05], [0.05, 0.9, 0.05]])
    totals = brute_force_labellings(probs)
    best = max(totals, key=totals.get)
    assert best == (A, A)
    assert ctc_prefix_beam_search(np.log(probs), beam_width=8) == [A, A]


def test_prefix_beam_batch_with_lengths():
    first = one_hot_frames([A, BLANK, A, B])
    second = one_hot_frames([C, C, B, A])
    out = ctc_prefix_beam_search(np.stack([first, second]), beam_width=4, lengths=[4, 2])
    assert out == [[A, A, B], [C]]
    pruned = ctc_prefix_beam_search(
        np.stack([first, second]), beam_width=4, lengths=[4, 2], token_min_log_prob=np.log(0.01)
    )
    assert pruned == out


def test_ctc_errors_name_the_argument():
    with pytest.raises(ValueError, match="log_probs"):
        ctc_greedy_decode(np.zeros((3,)))
    with pytest.raises(ValueError, match="blank_id"):
        ctc_prefix_beam_search(np.zeros((2, 3)), blank_id=5)
    with pytest.raises(ValueError, match="num_return"):
        ctc_prefix_beam_search(np.zeros((2, 3)), beam_width=2, num_return=3)
