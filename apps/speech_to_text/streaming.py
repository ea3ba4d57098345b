"""Streaming speech to text without TensorFlow: partial transcripts with word timestamps.

    from apps.speech_to_text.streaming import StreamingTranscriber
    stream = StreamingTranscriber("runs/stream/export", backend="tflite", quantization="int8")
    for result in stream.stream("talk.wav"):          # or any iterator of sample chunks
        print(result.text, result.final)
    stream.stream_all(chunks).words                    # [Word("seven", 0.42, 0.75), ...]

An export of a model trained with ``--set streaming=true`` holds, beside its whole-utterance
graph ``model``, a step graph ``stream_step``: one fixed-size audio chunk (``chunk_samples``,
about 160 ms) plus the frontend's and convolutions' left context and the recurrent states in,
the chunk's CTC log-probabilities plus the next context and states out (manifest
``streaming``). The transcriber re-cuts any chunk sizes to that size, runs the step, decodes
greedily (blank and repeats collapsed across chunk boundaries) and yields a result each time
the transcript grows, then a final one. Causal framing and causal convolutions make the
streamed log-probabilities those of the whole-utterance graph, so the final transcript equals
the offline greedy transcript of the same export (tested on held-out utterances).

The geometry and state layout of the step graph (:func:`stream_geometry`,
:func:`state_layout`) are defined here, TF-free, and the Keras step model
(``apps.speech_to_text.stream_model``) and the manifest follow them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.errors import UserError
from rnnkit.runtime.audio import check_waveform, read_audio
from rnnkit.runtime.streaming import StepRunner, rechunk

STEP_GRAPH = "stream_step"
AUDIO_CHUNK = "audio_chunk"
LOG_PROBS = "log_probs"


# ---------------------------------------------------------------------------------------------
# geometry and state layout (shared by the Keras step model, the export and the runtime)


@dataclass(frozen=True)
class StreamGeometry:
    """Sizes of one streaming step of a model config."""

    sample_rate: int
    frame_step: int  # samples per log-mel frame
    subsampling: int  # product of the conv strides: log-mel frames per output frame
    chunk_frames: int  # log-mel frames per chunk (a multiple of `subsampling`)
    frontend_context: int  # samples of the previous chunk the framing needs

    @property
    def chunk_samples(self) -> int:
        return self.chunk_frames * self.frame_step

    @property
    def output_frames(self) -> int:
        return self.chunk_frames // self.subsampling

    @property
    def frame_seconds(self) -> float:
        """Seconds per output (CTC) frame."""
        return self.frame_step * self.subsampling / self.sample_rate


def stream_geometry(config) -> StreamGeometry:
    """Chunk of ``stream_chunk_ms`` rounded up to whole output frames."""
    if config.stream_chunk_ms < 1:
        raise UserError(f"`stream_chunk_ms` must be >= 1. Received: {config.stream_chunk_ms}")
    subsampling = math.prod(config.conv_strides)
    frames = config.stream_chunk_ms * config.sample_rate / 1000 / config.frame_step
    chunk_frames = int(math.ceil(frames / subsampling - 1e-9)) * subsampling
    return StreamGeometry(config.sample_rate, config.frame_step, subsampling, chunk_frames,
                          config.frame_length - config.frame_step)


def state_layout(config) -> list[dict[str, Any]]:
    """The step graph's carried tensors, in input order after the audio chunk: name of the
    input, of the output giving its next value, shape, dtype and what it holds. All start at
    zero."""
    geometry = stream_geometry(config)
    states = [{"input": "frontend_context", "output": "next_frontend_context",
               "shape": [1, geometry.frontend_context], "dtype": "float32",
               "holds": "the last frame_length - frame_step samples of the audio so far"}]
    width = config.num_mel_bins
    for index, (filters, kernel) in enumerate(zip(config.conv_filters, config.conv_kernel_sizes,
                                                  strict=True)):
        if kernel > 1:
            states.append({"input": f"conv_context_{index}",
                           "output": f"next_conv_context_{index}",
                           "shape": [1, kernel - 1, width], "dtype": "float32",
                           "holds": f"the last {kernel - 1} input frames of conv_{index}"})
        width = filters
    parts = ("h", "c") if config.rnn_kind == "lstm" else ("h",)
    for layer in range(config.num_layers):
        for part in parts:
            suffix = f"{layer}_{part}" if len(parts) > 1 else f"{layer}"
            states.append({"input": f"state_{suffix}", "output": f"next_state_{suffix}",
                           "shape": [1, config.units], "dtype": "float32",
                           "holds": f"{config.rnn_kind} layer {layer} state {part}"})
    return states


def streaming_manifest(config) -> dict[str, Any]:
    """The manifest's ``streaming`` section for a model of ``config``."""
    geometry = stream_geometry(config)
    return {
        "graph": STEP_GRAPH,
        "offline_graph": "model",
        "chunk_input": AUDIO_CHUNK,
        "chunk_samples": geometry.chunk_samples,
        "chunk_seconds": geometry.chunk_samples / geometry.sample_rate,
        "outputs": [LOG_PROBS],
        "frames_per_chunk": geometry.output_frames,
        "frame_seconds": geometry.frame_seconds,
        "states": state_layout(config),
        "rule": (
            "feed the audio in chunks of chunk_samples (the last one right-padded with zeros), "
            "every state starting at zeros and each next_* output fed back as its input; the "
            "log_probs of the chunks, concatenated and cut to the whole-utterance graph's "
            "logit_lengths, are that graph's log_probs (causal framing and convolutions)"),
    }


