"""Audio input: file readers, a numpy resampler, chunking, and espeak-ng speech synthesis.

This module is numpy-only (plus ``soundfile`` for files and ``ctypes`` for espeak-ng): it
never imports TensorFlow, so the TF-free runtime transcriber uses the same reader and
resampler as training.

- :func:`read_audio` reads wav/flac/ogg (anything libsndfile reads) at any sample rate, mono
  or stereo (downmixed), and returns float32 mono at ``target_rate`` (16 kHz by default).
- :func:`resample` is a band-limited (Kaiser-windowed sinc) polyphase resampler.
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

TARGET_SAMPLE_RATE = 16000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".raw")


# --------------------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------------------


def _kaiser_sinc_table(up: int, down: int, half_width: int, beta: float) -> tuple[np.ndarray, int]:
    """Polyphase filter table ``(up, 2 * taps)`` for the rational ratio ``up / down``."""
    cutoff = min(1.0, up / down) * 0.95  # of the input Nyquist, with a small guard band
    taps = int(math.ceil(half_width / cutoff))
    offsets = np.arange(-taps + 1, taps + 1, dtype=np.float64)  # input sample offsets
    phases = np.arange(up, dtype=np.float64) / up  # fractional positions of the output
    distance = offsets[None, :] - phases[:, None]
    window = np.kaiser(2 * taps + 1, beta)
    # Evaluate the continuous Kaiser window at `distance` by interpolating the sampled one.
    window_values = np.interp(distance, np.arange(-taps, taps + 1), window)
    table = cutoff * np.sinc(cutoff * distance) * window_values
    return table.astype(np.float32), taps


def resample(waveform: np.ndarray, orig_rate: int, target_rate: int = TARGET_SAMPLE_RATE,
             half_width: int = 16, beta: float = 8.0) -> np.ndarray:
    """Band-limited resampling of a 1-D float waveform (numpy only).

    Output sample ``n`` sits at input time ``n * orig_rate / target_rate``; it is the sum of
    ``2 * taps`` neighbours weighted by a Kaiser-windowed sinc whose cutoff is the lower of
    the two Nyquist frequencies (anti-aliasing when downsampling). Output length is
    ``ceil(len * target_rate / orig_rate)``.
    """
    orig_rate, target_rate = int(orig_rate), int(target_rate)
    if orig_rate <= 0 or target_rate <= 0:
        raise UserError(
            f"Sample rates must be positive. Received: orig_rate={orig_rate}, "
            f"target_rate={target_rate}"
        )
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1:
        raise ValueError(f"`waveform` must be 1-D. Received: shape={waveform.shape}")
    if orig_rate == target_rate or waveform.size == 0:
        return waveform.copy()
    divisor = math.gcd(orig_rate, target_rate)
    up, down = target_rate // divisor, orig_rate // divisor
    table, taps = _kaiser_sinc_table(up, down, half_width, beta)
    num_out = int(math.ceil(waveform.size * up / down))
    padded = np.concatenate(
        [np.zeros(taps, np.float32), waveform, np.zeros(taps + 1, np.float32)]
    )
    output = np.empty(num_out, dtype=np.float32)
    block = 32768
    offsets = np.arange(-taps + 1, taps + 1)
    for start in range(0, num_out, block):
        index = np.arange(start, min(start + block, num_out), dtype=np.int64)
        position = index * down  # in units of 1/up input samples
        base = position // up
        phase = position % up
        gathered = padded[(base + taps)[:, None] + offsets[None, :]]
        output[start:start + index.size] = np.einsum("ij,ij->i", gathered, table[phase])
    return output


# --------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------


def to_mono(data: np.ndarray) -> np.ndarray:
    """Downmix ``(frames, channels)`` to ``(frames,)`` by averaging the channels."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        return data.mean(axis=1) if data.shape[1] > 0 else np.zeros(data.shape[0], np.float32)
    if data.ndim != 1:
        raise UserError(f"Audio must be 1-D or (frames, channels). Received: shape={data.shape}")
    return data


def check_waveform(waveform: np.ndarray, source: str = "waveform") -> np.ndarray:
    """Float32 1-D waveform with finite samples, or a clear :class:`UserError`."""
    waveform = np.asarray(waveform)
    if waveform.dtype.kind not in "fiu":
        raise UserError(f"{source}: audio samples must be numbers. Received dtype={waveform.dtype}")
    if waveform.dtype.kind in "iu":  # PCM integers → [-1, 1]
        scale = float(np.iinfo(waveform.dtype).max) + 1.0
        waveform = waveform.astype(np.float32) / scale
    waveform = to_mono(waveform)
    if waveform.size and not np.all(np.isfinite(waveform)):
        bad = int(np.size(waveform) - np.count_nonzero(np.isfinite(waveform)))
        raise UserError(f"{source}: audio contains {bad} NaN or infinite samples")
    return waveform.astype(np.float32, copy=False)


def read_audio(path: str | Path, target_rate: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as float32 mono at ``target_rate`` Hz.

    Raises :class:`UserError` for a missing file, a file libsndfile cannot read (corrupt or
    unsupported format), or NaN/infinite samples. An empty file gives an empty array.
    """
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise UserError(f"Audio file not found: {path}")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        readable = ", ".join(sorted(soundfile.available_formats()))
        raise UserError(
            f"Cannot read audio file {path}: {error}. Readable formats: {readable}"
        ) from None
    waveform = check_waveform(data, source=str(path))
    return resample(waveform, int(rate), target_rate)


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
# Long audio
# --------------------------------------------------------------------------------------


def split_long_audio(waveform: np.ndarray, max_samples: int, sample_rate: int = TARGET_SAMPLE_RATE,
                     search_seconds: float = 2.0) -> list[np.ndarray]:
    """Split a waveform into chunks of at most ``max_samples``.

    The chunking rule: each cut is placed at the quietest 10 ms window within the last
    ``search_seconds`` of the chunk (a pause between words when there is one), so words are
    rarely cut. Audio that fits is returned as one chunk.
    """
    if max_samples < 1:
        raise ValueError(f"`max_samples` must be >= 1. Received: max_samples={max_samples}")
    chunks = []
    start = 0
    window = max(1, sample_rate // 100)
    while waveform.size - start > max_samples:
        end = start + max_samples
        search = min(int(search_seconds * sample_rate), max_samples // 2)
        region = waveform[end - search:end]
        usable = (region.size // window) * window
        if usable >= window:
            energy = np.square(region[region.size - usable:]).reshape(-1, window).sum(axis=1)
            quietest = int(np.argmin(energy[::-1]))  # latest among the quietest windows
            cut = end - quietest * window - window // 2
        else:
            cut = end
        cut = max(start + 1, min(cut, end))
        chunks.append(waveform[start:cut])
        start = cut
    chunks.append(waveform[start:])
    return chunks


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
