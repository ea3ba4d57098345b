"""Translation app: train, evaluate (BLEU/chrF greedy vs beam, heatmaps), export, predict."""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

from apps.translation.config import TranslationConfig
from rnnkit.errors import UserError
from rnnkit.task import Task

SOURCE_TOKENIZER = "source_tokenizer.json"
TARGET_TOKENIZER = "target_tokenizer.json"
ENCODER_FILE, STEP_FILE = "encoder.keras", "decoder_step.keras"
HELDOUT_SAMPLE = "heldout_sample.tsv"


# ------------------------------------------------------------------------------ helpers
def _tokenizer_class():
    from rnnkit.text import Tokenizer

    return Tokenizer


def _metrics():
    from rnnkit.metrics import bleu, chrf

    return bleu, chrf


def _encode_training_rows(pairs, source_tokenizer, target_tokenizer, config):
    sources, targets, dropped = [], [], 0
    for source, target in pairs:
        s = source_tokenizer.encode(source)
        t = target_tokenizer.encode(target, add_start_end=True)
        if not s or len(s) > config.max_source_length or len(t) > config.max_target_length:
            dropped += 1
            continue
        sources.append(s)
        targets.append(t)
    return sources, targets, dropped


def _read_config(run_dir: Path) -> TranslationConfig:
    from rnnkit.config import read_config

    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise UserError(f"{run_dir} is not a translation run directory (no config.json)")
    return read_config(TranslationConfig, path)


def _test_pairs(config: TranslationConfig, data) -> list[tuple[str, str]]:
    from apps.translation.data import load_splits
    from rnnkit.data.pairs import read_pairs

    pairs = read_pairs(data) if data else load_splits(config).test
    if config.eval_limit:
        pairs = pairs[: config.eval_limit]
    if not pairs:
        raise UserError("No held-out pairs to evaluate on. Received: an empty test split")
    return pairs


def load_keras_translator(run_dir: Path, config: TranslationConfig | None = None,
                        long_input: str | None = None):
    import keras

    import rnnkit.layers  # noqa: F401  (registers the custom layers for loading)
    from apps.translation.translator import Translator, keras_graphs

    run_dir = Path(run_dir)
    config = config or _read_config(run_dir)
    for name in (ENCODER_FILE, STEP_FILE):
        if not (run_dir / name).is_file():
            raise UserError(f"{run_dir / name} is missing: was the training run finished?")
    encoder = keras.models.load_model(run_dir / ENCODER_FILE, compile=False)
    step_model = keras.models.load_model(run_dir / STEP_FILE, compile=False)
    tokenizer = _tokenizer_class()
    encode, step = keras_graphs(encoder, step_model)
    return Translator(encode, step, tokenizer.load(run_dir / "assets" / SOURCE_TOKENIZER),
                      tokenizer.load(run_dir / "assets" / TARGET_TOKENIZER),
                      config.max_source_length, config.max_target_length,
                      long_input or config.long_input), (encoder, step_model)


def load_runtime_translator(export_dir: Path, backend: str = "onnx",
                          quantization: str = "none", long_input: str | None = None,
                          num_threads: int | None = None):
    """TF-free translator over an export directory (ONNX Runtime or LiteRT)."""
    import rnnkit.runtime as runtime
    from apps.translation.translator import Translator, runtime_graphs

    model = runtime.load(export_dir, backend=backend, quantization=quantization,
                       num_threads=num_threads)
    settings = model.manifest.get("translation") or {}
    encode, step = runtime_graphs(model)
    max_source = int(settings.get("max_source_length", 40))
    pad_to = None
    if backend == "tflite":
        fixed = model.max_length("encoder")
        if fixed:
            max_source = min(max_source, int(fixed))
    return Translator(encode, step,
                      runtime.load_tokenizer(export_dir, SOURCE_TOKENIZER),
                      runtime.load_tokenizer(export_dir, TARGET_TOKENIZER),
                      max_source, int(settings.get("max_target_length", 48)),
                      long_input or settings.get("long_input", "truncate"),
                      pad_source_to=pad_to)


def score_translations(hyps: list[str], refs: list[str]) -> dict[str, float]:
    bleu, chrf = _metrics()
    exact = sum(h == r for h, r in zip(hyps, refs, strict=True)) / max(len(refs), 1)
    return {"bleu": round(float(bleu(hyps, refs)), 2), "chrf": round(float(chrf(hyps, refs)), 2),
            "exact_match": round(exact, 4)}


