"""Audio layers: a waveform → log-mel frontend that exports to ONNX and TFLite, and the small
length/mask layers a CTC model needs to mask right-padded waveforms.

`tf.signal.stft` does not convert (tf2onnx has no ComplexAbs), so the frontend computes the
short-time Fourier transform as a strided `conv` whose fixed, non-trainable kernel is a
Hann-windowed cos/sin DFT basis: power = re² + im², then a mel filterbank matmul and
`log(x + log_offset)`. Every op is a plain Conv / MatMul / Mul / Add / Log.

With `weightless=True` the DFT basis and the mel matrix are computed inside the graph (Cos,
Sin, Min/Max on small index ranges) from a zero derived from the input, so no converter can
fold them into constants: exported graphs then carry no 0.8 MB basis, and post-training
weight quantizers (TFLite dynamic range, ONNX `quantize_dynamic`) find no frontend weight to
quantize, which keeps the frontend float32 (8-bit power spectra/waveforms ruin log-mels).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops


def hertz_to_mel(frequency):
    """HTK mel scale (as `tf.signal.linear_to_mel_weight_matrix`)."""
    return 1127.0 * np.log1p(np.asarray(frequency, dtype=np.float64) / 700.0)


def mel_filterbank(num_mel_bins: int, num_spectrogram_bins: int, sample_rate: int,
                   lower_edge_hertz: float, upper_edge_hertz: float) -> np.ndarray:
    """Triangular mel filters `(num_spectrogram_bins, num_mel_bins)` over an rfft's bins.

    Same construction as `tf.signal.linear_to_mel_weight_matrix` (HTK mel scale, DC bin
    excluded), in numpy.
    """
    nyquist = sample_rate / 2.0
    bin_hertz = np.linspace(0.0, nyquist, num_spectrogram_bins)[1:]
    bin_mel = hertz_to_mel(bin_hertz)[:, None]
    edges = np.linspace(hertz_to_mel(lower_edge_hertz), hertz_to_mel(upper_edge_hertz),
                        num_mel_bins + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    lower_slope = (bin_mel - lower) / (center - lower)
    upper_slope = (upper - bin_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(lower_slope, upper_slope))
    return np.pad(weights, [[1, 0], [0, 0]]).astype(np.float32)


def dft_kernel(frame_length: int, fft_length: int) -> np.ndarray:
    """Conv1D kernel `(frame_length, 1, 2 * (fft_length // 2 + 1))`: [cos | -sin] × Hann."""
    num_bins = fft_length // 2 + 1
    n = np.arange(frame_length, dtype=np.float64)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / frame_length)  # periodic Hann
    angles = 2.0 * np.pi * np.outer(n, np.arange(num_bins)) / fft_length
    basis = np.concatenate([np.cos(angles), -np.sin(angles)], axis=1) * window[:, None]
    return basis[:, None, :].astype(np.float32)


def log_mel_reference(waveform: np.ndarray, sample_rate: int = 16000, frame_length: int = 400,
                      frame_step: int = 160, fft_length: int = 512, num_mel_bins: int = 80,
                      lower_edge_hertz: float = 20.0, upper_edge_hertz: float = 7600.0,
                      log_offset: float = 1e-6) -> np.ndarray:
    """Plain numpy log-mel (np.fft.rfft) with the frontend's framing rule, for tests."""
    waveform = np.asarray(waveform, np.float64)
    padded = np.concatenate([waveform, np.zeros(frame_length - frame_step)])
    num_frames = waveform.size // frame_step
    n = np.arange(frame_length)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / frame_length)
    frames = np.stack([padded[t * frame_step:t * frame_step + frame_length]
                       for t in range(num_frames)]) if num_frames else np.zeros((0, frame_length))
    spectrum = np.abs(np.fft.rfft(frames * window, n=fft_length)) ** 2
    mel = spectrum @ mel_filterbank(num_mel_bins, fft_length // 2 + 1, sample_rate,
                                    lower_edge_hertz, upper_edge_hertz)
    return np.log(mel + log_offset).astype(np.float32)


FRAMINGS = ("right", "causal", "valid")


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")
    return value


