"""Image encoder blocks: pixels → a grid of feature vectors ``(B, H'*W', D)`` to attend over.

- :class:`FeatureGrid` flattens a feature map ``(B, H', W', C)`` into ``(B, H'*W', C)`` and adds
  a learned embedding per grid cell (attention then knows *where* a feature is: captions say
  "on the left").
- :class:`ConvImageEncoder` is a small convolutional stack (``[Conv-BN-ReLU] x n → MaxPool``
  per block) ending in a :class:`FeatureGrid`: image ``(B, H, W, 3)`` float pixels in
  ``0..255`` → ``(B, (H/2^blocks) * (W/2^blocks), D)``. Rescaling happens inside the layer so
  exported graphs take raw pixel values.
- :class:`GridMask` gives the all-True ``(B, H'*W')`` mask an attention decoder expects.
- :func:`build_pretrained_encoder` wraps a frozen ``keras.applications`` backbone loaded from a
  **local** weights file (nothing is downloaded) + a :class:`FeatureGrid` + a projection.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
from keras import ops

NORMALIZATIONS = ("batch", "none")
# name -> (constructor name in keras.applications, input scale, input offset): the backbone's
# own preprocessing, applied in the graph to 0..255 pixels.
BACKBONES = {
    "mobilenet_v2": ("MobileNetV2", 1.0 / 127.5, -1.0),
    "mobilenet_v3_small": ("MobileNetV3Small", 1.0, 0.0),  # includes its own rescaling
    "efficientnet_b0": ("EfficientNetB0", 1.0, 0.0),  # includes its own normalization
}


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")
    return value


@keras.saving.register_keras_serializable(package="rnnkit")
class FeatureGrid(keras.layers.Layer):
    """``(B, H, W, C) → (B, H*W, C)`` (row-major cells) plus an optional learned position
    embedding per cell. ``H`` and ``W`` must be static."""

    def __init__(self, position_embedding: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.position_embedding = bool(position_embedding)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError(
                "`FeatureGrid` needs a 4-D input (batch, height, width, channels) with static "
                f"height and width. Received: shape={tuple(input_shape)}"
            )
        self._cells = int(input_shape[1]) * int(input_shape[2])
        self._channels = int(input_shape[3])
        if self.position_embedding:
            self.positions = self.add_weight(
                name="positions", shape=(self._cells, self._channels),
                initializer=keras.initializers.RandomNormal(stddev=0.02),
            )

    def call(self, inputs):
        grid = ops.reshape(inputs, (-1, self._cells, self._channels))
        if self.position_embedding:
            grid = grid + ops.expand_dims(ops.cast(self.positions, grid.dtype), 0)
        return grid

    def compute_output_shape(self, input_shape):
        cells = None if input_shape[1] is None or input_shape[2] is None else (
            int(input_shape[1]) * int(input_shape[2]))
        return (input_shape[0], cells, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "position_embedding": self.position_embedding}


@keras.saving.register_keras_serializable(package="rnnkit")
class GridMask(keras.layers.Layer):
    """``values (B, T, D) → all-True bool mask (B, T)`` (every grid cell is valid)."""

    def call(self, values):
        return ops.ones_like(values[..., 0], dtype="bool")

    def compute_output_spec(self, values):
        return keras.KerasTensor(tuple(values.shape[:2]), dtype="bool")


@keras.saving.register_keras_serializable(package="rnnkit")
class ConvImageEncoder(keras.layers.Layer):
    """A small convolutional image encoder producing a feature grid.

    Args:
        filters: output channels of each block; every block halves the resolution
            (``MaxPool2D(2)``), so a 64x64 image with 3 blocks gives an 8x8 = 64-cell grid.
        convs_per_block: ``Conv2D(k x k, same) → [BatchNorm] → activation`` layers per block.
        kernel_size: convolution kernel size.
        normalization: ``"batch"`` (BatchNormalization after each conv) or ``"none"``.
        activation: any Keras activation name.
        output_dim: if set, a ``Dense(output_dim)`` projection of each cell (default: the
            last block's ``filters``).
        position_embedding: add a learned embedding per grid cell.
        dropout_rate: dropout on the grid features (training only).
        input_scale, input_offset: pixels are mapped to ``x * input_scale + input_offset``
            inside the layer (default: ``0..255 → 0..1``).

    Input ``(B, H, W, C)`` float with static ``H, W``; output ``(B, H'*W', D)``.
    """

    def __init__(
        self,
        filters: Sequence[int] = (32, 64, 128),
        convs_per_block: int = 1,
        kernel_size: int = 3,
        normalization: str = "batch",
        activation: str = "relu",
        output_dim: int | None = None,
        position_embedding: bool = True,
        dropout_rate: float = 0.0,
        input_scale: float = 1.0 / 255.0,
        input_offset: float = 0.0,
        **kwargs,
    ):
        filters = list(filters) if not isinstance(filters, int) else [filters]
        if not filters:
            raise ValueError("`filters` must list at least one block. Received: filters=[]")
        for value in filters:
            _check_positive("filters", value)
        _check_positive("convs_per_block", convs_per_block)
        _check_positive("kernel_size", kernel_size)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"`normalization` must be one of {NORMALIZATIONS}. "
                             f"Received: normalization={normalization!r}")
        if output_dim is not None:
            _check_positive("output_dim", output_dim)
        if not 0.0 <= float(dropout_rate) < 1.0:
            raise ValueError(f"`dropout_rate` must be in [0, 1). Received: dropout_rate={dropout_rate}")
        super().__init__(**kwargs)
        self.filters = [int(f) for f in filters]
        self.convs_per_block = int(convs_per_block)
        self.kernel_size = int(kernel_size)
        self.normalization = normalization
        self.activation = activation
        self.output_dim = None if output_dim is None else int(output_dim)
        self.position_embedding = bool(position_embedding)
        self.dropout_rate = float(dropout_rate)
        self.input_scale = float(input_scale)
        self.input_offset = float(input_offset)

        # One flat list (Keras tracks the weights of layers held in a list attribute).
        self.stack_layers: list[keras.layers.Layer] = []
        for block, width in enumerate(self.filters):
            layers = self.stack_layers
            for index in range(self.convs_per_block):
                layers.append(keras.layers.Conv2D(
                    width, self.kernel_size, padding="same",
                    use_bias=normalization == "none", name=f"conv_{block}_{index}"))
                if normalization == "batch":
                    # momentum 0.9: moving statistics settle within a short CPU run.
                    layers.append(keras.layers.BatchNormalization(
                        momentum=0.9, name=f"norm_{block}_{index}"))
                layers.append(keras.layers.Activation(activation, name=f"act_{block}_{index}"))
            layers.append(keras.layers.MaxPooling2D(2, name=f"pool_{block}"))
        self.grid = FeatureGrid(position_embedding=False, name="grid")
        self.projection = (keras.layers.Dense(self.output_dim, name="projection")
                           if self.output_dim else None)
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")

    def _grid_shape(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None:
            raise ValueError("`ConvImageEncoder` needs static image height and width. "
                             f"Received: shape={tuple(input_shape)}")
        for _ in self.filters:
            height, width = height // 2, width // 2
        if height < 1 or width < 1:
            raise ValueError(
                f"The image is too small for {len(self.filters)} blocks (each halves it). "
                f"Received: shape={tuple(input_shape)}")
        return int(height), int(width)

    def build(self, input_shape):
        shape = tuple(input_shape)
        height, width = self._grid_shape(shape)
        for layer in self.stack_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.grid.build(shape)
        shape = self.grid.compute_output_shape(shape)
        if self.projection is not None:
            self.projection.build(shape)
            shape = self.projection.compute_output_shape(shape)
        self._cells = height * width
        self._dim = int(shape[-1])
        if self.position_embedding:
            self.positions = self.add_weight(
                name="positions", shape=(self._cells, self._dim),
                initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, inputs, training=None):
        x = ops.cast(inputs, self.compute_dtype) * self.input_scale + self.input_offset
        for layer in self.stack_layers:
            x = layer(x, training=training) if isinstance(
                layer, keras.layers.BatchNormalization) else layer(x)
        x = self.grid(x)
        if self.projection is not None:
            x = self.projection(x)
        if self.position_embedding:
            x = x + ops.expand_dims(ops.cast(self.positions, x.dtype), 0)
        return self.dropout(x, training=training)

    def compute_output_shape(self, input_shape):
        height, width = self._grid_shape(tuple(input_shape))
        dim = self.output_dim or self.filters[-1]
        return (input_shape[0], height * width, dim)

    def grid_size(self, image_size: Sequence[int]) -> tuple[int, int]:
        """``(H', W')`` of the grid for an ``(H, W)`` image."""
        return self._grid_shape((None, int(image_size[0]), int(image_size[1]), 3))

    def get_config(self):
        return {
            **super().get_config(),
            "filters": list(self.filters),
            "convs_per_block": self.convs_per_block,
            "kernel_size": self.kernel_size,
            "normalization": self.normalization,
            "activation": self.activation,
            "output_dim": self.output_dim,
            "position_embedding": self.position_embedding,
            "dropout_rate": self.dropout_rate,
            "input_scale": self.input_scale,
            "input_offset": self.input_offset,
        }


@keras.saving.register_keras_serializable(package="rnnkit")
class Rescale(keras.layers.Layer):
    """``x * scale + offset`` (a backbone's pixel preprocessing, inside the graph)."""

    def __init__(self, scale: float = 1.0, offset: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.offset = float(offset)

    def call(self, inputs):
        return ops.cast(inputs, self.compute_dtype) * self.scale + self.offset

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


def build_pretrained_encoder(
    image_size: Sequence[int],
    backbone: str = "mobilenet_v2",
    weights_path: str | Path | None = None,
    output_dim: int | None = 128,
    trainable: bool = False,
    position_embedding: bool = True,
    name: str = "pretrained_image_encoder",
    **backbone_kwargs,
) -> keras.Model:
    """A frozen ``keras.applications`` backbone as an image encoder: ``image (B, H, W, 3)``
    pixels in ``0..255`` → grid ``(B, H'*W', output_dim)``.

    ``weights_path`` must be a local weights file (e.g. the ``..._no_top.h5`` file of
    MobileNetV2); nothing is downloaded. ``None`` builds the backbone with random weights (used
    when a trained model is rebuilt and its weights come from the run's checkpoint).
    """
    if backbone not in BACKBONES:
        raise ValueError(f"`backbone` must be one of {sorted(BACKBONES)}. Received: "
                         f"backbone={backbone!r}")
    if weights_path is not None:
        weights_path = Path(weights_path)
        if not weights_path.is_file():
            from rnnkit.errors import UserError

            raise UserError(f"`backbone_weights` file not found: {str(weights_path)!r} "
                            "(rnnkit never downloads weights; pass a local file)")
    constructor_name, scale, offset = BACKBONES[backbone]
    constructor = getattr(keras.applications, constructor_name)
    height, width = int(image_size[0]), int(image_size[1])
    image = keras.Input(shape=(height, width, 3), dtype="float32", name="image")
    x = Rescale(scale, offset, name="backbone_preprocess")(image)
    try:
        base = constructor(input_shape=(height, width, 3), include_top=False,
                           weights=None if weights_path is None else str(weights_path),
                           **backbone_kwargs)
    except (ValueError, OSError) as error:
        from rnnkit.errors import UserError

        raise UserError(f"Could not build backbone {backbone!r} from weights "
                        f"{str(weights_path)!r}: {str(error).splitlines()[0]}") from None
    base.trainable = bool(trainable)
    features = base(x, training=False if not trainable else None)
    grid = FeatureGrid(position_embedding=position_embedding, name="grid")(features)
    if output_dim:
        grid = keras.layers.Dense(int(output_dim), activation="relu", name="projection")(grid)
    return keras.Model(image, grid, name=name)
