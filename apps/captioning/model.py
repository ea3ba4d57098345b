"""Captioning model: image encoder (feature grid) + recurrent decoder with visual attention.

``build_model(config, vocab_size)`` returns three functional Keras models sharing weights:

* ``encoder``: ``image float32 (B, H, W, 3)`` pixels 0..255 → ``encoder_outputs (B, T, D)``
  (the grid, ``T = H'*W'``) and the decoder's initial states (``state_h`` [, ``state_c``]) from
  the mean grid feature through ``Dense(tanh)`` (Show, Attend and Tell's init);
* ``decoder.step_model``: ``(token (B, 1), *states, encoder_outputs, encoder_mask) →
  (logits (B, V), *new_states, attention (B, T))`` — from
  :func:`rnnkit.layers.seq2seq.build_attention_decoder` (the grid plays the encoder outputs);
* ``training_model``: ``{"image", "target_in"} → logits (B, L, V)`` (teacher forcing).

The image encoder is :class:`rnnkit.layers.ConvImageEncoder`, or with ``backbone`` set, a
frozen ``keras.applications`` backbone loaded from ``backbone_weights`` (a local file).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from rnnkit.layers.image import ConvImageEncoder, GridMask, build_pretrained_encoder
from rnnkit.layers.seq2seq import AttentionDecoder, build_attention_decoder

STATE_NAMES = ("h", "c")


@dataclass
class CaptionModels:
    encoder: keras.Model
    decoder: AttentionDecoder
    training_model: keras.Model
    grid_size: tuple[int, int]


def build_image_encoder(config, load_backbone_weights: bool = True) -> tuple[keras.Model, tuple[int, int]]:
    """``image → grid (B, T, D)`` and the grid's ``(H', W')``."""
    size = int(config.image_size)
    if config.backbone == "conv":
        layer = ConvImageEncoder(
            filters=tuple(config.encoder_filters), convs_per_block=config.convs_per_block,
            output_dim=config.encoder_dim, position_embedding=True, name="image_encoder")
        image = keras.Input(shape=(size, size, 3), dtype="float32", name="image")
        model = keras.Model(image, layer(image), name="image_features")
        return model, layer.grid_size((size, size))
    weights = config.backbone_weights if load_backbone_weights else None
    if load_backbone_weights and not config.backbone_weights:
        from rnnkit.errors import UserError

        raise UserError(f"`backbone={config.backbone!r}` needs `backbone_weights`: a local "
                        "weights file (nothing is downloaded)")
    model = build_pretrained_encoder((size, size), config.backbone, weights,
                                     output_dim=config.encoder_dim, name="image_features")
    cells = int(model.output.shape[1])
    side = int(round(cells ** 0.5))
    return model, (side, cells // side)


def build_model(config, vocab_size: int, load_backbone_weights: bool = True) -> CaptionModels:
    """The captioning models for ``config`` and a target vocabulary of ``vocab_size``.

    ``load_backbone_weights=False`` builds a pretrained backbone without reading its weights
    file (a trained run's weights are loaded afterwards).
    """
    features, grid_size = build_image_encoder(config, load_backbone_weights)
    values_dim = int(features.output.shape[-1])
    num_states = 2 if config.kind == "lstm" else 1

    image = keras.Input(shape=(config.image_size, config.image_size, 3), dtype="float32",
                        name="image")
    grid = features(image)
    pooled = keras.layers.GlobalAveragePooling1D(name="grid_mean")(grid)
    states = [keras.layers.Dense(config.units, activation="tanh", name=f"init_state_{n}")(pooled)
              for n in STATE_NAMES[:num_states]]
    outputs = [keras.layers.Identity(name="encoder_outputs")(grid)]
    outputs += [keras.layers.Identity(name=f"state_{n}")(s)
                for n, s in zip(STATE_NAMES, states, strict=False)]
    encoder = keras.Model(image, outputs, name="encoder")

    decoder = build_attention_decoder(
        vocab_size, values_dim, embedding_dim=config.embedding_dim, units=config.units,
        kind=config.kind, attention=config.attention, attention_units=config.attention_units,
        dropout_rate=config.dropout_rate, name="decoder")

    train_image = keras.Input(shape=(config.image_size, config.image_size, 3), dtype="float32",
                              name="image")
    target_in = keras.Input(shape=(None,), dtype="int32", name="target_in")
    values, *initial_states = encoder(train_image)
    mask = GridMask(name="grid_mask")(values)
    logits = decoder.training_model([target_in, *initial_states, values, mask])
    training_model = keras.Model({"image": train_image, "target_in": target_in}, logits,
                                 name="captioner")
    return CaptionModels(encoder, decoder, training_model, tuple(grid_size))
