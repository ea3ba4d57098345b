"""Export a translation run as ``encoder`` + ``decoder_step`` graphs and check that the
runtime (ONNX Runtime, LiteRT) gives the same *translations* as Keras on a held-out sample.

With BPE tokenizers (the default) and a SavedModel in the export, ``saved_model/encoder`` also
gets the string-in / string-out signatures ``translate_text`` and ``tokenize_text`` (see
``apps/translation/serving.py``) and the manifest a ``text_signatures`` entry: their inputs and
outputs, how the in-graph tokenizer works, its known deviation, and their agreement with the
Python tokenizer + Keras greedy decoding on the held-out sample, measured on the exported
SavedModel."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from apps.translation.task import (
    HELDOUT_SAMPLE,
    SOURCE_TOKENIZER,
    TARGET_TOKENIZER,
    _read_config,
    decode_and_score,
    load_keras_translator,
    load_runtime_translator,
)
from rnnkit.runtime import runtime_variants

SAMPLE_SIZE = 200
TFLITE_ENCODER_BATCH = 8
TFLITE_STEP_BATCH = 32


def _sample_pairs(config) -> list[tuple[str, str]]:
    from apps.translation.data import load_splits

    return load_splits(config).test[:SAMPLE_SIZE]


def _parity_inputs(translator, encoder, sources: list[str]) -> dict[str, list[dict]]:
    rows, _ = translator.encode_sources(sources)
    ids = translator._pad(rows)
    outputs, *states = [np.asarray(t) for t in encoder(ids)]
    token = np.full((len(rows), 1), translator.target_tokenizer.start_id, dtype=np.int32)
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
                             pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The exported `translate_text` / `tokenize_text` vs the Python tokenizer and the Keras
    greedy translations on the held-out sample."""
    from apps.translation.serving import GRAPH, measure_agreement, saved_model_functions

    sources = [s for s, _ in pairs]
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


def export_translation(run_dir: Path, out_dir: Path, formats: list[str],
                       quantize: list[str]) -> dict[str, Any]:
    from rnnkit.export import export_model

    config = _read_config(run_dir)
    translator, (encoder, step_model) = load_keras_translator(run_dir, config)
    signatures, text_signatures, owners = _text_signatures(translator, encoder, step_model,
                                                          config, formats)
    pairs = _sample_pairs(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras_scores = decode_and_score(translator, pairs, config)
    sample_tsv = "".join(f"{s}\t{t}\n" for s, t in pairs).encode()
    length = config.max_source_length
    values_dim = int(step_model.inputs[-2].shape[-1])
    units = int(step_model.inputs[1].shape[-1])
    step_shapes = {"token": (TFLITE_STEP_BATCH, 1),
                   "encoder_outputs": (TFLITE_STEP_BATCH, length, values_dim),
                   "encoder_mask": (TFLITE_STEP_BATCH, length)}
    for kt in step_model.inputs[1:-2]:
        step_shapes[kt.name] = (TFLITE_STEP_BATCH, units)
    settings = {
        "source_tokenizer": f"assets/{SOURCE_TOKENIZER}",
        "target_tokenizer": f"assets/{TARGET_TOKENIZER}",
        "max_source_length": config.max_source_length,
        "max_target_length": config.max_target_length,
        "long_input": config.long_input,
        "beam_width": config.beam_width,
        "length_penalty": config.length_penalty,
        "start_id": 2, "end_id": 3, "pad_id": 0,
        "decoding": "host-side greedy/beam search (rnnkit.decoding) over decoder_step; "
                    "apps.translation.translator.Translator + runtime_graphs (the SavedModel's "
                    "translate_text decodes greedily in the graph: see text_signatures)",
    }
    metrics_path = Path(run_dir) / "metrics.json"

    def finalize(staging: Path, manifest: dict[str, Any]) -> None:
        manifest["translation_parity"] = runtime_translation_parity(
            staging, manifest, pairs, config, keras_scores)
        if signatures:
            manifest["text_signatures"]["agreement"] = _measure_text_signatures(
                staging, translator, config, pairs)

    return export_model(
        {"encoder": encoder, "decoder_step": step_model}, out_dir, app="translation",
        formats=formats, quantize=quantize,
        tflite_shapes={"encoder": {"source_ids": (TFLITE_ENCODER_BATCH, length)},
                       "decoder_step": step_shapes},
        parity_inputs=_parity_inputs(translator, encoder, [s for s, _ in pairs[:8]]),
        assets={SOURCE_TOKENIZER: Path(run_dir) / "assets" / SOURCE_TOKENIZER,
                TARGET_TOKENIZER: Path(run_dir) / "assets" / TARGET_TOKENIZER,
                HELDOUT_SAMPLE: sample_tsv},
        manifest_extra={
            "translation": settings,
            "heldout_sample": f"assets/{HELDOUT_SAMPLE}",
            "metrics": {"heldout_sample": keras_scores["metrics"],
                        "test_split": _headline(metrics_path)},
            "text_signatures": text_signatures,
        },
        signatures=signatures,
        signature_owners=owners,
        finalize=finalize,
    )


def _headline(metrics_path: Path) -> dict:
    if not metrics_path.is_file():
        return {}
    metrics = json.loads(metrics_path.read_text())
    keys = ("bleu_greedy", "bleu_beam", "chrf_greedy", "chrf_beam", "exact_match_greedy",
            "exact_match_beam", "num_pairs", "train_seconds")
    return {k: metrics[k] for k in keys if k in metrics}


def runtime_translation_parity(export_dir: Path, manifest: dict, pairs, config,
                               keras_scores) -> dict[str, Any]:
    """Per backend/quantization: share of sample sentences translated exactly like Keras
    (greedy and beam) and the BLEU reached."""
    result: dict[str, Any] = {}
    for backend, quantization in runtime_variants(manifest):
        translator = load_runtime_translator(export_dir, backend, quantization)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scored = decode_and_score(translator, pairs, config)
        greedy_same = np.mean([a == b for a, b in zip(scored["greedy"],
                                                      keras_scores["greedy"], strict=True)])
        beam_same = np.mean([a == b for a, b in zip(scored["beam"], keras_scores["beam"],
                                                    strict=True)])
        result[f"{backend}/{quantization}"] = {
            "same_as_keras_greedy": round(float(greedy_same), 4),
            "same_as_keras_beam": round(float(beam_same), 4),
            "bleu_greedy": scored["metrics"]["bleu_greedy"],
            "bleu_beam": scored["metrics"]["bleu_beam"],
            "seconds": round(time.perf_counter() - started, 2),
        }
    return result
