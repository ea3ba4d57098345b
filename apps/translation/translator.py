"""Sentence translation with greedy / beam search over an encoder + decoder-step pair.

TensorFlow-free: the same :class:`Translator` drives Keras models (``keras_graphs``), ONNX
Runtime or LiteRT (``runtime_graphs`` over ``rnnkit.runtime``) through two plain functions:

* ``encode(source_ids int32 (B, T)) -> (encoder_outputs (B, T, D), [state, ...])``
* ``step(token int32 (N, 1), [state, ...], encoder_outputs, encoder_mask bool) ->
  (logits (N, V), [new_state, ...], attention (N, T))``

Long inputs: sources longer than ``max_source_length`` tokens (the longest trained length,
also TFLite's fixed input length) are cut to it with a ``warnings.warn`` and
``"truncated": True`` in the result (``long_input="truncate"``), or rejected with a
``UserError`` (``long_input="error"``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rnnkit.decoding import beam_search, greedy_search, tile_for_beam
from rnnkit.errors import UserError

EncodeFn = Callable[[np.ndarray], "tuple[np.ndarray, list[np.ndarray]]"]
StepFn = Callable[..., "tuple[np.ndarray, list[np.ndarray], np.ndarray]"]
LONG_INPUT_RULES = ("truncate", "error")
METHODS = ("greedy", "beam")


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class Translator:
    """Translate sentences with an encoder function and a decoder step function."""

    def __init__(self, encode: EncodeFn, step: StepFn, source_tokenizer, target_tokenizer,
                 max_source_length: int, max_target_length: int, long_input: str = "truncate",
                 batch_size: int = 64, pad_source_to: int | None = None):
        if long_input not in LONG_INPUT_RULES:
            raise UserError(f"`long_input` must be one of {list(LONG_INPUT_RULES)}. "
                            f"Received: long_input={long_input!r}")
        self.encode_fn = encode
        self.step_fn = step
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.max_source_length = int(max_source_length)
        self.max_target_length = int(max_target_length)
        self.long_input = long_input
        self.batch_size = int(batch_size)
        self.pad_source_to = pad_source_to

    # ------------------------------------------------------------------ inputs
    def encode_sources(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        """Token ids of each source (no specials), cut to ``max_source_length``."""
        if isinstance(texts, str):
            raise UserError("`texts` must be a list of sentences, not one string.")
        rows, truncated = [], []
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise UserError(f"Sentence {index} must be a string. "
                                f"Received: {type(text).__name__}")
            ids = self.source_tokenizer.encode(text)
            if not ids:
                ids = [self.source_tokenizer.unk_id]  # empty input: translate one <unk>
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

    def _pad(self, rows: list[list[int]]) -> np.ndarray:
        width = self.pad_source_to or max(len(r) for r in rows)
        out = np.zeros((len(rows), width), dtype=np.int32)
        for index, ids in enumerate(rows):
            out[index, : len(ids)] = ids
        return out

    # ------------------------------------------------------------------ search
    def _make_step(self, encoder_outputs, mask, beam_width: int, record: list | None):
        if beam_width > 1:
            encoder_outputs = tile_for_beam(encoder_outputs, beam_width)
            mask = tile_for_beam(mask, beam_width)

        def step(tokens: np.ndarray, states: list[np.ndarray]):
            logits, new_states, weights = self.step_fn(
                tokens.astype(np.int32).reshape(-1, 1), states, encoder_outputs, mask)
            if record is not None:
                record.append(np.asarray(weights))
            return log_softmax(logits), list(new_states)

        return step

    def _translate_batch(self, rows, method, beam_width, length_penalty, num_return,
                         with_attention):
        ids = self._pad(rows)
        mask = ids != 0
        encoder_outputs, states = self.encode_fn(ids)
        start, end = self.target_tokenizer.start_id, self.target_tokenizer.end_id
        max_steps = self.max_target_length - 1  # target length counts <s>
        results = []
        if method == "greedy":
            record: list | None = [] if with_attention else None
            outputs = greedy_search(self._make_step(encoder_outputs, mask, 1, record),
                                    states, start, end, max_steps)
            for row, out in enumerate(outputs):
                item: dict[str, Any] = {"ids": out,
                                        "translation": self.target_tokenizer.decode(out)}
                if with_attention and record:
                    steps = min(len(out) + 1, len(record))
                    item["attention"] = np.stack(
                        [record[t][row, : len(rows[row])] for t in range(steps)])
                results.append(item)
            return results
        hypotheses = beam_search(self._make_step(encoder_outputs, mask, beam_width, None),
                                 states, start, end, max_steps, beam_width=beam_width,
                                 length_penalty=length_penalty, num_return=num_return)
        for hyps in hypotheses:
            best = hyps[0]
            item = {"ids": best.ids, "translation": self.target_tokenizer.decode(best.ids),
                    "score": float(best.score)}
            if num_return > 1:
                item["n_best"] = [{"translation": self.target_tokenizer.decode(h.ids),
                                   "score": float(h.score)} for h in hyps]
            results.append(item)
        return results

    def translate(self, texts: Sequence[str], method: str = "greedy", beam_width: int = 4,
                  length_penalty: float = 0.6, num_return: int = 1,
                  with_attention: bool = False) -> list[dict[str, Any]]:
        """One dict per sentence: ``translation``, ``ids``, ``truncated``, ``source_tokens``
        (+ ``score``/``n_best`` for beam search, ``attention`` (T_out+1, T_src) for greedy
        with ``with_attention``)."""
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
        results: list[dict[str, Any] | None] = [None] * len(rows)
        for start in range(0, len(order), batch):
            chunk = order[start:start + batch]
            outs = self._translate_batch([rows[i] for i in chunk], method, int(beam_width),
                                         float(length_penalty), int(num_return), with_attention)
            for index, out in zip(chunk, outs, strict=True):
                out["truncated"] = truncated[index]
                out["source_tokens"] = self.source_tokenizer.tokens(texts[index])[
                    : self.max_source_length]
                results[index] = out
        return results  # type: ignore[return-value]


# ---------------------------------------------------------------------- graph adapters
def keras_graphs(encoder, step_model) -> tuple[EncodeFn, StepFn]:
    """``encode``/``step`` functions over Keras models (direct calls, no ``predict``)."""

    def encode(ids):
        encoder_outputs, *states = encoder(ids, training=False)
        return np.asarray(encoder_outputs), [np.asarray(s) for s in states]

    def step(token, states, encoder_outputs, mask):
        logits, *rest = step_model([token, *states, encoder_outputs, mask], training=False)
        *new_states, weights = rest
        return np.asarray(logits), [np.asarray(s) for s in new_states], np.asarray(weights)

    return encode, step


def runtime_graphs(model) -> tuple[EncodeFn, StepFn]:
    """``encode``/``step`` over an ``rnnkit.runtime.ExportedModel`` with graphs
    ``encoder`` (source_ids → encoder_outputs, state_*) and ``decoder_step`` (token, state_*,
    encoder_outputs, encoder_mask → logits, new_state_*, attention)."""
    encoder_outputs_spec = [s["name"] for s in model.output_specs("encoder")]
    step_inputs = [s["name"] for s in model.input_specs("decoder_step")]
    step_outputs = [s["name"] for s in model.output_specs("decoder_step")]
    state_inputs = step_inputs[1:-2]
    source_name = model.input_specs("encoder")[0]["name"]

    def encode(ids):
        out = model.run("encoder", {source_name: ids})
        values = [out[name] for name in encoder_outputs_spec]
        return values[0], values[1:]

    def step(token, states, encoder_outputs, mask):
        feeds = {step_inputs[0]: token, step_inputs[-2]: encoder_outputs,
                 step_inputs[-1]: mask}
        feeds.update(dict(zip(state_inputs, states, strict=True)))
        out = model.run("decoder_step", feeds)
        values = [out[name] for name in step_outputs]
        return values[0], values[1:-1], values[-1]

    return encode, step
