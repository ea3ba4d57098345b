"""What a sentiment export holds beyond the kit's files, and how it is checked.

* ``manifest["agreement"]`` (the base ``Task``): labels of every artifact vs Keras on the
  *whole* recorded test split;
* ``eval/test_sample.jsonl``: a fixed held-out sample of the test split (300 sentences,
  ordered by the hash of their id), and ``manifest["metrics"]["test_sample_accuracy"]``: the
  accuracy of Keras and of every artifact (``"onnx/int8"``...) on exactly that sample;
* ``manifest["onnx_op_types"]``: the op types of ``model.onnx`` (no ``Loop``: the recurrent
  part is a native ONNX LSTM/GRU/RNN op);
* with a "word" tokenizer, string-in SavedModel signatures for TF Serving (``classify_text``,
  ``tokenize_text``; tokenizer in the graph, see ``apps/sentiment/serving.py``) and
  ``manifest["text_signatures"]``: their inputs/outputs, the tokenization, its known deviation
  and the measured agreement with the Python tokenizer + Keras on the whole test split. For
  "bpe"/"char" tokenizers the entry says why there is no string signature.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from apps.sentiment.runtime import SentimentPredictor, encode_texts, pad_rows
from apps.sentiment.spec import GRAPH, INPUT_NAME, SentimentSpec
from rnnkit.data.split import hash_order
from rnnkit.data.text import TextDataset
from rnnkit.errors import UserError
from rnnkit.runtime import runtime_variants
from rnnkit.task import ExportPlan, RunDir, variant_key

EVAL_SAMPLE_SIZE = 300
EVAL_SAMPLE_FILE = "eval/test_sample.jsonl"


def _parity_inputs(rows: list[list[int]], max_length: int) -> list[dict[str, np.ndarray]]:
    """Right-padded batches of mixed lengths, including a 1-token row and a full-length row."""
    by_length = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    picks = [by_length[int(q * (len(by_length) - 1))] for q in np.linspace(0, 1, 8)]
    mixed = [rows[i] for i in picks]
    extremes = [[5], list(range(4, 4 + max_length)), rows[picks[3]]]
    return [{INPUT_NAME: pad_rows(mixed)}, {INPUT_NAME: pad_rows(extremes)},
            {INPUT_NAME: pad_rows([rows[picks[-1]]])}]


def _text_signatures(model: Any, tokenizer: Any, labels: list[str], max_length: int,
                     formats: list[str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(`export_model` signatures, manifest entry, `export_model` signature owners: the object
    owning the captured lookup tables) for the string-in SavedModel signatures."""
    from apps.sentiment.serving import (
        STRING_SIGNATURE_REASON,
        TextClassifier,
        signature_manifest,
    )

    if "saved_model" not in formats:
        return {}, {"graph": None, "reason": "no SavedModel in this export"}, {}
    if tokenizer.kind != "word":
        reason = STRING_SIGNATURE_REASON.format(kind=tokenizer.kind)
        return {}, {"graph": None, "reason": reason}, {}
    classifier = TextClassifier(model, tokenizer, labels, max_length)
    entry = {"graph": GRAPH, "format": "saved_model",
             **signature_manifest(len(labels), max_length)}
    return {GRAPH: classifier.signatures()}, entry, {GRAPH: classifier}


def _measure_text_signatures(staging: Path, tokenizer: Any, texts: list[str], max_length: int,
                             keras_probs: np.ndarray, batch_size: int = 256) -> dict[str, Any]:
    """The exported `tokenize_text` vs the Python tokenizer, and `classify_text` vs Keras on
    Python-tokenized rows, over `texts` (the whole test split)."""
    import tensorflow as tf

    from apps.sentiment.serving import CLASSIFY_SIGNATURE, TOKENIZE_SIGNATURE, measure_agreement

    loaded = tf.saved_model.load(str(staging / "saved_model" / GRAPH))
    tokenize = loaded.signatures[TOKENIZE_SIGNATURE]
    classify = loaded.signatures[CLASSIFY_SIGNATURE]
    result = measure_agreement(
        tokenizer, texts, max_length, batch_size=batch_size,
        token_ids_fn=lambda batch: tokenize(text=tf.constant(batch))["token_ids"].numpy())
    result.pop("mismatched_examples")
    probabilities = np.concatenate([
        classify(text=tf.constant(texts[start:start + batch_size]))["probabilities"].numpy()
        for start in range(0, len(texts), batch_size)]) if texts else keras_probs
    result["probabilities_max_abs_diff_vs_keras"] = float(np.max(np.abs(
        probabilities.astype(np.float64) - keras_probs))) if len(texts) else 0.0
    result["label_agreement_vs_keras"] = float(np.mean(
        probabilities.argmax(-1) == keras_probs.argmax(-1))) if len(texts) else 1.0
    return result


