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

Closed-vocabulary decoding (the same on every backend: it runs on the log-probabilities):

    transcriber = Transcriber("exported/speech_to_text", vocabulary=["yes", "no", "stop"])
    transcriber.predict(["clip.wav"], vocabulary="words.txt", lm="corpus.txt", lm_weight=0.5)

``vocabulary`` is a list of words or a text file of words (whitespace-separated); ``lm`` a
text file (one sentence per line) for a word trigram model (``rnnkit.decoding.lm``) weighted
by ``lm_weight``, plus ``word_bonus`` per word. An ``lm`` without a ``vocabulary`` allows the
words of the LM text.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from apps.speech_to_text.spec import GRAPH, LENGTHS, WAVEFORM, SpeechSpec
from rnnkit.errors import ArtifactError, UserError
from rnnkit.runtime.audio import check_waveform, read_audio, resample, split_long_audio


def decode_ids(ids: Sequence[int], vocabulary: Sequence[str], blank_id: int) -> str:
    """Characters of CTC ids (blank and out-of-range ids dropped), spaces collapsed."""
    text = "".join(vocabulary[int(i)] for i in ids if int(i) != blank_id
                   and 0 <= int(i) < len(vocabulary))
    return " ".join(text.split())  # CTC may emit "space blank space": one space


WORD_BEAM_WIDTH = 16  # closed-vocabulary beam when no beam_width > 1 is asked for
LM_ORDER = 3
DEFAULT_LM_WEIGHT = 0.5
DEFAULT_WORD_BONUS = 0.0
_EDGE_PUNCTUATION = ".,;:!?\"()[]{}-"


@dataclass(frozen=True)
class WordDecoding:
    """Closed-vocabulary decoding settings: the lexicon trie, the optional word LM and their
    weights (see ``rnnkit.decoding.ctc_lexicon_beam_search``)."""

    lexicon: Any
    lm: Any = None
    lm_weight: float = DEFAULT_LM_WEIGHT
    word_bonus: float = DEFAULT_WORD_BONUS
    beam_width: int = WORD_BEAM_WIDTH
    source: str = "list"
    lm_source: str | None = None

    def describe(self) -> dict[str, Any]:
        """What evaluate records about the decoding."""
        return {"vocabulary": self.source, "vocabulary_words": len(self.lexicon),
                "lm": self.lm_source, "lm_weight": self.lm_weight if self.lm else None,
                "word_bonus": self.word_bonus, "beam_width": self.beam_width}


def _word_normalizer(charset: Sequence[str]):
    """Lower-cases (when the charset has no capitals) and strips edge punctuation the
    charset cannot spell."""
    lower = not any(c.isupper() for c in charset)
    strip = "".join(c for c in _EDGE_PUNCTUATION if c not in charset)

    def words_of(text: str) -> list[str]:
        text = text.lower() if lower else text
        return [w for w in (word.strip(strip) for word in text.split()) if w]

    return words_of