# ---------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds: the first character's CTC frame
    end: float  # seconds: the end of the last character's CTC frame


@dataclass(frozen=True)
class StreamResult:
    text: str
    words: list[Word] = field(default_factory=list)
    seconds: float = 0.0  # audio consumed so far
    final: bool = False


class GreedyCTCStream:
    """Incremental greedy CTC over frames of log-probs, with each character's frame."""

    def __init__(self, vocabulary: list[str], blank_id: int, frame_seconds: float):
        self.vocabulary, self.blank_id, self.frame_seconds = vocabulary, blank_id, frame_seconds
        self.previous = blank_id
        self.frames = 0
        self.chars: list[tuple[str, int]] = []  # (character, frame index)

    def push(self, log_probs: np.ndarray) -> None:
        """Frames ``(T, C)``."""
        for token in np.argmax(log_probs, axis=-1).tolist():
            if token != self.blank_id and token != self.previous \
                    and 0 <= token < len(self.vocabulary):
                self.chars.append((self.vocabulary[token], self.frames))
            self.previous = token
            self.frames += 1

    def words(self) -> list[Word]:
        words, current = [], []
        for char, frame in [*self.chars, (" ", -1)]:
            if char.isspace():
                if current:
                    words.append(Word("".join(c for c, _ in current),
                                      round(current[0][1] * self.frame_seconds, 3),
                                      round((current[-1][1] + 1) * self.frame_seconds, 3)))
                current = []
            else:
                current.append((char, frame))
        return words

    def text(self) -> str:
        return " ".join("".join(c for c, _ in self.chars).split())


# ---------------------------------------------------------------------------------------------
# the transcriber