def decode_and_score(translator, pairs, config: TranslationConfig) -> dict[str, Any]:
    """Greedy and beam translations of ``pairs`` with their BLEU/chrF side by side."""
    sources = [s for s, _ in pairs]
    refs = [t for _, t in pairs]
    started = time.perf_counter()
    greedy = [r["translation"] for r in translator.translate(sources, "greedy")]
    greedy_seconds = time.perf_counter() - started
    started = time.perf_counter()
    beam = [r["translation"] for r in translator.translate(
        sources, "beam", beam_width=config.beam_width, length_penalty=config.length_penalty)]
    beam_seconds = time.perf_counter() - started
    g, b = score_translations(greedy, refs), score_translations(beam, refs)
    return {
        "metrics": {
            "bleu_greedy": g["bleu"], "bleu_beam": b["bleu"],
            "chrf_greedy": g["chrf"], "chrf_beam": b["chrf"],
            "exact_match_greedy": g["exact_match"], "exact_match_beam": b["exact_match"],
            "num_pairs": len(pairs), "beam_width": config.beam_width,
            "length_penalty": config.length_penalty,
            "greedy_seconds": round(greedy_seconds, 2), "beam_seconds": round(beam_seconds, 2),
        },
        "greedy": greedy, "beam": beam,
    }


