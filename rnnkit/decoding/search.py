"""Greedy and beam search over a step function (numpy only).

The decoders never see a model. They drive a *step function*::

    step_fn(tokens, states) -> (log_probs, new_states)

    tokens:     np.ndarray int64, shape (N,)    -- the previous token of every row
    states:     list of np.ndarray, each (N, ...) -- the recurrent states of every row
    log_probs:  np.ndarray float, shape (N, V)  -- log-probabilities of the next token
    new_states: list of np.ndarray, each (N, ...)

so the same search code decodes with a Keras model, ONNX Runtime or LiteRT.
Anything that does not change between steps (encoder outputs, their mask) is
captured by the closure.

Row layout under beam search
----------------------------
``beam_search`` works on ``N = batch_size * beam_width`` rows. At the start it
tiles every state with ``np.repeat(state, beam_width, axis=0)``, so row
``b * beam_width + k`` is beam ``k`` of batch item ``b``; after each step it
reorders the states by parent row, which keeps every row inside its own batch
item. A closure that captures per-batch arrays (encoder outputs, masks) must
therefore lay them out the same way: build it with ``tile_for_beam(array,
beam_width)`` (``np.repeat`` on axis 0), never ``np.tile``.

Lengths and scores
------------------
``max_length`` bounds the number of decoding steps, i.e. the generated tokens
*including* the end token; returned ids never include ``start_id`` or
``end_id``. A hypothesis's *length* for the length penalty is the number of
steps it took: its ids plus one when it was ended by ``end_id``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

StepFn = Callable[[np.ndarray, list], "tuple[np.ndarray, list]"]

LENGTH_PENALTY_KINDS = ("gnmt", "simple")


@dataclass
class Hypothesis:
    """One decoded sequence.

    ``ids`` excludes the start and end tokens; ``score`` is the ranking score
    (``log_prob`` divided by the length penalty; equal to ``log_prob`` when the
    penalty is 0); ``log_prob`` is the summed log-probability of the steps
    taken (the end token included when the hypothesis finished).
    """

    ids: list[int]
    score: float
    log_prob: float = 0.0
    finished: bool = field(default=True)


def tile_for_beam(array: np.ndarray, beam_width: int) -> np.ndarray:
    """Repeat each batch row ``beam_width`` times along axis 0 (beam-search layout).

    ``[a, b]`` with ``beam_width=3`` becomes ``[a, a, a, b, b, b]``: the layout
    ``beam_search`` gives the rows it passes to the step function.
    """
    if int(beam_width) < 1:
        raise ValueError(f"`beam_width` must be >= 1. Received: beam_width={beam_width}")
    return np.repeat(np.asarray(array), int(beam_width), axis=0)


def length_penalty_factor(length: int, alpha: float, kind: str = "gnmt") -> float:
    """The divisor applied to a hypothesis's log-probability.

    ``kind="gnmt"`` (Wu et al., 2016): ``((5 + length) / 6) ** alpha``;
    ``kind="simple"``: ``length ** alpha``. ``alpha=0`` gives 1 (no penalty);
    larger ``alpha`` favours longer hypotheses.
    """
    if alpha == 0.0:
        return 1.0
    length = max(int(length), 1)
    if kind == "gnmt":
        return ((5.0 + length) / 6.0) ** alpha
    if kind == "simple":
        return float(length) ** alpha
    raise ValueError(
        f"`length_penalty_kind` must be one of {LENGTH_PENALTY_KINDS}. Received: "
        f"length_penalty_kind={kind!r}"
    )


def _batch_size(initial_states: Sequence[np.ndarray], batch_size: int | None) -> int:
    if batch_size is not None:
        if int(batch_size) < 1:
            raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
        return int(batch_size)
    if not initial_states:
        raise ValueError(
            "`batch_size` is required when `initial_states` is empty. Received: "
            "initial_states=[], batch_size=None"
        )
    return int(np.asarray(initial_states[0]).shape[0])


def _check_common(max_length: int) -> None:
    if int(max_length) < 1:
        raise ValueError(f"`max_length` must be >= 1. Received: max_length={max_length}")


def _call_step(step_fn, tokens, states, rows):
    log_probs, new_states = step_fn(tokens, states)
    log_probs = np.asarray(log_probs)
    if log_probs.ndim != 2 or log_probs.shape[0] != rows:
        raise ValueError(
            f"`step_fn` must return log_probs of shape ({rows}, vocab_size). "
            f"Received: shape={log_probs.shape}"
        )
    return log_probs.astype(np.float64, copy=False), [np.asarray(s) for s in new_states]


def greedy_search(
    step_fn: StepFn,
    initial_states: Sequence[np.ndarray],
    start_id: int,
    end_id: int,
    max_length: int,
    *,
    batch_size: int | None = None,
) -> list[list[int]]:
    """Decode a batch by taking the most probable token at every step.

    Args:
        step_fn: see the module docstring; called on the ``B`` batch rows.
        initial_states: list of arrays with batch ``B`` on axis 0 (may be empty,
            then pass ``batch_size``).
        start_id: token fed at the first step.
        end_id: token that finishes a row (not included in the result).
        max_length: maximum number of steps (generated tokens, end included).
        batch_size: only needed when ``initial_states`` is empty.

    Returns:
        ``B`` lists of token ids. Decoding stops as soon as every row has
        produced ``end_id``; finished rows keep being fed ``end_id``.
    """
    _check_common(max_length)
    rows = _batch_size(initial_states, batch_size)
    states = [np.asarray(s) for s in initial_states]
    tokens = np.full((rows,), start_id, dtype=np.int64)
    finished = np.zeros((rows,), dtype=bool)
    outputs: list[list[int]] = [[] for _ in range(rows)]
    for _ in range(int(max_length)):
        log_probs, states = _call_step(step_fn, tokens, states, rows)
        next_tokens = np.argmax(log_probs, axis=-1).astype(np.int64)
        for row in np.flatnonzero(~finished):
            token = int(next_tokens[row])
            if token == end_id:
                finished[row] = True
            else:
                outputs[row].append(token)
        if finished.all():
            break
        tokens = np.where(finished, np.int64(end_id), next_tokens)
    return outputs


def beam_search(
    step_fn: StepFn,
    initial_states: Sequence[np.ndarray],
    start_id: int,
    end_id: int,
    max_length: int,
    beam_width: int = 4,
    length_penalty: float = 0.0,
    num_return: int = 1,
    *,
    length_penalty_kind: str = "gnmt",
    batch_size: int | None = None,
) -> list[list[Hypothesis]]:
    """Beam search over a step function.

    The step function receives ``B * beam_width`` rows laid out as
    ``np.repeat(batch, beam_width, axis=0)`` (see the module docstring and
    ``tile_for_beam``); the states are tiled that way at the start and
    reordered by parent row after every step.

    Args:
        step_fn: see the module docstring.
        initial_states: list of arrays with batch ``B`` on axis 0.
        start_id, end_id: start token fed at step one; end token that finishes
            a hypothesis (never included in ``Hypothesis.ids``).
        max_length: maximum number of steps (generated tokens, end included).
            Hypotheses still open after ``max_length`` steps are returned with
            ``finished=False``.
        beam_width: hypotheses kept per batch item.
        length_penalty: ``alpha`` of the length penalty; 0 ranks by raw
            log-probability (favours short outputs), larger values favour
            longer ones. See ``length_penalty_factor``.
        num_return: how many best hypotheses to return per batch item
            (``1 <= num_return <= beam_width``).
        length_penalty_kind: ``"gnmt"`` ``((5+len)/6)**alpha`` (default) or
            ``"simple"`` ``len**alpha``.
        batch_size: only needed when ``initial_states`` is empty.

    Returns:
        For each batch item, ``num_return`` ``Hypothesis`` objects sorted by
        ``score``, best first.

    The search stops early for a batch item once it holds ``num_return``
    finished hypotheses that no open beam can still beat (log-probabilities
    only decrease, so the bound is exact for any ``alpha >= 0``).
    """
    _check_common(max_length)
    beam_width = int(beam_width)
    if beam_width < 1:
        raise ValueError(f"`beam_width` must be >= 1. Received: beam_width={beam_width}")
    if not 1 <= int(num_return) <= beam_width:
        raise ValueError(
            f"`num_return` must be between 1 and beam_width={beam_width}. "
            f"Received: num_return={num_return}"
        )
    if length_penalty < 0:
        raise ValueError(
            f"`length_penalty` must be >= 0. Received: length_penalty={length_penalty}"
        )
    length_penalty_factor(1, 1.0, length_penalty_kind)  # validates the kind
    num_return = int(num_return)
    max_length = int(max_length)

    def penalty(length: int) -> float:
        return length_penalty_factor(length, length_penalty, length_penalty_kind)

    batch = _batch_size(initial_states, batch_size)
    rows = batch * beam_width
    states = [tile_for_beam(s, beam_width) for s in initial_states]
    tokens = np.full((rows,), start_id, dtype=np.int64)
    # Only beam 0 of each item is live at the start (all beams are identical).
    scores = np.full((batch, beam_width), -np.inf)
    scores[:, 0] = 0.0
    sequences: list[list[list[int]]] = [[[] for _ in range(beam_width)] for _ in range(batch)]
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    done = np.zeros((batch,), dtype=bool)

    for step in range(1, max_length + 1):
        log_probs, states = _call_step(step_fn, tokens, states, rows)
        vocab = log_probs.shape[1]
        total = (scores.reshape(rows, 1) + log_probs).reshape(batch, beam_width * vocab)
        num_candidates = min(2 * beam_width, total.shape[1])
        # Top candidates per item, best first.
        top = np.argpartition(-total, num_candidates - 1, axis=1)[:, :num_candidates]
        top_scores = np.take_along_axis(total, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)

        new_scores = np.full((batch, beam_width), -np.inf)
        parents = np.repeat(np.arange(batch) * beam_width, beam_width)  # default: keep row
        new_tokens = np.full((rows,), end_id, dtype=np.int64)
        new_sequences: list[list[list[int]]] = []
        for b in range(batch):
            item_sequences = [[] for _ in range(beam_width)]
            if done[b]:
                new_sequences.append(sequences[b])
                continue
            kept = 0
            for rank, flat in enumerate(top[b]):
                value = float(total[b, flat])
                if not np.isfinite(value):
                    break
                beam, token = divmod(int(flat), vocab)
                if token == end_id:
                    # A finished candidate only counts when it ranks among the top beams.
                    if rank < beam_width:
                        finished[b].append(
                            Hypothesis(
                                ids=list(sequences[b][beam]),
                                score=value / penalty(step),
                                log_prob=value,
                                finished=True,
                            )
                        )
                    continue
                slot = b * beam_width + kept
                new_scores[b, kept] = value
                parents[slot] = b * beam_width + beam
                new_tokens[slot] = token
                item_sequences[kept] = sequences[b][beam] + [token]
                kept += 1
                if kept == beam_width:
                    break
            new_sequences.append(item_sequences)
            # Early stop: enough finished hypotheses that no open beam can beat.
            if len(finished[b]) >= num_return:
                best_scores = sorted((h.score for h in finished[b]), reverse=True)
                worst_kept = best_scores[num_return - 1]
                best_open = float(new_scores[b].max())
                if not np.isfinite(best_open):
                    done[b] = True
                elif step < max_length:
                    bound = max(best_open / penalty(step + 1), best_open / penalty(max_length))
                    if bound <= worst_kept:
                        done[b] = True
        scores = np.where(done[:, None], -np.inf, new_scores)
        sequences = new_sequences
        states = [s[parents] for s in states]
        tokens = new_tokens
        if done.all():
            break

    results: list[list[Hypothesis]] = []
    for b in range(batch):
        candidates = list(finished[b])
        if not done[b]:
            for k in range(beam_width):
                value = float(scores[b, k])
                if np.isfinite(value):
                    candidates.append(
                        Hypothesis(
                            ids=list(sequences[b][k]),
                            score=value / penalty(len(sequences[b][k])),
                            log_prob=value,
                            finished=False,
                        )
                    )
        candidates.sort(key=lambda h: h.score, reverse=True)
        results.append(candidates[:num_return])
    return results
