"""Audio input for inference, numpy + ``soundfile`` only (TF-free, like all of rnnkit.runtime).

- :func:`read_audio` reads wav/flac/ogg (anything libsndfile reads) at any sample rate, mono
  or stereo (downmixed), and returns float32 mono at ``target_rate`` (16 kHz by default).
- :func:`resample` is a band-limited (Kaiser-windowed sinc) polyphase resampler.
- :func:`split_long_audio` cuts long audio into chunks at quiet points.

Training (``rnnkit.data.audio``) uses these same functions.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rnnkit.errors import UserError

TARGET_SAMPLE_RATE = 16000


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
