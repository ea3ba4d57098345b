"""speech_to_text model: log-mel frontend → conv subsampling → (bi)GRU/LSTM stack → CTC.

Inference model (what is exported):
    inputs  waveform (B, N) float32 at 16 kHz, right-padded with zeros;
            lengths (B,) int32, valid samples per row
    outputs log_probs (B, T, C) float32 (log-softmax over the characters, blank = ``BLANK_ID``);
            logit_lengths (B,) int32, valid frames per row: ceil(ceil((N // hop) / s1) / s2)...

Masking: lengths → frame lengths (`ScaleLengths`) → bool mask (`LengthsToMask`, right padding)
→ `RecurrentBlock(mask=...)`, which the exporter turns into ONNX `sequence_lens`. Padded steps
are zeroed (`ZeroMasked`) before every conv so a padded batch gives each row exactly what it
gives alone.
"""

from __future__ import annotations

import keras
from keras import ops

from apps.speech_to_text.data import BLANK_ID, VOCABULARY
from rnnkit.errors import UserError
from rnnkit.layers import RecurrentBlock
from rnnkit.layers.audio import LengthsToMask, LogMelFrontend, ScaleLengths, ZeroMasked
from rnnkit.losses import ctc_loss


def _check_conv_config(config) -> None:
    sizes = {len(config.conv_filters), len(config.conv_kernel_sizes), len(config.conv_strides)}
    if len(sizes) != 1:
        raise ValueError(
            "`conv_filters`, `conv_kernel_sizes` and `conv_strides` must have the same length. "
            f"Received: {config.conv_filters}, {config.conv_kernel_sizes}, {config.conv_strides}"
        )


def is_streaming(config) -> bool:
    return bool(getattr(config, "streaming", False))


def _check_streaming_config(config) -> None:
    if is_streaming(config) and config.feature_cmvn:
        raise UserError("`streaming=true` cannot use `feature_cmvn=true` (per-utterance "
                        "normalisation needs the whole utterance). Received: feature_cmvn=True")


def frontend_from_config(config, name: str = "frontend", framing: str | None = None
                         ) -> LogMelFrontend:
    return LogMelFrontend(
        sample_rate=config.sample_rate, frame_length=config.frame_length,
        frame_step=config.frame_step, fft_length=config.fft_length,
        num_mel_bins=config.num_mel_bins, lower_edge_hertz=config.lower_edge_hertz,
        upper_edge_hertz=config.upper_edge_hertz, freq_mask_count=config.freq_mask_count,
        freq_mask_width=config.freq_mask_width, time_mask_count=config.time_mask_count,
        time_mask_width=config.time_mask_width, seed=config.seed, weightless=True,
        framing=framing or ("causal" if is_streaming(config) else "right"), name=name,
    )


def build_model(config, num_classes: int = len(VOCABULARY)) -> keras.Model:
    """The inference model `(waveform, lengths) → (log_probs, logit_lengths)`."""
    _check_conv_config(config)
    _check_streaming_config(config)
    streaming = is_streaming(config)
    waveform = keras.Input((None,), dtype="float32", name="waveform")
    lengths = keras.Input((), dtype="int32", name="lengths")
    features = frontend_from_config(config)(waveform)
    frame_lengths = ScaleLengths(config.frame_step, "floor", name="frame_lengths")(lengths)
    mask = LengthsToMask(name="frame_mask")([frame_lengths, features])
    if config.feature_cmvn:
        features = MaskedCMVN(name="cmvn")([features, mask])
    x = keras.layers.BatchNormalization(name="feature_norm")(features)
    for index, (filters, kernel, strides) in enumerate(
        zip(config.conv_filters, config.conv_kernel_sizes, config.conv_strides, strict=True)
    ):
        x = ZeroMasked(name=f"zero_padding_steps_{index}")([x, mask])
        # Streaming: causal (all padding on the left), so no output frame looks ahead.
        padding = (kernel - 1, 0) if streaming else ((kernel - 1) // 2, kernel // 2)
        x = keras.layers.ZeroPadding1D(padding, name=f"pad_{index}")(x)
        x = keras.layers.Conv1D(filters, kernel, strides=strides, activation="relu",
                                name=f"conv_{index}")(x)
        if strides > 1:
            frame_lengths = ScaleLengths(strides, "ceil", name=f"conv_lengths_{index}")(
                frame_lengths)
            mask = LengthsToMask(name=f"conv_mask_{index}")([frame_lengths, x])
    if config.dropout_rate:
        x = keras.layers.Dropout(config.dropout_rate, name="conv_dropout")(x)
    x = RecurrentBlock(
        kind=config.rnn_kind, units=config.units, num_layers=config.num_layers,
        bidirectional=config.bidirectional and not streaming, dropout_rate=config.dropout_rate,
        return_sequences=True, name="recurrent",
    )(x, mask=mask)
    logits = keras.layers.Dense(num_classes, name="classifier")(x)
    log_probs = keras.layers.Activation("log_softmax", name="log_probs", dtype="float32")(logits)
    logit_lengths = keras.layers.Identity(name="logit_lengths")(frame_lengths)
    return keras.Model([waveform, lengths], [log_probs, logit_lengths], name="speech_to_text")


@keras.saving.register_keras_serializable(package="rnnkit")
class MaskedCMVN(keras.layers.Layer):
    """Per-utterance cepstral mean/variance normalisation `[features (B, T, F), mask (B, T)] →
    (B, T, F)`: each mel bin minus its mean over the valid frames, divided by their standard
    deviation; padded frames come out as 0. Plain reductions and arithmetic, so it exports to
    ONNX/TFLite as ReduceSum/Mul/Div/Sqrt."""

    def __init__(self, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        features, mask = inputs
        weights = ops.cast(mask, features.dtype)[:, :, None]
        count = ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1.0)
        mean = ops.sum(features * weights, axis=1, keepdims=True) / count
        centred = (features - mean) * weights
        variance = ops.sum(centred * centred, axis=1, keepdims=True) / count
        return centred / ops.sqrt(variance + self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="rnnkit")
class CTCLossLayer(keras.layers.Layer):
    """Per-row CTC loss `[labels (B, L) int, label_lengths (B,), log_probs (B, T, C),
    logit_lengths (B,)] → (B,)` (blank ``BLANK_ID``): `rnnkit.losses.ctc_loss` with the frame lengths
    taken from the graph (the audio lengths), not from a Keras mask as `CTCLoss` would."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        labels, label_lengths, log_probs, logit_lengths = inputs
        return ctc_loss(labels, log_probs, label_lengths, logit_lengths, blank_id=BLANK_ID)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs[0].shape[0],), dtype="float32")

    def compute_mask(self, inputs, mask=None):
        return None


def build_training_model(model: keras.Model) -> keras.Model:
    """Wrap the inference model: inputs + labels → per-row CTC loss (compile with `ctc_mean`)."""
    waveform = keras.Input((None,), dtype="float32", name="waveform")
    lengths = keras.Input((), dtype="int32", name="lengths")
    labels = keras.Input((None,), dtype="int32", name="labels")
    label_lengths = keras.Input((), dtype="int32", name="label_lengths")
    log_probs, logit_lengths = model([waveform, lengths])
    loss = CTCLossLayer(name="ctc")([labels, label_lengths, log_probs, logit_lengths])
    return keras.Model([waveform, lengths, labels, label_lengths], loss, name="ctc_trainer")


def ctc_mean(y_true, y_pred):
    """Keras loss for the training model: the mean of its per-row CTC losses."""
    del y_true
    return ops.mean(y_pred)
