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


def warmup_steps(total_steps: int) -> int:
    return min(200, max(total_steps // 20, 0))


def compile_model(models: TranslationModels, config, total_steps: int) -> None:
    """Adam with clipping; the rate follows a step-based cosine, or with
    ``schedule_by_time`` and a time budget a plain rate that ``recipe.TimeBudgetCosine``
    sets before every batch."""
    from rnnkit.losses import MaskedSparseCategoricalCrossentropy
    from rnnkit.training import make_optimizer

    if getattr(config, "schedule_by_time", False) and config.max_train_minutes > 0:
        optimizer = make_optimizer(config.learning_rate, clipnorm=1.0)
    else:
        optimizer = make_optimizer(config.learning_rate, clipnorm=1.0, schedule="cosine",
                                   total_steps=max(total_steps, 1),
                                   warmup_steps=warmup_steps(total_steps))
    models.training_model.compile(optimizer=optimizer, loss=MaskedSparseCategoricalCrossentropy(
                                      pad_id=0, label_smoothing=config.label_smoothing),
                                  jit_compile=config.jit_compile)
