"""Image encoder blocks: shapes, serialization round trip, one training step, errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from rnnkit.errors import UserError
from rnnkit.layers import ConvImageEncoder, FeatureGrid, GridMask, build_pretrained_encoder


def _images(batch=2, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def test_conv_encoder_grid_shape_and_round_trip(tmp_path):
    layer = ConvImageEncoder(filters=(4, 8), output_dim=6, name="enc")
    image = keras.Input((32, 32, 3))
    model = keras.Model(image, [layer(image), GridMask()(layer(image))])
    grid, mask = model(_images())
    assert tuple(grid.shape) == (2, 64, 6)  # 32 / 2 / 2 = 8 -> 8x8 cells
    assert mask.dtype == "bool" and bool(np.all(mask))
    assert layer.grid_size((32, 32)) == (8, 8)
    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored(_images())[0], model(_images())[0], atol=1e-6)
    config = layer.get_config()
    assert config["filters"] == [4, 8] and config["output_dim"] == 6


def test_conv_encoder_trains_one_step():
    layer = ConvImageEncoder(filters=(4,), normalization="none", position_embedding=False)
    image = keras.Input((8, 8, 3))
    model = keras.Model(image, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(
        layer(image))))
    model.compile(optimizer="adam", loss="mse")
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.train_on_batch(_images(4, 8), np.ones((4, 1), "float32"))
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(before, model.trainable_weights, strict=False))


def test_feature_grid_positions_are_added_per_cell():
    grid = FeatureGrid()
    out = grid(np.zeros((3, 2, 5, 4), "float32"))
    assert tuple(out.shape) == (3, 10, 4)
    np.testing.assert_allclose(out[0], grid.positions.numpy())
    plain = FeatureGrid(position_embedding=False)(np.arange(8, dtype="float32").reshape(1, 2, 2, 2))
    np.testing.assert_array_equal(plain[0], [[0, 1], [2, 3], [4, 5], [6, 7]])  # row-major


def test_argument_errors():
    with pytest.raises(ValueError, match="filters"):
        ConvImageEncoder(filters=())
    with pytest.raises(ValueError, match="normalization"):
        ConvImageEncoder(normalization="layer")
    with pytest.raises(ValueError, match="too small"):
        ConvImageEncoder(filters=(4, 4, 4, 4))(np.zeros((1, 8, 8, 3), "float32"))
    with pytest.raises(ValueError, match="backbone"):
        build_pretrained_encoder((32, 32), backbone="vgg99")
    with pytest.raises(UserError, match="not found"):
        build_pretrained_encoder((32, 32), weights_path="/no/such/weights.h5")


def test_pretrained_backbone_from_local_file(tmp_path):
    """A frozen MobileNetV2 whose weights come from a local file (nothing downloaded)."""
    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False,
                                          weights=None, alpha=0.35)
    path = tmp_path / "mobilenet_v2_no_top.weights.h5"
    base.save_weights(path)
    encoder = build_pretrained_encoder((32, 32), "mobilenet_v2", path, output_dim=8, alpha=0.35)
    assert tuple(encoder.output.shape) == (None, 1, 8)
    backbone = [layer for layer in encoder.layers if isinstance(layer, keras.Model)][0]
    assert not backbone.trainable
    np.testing.assert_allclose(backbone.get_weights()[0], base.get_weights()[0])
    assert len(encoder.trainable_weights) == 3  # grid positions + projection kernel/bias
