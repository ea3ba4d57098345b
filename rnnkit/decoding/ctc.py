"""CTC decoding (numpy only): greedy best path and prefix beam search.

Both take per-frame scores of shape ``(T, C)`` or ``(B, T, C)`` with the blank
at ``blank_id``. ``ctc_greedy_decode`` only needs an argmax, so logits,
probabilities or log-probabilities all work. ``ctc_prefix_beam_search``
normalises its input with a log-softmax over ``C`` first, which leaves
log-probabilities unchanged and turns logits into log-probabilities (do not
pass plain probabilities: take their log first).
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit.decoding.search import Hypothesis

_NEG_INF = -math.inf


def _logaddexp(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) on Python floats (much faster than np.logaddexp on scalars)."""
    if a == _NEG_INF:
        return b
    if b == _NEG_INF:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


def _check_scores(log_probs, blank_id: int) -> np.ndarray:
    array = np.asarray(log_probs, dtype=np.float64)
    if array.ndim not in (2, 3):
        raise ValueError(
            f"`log_probs` must have shape (T, C) or (B, T, C). Received: shape={array.shape}"
        )
    if not 0 <= int(blank_id) < array.shape[-1]:
        raise ValueError(
            f"`blank_id` must be in [0, {array.shape[-1]}). Received: blank_id={blank_id}"
        )
    return array


def _as_batch(array: np.ndarray, lengths) -> tuple[np.ndarray, np.ndarray, bool]:
    """A ``(T, C)`` input as a batch of one; returns (batch, valid length per row, single)."""
    single = array.ndim == 2
    if single:
        array = array[None]
        if lengths is not None:
            lengths = [int(np.asarray(lengths).reshape(-1)[0])]
    return array, _row_lengths(lengths, array.shape[0], array.shape[1]), single


def _row_lengths(lengths, batch: int, frames: int) -> np.ndarray:
    if lengths is None:
        return np.full((batch,), frames, dtype=np.int64)
    values = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if values.shape[0] != batch:
        raise ValueError(
            f"`lengths` must hold one length per row ({batch}). Received: {values.shape[0]} lengths"
        )
    return np.clip(values, 0, frames)


def _collapse(path: np.ndarray, blank_id: int) -> list[int]:
    ids: list[int] = []
    previous = -1
    for token in path.tolist():
        if token != previous and token != blank_id:
            ids.append(int(token))
        previous = token
    return ids


def ctc_greedy_decode(log_probs, lengths=None, blank_id: int = 0):
    """Best-path CTC decoding: argmax per frame, merge repeats, drop blanks.

    Args:
        log_probs: ``(T, C)`` or ``(B, T, C)`` frame scores.
        lengths: for a batch, the number of valid frames of each row (frames
            beyond it are ignored); ``None`` uses all ``T`` frames. For a single
            ``(T, C)`` input, an int or ``None``.
        blank_id: index of the blank.

    Returns:
        ``list[int]`` for ``(T, C)`` input, ``list[list[int]]`` for a batch.
        Two equal labels separated by a blank stay two labels (``a _ a`` → ``a a``).
    """
    array = _check_scores(log_probs, blank_id)
    array, valid, single = _as_batch(array, lengths)
    best = np.argmax(array, axis=-1)
    decoded = [_collapse(best[row, : valid[row]], blank_id) for row in range(array.shape[0])]
    return decoded[0] if single else decoded


