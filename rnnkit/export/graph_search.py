"""Greedy search over a step function as TensorFlow graph ops (a ``tf.while_loop``), for
SavedModel signatures that decode inside the graph.

It follows ``rnnkit.decoding.greedy_search`` step for step, so both give the same ids for the
same logits: feed ``start_id``; at each step take the argmax (first index on ties); a row is
finished when it emits ``end_id`` (not included) and is fed ``end_id`` afterwards; stop after
``max_length`` steps or as soon as every row has finished.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

GraphStepFn = Callable[[tf.Tensor, list], "tuple[tf.Tensor, list]"]


def greedy_search(step_fn: GraphStepFn, initial_states: Sequence[tf.Tensor], start_id: int,
                  end_id: int, max_length: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Greedy decoding in the graph.

    Args:
        step_fn: `step_fn(tokens int32 (B,), states) -> (logits (B, V), new_states)`;
            anything static (encoder outputs, masks) is captured by the closure.
        initial_states: non-empty list of state tensors with the batch on axis 0 (their
            shapes stay the same at every step).
        start_id: token fed at the first step.
        end_id: token that finishes a row (not included in the result).
        max_length: maximum number of steps (generated tokens, end included).

    Returns:
        `(token_ids int32 (B, T), lengths int32 (B,))`: the generated ids of each row,
        right-padded with 0, `T = max(lengths)`.
    """
    if int(max_length) < 1:
        raise ValueError(f"`max_length` must be >= 1. Received: max_length={max_length}")
    if not initial_states:
        raise ValueError("`initial_states` must hold at least one state tensor. Received: []")
    states = [tf.convert_to_tensor(s) for s in initial_states]
    batch = tf.shape(states[0])[0]
    tokens = tf.fill([batch], tf.constant(start_id, tf.int32))
    finished = tf.zeros([batch], tf.bool)
    ids = tf.zeros([batch, 0], tf.int32)
    lengths = tf.zeros([batch], tf.int32)

    def keep_going(step, tokens, finished, ids, lengths, states):
        return tf.logical_and(step < int(max_length),
                              tf.logical_not(tf.reduce_all(finished)))

    def body(step, tokens, finished, ids, lengths, states):
        logits, new_states = step_fn(tokens, list(states))
        next_tokens = tf.argmax(logits, axis=-1, output_type=tf.int32)
        emitted = tf.logical_and(tf.logical_not(finished), tf.not_equal(next_tokens, end_id))
        ids = tf.concat([ids, tf.where(emitted, next_tokens, 0)[:, None]], axis=1)
        lengths = lengths + tf.cast(emitted, tf.int32)
        finished = tf.logical_or(finished, tf.equal(next_tokens, end_id))
        tokens = tf.where(finished, tf.constant(end_id, tf.int32), next_tokens)
        new_states = [tf.ensure_shape(new, old.shape) for new, old in
                      zip(new_states, states, strict=True)]
        return step + 1, tokens, finished, ids, lengths, new_states

    _, _, _, ids, lengths, _ = tf.while_loop(
        keep_going, body, (tf.constant(0), tokens, finished, ids, lengths, states),
        shape_invariants=(tf.TensorShape([]), tokens.shape, finished.shape,
                          tf.TensorShape([None, None]), lengths.shape,
                          [s.shape for s in states]))
    width = tf.reduce_max(tf.concat([lengths, [0]], 0))
    return ids[:, :width], lengths