def _check_non_negative_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{name}` must be an integer >= 0. Received: {name}={value!r}")
    return value


@keras.saving.register_keras_serializable(package="rnnkit")
class LogMelFrontend(keras.layers.Layer):
    """Raw waveform `(batch, samples)` float32 → log-mel features `(batch, frames, num_mel_bins)`.

    Framing rule (right padding only, so a padded batch gives each row the same frames as
    that row alone): the waveform is right-padded with `frame_length - frame_step` zeros and
    frame `t` covers samples `[t * frame_step, t * frame_step + frame_length)`, so a waveform
    of `n` samples has `n // frame_step` frames (:meth:`num_frames`).

    Args:
        sample_rate: Hz of the input waveform.
        frame_length: window length in samples (Hann window).
        frame_step: hop in samples.
        fft_length: DFT size (>= frame_length; the frame is zero-padded to it).
        num_mel_bins: mel filters.
        lower_edge_hertz, upper_edge_hertz: mel filterbank range.
        log_offset: `log(mel + log_offset)`.
        freq_mask_count, freq_mask_width: SpecAugment frequency masks per utterance (each up
            to `freq_mask_width` bins), applied only when `training=True`.
        time_mask_count, time_mask_width: SpecAugment time masks (each up to
            `time_mask_width` frames), training only. Masked cells take the utterance mean.
        seed: seed of the SpecAugment random draws.
        weightless: compute the DFT basis and mel matrix in the graph instead of holding
            them as (non-trainable) weights; same features within float32 rounding.
        framing: `"right"` (the rule above), `"causal"` (left padding instead: frame `t`
            covers samples `[t * frame_step - (frame_length - frame_step), (t + 1) *
            frame_step)`, zeros before the start; still `n // frame_step` frames, and no frame
            looks past its own hop, so audio can be processed chunk by chunk) or `"valid"`
            (no padding: `(n - (frame_length - frame_step)) // frame_step` frames; a streaming
            step feeds the previous chunk's last `frame_length - frame_step` samples followed
            by the new chunk and gets exactly the causal frames of that chunk).
    """

    def __init__(self, sample_rate: int = 16000, frame_length: int = 400, frame_step: int = 160,
                 fft_length: int = 512, num_mel_bins: int = 80, lower_edge_hertz: float = 20.0,
                 upper_edge_hertz: float = 7600.0, log_offset: float = 1e-6,
                 freq_mask_count: int = 0, freq_mask_width: int = 10, time_mask_count: int = 0,
                 time_mask_width: int = 20, seed: int | None = None, weightless: bool = False,
                 framing: str = "right", **kwargs):
        sample_rate = _check_positive_int("sample_rate", sample_rate)
        frame_length = _check_positive_int("frame_length", frame_length)
        frame_step = _check_positive_int("frame_step", frame_step)
        fft_length = _check_positive_int("fft_length", fft_length)
        num_mel_bins = _check_positive_int("num_mel_bins", num_mel_bins)
        if frame_step > frame_length:
            raise ValueError(
                "`frame_step` must be <= `frame_length`. "
                f"Received: frame_step={frame_step}, frame_length={frame_length}"
            )
        if fft_length < frame_length:
            raise ValueError(
                "`fft_length` must be >= `frame_length`. "
                f"Received: fft_length={fft_length}, frame_length={frame_length}"
            )
        if not 0.0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2:
            raise ValueError(
                "Need 0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2. Received: "
                f"lower_edge_hertz={lower_edge_hertz}, upper_edge_hertz={upper_edge_hertz}, "
                f"sample_rate={sample_rate}"
            )
        if not log_offset > 0:
            raise ValueError(f"`log_offset` must be > 0. Received: log_offset={log_offset}")
        if framing not in FRAMINGS:
            raise ValueError(f"`framing` must be one of {', '.join(map(repr, FRAMINGS))}. "
                             f"Received: framing={framing!r}")
        super().__init__(**kwargs)
        self.framing = framing
        self.sample_rate = sample_rate
        self.frame_length = frame_length
        self.frame_step = frame_step
        self.fft_length = fft_length
        self.num_mel_bins = num_mel_bins
        self.lower_edge_hertz = float(lower_edge_hertz)
        self.upper_edge_hertz = float(upper_edge_hertz)
        self.log_offset = float(log_offset)
        self.freq_mask_count = _check_non_negative_int("freq_mask_count", freq_mask_count)
        self.freq_mask_width = _check_non_negative_int("freq_mask_width", freq_mask_width)
        self.time_mask_count = _check_non_negative_int("time_mask_count", time_mask_count)
        self.time_mask_width = _check_non_negative_int("time_mask_width", time_mask_width)
        self.seed = seed
        self.weightless = bool(weightless)
        # Only an augmenting frontend holds random state (a plain one exports without it).
        self.seed_generator = (keras.random.SeedGenerator(seed)
                               if self.freq_mask_count or self.time_mask_count else None)
        self.num_spectrogram_bins = fft_length // 2 + 1

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                f"`LogMelFrontend` expects a waveform (batch, samples). Received: {input_shape}"
            )
        if self.weightless:
            return
        kernel = dft_kernel(self.frame_length, self.fft_length)
        mel = mel_filterbank(self.num_mel_bins, self.num_spectrogram_bins, self.sample_rate,
                             self.lower_edge_hertz, self.upper_edge_hertz)
        # Fixed weights (never trained, not in optimizer state); saved with the model so the
        # exported graph holds them as constants.
        self.dft_kernel = self.add_weight(
            name="dft_kernel", shape=kernel.shape, trainable=False,
            initializer=keras.initializers.Constant(kernel),
        )
        self.mel_matrix = self.add_weight(
            name="mel_matrix", shape=mel.shape, trainable=False,
            initializer=keras.initializers.Constant(mel),
        )

    @property
    def context_samples(self) -> int:
        """Samples a frame reaches beyond its own hop: `frame_length - frame_step`."""
        return self.frame_length - self.frame_step

    def num_frames(self, num_samples):
        """Frames of a waveform of `num_samples` (int or integer tensor): `n // frame_step`
        (`"valid"` framing: `(n - context_samples) // frame_step`)."""
        if self.framing == "valid":
            return (num_samples - self.context_samples) // self.frame_step
        return num_samples // self.frame_step

    def _graph_constants(self, waveform):
        """(DFT kernel, mel matrix) built from index ranges in the graph (`weightless`).

        `zero` is 0 for any finite input but depends on it, so constant folding stops here.
        """
        zero = ops.sum(ops.minimum(ops.abs(waveform[:1, :1]), 0.0))
        n = ops.arange(self.frame_length, dtype="int32") + ops.cast(zero, "int32")
        bins = ops.arange(self.num_spectrogram_bins, dtype="int32")
        # n * k mod N in exact integers, so the angles stay accurate in float32.
        phase = ops.mod(n[:, None] * bins[None, :], self.fft_length)
        angles = ops.cast(phase, "float32") * np.float32(2.0 * np.pi / self.fft_length)
        window = 0.5 - 0.5 * ops.cos(
            ops.cast(n, "float32") * np.float32(2.0 * np.pi / self.frame_length))
        basis = ops.concatenate([ops.cos(angles), -ops.sin(angles)], axis=1)
        kernel = ops.expand_dims(basis * window[:, None], 1)
        # Triangular HTK mel filters over bins 1..K-1 (bin 0, DC, gets no weight).
        hertz = (ops.cast(bins[1:], "float32") + zero) * np.float32(
            self.sample_rate / 2.0 / (self.num_spectrogram_bins - 1))
        bin_mel = (1127.0 * ops.log(1.0 + hertz / 700.0))[:, None]
        edges = np.linspace(hertz_to_mel(self.lower_edge_hertz),
                            hertz_to_mel(self.upper_edge_hertz),
                            self.num_mel_bins + 2).astype(np.float32)
        lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
        rising = (bin_mel - lower) / (center - lower)
        falling = (upper - bin_mel) / (upper - center)
        weights = ops.maximum(0.0, ops.minimum(rising, falling))
        mel = ops.concatenate([ops.zeros_like(weights[:1]), weights], axis=0)
        return kernel, mel

    def call(self, inputs, training=None):
        waveform = ops.cast(inputs, "float32")
        if self.weightless:
            kernel, mel_matrix = self._graph_constants(waveform)
        else:
            kernel = ops.cast(self.dft_kernel, "float32")
            mel_matrix = ops.cast(self.mel_matrix, "float32")
        pad = {"right": [0, self.context_samples], "causal": [self.context_samples, 0],
               "valid": [0, 0]}[self.framing]
        padded = ops.pad(waveform, [[0, 0], pad]) if pad != [0, 0] else waveform
        spectrum = ops.conv(ops.expand_dims(padded, -1), kernel,
                            strides=self.frame_step, padding="valid")
        real = spectrum[..., : self.num_spectrogram_bins]
        imag = spectrum[..., self.num_spectrogram_bins:]
        power = real * real + imag * imag
        mel = ops.matmul(power, mel_matrix)
        features = ops.log(mel + self.log_offset)
        if training and (self.freq_mask_count or self.time_mask_count):
            features = self._spec_augment(features)
        return features

    def _spec_augment(self, features):
        shape = ops.shape(features)
        batch, frames = shape[0], shape[1]
        mean = ops.mean(features, axis=(1, 2), keepdims=True)
        keep = ops.ones_like(features, dtype="bool")
        bins = ops.arange(self.num_mel_bins, dtype="float32")[None, None, :]
        steps = ops.cast(ops.arange(frames), "float32")[None, :, None]
        for count, width, positions, size in (
            (self.freq_mask_count, self.freq_mask_width, bins, float(self.num_mel_bins)),
            (self.time_mask_count, self.time_mask_width, steps, ops.cast(frames, "float32")),
        ):
            for _ in range(count):
                draw_width = ops.floor(keras.random.uniform(
                    (batch, 1, 1), 0.0, width + 1.0, seed=self.seed_generator))
                draw_width = ops.minimum(draw_width, size)
                start = ops.floor(keras.random.uniform(
                    (batch, 1, 1), 0.0, 1.0, seed=self.seed_generator) * (size - draw_width + 1))
                inside = ops.logical_and(positions >= start, positions < start + draw_width)
                keep = ops.logical_and(keep, ops.logical_not(inside))
        return ops.where(keep, features, mean)

    def compute_output_shape(self, input_shape):
        samples = input_shape[1]
        frames = None if samples is None else max(0, self.num_frames(samples))
        return (input_shape[0], frames, self.num_mel_bins)

    def get_config(self):
        config = {
            "sample_rate": self.sample_rate,
            "frame_length": self.frame_length,
            "frame_step": self.frame_step,
            "fft_length": self.fft_length,
            "num_mel_bins": self.num_mel_bins,
            "lower_edge_hertz": self.lower_edge_hertz,
            "upper_edge_hertz": self.upper_edge_hertz,
            "log_offset": self.log_offset,
            "freq_mask_count": self.freq_mask_count,
            "freq_mask_width": self.freq_mask_width,
            "time_mask_count": self.time_mask_count,
            "time_mask_width": self.time_mask_width,
            "seed": self.seed,
            "weightless": self.weightless,
            "framing": self.framing,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="rnnkit")
class ScaleLengths(keras.layers.Layer):
    """Sequence lengths after a frame/stride reduction: `lengths // divisor` (`"floor"`) or
    `ceil(lengths / divisor)` (`"ceil"`, the length after a strided conv padded with
    `((k - 1) // 2, k // 2)` as in the speech model). Integer in, int32 out."""

    def __init__(self, divisor: int = 1, rounding: str = "floor", **kwargs):
        divisor = _check_positive_int("divisor", divisor)
        if rounding not in ("floor", "ceil"):
            raise ValueError(f"`rounding` must be 'floor' or 'ceil'. Received: rounding={rounding!r}")
        super().__init__(**kwargs)
        self.divisor = divisor
        self.rounding = rounding

    def call(self, lengths):
        lengths = ops.cast(lengths, "int32")
        if self.rounding == "ceil":
            lengths = lengths + (self.divisor - 1)
        return lengths // self.divisor

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, lengths):
        return keras.KerasTensor(lengths.shape, dtype="int32")

    def get_config(self):
        return {**super().get_config(), "divisor": self.divisor, "rounding": self.rounding}


@keras.saving.register_keras_serializable(package="rnnkit")
class LengthsToMask(keras.layers.Layer):
    """`[lengths (B,), sequence (B, T, ...)]` → bool mask `(B, T)`: `t < lengths[b]`.

    A right-padding mask (the export contract): the exporter turns it back into ONNX
    `sequence_lens` as the count of True per row.
    """

    def call(self, inputs):
        lengths, sequence = inputs
        steps = ops.arange(ops.shape(sequence)[1], dtype="int32")
        return steps[None, :] < ops.cast(lengths, "int32")[:, None]

    def compute_output_spec(self, inputs):
        lengths, sequence = inputs
        return keras.KerasTensor((sequence.shape[0], sequence.shape[1]), dtype="bool")


@keras.saving.register_keras_serializable(package="rnnkit")
class ZeroMasked(keras.layers.Layer):
    """`[sequence (B, T, D), mask (B, T)]` → sequence with masked steps set to 0, so a padded
    batch computes what each row computes alone through following convolutions."""

    def call(self, inputs):
        sequence, mask = inputs
        return sequence * ops.cast(mask, sequence.dtype)[:, :, None]

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def conv_output_length(length: int, strides: int) -> int:
    """Python twin of `ScaleLengths(strides, "ceil")` for plain integers."""
    return int(math.ceil(length / strides))


@keras.saving.register_keras_serializable(package="rnnkit")
class StreamContext(keras.layers.Layer):
    """Left context for chunk-by-chunk processing without stateful layers:
    `[context (B, K, ...), chunk (B, N, ...)]` → `[joined (B, K + N, ...), next_context (B, K,
    ...)]`, where `joined` is the context followed by the chunk and `next_context` its last
    `K` steps (what the next chunk needs). A streaming step graph takes `context` as an input
    and returns `next_context` as an output; the caller starts from zeros (the zero padding a
    causal convolution or framing sees before the first sample)."""

    def call(self, inputs):
        context, chunk = inputs
        joined = ops.concatenate([ops.cast(context, chunk.dtype), chunk], axis=1)
        size = context.shape[1]
        return [joined, joined[:, ops.shape(joined)[1] - size:]]

    def compute_output_spec(self, inputs):
        context, chunk = inputs
        steps = None if context.shape[1] is None or chunk.shape[1] is None \
            else context.shape[1] + chunk.shape[1]
        return [keras.KerasTensor((chunk.shape[0], steps, *chunk.shape[2:]), dtype=chunk.dtype),
                keras.KerasTensor(context.shape, dtype=chunk.dtype)]
