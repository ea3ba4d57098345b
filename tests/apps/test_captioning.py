"""Captioning app: rendered data, model, end-to-end run, runtime parity, the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from apps.captioning.config import CaptioningConfig
from apps.captioning.data import (
    COLOURS,
    DEFAULT_HELD_OUT_PAIRS,
    SHAPES,
    make_scene_split,
    parse_pairs,
)
from rnnkit.config import apply_overrides
from rnnkit.errors import UserError
from rnnkit.task import RunDir

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "exported" / "captioning"
# The coloured-shape scenes and the small trainable conv encoder (the default object scenes
# and EfficientNet-Lite0 encoder: tests/apps/test_captioning_objects.py).
TINY = {"train_size": 48, "validation_size": 8, "test_size": 6, "epochs": 1, "batch_size": 16,
        "units": 16, "embedding_dim": 8, "encoder_filters": "4,8,8", "encoder_dim": 8,
        "attention_units": 8, "beam_width": 2, "max_decode_length": 12, "plot_examples": 2,
        "scenes": "shapes", "backbone": "conv", "image_size": 64}


def _pairs(split):
    return {(o.colour, o.shape) for scene in split.scenes for o in scene.objects}


def test_scenes_are_deterministic_and_held_out_pairs_never_train():
    train = make_scene_split("train", 300, seed=7)
    again = make_scene_split("train", 20, seed=7)
    np.testing.assert_array_equal(train.images[:20], again.images)
    assert train.references[:20] == again.references
    assert not np.array_equal(make_scene_split("train", 5, seed=8).images, train.images[:5])
    held = set(DEFAULT_HELD_OUT_PAIRS)
    seen = _pairs(train)
    assert not seen & held
    # Every colour and every shape is seen in training: only the combinations are new.
    assert {c for c, _ in seen} == set(COLOURS) and {s for _, s in seen} == set(SHAPES)
    unseen = make_scene_split("test_unseen", 40, seed=7)
    for scene in unseen.scenes:
        assert {(o.colour, o.shape) for o in scene.objects} & held
    assert train.images.shape == (300, 64, 64, 3) and train.images.dtype == np.uint8


def test_captions_list_objects_in_reading_order_with_several_phrasings():
    split = make_scene_split("train", 60, seed=3)
    for scene, references in zip(split.scenes, split.references, strict=False):
        assert len(set(references)) == 4
        first = references[0]
        positions = [first.index(o.phrase()) for o in scene.objects]
        order = sorted(range(len(scene.objects)), key=lambda i: (
            ["top", "middle", "bottom"].index(scene.objects[i].row),
            ["left", "center", "right"].index(scene.objects[i].column)))
        assert sorted(positions) == [positions[i] for i in order]
        assert references[1] == "there is " + first


def test_held_out_pair_parsing_errors():
    assert parse_pairs("red-circle, blue-square") == [("red", "circle"), ("blue", "square")]
    with pytest.raises(UserError, match="colour-shape"):
        parse_pairs("redcircle")
    with pytest.raises(UserError, match="held_out_pairs"):
        make_scene_split("train", 2, seed=1, held_out_pairs=[("pink", "circle")])


def test_model_shapes_and_one_training_step():
    from apps.captioning.model import build_model
    from rnnkit.losses import MaskedSparseCategoricalCrossentropy

    config = apply_overrides(CaptioningConfig(), TINY)
    models = build_model(config, vocab_size=20)
    assert models.grid_size == (8, 8)
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    values, state_h, state_c = [np.asarray(t) for t in models.encoder(images)]
    assert tuple(values.shape) == (2, 64, 8) and tuple(state_h.shape) == (2, 16)
    logits, *states, attention = models.decoder.step_model(
        [np.full((2, 1), 2, "int32"), state_h, state_c, values, np.ones((2, 64), bool)])
    assert tuple(logits.shape) == (2, 20) and tuple(attention.shape) == (2, 64)
    np.testing.assert_allclose(np.sum(attention, axis=-1), 1.0, atol=1e-5)
    model = models.training_model
    model.compile(optimizer="adam", loss=MaskedSparseCategoricalCrossentropy())
    x = {"image": images, "target_in": np.array([[2, 5, 6], [2, 7, 0]], "int32")}
    loss = model.train_on_batch(x, np.array([[5, 6, 3], [7, 3, 0]], "int32"))
    assert np.isfinite(loss)


def _check_metrics_reproduce(export_dir: Path, backend: str = "onnx",
                             quantization: str = "none") -> None:
    from apps.captioning.captioner import Captioner
    from apps.captioning.task import score_captions

    manifest = json.loads((export_dir / "manifest.json").read_text())
    sample = manifest["sample"]
    references = json.loads((export_dir / sample["folder"] / "references.json").read_text())
    names = sorted(references)
    captioner = Captioner(export_dir, backend=backend, quantization=quantization)
    captions = [r["caption"] for r in captioner.caption(
        [export_dir / sample["folder"] / n for n in names])]
    got = score_captions(captions, [references[n] for n in names])
    for key, value in sample["metrics"][f"{backend}/{quantization}"].items():
        assert got[key] == pytest.approx(value, abs=1e-9), key


@pytest.mark.slow
def test_caption_batches_draw_references_and_cut_to_the_longest():
    from apps.captioning.task import caption_batches

    images = np.arange(4 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 2, 2, 3)
    # image i: references [2, 10+i, 3] and [2, 20+i, 21+i, 3] (padded to 6); image 3 has one
    ids = np.zeros((4, 2, 6), dtype=np.int32)
    for i in range(4):
        ids[i, 0, :3] = [2, 10 + i, 3]
        ids[i, 1, :4] = [2, 20 + i, 21 + i, 3] if i < 3 else [2, 10 + i, 3, 0]
    counts = np.array([2, 2, 2, 1])
    val = [(x["image"].numpy(), x["target_in"].numpy(), y.numpy())
           for x, y in caption_batches(images, ids, counts, 2, seed=0, shuffle=False)]
    assert [v[1].tolist() for v in val] == [[[2, 10], [2, 11]], [[2, 12], [2, 13]]]
    assert val[0][2].tolist() == [[10, 3], [11, 3]] and val[0][0].dtype == np.float32
    drawn = set()
    train = caption_batches(images, ids, counts, 4, seed=1, shuffle=True)
    for _ in range(8):  # a new draw of references every epoch
        for x, y in train:
            target_in, target_out = x["target_in"].numpy(), y.numpy()
            for row in range(4):
                drawn.add((int(target_in[row, 1]), int(x["image"].numpy()[row, 0, 0, 0])))
            assert target_in.shape[1] == target_out.shape[1] in (2, 3)
    assert {(13, 36)} <= drawn and {(10, 0), (20, 0)} <= drawn  # image 3 only ever has 13


def test_train_evaluate_export_predict_end_to_end(tmp_path, capsys):
    from apps.captioning import TASK
    from rnnkit.cli import main

    config = apply_overrides(CaptioningConfig(), TINY)
    run_dir = tmp_path / "run"
    trained = TASK.train(config, run_dir)
    assert trained["train_images"] == TINY["train_size"]
    run = RunDir(run_dir)
    assert [len(run.split(name)) for name in ("train", "validation", "test_unseen", "test")] == [
        48, 8, 6, 6]
    metrics = TASK.evaluate(run_dir)
    for key in ("unseen_bleu4", "unseen_cider", "unseen_exact_match", "seen_bleu4"):
        assert key in metrics
    assert run.metrics() == {"train": trained, "evaluate": metrics}
    assert (run_dir / "captions.png").stat().st_size > 0
    out = tmp_path / "export"
    manifest = TASK.export(run_dir, out, ["onnx", "tflite"], ["none"])
    assert set(manifest["graphs"]) == {"encoder", "decoder_step"}
    assert manifest["metrics"]["test_split"]["unseen_bleu4"] == metrics["unseen_bleu4"]
    agreement = manifest["agreement"]
    # Runtime captions identical to Keras on the held-out sample, both backends.
    assert agreement["compared"] == "caption" and agreement["examples"] == 6
    assert agreement["vs_keras"] == {"onnx/none": 1.0, "tflite/none": 1.0}
    _check_metrics_reproduce(out)
    # predict: an export directory (runtime) and the run directory (Keras) agree.
    image = out / "samples" / "000.png"
    runtime = TASK.predict(out, [str(image)], {"backend": "tflite", "explain": True})
    keras_result = TASK.predict(run_dir, [str(image)], {"explain": False})
    assert runtime[0]["caption"] == keras_result[0]["caption"]
    assert "@r" in runtime[0]["attention"] or runtime[0]["caption"] == ""
    # evaluate --data scores every image of the file (not its test share).
    samples = sorted((out / "samples").glob("*.png"))
    rows = [f"{p},a caption number {i % 3}" for i, p in enumerate(samples * 2)]
    (tmp_path / "captions.txt").write_text("image,caption\n" + "\n".join(rows) + "\n")
    scored = TASK.evaluate(run_dir, data=tmp_path / "captions.txt")
    assert len(samples) >= 6 and scored["examples"] == len(samples)
    # A bad image: one clear error line, exit code 2.
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert main(["captioning", "predict", str(out), str(bad)]) == 2
    assert "not an image" in capsys.readouterr().err


@pytest.mark.skipif(not (SHIPPED / "manifest.json").is_file(), reason="no shipped model")
@pytest.mark.parametrize("variant", ["onnx/float16", "tflite/int8"])
def test_shipped_model_loads_in_runtime_and_reproduces_its_metrics(variant):
    """Every shipped variant still captions the sample exactly as measured at export."""
    from apps.captioning.task import CaptioningTask
    from rnnkit.export import format_quantizations
    from rnnkit.runtime import runtime_variants

    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    assert manifest["app"] == "captioning"
    # The compact export the task ships (no float32 copy of the 3.4M-weight encoder) ...
    planned = format_quantizations(CaptioningTask.shipped_formats,
                                   CaptioningTask.shipped_quantizations)
    assert {f"{b}/{q}" for b, q in runtime_variants(manifest)} == {
        f"{f}/{q}" for f, qs in planned.items() for q in qs}
    # ... in 15 MB
    size = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert size <= 15_000_000
    _check_metrics_reproduce(SHIPPED, *variant.split("/"))
    assert manifest["agreement"]["compared"] == "caption"
    assert set(manifest["agreement"]["vs_keras"]) == set(manifest["sample"]["metrics"]) - {"keras"}


@pytest.mark.skipif(not (SHIPPED / "manifest.json").is_file(), reason="no shipped model")
def test_shipped_model_rejects_bad_images(tmp_path):
    from apps.captioning.captioner import Captioner

    captioner = Captioner(SHIPPED, backend="onnx")
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    with pytest.raises(UserError, match="broken.jpg"):
        captioner.caption([path])


def test_runtime_preprocessing_matches_training_images(tmp_path):
    """A rendered training image saved as PNG and read back by the loader the runtime
    captioner uses gives exactly the training pixels."""
    from PIL import Image

    from rnnkit.data.images import load_image

    split = make_scene_split("test_unseen", 3, seed=11)
    for index, image in enumerate(split.images):
        path = tmp_path / f"{index}.png"
        Image.fromarray(image).save(path)
        np.testing.assert_array_equal(load_image(path, 64), image)


def test_spec_reads_the_shipped_manifest_and_names_a_missing_field():
    from apps.captioning.spec import CaptioningSpec
    from rnnkit.errors import ArtifactError

    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    spec = CaptioningSpec.from_manifest(manifest)
    assert (spec.image_size, spec.grid_size, spec.beam_width) == (160, [5, 5], 3)
    del manifest["decoding"]["start_id"]
    with pytest.raises(ArtifactError, match="decoding.start_id"):
        CaptioningSpec.from_manifest(manifest)


def test_shipped_model_greedy_beam_and_explain():
    from apps.captioning import TASK

    image = str(SHIPPED / "samples" / "000.png")
    beam, = TASK.predict(SHIPPED, [image], {"explain": True})
    greedy, = TASK.predict(SHIPPED, [image], {"beam_width": 1})
    assert "score" in beam and "score" not in greedy and greedy["caption"]
    words = beam["attention"].split()
    assert words and all("@r" in word for word in words)