def read_word_list(path: str | os.PathLike, charset: Sequence[str]) -> list[str]:
    """The words of a vocabulary file (whitespace-separated; UserError if missing/empty)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Vocabulary file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"Cannot read the vocabulary file {path}: {error}") from None
    words = _word_normalizer(charset)(text)
    if not words:
        raise UserError(f"The vocabulary file {path} holds no words")
    return words


def word_decoding(charset: Sequence[str], blank_id: int, vocabulary=None, lm=None,
                  lm_weight: float | None = None, word_bonus: float | None = None,
                  beam_width: int | None = None) -> WordDecoding | None:
    """The closed-vocabulary settings of these options (None when neither ``vocabulary`` nor
    ``lm`` is given). ``vocabulary``: a sequence of words or a file path; ``lm``: a text
    file path (or an ``NgramLM``)."""
    from rnnkit.decoding import Lexicon, NgramLM

    if vocabulary is None and lm is None:
        if lm_weight is not None or word_bonus is not None:
            raise UserError("lm_weight and word_bonus need a vocabulary or an lm")
        return None
    words_of = _word_normalizer(charset)
    model, lm_source = None, None
    if isinstance(lm, NgramLM):
        model, lm_source = lm, "NgramLM"
    elif lm is not None:
        model = NgramLM.from_file(lm, order=LM_ORDER, normalize=words_of)
        lm_source = str(lm)
    if vocabulary is None:
        words, source = sorted(model.words), f"the words of {lm_source}"
    elif isinstance(vocabulary, (str, os.PathLike)):
        words, source = read_word_list(vocabulary, charset), str(vocabulary)
    else:
        words = [w for item in vocabulary for w in words_of(str(item))]
        source = "list"
        if not words:
            raise UserError("The vocabulary is empty: give at least one word")
    for name, value in (("lm_weight", lm_weight), ("word_bonus", word_bonus)):
        if value is not None and not math.isfinite(float(value)):
            raise UserError(f"`{name}` must be a finite number. Received: {value}")
    if beam_width is not None and int(beam_width) < 1:
        raise UserError(f"`beam_width` must be >= 1. Received: {beam_width}")
    return WordDecoding(
        lexicon=Lexicon(words, charset, blank_id), lm=model,
        lm_weight=DEFAULT_LM_WEIGHT if lm_weight is None else float(lm_weight),
        word_bonus=DEFAULT_WORD_BONUS if word_bonus is None else float(word_bonus),
        beam_width=int(beam_width) if beam_width else WORD_BEAM_WIDTH, source=source,
        lm_source=lm_source)


def decode_log_probs(log_probs: np.ndarray, lengths: np.ndarray, vocabulary: Sequence[str],
                     blank_id: int, beam_width: int,
                     words: WordDecoding | None = None) -> list[str]:
    """CTC greedy (``beam_width`` 1) or prefix beam search over ``(B, T, C)`` log-probs, or
    the closed-vocabulary beam search when ``words`` is given."""
    from rnnkit.decoding import ctc_greedy_decode, ctc_lexicon_beam_search, ctc_prefix_beam_search

    lengths = np.minimum(np.asarray(lengths).reshape(-1), log_probs.shape[1])
    if words is not None:
        rows = [ctc_lexicon_beam_search(
            log_probs[row, :frames], words.lexicon, beam_width=words.beam_width,
            blank_id=blank_id, lm=words.lm, lm_weight=words.lm_weight,
            word_bonus=words.word_bonus) if frames > 0 else []
            for row, frames in enumerate(lengths.tolist())]
    elif beam_width <= 1:
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
    words: WordDecoding | None = None  # closed-vocabulary decoding set at construction

    def run_batch(self, waveform: np.ndarray, lengths: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        """``(log_probs (B, T, C), logit_lengths (B,))`` of a padded batch."""
        raise NotImplementedError

    def word_decoding(self, vocabulary=None, lm=None, lm_weight: float | None = None,
                      word_bonus: float | None = None,
                      beam_width: int | None = None) -> WordDecoding | None:
        """The closed-vocabulary settings of these options over this model's charset (the
        transcriber's own when none is given)."""
        if vocabulary is None and lm is None and self.words is not None:
            # The transcriber's own words, with this call's weights / beam where given.
            changes = {name: float(value) for name, value in
                       (("lm_weight", lm_weight), ("word_bonus", word_bonus)) if value is not None}
            if beam_width is not None:
                changes["beam_width"] = int(beam_width)
            if any(not math.isfinite(v) for v in changes.values()) or \
                    changes.get("beam_width", 1) < 1:
                raise UserError(f"lm_weight and word_bonus must be finite and beam_width >= 1. "
                                f"Received: {changes}")
            return replace(self.words, **changes) if changes else self.words
        return word_decoding(self.vocabulary, self.spec.blank_id, vocabulary, lm, lm_weight,
                             word_bonus, beam_width)

    def _transcribe_chunks(self, waves: list[np.ndarray], beam_width: int,
                           words: WordDecoding | None = None) -> list[str]:
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
                                       self.vocabulary, self.spec.blank_id, beam_width, words)
            for index, text in zip(group, decoded, strict=True):
                texts[index] = text
        return texts

    def transcribe_many(self, waveforms: Sequence[np.ndarray], beam_width: int | None = None,
                        vocabulary=None, lm=None, lm_weight: float | None = None,
                        word_bonus: float | None = None) -> list[str]:
        """Transcripts of float waveforms at the model's rate; long ones are chunked. The
        word options (module docstring) override the transcriber's own."""
        words = self.word_decoding(vocabulary, lm, lm_weight, word_bonus, beam_width)
        return self._transcribe_waves(waveforms, beam_width, words)

    def _transcribe_waves(self, waveforms: Sequence[np.ndarray], beam_width: int | None,
                          words: WordDecoding | None) -> list[str]:
        if words is not None and beam_width is not None and words.beam_width != beam_width:
            words = replace(words, beam_width=int(beam_width))
        pieces, owners = [], []
        for index, waveform in enumerate(waveforms):
            chunks = split_long_audio(check_waveform(waveform), self.spec.max_samples,
                                      self.spec.sample_rate, self.spec.search_seconds)
            for chunk in chunks:
                if chunk.size:
                    pieces.append(chunk)
                    owners.append(index)
        texts = self._transcribe_chunks(pieces, beam_width or self.spec.beam_width, words)
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
                beam_width: int | None = None, vocabulary=None, lm=None,
                lm_weight: float | None = None,
                word_bonus: float | None = None) -> list[dict[str, Any]]:
        """``{"input", "transcript", "seconds"}`` per input: an audio file (UserError if
        unreadable) or a waveform at the model's rate. ``vocabulary`` / ``lm`` /
        ``lm_weight`` / ``word_bonus``: closed-vocabulary decoding (module docstring)."""
        words = self.word_decoding(vocabulary, lm, lm_weight, word_bonus)  # errors first
        waves, names = [], []
        for index, item in enumerate(inputs):
            if isinstance(item, np.ndarray):
                waves.append(check_waveform(item))
                names.append(f"waveform {index}")
            else:
                waves.append(read_audio(item, self.spec.sample_rate))
                names.append(str(item))
        texts = self._transcribe_waves(waves, beam_width, words)
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


