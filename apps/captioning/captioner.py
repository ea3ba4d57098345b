"""Image → caption with host-side beam search over an encoder and a decoder-step graph.

This module is TensorFlow-free (numpy, Pillow, ``rnnkit.decoding``, ``rnnkit.runtime``): a
service that installs only the runtime captions images with :class:`Captioner`::

    from apps.captioning.captioner import Captioner
    captioner = Captioner("exported/captioning", backend="onnx")   # or "tflite"
    captioner.caption(["scene.png"])  # [{"caption": "a small red circle on the left", ...}]

The same :func:`decode_captions` drives the Keras models in training/evaluation (the app wraps
them as the two callables below), so Keras, ONNX Runtime and LiteRT decode identically:

* ``encode(images float32 (B, H, W, 3)) → (encoder_outputs (B, T, D), [states...])``
* ``step(token int32 (N, 1), states, encoder_outputs (N, T, D), encoder_mask bool (N, T))
  → (logits (N, V), new_states, attention (N, T))``

Preprocessing is :func:`rnnkit.data.images.load_image` (any size/mode → RGB ``image_size``
square, ``resize_mode`` from the manifest), cast to float32 pixels 0..255, exactly as in
training.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.decoding import beam_search, greedy_search, tile_for_beam

EncodeFn = Callable[[np.ndarray], "tuple[np.ndarray, list[np.ndarray]]"]
StepFn = Callable[..., "tuple[np.ndarray, list[np.ndarray], np.ndarray]"]
PREPROCESSING_ASSET = "preprocessing.json"


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def decode_captions(
    encode: EncodeFn,
    step: StepFn,
    images: np.ndarray,
    *,
    start_id: int,
    end_id: int,
    max_length: int,
    beam_width: int = 3,
    length_penalty: float = 0.0,
    with_attention: bool = False,
    batch_size: int = 64,
) -> list[dict[str, Any]]:
    """Decode captions for ``images`` (``(B, H, W, 3)``): ids, score and (optionally) the
    attention map ``(len(ids) + 1, T)`` of every generated token (the end token last)."""
    results: list[dict[str, Any]] = []
    images = np.asarray(images, dtype=np.float32)
    for start in range(0, len(images), int(batch_size)):
        chunk = images[start:start + int(batch_size)]
        values, states = encode(chunk)
        values = np.asarray(values, dtype=np.float32)
        width = max(1, int(beam_width))
        tiled = tile_for_beam(values, width) if width > 1 else values
        mask = np.ones(tiled.shape[:2], dtype=bool)

        def step_fn(tokens, step_states, tiled=tiled, mask=mask):
            logits, new_states, _ = step(tokens.astype(np.int32).reshape(-1, 1), step_states,
                                         tiled, mask)
            return log_softmax(logits), new_states

        if width > 1:
            hypotheses = beam_search(step_fn, states, start_id, end_id, max_length,
                                     beam_width=width, length_penalty=length_penalty)
            decoded = [(list(h[0].ids), float(h[0].score)) for h in hypotheses]
        else:
            ids = greedy_search(step_fn, states, start_id, end_id, max_length)
            decoded = [(row, float("nan")) for row in ids]
        attention = (forced_attention(step, values, states, [d[0] for d in decoded],
                                      start_id, end_id) if with_attention else None)
        for index, (ids, score) in enumerate(decoded):
            item: dict[str, Any] = {"ids": ids, "score": score}
            if attention is not None:
                item["attention"] = attention[index]
            results.append(item)
    return results


def forced_attention(step: StepFn, values: np.ndarray, states: Sequence[np.ndarray],
                     sequences: Sequence[Sequence[int]], start_id: int,
                     end_id: int) -> list[np.ndarray]:
    """Attention maps ``(len(ids) + 1, T)`` obtained by feeding each decoded sequence back."""
    batch = len(sequences)
    length = max(len(s) for s in sequences) + 1
    inputs = np.full((batch, length), end_id, dtype=np.int32)
    inputs[:, 0] = start_id
    for row, ids in enumerate(sequences):
        inputs[row, 1:len(ids) + 1] = ids
    mask = np.ones(values.shape[:2], dtype=bool)
    current = [np.asarray(s) for s in states]
    maps = np.zeros((batch, length, values.shape[1]), dtype=np.float32)
    for position in range(length):
        _, current, weights = step(inputs[:, position:position + 1], current, values, mask)
        maps[:, position] = weights
    return [maps[row, :len(ids) + 1] for row, ids in enumerate(sequences)]


class Captioner:
    """Caption images with an exported captioning model (TensorFlow-free).

    Args:
        export_dir: an export directory of the captioning app (``encoder`` + ``decoder_step``).
        backend: ``"onnx"`` or ``"tflite"``; quantization: ``"none"``, ``"int8"``, ``"float16"``.
        beam_width, max_length, length_penalty: decoding (defaults from the manifest).
    """

    def __init__(self, export_dir: str | Path, backend: str = "onnx", quantization: str = "none",
                 beam_width: int | None = None, max_length: int | None = None,
                 length_penalty: float | None = None, num_threads: int | None = None):
        from rnnkit import runtime
        from rnnkit.errors import ArtifactError

        self.export_dir = Path(export_dir)
        self.model = runtime.load(self.export_dir, backend=backend, quantization=quantization,
                                  num_threads=num_threads)
        manifest = self.model.manifest
        if manifest.get("app") != "captioning" or set(self.model.graph_names) != {
                "encoder", "decoder_step"}:
            raise ArtifactError(f"{str(self.export_dir)!r} is not a captioning export (app="
                                f"{manifest.get('app')!r}, graphs={self.model.graph_names})")
        self.tokenizer = runtime.load_tokenizer(self.export_dir)
        self.preprocessing = json.loads(
            runtime.asset_path(self.export_dir, PREPROCESSING_ASSET).read_text())
        decoding = manifest.get("decoding", {})
        self.beam_width = int(beam_width or decoding.get("beam_width", 3))
        self.max_length = int(max_length or decoding.get("max_length", 40))
        self.length_penalty = float(decoding.get("length_penalty", 0.0)
                                    if length_penalty is None else length_penalty)
        self.state_names = [s["name"] for s in self.model.input_specs("decoder_step")
                            if s["name"].startswith("state_")]
        self.grid_size = tuple(self.preprocessing.get("grid_size", ()))

    # The two callables of decode_captions, on the runtime graphs.
    def encode(self, images: np.ndarray):
        out = self.model.run("encoder", {"image": np.asarray(images, dtype=np.float32)})
        return out["encoder_outputs"], [out[name] for name in self.state_names]

    def step(self, tokens, states, values, mask):
        feeds = {"token": tokens.astype(np.int32), "encoder_outputs": values,
                 "encoder_mask": mask}
        feeds.update(dict(zip(self.state_names, states, strict=True)))
        out = self.model.run("decoder_step", feeds)
        new_states = [out[f"new_{name}"] for name in self.state_names]
        return out["logits"], new_states, out["attention"]

    def preprocess(self, images: Sequence[Any]) -> np.ndarray:
        """Paths / bytes / PIL images / uint8 arrays → float32 ``(B, H, W, 3)`` pixels."""
        from rnnkit.data.images import load_image

        size = int(self.preprocessing["image_size"])
        batch = []
        for image in images:
            if isinstance(image, np.ndarray) and image.shape == (size, size, 3):
                batch.append(image.astype(np.uint8, copy=False))
            else:
                batch.append(load_image(image, size,
                                        resize_mode=self.preprocessing.get("resize_mode",
                                                                           "stretch")))
        return np.stack(batch).astype(np.float32)

    def caption(self, images: Sequence[Any], with_attention: bool = False,
                beam_width: int | None = None) -> list[dict[str, Any]]:
        """Captions of ``images`` (paths, bytes, PIL images or uint8 ``(H, W, 3)`` arrays)."""
        results = decode_captions(
            self.encode, self.step, self.preprocess(images), start_id=self.tokenizer.start_id,
            end_id=self.tokenizer.end_id, max_length=self.max_length,
            beam_width=beam_width or self.beam_width, length_penalty=self.length_penalty,
            with_attention=with_attention)
        for item in results:
            item["caption"] = self.tokenizer.decode(item["ids"])
        return results
