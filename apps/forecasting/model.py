"""Forecasting model: scaled window ``(B, L, 1)`` → RecurrentBlock → Dense → quantiles.

Output ``quantiles`` ``(B, horizon, Q)``: per step, the lowest quantile plus cumulative
softplus increments, so the quantiles never cross. ``horizon=1`` is the many-to-one (next
step) model, ``horizon > 1`` the multi-step one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from rnnkit.layers import RecurrentBlock


@keras.saving.register_keras_serializable(package="rnnkit_forecasting")
class OrderedQuantiles(keras.layers.Layer):
    """``(B, H * Q)`` raw values → ``(B, H, Q)`` increasing quantiles per step."""

    def __init__(self, horizon: int, num_quantiles: int, **kwargs):
        super().__init__(**kwargs)
        self.horizon = int(horizon)
        self.num_quantiles = int(num_quantiles)

    def call(self, inputs):
        raw = ops.reshape(inputs, (-1, self.horizon, self.num_quantiles))
        if self.num_quantiles == 1:
            return raw
        base = raw[:, :, :1]
        steps = ops.softplus(raw[:, :, 1:])
        upper = np.triu(np.ones((self.num_quantiles - 1,) * 2, dtype="float32"))
        # A constant matmul rather than cumsum: every exporter maps it to a plain MatMul.
        return ops.concatenate([base, base + ops.matmul(steps, upper)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon, self.num_quantiles)

    def get_config(self):
        return {**super().get_config(), "horizon": self.horizon,
                "num_quantiles": self.num_quantiles}


def build_model(config: Any) -> keras.Model:
    levels = list(config.quantiles)
    window = keras.Input(shape=(config.window, 1), dtype="float32", name="window")
    hidden = RecurrentBlock(kind=config.kind, units=config.units, num_layers=config.num_layers,
                            dropout_rate=0.0, name="recurrent")(window)
    if config.dropout_rate:
        hidden = keras.layers.Dropout(config.dropout_rate, name="dropout")(hidden)
    raw = keras.layers.Dense(config.horizon * len(levels), name="head")(hidden)
    quantiles = OrderedQuantiles(config.horizon, len(levels), name="quantiles")(raw)
    return keras.Model(window, {"quantiles": quantiles}, name="forecasting")


def pinball_loss(levels: Sequence[float]):
    """Mean pinball (quantile) loss of ``(B, H, Q)`` predictions for ``(B, H)`` targets."""
    tau = ops.convert_to_tensor(np.asarray(levels, dtype="float32"))

    def loss(y_true, y_pred):
        diff = ops.expand_dims(ops.cast(y_true, y_pred.dtype), -1) - y_pred
        return ops.mean(ops.maximum(tau * diff, (tau - 1.0) * diff), axis=(-2, -1))

    return loss
