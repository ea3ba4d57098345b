"""Sentence translation over an encoder + decoder-step pair, without TensorFlow.

:class:`Translator` drives any two seq2seq callables (``rnnkit.runtime.seq2seq``): the Keras
models in training and evaluation, ONNX Runtime or LiteRT in :class:`TranslationPredictor`,
which reads only the export's ``TranslationSpec``.

Long inputs: sources longer than ``max_source_length`` tokens (the longest trained length,
also TFLite's fixed input length) are cut to it with a ``warnings.warn`` and
``"truncated": True`` in the result (``long_input="truncate"``), or rejected with a
``UserError`` (``long_input="error"``).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apps.translation.spec import TranslationSpec
from rnnkit.errors import UserError
from rnnkit.runtime.seq2seq import METHODS, EncodeFn, Seq2Seq, StepFn, runtime_graphs

LONG_INPUT_RULES = ("truncate", "error")


class Translator:
    """Translate sentences with an ``encode`` and a ``step`` callable."""

    def __init__(self, encode: EncodeFn, step: StepFn, source_tokenizer, target_tokenizer,
                 max_source_length: int, max_target_length: int, start_id: int, end_id: int,
                 long_input: str = "truncate", beam_width: int = 4,
                 length_penalty: float = 0.6, batch_size: int = 64):
        if long_input not in LONG_INPUT_RULES:
            raise UserError(f"`long_input` must be one of {list(LONG_INPUT_RULES)}. "
                            f"Received: long_input={long_input!r}")
        self.seq2seq = Seq2Seq(encode, step)
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.max_source_length = int(max_source_length)
        self.max_target_length = int(max_target_length)
        self.start_id, self.end_id = int(start_id), int(end_id)
        self.long_input = long_input
        self.beam_width = int(beam_width)
        self.length_penalty = float(length_penalty)
        self.batch_size = int(batch_size)

    def encode_sources(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        """Token ids of each source (no specials), cut to ``max_source_length``."""
        if isinstance(texts, str):
            raise UserError("`texts` must be a list of sentences, not one string.")
        rows, truncated = [], []
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise UserError(f"Sentence {index} must be a string. "
                                f"Received: {type(text).__name__}")
            ids = self.source_tokenizer.encode(text) or [self.source_tokenizer.unk_id]
            cut = len(ids) > self.max_source_length
            if cut:
                if self.long_input == "error":
                    raise UserError(
                        f"Sentence {index} has {len(ids)} source tokens, more than the "
                        f"model's maximum max_source_length={self.max_source_length}. "
                        f"Received: {text[:60]!r}...")
                warnings.warn(
                    f"Sentence {index} has {len(ids)} source tokens; only the first "
                    f"{self.max_source_length} (max_source_length) are translated.",
                    stacklevel=3)
                ids = ids[: self.max_source_length]
            rows.append(ids)
            truncated.append(cut)
        return rows, truncated

    @staticmethod
    def pad(rows: list[list[int]]) -> np.ndarray:
        """Right-pad id rows with 0 to the longest: int32 ``(B, T)``."""
        out = np.zeros((len(rows), max(len(r) for r in rows)), dtype=np.int32)
        for index, ids in enumerate(rows):
            out[index, : len(ids)] = ids
        return out

    def translate(self, texts: Sequence[str], method: str = "greedy", beam_width: int = 4,
                  length_penalty: float = 0.6, num_return: int = 1,
                  with_attention: bool = False) -> list[dict[str, Any]]:
        """One dict per sentence: ``translation``, ``ids``, ``truncated``, ``source_tokens``
        (+ ``score``/``n_best`` for beam search, ``attention`` (T_out+1, T_src) with
        ``with_attention``)."""
        if method not in METHODS:
            raise UserError(f"`method` must be one of {list(METHODS)}. Received: {method!r}")
        if method == "beam" and int(beam_width) < 1:
            raise UserError(f"`beam_width` must be >= 1. Received: beam_width={beam_width}")
        if isinstance(texts, str):
            raise UserError("`texts` must be a list of sentences, not one string.")
        texts = list(texts)
        if not texts:
            return []
        rows, truncated = self.encode_sources(texts)
        # Sort by length so batches carry little padding; results go back in input order.
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        batch = self.batch_size if method == "greedy" else max(1, self.batch_size // beam_width)
        results: list[dict[str, Any]] = [{} for _ in rows]
        decode = self.target_tokenizer.decode
        for start in range(0, len(order), batch):
            chunk = order[start:start + batch]
            ids = self.pad([rows[i] for i in chunk])
            outs = self.seq2seq.decode(
                ids, ids != 0, start_id=self.start_id, end_id=self.end_id,
                max_steps=self.max_target_length - 1,  # the target length counts <s>
                method=method, beam_width=int(beam_width), length_penalty=float(length_penalty),
                num_return=int(num_return), with_attention=with_attention)
            for index, out in zip(chunk, outs, strict=True):
                item: dict[str, Any] = {"ids": out["ids"], "translation": decode(out["ids"]),
                                        "truncated": truncated[index],
                                        "source_tokens": self.source_tokenizer.tokens(
                                            texts[index])[: self.max_source_length]}
                if method == "beam":
                    item["score"] = out["score"]
                if "n_best" in out:
                    item["n_best"] = [{"translation": decode(h), "score": s}
                                      for h, s in out["n_best"]]
                if with_attention:
                    item["attention"] = out["attention"][:, : len(rows[index])]
                results[index] = item
        return results

    def predict(self, inputs: Sequence[str], beam_width: int | None = None,
                num_return: int | None = None, explain: bool = False) -> list[dict[str, Any]]:
        """The app's predict results: ``translation`` (+ ``truncated``, beam ``score`` and
        ``n_best``, and with ``explain`` the source token each output token attended to most).
        ``beam_width`` defaults to the model's (the manifest's ``translation.beam_width``);
        beam search when it is > 1, greedy when it is 1."""
        beam_width = self.beam_width if beam_width is None else int(beam_width)
        method = "beam" if beam_width > 1 else "greedy"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = self.translate(inputs, method, beam_width=beam_width,
                                     length_penalty=self.length_penalty,
                                     num_return=int(num_return or 1), with_attention=explain)
        for warning in caught:
            print(f"warning: {warning.message}", file=sys.stderr)
        out = []
        for text, result in zip(inputs, results, strict=True):
            item: dict[str, Any] = {"input": text, "translation": result["translation"]}
            if result["truncated"]:
                item["truncated"] = True
            if "score" in result:
                item["score"] = round(result["score"], 4)
            if "n_best" in result:
                item["n_best"] = result["n_best"]
            if explain:
                weights, sources = result["attention"], result["source_tokens"]
                tokens = [self.target_tokenizer.id_to_token(i) for i in result["ids"]]
                item["alignment"] = [(f"{t}->{sources[int(weights[k].argmax())]}",
                                      float(weights[k].max())) for k, t in enumerate(tokens)]
            out.append(item)
        return out


class TranslationPredictor(Translator):
    """Translator over an export directory (ONNX Runtime or LiteRT)::

        TranslationPredictor("exported/translation").predict(["Germany and France"])
    """

    def __init__(self, export_dir: str | os.PathLike, backend: str = "onnx",
                 quantization: str = "none", num_threads: int | None = None,
                 long_input: str | None = None):
        from rnnkit import runtime

        self.export_dir = Path(export_dir)
        self.model = runtime.load(self.export_dir, backend=backend, quantization=quantization,
                                  num_threads=num_threads)
        self.spec = TranslationSpec.from_manifest(self.model.manifest,
                                                  str(self.export_dir / "manifest.json"))
        max_source = int(self.spec.max_source_length)
        fixed = self.model.max_length("encoder") if backend == "tflite" else None
        if fixed:
            max_source = min(max_source, int(fixed))
        super().__init__(
            *runtime_graphs(self.model),
            runtime.load_tokenizer(self.export_dir, Path(self.spec.source_tokenizer).name),
            runtime.load_tokenizer(self.export_dir, Path(self.spec.target_tokenizer).name),
            max_source, self.spec.max_target_length, self.spec.start_id, self.spec.end_id,
            long_input or self.spec.long_input, self.spec.beam_width, self.spec.length_penalty)
