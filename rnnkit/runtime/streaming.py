"""Streaming step graphs on an export directory, numpy + ONNX Runtime / LiteRT only (TF-free).

A step graph processes one fixed-size chunk of a stream. It holds no state itself: every
state it needs (recurrent states, the left context of convolutions or of audio framing) is
an input, and its next value is an output. The manifest's ``streaming`` section names them:

    "streaming": {
      "graph": "stream_step",              # the step graph
      "chunk_input": "audio_chunk",         # (1, chunk_samples) float32
      "chunk_samples": 2880,
      "outputs": ["log_probs"],             # per-chunk results
      "states": [{"input": "state_0", "output": "next_state_0",
                  "shape": [1, 128], "dtype": "float32"}, ...]   # all start at zeros
    }

    from rnnkit import runtime
    from rnnkit.runtime.streaming import StepRunner, rechunk
    step = StepRunner(runtime.load("exported/x", backend="tflite"))
    for chunk, valid in rechunk(chunks_of_any_size, step.chunk_samples):
        outputs = step(chunk)              # states carried over to the next call
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from rnnkit.errors import ArtifactError, UserError


def rechunk(chunks: Iterable[np.ndarray], size: int) -> Iterator[tuple[np.ndarray, int]]:
    """Re-cut a stream of 1-D arrays of any sizes into chunks of exactly ``size`` samples.

    Yields ``(chunk, valid)``: every chunk but the last is full (``valid == size``); the last
    (when the stream does not end on a chunk boundary) is right-padded with zeros and
    ``valid`` says how many of its samples are real. An empty stream yields nothing.
    """
    if size < 1:
        raise ValueError(f"`size` must be >= 1. Received: size={size}")
    pending: list[np.ndarray] = []
    held = 0
    for index, piece in enumerate(chunks):
        piece = np.asarray(piece, dtype=np.float32)
        if piece.ndim != 1:
            raise UserError(f"stream chunk {index} must be 1-D samples. Received: shape="
                            f"{piece.shape}")
        if not piece.size:
            continue
        pending.append(piece)
        held += piece.size
        if held < size:
            continue
        joined = np.concatenate(pending)
        whole = (joined.size // size) * size
        for start in range(0, whole, size):
            yield joined[start:start + size], size
        rest = joined[whole:]
        pending, held = ([rest] if rest.size else []), rest.size
    if held:
        last = np.zeros(size, np.float32)
        joined = np.concatenate(pending)
        last[:joined.size] = joined
        yield last, int(joined.size)


def streaming_section(manifest: dict[str, Any], source: str = "manifest.json") -> dict[str, Any]:
    """The manifest's ``streaming`` section (an ArtifactError naming what is missing)."""
    section = manifest.get("streaming")
    if not isinstance(section, dict):
        raise ArtifactError(
            f"{source} has no `streaming` section: this export has no streaming step graph "
            "(train with `--set streaming=true` and export again)")
    for key in ("graph", "chunk_input", "chunk_samples", "outputs", "states"):
        if key not in section:
            raise ArtifactError(f"{source}: `streaming.{key}` is missing")
    if section["graph"] not in manifest.get("graphs", {}):
        raise ArtifactError(f"{source}: `streaming.graph` names {section['graph']!r}, which is "
                            f"not among the graphs {sorted(manifest.get('graphs', {}))}")
    return section


class StepRunner:
    """Runs an export's streaming step graph chunk after chunk, carrying its states.

    Args:
        model: an ``ExportedModel`` (``rnnkit.runtime.load``) whose manifest has a
            ``streaming`` section.
    """

    def __init__(self, model: Any):
        self.model = model
        self.section = streaming_section(model.manifest, str(model.export_dir / "manifest.json"))
        self.graph = self.section["graph"]
        self.chunk_input = self.section["chunk_input"]
        self.chunk_samples = int(self.section["chunk_samples"])
        self.outputs = list(self.section["outputs"])
        self.states: dict[str, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        """Back to the start of a stream (every state zero)."""
        self.states = {state["input"]: np.zeros(state["shape"], dtype=state["dtype"])
                       for state in self.section["states"]}

    def __call__(self, chunk: np.ndarray) -> dict[str, np.ndarray]:
        """The step's outputs for one chunk of ``chunk_samples`` samples (states advanced)."""
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if chunk.size != self.chunk_samples:
            raise UserError(f"A stream chunk must hold {self.chunk_samples} samples. "
                            f"Received: {chunk.size} (use rechunk)")
        results = self.model.run(self.graph, {self.chunk_input: chunk[None, :], **self.states})
        for state in self.section["states"]:
            self.states[state["input"]] = np.asarray(results[state["output"]])
        return {name: np.asarray(results[name]) for name in self.outputs}
