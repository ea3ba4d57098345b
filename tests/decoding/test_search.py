"""Greedy and beam search driven by scripted step functions (a table of next-token
probabilities keyed by the prefix decoded so far)."""

import math

import numpy as np
import pytest

from rnnkit.decoding import Hypothesis, beam_search, greedy_search, tile_for_beam
from rnnkit.decoding.search import length_penalty_factor

PAD, START, END, A, B, C = 0, 1, 2, 3, 4, 5
VOCAB = 6
MAX_STEPS = 12
EPS = 1e-6

# Greedy takes A (0.6) then A (0.4) then END (0.6): p = 0.144.
# Beam finds B END: p = 0.4 * 0.9 = 0.36.
TABLE_BEAM_WINS = {
    (): {A: 0.6, B: 0.4},
    (A,): {A: 0.4, B: 0.35, C: 0.25},
    (A, A): {END: 0.6, C: 0.4},
    (B,): {END: 0.9, A: 0.1},
}
# A short answer [C] (p=0.55, 2 steps) against a long one [A, A, A] (p=0.45, 4 steps).
TABLE_SHORT_LONG = {
    (): {C: 0.55, A: 0.45},
    (A,): {A: 1.0},
    (A, A): {A: 1.0},
}
# Item two of the batch: greedy and beam both give [C, C] (p = 0.9 * 0.8 * 1).
TABLE_OTHER = {(): {C: 0.9, A: 0.1}, (C,): {C: 0.8, END: 0.2}}
# Never ends.
TABLE_ENDLESS = {}


def _distribution(table, prefix, default):
    probs = np.full((VOCAB,), EPS)
    for token, p in table.get(prefix, default).items():
        probs[token] = p
    return np.log(probs / probs.sum())


def make_step_fn(tables, table_of_row=None, default=None):
    """A step function whose state is the prefix (row of ids, -1 padded).

    ``table_of_row`` (captured by the closure, like encoder outputs) says which
    table each row reads; for beam search it must use the repeat layout.
    """
    default = default or {END: 1.0}
    calls = []

    def step_fn(tokens, states):
        (prefixes,) = states
        prefixes = prefixes.copy()
        rows = tokens.shape[0]
        out = np.zeros((rows, VOCAB))
        for row in range(rows):
            if tokens[row] != START:
                position = int(np.sum(prefixes[row] >= 0))
                prefixes[row, position] = tokens[row]
            prefix = tuple(int(t) for t in prefixes[row] if t >= 0)
            table = tables[0 if table_of_row is None else int(table_of_row[row])]
            out[row] = _distribution(table, prefix, default)
        calls.append(rows)
        return out, [prefixes]

    step_fn.calls = calls
    return step_fn


def initial(batch):
    return [np.full((batch, MAX_STEPS + 1), -1, dtype=np.int64)]


def log_p(*probs):
    return float(sum(math.log(p) for p in probs))


def test_greedy_follows_the_argmax():
    step_fn = make_step_fn([TABLE_BEAM_WINS])
    assert greedy_search(step_fn, initial(1), START, END, max_length=10) == [[A, A]]


def test_beam_search_finds_a_more_probable_sequence_than_greedy():
    step_fn = make_step_fn([TABLE_BEAM_WINS])
    (hyps,) = beam_search(step_fn, initial(1), START, END, max_length=10, beam_width=2)
    assert len(hyps) == 1
    assert hyps[0].ids == [B]
    assert hyps[0].finished
    assert hyps[0].score == pytest.approx(log_p(0.4, 0.9), abs=1e-4)
    # Greedy's answer is less probable.
    assert log_p(0.6, 0.4, 0.6) < hyps[0].score


def test_beam_width_one_equals_greedy():
    step_fn = make_step_fn([TABLE_BEAM_WINS])
    (hyps,) = beam_search(step_fn, initial(1), START, END, max_length=10, beam_width=1)
    assert hyps[0].ids == [A, A]
    assert hyps[0].score == pytest.approx(log_p(0.6, 0.4, 0.6), abs=1e-4)


