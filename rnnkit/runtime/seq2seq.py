"""Encoder + step-decoder inference for any seq2seq app (numpy only; never TensorFlow).

A seq2seq model is two callables, whatever runs them (Keras in training, ONNX Runtime or
LiteRT through :func:`runtime_graphs` on an export directory):

* ``encode(inputs (B, ...)) -> (encoder_outputs (B, T, D), [state (B, ...), ...])``
* ``step(token int32 (N, 1), [state, ...], encoder_outputs (N, T, D), encoder_mask bool (N, T))
  -> (logits (N, V), [new_state, ...], attention (N, T))``

:class:`Seq2Seq` decodes a batch with greedy or beam search (``rnnkit.decoding``: scores are
log-softmax of the logits in float64, a row stops at ``end_id`` or after ``max_steps``
generated tokens) and, on request, the attention map of every generated token, obtained by
feeding the decoded ids back (``(len(ids) + 1, T)``: the last row is the step that emitted
the end token).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rnnkit.decoding import beam_search, greedy_search, tile_for_beam

EncodeFn = Callable[[np.ndarray], "tuple[np.ndarray, list[np.ndarray]]"]
StepFn = Callable[..., "tuple[np.ndarray, list[np.ndarray], np.ndarray]"]
ENCODER_GRAPH = "encoder"
STEP_GRAPH = "decoder_step"
METHODS = ("greedy", "beam")


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def runtime_graphs(model: Any, encoder: str = ENCODER_GRAPH,
                   step: str = STEP_GRAPH) -> tuple[EncodeFn, StepFn]:
    """``encode``/``step`` over an ``rnnkit.runtime.ExportedModel`` whose graphs follow the
    seq2seq naming: ``encoder`` (one input → ``encoder_outputs``, ``state_*``) and
    ``decoder_step`` (``token``, ``state_*``, ``encoder_outputs``, ``encoder_mask`` →
    ``logits``, ``new_state_*``, ``attention``)."""
    source = model.input_specs(encoder)[0]["name"]
    states = [s["name"] for s in model.input_specs(step) if s["name"].startswith("state_")]

    def encode(inputs: np.ndarray):
        out = model.run(encoder, {source: inputs})
        return out["encoder_outputs"], [out[name] for name in states]

    def decode_step(token, step_states, encoder_outputs, mask):
        feeds = {"token": np.asarray(token, dtype=np.int32), "encoder_outputs": encoder_outputs,
                 "encoder_mask": mask, **dict(zip(states, step_states, strict=True))}
        out = model.run(step, feeds)
        return out["logits"], [out[f"new_{name}"] for name in states], out["attention"]

    return encode, decode_step


class Seq2Seq:
    """Greedy / beam decoding over an ``encode`` and a ``step`` callable."""

    def __init__(self, encode: EncodeFn, step: StepFn):
        self.encode = encode
        self.step = step

    def decode(self, inputs: np.ndarray, mask: np.ndarray | None = None, *, start_id: int,
               end_id: int, max_steps: int, method: str = "greedy", beam_width: int = 4,
               length_penalty: float = 0.0, num_return: int = 1,
               with_attention: bool = False) -> list[dict[str, Any]]:
        """One dict per input row: ``ids`` (no start/end token), ``score`` (beam: the
        length-penalised log-probability; greedy: NaN), ``n_best`` (beam, ``num_return`` > 1:
        ``(ids, score)`` best first) and ``attention`` (with ``with_attention``).

        ``mask``: bool ``(B, T)`` over the encoder outputs (None: every position valid)."""
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {list(METHODS)}. Received: {method!r}")
        values, states = self.encode(inputs)
        values = np.asarray(values, dtype=np.float32)
        states = [np.asarray(s) for s in states]
        mask = np.ones(values.shape[:2], dtype=bool) if mask is None else np.asarray(mask, bool)
        width = int(beam_width) if method == "beam" else 1
        step_fn = self._search_step(values, mask, width)
        results: list[dict[str, Any]] = []
        if method == "greedy":
            for ids in greedy_search(step_fn, states, start_id, end_id, int(max_steps)):
                results.append({"ids": ids, "score": float("nan")})
        else:
            for hyps in beam_search(step_fn, states, start_id, end_id, int(max_steps),
                                    beam_width=width, length_penalty=length_penalty,
                                    num_return=num_return):
                item: dict[str, Any] = {"ids": list(hyps[0].ids), "score": float(hyps[0].score)}
                if num_return > 1:
                    item["n_best"] = [(list(h.ids), float(h.score)) for h in hyps]
                results.append(item)
        if with_attention:
            maps = self.forced_attention(values, mask, states, [r["ids"] for r in results],
                                         start_id, end_id)
            for item, weights in zip(results, maps, strict=True):
                item["attention"] = weights
        return results

    def _search_step(self, values: np.ndarray, mask: np.ndarray, width: int):
        if width > 1:
            values, mask = tile_for_beam(values, width), tile_for_beam(mask, width)

        def step_fn(tokens: np.ndarray, states: list[np.ndarray]):
            logits, new_states, _ = self.step(tokens.astype(np.int32).reshape(-1, 1), states,
                                              values, mask)
            return log_softmax(logits), list(new_states)

        return step_fn

    def forced_attention(self, values: np.ndarray, mask: np.ndarray,
                         states: Sequence[np.ndarray], sequences: Sequence[Sequence[int]],
                         start_id: int, end_id: int) -> list[np.ndarray]:
        """Attention ``(len(ids) + 1, T)`` of each decoded sequence, feeding it back."""
        length = max(len(s) for s in sequences) + 1
        tokens = np.full((len(sequences), length), end_id, dtype=np.int32)
        tokens[:, 0] = start_id
        for row, ids in enumerate(sequences):
            tokens[row, 1:len(ids) + 1] = ids
        current = [np.asarray(s) for s in states]
        maps = np.zeros((len(sequences), length, values.shape[1]), dtype=np.float32)
        for position in range(length):
            _, current, weights = self.step(tokens[:, position:position + 1], current, values,
                                            mask)
            maps[:, position] = weights
        return [maps[row, :len(ids) + 1] for row, ids in enumerate(sequences)]
