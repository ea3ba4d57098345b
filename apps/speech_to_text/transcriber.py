"""Speech to text on an export directory: audio → transcript, without TensorFlow.

    from apps.speech_to_text.transcriber import Transcriber
    transcriber = Transcriber("exported/speech_to_text", backend="onnx")
    transcriber.predict(["hello.wav"])             # any rate, mono/stereo, wav/flac/ogg
    transcriber.transcribe(waveform, sample_rate=44100)

Audio is read with soundfile, downmixed and resampled to the model's rate
(``rnnkit.runtime.audio``), cut into chunks of at most ``max_audio_seconds`` (the TFLite
model's fixed input length) at quiet points, and the chunks' transcripts are joined with a
space. Every setting comes from the manifest's ``SpeechSpec``; imports numpy, soundfile and
``rnnkit.runtime`` (ONNX Runtime / LiteRT) only.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apps.speech_to_text.spec import GRAPH, LENGTHS, WAVEFORM, SpeechSpec
from rnnkit.errors import ArtifactError
from rnnkit.runtime.audio import check_waveform, read_audio, resample, split_long_audio


def decode_ids(ids: Sequence[int], vocabulary: Sequence[str], blank_id: int) -> str:
    """Characters of CTC ids (blank and out-of-range ids dropped), spaces collapsed."""
    text = "".join(vocabulary[int(i)] for i in ids if int(i) != blank_id
                   and 0 <= int(i) < len(vocabulary))
    return " ".join(text.split())  # CTC may emit "space blank space": one space


def decode_log_probs(log_probs: np.ndarray, lengths: np.ndarray, vocabulary: Sequence[str],
                     blank_id: int, beam_width: int) -> list[str]:
    """CTC greedy (``beam_width`` 1) or prefix beam search over ``(B, T, C)`` log-probs."""
    from rnnkit.decoding import ctc_greedy_decode, ctc_prefix_beam_search

    lengths = np.minimum(np.asarray(lengths).reshape(-1), log_probs.shape[1])
    if beam_width <= 1:
        rows = ctc_greedy_decode(log_probs, lengths=lengths, blank_id=blank_id)
    else:
        rows = [ctc_prefix_beam_search(log_probs[row, :frames], beam_width=beam_width,
                                       blank_id=blank_id) if frames > 0 else []
                for row, frames in enumerate(lengths.tolist())]
    return [decode_ids(ids, vocabulary, blank_id) for ids in rows]


def pad_waveforms(waves: Sequence[np.ndarray], multiple: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad with zeros to a multiple of ``multiple`` samples → ``(B, N)`` float32 and
    lengths ``(B,)`` int32."""
    lengths = np.array([len(w) for w in waves], dtype=np.int32)
    width = int(math.ceil(max(1, int(lengths.max(initial=0))) / multiple) * multiple)
    batch = np.zeros((len(waves), width), dtype=np.float32)
    for row, wave in enumerate(waves):
        batch[row, :len(wave)] = wave
    return batch, lengths


