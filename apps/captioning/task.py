"""Captioning app: train / evaluate / export / predict.

Run directory (besides the files every run has): ``model.keras`` (the teacher-forcing model),
``model.weights.h5`` (its weights; the encoder and decoder-step models are rebuilt from the
config and load them), ``assets/tokenizer.json``, ``assets/preprocessing.json``,
``metrics.json`` and ``captions.png`` (examples with generated captions and attention).

Metrics (``evaluate``): on ``test_unseen`` (scenes with (colour, shape) pairs never seen in
training) and ``test`` (seen pairs): BLEU-1..4 and CIDEr-D against all references, and the
exact-match rate (generated caption equal to one of the references, compared as
lowercase words without punctuation).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from apps.captioning.captioner import PREPROCESSING_ASSET, Captioner, decode_captions
from apps.captioning.config import CaptioningConfig
from apps.captioning.data import CaptionSplit, load_user_splits, make_scene_split, parse_pairs
from rnnkit.errors import UserError
from rnnkit.runtime import runtime_variants
from rnnkit.task import Task

APP_NAME = "captioning"
SAMPLE_DIR = "samples"
SAMPLE_SIZE = 32
_STOPWORDS = {"a", "an", "the", "at", "on", "in", "and", "of", "is", "there", "picture", ","}


# ------------------------------------------------------------------------------ helpers
def _splits(config: CaptioningConfig, data: str | None, names: tuple[str, ...]) -> dict[str, CaptionSplit]:
    if data:
        splits = load_user_splits(data, config)
        return {name: splits[name] for name in names if name in splits}
    options = dict(seed=config.seed, image_size=config.image_size,
                   held_out_pairs=parse_pairs(config.held_out_pairs),
                   max_objects=config.max_objects, noise=config.noise)
    sizes = {"train": config.train_size, "validation": config.validation_size,
             "test": config.test_size, "test_unseen": config.test_size}
    return {name: make_scene_split(name, sizes[name], **options) for name in names}


def _encode_references(tokenizer, references: list[list[str]], max_length: int):
    """All references of every image → int32 ``(N, R, L)`` with ``<s> ... </s>``, and counts."""
    count = max(len(r) for r in references)
    flat = [refs[i % len(refs)] for refs in references for i in range(count)]
    ids = tokenizer.encode_batch(flat, max_length=max_length, add_start_end=True)
    return ids.reshape(len(references), count, ids.shape[1]), np.array(
        [len(r) for r in references])


def _make_sequence(images, ids, counts, batch_size, seed, shuffle):
    import keras

    class CaptionBatches(keras.utils.PyDataset):
        """One random reference per image per epoch (a fixed one when not shuffling)."""

        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.epoch = 0
            self._prepare()

        def _prepare(self):
            rng = np.random.default_rng([seed, self.epoch])
            self.choice = (rng.integers(0, 1 << 30, size=len(images)) % counts
                         if shuffle else np.zeros(len(images), dtype=np.int64))
            lengths = (ids[np.arange(len(images)), self.choice] != 0).sum(axis=1)
            order = rng.permutation(len(images)) if shuffle else np.arange(len(images))
            # Length bucketing: sort by caption length inside windows of 8 batches, then
            # shuffle the batches (less padding; every batch is cut to its longest row).
            window = batch_size * 8
            for start in range(0, len(order), window):
                part = order[start:start + window]
                order[start:start + window] = part[np.argsort(lengths[part], kind="stable")]
            batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
            self.batches = ([batches[i] for i in rng.permutation(len(batches))]
                          if shuffle else batches)

        def __len__(self):
            return math.ceil(len(images) / batch_size)

        def __getitem__(self, index):
            rows = self.batches[index]
            sequences = ids[rows, self.choice[rows]]
            sequences = sequences[:, :max(2, int((sequences != 0).sum(axis=1).max()))]
            x = {"image": images[rows].astype(np.float32), "target_in": sequences[:, :-1]}
            return x, sequences[:, 1:]

        def on_epoch_end(self):
            self.epoch += 1
            self._prepare()

    return CaptionBatches()


def _load_run(run_dir: Path):
    from apps.captioning.model import build_model
    from rnnkit.config import read_config
    from rnnkit.text import Tokenizer

    if not (run_dir / "model.weights.h5").is_file():
        raise UserError(f"{run_dir} has no model.weights.h5: did training finish?")
    config = read_config(CaptioningConfig, run_dir / "config.json")
    tokenizer = Tokenizer.load(run_dir / "assets" / "tokenizer.json")
    models = build_model(config, tokenizer.vocab_size, load_backbone_weights=False)
    models.training_model.load_weights(run_dir / "model.weights.h5")
    return config, tokenizer, models


def keras_callables(models):
    """``encode``/``step`` callables of :func:`decode_captions` on the Keras models."""
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


def _caption_split(encode, step, tokenizer, config, split: CaptionSplit, with_attention=False,
                   beam_width=None):
    results = decode_captions(
        encode, step, split.images, start_id=tokenizer.start_id, end_id=tokenizer.end_id,
        max_length=config.max_decode_length, beam_width=beam_width or config.beam_width,
        length_penalty=config.length_penalty, with_attention=with_attention)
    for item in results:
        item["caption"] = tokenizer.decode(item["ids"])
    return results


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


# ------------------------------------------------------------------------------ train
def train(config: CaptioningConfig, run_dir: Path | None = None, data: str | None = None) -> dict:
    """Train on rendered scenes (or ``data``), then evaluate; returns the metrics."""
    from apps.captioning.model import build_model
    from rnnkit.losses import MaskedSparseCategoricalCrossentropy
    from rnnkit.text import Tokenizer
    from rnnkit.training import fit, make_optimizer, prepare_run_dir, set_seed

    set_seed(config.seed)
    started = time.perf_counter()
    splits = _splits(config, data, ("train", "validation"))
    train_split, val_split = splits["train"], splits["validation"]
    if len(train_split) == 0:
        raise UserError("`train_size` must be >= 1: no training images")
    tokenizer = Tokenizer.train([c for refs in train_split.references for c in refs],
                              kind="word", min_frequency=config.min_frequency)
    run_dir = prepare_run_dir(APP_NAME, config, run_dir,
                            extra={"data": str(data) if data else "rendered_scenes"})
    tokenizer.save(run_dir / "assets" / "tokenizer.json")
    models = build_model(config, tokenizer.vocab_size)
    preprocessing = {"image_size": config.image_size, "resize_mode": config.resize_mode,
                     "dtype": "float32", "pixel_range": [0, 255], "channels": "RGB",
                     "grid_size": list(models.grid_size),
                     "loader": "rnnkit.data.images.load_image"}
    (run_dir / "assets" / PREPROCESSING_ASSET).write_text(json.dumps(preprocessing, indent=2))
    render_seconds = time.perf_counter() - started

    train_ids, train_counts = _encode_references(tokenizer, train_split.references,
                                               config.max_length)
    val_ids, val_counts = _encode_references(tokenizer, val_split.references, config.max_length)
    train_data = _make_sequence(train_split.images, train_ids, train_counts, config.batch_size,
                              config.seed, shuffle=True)
    val_data = _make_sequence(val_split.images, val_ids, val_counts, config.batch_size,
                            config.seed, shuffle=False)
    steps = len(train_data) * config.epochs
    models.training_model.compile(
        optimizer=make_optimizer(config.learning_rate, clipnorm=config.clipnorm,
                               schedule="cosine", total_steps=steps,
                               warmup_steps=min(200, steps // 10)),
        loss=MaskedSparseCategoricalCrossentropy(pad_id=tokenizer.pad_id),
        jit_compile=config.jit_compile,
    )
    fit_started = time.perf_counter()
    history = fit(models.training_model, train_data, val_data, run_dir=run_dir,
                  epochs=config.epochs, patience=config.patience, tensorboard=False,
                  verbose=2)
    train_seconds = time.perf_counter() - fit_started
    models.training_model.save_weights(run_dir / "model.weights.h5")
    models.training_model.save(run_dir / "model.keras")
    info = json.loads((run_dir / "run.json").read_text())
    info.update({"train_seconds": round(train_seconds, 1),
                 "data_seconds": round(render_seconds, 1),
                 "epochs_run": len(history.get("loss", [])),
                 "train_images": len(train_split), "vocab_size": tokenizer.vocab_size,
                 "parameters": int(models.training_model.count_params())})
    (run_dir / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    metrics = evaluate(run_dir, data=data)
    metrics["train_seconds"] = round(train_seconds, 1)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


# ------------------------------------------------------------------------------ evaluate
def evaluate(run_dir: Path, data: str | None = None) -> dict:
    """BLEU-1..4, CIDEr-D and exact match on the test splits; writes metrics.json and the
    caption/attention grid ``captions.png``."""
    run_dir = Path(run_dir)
    config, tokenizer, models = _load_run(run_dir)
    run_data = json.loads((run_dir / "run.json").read_text()).get("data")
    if data is None and run_data not in (None, "rendered_scenes"):
        data = run_data
    names = ("test_unseen", "test") if data is None else ("test",)
    splits = _splits(config, data, names)
    encode, step = keras_callables(models)
    metrics: dict[str, Any] = {}
    started = time.perf_counter()
    for name, split in splits.items():
        prefix = "unseen_" if name == "test_unseen" else "seen_" if data is None else ""
        results = _caption_split(encode, step, tokenizer, config, split,
                               with_attention=name == names[0])
        scores = score_captions([r["caption"] for r in results], split.references)
        metrics.update({f"{prefix}{k}": round(v, 4) for k, v in scores.items()})
        metrics[f"{prefix}examples"] = len(split)
        if name == names[0]:
            count = min(config.plot_examples, len(split))
            if count:
                plot_captions(run_dir / "captions.png", split.images[:count], results[:count],
                            tokenizer, models.grid_size)
            samples = [{"caption": r["caption"], "references": refs}
                       for r, refs in zip(results[:20], split.references[:20], strict=True)]
            (run_dir / "examples.json").write_text(json.dumps(samples, indent=2) + "\n")
    metrics["decode_seconds"] = round(time.perf_counter() - started, 1)
    metrics["beam_width"] = config.beam_width
    previous = {}
    if (run_dir / "metrics.json").is_file():
        previous = json.loads((run_dir / "metrics.json").read_text())
    if "train_seconds" in previous:
        metrics["train_seconds"] = previous["train_seconds"]
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


# ------------------------------------------------------------------------------ export
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


def export(run_dir: Path, out_dir: Path, formats: list[str], quantize: list[str]) -> dict:
    """Write ``encoder`` + ``decoder_step`` graphs, the tokenizer, the preprocessing settings
    and a small held-out sample (``samples/``); check caption parity with Keras on it."""
    from rnnkit.export import export_model

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    config, tokenizer, models = _load_run(run_dir)
    run_data = json.loads((run_dir / "run.json").read_text()).get("data")
    data = None if run_data in (None, "rendered_scenes") else run_data
    name = "test_unseen" if data is None else "test"
    sample = _splits(config, data, (name,))[name].take(SAMPLE_SIZE)

    encoder = models.encoder
    step_model = models.decoder.step_model
    cells = models.grid_size[0] * models.grid_size[1]
    values_dim = int(encoder.outputs[0].shape[-1])
    beam = max(1, config.beam_width)
    state_names = [kt.name for kt in step_model.inputs if kt.name.startswith("state_")]
    step_shapes = {"token": (beam, 1), "encoder_outputs": (beam, cells, values_dim),
                   "encoder_mask": (beam, cells)}
    step_shapes.update({n: (beam, config.units) for n in state_names})
    size = config.image_size

    encode, step = keras_callables(models)
    images = sample.images[:4].astype(np.float32)
    values, states = encode(images)
    rng = np.random.default_rng(0)
    step_feeds = {"token": rng.integers(4, tokenizer.vocab_size, size=(4, 1)).astype(np.int32),
                  "encoder_outputs": values, "encoder_mask": np.ones(values.shape[:2], bool)}
    step_feeds.update(dict(zip(state_names, states, strict=True)))
    metrics = {}
    if (run_dir / "metrics.json").is_file():
        metrics = json.loads((run_dir / "metrics.json").read_text())
    decoding = {"beam_width": config.beam_width, "max_length": config.max_decode_length,
                "length_penalty": config.length_penalty, "start_id": tokenizer.start_id,
                "end_id": tokenizer.end_id, "search": "beam" if beam > 1 else "greedy"}
    def finalize(staging: Path, manifest: dict[str, Any]) -> None:
        # Caption-level parity on the held-out sample, and its metrics (reproduced by the tests).
        _write_samples(staging, sample)
        keras_captions = [r["caption"]
                        for r in _caption_split(encode, step, tokenizer, config, sample)]
        parity: dict[str, Any] = {"keras_sample_metrics": score_captions(keras_captions,
                                                                       sample.references)}
        for backend, quantization in runtime_variants(manifest):
            captioner = Captioner(staging, backend=backend, quantization=quantization)
            got = [r["caption"] for r in captioner.caption(list(sample.images))]
            same = sum(a == b for a, b in zip(got, keras_captions, strict=True))
            key = backend if quantization == "none" else f"{backend}.{quantization}"
            parity[key] = {"identical_captions": same, "of": len(sample),
                         "metrics": score_captions(got, sample.references)}
        manifest["caption_parity"] = parity
        manifest["sample"] = {"folder": SAMPLE_DIR, "split": name, "size": len(sample),
                            "metrics": parity.get("onnx", {}).get(
                                "metrics", parity["keras_sample_metrics"])}

    return export_model(
        {"encoder": encoder, "decoder_step": step_model}, out_dir, app=APP_NAME,
        formats=formats, quantize=quantize,
        tflite_shapes={"encoder": {"image": (1, size, size, 3)}, "decoder_step": step_shapes},
        parity_inputs={"encoder": [{"image": images}], "decoder_step": [step_feeds]},
        assets={"tokenizer.json": run_dir / "assets" / "tokenizer.json",
                PREPROCESSING_ASSET: run_dir / "assets" / PREPROCESSING_ASSET},
        manifest_extra={"tokenizer": {"file": "assets/tokenizer.json", **tokenizer.config},
                      "preprocessing": f"assets/{PREPROCESSING_ASSET}",
                      "decoding": decoding, "metrics": metrics,
                      "held_out_pairs": config.held_out_pairs if data is None else None},
        finalize=finalize,
    )


# ------------------------------------------------------------------------------ predict
def predict(model_dir: Path, inputs: list[str], options: dict | None = None) -> list[dict]:
    """Caption image files with an export directory (runtime) or a run directory (Keras)."""
    options = dict(options or {})
    model_dir = Path(model_dir)
    explain = bool(options.get("explain"))
    beam_width = options.get("beam_width")
    if (model_dir / "manifest.json").is_file() and options.get("backend") != "keras":
        captioner = Captioner(model_dir, backend=options.get("backend") or "onnx",
                            quantization=options.get("quantization") or "none")
        tokenizer, grid = captioner.tokenizer, captioner.grid_size
        results = captioner.caption(inputs, with_attention=explain, beam_width=beam_width)
    elif (model_dir / "run.json").is_file():
        from rnnkit.data.images import load_images

        config, tokenizer, models = _load_run(model_dir)
        grid = models.grid_size
        encode, step = keras_callables(models)
        split = CaptionSplit(load_images(inputs, config.image_size,
                                       resize_mode=config.resize_mode), [[""]] * len(inputs))
        results = _caption_split(encode, step, tokenizer, config, split, with_attention=explain,
                               beam_width=beam_width)
    else:
        raise UserError(f"{model_dir} is neither an export directory (manifest.json) nor a run "
                      "directory (run.json)")
    output = []
    for source, item in zip(inputs, results, strict=True):
        entry: dict[str, Any] = {"input": str(source), "caption": item["caption"]}
        if not math.isnan(item["score"]):
            entry["score"] = float(item["score"])
        if explain and grid:
            where = []
            for index, token_id in enumerate(item["ids"]):
                cell = int(np.argmax(item["attention"][index]))
                where.append(f"{tokenizer.id_to_token(token_id)}@r{cell // grid[1]}c{cell % grid[1]}"
                           f"({float(np.max(item['attention'][index])):.2f})")
            entry["attention"] = " ".join(where)
        output.append(entry)
    return output


def runtime_parity(run_dir: str | Path, export_dir: str | Path, split: str = "test_unseen",
                   backends: tuple[str, ...] = ("onnx", "tflite"),
                   quantization: str = "none") -> dict[str, Any]:
    """Caption a whole test split with Keras and with each runtime backend; count identical
    captions and score each (the export's own check uses only the small sample)."""
    config, tokenizer, models = _load_run(Path(run_dir))
    data_split = _splits(config, None, (split,))[split]
    encode, step = keras_callables(models)
    keras_captions = [r["caption"] for r in _caption_split(encode, step, tokenizer, config,
                                                         data_split)]
    report: dict[str, Any] = {"split": split, "examples": len(data_split),
                            "keras": score_captions(keras_captions, data_split.references)}
    for backend in backends:
        captioner = Captioner(export_dir, backend=backend, quantization=quantization)
        started = time.perf_counter()
        got = [r["caption"] for r in captioner.caption(list(data_split.images))]
        report[backend] = {
            "identical_captions": sum(a == b for a, b in zip(got, keras_captions, strict=True)),
            "seconds": round(time.perf_counter() - started, 1),
            **score_captions(got, data_split.references)}
    return report


class CaptioningTask(Task):
    name = "captioning"
    description = "image captions (Show, Attend and Tell style) on rendered scenes or your images"
    config_class = CaptioningConfig
    input_kind = "image file"
    runtime_module = "apps.captioning.captioner"
    demo_order = 40
    demo_overrides = {"train_size": 3000, "validation_size": 200, "test_size": 200, "epochs": 6,
                      "units": 128, "encoder_filters": "16,32,64", "encoder_dim": 64}
    headline_metrics = ("unseen_bleu4", "unseen_cider", "unseen_exact_match", "seen_bleu4")

    def train(self, config, run_dir=None, data=None):
        return train(config, run_dir, data=data)

    def evaluate(self, run_dir, data=None):
        return evaluate(run_dir, data=data)

    def export(self, run_dir, out_dir, formats=None, quantize=None):
        return export(run_dir, out_dir, list(formats or self.export_formats),
                      list(quantize or self.export_quantizations))

    def predict(self, model_dir, inputs, options=None):
        return predict(model_dir, inputs, options)


TASK = CaptioningTask()
