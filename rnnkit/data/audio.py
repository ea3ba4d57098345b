"""Audio data for training: user-format readers, noise, and espeak-ng speech synthesis.

Numpy-only (plus ``soundfile`` and ``ctypes`` for espeak-ng). The file reader, resampler and
chunking live in the TF-free :mod:`rnnkit.runtime.audio` (inference uses them too) and are
re-exported here.

- :func:`read_ljspeech` / :func:`read_transcript_csv` list ``(path, transcript)`` pairs of the
  user formats: LJSpeech (``metadata.csv`` + ``wavs/``) and a CSV of ``path,transcript``.
- :class:`EspeakSynthesizer` speaks text with the libespeak-ng shipped in ``espeakng-loader``.
"""

from __future__ import annotations

import csv
import ctypes
import math
import threading
from pathlib import Path

import numpy as np

from rnnkit.errors import UserError
from rnnkit.runtime.audio import (  # noqa: F401 - the training side's audio input
    TARGET_SAMPLE_RATE,
    check_waveform,
    read_audio,
    resample,
    split_long_audio,
    to_mono,
)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".raw")


# --------------------------------------------------------------------------------------
# User data
# --------------------------------------------------------------------------------------


def read_ljspeech(directory: str | Path) -> list[tuple[Path, str]]:
    """``(wav path, transcript)`` pairs of an LJSpeech-layout folder.

    ``metadata.csv`` lines are ``id|transcript|normalized transcript`` (the normalized column
    is used when present); audio is ``wavs/<id>.wav``.
    """
    directory = Path(directory)
    metadata = directory / "metadata.csv"
    if not metadata.is_file():
        raise UserError(f"{directory} is not an LJSpeech folder: no metadata.csv")
    pairs = []
    with metadata.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            line = line.rstrip("\n\r")
            if not line.strip():
                continue
            fields = line.split("|")
            if len(fields) < 2:
                raise UserError(
                    f"{metadata}:{line_number}: expected 'id|transcript[|normalized]'. "
                    f"Received: {line[:80]!r}"
                )
            text = fields[2] if len(fields) >= 3 and fields[2].strip() else fields[1]
            pairs.append((directory / "wavs" / f"{fields[0]}.wav", text))
    return pairs


