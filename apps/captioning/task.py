"""Captioning app: train / evaluate / export / predict.

Run directory (besides what ``RunDir`` holds): ``model.keras`` (the teacher-forcing model),
``model.weights.h5`` (its weights; the encoder and decoder-step models are rebuilt from the
config and load them), ``assets/tokenizer.json``, ``assets/preprocessing.json``,
``captions.png`` (examples with generated captions and attention) and ``examples.json``. The
recorded splits hold the references of every image; evaluate and export render the images
again from the config (or read ``data`` again) and check they match the recorded references.

Metrics (``evaluate``): on ``test_unseen`` (scenes with (colour, shape) pairs never seen in
training) and ``test`` (seen pairs): BLEU-1..4 and CIDEr-D against all references, and the
exact-match rate (generated caption equal to one of the references, compared as
lowercase words without punctuation).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apps.captioning.captioner import CaptionDecoder
from apps.captioning.config import CaptioningConfig
from apps.captioning.data import CaptionSplit, load_user_splits, make_scene_split, parse_pairs
from apps.captioning.spec import CaptioningSpec
from rnnkit.errors import ArtifactError, UserError
from rnnkit.task import ExportPlan, RunDir, Task, variant_key

PREPROCESSING_ASSET = "preprocessing.json"
WEIGHTS_FILE = "model.weights.h5"
SAMPLE_DIR = "samples"
SAMPLE_SIZE = 32
_STOPWORDS = {"a", "an", "the", "at", "on", "in", "and", "of", "is", "there", "picture", ","}


# ------------------------------------------------------------------------------ helpers
def _splits(config: CaptioningConfig, data: str | None, names: tuple[str, ...]) -> dict[str, CaptionSplit]:
    if data:
        splits = load_user_splits(data, config)
        return {name: splits[name] for name in names if name in splits}
    sizes = {"train": config.train_size, "validation": config.validation_size,
             "test": config.test_size, "test_unseen": config.test_size,
             "test_new_objects": config.test_size}
    if config.scenes == "objects":
        from apps.captioning.objects import make_object_split

        options = dict(seed=config.seed, image_size=config.image_size,
                       held_out_objects=config.held_out_objects,
                       held_out_object_pairs=config.held_out_object_pairs,
                       max_objects=config.max_objects, noise=config.noise)
        return {name: make_object_split(name, sizes[name], **options) for name in names}
    options = dict(seed=config.seed, image_size=config.image_size,
                   held_out_pairs=parse_pairs(config.held_out_pairs),
                   max_objects=config.max_objects, noise=config.noise)
    return {name: make_scene_split(name, sizes[name], **options) for name in names}


def _encode_references(tokenizer, references: list[list[str]], max_length: int):
    """All references of every image → int32 ``(N, R, L)`` with ``<s> ... </s>``, and counts."""
    count = max(len(r) for r in references)
    flat = [refs[i % len(refs)] for refs in references for i in range(count)]
    ids = tokenizer.encode_batch(flat, max_length=max_length, add_start_end=True)
    return ids.reshape(len(references), count, ids.shape[1]), np.array(
        [len(r) for r in references])


def caption_batches(images, ids, counts, batch_size: int, seed: int, shuffle: bool,
                    input_name: str = "image"):
    """``({"image", "target_in"}, target_out)`` batches (``rnnkit.data.batching``), bucketed by
    caption length; training takes one random reference per image per batch (a new draw every
    epoch), validation always the first. Each batch is cut to its longest caption.
    ``input_name="features"``: ``images`` are a frozen backbone's features instead."""
    from rnnkit.data.batching import bucketed_dataset

    def pick(batch, rng):
        rows = np.arange(len(batch["count"]))
        choice = rng.integers(0, 1 << 30, size=len(rows)) % batch["count"]
        return {**batch, "references": batch["references"][rows, choice][:, None]}

    def arrange(batch):
        captions = batch["references"][:, 0]
        captions = captions[:, :max(2, int((captions != 0).sum(axis=1).max()))]
        return ({input_name: batch["image"].astype(np.float32), "target_in": captions[:, :-1]},
                captions[:, 1:])

    return bucketed_dataset(
        {"image": list(images), "references": list(ids), "count": list(counts)}, arrange,
        batch_size, bucket_width=4, shuffle=shuffle, seed=seed,
        lengths=(ids[:, 0] != 0).sum(axis=1).tolist(), time_fields=(),
        augment=pick if shuffle else None)


