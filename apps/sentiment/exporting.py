"""Export a sentiment run through ``rnnkit.export`` and check it end to end.

Besides what ``rnnkit.export.export_model`` writes (model files, ``assets/``, manifest with
max-abs-difference parity), the sentiment export adds:

* ``eval/test_sample.jsonl``: a fixed held-out sample of the run's test split (300 sentences,
  ordered by the hash of their id), and ``manifest["metrics"]["test_sample"]``: the accuracy
  of Keras and of every shipped artifact on exactly that sample (a test reproduces them);
* ``manifest["label_agreement"]``: the share of the *whole* test split on which each artifact
  gives the same label as Keras;
* ``manifest["onnx_op_types"]``: the op types of ``model.onnx`` (no ``Loop``: the recurrent
  part is a native ONNX LSTM/GRU/RNN op);
* with a "word" tokenizer, string-in SavedModel signatures for TF Serving (``classify_text``,
  ``tokenize_text``; tokenizer in the graph, see ``apps/sentiment/serving.py``) and
  ``manifest["text_signatures"]``: their inputs/outputs, the tokenization, its known deviation
  and the measured agreement with the Python tokenizer + Keras on the whole test split. For
  "bpe"/"char" tokenizers the entry says why there is no string signature.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from apps.sentiment.runtime import GRAPH, INPUT_NAME, SentimentPredictor, encode_texts, pad_rows
from rnnkit.data.text import TextDataset, hash_bucket
from rnnkit.errors import UserError
from rnnkit.runtime import runtime_variants

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


def export_run(run_dir: Path, out_dir: Path, formats: list[str], quantize: list[str],
               ) -> dict[str, Any]:
    from apps.sentiment.task import _load_dataset_jsonl, _load_run, keras_predict
    from rnnkit.export import export_model

    config, tokenizer, labels, model = _load_run(run_dir)
    test_path = run_dir / "data" / "test.jsonl"
    test = _load_dataset_jsonl(test_path) if test_path.is_file() else TextDataset()
    if not len(test):
        raise UserError(f"{run_dir} has no test split ({test_path}) to check the export on")
    rows = encode_texts(tokenizer, test.texts, config.max_length)
    signatures, text_signatures, owners = _text_signatures(model, tokenizer, labels,
                                                          config.max_length, formats)
    vocab = tokenizer.vocab_size
    parity = _parity_inputs(rows, config.max_length)
    for feeds in parity:
        feeds[INPUT_NAME] = np.minimum(feeds[INPUT_NAME], vocab - 1).astype(np.int32)

    run_metrics = {}
    if (run_dir / "metrics.json").is_file():
        evaluated = json.loads((run_dir / "metrics.json").read_text())
        run_metrics = {k: evaluated[k] for k in (
            "data", "examples", "accuracy", "macro_f1", "baseline_accuracy", "baseline_macro_f1",
            "negation_pairs_correct", "negation_pairs_opposite",
            "baseline_negation_pairs_correct", "baseline_negation_pairs_opposite")
            if k in evaluated}

    def finalize(staging: Path, manifest: dict[str, Any]) -> None:
        # The whole test split: labels of every artifact vs Keras.
        keras_probs, _ = keras_predict(model, rows)
        keras_labels = keras_probs.argmax(-1)
        agreement: dict[str, dict[str, float]] = {}
        for backend, quantization in runtime_variants(manifest):
            predictor = SentimentPredictor(staging, backend, quantization)
            probs, _ = predictor.run_rows(rows)
            agreement.setdefault(backend, {})[quantization] = float(
                np.mean(probs.argmax(-1) == keras_labels))
        manifest["label_agreement"] = {"examples": len(rows), "vs_keras": agreement}
        if signatures:
            manifest["text_signatures"]["agreement"] = _measure_text_signatures(
                staging, tokenizer, test.texts, config.max_length, keras_probs)

        # A fixed held-out sample shipped beside the model, with its accuracy per artifact.
        order = sorted(range(len(test)), key=lambda i: (hash_bucket(test.ids[i], 1 << 30), i))
        sample = test.subset(order[:EVAL_SAMPLE_SIZE])
        sample.to_jsonl(staging / EVAL_SAMPLE_FILE)
        sample_rows = encode_texts(tokenizer, sample.texts, config.max_length)
        sample_probs, _ = keras_predict(model, sample_rows)
        truth = np.array([labels.index(label) for label in sample.labels])
        sample_metrics: dict[str, Any] = {
            "file": EVAL_SAMPLE_FILE, "examples": len(sample),
            "keras": float(np.mean(sample_probs.argmax(-1) == truth)),
        }
        for backend, quantization in runtime_variants(manifest):
            predictor = SentimentPredictor(staging, backend, quantization)
            sample_metrics.setdefault(backend, {})[quantization] = predictor.accuracy(
                sample.texts, sample.labels)
        manifest["metrics"]["test_sample_accuracy"] = sample_metrics

        if "onnx" in formats:
            import onnx

            proto = onnx.load(str(staging / manifest["graphs"][GRAPH]["files"]["onnx"]["none"]))
            manifest["onnx_op_types"] = sorted({node.op_type for node in proto.graph.node})
        manifest["size_bytes"] = _directory_bytes(staging)

    return export_model(
        {GRAPH: model}, out_dir, app="sentiment", formats=formats, quantize=quantize,
        tflite_shapes={GRAPH: {INPUT_NAME: (1, config.max_length)}},
        parity_inputs={GRAPH: parity},
        assets={"tokenizer.json": run_dir / "assets" / "tokenizer.json",
                "labels.json": list(labels)},
        manifest_extra={
            "labels": list(labels),
            "tokenizer": {"file": "assets/tokenizer.json", **tokenizer.config,
                          "max_length": config.max_length,
                          "empty_text": "encoded as [<unk>] (id 1)"},
            "task": {"input": INPUT_NAME, "outputs": ["probabilities"]
                     + (["attention"] if config.pooling == "attention" else []),
                     "pooling": config.pooling, "kind": config.kind,
                     "bidirectional": config.bidirectional},
            "metrics": {"test_split": run_metrics},
            "text_signatures": text_signatures,
        },
        signatures=signatures,
        signature_owners=owners,
        finalize=finalize,
    )
