"""Data for speech_to_text: the character vocabulary, transcript normalization, synthetic
speech (espeak-ng) with held-out texts and voices, user data (LJSpeech / CSV) split by the
hash of the file name, the recorded-split round trip, augmentation and batching.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from apps.speech_to_text import channel
from apps.speech_to_text.engines import (
    ENGINES,
    EspeakEngine,
    Request,
    available_engines,
    engine_of,
)
from rnnkit.data.audio import (
    EspeakSynthesizer,
    read_audio,
    read_pairs,
    resample,
)
from rnnkit.data.split import hash_split
from rnnkit.errors import ArtifactError, UserError

# CTC classes: 0 is the blank; then space, apostrophe, a-z.
BLANK = "<blank>"
VOCABULARY: tuple[str, ...] = (BLANK, " ", "'", *"abcdefghijklmnopqrstuvwxyz")
BLANK_ID = VOCABULARY.index(BLANK)
_CHAR_TO_ID = {char: index for index, char in enumerate(VOCABULARY)}
DATA_VERSION = 4  # bump when generation changes (invalidates caches)

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


# --------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------


def _number_to_words(match: re.Match) -> str:
    from num2words import num2words

    return " " + num2words(int(match.group(0))) + " "


def normalize_transcript(text: str) -> str:
    """Lowercase, numbers spelled out, only ``a-z``, apostrophe and single spaces."""
    text = str(text).lower().replace("’", "'")
    text = re.sub(r"\d+", _number_to_words, text)
    text = re.sub(r"[^a-z' ]+", " ", text)
    text = re.sub(r"(^|\s)'+|'+(?=\s|$)", " ", text)  # quotes, not apostrophes
    return " ".join(text.split())


def encode_text(text: str) -> list[int]:
    return [_CHAR_TO_ID[char] for char in normalize_transcript(text)]


_ADJECTIVES = (
    "red green blue yellow black white small big old new quick slow happy quiet loud "
    "bright dark warm cold soft hard young tall short heavy light clean empty full early late "
    "strange simple gentle brave clever lazy busy"
).split()
_NOUNS = (
    "cat dog bird fish horse mouse house car train boat plane city river garden window door "
    "table chair book letter phone teacher doctor farmer child mother father friend king queen "
    "apple bread water coffee music story morning evening winter summer road bridge mountain "
    "forest island office market station kitchen computer picture"
).split()
_VERBS = (
    "sees likes finds takes makes opens closes paints builds reads writes carries pushes pulls "
    "watches follows helps calls moves cleans sells buys brings keeps leaves wants needs "
    "remembers visits"
).split()
_PREPOSITIONS = "near behind under over beside inside across past through toward".split()
_SUBJECTS = "i you we they he she".split()
_PLAIN_VERBS = (
    "see like find take make open close paint build read write carry push pull watch follow "
    "help call move clean sell buy bring keep leave want need remember visit"
).split()
_TIMES = "today tomorrow yesterday tonight now later again soon".split()
_QUESTIONS = ("where is", "what is", "who has", "when did you see", "why is", "how big is")


def _sentence(rng: np.random.Generator) -> str:
    def pick(words):
        return words[int(rng.integers(len(words)))]

    template = int(rng.integers(6))
    if template == 0:
        return f"the {pick(_ADJECTIVES)} {pick(_NOUNS)} {pick(_VERBS)} the {pick(_NOUNS)}"
    if template == 1:
        return (f"the {pick(_NOUNS)} {pick(_VERBS)} a {pick(_ADJECTIVES)} {pick(_NOUNS)} "
                f"{pick(_PREPOSITIONS)} the {pick(_NOUNS)}")
    if template == 2:
        return f"{pick(_SUBJECTS)} {pick(_PLAIN_VERBS)} the {pick(_NOUNS)} {pick(_TIMES)}"
    if template == 3:
        return f"{pick(_QUESTIONS)} the {pick(_ADJECTIVES)} {pick(_NOUNS)}"
    if template == 4:
        return f"a {pick(_NOUNS)} is {pick(_PREPOSITIONS)} the {pick(_ADJECTIVES)} {pick(_NOUNS)}"
    return f"{pick(_SUBJECTS)} don't {pick(_PLAIN_VERBS)} {pick(_NOUNS)}s {pick(_TIMES)}"


def random_text(rng: np.random.Generator) -> str:
    """One text: a digit string, a number (num2words: cardinal, ordinal, year) or a sentence."""
    kind = rng.random()
    if kind < 0.25:
        digits = rng.integers(0, 10, size=int(rng.integers(3, 9)))
        return " ".join(_DIGIT_WORDS[d] for d in digits)
    if kind < 0.45:
        from num2words import num2words

        style = rng.random()
        if style < 0.6:
            number = int(rng.choice([rng.integers(0, 100), rng.integers(100, 10000),
                                     rng.integers(10000, 1000000)]))
            return normalize_transcript(num2words(number))
        if style < 0.8:
            return normalize_transcript(num2words(int(rng.integers(1, 200)), to="ordinal"))
        return normalize_transcript(num2words(int(rng.integers(1100, 2100)), to="year"))
    return _sentence(rng)


def is_held_out_text(text: str) -> bool:
    """Texts whose hash falls in 1/8 are held out of training (unseen texts in val/test)."""
    return zlib.crc32(text.encode("utf-8")) % 8 == 0


# espeak-ng voices (accents) and variants; some variants are held out of training.
VOICES = EspeakEngine.ACCENTS


def split_variants(variants: list[str]) -> tuple[list[str], list[str]]:
    """(training variants, held-out variants): every 6th variant by hash is held out."""
    held = [v for v in variants if zlib.crc32(v.encode()) % 6 == 0]
    return [v for v in variants if v not in held], held


# --------------------------------------------------------------------------------------
# Synthetic corpus
# --------------------------------------------------------------------------------------


@dataclass
class SpeechSet:
    """Utterances as one concatenated float32 array + offsets (16 kHz) and transcripts."""

    audio: np.ndarray  # float32 (total_samples,)
    offsets: np.ndarray  # int64 (n + 1,)
    texts: list[str]
    sources: list[str]  # voice+variant or file path, for reports

    def __len__(self) -> int:
        return len(self.texts)

    def waveform(self, index: int) -> np.ndarray:
        return self.audio[self.offsets[index]:self.offsets[index + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def records(self, synthetic: str | None = None) -> list[dict[str, Any]]:
        """What a run records of this split: each file's path and transcript (user data), or
        the synthetic split's name, size, index and text (regenerated from the cache)."""
        if synthetic is None:
            return [{"path": path, "text": text}
                    for path, text in zip(self.sources, self.texts, strict=True)]
        return [{"synthetic": synthetic, "size": len(self), "index": index, "text": text,
                 "source": source}
                for index, (text, source) in enumerate(zip(self.texts, self.sources, strict=True))]

    @staticmethod
    def from_records(records: Sequence[dict[str, Any]], config) -> SpeechSet:
        """The split a run recorded: its files read again, or its synthetic split from the
        cache (an ArtifactError if that no longer gives the recorded texts)."""
        if not records:
            return SpeechSet.from_waveforms([], [], [])
        if "path" in records[0]:
            waves = [read_audio(record["path"], config.sample_rate) for record in records]
            return SpeechSet.from_waveforms(waves, [r["text"] for r in records],
                                            [r["path"] for r in records])
        split, size = records[0]["synthetic"], records[0]["size"]
        data = synthetic_split(split, size, config).subset([r["index"] for r in records])
        if data.texts != [r["text"] for r in records]:
            raise ArtifactError(f"The synthetic {split!r} split no longer gives the texts the "
                                "run recorded (another data version?)")
        return data

    def subset(self, indices) -> SpeechSet:
        indices = list(indices)
        waves = [self.waveform(i) for i in indices]
        return SpeechSet.from_waveforms(waves, [self.texts[i] for i in indices],
                                        [self.sources[i] for i in indices])

    @staticmethod
    def from_waveforms(waves, texts, sources) -> SpeechSet:
        lengths = np.array([len(w) for w in waves], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        audio = np.concatenate(waves).astype(np.float32) if waves else np.zeros(0, np.float32)
        return SpeechSet(audio, offsets, list(texts), list(sources))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp.npz")
        np.savez(temporary, audio=np.round(np.clip(self.audio, -1, 1) * 32767).astype(np.int16),
                 offsets=self.offsets, texts=np.array(self.texts, dtype=object).astype(str),
                 sources=np.array(self.sources, dtype=object).astype(str))
        os.replace(temporary, path)

    @staticmethod
    def load(path: Path) -> SpeechSet:
        with np.load(path) as data:
            return SpeechSet(data["audio"].astype(np.float32) / 32767.0, data["offsets"],
                             [str(t) for t in data["texts"]], [str(s) for s in data["sources"]])


def trim_silence(waveform: np.ndarray, sample_rate: int, threshold: float = 0.01,
                 margin_seconds: float = 0.12) -> np.ndarray:
    """Cut leading/trailing silence below ``threshold`` × peak, keeping a margin."""
    if waveform.size == 0:
        return waveform
    loud = np.flatnonzero(np.abs(waveform) > threshold * (np.abs(waveform).max() + 1e-9))
    if loud.size == 0:
        return waveform[:0]
    margin = int(margin_seconds * sample_rate)
    return waveform[max(0, loud[0] - margin):loud[-1] + margin]


@dataclass(frozen=True)
class _Plan:
    """One planned utterance: its text, voice and voice parameters."""

    text: str
    request: Request
    source: str


def engine_voices(config) -> tuple[dict[str, Any], dict[str, list[str]], dict[str, list[str]],
                                   list[float]]:
    """(engines that run here, training voices per engine, held-out voices per engine,
    weights): espeak's voices are its accents (variants are drawn per utterance); a voice in
    ``config.held_out_voices`` is only spoken in validation and test."""
    if len(config.engine_weights) != len(config.engines):
        raise UserError("`engine_weights` needs one weight per engine. Received: "
                        f"engines={config.engines}, engine_weights={config.engine_weights}")
    bad = [v for v in config.held_out_voices if engine_of(v) not in ENGINES or ":" not in v]
    if bad:
        raise UserError(f"`held_out_voices` names voices as engine:name with an engine of "
                        f"{', '.join(ENGINES)}. Received: {bad}")
    engines = available_engines(config.engines)
    held = set(config.held_out_voices)
    train_voices, held_voices, weights = {}, {}, []
    for name, weight in zip(config.engines, config.engine_weights, strict=True):
        if name not in engines:
            continue
        voices = [f"espeak:{accent}" for accent in VOICES] if name == "espeak" \
            else engines[name].voices()
        train_voices[name] = [v for v in voices if v not in held]
        held_voices[name] = [v for v in voices if v in held]
        if not train_voices[name]:
            raise UserError(f"Every {name} voice is held out (held_out_voices="
                            f"{config.held_out_voices}): keep at least one for training")
        weights.append(float(weight))
    if sum(weights) <= 0:
        raise UserError(f"`engine_weights` must have a positive sum. Received: {weights}")
    return engines, train_voices, held_voices, weights


def _plan_row(rng: np.random.Generator, text: str, config, want_held: bool,
              engine_names: list[str], weights: np.ndarray, train_voices, held_voices,
              espeak_variants: tuple[list[str], list[str]]) -> _Plan:
    name = engine_names[int(rng.choice(len(engine_names), p=weights))]
    if name == "espeak":
        voice = train_voices[name][int(rng.integers(len(train_voices[name])))]
        train_variants, held_variants = espeak_variants
        pool = held_variants if (want_held and rng.random() < 0.5) else train_variants
        variant = pool[int(rng.integers(len(pool)))] if rng.random() > 0.1 else None
        wpm = int(rng.integers(config.min_rate_wpm, config.max_rate_wpm + 1))
        pitch = int(rng.integers(20, 81))
        pitch_range = int(rng.integers(20, 91))
        request = Request(text, f"{voice}+{variant}" if variant else voice, rate=wpm / 175.0,
                          pitch=pitch / 50.0, pitch_range=pitch_range)
        return _Plan(text, request, f"{voice}+{variant or 'default'}@{wpm}wpm")
    pool = held_voices[name] if (want_held and held_voices[name] and rng.random() < 0.5) \
        else train_voices[name]
    voice = pool[int(rng.integers(len(pool)))]
    rate = float(rng.uniform(config.min_rate_wpm / 175.0, config.max_rate_wpm / 175.0))
    pitch = float(rng.uniform(0.8, 1.25))
    return _Plan(text, Request(text, voice, rate=rate, pitch=pitch),
                 f"{voice}@{rate:.2f}x/{pitch:.2f}p")


def _finish(raw: np.ndarray, rate: int, config, rng: np.random.Generator,
            want_held: bool) -> np.ndarray | None:
    """Trimmed, speed-perturbed, levelled, padded (and for val/test: channel and noise baked
    in) waveform at the model's rate; None when empty or too long."""
    raw = trim_silence(np.asarray(raw, np.float32), rate)
    if raw.size == 0 or not np.any(raw):
        return None
    speed = 1.0 + float(rng.uniform(-config.speed_perturbation, config.speed_perturbation))
    # The perturbed rate is rounded to 200 Hz: the resampler's filter table stays small.
    wave = resample(raw, max(200, int(round(rate * speed / 200.0)) * 200), config.sample_rate)
    wave = wave * (float(rng.uniform(0.1, 0.9)) / (np.abs(wave).max() + 1e-9))
    # Lead-in/out of 0-max_pad_seconds of silence (room noise once noise is added).
    pad = rng.integers(0, max(1, int(config.max_pad_seconds * config.sample_rate)), size=2)
    wave = channel.pad_with_silence(wave, int(pad[0]), int(pad[1]))
    if wave.size > config.max_seconds * config.sample_rate:
        return None
    if want_held:
        wave = augment_waveform(wave, config, rng, gain=False)
    return wave.astype(np.float32)


def synthesize_set(size: int, split: str, config, seed: int) -> SpeechSet:
    """Generate ``size`` utterances of ``split`` ("train", "validation", "test"),
    deterministically, from every engine of ``config.engines`` installed here.

    Training texts, espeak variants and voices never include the held-out ones; val/test use
    only held-out texts, and half of their rows use held-out voices/variants where the engine
    has some. Every row draws an engine (by ``engine_weights``), a voice, a rate, a pitch, a
    speed factor, a level and silence around it; val/test rows get the training channel
    and noise baked in (training rows get them per batch). Rows are planned first, then each
    engine speaks its rows (subprocess engines ``synth_workers`` at a time), then each row
    is finished with its own random stream, so the result does not depend on timing.
    """
    engines, train_voices, held_voices, weights = engine_voices(config)
    names = list(train_voices)
    probabilities = np.asarray(weights) / np.sum(weights)
    espeak_variants = split_variants(EspeakSynthesizer.variants()) if "espeak" in names \
        else ([], [])
    offset = {"train": 0, "validation": 1, "test": 2}[split]
    rng = np.random.default_rng([seed, offset, DATA_VERSION])
    want_held = split != "train"
    waves, texts, sources = [], [], []
    attempts, row = 0, 0
    while len(texts) < size:
        plans: list[_Plan] = []
        while len(plans) < min(256, (size - len(texts)) + 2):  # in rounds: bounded memory
            attempts += 1
            if attempts > size * 50 + 1000:
                raise RuntimeError(f"Could not draw {size} texts for split {split!r}")
            text = random_text(rng)
            if is_held_out_text(text) != want_held:
                continue
            if want_held and (zlib.crc32(text.encode()) // 8) % 2 != (offset - 1):
                continue  # val and test texts are disjoint too
            plans.append(_plan_row(rng, text, config, want_held, names, probabilities,
                                   train_voices, held_voices, espeak_variants))
        spoken: list[tuple[np.ndarray, int] | None] = [None] * len(plans)
        for name in names:
            indices = [i for i, plan in enumerate(plans) if engine_of(plan.request.voice) == name]
            if indices:
                outputs = engines[name].synthesize_many([plans[i].request for i in indices],
                                                        workers=config.synth_workers)
                for i, output in zip(indices, outputs, strict=True):
                    spoken[i] = output
        for plan, output in zip(plans, spoken, strict=True):
            row += 1
            if len(texts) >= size or output is None:
                continue
            wave = _finish(output[0], output[1], config,
                           np.random.default_rng([seed, offset, DATA_VERSION, row]), want_held)
            if wave is None:
                continue
            waves.append(wave)
            texts.append(plan.text)
            sources.append(plan.source)
    return SpeechSet.from_waveforms(waves, texts, sources)


def source_engine(source: str) -> str:
    """The engine of a synthetic row's recorded source (``espeak`` for older runs' sources
    that name no engine)."""
    head = source.split("@", 1)[0]
    return head.split(":", 1)[0] if ":" in head else "espeak"


def source_voice(source: str) -> str:
    """``engine:name`` of a synthetic row's source (espeak: its accent, variant dropped)."""
    head = source.split("@", 1)[0]
    if ":" not in head:
        head = f"espeak:{head}"
    return head.split("+", 1)[0]


def error_rates_by_source(data: SpeechSet, hyps: Sequence[str]) -> dict[str, Any]:
    """WER/CER per engine and per voice of a synthetic split's rows (``{}`` for user data,
    whose sources are file paths)."""
    from rnnkit.metrics import cer, wer

    synthetic = [i for i, source in enumerate(data.sources)
                 if "@" in source and not Path(source).is_absolute()]
    if not synthetic:
        return {}
    report: dict[str, Any] = {}
    for key, group_of in (("by_engine", source_engine), ("by_voice", source_voice)):
        groups: dict[str, list[int]] = {}
        for i in synthetic:
            groups.setdefault(group_of(data.sources[i]), []).append(i)
        report[key] = {
            name: {"wer": float(wer([data.texts[i] for i in rows], [hyps[i] for i in rows])),
                   "cer": float(cer([data.texts[i] for i in rows], [hyps[i] for i in rows])),
                   "examples": len(rows)}
            for name, rows in sorted(groups.items())}
    return report


_DATA_FIELDS = ("seed", "noise_probability", "min_snr_db", "max_snr_db", "speed_perturbation",
                "min_rate_wpm", "max_rate_wpm", "max_seconds", "sample_rate", "engines",
                "engine_weights", "held_out_voices", "max_pad_seconds", "noise_kinds",
                "babble_probability", "hum_probability", "telephone_probability",
                "dc_offset_probability", "clip_probability", "reverb_probability", "min_rt60",
                "max_rt60", "eq_probability")


_CHANNEL_FIELDS = ("noise_probability", "min_snr_db", "max_snr_db", "noise_kinds",
                   "babble_probability", "hum_probability", "telephone_probability",
                   "dc_offset_probability", "clip_probability", "reverb_probability", "min_rt60",
                   "max_rt60", "eq_probability")


def cache_dir() -> Path:
    return Path(os.environ.get("RNNKIT_CACHE", Path.home() / ".cache" / "rnnkit")) / "speech_to_text"


def synthetic_split(split: str, size: int, config) -> SpeechSet:
    """A synthetic split, generated once and cached as .npz under ~/.cache/rnnkit."""
    # Training rows get channel effects per batch, so those settings key val/test only.
    fields = _DATA_FIELDS if split != "train" else [
        name for name in _DATA_FIELDS if name not in _CHANNEL_FIELDS]
    settings = {name: getattr(config, name) for name in fields}
    # which engines run here is part of the key: another machine's mix is another corpus
    settings.update(split=split, size=size, version=DATA_VERSION,
                    installed=sorted(available_engines(config.engines, warn=False)))
    key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    path = cache_dir() / f"{split}-{size}-{key}.npz"
    if path.is_file():
        try:
            return SpeechSet.load(path)
        except (OSError, ValueError, KeyError):
            pass  # a broken cache file is regenerated
    data = synthesize_set(size, split, config, config.seed)
    # Quantize as the cache stores it, so the first run and cached runs see the same data.
    data.audio = np.round(np.clip(data.audio, -1, 1) * 32767).astype(np.int16) / np.float32(32767.0)
    data.audio = data.audio.astype(np.float32)
    try:
        data.save(path)
    except OSError:
        pass  # read-only cache: keep going without it
    return data


# --------------------------------------------------------------------------------------
# User data
# --------------------------------------------------------------------------------------


def user_splits(source: str | Path, config) -> dict[str, list[tuple[str, str]]]:
    """``(path, normalized transcript)`` per split of an LJSpeech folder or a
    ``path,transcript`` CSV, without reading audio: validation and test each get
    ``config.user_val_fraction`` by the hash of the file name (stable across runs); a tiny set
    still gets one test and one validation file."""
    held = config.user_val_fraction
    if not 0.0 <= held < 0.5:
        raise UserError(f"`user_val_fraction` must be in [0, 0.5). Received: {held}")
    pairs = [(str(Path(path).resolve()), normalize_transcript(text))
             for path, text in read_pairs(source)]
    pairs = [(path, text) for path, text in pairs if text]
    if not pairs:
        raise UserError(f"No utterances with a transcript found in {source}")
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "validation": [], "test": []}
    for path, text in pairs:
        splits[hash_split(Path(path).name, (1.0 - 2 * held, held, held))].append((path, text))
    for name in ("test", "validation"):
        if not splits[name] and len(splits["train"]) > 1:
            splits[name].append(splits["train"].pop())
    if not splits["validation"]:
        splits["validation"] = list(splits["test"])
    return splits


def read_speech(pairs: Sequence[tuple[str, str]], config) -> SpeechSet:
    """The audio of ``(path, transcript)`` pairs at the model's rate (empty files left out)."""
    waves, texts, paths = [], [], []
    for path, text in pairs:
        wave = read_audio(path, config.sample_rate)
        if wave.size:
            waves.append(wave)
            texts.append(text)
            paths.append(path)
    return SpeechSet.from_waveforms(waves, texts, paths)


def load_splits(config, data: str | Path | None = None) -> dict[str, SpeechSet]:
    """{"train", "validation", "test"}: synthetic by default, user data when ``data`` is given."""
    if data is None:
        return {"train": synthetic_split("train", config.train_size, config),
                "validation": synthetic_split("validation", config.val_size, config),
                "test": synthetic_split("test", config.test_size, config)}
    splits = {name: read_speech(pairs, config) for name, pairs in user_splits(data, config).items()}
    if not len(splits["train"]):
        raise UserError(f"No usable training utterances in {data} (all empty)")
    return splits


# --------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------


def _with_level_of(processed: np.ndarray, original: np.ndarray) -> np.ndarray:
    """``processed`` scaled to the RMS level of ``original`` (float32)."""
    original_rms = math.sqrt(float(np.mean(np.square(original))) + 1e-12)
    processed_rms = math.sqrt(float(np.mean(np.square(processed))) + 1e-12)
    return (processed * (original_rms / processed_rms)).astype(np.float32)


def add_reverb(waveform: np.ndarray, rt60: float, rng: np.random.Generator,
               sample_rate: int = 16000) -> np.ndarray:
    """Convolve with a synthetic room impulse response: a direct path plus Gaussian noise under
    an exponential decay reaching -60 dB after ``rt60`` seconds; output keeps the input's
    length and RMS level."""
    waveform = np.asarray(waveform, np.float32)
    if waveform.size == 0 or rt60 <= 0:
        return waveform
    size = max(2, int(rt60 * sample_rate))
    t = np.arange(size) / sample_rate
    rir = rng.standard_normal(size) * np.exp(-6.9078 * t / rt60)
    rir[0] = 0.0
    # direct-to-reverberant energy ratio drawn in [-3, 12] dB
    ratio = 10.0 ** (float(rng.uniform(-3.0, 12.0)) / 10.0)
    rir *= math.sqrt(1.0 / (ratio * float(np.sum(np.square(rir))) + 1e-12))
    rir[0] = 1.0
    n = waveform.size + size - 1
    fft_size = 1 << (n - 1).bit_length()
    wet = np.fft.irfft(np.fft.rfft(waveform, fft_size) * np.fft.rfft(rir, fft_size),
                       fft_size)[:waveform.size]
    return _with_level_of(wet, waveform)


def random_eq(waveform: np.ndarray, rng: np.random.Generator,
              sample_rate: int = 16000) -> np.ndarray:
    """A random microphone/channel response: a high-pass (60-400 Hz), a low-pass (3-8 kHz,
    telephone-like at the low end) and a spectral tilt of -6..+3 dB per octave around 1 kHz,
    applied in the frequency domain; output keeps the input's RMS level."""
    waveform = np.asarray(waveform, np.float32)
    if waveform.size == 0:
        return waveform
    size = 1 << max(4, (waveform.size - 1).bit_length())  # a fast FFT length (zero tail)
    spectrum = np.fft.rfft(waveform, size)
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    high_pass = float(rng.uniform(60.0, 400.0))
    low_pass = float(rng.uniform(3000.0, 8000.0))
    tilt = float(rng.uniform(-6.0, 3.0))
    octaves = np.log2(np.maximum(freqs, 1.0) / 1000.0)
    gain_db = tilt * octaves
    gain = 10.0 ** (gain_db / 20.0)
    gain /= np.sqrt(1.0 + (high_pass / np.maximum(freqs, 1.0)) ** 4)  # 2nd-order-like slopes
    gain /= np.sqrt(1.0 + (freqs / low_pass) ** 8)
    out = np.fft.irfft(spectrum * gain, size)[:waveform.size]
    return _with_level_of(out, waveform)


def augment_waveform(wave: np.ndarray, config, rng: np.random.Generator, gain: bool = True,
                     others: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Channel and room of one utterance, in the order a recording gets them: gain, room
    (reverb), microphone response (EQ), background (coloured noise, babble of ``others``,
    mains hum), line (telephone band, μ-law), then the converter (DC offset, clipping)."""
    if gain:
        wave = wave * float(rng.uniform(0.3, 1.5))
    if config.reverb_probability > 0 and rng.random() < config.reverb_probability:
        wave = add_reverb(wave, float(rng.uniform(config.min_rt60, config.max_rt60)), rng,
                          config.sample_rate)
    if config.eq_probability > 0 and rng.random() < config.eq_probability:
        wave = random_eq(wave, rng, config.sample_rate)
    if rng.random() < config.noise_probability:
        kinds = list(config.noise_kinds) or ["white"]
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind not in channel.NOISE_KINDS:
            raise UserError(f"Unknown noise kind in `noise_kinds`. Received: {kind!r}; "
                            f"allowed: {', '.join(channel.NOISE_KINDS)}")
        wave = channel.mix_at_snr(wave, channel.colored_noise(kind, len(wave), rng),
                                  float(rng.uniform(config.min_snr_db, config.max_snr_db)))
    if config.babble_probability > 0 and rng.random() < config.babble_probability:
        wave = channel.mix_at_snr(wave, channel.babble(len(wave), others, rng),
                                  float(rng.uniform(max(config.min_snr_db, 5.0), 25.0)))
    if config.hum_probability > 0 and rng.random() < config.hum_probability:
        wave = channel.mix_at_snr(wave, channel.hum(len(wave), rng, config.sample_rate),
                                  float(rng.uniform(10.0, 40.0)))
    if config.telephone_probability > 0 and rng.random() < config.telephone_probability:
        wave = channel.telephone(wave, rng, config.sample_rate)
    if config.dc_offset_probability > 0 and rng.random() < config.dc_offset_probability:
        wave = wave + float(rng.uniform(-0.05, 0.05))
    if config.clip_probability > 0 and rng.random() < config.clip_probability:
        wave = channel.clip(wave, rng)
    return np.clip(wave, -1.0, 1.0).astype(np.float32)


def speech_dataset(data: SpeechSet, config, training: bool, seed: int = 0):
    """Length-bucketed ``({"waveform", "lengths", "labels", "label_lengths"}, dummy y)``
    batches for the CTC training model (``rnnkit.data.batching``); waveforms are padded to a
    multiple of ``frame_step``, labels to the batch's longest; training batches are augmented
    and reshuffled every epoch."""
    from rnnkit.data.batching import bucketed_dataset, pad_batch

    labels = [np.asarray(encode_text(text), np.int32) for text in data.texts]

    def augment(batch: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        lengths = batch["lengths"].tolist()
        clean = [batch["waveform"][row, :length].copy() for row, length in enumerate(lengths)]
        for row, length in enumerate(lengths):
            batch["waveform"][row, :length] = augment_waveform(
                batch["waveform"][row, :length], config, rng,
                others=clean[:row] + clean[row + 1:])
        return batch

    def arrange(batch: dict[str, np.ndarray]):
        rows = [labels[i] for i in batch["index"].tolist()]
        inputs = {"waveform": batch["waveform"].astype(np.float32), "lengths": batch["lengths"],
                  "labels": pad_batch(rows, max(1, max(len(r) for r in rows)), 0, np.int32),
                  "label_lengths": np.array([len(r) for r in rows], np.int32)}
        return inputs, np.zeros(len(rows), np.float32)

    waves = [data.waveform(i) for i in range(len(data))]
    return bucketed_dataset(
        {"waveform": waves, "lengths": data.lengths().astype(np.int32),
         "index": np.arange(len(data))},
        arrange, config.batch_size, bucket_width=config.frame_step, shuffle=training, seed=seed,
        time_fields=["waveform"], augment=augment if training else None)
