"""Sentiment inference on an export directory: raw text → label, without TensorFlow.

Uses only ``rnnkit.runtime`` (ONNX Runtime / LiteRT), ``rnnkit.text`` (the ``tokenizers``
library) and numpy, with the tokenizer and labels from the export's ``assets/``; the
tokenization is the training one (same ``tokenizer.json``, same ``max_length`` cut, same
``[<unk>]`` for a text with no tokens).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

GRAPH = "model"
INPUT_NAME = "token_ids"


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


class SentimentPredictor:
    """Load once, predict many: ``SentimentPredictor("exported/sentiment").predict(["..."])``."""

    def __init__(self, export_dir: str | os.PathLike, backend: str = "onnx",
                 quantization: str = "none", num_threads: int | None = None,
                 batch_size: int = 64):
        from rnnkit import runtime

        self.export_dir = Path(export_dir)
        self.model = runtime.load(self.export_dir, backend=backend, quantization=quantization,
                                  num_threads=num_threads)
        manifest = self.model.manifest
        self.labels: list[str] = list(manifest.get("labels") or json.loads(
            runtime.asset_path(self.export_dir, "labels.json").read_text()))
        settings = manifest.get("tokenizer") or {}
        self.tokenizer = runtime.load_tokenizer(self.export_dir,
                                                Path(settings.get("file", "tokenizer.json")).name)
        self.max_length = int(settings.get("max_length") or self.model.max_length(GRAPH) or 64)
        self.batch_size = batch_size
        self.has_attention = any(o["name"] == "attention" for o in self.model.output_specs(GRAPH))

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return encode_texts(self.tokenizer, texts, self.max_length)

    def run_rows(self, rows: list[list[int]]) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Probabilities ``(N, C)`` (and attention per row) for encoded rows, batched by length."""
        order = np.argsort([len(r) for r in rows], kind="stable")
        probabilities = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        attention: list[Any] = [None] * len(rows)
        for start in range(0, len(rows), self.batch_size):
            indices = order[start:start + self.batch_size]
            outputs = self.model.run(GRAPH, {INPUT_NAME: pad_rows([rows[i] for i in indices])})
            probabilities[indices] = outputs["probabilities"]
            if self.has_attention:
                for row, index in enumerate(indices):
                    attention[index] = outputs["attention"][row, : len(rows[index])]
        return probabilities, (attention if self.has_attention else None)

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
