"""Translation model: bidirectional recurrent encoder + attention decoder from rnnkit.layers."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from rnnkit.layers.seq2seq import (
    AttentionDecoder,
    build_attention_decoder,
    build_encoder,
    build_seq2seq_model,
)


@dataclass
class TranslationModels:
    encoder: keras.Model  # source_ids -> [encoder_outputs, *decoder_states]
    decoder: AttentionDecoder  # .training_model, .step_model
    training_model: keras.Model  # {source_ids, target_in} -> logits


def build_model(config, source_vocab_size: int, target_vocab_size: int) -> TranslationModels:
    """Assemble the encoder, decoder and teacher-forcing model of ``config``."""
    encoder = build_encoder(
        source_vocab_size, embedding_dim=config.embedding_dim, units=config.encoder_units,
        kind=config.rnn_kind, num_layers=config.encoder_layers,
        bidirectional=config.bidirectional, decoder_units=config.decoder_units,
        decoder_kind=config.rnn_kind, dropout_rate=config.dropout_rate,
    )
    values_dim = config.encoder_units * (2 if config.bidirectional else 1)
    decoder = build_attention_decoder(
        target_vocab_size, values_dim=values_dim, embedding_dim=config.embedding_dim,
        units=config.decoder_units, kind=config.rnn_kind, attention=config.attention,
        attention_units=config.attention_units, luong_score=config.luong_score,
        dropout_rate=config.dropout_rate,
    )
    return TranslationModels(encoder, decoder, build_seq2seq_model(encoder, decoder))


@keras.saving.register_keras_serializable(package="rnnkit_translation")
class _LocalMaskedCrossentropy(keras.losses.Loss):
    """Fallback used only when ``rnnkit.losses`` is not available: token cross-entropy over
    logits with label smoothing, averaged over non-pad (id 0) target positions."""

    def __init__(self, pad_id: int = 0, label_smoothing: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.pad_id = pad_id
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        ops = keras.ops
        y_true = ops.cast(y_true, "int32")
        vocab = ops.shape(y_pred)[-1]
        one_hot = ops.one_hot(y_true, vocab)
        if self.label_smoothing:
            one_hot = one_hot * (1.0 - self.label_smoothing) + self.label_smoothing / ops.cast(
                vocab, "float32")
        log_probs = ops.log_softmax(y_pred, axis=-1)
        loss = -ops.sum(one_hot * log_probs, axis=-1)
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), loss.dtype)
        # Keras averages the returned (B, T) values over all B*T positions: rescale so the
        # result is the mean over the non-pad positions.
        return loss * mask / ops.maximum(ops.mean(mask), 1e-9)

    def get_config(self):
        return {**super().get_config(), "pad_id": self.pad_id,
                "label_smoothing": self.label_smoothing}


def make_loss(label_smoothing: float) -> keras.losses.Loss:
    try:
        import numpy as np

        from rnnkit.losses import MaskedSparseCategoricalCrossentropy

        loss = MaskedSparseCategoricalCrossentropy(pad_id=0, label_smoothing=label_smoothing,
                                                   from_logits=True)
        loss(np.array([[1, 0]], "int32"), np.zeros((1, 2, 3), "float32"))  # smoke check
        return loss
    except Exception:  # rnnkit.losses missing or broken: the local equivalent
        return _LocalMaskedCrossentropy(pad_id=0, label_smoothing=label_smoothing)


def compile_model(models: TranslationModels, config, total_steps: int) -> None:
    from rnnkit.training import make_optimizer

    optimizer = make_optimizer(config.learning_rate, clipnorm=1.0, schedule="cosine",
                               total_steps=max(total_steps, 1),
                               warmup_steps=min(200, max(total_steps // 20, 0)))
    models.training_model.compile(optimizer=optimizer, loss=make_loss(config.label_smoothing),
                                  jit_compile=config.jit_compile)
