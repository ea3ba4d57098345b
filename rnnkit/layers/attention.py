"""Attention over a sequence of values: Bahdanau (additive) and Luong (dot / general).

Both layers share one call signature, `call(query, values, mask=None)` returning
`(context, weights)`:

- `query`: `(B, Tq, Dq)` or `(B, Dq)` (one decoder step);
- `values`: `(B, Tv, Dv)` (encoder outputs, also used as keys);
- `mask`: optional bool `(B, Tv)`, `True` at valid value positions;
- `context`: `(B, Tq, Dv)` / `(B, Dv)`; `weights`: `(B, Tq, Tv)` / `(B, Tv)`.

Masked value positions get a weight of exactly 0 and the remaining weights sum to 1. A row
whose values are all masked gets all-zero weights and a zero context.
"""

from __future__ import annotations

import keras
from keras import ops

try:  # Keras stores masks on tensors through this helper (works for every tensor type).
    from keras.src.backend.common.masking import get_keras_mask as _get_keras_mask
except ImportError:  # pragma: no cover - other Keras versions

    def _get_keras_mask(x):
        return getattr(x, "_keras_mask", None)


LUONG_SCORES = ("dot", "general")


class _Attention(keras.layers.Layer):
    """Shared plumbing: shapes, masking, softmax and the weighted sum."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def _check_shapes(self, query_shape, values_shape) -> None:
        query_shape, values_shape = tuple(query_shape), tuple(values_shape)
        if len(query_shape) not in (2, 3):
            raise ValueError(
                f"`query` must be 2-D (batch, dim) or 3-D (batch, time, dim). "
                f"Received: query with shape={query_shape}"
            )
        if len(values_shape) != 3:
            raise ValueError(
                f"`values` must be 3-D (batch, time, dim). "
                f"Received: values with shape={values_shape}"
            )

    def _scores(self, query, values):
        """Scores `(B, Tq, Tv)` from query `(B, Tq, Dq)` and values `(B, Tv, Dv)`."""
        raise NotImplementedError

    def call(self, query, values, mask=None):
        self._check_shapes(query.shape, values.shape)
        single_step = len(query.shape) == 2
        if single_step:
            query = ops.expand_dims(query, 1)
        scores = self._scores(query, values)  # (B, Tq, Tv)
        if mask is not None:
            valid = ops.expand_dims(ops.cast(mask, "bool"), 1)  # (B, 1, Tv)
            dtype = keras.backend.standardize_dtype(scores.dtype)
            large_negative = -1e9 if dtype in ("float32", "float64") else -3e4  # float16-safe
            scores = ops.where(valid, scores, ops.cast(large_negative, scores.dtype))
            weights = ops.softmax(scores, axis=-1)
            # Exactly zero at masked positions (also for rows with no valid position).
            weights = ops.where(valid, weights, ops.zeros_like(weights))
        else:
            weights = ops.softmax(scores, axis=-1)
        context = ops.matmul(weights, ops.cast(values, weights.dtype))  # (B, Tq, Dv)
        if single_step:
            context = ops.squeeze(context, 1)
            weights = ops.squeeze(weights, 1)
        return context, weights

    def compute_mask(self, query, mask=None):
        # The context keeps the query's time mask (if any); `mask` here is the values' mask.
        query_mask = _get_keras_mask(query) if len(query.shape) == 3 else None
        return (query_mask, None)

    def compute_output_shape(self, query_shape, values_shape):
        query_shape, values_shape = tuple(query_shape), tuple(values_shape)
        if len(query_shape) == 2:
            return (query_shape[0], values_shape[-1]), (query_shape[0], values_shape[1])
        return (
            (query_shape[0], query_shape[1], values_shape[-1]),
            (query_shape[0], query_shape[1], values_shape[1]),
        )


@keras.saving.register_keras_serializable(package="rnnkit")
class BahdanauAttention(_Attention):
    """Additive attention: `score(q, k) = v^T tanh(W1 q + W2 k + b)`.

    Args:
        units: width of the hidden scoring layer.

    Weights: `query_dense` (W1, no bias), `values_dense` (W2 with bias b), `score_dense`
    (v, no bias: a constant shift does not change the softmax).
    """

    def __init__(self, units: int = 64, **kwargs):
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"`units` must be an integer >= 1. Received: units={units!r}")
        super().__init__(**kwargs)
        self.units = units
        self.query_dense = keras.layers.Dense(units, use_bias=False, name="query_dense")
        self.values_dense = keras.layers.Dense(units, use_bias=True, name="values_dense")
        self.score_dense = keras.layers.Dense(1, use_bias=False, name="score_dense")

    def build(self, query_shape, values_shape):
        self._check_shapes(query_shape, values_shape)
        self.query_dense.build(tuple(query_shape))
        self.values_dense.build(tuple(values_shape))
        self.score_dense.build((None, None, None, self.units))
        self.built = True

    def _scores(self, query, values):
        projected_query = self.query_dense(query)  # (B, Tq, U)
        projected_values = self.values_dense(values)  # (B, Tv, U)
        hidden = ops.tanh(
            ops.expand_dims(projected_query, 2) + ops.expand_dims(projected_values, 1)
        )  # (B, Tq, Tv, U)
        return ops.squeeze(self.score_dense(hidden), -1)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="rnnkit")
class LuongAttention(_Attention):
    """Multiplicative attention: `"dot"`: `score = q . k` (needs Dq == Dv);
    `"general"`: `score = q W k` with `W` of shape `(Dq, Dv)` (weight `kernel`, no bias).
    """

    def __init__(self, score: str = "dot", **kwargs):
        if score not in LUONG_SCORES:
            allowed = ", ".join(repr(s) for s in LUONG_SCORES)
            raise ValueError(f"`score` must be one of {allowed}. Received: score={score!r}")
        super().__init__(**kwargs)
        self.score = score
        self.kernel = None

    def build(self, query_shape, values_shape):
        self._check_shapes(query_shape, values_shape)
        query_dim, values_dim = query_shape[-1], values_shape[-1]
        if self.score == "dot":
            if query_dim is not None and values_dim is not None and query_dim != values_dim:
                raise ValueError(
                    "`score='dot'` needs query and values of the same last dimension; use "
                    "score='general' otherwise. Received: query with shape="
                    f"{tuple(query_shape)}, values with shape={tuple(values_shape)}"
                )
        else:
            if query_dim is None or values_dim is None:
                raise ValueError(
                    "`score='general'` needs known last dimensions. Received: query with "
                    f"shape={tuple(query_shape)}, values with shape={tuple(values_shape)}"
                )
            self.kernel = self.add_weight(
                name="kernel", shape=(query_dim, values_dim), initializer="glorot_uniform"
            )
        self.built = True

    def _scores(self, query, values):
        if self.score == "general":
            query = ops.matmul(query, ops.cast(self.kernel, query.dtype))  # (B, Tq, Dv)
        return ops.matmul(query, ops.transpose(values, (0, 2, 1)))

    def get_config(self):
        return {**super().get_config(), "score": self.score}