def _directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


EVALUATE_KEYS = ("data", "examples", "accuracy", "macro_f1", "baseline_accuracy",
                 "baseline_macro_f1", "negation_pairs_correct", "negation_pairs_opposite",
                 "baseline_negation_pairs_correct", "baseline_negation_pairs_opposite")


def export_plan(run: RunDir, predictor: Any, formats: list[str]) -> ExportPlan:
    """The sentiment graph, its spec and checks, for ``Task.export``."""
    config, tokenizer, labels, model = (predictor.config, predictor.tokenizer, predictor.labels,
                                        predictor.model)
    test = TextDataset.from_records(run.split("test")) if run.has_split("test") else TextDataset()
    if not len(test):
        raise UserError(f"{run.path} has no test split to check the export on")
    rows = encode_texts(tokenizer, test.texts, config.max_length)
    signatures, text_signatures, owners = _text_signatures(model, tokenizer, labels,
                                                          config.max_length, formats)
    parity = _parity_inputs(rows, config.max_length)
    for feeds in parity:
        feeds[INPUT_NAME] = np.minimum(feeds[INPUT_NAME], tokenizer.vocab_size - 1).astype(np.int32)
    evaluated = run.metrics("evaluate")
    run_metrics = {k: evaluated[k] for k in EVALUATE_KEYS if k in evaluated}

    def finalize(staging: Path, manifest: dict[str, Any]) -> None:
        if signatures:
            keras_probs, _ = predictor.run_rows(rows)
            manifest["text_signatures"]["agreement"] = _measure_text_signatures(
                staging, tokenizer, test.texts, config.max_length, keras_probs)
        # A fixed held-out sample shipped beside the model, with its accuracy per artifact.
        sample = test.subset(hash_order(test.ids)[:EVAL_SAMPLE_SIZE])
        sample.to_jsonl(staging / EVAL_SAMPLE_FILE)
        sample_metrics: dict[str, Any] = {
            "file": EVAL_SAMPLE_FILE, "examples": len(sample),
            "keras": predictor.accuracy(sample.texts, sample.labels)}
        for backend, quantization in runtime_variants(manifest):
            sample_metrics[variant_key(backend, quantization)] = SentimentPredictor(
                staging, backend, quantization).accuracy(sample.texts, sample.labels)
        manifest["metrics"]["test_sample_accuracy"] = sample_metrics
        if "onnx" in formats:
            import onnx

            proto = onnx.load(str(staging / manifest["graphs"][GRAPH]["files"]["onnx"]["none"]))
            manifest["onnx_op_types"] = sorted({node.op_type for node in proto.graph.node})
        manifest["size_bytes"] = _directory_bytes(staging)

    outputs = ["probabilities"] + (["attention"] if config.pooling == "attention" else [])
    spec = SentimentSpec(labels=list(labels), tokenizer_file="assets/tokenizer.json",
                         max_length=config.max_length, input_name=INPUT_NAME, outputs=outputs)
    return ExportPlan(
        models={GRAPH: model}, spec=spec, keras_predictor=predictor,
        agreement_inputs=test.texts, agreement_source="test split",
        # Any length (the tokenizer cuts at max_length): a short text costs a short loop.
        tflite_shapes={GRAPH: {INPUT_NAME: (1, None)}},
        parity_inputs={GRAPH: parity},
        assets={"tokenizer.json": run.require("assets", "tokenizer.json"),
                "labels.json": list(labels)},
        manifest_extra={
            "tokenizer": {**tokenizer.config, "empty_text": "encoded as [<unk>] (id 1)"},
            "task": {"pooling": config.pooling, "kind": config.kind,
                     "bidirectional": config.bidirectional},
            "metrics": {"test_split": run_metrics},
            "text_signatures": text_signatures,
        },
        signatures=signatures, signature_owners=owners, finalize=finalize)
