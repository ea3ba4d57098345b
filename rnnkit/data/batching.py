"""One length-bucketed, right-padded ``tf.data`` builder for every app.

Examples are grouped by length so that a batch holds similar lengths (little padding), each
field is right-padded with its pad value, and the time axis of a batch is rounded up to a
multiple of ``bucket_width`` (few distinct shapes: a ``jit_compile`` model compiles once per
bucket). The batch order is reshuffled every epoch from ``seed + epoch``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rnnkit.errors import UserError


def bucket_of(lengths: Any, bucket_width: int = 16,
              boundaries: Sequence[int] | None = None) -> np.ndarray:
    """The length bucket of each length: ``length // bucket_width``, or with ``boundaries``
    the index of the first boundary >= length (past the last: one more bucket)."""
    lengths = np.asarray(lengths)
    if boundaries:
        return np.searchsorted(np.asarray(sorted(boundaries)), lengths, side="left")
    return lengths // max(1, bucket_width)


def bucket_width_of(width: int, bucket_width: int = 16,
                    boundaries: Sequence[int] | None = None) -> int:
    """The padded time width of a batch whose longest row is ``width``: rounded up to a
    multiple of ``bucket_width``, or to the next of ``boundaries`` (unchanged past the last)."""
    if boundaries:
        return next((int(b) for b in sorted(boundaries) if b >= width), int(width))
    return int(math.ceil(width / bucket_width) * bucket_width)


def bucketed_batches(lengths: Sequence[int], batch_size: int, bucket_width: int = 16,
                     shuffle: bool = True, seed: int = 0,
                     boundaries: Sequence[int] | None = None) -> list[list[int]]:
    """Index batches grouped by length bucket (less padding); shuffled batch order.

    Examples are sorted by their bucket (:func:`bucket_of`; ties broken randomly when
    shuffling), cut into batches of ``batch_size``, and the batches shuffled.
    """
    rng = np.random.default_rng(seed)
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths)) if shuffle else np.arange(len(lengths))
    buckets = bucket_of(lengths[order], bucket_width, boundaries)
    order = order[np.argsort(buckets, kind="stable")]
    batches = [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def pad_batch(rows: Sequence[Any], width: int | None = None, pad_value: Any = 0,
              dtype: Any = None) -> np.ndarray:
    """Right-pad arrays of shape ``(length_i, ...)`` into ``(B, width, ...)`` (width: the
    longest row when ``None``; longer rows are cut)."""
    arrays = [np.asarray(r, dtype=dtype) for r in rows]
    if not arrays:
        raise ValueError("`rows` must not be empty")
    width = max(len(a) for a in arrays) if width is None else width
    tail = arrays[0].shape[1:]
    out = np.full((len(arrays), width, *tail), pad_value,
                  dtype=dtype if dtype is not None else arrays[0].dtype)
    for index, array in enumerate(arrays):
        out[index, : min(len(array), width)] = array[:width]
    return out


def bucketed_dataset(fields: Mapping[str, Sequence[Any]], arrange: Callable[[dict], Any],
                     batch_size: int, bucket_width: int = 16, shuffle: bool = True,
                     seed: int = 0, lengths: Sequence[int] | None = None,
                     time_fields: Sequence[str] | None = None,
                     pad_values: Mapping[str, Any] | None = None,
                     augment: Callable[[dict, np.random.Generator], dict] | None = None,
                     prefetch: int = 2, boundaries: Sequence[int] | None = None):
    """A ``tf.data.Dataset`` of padded batches.

    ``fields``: name -> one entry per example. The ``time_fields`` (default: the first field)
    have a time axis first and are right-padded with ``pad_values[name]`` (default 0) to the
    batch's bucketed width; the other fields are stacked. ``lengths``: the bucketing key (default: the first
    field's lengths). ``arrange(batch_dict)`` maps the padded numpy batch to what the model
    fits on, e.g. ``lambda b: (b["token_ids"], b["label"])``. ``augment(batch_dict, rng)``
    (training only) may change the numpy batch before ``arrange``. ``boundaries`` replaces
    the multiples of ``bucket_width`` by explicit bucket widths (:func:`bucket_width_of`).
    """
    import tensorflow as tf

    names = list(fields)
    if not names:
        raise ValueError("`fields` must name at least one field")
    count = len(fields[names[0]])
    if count == 0:
        raise UserError("No examples to build batches from. Received: 0 examples")
    if any(len(fields[name]) != count for name in names):
        raise ValueError(f"Every field needs {count} entries. Received: "
                         f"{ {name: len(fields[name]) for name in names} }")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    pad_values = dict(pad_values or {})
    columns = {name: [np.asarray(v) for v in fields[name]] for name in names}
    padded = set(names[:1] if time_fields is None else time_fields)
    if not padded <= set(names):
        raise ValueError(f"`time_fields` must name fields of {names}. Received: {sorted(padded)}")
    if lengths is None:
        lengths = [len(v) if v.ndim else 1 for v in columns[names[0]]]
    lengths = list(lengths)
    rng = np.random.default_rng(seed + 7)
    state = {"epoch": 0}

    def make_batch(indices: Sequence[int]) -> dict[str, np.ndarray]:
        batch = {}
        for name in names:
            values = [columns[name][i] for i in indices]
            if name in padded:
                width = bucket_width_of(max(len(v) for v in values), bucket_width, boundaries)
                batch[name] = pad_batch(values, width, pad_values.get(name, 0))
            else:
                batch[name] = np.stack(values)
        return batch

    def generate():
        batches = bucketed_batches(lengths, batch_size, bucket_width, shuffle=shuffle,
                                   seed=seed + state["epoch"], boundaries=boundaries)
        state["epoch"] += 1
        for indices in batches:
            batch = make_batch(indices)
            if augment is not None:
                batch = augment(batch, rng)
            yield arrange(batch)

    example = arrange(make_batch([0]))

    def spec(value):
        value = np.asarray(value)
        return tf.TensorSpec((None, *[None] * (value.ndim - 1)), tf.as_dtype(value.dtype))

    signature = tf.nest.map_structure(spec, example)
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(math.ceil(count / batch_size)))
    return dataset.prefetch(prefetch)
