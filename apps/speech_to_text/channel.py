"""Channel and room effects that real microphones and lines give speech (numpy only):
coloured noise (white, pink, brown), babble made of other utterances, mains hum, a telephone
band (a resample round trip through 8 kHz, optionally μ-law coded), DC offset, clipping and
room-noise lead-in/out. Each takes and returns float32 waveforms in [-1, 1] at ``sample_rate``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rnnkit.data.audio import resample

NOISE_KINDS = ("white", "pink", "brown")


def colored_noise(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise of ``size`` samples whose power falls as 1/f^0 (white), 1/f (pink) or
    1/f^2 (brown, with the lowest 20 Hz or so removed so it does not drift)."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"Unknown noise kind. Received: {kind!r}; allowed: {NOISE_KINDS}")
    if size <= 0:
        return np.zeros(0, np.float32)
    if kind == "white":
        noise = rng.standard_normal(size)
    else:
        length = 1 << max(4, (size - 1).bit_length())  # a fast FFT length, cropped after
        spectrum = np.fft.rfft(rng.standard_normal(length))
        freqs = np.arange(spectrum.size, dtype=np.float64)
        freqs[0] = 1.0
        exponent = 0.5 if kind == "pink" else 1.0  # amplitude ~ f^-exponent
        shaped = spectrum / freqs ** exponent
        shaped[: max(1, int(length * 20 / 16000))] = 0.0  # no DC / sub-20 Hz drift
        noise = np.fft.irfft(shaped, length)[:size]
    noise = noise / (np.sqrt(np.mean(np.square(noise))) + 1e-12)
    return noise.astype(np.float32)


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal + noise`` scaled so that the signal-to-noise power ratio is ``snr_db``."""
    signal = np.asarray(signal, np.float32)
    if signal.size == 0:
        return signal
    signal_power = float(np.mean(np.square(signal))) + 1e-12
    noise_power = float(np.mean(np.square(noise))) + 1e-12
    scale = math.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (signal + scale * noise[: signal.size]).astype(np.float32)


def hum(size: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Unit-RMS mains hum: 50 or 60 Hz and a few odd/even harmonics of random strength."""
    t = np.arange(size) / sample_rate
    base = 50.0 if rng.random() < 0.5 else 60.0
    wave = np.zeros(size)
    for harmonic in range(1, 6):
        wave += rng.uniform(0.1, 1.0) / harmonic * np.sin(
            2 * np.pi * base * harmonic * t + rng.uniform(0, 2 * np.pi))
    return (wave / (np.sqrt(np.mean(np.square(wave))) + 1e-12)).astype(np.float32)


def babble(size: int, others: Sequence[np.ndarray], rng: np.random.Generator,
           talkers: int = 3) -> np.ndarray:
    """Unit-RMS babble: up to ``talkers`` other utterances, each at a random offset (looped to
    ``size``) and level; white noise when there are none."""
    usable = [np.asarray(o, np.float32) for o in others if len(o) > 0 and np.any(o)]
    if not usable:
        return colored_noise("white", size, rng)
    out = np.zeros(size, np.float32)
    for _ in range(min(talkers, len(usable))):
        other = usable[int(rng.integers(len(usable)))]
        other = other / (np.sqrt(np.mean(np.square(other))) + 1e-12)
        looped = np.resize(np.roll(other, int(rng.integers(len(other)))), size)
        out += float(rng.uniform(0.5, 1.0)) * looped
    return out / (np.sqrt(np.mean(np.square(out))) + 1e-12)


def mu_law(waveform: np.ndarray, mu: int = 255) -> np.ndarray:
    """8-bit μ-law encode and decode (G.711-like quantization)."""
    x = np.clip(np.asarray(waveform, np.float64), -1.0, 1.0)
    encoded = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    codes = np.round((encoded + 1.0) / 2.0 * mu)  # 256 levels
    decoded = codes / mu * 2.0 - 1.0
    return (np.sign(decoded) * ((1.0 + mu) ** np.abs(decoded) - 1.0) / mu).astype(np.float32)


def telephone(waveform: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000,
              mu_law_probability: float = 0.5) -> np.ndarray:
    """A telephone line: a round trip through 8 kHz (an ideal 4 kHz low-pass, then the 8 kHz
    samples μ-law coded with ``mu_law_probability`` and interpolated back); keeps the
    length. Done with FFTs: a few ms per utterance where a resampler took ~40."""
    waveform = np.asarray(waveform, np.float32)
    if waveform.size == 0:
        return waveform
    factor = sample_rate // 8000
    if factor < 2 or sample_rate % 8000:  # not a multiple of 8 kHz: the slow exact way
        narrow = resample(waveform, sample_rate, 8000)
        if rng.random() < mu_law_probability:
            narrow = _mu_law_scaled(narrow)
        wide = resample(narrow, 8000, sample_rate)[: waveform.size]
        return np.pad(wide, (0, waveform.size - wide.size)).astype(np.float32)
    size = 1 << max(4, (waveform.size - 1).bit_length())  # a fast FFT length (zero tail)
    spectrum = np.fft.rfft(waveform, size)
    narrow_bins = size // factor // 2 + 1
    if rng.random() < mu_law_probability:
        narrow = np.fft.irfft(spectrum[:narrow_bins], size // factor) / factor
        spectrum = np.fft.rfft(_mu_law_scaled(narrow.astype(np.float32))) * factor
    spectrum = np.concatenate([spectrum[:narrow_bins - 1],
                               np.zeros(size // 2 + 1 - (narrow_bins - 1), complex)])
    return np.fft.irfft(spectrum, size)[: waveform.size].astype(np.float32)


def _mu_law_scaled(narrow: np.ndarray) -> np.ndarray:
    """μ-law with full scale at the signal's peak when that exceeds 1."""
    peak = max(float(np.abs(narrow).max()) if narrow.size else 0.0, 1.0)
    return mu_law(narrow / peak) * peak


def clip(waveform: np.ndarray, rng: np.random.Generator, max_share: float = 0.05) -> np.ndarray:
    """Overdriven input: gain up so that up to ``max_share`` of the samples exceed full scale,
    then hard-clip at ±1."""
    waveform = np.asarray(waveform, np.float32)
    if waveform.size == 0 or not np.any(waveform):
        return waveform
    share = float(rng.uniform(0.002, max_share))
    level = float(np.quantile(np.abs(waveform), 1.0 - share)) + 1e-9
    return np.clip(waveform / level, -1.0, 1.0).astype(np.float32)


def pad_with_silence(waveform: np.ndarray, lead: int, trail: int) -> np.ndarray:
    """``lead`` and ``trail`` zero samples around the waveform (noise added later fills them
    with room noise, as real clips of isolated words begin and end)."""
    return np.pad(np.asarray(waveform, np.float32), (int(lead), int(trail)))