def plot_attention(result: dict, source: str, target_tokenizer, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = result["attention"]
    out_tokens = [target_tokenizer.id_to_token(i) for i in result["ids"]] + ["</s>"]
    out_tokens = out_tokens[: weights.shape[0]]
    src_tokens = result["source_tokens"][: weights.shape[1]]
    figure, axis = plt.subplots(figsize=(1 + 0.45 * len(src_tokens), 1 + 0.4 * len(out_tokens)))
    axis.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    axis.set_xticks(range(len(src_tokens)), src_tokens, rotation=60, ha="right", fontsize=8)
    axis.set_yticks(range(len(out_tokens)), out_tokens, fontsize=8)
    axis.set_title(f"{source[:50]}\n→ {result['translation'][:50]}", fontsize=9)
    axis.set_xlabel("source tokens")
    axis.set_ylabel("output tokens")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


# -------------------------------------------------------------------------------- train
def train(config: TranslationConfig, run_dir: Path | None = None, data=None) -> dict[str, Any]:
    from apps.translation.data import load_splits
    from apps.translation.model import build_model, compile_model
    from rnnkit.data.pairs import bucketed_dataset
    from rnnkit.training import fit, prepare_run_dir, set_seed

    if data is not None:
        config = dataclasses.replace(config, data=str(data))
    set_seed(config.seed)
    splits = load_splits(config)
    if not splits.valid:
        splits.valid = splits.train[: max(1, len(splits.train) // 50)]
    tokenizer = _tokenizer_class()
    source_tokenizer = tokenizer.train([s for s, _ in splits.train], kind=config.source_tokenizer,
                                     vocab_size=config.source_vocab_size,
                                     lowercase=config.lowercase,
                                     split_digits=config.split_digits
                                     and config.source_tokenizer == "bpe")
    target_tokenizer = tokenizer.train([t for _, t in splits.train], kind=config.target_tokenizer,
                                     vocab_size=config.target_vocab_size,
                                     lowercase=config.lowercase,
                                     split_digits=config.split_digits
                                     and config.target_tokenizer == "bpe")
    train_src, train_tgt, dropped = _encode_training_rows(splits.train, source_tokenizer,
                                                        target_tokenizer, config)
    valid_src, valid_tgt, _ = _encode_training_rows(splits.valid, source_tokenizer,
                                                  target_tokenizer, config)
    if not train_src:
        raise UserError("Every training pair is longer than max_source_length/"
                      f"max_target_length ({config.max_source_length}/"
                      f"{config.max_target_length}). Received: {len(splits.train)} pairs")
    train_ds = bucketed_dataset(train_src, train_tgt, config.batch_size, config.bucket_boundaries,
                              shuffle=True, seed=config.seed)
    valid_ds = bucketed_dataset(valid_src or train_src[:1], valid_tgt or train_tgt[:1],
                              config.batch_size, config.bucket_boundaries, shuffle=False)
    models = build_model(config, source_tokenizer.vocab_size, target_tokenizer.vocab_size)
    steps = math.ceil(len(train_src) / config.batch_size) + len(config.bucket_boundaries)
    compile_model(models, config, total_steps=steps * config.epochs)
    run_dir = prepare_run_dir("translation", config, run_dir)
    source_tokenizer.save(run_dir / "assets" / SOURCE_TOKENIZER)
    target_tokenizer.save(run_dir / "assets" / TARGET_TOKENIZER)
    started = time.perf_counter()
    history = fit(models.training_model, train_ds, valid_ds, run_dir=run_dir,
                  epochs=config.epochs, patience=config.patience, tensorboard=False, verbose=2,
                  average_last_epochs=config.average_last_epochs)
    train_seconds = time.perf_counter() - started
    models.encoder.save(run_dir / ENCODER_FILE)
    models.decoder.step_model.save(run_dir / STEP_FILE)
    models.training_model.save_weights(run_dir / "model.weights.h5")
    summary = {
        "train_seconds": round(train_seconds, 1),
        "epochs_run": len(history.get("loss", [])),
        "final_loss": round(history["loss"][-1], 4) if history.get("loss") else None,
        "best_val_loss": round(min(history["val_loss"]), 4) if history.get("val_loss") else None,
        "train_pairs": len(train_src), "dropped_long_pairs": dropped,
        "valid_pairs": len(splits.valid), "test_pairs": len(splits.test),
        "source_vocab_size": source_tokenizer.vocab_size,
        "target_vocab_size": target_tokenizer.vocab_size,
        "parameters": int(models.training_model.count_params()),
    }
    (run_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


# ----------------------------------------------------------------------------- evaluate
def evaluate(run_dir: Path, data=None) -> dict[str, Any]:
    run_dir = Path(run_dir)
    config = _read_config(run_dir)
    pairs = _test_pairs(config, data)
    translator, _ = load_keras_translator(run_dir, config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # long inputs are counted below
        scored = decode_and_score(translator, pairs, config)
    metrics = scored["metrics"]
    metrics["split"] = "data" if data else "test (held-out)"
    samples = [{"source": s, "reference": r, "greedy": g, "beam": b}
               for (s, r), g, b in list(zip(pairs, scored["greedy"], scored["beam"],
                                          strict=True))[: config.num_samples]]
    metrics["samples"] = samples
    heatmaps = []
    if config.num_heatmaps:
        chosen = [s for s, _ in pairs[: config.num_heatmaps]]
        for index, (source, result) in enumerate(zip(
                chosen, translator.translate(chosen, "greedy", with_attention=True),
                strict=True)):
            heatmaps.append(str(plot_attention(result, source, translator.target_tokenizer,
                                             run_dir / "plots" / f"attention_{index}.png")))
    metrics["attention_heatmaps"] = heatmaps
    train_summary = run_dir / "train_summary.json"
    if train_summary.is_file():
        metrics["train_seconds"] = json.loads(train_summary.read_text()).get("train_seconds")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    return metrics


# ------------------------------------------------------------------------------ predict
def predict(model_dir: Path, inputs: list[str], options: dict[str, Any] | None = None
            ) -> list[dict[str, Any]]:
    options = options or {}
    model_dir = Path(model_dir)
    if (model_dir / "run.json").is_file() and options.get("backend") in (None, "keras") or (
            (model_dir / "run.json").is_file() and not (model_dir / "manifest.json").is_file()):
        translator, _ = load_keras_translator(model_dir)
    elif (model_dir / "manifest.json").is_file():
        backend = options.get("backend") or "onnx"
        if backend == "keras":
            raise UserError(f"{model_dir} is an export directory: use --backend onnx or tflite")
        translator = load_runtime_translator(model_dir, backend,
                                           options.get("quantization") or "none")
    else:
        raise UserError(f"{model_dir} is neither a training run (run.json) nor an export "
                      "directory (manifest.json)")
    beam_width = options.get("beam_width")
    method = "beam" if beam_width and int(beam_width) > 1 else "greedy"
    explain = bool(options.get("explain"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = translator.translate(inputs, method, beam_width=int(beam_width or 1),
                                     num_return=int(options.get("num_return") or 1),
                                     with_attention=explain and method == "greedy")
    for warning in caught:
        print(f"warning: {warning.message}")
    out = []
    for text, result in zip(inputs, results, strict=True):
        item: dict[str, Any] = {"input": text, "translation": result["translation"]}
        if result.get("truncated"):
            item["truncated"] = True
        if "score" in result:
            item["score"] = round(result["score"], 4)
        if "n_best" in result:
            item["n_best"] = result["n_best"]
        if explain and "attention" in result:
            # For each output token, the source token it attended to most.
            weights = result["attention"]
            tokens = [translator.target_tokenizer.id_to_token(i) for i in result["ids"]]
            item["alignment"] = [(f"{t}->{result['source_tokens'][int(weights[k].argmax())]}",
                                float(weights[k].max())) for k, t in enumerate(tokens)]
        out.append(item)
    return out


# ------------------------------------------------------------------------------- export
def export(run_dir: Path, out_dir: Path, formats=("saved_model", "onnx", "tflite"),
           quantize=("none", "int8", "float16")) -> dict[str, Any]:
    from apps.translation.export import export_translation

    return export_translation(Path(run_dir), Path(out_dir), list(formats), list(quantize))


class TranslationTask(Task):
    name = "translation"
    description = "English→German (or your pairs) with a BiLSTM encoder + attention decoder"
    config_class = TranslationConfig
    input_kind = "text"
    runtime_module = "apps.translation.translator"
    demo_order = 20
    # Half the pairs and 12 epochs of the default model: about 3 minutes on 2 idle cores.
    demo_overrides = {"num_pairs": 12000, "epochs": 12, "eval_limit": 200}
    headline_metrics = ("bleu_beam", "bleu_greedy", "chrf_beam")

    def train(self, config, run_dir=None, data=None):
        return train(config, run_dir, data=data)

    def evaluate(self, run_dir, data=None):
        return evaluate(run_dir, data=data)

    def export(self, run_dir, out_dir, formats=None, quantize=None):
        return export(run_dir, out_dir, list(formats or self.export_formats),
                      list(quantize or self.export_quantizations))

    def predict(self, model_dir, inputs, options=None):
        return predict(model_dir, inputs, options)


TASK = TranslationTask()