def test_n_best_sorted_by_score():
    step_fn = make_step_fn([TABLE_BEAM_WINS])
    (hyps,) = beam_search(
        step_fn, initial(1), START, END, max_length=10, beam_width=3, num_return=3
    )
    assert [h.ids for h in hyps] == [[B], [A, B], [A, C]]
    expected = [log_p(0.4, 0.9), log_p(0.6, 0.35), log_p(0.6, 0.25)]
    assert [h.score for h in hyps] == pytest.approx(expected, abs=1e-4)
    assert all(isinstance(h, Hypothesis) for h in hyps)


def test_length_penalty_changes_the_winner():
    step_fn = make_step_fn([TABLE_SHORT_LONG])
    (no_penalty,) = beam_search(step_fn, initial(1), START, END, max_length=8, beam_width=2)
    assert no_penalty[0].ids == [C]

    (simple,) = beam_search(
        step_fn,
        initial(1),
        START,
        END,
        max_length=8,
        beam_width=2,
        length_penalty=1.0,
        length_penalty_kind="simple",
    )
    assert simple[0].ids == [A, A, A]
    # Score = log p / len**alpha, with len = 3 ids + END = 4 steps.
    assert simple[0].score == pytest.approx(log_p(0.45) / 4, abs=1e-4)
    assert simple[0].log_prob == pytest.approx(log_p(0.45), abs=1e-4)

    (gnmt,) = beam_search(
        step_fn, initial(1), START, END, max_length=8, beam_width=2, length_penalty=2.0
    )
    assert gnmt[0].ids == [A, A, A]
    assert gnmt[0].score == pytest.approx(log_p(0.45) / ((5 + 4) / 6) ** 2, abs=1e-4)

    # GNMT with alpha=1 is too weak here: the short answer stays ahead.
    (weak,) = beam_search(
        step_fn, initial(1), START, END, max_length=8, beam_width=2, length_penalty=1.0
    )
    assert weak[0].ids == [C]


def test_length_penalty_factor_values():
    assert length_penalty_factor(7, 0.0) == 1.0
    assert length_penalty_factor(7, 1.0) == pytest.approx(2.0)
    assert length_penalty_factor(3, 2.0, "simple") == pytest.approx(9.0)
    with pytest.raises(ValueError, match="length_penalty_kind"):
        length_penalty_factor(3, 1.0, "bogus")


def test_batch_of_two_with_different_answers_uses_repeat_layout():
    beam_width = 3
    table_of_row = tile_for_beam(np.array([0, 1]), beam_width)
    assert table_of_row.tolist() == [0, 0, 0, 1, 1, 1]
    step_fn = make_step_fn([TABLE_BEAM_WINS, TABLE_OTHER], table_of_row)
    results = beam_search(
        step_fn, initial(2), START, END, max_length=10, beam_width=beam_width, num_return=2
    )
    assert [h.ids for h in results[0]] == [[B], [A, B]]
    assert results[1][0].ids == [C, C]
    assert results[1][0].score == pytest.approx(log_p(0.9, 0.8, 1.0), abs=1e-4)
    assert set(step_fn.calls) == {2 * beam_width}

    greedy_step = make_step_fn([TABLE_BEAM_WINS, TABLE_OTHER], np.array([0, 1]))
    assert greedy_search(greedy_step, initial(2), START, END, 10) == [[A, A], [C, C]]


def test_max_length_cuts_open_hypotheses():
    step_fn = make_step_fn([TABLE_ENDLESS], default={A: 0.9, B: 0.1})
    assert greedy_search(step_fn, initial(1), START, END, max_length=3) == [[A, A, A]]
    (hyps,) = beam_search(step_fn, initial(1), START, END, max_length=3, beam_width=2)
    assert hyps[0].ids == [A, A, A]
    assert not hyps[0].finished
    assert step_fn.calls == [1, 1, 1, 2, 2, 2]  # three greedy steps, three beam steps


def test_greedy_stops_early_when_all_rows_end():
    step_fn = make_step_fn([TABLE_OTHER])
    assert greedy_search(step_fn, initial(1), START, END, max_length=50) == [[C, C]]
    assert len(step_fn.calls) == 3


def test_empty_states_need_batch_size():
    def step_fn(tokens, states):
        out = np.full((tokens.shape[0], 3), -5.0)
        out[:, 2] = 0.0
        return out, states

    assert greedy_search(step_fn, [], 0, 2, 5, batch_size=2) == [[], []]
    with pytest.raises(ValueError, match="batch_size"):
        greedy_search(step_fn, [], 0, 2, 5)