def keras_callables(models):
    """``encode``/``step`` callables (``rnnkit.runtime.seq2seq``) on the Keras models."""
    import tensorflow as tf

    encoder = tf.function(lambda x: models.encoder(x, training=False), reduce_retracing=True)
    step_model = models.decoder.step_model
    step_graph = tf.function(lambda inputs: step_model(inputs, training=False),
                           reduce_retracing=True)

    def encode(images):
        values, *states = encoder(tf.constant(images, dtype=tf.float32))
        return values.numpy(), [s.numpy() for s in states]

    def step(tokens, states, values, mask):
        outputs = step_graph([tf.constant(tokens, tf.int32), *[tf.constant(s) for s in states],
                            tf.constant(values), tf.constant(mask)])
        logits, *new_states, attention = [o.numpy() for o in outputs]
        return logits, new_states, attention

    return encode, step


def _normal(text: str) -> str:
    from rnnkit.metrics import caption_tokens

    return " ".join(caption_tokens(text))


def score_captions(hyps: list[str], references: list[list[str]]) -> dict[str, float]:
    from rnnkit.metrics import caption_scores

    scores = caption_scores(hyps, references)
    exact = [_normal(h) in {_normal(r) for r in refs} for h, refs in zip(hyps, references, strict=True)]
    scores["exact_match"] = float(np.mean(exact)) if exact else 0.0
    return scores


class KerasCaptioner(CaptionDecoder):
    """The captioner of a run directory: the Keras encoder and decoder-step models rebuilt
    from the config with the trained weights, the run's tokenizer and preprocessing."""

    def __init__(self, run: RunDir):
        from apps.captioning.model import build_model
        from rnnkit.text import Tokenizer

        self.run, self.config = run, run.config(CaptioningConfig)
        config = self.config
        tokenizer = Tokenizer.load(run.require("assets", "tokenizer.json"))
        self.models = build_model(config, tokenizer.vocab_size, load_backbone_weights=False)
        self.models.training_model.load_weights(run.require(WEIGHTS_FILE,
                                                            what="did training finish?"))
        super().__init__(*keras_callables(self.models), tokenizer, image_size=config.image_size,
                         resize_mode=config.resize_mode, grid_size=self.models.grid_size,
                         beam_width=config.beam_width, max_length=config.max_decode_length,
                         length_penalty=config.length_penalty, start_id=tokenizer.start_id,
                         end_id=tokenizer.end_id)

    def split(self, name: str) -> CaptionSplit:
        """A recorded split, its images rendered again (or read again from the run's data)."""
        data = self.run.info.get("data")
        split = _splits(self.config, data, (name,))[name]
        recorded = [r["references"] for r in self.run.split(name)]
        if recorded != split.references:
            raise ArtifactError(f"{self.run.path}: the {name!r} images made again from the run's "
                                f"config/data no longer match the recorded {name!r} split")
        return split


