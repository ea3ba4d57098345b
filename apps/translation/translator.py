"""Sentence translation over an encoder + decoder-step pair, without TensorFlow.

:class:`Translator` drives any two seq2seq callables (``rnnkit.runtime.seq2seq``): the Keras
models in training and evaluation, ONNX Runtime or LiteRT in :class:`TranslationPredictor`,
which reads only the export's ``TranslationSpec``.

Long inputs: sources longer than ``max_source_length`` tokens (the longest trained length,
also TFLite's fixed input length) are cut to it with a ``warnings.warn`` and
``"truncated": True`` in the result (``long_input="truncate"``), or rejected with a
``UserError`` (``long_input="error"``).

Unknown words (``copy_unknown=True``, what ``predict`` and ``rnnkit serve`` use): a source word
that the source tokenizer cannot represent (it holds an ``<unk>`` piece: an unseen character,
an emoji) or that looks like an unseen name (capitalised, not the first word, cut into at least
:data:`NAME_MIN_PIECES` sub-words) is copied into the translation: the output words whose
pieces mostly attend (attention argmax) to it are replaced by it, keeping their punctuation,
and an output ``<unk>`` piece becomes the source word it attends to. It runs on the host after
decoding, so it applies to any model, the shipped ones included (the SavedModel's in-graph
``translate_text`` does not do it). No output then holds ``<unk>``.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apps.translation.spec import TranslationSpec
from rnnkit.errors import UserError
from rnnkit.runtime.seq2seq import METHODS, EncodeFn, Seq2Seq, StepFn, runtime_graphs
from rnnkit.text.tokenizer import SPECIAL_TOKENS

LONG_INPUT_RULES = ("truncate", "error")
# A capitalised source word (not the first) cut into at least this many BPE pieces is taken
# for a name the model has not seen, and copied. Measured on the shipped model's 200 held-out
# sample pairs (see the README).
NAME_MIN_PIECES = 3
_EDGE_PUNCTUATION = ".,;:!?¿¡\"'()[]{}«»“”‘’"
_SENTENCE_END = re.compile(r"[.!?…:;]$")
# Capitalised in English, translated (and lower-case) in Spanish or German: never copied.
CALENDAR_WORDS = frozenset(
    "January February March April May June July August September October November December "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split())


def _source_words(tokenizer, text: str, count: int) -> tuple[list[str], list[int | None],
                                                             list[bool]]:
    """``(words, word_of_token, unknown_token)`` for the first ``count`` source pieces: the
    whitespace-separated words of ``text``, the word each piece falls in (None for a bare
    word-start mark) and whether a piece is ``<unk>``."""
    encoding = tokenizer.backend.encode(text, add_special_tokens=False)
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    word_of, unknown = [], []
    for token_id, (start, end) in list(zip(encoding.ids, encoding.offsets, strict=True))[:count]:
        index = None
        if end > start and any(c.isalnum() or c in ("'", "’") or token_id == tokenizer.unk_id
                               for c in text[start:end]):  # punctuation: no word's
            last = end - 1
            for w, (a, b) in enumerate(spans):
                if a <= last < b:
                    index = w
                    break
        word_of.append(index)
        unknown.append(token_id == tokenizer.unk_id)
    return [text[a:b] for a, b in spans], word_of, unknown


def copy_unknown_words(source_tokenizer, target_tokenizer, text: str, ids: list[int],
                       attention: np.ndarray, min_name_pieces: int = NAME_MIN_PIECES) -> str:
    """The translation of ``ids`` with the unknown source words of ``text`` copied in (see
    the module docstring); ``attention``: ``(len(ids) + 1, source pieces)``."""
    words, word_of, unknown = _source_words(source_tokenizer, text, attention.shape[1])
    pieces_per_word: dict[int, int] = {}
    for w in word_of:
        if w is not None:
            pieces_per_word[w] = pieces_per_word.get(w, 0) + 1
    # A literal special token in the text ("<unk>") is never copied.
    special = set(SPECIAL_TOKENS)
    copyable = [word.strip(_EDGE_PUNCTUATION) not in special for word in words]
    copied: set[int] = set()
    for position, w in enumerate(word_of):
        if w is not None and unknown[position] and copyable[w]:
            copied.add(w)
    for w, word in enumerate(words):
        core = word.strip(_EDGE_PUNCTUATION)
        after_sentence = w == 0 or bool(_SENTENCE_END.search(words[w - 1]))
        if core[:1].isupper() and not after_sentence and core not in CALENDAR_WORDS and \
                pieces_per_word.get(w, 0) >= min_name_pieces:
            copied.add(w)
    unk = target_tokenizer.unk_id
    if not copied and unk not in ids:
        return target_tokenizer.decode(ids)
    if not [i for i in ids if i != unk]:  # nothing translated: the unknown words themselves
        return " ".join(words[w] for w in sorted(copied))
    if target_tokenizer.kind != "bpe":  # words are not marked in the pieces: drop <unk>
        return target_tokenizer.decode(ids, skip_unk=True)
    # Output words: a piece starting with "▁" opens one; an <unk> piece is a word of its own.
    groups: list[list[int]] = []
    for k, token_id in enumerate(ids):
        piece = target_tokenizer.id_to_token(token_id) or ""
        if not groups or piece.startswith("▁") or token_id == unk or ids[k - 1] == unk:
            groups.append([])
        groups[-1].append(k)
    out: list[str] = []
    previous: int | None = None
    emitted: set[int] = set()
    for group in groups:
        positions = [int(attention[k].argmax()) for k in group]
        aligned = [word_of[j] if j < len(word_of) else None for j in positions]
        votes = [w for w in aligned if w in copied]
        target = None
        if votes and len(votes) * 2 >= sum(w is not None for w in aligned):
            target = max(set(votes), key=votes.count)
        has_unk = any(ids[k] == unk for k in group)
        if target is None and has_unk:
            target = next((w for w in aligned if w is not None and copyable[w]), None)
        text_ids = [ids[k] for k in group if ids[k] != unk]
        surface = target_tokenizer.decode(text_ids).strip() if text_ids else ""
        if target is None:
            if surface:
                out.append(surface)
            previous = None
            continue
        if target == previous or target in emitted:
            previous = target
            continue  # one copy per source word
        lead = surface[: len(surface) - len(surface.lstrip("¿¡\"'(«“‘"))]
        trail = surface[len(surface.rstrip(".,;:!?\"')»”’")):]
        out.append(f"{lead}{words[target].strip(_EDGE_PUNCTUATION)}{trail}")
        emitted.add(target)
        previous = target
    return " ".join(out)


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
                  with_attention: bool = False,
                  copy_unknown: bool = False) -> list[dict[str, Any]]:
        """One dict per sentence: ``translation``, ``ids``, ``truncated``, ``source_tokens``
        (+ ``score``/``n_best`` for beam search, ``attention`` (T_out+1, T_src) with
        ``with_attention``). ``copy_unknown``: unknown source words and unseen names are
        copied into ``translation`` (module docstring; ``ids`` stay the model's)."""
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
                num_return=int(num_return), with_attention=with_attention or copy_unknown)
            for index, out in zip(chunk, outs, strict=True):
                translation = decode(out["ids"])
                if copy_unknown:
                    translation = copy_unknown_words(
                        self.source_tokenizer, self.target_tokenizer, texts[index], out["ids"],
                        out["attention"][:, : len(rows[index])])
                item: dict[str, Any] = {"ids": out["ids"], "translation": translation,
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
                if copy_unknown and "n_best" in item:  # no <unk> in the alternatives either
                    item["n_best"] = [{"translation": decode(h, skip_unk=True), "score": s}
                                      for h, s in out["n_best"]]
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
                                     num_return=int(num_return or 1), with_attention=explain,
                                     copy_unknown=True)
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