def load_speech_export(export_dir: Path, backend: str, quantization: str,
                       num_threads: int | None):
    """``(runtime model, SpeechSpec, character vocabulary)`` of a speech_to_text export."""
    from rnnkit import runtime

    model = runtime.load(export_dir, backend=backend, quantization=quantization,
                         num_threads=num_threads)
    manifest = model.manifest
    if manifest.get("app") != "speech_to_text":
        raise ArtifactError(f"{export_dir} is an export of app {manifest.get('app')!r}, "
                            "not speech_to_text")
    spec = SpeechSpec.from_manifest(manifest, str(export_dir / "manifest.json"))
    return model, spec, read_vocabulary(export_dir / spec.vocabulary_file)


class Transcriber(TranscriberBase):
    """Load once, transcribe many: an rnnkit speech_to_text export on ONNX Runtime or LiteRT.

    Args:
        export_dir: directory written by ``rnnkit speech_to_text export``.
        backend: ``"onnx"`` or ``"tflite"``.
        quantization: ``"none"``, ``"int8"``, ``"float16"`` (float16 weights).
        num_threads: runtime threads (None: the runtime's default).
        vocabulary, lm, lm_weight, word_bonus: closed-vocabulary decoding for every call
            (module docstring); a call's own options replace them.
    """

    def __init__(self, export_dir: str | os.PathLike, backend: str = "onnx",
                 quantization: str = "none", num_threads: int | None = None,
                 vocabulary=None, lm=None, lm_weight: float | None = None,
                 word_bonus: float | None = None):
        self.export_dir = Path(export_dir)
        self.model, self.spec, self.vocabulary = load_speech_export(
            self.export_dir, backend, quantization, num_threads)
        self.batch_size = 1 if backend == "tflite" else 16  # TFLite: a fixed batch of 1
        self.words = word_decoding(self.vocabulary, self.spec.blank_id, vocabulary, lm,
                                   lm_weight, word_bonus)

    def run_batch(self, waveform: np.ndarray, lengths: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        outputs = self.model.run(GRAPH, {WAVEFORM: waveform, LENGTHS: lengths})
        return outputs["log_probs"], outputs["logit_lengths"]