def test_argument_errors_name_the_argument():
    step_fn = make_step_fn([TABLE_BEAM_WINS])
    with pytest.raises(ValueError, match="num_return"):
        beam_search(step_fn, initial(1), START, END, 5, beam_width=2, num_return=3)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(step_fn, initial(1), START, END, 5, beam_width=0)
    with pytest.raises(ValueError, match="max_length"):
        greedy_search(step_fn, initial(1), START, END, 0)


# ---------------------------------------------------------------- brute-force check
# A random but deterministic model over tokens {0 = end, 1, 2, 3}: the next-token
# distribution depends on (item, prefix), and the prefix lives in the state, so any
# mistake in reordering states by parent, in scoring finished hypotheses or in early
# stopping shows up as a beam result that differs from exhaustive search.
BF_VOCAB, BF_END, BF_START, BF_STEPS = 4, 0, 1, 4


def _bf_log_probs(item, prefix):
    rng = np.random.default_rng([item, len(prefix), *prefix])
    logits = rng.normal(scale=2.0, size=BF_VOCAB)
    return logits - np.log(np.exp(logits).sum())


def _bf_step_fn(tokens, states):
    (prefixes,) = states  # (N, 2 + BF_STEPS): item, length, tokens...
    prefixes = prefixes.copy()
    out = np.zeros((tokens.shape[0], BF_VOCAB))
    for row in range(tokens.shape[0]):
        length = int(prefixes[row, 1])
        if length >= 0:  # -1 means the start token was fed
            prefixes[row, 2 + length] = tokens[row]
        prefixes[row, 1] = length + 1
        prefix = tuple(int(t) for t in prefixes[row, 2 : 2 + length + 1])
        out[row] = _bf_log_probs(int(prefixes[row, 0]), prefix)
    return out, [prefixes]


def _bf_best(item, alpha):
    """Exhaustive best score: finished sequences of every length, open ones at the limit."""
    import itertools

    best = -np.inf
    for length in range(BF_STEPS + 1):
        for ids in itertools.product(range(1, BF_VOCAB), repeat=length):
            log_prob = _bf_sequence_log_prob(item, ids)
            if length < BF_STEPS:  # finished: the end token is one more step
                total = log_prob + _bf_log_probs(item, ids)[BF_END]
                best = max(best, total / length_penalty_factor(length + 1, alpha))
            else:  # still open after max_length steps
                best = max(best, log_prob / length_penalty_factor(length, alpha))
    return best


def _bf_sequence_log_prob(item, ids) -> float:
    """The model's log-probability of emitting ``ids`` (end token not included)."""
    return sum(_bf_log_probs(item, ids[:t])[ids[t]] for t in range(len(ids)))


def _bf_beam_search(items, **kwargs):
    states = np.full((len(items), 2 + BF_STEPS), -1, dtype=np.int64)
    states[:, 0] = items
    return beam_search(_bf_step_fn, [states], BF_START, BF_END, BF_STEPS, **kwargs)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_wide_beam_equals_exhaustive_search(alpha):
    items = [7, 11]
    results = _bf_beam_search(items, beam_width=(BF_VOCAB - 1) ** BF_STEPS, length_penalty=alpha)
    for item, hyps in zip(items, results, strict=True):
        assert hyps[0].score == pytest.approx(_bf_best(item, alpha), abs=1e-9)


@pytest.mark.parametrize("alpha", [0.0, 0.6])
@pytest.mark.parametrize("width", [2, 4])
def test_beam_scores_match_the_model_log_prob_of_their_ids(alpha, width):
    items = [3, 5, 9]
    results = _bf_beam_search(items, beam_width=width, length_penalty=alpha, num_return=2)
    for item, hyps in zip(items, results, strict=True):
        assert hyps[0].score >= hyps[1].score
        for hyp in hyps:
            ids = tuple(hyp.ids)
            log_prob = _bf_sequence_log_prob(item, ids)
            steps = len(ids)
            if hyp.finished:
                log_prob += _bf_log_probs(item, ids)[BF_END]
                steps += 1
            assert hyp.log_prob == pytest.approx(log_prob, abs=1e-9)
            assert hyp.score == pytest.approx(
                log_prob / length_penalty_factor(steps, alpha), abs=1e-9
            )
