"""Translation app: train, evaluate (BLEU/chrF greedy vs beam, heatmaps), export, predict.

Run directory (besides what ``RunDir`` holds): ``encoder.keras``, ``decoder_step.keras``,
``model.weights.h5`` and the two tokenizers in ``assets/``; the recorded splits are pairs
``{"source", "target"}``. An export holds ``encoder`` + ``decoder_step`` graphs, the
``TranslationSpec``, a held-out sample (``assets/heldout_sample.tsv``) with its BLEU per
runtime variant, and with BPE tokenizers and a SavedModel the string-in / string-out
signatures ``translate_text`` and ``tokenize_text`` of ``apps/translation/serving.py``
(``manifest["text_signatures"]``: their interface, tokenization, known deviation, and their
agreement with the Python tokenizer + Keras greedy decoding on the sample).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apps.translation.config import TranslationConfig
from apps.translation.spec import TranslationSpec
from apps.translation.translator import Translator
from rnnkit.errors import UserError
from rnnkit.task import ExportPlan, RunDir, Task, variant_key

SOURCE_TOKENIZER = "source_tokenizer.json"
TARGET_TOKENIZER = "target_tokenizer.json"
ENCODER_FILE, STEP_FILE = "encoder.keras", "decoder_step.keras"
HELDOUT_SAMPLE = "heldout_sample.tsv"
SAMPLE_SIZE = 200
TFLITE_ENCODER_BATCH = 8
TFLITE_STEP_BATCH = 32
HEADLINE_KEYS = ("bleu_greedy", "bleu_beam", "chrf_greedy", "chrf_beam", "exact_match_greedy",
                 "exact_match_beam", "num_pairs")


def keras_graphs(encoder, step_model):
    """``encode``/``step`` callables over the Keras models (direct calls, no ``predict``)."""

    def encode(ids):
        encoder_outputs, *states = encoder(ids, training=False)
        return np.asarray(encoder_outputs), [np.asarray(s) for s in states]

    def step(token, states, encoder_outputs, mask):
        logits, *rest = step_model([token, *states, encoder_outputs, mask], training=False)
        *new_states, weights = rest
        return np.asarray(logits), [np.asarray(s) for s in new_states], np.asarray(weights)

    return encode, step


class KerasTranslator(Translator):
    """The translator of a run directory (Keras models, the run's config and tokenizers)."""

    def __init__(self, run: RunDir, long_input: str | None = None):
        import keras

        import rnnkit.layers  # noqa: F401  (registers the custom layers for loading)
        from rnnkit.text import Tokenizer

        what = "was the training run finished?"
        self.run, self.config = run, run.config(TranslationConfig)
        self.encoder = keras.models.load_model(run.require(ENCODER_FILE, what=what),
                                               compile=False)
        self.step_model = keras.models.load_model(run.require(STEP_FILE, what=what),
                                                  compile=False)
        target = Tokenizer.load(run.require("assets", TARGET_TOKENIZER))
        config = self.config
        super().__init__(*keras_graphs(self.encoder, self.step_model),
                         Tokenizer.load(run.require("assets", SOURCE_TOKENIZER)), target,
                         config.max_source_length, config.max_target_length, target.start_id,
                         target.end_id, long_input or config.long_input, config.beam_width,
                         config.length_penalty)


def _pairs(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["source"], r["target"]) for r in records]


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


def pair_batches(sources: list[list[int]], targets: list[list[int]], config: TranslationConfig,
                 shuffle: bool):
    """``({"source_ids", "target_in"}, target_out)`` batches (teacher forcing: ``targets``
    hold ``<s>`` ... ``</s>``), bucketed by the longer side into ``config.bucket_boundaries``."""
    from rnnkit.data.batching import bucketed_dataset

    if any(len(t) < 2 for t in targets):
        raise ValueError("Every target row needs at least <s> and </s> (2 ids).")
    return bucketed_dataset(
        {"source_ids": [np.asarray(r, np.int32) for r in sources],
         "target": [np.asarray(r, np.int32) for r in targets]},
        lambda b: ({"source_ids": b["source_ids"], "target_in": b["target"][:, :-1]},
                   b["target"][:, 1:]),
        config.batch_size, shuffle=shuffle, seed=config.seed,
        lengths=[max(len(a), len(b)) for a, b in zip(sources, targets, strict=True)],
        time_fields=("source_ids", "target"), boundaries=config.bucket_boundaries)


