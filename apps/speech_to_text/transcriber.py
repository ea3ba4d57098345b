"""TF-free transcriber: an export directory on ONNX Runtime or LiteRT → text.

    from apps.speech_to_text.transcriber import Transcriber
    transcriber = Transcriber("exported/speech_to_text", backend="onnx")
    transcriber.transcribe_file("hello.wav")       # any rate, mono/stereo, wav/flac/ogg
    transcriber.transcribe(waveform, sample_rate=44100)

Audio is read with soundfile, downmixed, resampled to the model's rate with the numpy
resampler of `rnnkit.data.audio`, and cut into chunks of at most `max_audio_seconds` (the
TFLite model's fixed input length) at the quietest 10 ms within the last 2 s of each chunk;
the chunks' transcripts are joined with a space. Imports numpy, soundfile, onnxruntime or
ai-edge-litert only (never TensorFlow).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rnnkit.data.audio import check_waveform, read_audio, resample, split_long_audio
from rnnkit.errors import ArtifactError, UserError

from .data import decode_ids, pad_batch

# Waveforms with fewer samples than this give an empty transcript (shorter than one
# subsampled frame: nothing to recognise).
MIN_SAMPLES = 400


def chunk_waveform(waveform: np.ndarray, max_samples: int, sample_rate: int) -> list[np.ndarray]:
    """The chunking rule shared by the Keras, ONNX and TFLite paths."""
    return [c for c in split_long_audio(waveform, max_samples, sample_rate) if c.size]


def decode_batch(log_probs: np.ndarray, lengths: np.ndarray, vocabulary, beam_width: int = 1
                 ) -> list[str]:
    from rnnkit.decoding import ctc_greedy_decode, ctc_prefix_beam_search

    lengths = np.asarray(lengths).reshape(-1)
    if beam_width <= 1:
        return [decode_ids(ids, vocabulary)
                for ids in ctc_greedy_decode(log_probs, lengths=lengths, blank_id=0)]
    texts = []
    for row in range(log_probs.shape[0]):
        frames = int(min(lengths[row], log_probs.shape[1]))
        if frames <= 0:
            texts.append("")
            continue
        hypotheses = ctc_prefix_beam_search(log_probs[row, :frames], beam_width=beam_width,
                                            blank_id=0)
        best = hypotheses[0] if isinstance(hypotheses, list | tuple) else hypotheses
        texts.append(decode_ids(getattr(best, "ids", best), vocabulary))
    return texts


class Transcriber:
    """Speech-to-text on an rnnkit export directory (no TensorFlow).

    Args:
        export_dir: directory written by `rnnkit speech_to_text export`.
        backend: `"onnx"` or `"tflite"`.
        quantization: `"none"`, `"int8"`, `"float16"` (TFLite only).
        beam_width: 1 for CTC greedy decoding, more for CTC prefix beam search
            (default: the manifest's).
        num_threads: runtime threads (None: the runtime's default).
    """

    def __init__(self, export_dir: str | Path, backend: str = "onnx", quantization: str = "none",
                 beam_width: int | None = None, num_threads: int | None = None):
        from rnnkit import runtime

        self.export_dir = Path(export_dir)
        self.model = runtime.load(self.export_dir, backend=backend, quantization=quantization,
                                  num_threads=num_threads)
        manifest = self.model.manifest
        if manifest.get("app") not in (None, "speech_to_text"):
            raise ArtifactError(
                f"{self.export_dir} is an export of app {manifest.get('app')!r}, not speech_to_text"
            )
        self.backend = backend
        features = manifest.get("features") or {}
        self.sample_rate = int(features.get("sample_rate", 16000))
        self.frame_step = int(features.get("frame_step", 160))
        vocabulary_path = self.export_dir / "assets" / "vocabulary.json"
        try:
            self.vocabulary = json.loads(vocabulary_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ArtifactError(f"Cannot read the vocabulary {vocabulary_path}: {error}") from None
        self.beam_width = int(beam_width if beam_width else manifest.get("beam_width", 1))
        seconds = float(manifest.get("max_audio_seconds", 20.0))
        self.max_samples = int(seconds * self.sample_rate)
        if backend == "tflite":
            fixed = manifest["graphs"]["model"].get("tflite", {}).get("inputs", {}).get("waveform")
            if fixed:
                self.max_samples = int(fixed[1])
        self.batch_size = 1 if backend == "tflite" else 16

    def _run(self, waves: list[np.ndarray]) -> list[str]:
        texts = [""] * len(waves)
        order = sorted(range(len(waves)), key=lambda i: waves[i].size)
        for start in range(0, len(order), self.batch_size):
            group = [i for i in order[start:start + self.batch_size] if waves[i].size >= MIN_SAMPLES]
            if not group:
                continue
            waveform, lengths = pad_batch([waves[i] for i in group], multiple=self.frame_step)
            outputs = self.model.run("model", {"waveform": waveform, "lengths": lengths})
            decoded = decode_batch(outputs["log_probs"], outputs["logit_lengths"],
                                   self.vocabulary, self.beam_width)
            for index, text in zip(group, decoded, strict=False):
                texts[index] = text
        return texts

    def transcribe_many(self, waveforms: list[np.ndarray]) -> list[str]:
        """Transcripts of 16 kHz (model-rate) float waveforms; long ones are chunked."""
        pieces, owners = [], []
        for index, waveform in enumerate(waveforms):
            waveform = check_waveform(waveform)
            for chunk in chunk_waveform(waveform, self.max_samples, self.sample_rate):
                pieces.append(chunk)
                owners.append(index)
        texts = self._run(pieces)
        joined: list[list[str]] = [[] for _ in waveforms]
        for owner, text in zip(owners, texts, strict=False):
            if text:
                joined[owner].append(text)
        return [" ".join(parts) for parts in joined]

    def transcribe(self, waveform: np.ndarray, sample_rate: int | None = None) -> str:
        """Transcript of one waveform (float in [-1, 1] or PCM ints; any rate)."""
        waveform = check_waveform(waveform)
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            waveform = resample(waveform, int(sample_rate), self.sample_rate)
        return self.transcribe_many([waveform])[0]

    def transcribe_file(self, path: str | Path) -> dict:
        """`{"input", "transcript", "seconds"}` for one audio file (UserError if unreadable)."""
        waveform = read_audio(path, self.sample_rate)
        return {"input": str(path), "transcript": self.transcribe_many([waveform])[0],
                "seconds": round(waveform.size / self.sample_rate, 3)}


def transcribe_files(export_dir: str | Path, paths, backend: str = "onnx",
                     quantization: str = "none", beam_width: int | None = None) -> list[dict]:
    transcriber = Transcriber(export_dir, backend, quantization, beam_width)
    if not paths:
        raise UserError("predict needs at least one audio file")
    return [transcriber.transcribe_file(path) for path in paths]