def plot_captions(path: Path, images: np.ndarray, results: list[dict], tokenizer,
                  grid_size: tuple[int, int], max_tokens: int = 7) -> None:
    """PNG grid: per row an image with its generated caption, then the attention over the
    grid of the caption's content words."""
    import matplotlib

    matplotlib.use("Agg")
    import textwrap

    import matplotlib.pyplot as plt
    from PIL import Image

    rows = len(results)
    columns = 2 + max_tokens
    figure, axes = plt.subplots(rows, columns, figsize=(1.5 * columns + 1.5, 1.7 * rows),
                              squeeze=False,
                              gridspec_kw={"width_ratios": [2.2] + [1] * (columns - 1)})
    size = images.shape[1]
    for row, (image, item) in enumerate(zip(images, results, strict=True)):
        for axis in axes[row]:
            axis.axis("off")
        axes[row][0].text(0.0, 0.5, "\n".join(textwrap.wrap(item["caption"] or "(empty)", 30)),
                        fontsize=8, va="center", ha="left", transform=axes[row][0].transAxes)
        axes[row][1].imshow(image)
        tokens = [tokenizer.id_to_token(i) for i in item["ids"]]
        chosen = [i for i, t in enumerate(tokens) if t and t not in _STOPWORDS][:max_tokens]
        for column, index in enumerate(chosen, start=2):
            weights = np.asarray(item["attention"][index]).reshape(grid_size)
            heat = np.asarray(Image.fromarray((weights / max(weights.max(), 1e-9) * 255).astype(
                np.uint8)).resize((size, size), Image.Resampling.BILINEAR)) / 255.0
            axes[row][column].imshow(image)
            axes[row][column].imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
            axes[row][column].set_title(tokens[index], fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _write_samples(out_dir: Path, split: CaptionSplit) -> list[str]:
    from PIL import Image

    folder = out_dir / SAMPLE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index, image in enumerate(split.images):
        name = f"{index:03d}.png"
        Image.fromarray(image).save(folder / name)
        names.append(name)
    references = {name: refs for name, refs in zip(names, split.references, strict=True)}
    (folder / "references.json").write_text(json.dumps(references, indent=1) + "\n")
    return names


# ------------------------------------------------------------------------------ train
def fit_run(config: CaptioningConfig, run: RunDir, data: str | None) -> dict[str, Any]:
    """Train on rendered scenes (or ``data``); record every split's references."""
    from apps.captioning.model import build_model
    from rnnkit.losses import MaskedSparseCategoricalCrossentropy
    from rnnkit.text import Tokenizer
    from rnnkit.training import fit, make_optimizer, set_seed

    set_seed(config.seed)
    started = time.perf_counter()
    run.update_info(data=data)
    splits = _splits(config, data, ("train", "validation") + _test_names(data, config))
    for name, split in splits.items():
        run.record_split(name, [{"references": refs} for refs in split.references])
    train_split, val_split = splits["train"], splits["validation"]
    if len(train_split) == 0:
        raise UserError("`train_size` must be >= 1: no training images")
    tokenizer = Tokenizer.train([c for refs in train_split.references for c in refs],
                                kind="word", min_frequency=config.min_frequency)
    tokenizer.save(run.file("assets", "tokenizer.json"))
    models = build_model(config, tokenizer.vocab_size)
    preprocessing = {"image_size": config.image_size, "resize_mode": config.resize_mode,
                     "dtype": "float32", "pixel_range": [0, 255], "channels": "RGB",
                     "grid_size": list(models.grid_size),
                     "loader": "rnnkit.data.images.load_image"}
    run.file("assets", PREPROCESSING_ASSET).write_text(json.dumps(preprocessing, indent=2))
    render_seconds = time.perf_counter() - started

    train_ids, train_counts = _encode_references(tokenizer, train_split.references,
                                                 config.max_length)
    val_ids, val_counts = _encode_references(tokenizer, val_split.references, config.max_length)
    train_inputs, val_inputs, input_name = train_split.images, val_split.images, "image"
    fitted = models.training_model
    if models.backbone is not None:  # frozen: its features once, not once per epoch
        feature_started = time.perf_counter()
        train_inputs = backbone_features(models.backbone, train_split.images)
        val_inputs = backbone_features(models.backbone, val_split.images)
        render_seconds += time.perf_counter() - feature_started
        input_name, fitted = "features", models.feature_training_model
    train_data = caption_batches(train_inputs, train_ids, train_counts, config.batch_size,
                                 config.seed, shuffle=True, input_name=input_name)
    val_data = caption_batches(val_inputs, val_ids, val_counts, config.batch_size,
                               config.seed, shuffle=False, input_name=input_name)
    steps = math.ceil(len(train_split) / config.batch_size) * config.epochs
    fitted.compile(
        optimizer=make_optimizer(config.learning_rate, clipnorm=config.clipnorm,
                                 schedule="cosine", total_steps=steps,
                                 warmup_steps=min(200, steps // 10)),
        loss=MaskedSparseCategoricalCrossentropy(pad_id=tokenizer.pad_id),
        jit_compile=config.jit_compile,
    )
    fit_started = time.perf_counter()
    history = fit(fitted, train_data, val_data, run_dir=run.path,
                  epochs=config.epochs, patience=config.patience, tensorboard=False,
                  verbose=2)
    train_seconds = time.perf_counter() - fit_started
    models.training_model.save_weights(run.file(WEIGHTS_FILE))
    models.training_model.save(run.file("model.keras"))
    return {"train_seconds": round(train_seconds, 1), "data_seconds": round(render_seconds, 1),
            "epochs_run": len(history.get("loss", [])), "train_images": len(train_split),
            "vocab_size": tokenizer.vocab_size,
            "parameters": int(models.training_model.count_params())}


def backbone_features(backbone, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """A frozen backbone's features of uint8 images, float16 ``(N, h, w, C)`` (half the
    memory; the grid head casts them back to float32)."""
    import tensorflow as tf

    run = tf.function(lambda x: backbone(x, training=False), reduce_retracing=True)
    parts = [run(tf.constant(images[i:i + batch_size], tf.float32)).numpy().astype(np.float16)
             for i in range(0, len(images), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0,), np.float16)


def _test_names(data: str | None, config: CaptioningConfig | None = None) -> tuple[str, ...]:
    if data is not None:
        return ("test",)
    if config is not None and config.scenes == "objects":
        return ("test_unseen", "test", "test_new_objects")
    return ("test_unseen", "test")


SPLIT_PREFIXES = {"test_unseen": "unseen_", "test": "seen_", "test_new_objects": "new_objects_"}


# ------------------------------------------------------------------------------ evaluate
def score_run(run: RunDir, data: str | None) -> dict[str, Any]:
    """BLEU-1..4, CIDEr-D and exact match on the recorded test splits (or ``data``), the
    caption/attention grid ``captions.png`` and ``examples.json``."""
    captioner = KerasCaptioner(run)
    config = captioner.config
    if data is None:
        names = _test_names(run.info.get("data"), config)
        splits = {name: captioner.split(name) for name in names}
    else:  # every image of the file, not its test share
        from apps.captioning.data import load_user_images

        names = ("test",)
        splits = {"test": load_user_images(data, config)}
    metrics: dict[str, Any] = {}
    started = time.perf_counter()
    for name, split in splits.items():
        prefix = SPLIT_PREFIXES[name] if len(names) > 1 else ""
        results = captioner.caption(split.images, with_attention=name == names[0])
        scores = score_captions([r["caption"] for r in results], split.references)
        metrics.update({f"{prefix}{k}": round(v, 4) for k, v in scores.items()})
        metrics[f"{prefix}examples"] = len(split)
        if name == names[0]:
            count = min(config.plot_examples, len(split))
            if count:
                plot_captions(run.file("captions.png"), split.images[:count], results[:count],
                              captioner.tokenizer, captioner.grid_size)
            samples = [{"caption": r["caption"], "references": refs}
                       for r, refs in zip(results[:20], split.references[:20], strict=True)]
            run.file("examples.json").write_text(json.dumps(samples, indent=2) + "\n")
    metrics["decode_seconds"] = round(time.perf_counter() - started, 1)
    metrics["beam_width"] = config.beam_width
    return metrics


# ------------------------------------------------------------------------------ export
def export_plan(run: RunDir) -> ExportPlan:
    """``encoder`` + ``decoder_step`` graphs, the tokenizer, the preprocessing, a small
    held-out sample (``samples/``) and its caption metrics per runtime variant."""
    from apps.captioning.captioner import Captioner
    from rnnkit.runtime import runtime_variants

    captioner = KerasCaptioner(run)
    config, tokenizer, models = captioner.config, captioner.tokenizer, captioner.models
    name = _test_names(run.info.get("data"), config)[0]
    sample = captioner.split(name).take(SAMPLE_SIZE)
    encoder, step_model = models.encoder, models.decoder.step_model
    cells = models.grid_size[0] * models.grid_size[1]
    values_dim = int(encoder.outputs[0].shape[-1])
    beam = max(1, config.beam_width)
    state_names = [kt.name for kt in step_model.inputs if kt.name.startswith("state_")]
    step_shapes = {"token": (beam, 1), "encoder_outputs": (beam, cells, values_dim),
                   "encoder_mask": (beam, cells)}
    step_shapes.update({n: (beam, config.units) for n in state_names})
    size = config.image_size

    images = sample.images[:4].astype(np.float32)
    values, states = captioner.seq2seq.encode(images)
    rng = np.random.default_rng(0)
    step_feeds = {"token": rng.integers(4, tokenizer.vocab_size, size=(4, 1)).astype(np.int32),
                  "encoder_outputs": values, "encoder_mask": np.ones(values.shape[:2], bool)}
    step_feeds.update(dict(zip(state_names, states, strict=True)))
    test_split = {**run.metrics("evaluate"),
                  "train_seconds": run.metrics("train").get("train_seconds")}
    spec = CaptioningSpec(
        tokenizer_file="assets/tokenizer.json", image_size=config.image_size,
        resize_mode=config.resize_mode, grid_size=list(models.grid_size),
        beam_width=config.beam_width, max_length=config.max_decode_length,
        length_penalty=config.length_penalty, start_id=tokenizer.start_id,
        end_id=tokenizer.end_id)
    preprocessing = json.loads(run.require("assets", PREPROCESSING_ASSET).read_text())

    def finalize(staging: Path, manifest: dict[str, Any]) -> None:
        _write_samples(staging, sample)
        keras_captions = [r["caption"] for r in captioner.caption(sample.images)]
        metrics = {"keras": score_captions(keras_captions, sample.references)}
        for backend, quantization in runtime_variants(manifest):
            got = [r["caption"] for r in Captioner(staging, backend, quantization).caption(
                list(sample.images))]
            metrics[variant_key(backend, quantization)] = score_captions(got, sample.references)
        manifest["sample"] = {"folder": SAMPLE_DIR, "split": name, "size": len(sample),
                              "metrics": metrics}

    return ExportPlan(
        models={"encoder": encoder, "decoder_step": step_model}, spec=spec,
        keras_predictor=captioner, agreement_inputs=list(sample.images),
        agreement_source=f"{name} sample",
        tflite_shapes={"encoder": {"image": (1, size, size, 3)}, "decoder_step": step_shapes},
        parity_inputs={"encoder": [{"image": images}], "decoder_step": [step_feeds]},
        assets={"tokenizer.json": run.require("assets", "tokenizer.json"),
                PREPROCESSING_ASSET: run.require("assets", PREPROCESSING_ASSET)},
        manifest_extra={
            "tokenizer": tokenizer.config,
            "preprocessing": {"file": f"assets/{PREPROCESSING_ASSET}", **preprocessing},
            "decoding": {"search": "beam" if beam > 1 else "greedy"},
            "metrics": {"test_split": test_split},
            **_held_out_manifest(config, run.info.get("data"))},
        finalize=finalize)


def _held_out_manifest(config: CaptioningConfig, data: str | None) -> dict[str, Any]:
    if data is not None:
        return {"held_out_pairs": None}
    if config.scenes == "objects":
        return {"scenes": "objects", "held_out_objects": config.held_out_objects,
                "held_out_object_pairs": config.held_out_object_pairs}
    return {"held_out_pairs": config.held_out_pairs}


# ------------------------------------------------------------------------------ task
class CaptioningTask(Task):
    name = "captioning"
    description = "image captions (Show, Attend and Tell style) on rendered scenes or your images"
    config_class = CaptioningConfig
    input_kind = "image file"
    compared_output = "caption"
    batch_rule = "images in input order, batches of 64"
    runtime_module = "apps.captioning.captioner"
    demo_order = 40
    # The quick demo: half the scenes; the frozen encoder's features are computed once, so
    # epochs are cheap (~3 s each on one core).
    demo_overrides = {"train_size": 3000, "validation_size": 200, "test_size": 200,
                      "epochs": 10}
    headline_metrics = ("unseen_bleu4", "unseen_cider", "unseen_exact_match", "seen_bleu4")
    # The shipped model's EfficientNet-Lite0 encoder has 3.4M weights: a float32 copy per
    # format would be 79 MB, so exported/captioning holds float16-weight ONNX (captions equal
    # Keras on the real photos) and int8 TFLite, ~14.5 MB. `rnnkit captioning export` still
    # writes every format and quantization by default.
    shipped_formats = ("onnx", "tflite")
    shipped_quantizations = ("onnx:float16", "tflite:int8")

    def fit(self, config: CaptioningConfig, run: RunDir, data: str | None) -> dict[str, Any]:
        return fit_run(config, run, data)

    def score(self, run: RunDir, data: str | None) -> dict[str, Any]:
        return score_run(run, data)

    def export_plan(self, run: RunDir, formats: Sequence[str]) -> ExportPlan:
        return export_plan(run)

    def keras_predictor(self, run: RunDir) -> KerasCaptioner:
        return KerasCaptioner(run)

    def runtime_predictor(self, export_dir, backend="onnx", quantization="none",
                          num_threads=None):
        from apps.captioning.captioner import Captioner

        return Captioner(export_dir, backend, quantization, num_threads)


TASK = CaptioningTask()