class StreamingTranscriber:
    """Load once, stream many: an rnnkit streaming speech_to_text export on ONNX Runtime or
    LiteRT.

    Args:
        export_dir: export of a run trained with ``--set streaming=true``.
        backend: ``"onnx"`` or ``"tflite"``.
        quantization: ``"none"``, ``"int8"``, ``"float16"`` (float16 weights).
        num_threads: runtime threads (None: the runtime's default).
    """

    def __init__(self, export_dir: str | os.PathLike, backend: str = "onnx",
                 quantization: str = "none", num_threads: int | None = None):
        from apps.speech_to_text.transcriber import load_speech_export

        self.export_dir = Path(export_dir)
        self.model, self.spec, self.vocabulary = load_speech_export(
            self.export_dir, backend, quantization, num_threads)
        self.step = StepRunner(self.model)
        self.frames_per_chunk = int(self.step.section["frames_per_chunk"])
        self.frame_seconds = float(self.step.section["frame_seconds"])
        self.subsampling = int(round(self.frame_seconds * self.spec.sample_rate
                                     / self.spec.frame_step))

    @property
    def chunk_samples(self) -> int:
        return self.step.chunk_samples

    def _valid_frames(self, samples: int) -> int:
        """CTC frames of ``samples`` of audio, as the whole-utterance graph counts them."""
        return -(-(samples // self.spec.frame_step) // self.subsampling)

    def stream(self, audio: str | os.PathLike | np.ndarray | Iterable[np.ndarray],
               sample_rate: int | None = None) -> Iterator[StreamResult]:
        """Partial results (each time the transcript changes) and a final one.

        ``audio``: an audio file (read and resampled to the model's rate), one waveform, or
        any iterable of sample chunks of any sizes (float in [-1, 1] or PCM ints) at
        ``sample_rate`` (must be the model's rate, which is the default).
        """
        if isinstance(audio, (str, os.PathLike)):
            waveform = read_audio(audio, self.spec.sample_rate)
            chunks: Iterable[np.ndarray] = (waveform[i:i + self.chunk_samples]
                                            for i in range(0, waveform.size, self.chunk_samples))
        else:
            if sample_rate is not None and int(sample_rate) != self.spec.sample_rate:
                raise UserError(f"Streamed audio must be at the model's rate "
                                f"{self.spec.sample_rate} Hz. Received: sample_rate="
                                f"{sample_rate} (resample it first, or pass a file)")
            chunks = [audio] if isinstance(audio, np.ndarray) else audio
        self.step.reset()
        decoder = GreedyCTCStream(self.vocabulary, self.spec.blank_id, self.frame_seconds)
        samples, text = 0, ""
        for chunk, valid in rechunk((check_waveform(c, "stream chunk") for c in chunks),
                                    self.chunk_samples):
            log_probs = self.step(chunk)[LOG_PROBS][0]
            samples += valid
            keep = self._valid_frames(samples) - decoder.frames
            decoder.push(log_probs[:max(0, min(keep, log_probs.shape[0]))])
            if decoder.text() != text:
                text = decoder.text()
                yield StreamResult(text, decoder.words(), samples / self.spec.sample_rate)
        if samples < self.spec.min_samples:  # as the offline transcriber: too short, no text
            yield StreamResult("", [], samples / self.spec.sample_rate, final=True)
            return
        yield StreamResult(decoder.text(), decoder.words(), samples / self.spec.sample_rate,
                           final=True)

    def stream_all(self, audio, sample_rate: int | None = None) -> StreamResult:
        """The final result of :meth:`stream`."""
        *_, final = self.stream(audio, sample_rate)
        return final


def stream_predict(export_dir: str | os.PathLike, inputs: Iterable[str | os.PathLike],
                   options: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """``rnnkit speech_to_text predict EXPORT_DIR a.wav --stream``: for each audio file, one
    ``{"input", "partial", "seconds"}`` per transcript update, then ``{"input", "transcript",
    "seconds", "words"}`` (words as ``"text@start-end"`` seconds)."""
    options = {k: v for k, v in dict(options or {}).items() if v is not None}
    backend = options.pop("backend", "onnx")
    if backend == "keras":
        raise UserError("--stream runs an export's step graph: use --backend onnx or tflite "
                        "with an export directory. Received: --backend keras")
    if options.get("beam_width", 1) > 1:
        raise UserError("--stream decodes greedily. Received: --beam-width "
                        f"{options['beam_width']} (allowed: 1)")
    closed = sorted(k for k in ("vocabulary", "lm", "lm_weight", "word_bonus") if k in options)
    if closed:
        raise UserError("--stream decodes greedily, without a vocabulary or language model. "
                        f"Received: {', '.join('--' + k.replace('_', '-') for k in closed)}")
    if not (Path(export_dir) / "manifest.json").is_file():
        raise UserError(f"--stream needs an export directory (with manifest.json). "
                        f"Received: {export_dir}")
    transcriber = StreamingTranscriber(export_dir, backend, options.get("quantization", "none"),
                                       options.get("threads"))
    for item in inputs:
        for result in transcriber.stream(item):
            if result.final:
                yield {"input": str(item), "transcript": result.text,
                       "seconds": round(result.seconds, 3),
                       "words": " ".join(f"{w.text}@{w.start:.2f}-{w.end:.2f}"
                                         for w in result.words)}
            else:
                yield {"input": str(item), "partial": result.text,
                       "seconds": round(result.seconds, 3)}