def _log_softmax(array: np.ndarray) -> np.ndarray:
    shifted = array - np.max(array, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _prefix_beam_search_single(
    log_probs: np.ndarray, beam_width: int, blank_id: int, token_min_log_prob: float | None
) -> list[tuple[tuple[int, ...], float]]:
    """Prefix beam search over one ``(T, C)`` log-probability matrix.

    Every prefix keeps two scores: ``blank`` (log-prob of all alignments of the
    first t frames that give the prefix and end in a blank) and ``label``
    (those ending in the prefix's last label). They are kept apart because a
    repeated label only extends the prefix after a blank.
    """
    neg_inf = _NEG_INF
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, neg_inf)}
    num_classes = log_probs.shape[1]
    labels_all = [c for c in range(num_classes) if c != blank_id]
    for row in log_probs:
        frame = row.tolist()
        candidates = labels_all
        if token_min_log_prob is not None:
            candidates = [c for c in labels_all if frame[c] >= token_min_log_prob]
        blank_lp = frame[blank_id]
        next_beams: dict[tuple[int, ...], list[float]] = {}

        def add(prefix, blank_score, label_score, _store=next_beams):
            entry = _store.get(prefix)
            if entry is None:
                _store[prefix] = [blank_score, label_score]
            else:
                entry[0] = _logaddexp(entry[0], blank_score)
                entry[1] = _logaddexp(entry[1], label_score)

        for prefix, (blank_score, label_score) in beams.items():
            total = _logaddexp(blank_score, label_score)
            # Blank: the prefix is unchanged and now ends in a blank.
            add(prefix, total + blank_lp, neg_inf)
            last = prefix[-1] if prefix else None
            for label in candidates:
                label_lp = frame[label]
                if label == last:
                    # Repeat without a blank in between collapses into the same prefix;
                    # after a blank it starts a new copy of the label.
                    add(prefix, neg_inf, label_score + label_lp)
                    add(prefix + (label,), neg_inf, blank_score + label_lp)
                else:
                    add(prefix + (label,), neg_inf, total + label_lp)
        ranked = sorted(
            next_beams.items(), key=lambda item: _logaddexp(item[1][0], item[1][1]), reverse=True
        )
        beams = {prefix: (scores[0], scores[1]) for prefix, scores in ranked[:beam_width]}
    final = [
        (prefix, float(_logaddexp(blank_score, label_score)))
        for prefix, (blank_score, label_score) in beams.items()
    ]
    final.sort(key=lambda item: item[1], reverse=True)
    return final


def ctc_prefix_beam_search(
    log_probs,
    beam_width: int = 8,
    blank_id: int = 0,
    *,
    lengths=None,
    num_return: int | None = None,
    token_min_log_prob: float | None = None,
):
    """CTC prefix beam search in log space.

    Unlike best-path decoding, it sums the probabilities of all alignments
    that collapse to the same label sequence, so it can find a labelling whose
    total probability beats the labelling of the single best path.

    Args:
        log_probs: ``(T, C)`` or ``(B, T, C)`` log-probabilities (or logits:
            a log-softmax over ``C`` is applied first).
        beam_width: prefixes kept after each frame.
        blank_id: index of the blank.
        lengths: valid frames per row for a batch (int or ``None`` for one row).
        num_return: ``None`` returns the best ids (``list[int]``); an int
            returns that many ``Hypothesis(ids, score)`` best first, where
            ``score`` is the log-probability of the labelling (summed over the
            alignments the beam kept) and equals ``log_prob``.
        token_min_log_prob: optional pruning: labels whose frame
            log-probability is below it are not tried at that frame.

    Returns:
        For ``(T, C)``: ``list[int]`` or ``list[Hypothesis]``; for a batch, a
        list of those.
    """
    array = _check_scores(log_probs, blank_id)
    if int(beam_width) < 1:
        raise ValueError(f"`beam_width` must be >= 1. Received: beam_width={beam_width}")
    if num_return is not None and not 1 <= int(num_return) <= int(beam_width):
        raise ValueError(
            f"`num_return` must be None or between 1 and beam_width={beam_width}. "
            f"Received: num_return={num_return}"
        )
    array, valid, single = _as_batch(array, lengths)
    array = _log_softmax(array)
    results = []
    for row in range(array.shape[0]):
        ranked = _prefix_beam_search_single(
            array[row, : valid[row]], int(beam_width), int(blank_id), token_min_log_prob
        )
        if num_return is None:
            results.append(list(ranked[0][0]))
        else:
            results.append(
                [
                    Hypothesis(ids=list(prefix), score=score, log_prob=score, finished=True)
                    for prefix, score in ranked[: int(num_return)]
                ]
            )
    return results[0] if single else results
