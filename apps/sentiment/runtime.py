"""Sentiment inference on an export directory: raw text → label, without TensorFlow.

Uses only ``rnnkit.runtime`` (ONNX Runtime / LiteRT), ``rnnkit.text`` (the ``tokenizers``
library), numpy and the manifest's ``SentimentSpec``; the tokenization is the training one
(same ``tokenizer.json``, same ``max_length`` cut, same ``[<unk>]`` for a text with no tokens).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apps.sentiment.spec import GRAPH, SentimentSpec


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text, cut to ``max_length``; an empty result becomes ``[<unk>]`` so that
    every row has length >= 1 (right padding; native RNN ops need a length >= 1)."""
    rows = []
    for text in texts:
        ids = tokenizer.encode(text)[:max_length]
        rows.append(ids or [tokenizer.unk_id])
    return rows


def pad_rows(rows: Sequence[Sequence[int]], width: int | None = None) -> np.ndarray:
    """Right-pad id lists with 0 into int32 ``(B, width)`` (width: the longest row)."""
    width = max(len(r) for r in rows) if width is None else width
    out = np.zeros((len(rows), width), dtype=np.int32)
    for index, ids in enumerate(rows):
        out[index, : len(ids)] = ids[:width]
    return out


def token_strings(tokenizer: Any, text: str, max_length: int) -> list[str]:
    """The tokens the model sees for ``text`` (for ``--explain``)."""
    return tokenizer.tokens(text)[:max_length] or ["<unk>"]


def format_prediction(labels: Sequence[str], probabilities: np.ndarray,
                      tokens: list[str] | None = None,
                      weights: np.ndarray | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "label": labels[int(np.argmax(probabilities))],
        "probabilities": {label: float(p) for label, p in zip(labels, probabilities, strict=True)},
    }
    if tokens is not None and weights is not None:
        result["attention"] = [(token, float(w)) for token, w in zip(tokens, weights, strict=False)]
    return result


def run_sorted(rows: list[list[int]], batch_size: int, run_batch,
               ) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Probabilities ``(N, C)`` and attention rows (or None) of encoded ``rows``, run in
    batches of similar length; ``run_batch(padded) -> (probabilities, attention or None)``."""
    order = np.argsort([len(r) for r in rows], kind="stable")
    probabilities = np.zeros((len(rows), 0), dtype=np.float32)
    attention: list[Any] = [None] * len(rows)
    has_attention = False
    for start in range(0, len(rows), batch_size):
        indices = order[start:start + batch_size]
        probs, weights = run_batch(pad_rows([rows[i] for i in indices]))
        if probabilities.shape[1] == 0:
            probabilities = np.zeros((len(rows), probs.shape[1]), dtype=np.float32)
        probabilities[indices] = probs
        if weights is not None:
            has_attention = True
            for row, index in enumerate(indices):
                attention[index] = weights[row, : len(rows[index])]
    return probabilities, (attention if has_attention else None)


class TextClassifierBase:
    """Shared text → label logic of the Keras and the runtime predictors."""

    labels: list[str]
    tokenizer: Any
    max_length: int

    def run_rows(self, rows: list[list[int]]) -> tuple[np.ndarray, list[np.ndarray] | None]:
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return encode_texts(self.tokenizer, texts, self.max_length)

    def predict(self, texts: Sequence[str], explain: bool = False) -> list[dict[str, Any]]:
        if isinstance(texts, str):
            texts = [texts]
        probabilities, attention = self.run_rows(self.encode(texts))
        results = []
        for i, text in enumerate(texts):
            tokens = token_strings(self.tokenizer, text, self.max_length) if explain else None
            weights = attention[i] if (explain and attention is not None) else None
            results.append(format_prediction(self.labels, probabilities[i], tokens, weights))
        return results

    def accuracy(self, texts: Sequence[str], labels: Sequence[str]) -> float:
        probabilities, _ = self.run_rows(self.encode(texts))
        predicted = [self.labels[i] for i in probabilities.argmax(-1)]
        return float(np.mean([p == t for p, t in zip(predicted, labels, strict=True)]))


class SentimentPredictor(TextClassifierBase):
    """Load once, predict many: ``SentimentPredictor("exported/sentiment").predict(["..."])``."""

    def __init__(self, export_dir: str | os.PathLike, backend: str = "onnx",
                 quantization: str = "none", num_threads: int | None = None,
                 batch_size: int = 64):
        from rnnkit import runtime

        self.export_dir = Path(export_dir)
        self.model = runtime.load(self.export_dir, backend=backend, quantization=quantization,
                                  num_threads=num_threads)
        self.spec = SentimentSpec.from_manifest(self.model.manifest,
                                                str(self.export_dir / "manifest.json"))
        self.labels = list(self.spec.labels)
        self.tokenizer = runtime.load_tokenizer(self.export_dir, Path(self.spec.tokenizer_file).name)
        self.max_length = int(self.spec.max_length)
        self.batch_size = batch_size
        self.has_attention = "attention" in self.spec.outputs

    def run_rows(self, rows: list[list[int]]) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Probabilities ``(N, C)`` (and attention per row) for encoded rows, batched by length."""
        def run_batch(batch: np.ndarray):
            outputs = self.model.run(GRAPH, {self.spec.input_name: batch})
            return outputs["probabilities"], outputs["attention"] if self.has_attention else None

        return run_sorted(rows, self.batch_size, run_batch)
