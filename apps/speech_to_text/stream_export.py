"""Export of a ``streaming=true`` speech_to_text model: the step graph beside the offline one.

:func:`add_step_graph` extends the app's ``ExportPlan``: graph ``stream_step`` (fixed shapes,
batch 1, in every format and quantization), its parity vs Keras on a real chunk with
non-zero states, the manifest's ``streaming`` section, and at finalize the share of held-out
utterances whose streamed transcript (``StreamingTranscriber``) equals the offline one
(``Transcriber``) in every runtime variant (``manifest["streaming"]["agreement"]``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from apps.speech_to_text.streaming import (
    AUDIO_CHUNK,
    STEP_GRAPH,
    StreamingTranscriber,
    state_layout,
    stream_geometry,
    streaming_manifest,
)
from apps.speech_to_text.transcriber import Transcriber
from rnnkit.runtime import runtime_variants
from rnnkit.task import ExportPlan, variant_key

STREAM_AGREEMENT_UTTERANCES = 32


def _parity_feeds(step, config, waveform: np.ndarray) -> dict[str, np.ndarray]:
    """The step's inputs at the second chunk of ``waveform`` after one real step from zeros
    (so contexts and states are the ones a stream produces)."""
    geometry = stream_geometry(config)
    size = geometry.chunk_samples
    audio = np.zeros(2 * size, np.float32)
    audio[:min(audio.size, waveform.size)] = waveform[:audio.size]
    layout = state_layout(config)
    feeds = {AUDIO_CHUNK: audio[None, :size],
             **{s["input"]: np.zeros(s["shape"], np.float32) for s in layout}}
    outputs = step([feeds[AUDIO_CHUNK], *(feeds[s["input"]] for s in layout)])
    return {AUDIO_CHUNK: audio[None, size:],
            **{s["input"]: np.asarray(v) for s, v in zip(layout, outputs[1:], strict=True)}}


def stream_agreement(staging: Path, manifest: dict[str, Any], waves: list[np.ndarray]
                     ) -> dict[str, Any]:
    """Per runtime variant: utterances whose streamed transcript equals the offline one."""
    result = {}
    for backend, quantization in runtime_variants(manifest):
        offline = Transcriber(staging, backend, quantization).transcribe_many(waves)
        stream = StreamingTranscriber(staging, backend, quantization)
        streamed = [stream.stream_all(wave).text for wave in waves]
        result[variant_key(backend, quantization)] = sum(
            a == b for a, b in zip(streamed, offline, strict=True)) / max(1, len(waves))
    return {"compared": "transcript (streamed vs offline greedy, same variant)",
            "utterances": len(waves), "equal": result}


def add_step_graph(plan: ExportPlan, model, config, waves: list[np.ndarray]) -> ExportPlan:
    """``plan`` with the step graph of ``model`` (the clean inference model) added."""
    from apps.speech_to_text.stream_model import build_step_model, copy_weights

    step = copy_weights(model, build_step_model(dataclasses.replace(config, dropout_rate=0.0)))
    shapes = {AUDIO_CHUNK: (1, stream_geometry(config).chunk_samples),
              **{s["input"]: tuple(s["shape"]) for s in state_layout(config)}}
    longest = max(waves, key=len)
    sample = waves[:STREAM_AGREEMENT_UTTERANCES]
    previous = plan.finalize

    def finalize(staging: Path, manifest: dict[str, Any]) -> None:
        if previous is not None:
            previous(staging, manifest)
        manifest["streaming"]["agreement"] = stream_agreement(staging, manifest, sample)

    return dataclasses.replace(
        plan,
        models={**plan.models, STEP_GRAPH: step},
        tflite_shapes={**plan.tflite_shapes, STEP_GRAPH: shapes},
        parity_inputs={**plan.parity_inputs,
                       STEP_GRAPH: [_parity_feeds(step, config, longest)]},
        manifest_extra={**plan.manifest_extra, "streaming": streaming_manifest(config)},
        quantize_exclude={**(plan.quantize_exclude or {}), STEP_GRAPH: ("frontend",)},
        finalize=finalize)