def score_translations(hyps: list[str], refs: list[str]) -> dict[str, float]:
    from rnnkit.metrics import bleu, chrf

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


# ------------------------------------------------------------------------------ train
def fit_run(config: TranslationConfig, run: RunDir, data: str | None) -> dict[str, Any]:
    import dataclasses

    from apps.translation.data import load_splits
    from apps.translation.model import build_model, compile_model, warmup_steps
    from apps.translation.recipe import (
        TimeBudgetCosine,
        ValidationBleu,
        choose_decoding,
        resolve_sizes,
        validation_pairs,
    )
    from rnnkit.config import save_config
    from rnnkit.task import CONFIG_FILE
    from rnnkit.text import Tokenizer
    from rnnkit.training import fit, set_seed

    if data is not None:
        config = dataclasses.replace(config, data=str(data))
    set_seed(config.seed)
    splits = load_splits(config)
    if not splits.valid:
        splits.valid = splits.train[: max(1, len(splits.train) // 50)]
    recorded = [("train", splits.train), ("validation", splits.valid), ("test", splits.test)]
    if splits.test_generated:
        recorded.append(("test_generated", splits.test_generated))
    for name, pairs in recorded:
        run.record_split(name, [{"source": s, "target": t} for s, t in pairs])
    config, sized = resolve_sizes(config, len(splits.train))
    save_config(config, run.path / CONFIG_FILE)  # the sizes used, for export and resume
    tokenizers = [Tokenizer.train([pair[side] for pair in splits.train], kind=kind,
                                  vocab_size=vocab, lowercase=config.lowercase,
                                  split_digits=config.split_digits and kind == "bpe")
                  for side, kind, vocab in ((0, config.source_tokenizer, config.source_vocab_size),
                                            (1, config.target_tokenizer, config.target_vocab_size))]
    source_tokenizer, target_tokenizer = tokenizers
    train_src, train_tgt, dropped = _encode_training_rows(splits.train, source_tokenizer,
                                                          target_tokenizer, config)
    valid_src, valid_tgt, _ = _encode_training_rows(splits.valid, source_tokenizer,
                                                    target_tokenizer, config)
    if not train_src:
        raise UserError("Every training pair is longer than max_source_length/"
                        f"max_target_length ({config.max_source_length}/"
                        f"{config.max_target_length}). Received: {len(splits.train)} pairs")
    train_ds = pair_batches(train_src, train_tgt, config, shuffle=True)
    valid_ds = pair_batches(valid_src or train_src[:1], valid_tgt or train_tgt[:1], config,
                            shuffle=False)
    models = build_model(config, source_tokenizer.vocab_size, target_tokenizer.vocab_size)
    steps = math.ceil(len(train_src) / config.batch_size)
    compile_model(models, config, total_steps=steps * config.epochs)
    source_tokenizer.save(run.file("assets", SOURCE_TOKENIZER))
    target_tokenizer.save(run.file("assets", TARGET_TOKENIZER))
    translator = Translator(*keras_graphs(models.encoder, models.decoder.step_model),
                            source_tokenizer, target_tokenizer, config.max_source_length,
                            config.max_target_length, target_tokenizer.start_id,
                            target_tokenizer.end_id, config.long_input)
    bleu_pairs = validation_pairs(splits.valid, config.valid_bleu_pairs)
    by_bleu = config.early_stopping == "bleu"
    callbacks = [ValidationBleu(translator, bleu_pairs, config.patience, early_stopping=by_bleu)
                 ] if config.valid_bleu_pairs > 0 else []
    if config.schedule_by_time and config.max_train_minutes > 0:
        callbacks.append(TimeBudgetCosine(config.learning_rate, steps * config.epochs,
                                          config.max_train_minutes,
                                          warmup_steps(steps * config.epochs)))
    started = time.perf_counter()
    history = fit(models.training_model, train_ds, valid_ds, run_dir=run.path,
                  epochs=config.epochs, patience=None if by_bleu else config.patience,
                  tensorboard=False, verbose=2, callbacks=callbacks,
                  average_last_epochs=config.average_last_epochs,
                  max_train_minutes=config.max_train_minutes)
    train_seconds = time.perf_counter() - started
    decoding = None
    if config.choose_decoding and bleu_pairs:
        decoding = choose_decoding(translator,
                                   validation_pairs(bleu_pairs, config.decoding_pairs))
        config = dataclasses.replace(config, beam_width=decoding["beam_width"],
                                     length_penalty=decoding["length_penalty"])
        save_config(config, run.path / CONFIG_FILE)
    models.encoder.save(run.file(ENCODER_FILE))
    models.decoder.step_model.save(run.file(STEP_FILE))
    models.training_model.save_weights(run.file("model.weights.h5"))
    summary = {
        "train_seconds": round(train_seconds, 1),
        "epochs_run": len(history.get("loss", [])),
        "final_loss": round(history["loss"][-1], 4) if history.get("loss") else None,
        "best_val_loss": round(min(history["val_loss"]), 4) if history.get("val_loss") else None,
        "train_pairs": len(train_src), "dropped_long_pairs": dropped,
        "valid_pairs": len(splits.valid), "test_pairs": len(splits.test),
        "test_generated_pairs": len(splits.test_generated),
        "source_vocab_size": source_tokenizer.vocab_size,
        "target_vocab_size": target_tokenizer.vocab_size,
        "parameters": int(models.training_model.count_params()),
        "sized_from_data": sized,
    }
    if callbacks and isinstance(callbacks[0], ValidationBleu):
        bleu = callbacks[0]
        summary.update(early_stopping=config.early_stopping, best_val_bleu=bleu.best,
                       best_epoch=bleu.best_epoch,
                       val_bleu_curve=[{"minutes": m, "epoch": e, "val_bleu": b}
                                       for m, e, b in bleu.curve],
                       val_bleu_seconds=round(bleu.eval_seconds, 1))
    if decoding:
        summary["decoding_chosen_on_validation"] = decoding
    return summary


# ----------------------------------------------------------------------------- evaluate
def score_run(run: RunDir, data: str | None) -> dict[str, Any]:
    """Greedy and beam BLEU/chrF on the recorded test split (or ``data``), sample
    translations and attention heatmaps (``plots/``)."""
    from rnnkit.data.pairs import read_pairs

    translator = KerasTranslator(run)
    config = translator.config
    if data:  # every pair of the user's file (eval_limit caps only the recorded test split)
        pairs = read_pairs(data)
    else:
        pairs = _pairs(run.split("test"))
        pairs = pairs[: config.eval_limit] if config.eval_limit else pairs
    if not pairs:
        raise UserError("No held-out pairs to evaluate on. Received: an empty test split")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # long inputs are cut: no warning per sentence
        scored = decode_and_score(translator, pairs, config)
    metrics = scored["metrics"]
    metrics["split"] = str(data) if data else "test split"
    if not data and run.has_split("test_generated"):  # the generated share's held-out pairs
        generated = _pairs(run.split("test_generated"))[: config.eval_limit or None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hyps = [r["translation"] for r in translator.translate([s for s, _ in generated])]
        scores = score_translations(hyps, [t for _, t in generated])
        metrics["generated_test"] = {"num_pairs": len(generated),
                                     "bleu_greedy": scores["bleu"],
                                     "chrf_greedy": scores["chrf"],
                                     "exact_match_greedy": scores["exact_match"]}
    metrics["samples"] = [{"source": s, "reference": r, "greedy": g, "beam": b}
                          for (s, r), g, b in list(zip(pairs, scored["greedy"], scored["beam"],
                                                       strict=True))[: config.num_samples]]
    chosen = [s for s, _ in pairs[: config.num_heatmaps]]
    results = translator.translate(chosen, "greedy", with_attention=True) if chosen else []
    metrics["attention_heatmaps"] = [
        str(plot_attention(result, source, translator.target_tokenizer,
                           run.file("plots", f"attention_{index}.png")))
        for index, (source, result) in enumerate(zip(chosen, results, strict=True))]
    return metrics


# ------------------------------------------------------------------------------- export
def _parity_inputs(translator: KerasTranslator, sources: list[str]) -> dict[str, list[dict]]:
    rows, _ = translator.encode_sources(sources)
    ids = translator.pad(rows)
    outputs, *states = [np.asarray(t) for t in translator.encoder(ids)]
    token = np.full((len(rows), 1), translator.start_id, dtype=np.int32)
    step_feeds = {"token": token, "encoder_outputs": outputs, "encoder_mask": ids != 0}
    step_feeds.update(dict(zip(["state_h", "state_c"], states, strict=False)))
    return {"encoder": [{"source_ids": ids}], "decoder_step": [step_feeds]}


def _text_signatures(translator, encoder, step_model, config, formats: list[str]
                     ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(`export_model` signatures, manifest entry, `export_model` signature owners: the
    `tf.Module` owning what they capture (decoder step, lookup tables)) for the string-in
    SavedModel signatures."""
    from apps.translation.serving import (
        GRAPH,
        STRING_SIGNATURE_REASON,
        TextTranslator,
        signature_manifest,
        supports_text_signatures,
    )

    if "saved_model" not in formats:
        return {}, {"graph": None, "reason": "no SavedModel in this export"}, {}
    source, target = translator.source_tokenizer, translator.target_tokenizer
    if not supports_text_signatures(source, target):
        reason = STRING_SIGNATURE_REASON.format(source=source.kind, target=target.kind)
        return {}, {"graph": None, "reason": reason}, {}
    owner = TextTranslator(encoder, step_model, source, target, config.max_source_length,
                           config.max_target_length, config.long_input)
    entry = {"graph": GRAPH, "format": "saved_model", "saved_model": f"saved_model/{GRAPH}",
             **signature_manifest(config.max_source_length, config.max_target_length,
                                  config.long_input)}
    return {GRAPH: owner.signatures()}, entry, {GRAPH: owner.resources}


def _measure_text_signatures(staging: Path, translator, config,
                             sources: list[str]) -> dict[str, Any]:
    """The exported `translate_text` / `tokenize_text` vs the Python tokenizer and the Keras
    greedy translations on the held-out sample."""
    from apps.translation.serving import GRAPH, measure_agreement, saved_model_functions

    excluded = 0
    if config.long_input == "error":  # the graph (like the Translator) rejects them
        kept = [s for s in sources
                if len(translator.source_tokenizer.encode(s)) <= config.max_source_length]
        excluded, sources = len(sources) - len(kept), kept
    translate, tokenize = saved_model_functions(staging / "saved_model" / GRAPH)
    result = measure_agreement(translate, tokenize, translator, sources)
    if excluded:
        result["excluded_longer_than_max_source_length"] = excluded
    return result


def _variant_scores(staging: Path, manifest: dict[str, Any], pairs, config,
                    keras_scores: dict[str, Any]) -> dict[str, Any]:
    """Per runtime variant on the held-out sample: the share of beam translations equal to
    Keras's and the BLEU reached (the greedy agreement is ``manifest["agreement"]``)."""
    from apps.translation.translator import TranslationPredictor
    from rnnkit.runtime import runtime_variants

    result: dict[str, Any] = {}
    for backend, quantization in runtime_variants(manifest):
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scored = decode_and_score(TranslationPredictor(staging, backend, quantization),
                                      pairs, config)
        beam_same = np.mean([a == b for a, b in zip(scored["beam"], keras_scores["beam"],
                                                    strict=True)])
        result[variant_key(backend, quantization)] = {
            "same_as_keras_beam": round(float(beam_same), 4),
            "bleu_greedy": scored["metrics"]["bleu_greedy"],
            "bleu_beam": scored["metrics"]["bleu_beam"],
            "seconds": round(time.perf_counter() - started, 2)}
    return result


def export_plan(run: RunDir, formats: list[str]) -> ExportPlan:
    translator = KerasTranslator(run)
    config, encoder, step_model = translator.config, translator.encoder, translator.step_model
    signatures, text_signatures, owners = _text_signatures(translator, encoder, step_model,
                                                          config, formats)
    pairs = _pairs(run.split("test"))[:SAMPLE_SIZE]
    if not pairs:
        raise UserError(f"{run.path} has no test pairs to check the export on")
    sources = [s for s, _ in pairs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras_scores = decode_and_score(translator, pairs, config)
    # TFLite source length: any (sources are cut at max_source_length by the translator).
    values_dim = int(step_model.inputs[-2].shape[-1])
    units = int(step_model.inputs[1].shape[-1])
    step_shapes = {"token": (TFLITE_STEP_BATCH, 1),
                   "encoder_outputs": (TFLITE_STEP_BATCH, None, values_dim),
                   "encoder_mask": (TFLITE_STEP_BATCH, None)}
    for kt in step_model.inputs[1:-2]:
        step_shapes[kt.name] = (TFLITE_STEP_BATCH, units)
    target = translator.target_tokenizer
    spec = TranslationSpec(
        source_tokenizer=f"assets/{SOURCE_TOKENIZER}", target_tokenizer=f"assets/{TARGET_TOKENIZER}",
        max_source_length=config.max_source_length, max_target_length=config.max_target_length,
        long_input=config.long_input, beam_width=config.beam_width,
        length_penalty=config.length_penalty, start_id=target.start_id, end_id=target.end_id,
        pad_id=target.pad_id)
    evaluated = run.metrics("evaluate")

    def finalize(staging: Path, manifest: dict[str, Any]) -> None:
        manifest["metrics"]["heldout_sample_variants"] = _variant_scores(
            staging, manifest, pairs, config, keras_scores)
        if signatures:
            manifest["text_signatures"]["agreement"] = _measure_text_signatures(
                staging, translator, config, sources)

    return ExportPlan(
        models={"encoder": encoder, "decoder_step": step_model}, spec=spec,
        keras_predictor=translator, agreement_inputs=sources,
        agreement_source="held-out sample",
        tflite_shapes={"encoder": {"source_ids": (TFLITE_ENCODER_BATCH, None)},
                       "decoder_step": step_shapes},
        parity_inputs=_parity_inputs(translator, sources[:8]),
        assets={SOURCE_TOKENIZER: run.require("assets", SOURCE_TOKENIZER),
                TARGET_TOKENIZER: run.require("assets", TARGET_TOKENIZER),
                HELDOUT_SAMPLE: "".join(f"{s}\t{t}\n" for s, t in pairs).encode()},
        manifest_extra={
            "translation": {"decoding": "host-side greedy/beam search (rnnkit.runtime.seq2seq) "
                            "over decoder_step: apps.translation.translator."
                            "TranslationPredictor (the SavedModel's translate_text decodes "
                            "greedily in the graph: see text_signatures)"},
            "heldout_sample": f"assets/{HELDOUT_SAMPLE}",
            "metrics": {"heldout_sample": keras_scores["metrics"],
                        "test_split": {k: evaluated[k] for k in HEADLINE_KEYS if k in evaluated}},
            "text_signatures": text_signatures},
        signatures=signatures, signature_owners=owners, finalize=finalize)


# -------------------------------------------------------------------------------- task
class TranslationTask(Task):
    name = "translation"
    description = ("English→Spanish (Apertium corpus + generated numbers/dates; or your pairs) "
                   "with a BiLSTM encoder + attention decoder")
    config_class = TranslationConfig
    input_kind = "text"
    compared_output = "translation"
    batch_rule = ("sources sorted by token count, "
                  "batches of 64 (beam search: 64 // beam_width), each right-padded to its longest")
    runtime_module = "apps.translation.translator"
    demo_order = 20
    # The Apertium corpus cut to ~11k training pairs (the full cached corpus when there is
    # one, else a 20k-sentence subset built in about a minute and cached), 6 epochs or 4
    # minutes: a few minutes on 2 idle cores. Without Apertium: 12k generated English→Spanish
    # pairs.
    demo_quick = {"max_train_pairs": 11000, "epochs": 6, "max_train_minutes": 4.0,
                  "eval_limit": 200, "choose_decoding": False, "valid_bleu_pairs": 200}

    @property
    def demo_overrides(self) -> dict[str, Any]:
        from apps.translation.data import apertium_missing, corpus_path

        if corpus_path().is_file():
            return dict(self.demo_quick)
        if corpus_path(20000).is_file() or not apertium_missing():
            return {**self.demo_quick, "corpus_max_sentences": 20000}
        print(f"translation demo: {apertium_missing()}; using generated pairs instead",
              flush=True)
        return {**self.demo_quick, "dataset": "generated", "num_pairs": 12000, "epochs": 12}

    def fit(self, config: TranslationConfig, run: RunDir, data: str | None) -> dict[str, Any]:
        return fit_run(config, run, data)

    def score(self, run: RunDir, data: str | None) -> dict[str, Any]:
        return score_run(run, data)

    def export_plan(self, run: RunDir, formats: Sequence[str]) -> ExportPlan:
        return export_plan(run, list(formats))

    def keras_predictor(self, run: RunDir) -> KerasTranslator:
        return KerasTranslator(run)

    def runtime_predictor(self, export_dir, backend="onnx", quantization="none",
                          num_threads=None):
        from apps.translation.translator import TranslationPredictor

        return TranslationPredictor(export_dir, backend, quantization, num_threads)


TASK = TranslationTask()