class TranscriberBase:
    """Chunking, batching and decoding shared by the Keras and the runtime transcribers."""

    spec: SpeechSpec
    vocabulary: list[str]
    batch_size: int

    def run_batch(self, waveform: np.ndarray, lengths: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        """``(log_probs (B, T, C), logit_lengths (B,))`` of a padded batch."""
        raise NotImplementedError

    def _transcribe_chunks(self, waves: list[np.ndarray], beam_width: int) -> list[str]:
        texts = [""] * len(waves)
        order = sorted(range(len(waves)), key=lambda i: waves[i].size)
        for start in range(0, len(order), self.batch_size):
            group = [i for i in order[start:start + self.batch_size]
                     if waves[i].size >= self.spec.min_samples]
            if not group:
                continue
            waveform, lengths = pad_waveforms([waves[i] for i in group], self.spec.frame_step)
            log_probs, logit_lengths = self.run_batch(waveform, lengths)
            decoded = decode_log_probs(np.asarray(log_probs), np.asarray(logit_lengths),
                                       self.vocabulary, self.spec.blank_id, beam_width)
            for index, text in zip(group, decoded, strict=True):
                texts[index] = text
        return texts

    def transcribe_many(self, waveforms: Sequence[np.ndarray],
                        beam_width: int | None = None) -> list[str]:
        """Transcripts of float waveforms at the model's rate; long ones are chunked."""
        pieces, owners = [], []
        for index, waveform in enumerate(waveforms):
            chunks = split_long_audio(check_waveform(waveform), self.spec.max_samples,
                                      self.spec.sample_rate, self.spec.search_seconds)
            for chunk in chunks:
                if chunk.size:
                    pieces.append(chunk)
                    owners.append(index)
        texts = self._transcribe_chunks(pieces, beam_width or self.spec.beam_width)
        joined: list[list[str]] = [[] for _ in waveforms]
        for owner, text in zip(owners, texts, strict=True):
            if text:
                joined[owner].append(text)
        return [" ".join(parts) for parts in joined]

    def transcribe(self, waveform: np.ndarray, sample_rate: int | None = None) -> str:
        """Transcript of one waveform (float in [-1, 1] or PCM ints; any rate)."""
        waveform = check_waveform(waveform)
        if sample_rate is not None and int(sample_rate) != self.spec.sample_rate:
            waveform = resample(waveform, int(sample_rate), self.spec.sample_rate)
        return self.transcribe_many([waveform])[0]

    def predict(self, inputs: Sequence[str | os.PathLike | np.ndarray],
                beam_width: int | None = None) -> list[dict[str, Any]]:
        """``{"input", "transcript", "seconds"}`` per input: an audio file (UserError if
        unreadable) or a waveform at the model's rate."""
        waves, names = [], []
        for index, item in enumerate(inputs):
            if isinstance(item, np.ndarray):
                waves.append(check_waveform(item))
                names.append(f"waveform {index}")
            else:
                waves.append(read_audio(item, self.spec.sample_rate))
                names.append(str(item))
        texts = self.transcribe_many(waves, beam_width)
        return [{"input": name, "transcript": text,
                 "seconds": round(wave.size / self.spec.sample_rate, 3)}
                for name, wave, text in zip(names, waves, texts, strict=True)]


def read_vocabulary(path: Path) -> list[str]:
    try:
        vocabulary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"Cannot read the vocabulary {path}: {error}") from None
    if not isinstance(vocabulary, list) or not all(isinstance(c, str) for c in vocabulary):
        raise ArtifactError(f"{path} must hold a JSON list of strings")
    return vocabulary


class Transcriber(TranscriberBase):
    """Load once, transcribe many: an rnnkit speech_to_text export on ONNX Runtime or LiteRT.

    Args:
        export_dir: directory written by ``rnnkit speech_to_text export``.
        backend: ``"onnx"`` or ``"tflite"``.
        quantization: ``"none"``, ``"int8"``, ``"float16"`` (TFLite only).
        num_threads: runtime threads (None: the runtime's default).
    """

    def __init__(self, export_dir: str | os.PathLike, backend: str = "onnx",
                 quantization: str = "none", num_threads: int | None = None):
        from rnnkit import runtime

        self.export_dir = Path(export_dir)
        self.model = runtime.load(self.export_dir, backend=backend, quantization=quantization,
                                  num_threads=num_threads)
        manifest = self.model.manifest
        if manifest.get("app") != "speech_to_text":
            raise ArtifactError(f"{self.export_dir} is an export of app "
                                f"{manifest.get('app')!r}, not speech_to_text")
        self.spec = SpeechSpec.from_manifest(manifest, str(self.export_dir / "manifest.json"))
        self.vocabulary = read_vocabulary(self.export_dir / self.spec.vocabulary_file)
        self.batch_size = 1 if backend == "tflite" else 16  # TFLite: a fixed batch of 1

    def run_batch(self, waveform: np.ndarray, lengths: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        outputs = self.model.run(GRAPH, {WAVEFORM: waveform, LENGTHS: lengths})
        return outputs["log_probs"], outputs["logit_lengths"]
