"""Image → caption over an encoder + decoder-step pair, without TensorFlow.

:class:`CaptionDecoder` drives any two seq2seq callables (``rnnkit.runtime.seq2seq``): the
Keras models in training and evaluation, ONNX Runtime or LiteRT in :class:`Captioner`, which
reads only the export's ``CaptioningSpec``::

    from apps.captioning.captioner import Captioner
    captioner = Captioner("exported/captioning", backend="onnx")   # or "tflite"
    captioner.predict(["scene.png"])  # [{"input": "scene.png", "caption": "...", ...}]

Preprocessing is :func:`rnnkit.data.images.load_image` (any size/mode → RGB ``image_size``
square, ``resize_mode`` from the spec), cast to float32 pixels 0..255, exactly as in training.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apps.captioning.spec import CaptioningSpec
from rnnkit.runtime.seq2seq import EncodeFn, Seq2Seq, StepFn, runtime_graphs


class CaptionDecoder:
    """Captions of images with an ``encode`` and a ``step`` callable."""

    def __init__(self, encode: EncodeFn, step: StepFn, tokenizer: Any, *, image_size: int,
                 resize_mode: str, grid_size: Sequence[int], beam_width: int, max_length: int,
                 length_penalty: float, start_id: int, end_id: int, batch_size: int = 64):
        self.seq2seq = Seq2Seq(encode, step)
        self.tokenizer = tokenizer
        self.image_size, self.resize_mode = int(image_size), resize_mode
        self.grid_size = tuple(grid_size)
        self.beam_width, self.max_length = int(beam_width), int(max_length)
        self.length_penalty = float(length_penalty)
        self.start_id, self.end_id = int(start_id), int(end_id)
        self.batch_size = int(batch_size)

    def preprocess(self, images: Sequence[Any]) -> np.ndarray:
        """Paths / bytes / PIL images / uint8 arrays → float32 ``(B, H, W, 3)`` pixels."""
        from rnnkit.data.images import load_image

        size = self.image_size
        batch = [image.astype(np.uint8, copy=False)
                 if isinstance(image, np.ndarray) and image.shape == (size, size, 3)
                 else load_image(image, size, resize_mode=self.resize_mode) for image in images]
        return np.stack(batch).astype(np.float32)

    def caption(self, images: Sequence[Any], with_attention: bool = False,
                beam_width: int | None = None) -> list[dict[str, Any]]:
        """``ids``, ``caption``, ``score`` (NaN for greedy) and, with ``with_attention``, the
        attention ``(len(ids) + 1, T)`` of each image; beam search when the width is > 1."""
        width = int(beam_width or self.beam_width)
        pixels = self.preprocess(images)
        results: list[dict[str, Any]] = []
        for start in range(0, len(pixels), self.batch_size):
            results += self.seq2seq.decode(
                pixels[start:start + self.batch_size], start_id=self.start_id,
                end_id=self.end_id, max_steps=self.max_length,
                method="beam" if width > 1 else "greedy", beam_width=width,
                length_penalty=self.length_penalty, with_attention=with_attention)
        for item in results:
            item["caption"] = self.tokenizer.decode(item["ids"])
        return results

    def predict(self, inputs: Sequence[Any], beam_width: int | None = None,
                explain: bool = False) -> list[dict[str, Any]]:
        """The app's predict results: ``caption`` (+ beam ``score``; with ``explain`` the grid
        cell each word attended to most, ``word@r<row>c<column>(<weight>)``)."""
        output = []
        columns = self.grid_size[1]
        for source, item in zip(inputs, self.caption(inputs, explain, beam_width), strict=True):
            entry: dict[str, Any] = {"input": str(source) if not isinstance(source, np.ndarray)
                                     else "array", "caption": item["caption"]}
            if not math.isnan(item["score"]):
                entry["score"] = item["score"]
            if explain:
                where = []
                for index, token_id in enumerate(item["ids"]):
                    weights = item["attention"][index]
                    cell = int(np.argmax(weights))
                    where.append(f"{self.tokenizer.id_to_token(token_id)}@r{cell // columns}"
                                 f"c{cell % columns}({float(np.max(weights)):.2f})")
                entry["attention"] = " ".join(where)
            output.append(entry)
        return output


class Captioner(CaptionDecoder):
    """Caption images with an exported captioning model (ONNX Runtime or LiteRT)."""

    def __init__(self, export_dir: str | os.PathLike, backend: str = "onnx",
                 quantization: str = "none", num_threads: int | None = None):
        from rnnkit import runtime

        self.export_dir = Path(export_dir)
        self.model = runtime.load(self.export_dir, backend=backend, quantization=quantization,
                                  num_threads=num_threads)
        self.spec = CaptioningSpec.from_manifest(self.model.manifest,
                                                 str(self.export_dir / "manifest.json"))
        spec = self.spec
        super().__init__(
            *runtime_graphs(self.model),
            runtime.load_tokenizer(self.export_dir, Path(spec.tokenizer_file).name),
            image_size=spec.image_size, resize_mode=spec.resize_mode, grid_size=spec.grid_size,
            beam_width=spec.beam_width, max_length=spec.max_length,
            length_penalty=spec.length_penalty, start_id=spec.start_id, end_id=spec.end_id)
