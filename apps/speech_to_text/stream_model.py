"""The Keras streaming step model of a ``streaming=true`` speech_to_text model.

    inputs   audio_chunk (1, chunk_samples) float32, then the carried tensors of
             ``apps.speech_to_text.streaming.state_layout`` (frontend context, conv contexts,
             recurrent states; zeros at the start of a stream)
    outputs  log_probs (1, frames_per_chunk, C), then each ``next_*`` carried tensor

The layers are the whole-utterance model's (same names, weights copied by
:func:`copy_weights`): `StreamContext` prepends the cached left context to the chunk, the
log-mel frontend frames it without padding (``framing="valid"``), and each convolution sees
its last ``kernel - 1`` input frames before the chunk: exactly the causal padding / previous
frames of the whole-utterance graph. The recurrent layers are plain Keras layers with their
states as inputs and outputs (no stateful layers), which the exporters turn into native ONNX
GRU/LSTM/RNN nodes with initial states and into TFLite builtins.
"""

from __future__ import annotations

import dataclasses

import keras

from apps.speech_to_text.data import VOCABULARY
from apps.speech_to_text.model import frontend_from_config, is_streaming
from apps.speech_to_text.streaming import AUDIO_CHUNK, LOG_PROBS, state_layout, stream_geometry
from rnnkit.errors import UserError
from rnnkit.layers.audio import StreamContext
from rnnkit.layers.recurrent import RECURRENT_KINDS


def build_step_model(config, num_classes: int = len(VOCABULARY)) -> keras.Model:
    """The step model of ``config`` (untrained; :func:`copy_weights` fills it)."""
    if not is_streaming(config):
        raise UserError("A streaming step graph needs a model trained with `streaming=true`. "
                        "Received: streaming=False")
    geometry = stream_geometry(config)
    layout = {state["input"]: state for state in state_layout(config)}
    inputs = [keras.Input((geometry.chunk_samples,), batch_size=1, name=AUDIO_CHUNK)]

    def carried(name: str):
        tensor = keras.Input(tuple(layout[name]["shape"][1:]), batch_size=1, name=name)
        inputs.append(tensor)
        return tensor

    next_values = {}
    clean = dataclasses.replace(config, freq_mask_count=0, time_mask_count=0)
    audio, next_values["frontend_context"] = StreamContext(name="frontend_window")(
        [carried("frontend_context"), inputs[0]])
    x = frontend_from_config(clean, framing="valid")(audio)
    x = keras.layers.BatchNormalization(name="feature_norm")(x)
    for index, (filters, kernel, strides) in enumerate(
        zip(config.conv_filters, config.conv_kernel_sizes, config.conv_strides, strict=True)
    ):
        if kernel > 1:
            name = f"conv_context_{index}"
            x, next_values[name] = StreamContext(name=f"conv_window_{index}")([carried(name), x])
        x = keras.layers.Conv1D(filters, kernel, strides=strides, activation="relu",
                                name=f"conv_{index}")(x)
    parts = ("h", "c") if config.rnn_kind == "lstm" else ("h",)
    for layer in range(config.num_layers):
        names = [f"state_{layer}_{p}" if len(parts) > 1 else f"state_{layer}" for p in parts]
        options = {"units": config.units, "return_sequences": True, "return_state": True,
                   "name": f"{config.rnn_kind}_{layer}"}
        if config.rnn_kind != "rnn":
            options["use_cudnn"] = False
        if config.rnn_kind == "gru":
            options["reset_after"] = True
        x, *states = RECURRENT_KINDS[config.rnn_kind](**options)(
            x, initial_state=[carried(name) for name in names])
        next_values.update(zip(names, states, strict=True))
    logits = keras.layers.Dense(num_classes, name="classifier")(x)
    log_probs = keras.layers.Activation("log_softmax", name=LOG_PROBS, dtype="float32")(logits)
    outputs = [log_probs] + [
        keras.layers.Identity(name=layout[name]["output"])(next_values[name])
        for name in (tensor.name for tensor in inputs[1:])]
    return keras.Model(inputs, outputs, name="speech_to_text_stream_step")


def copy_weights(model: keras.Model, step: keras.Model) -> keras.Model:
    """Give ``step`` the weights of the whole-utterance inference ``model``; returns ``step``."""
    recurrent = model.get_layer("recurrent").rnn_layers
    for layer in step.layers:
        if not layer.weights:
            continue
        if layer.name.rsplit("_", 1)[0] in RECURRENT_KINDS and layer.name.rsplit("_", 1)[1].isdigit():
            source = recurrent[int(layer.name.rsplit("_", 1)[1])]
        else:
            source = model.get_layer(layer.name)
        weights = [w for w in source.weights if "seed_generator" not in w.path]
        layer.set_weights([keras.ops.convert_to_numpy(w) for w in weights])
    return step
