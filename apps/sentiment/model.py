"""Sentiment model: token ids → embedding (mask_zero) → RecurrentBlock → pooling → classifier.

Input ``token_ids``: int32 ``(B, T)`` right-padded with 0. Outputs ``probabilities``
``(B, num_classes)`` (softmax) and, with ``pooling="attention"``, ``attention`` ``(B, T)``
(per-token weights, exactly 0 on padding). Every pooling respects the padding mask.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from rnnkit.layers import RecurrentBlock

POOLINGS = ("last", "max", "mean", "attention")


@keras.saving.register_keras_serializable(package="rnnkit_sentiment")
class MaskedGlobalPooling(keras.layers.Layer):
    """Max or mean over time of ``(B, T, D)``, ignoring positions where ``mask`` is False.

    A row with no valid position gives zeros.
    """

    def __init__(self, mode: str = "max", **kwargs):
        if mode not in ("max", "mean"):
            raise ValueError(f"`mode` must be one of 'max', 'mean'. Received: mode={mode!r}")
        super().__init__(**kwargs)
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            valid = ops.ones(ops.shape(inputs)[:2], dtype=inputs.dtype)
        else:
            valid = ops.cast(mask, inputs.dtype)
        valid = ops.expand_dims(valid, -1)  # (B, T, 1)
        if self.mode == "mean":
            total = ops.sum(inputs * valid, axis=1)
            count = ops.maximum(ops.sum(valid, axis=1), 1.0)
            return total / count
        lowest = ops.cast(-1e9, inputs.dtype)
        pooled = ops.max(ops.where(valid > 0, inputs, lowest), axis=1)
        any_valid = ops.max(valid, axis=1) > 0
        return ops.where(any_valid, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="rnnkit_sentiment")
class AttentionPooling(keras.layers.Layer):
    """Additive self-attention pooling: ``w = softmax_masked(v·tanh(W h_t + b))``,
    output ``(Σ_t w_t h_t, w)``. Masked positions get weight exactly 0."""

    def __init__(self, units: int = 64, **kwargs):
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"`units` must be an integer >= 1. Received: units={units!r}")
        super().__init__(**kwargs)
        self.units = units
        self.supports_masking = True

    def build(self, input_shape):
        dim = input_shape[-1]
        self.projection = self.add_weight(name="projection", shape=(dim, self.units),
                                          initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.score_vector = self.add_weight(name="score_vector", shape=(self.units, 1),
                                            initializer="glorot_uniform")
        self.built = True

    def call(self, inputs, mask=None):
        hidden = ops.tanh(ops.matmul(inputs, self.projection) + self.bias)  # (B, T, A)
        scores = ops.squeeze(ops.matmul(hidden, self.score_vector), -1)  # (B, T)
        if mask is not None:
            valid = ops.cast(mask, "bool")
            scores = ops.where(valid, scores, ops.cast(-1e9, scores.dtype))
            weights = ops.softmax(scores, axis=-1)
            weights = ops.where(valid, weights, ops.zeros_like(weights))
        else:
            weights = ops.softmax(scores, axis=-1)
        context = ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)  # (B, D)
        return context, weights

    def compute_mask(self, inputs, mask=None):
        return None, None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1]), (input_shape[0], input_shape[1])

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def build_model(config: Any, vocab_size: int, num_classes: int,
                lexicon_valence=None) -> keras.Model:
    """The functional model described in the module docstring.

    ``lexicon_valence`` (``(vocab_size,)`` floats, e.g. VADER ratings / 4 per token id, 0 for
    unrated tokens) adds a frozen one-channel embedding beside the trained one: each token's
    prior polarity, which the recurrent layer can flip ("not good") or weigh ("good but").
    """
    if config.pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of {POOLINGS}. Received: pooling={config.pooling!r}")
    if num_classes < 2:
        raise ValueError(f"`num_classes` must be >= 2. Received: num_classes={num_classes}")
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    mask = ops.not_equal(token_ids, 0)
    embedded = keras.layers.Embedding(vocab_size, config.embedding_dim, mask_zero=True,
                                      name="embedding")(token_ids)
    if lexicon_valence is not None:
        valence = np.asarray(lexicon_valence, dtype="float32").reshape(-1, 1)
        if valence.shape[0] != vocab_size:
            raise ValueError(f"`lexicon_valence` must have one value per token id ({vocab_size}). "
                             f"Received: {valence.shape[0]} values")
        # mask_zero here too: Concatenate ORs its inputs' masks per feature, so an unmasked
        # input would unmask the padding for the recurrent layer.
        lexicon_layer = keras.layers.Embedding(vocab_size, 1, embeddings_initializer="zeros",
                                               mask_zero=True, trainable=False,
                                               name="lexicon_valence")
        prior = lexicon_layer(token_ids)
        lexicon_layer.set_weights([valence])
        embedded = keras.layers.Concatenate(name="embedding_and_valence")([embedded, prior])
    if config.dropout_rate:
        embedded = keras.layers.SpatialDropout1D(config.dropout_rate / 2, name="embedding_dropout")(embedded)
    last = config.pooling == "last"
    sequence = RecurrentBlock(
        kind=config.kind, units=config.units, num_layers=config.num_layers,
        bidirectional=config.bidirectional, dropout_rate=0.0,
        recurrent_dropout_rate=config.recurrent_dropout_rate,
        return_sequences=not last, name="recurrent",
    )(embedded)
    outputs = {}
    if last:
        pooled = sequence
    elif config.pooling == "attention":
        pooled, weights = AttentionPooling(config.attention_units, name="attention_pooling")(
            sequence, mask=mask)
        outputs["attention"] = keras.layers.Identity(name="attention")(weights)
    else:
        pooled = MaskedGlobalPooling(config.pooling, name=f"{config.pooling}_pooling")(
            sequence, mask=mask)
    hidden = pooled
    if config.dropout_rate:
        hidden = keras.layers.Dropout(config.dropout_rate, name="dropout")(hidden)
    if config.hidden_units:
        hidden = keras.layers.Dense(config.hidden_units, activation="relu", name="hidden")(hidden)
    probabilities = keras.layers.Dense(num_classes, activation="softmax",
                                       name="probabilities")(hidden)
    outputs = {"probabilities": probabilities, **outputs}
    return keras.Model(token_ids, outputs, name="sentiment")


def training_model(model: keras.Model) -> keras.Model:
    """The same layers with only the probabilities output (what the loss sees)."""
    return keras.Model(model.inputs, model.get_layer("probabilities").output,
                       name="sentiment_train")