def read_transcript_csv(path: str | Path) -> list[tuple[Path, str]]:
    """``(audio path, transcript)`` pairs of a CSV ``path,transcript`` (header optional).

    Relative audio paths are resolved against the CSV's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Transcript CSV not found: {path}")
    pairs = []
    with path.open(encoding="utf-8", newline="") as handle:
        for line_number, row in enumerate(csv.reader(handle), 1):
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) < 2:
                raise UserError(
                    f"{path}:{line_number}: expected 'path,transcript'. Received: {row!r}"
                )
            audio, text = row[0].strip(), ",".join(row[1:]).strip()
            if line_number == 1 and audio.lower() in ("path", "file", "filename", "audio", "wav"):
                continue  # header
            audio_path = Path(audio)
            if not audio_path.is_absolute():
                audio_path = path.parent / audio_path
            pairs.append((audio_path, text))
    return pairs


def read_pairs(source: str | Path) -> list[tuple[Path, str]]:
    """User data: an LJSpeech folder or a ``path,transcript`` CSV file."""
    source = Path(source)
    if source.is_dir():
        return read_ljspeech(source)
    if source.is_file():
        return read_transcript_csv(source)
    raise UserError(
        f"Speech data not found: {source} (expected an LJSpeech folder with metadata.csv "
        "and wavs/, or a CSV of path,transcript)"
    )


# --------------------------------------------------------------------------------------
# Speech synthesis with espeak-ng (ctypes)
# --------------------------------------------------------------------------------------

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAMETERS = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakSynthesizer:
    """Text → int16 waveform with the libespeak-ng of the ``espeakng-loader`` wheel.

    espeak-ng keeps global state, so every synthesizer in a process shares one library
    handle, guarded by a lock. Output is 22,050 Hz int16 (``sample_rate``).

    >>> synth = EspeakSynthesizer()
    >>> wave = synth.synthesize("hello world", voice="en-us", variant="f3", rate=170)
    """

    _lock = threading.Lock()
    _library = None
    _sample_rate = 0
    _chunks: list[np.ndarray] = []
    _callback = None

    def __init__(self):
        cls = type(self)
        with cls._lock:
            if cls._library is None:
                try:
                    import espeakng_loader
                except ImportError:
                    raise UserError(
                        "Synthetic speech needs the `espeakng-loader` package "
                        "(pip install espeakng-loader==0.2.4)"
                    ) from None
                library = ctypes.CDLL(espeakng_loader.get_library_path())
                library.espeak_Initialize.restype = ctypes.c_int
                library.espeak_Initialize.argtypes = [
                    ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int
                ]
                rate = library.espeak_Initialize(
                    _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
                )
                if rate <= 0:
                    raise RuntimeError(f"espeak_Initialize failed (returned {rate})")
                library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
                library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
                library.espeak_Synth.argtypes = [
                    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                    ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
                ]

                def collect(samples, count, _events):
                    if count > 0 and samples:
                        cls._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
                    return 0

                cls._callback = _CALLBACK(collect)
                library.espeak_SetSynthCallback(cls._callback)
                cls._library = library
                cls._sample_rate = rate

    @property
    def sample_rate(self) -> int:
        return type(self)._sample_rate

    @staticmethod
    def variants() -> list[str]:
        """Names of the voice variants shipped in espeak-ng-data (``voices/!v``)."""
        import espeakng_loader

        folder = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
        return sorted(path.name for path in folder.iterdir() if path.is_file())

    def synthesize(self, text: str, voice: str = "en-us", variant: str | None = None,
                   rate: int = 175, pitch: int = 50, pitch_range: int = 50,
                   volume: int = 100) -> np.ndarray:
        """Speak ``text``; returns int16 samples at :attr:`sample_rate`.

        ``rate`` is words per minute (80–450), ``pitch`` and ``pitch_range`` 0–100.
        """
        cls = type(self)
        name = f"{voice}+{variant}" if variant else voice
        encoded = text.encode("utf-8")
        with cls._lock:
            library = cls._library
            if library.espeak_SetVoiceByName(name.encode("utf-8")) != 0:
                raise UserError(f"Unknown espeak-ng voice. Received: voice={name!r}")
            for key, value in (("rate", rate), ("pitch", pitch), ("range", pitch_range),
                               ("volume", volume)):
                library.espeak_SetParameter(_PARAMETERS[key], int(value), 0)
            cls._chunks = []
            buffer = ctypes.create_string_buffer(encoded)
            library.espeak_Synth(buffer, len(encoded) + 1, 0, _POS_CHARACTER, 0,
                                 _ESPEAK_CHARS_UTF8, None, None)
            library.espeak_Synchronize()
            chunks, cls._chunks = cls._chunks, []
        if not chunks:
            return np.zeros(0, np.int16)
        return np.concatenate(chunks)


def add_noise(waveform: np.ndarray, snr_db: float, rng: np.random.Generator,
              kind: str = "white") -> np.ndarray:
    """Add white or pink-ish (brown-filtered) noise at a signal-to-noise ratio in dB."""
    waveform = np.asarray(waveform, np.float32)
    if waveform.size == 0:
        return waveform
    noise = rng.standard_normal(waveform.size).astype(np.float32)
    if kind == "brown":
        noise = np.cumsum(noise)
        noise -= np.convolve(noise, np.ones(64) / 64, mode="same")
    signal_power = float(np.mean(np.square(waveform))) + 1e-12
    noise_power = float(np.mean(np.square(noise))) + 1e-12
    scale = math.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (waveform + scale * noise).astype(np.float32)
