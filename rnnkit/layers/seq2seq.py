"""Encoder–decoder builders with attention (Luong style: attention *after* the RNN).

The decoder is ``Embedding → RecurrentBlock → attention(query=rnn outputs, values=encoder
outputs, mask=encoder mask) → concat → Dense(tanh) → Dense(vocab logits)``. Because the
attention comes after the recurrence, the recurrent part is a plain Keras RNN (exportable as a
native ONNX ``LSTM``/``GRU`` op) and one decoding step is the same graph as the teacher-forcing
model restricted to one position.

The builders return functional ``keras.Model`` objects that share layers:

* :func:`build_encoder` — ``source ids (B, T) → [encoder_outputs (B, T, D), *initial decoder
  states]`` (translation; any other "values" producer works with the decoder too, e.g. an image
  encoder giving ``(B, Tv, D)`` features and an all-True mask);
* :func:`build_attention_decoder` — a :class:`AttentionDecoder` holding

  - ``training_model``: ``(target_in (B, T), *states, encoder_outputs, encoder_mask) → logits
    (B, T, V)`` (teacher forcing),
  - ``step_model``: ``(token (B, 1) int32, *states, encoder_outputs, encoder_mask bool (B, Tv))
    → (logits (B, V), *new_states, attention (B, Tv))``;
* :func:`build_seq2seq_model` — ``(source ids, target_in) → logits`` for ``model.fit``
  (the encoder mask is derived from the source ids with :class:`PaddingMask`).

The encoder mask is an explicit bool *input* of the decoder models (computed from the ids on
the host at inference time, ``ids != pad_id``), so the exported graphs contain no mask logic.

The decoder embedding does not use ``mask_zero``: the decoder is causal, so right padding of the
target only changes outputs at padded positions, which the masked loss ignores; leaving the mask
out keeps the step graph identical to the training graph and free of ``sequence_lens`` (a
1-step ``sequence_lens`` of 0 breaks quantized ONNX LSTMs).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from rnnkit.layers.recurrent import RecurrentBlock

ATTENTION_KINDS = ("luong", "bahdanau")
_NUM_STATES = {"rnn": 1, "lstm": 2, "gru": 1}


@keras.saving.register_keras_serializable(package="rnnkit")
class PaddingMask(keras.layers.Layer):
    """``ids (B, T) → ids != pad_id`` as a bool ``(B, T)`` tensor (training graphs only)."""

    def __init__(self, pad_id: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.pad_id = int(pad_id)

    def call(self, ids):
        return keras.ops.not_equal(ids, self.pad_id)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, ids):
        return keras.KerasTensor(ids.shape, dtype="bool")

    def get_config(self):
        return {**super().get_config(), "pad_id": self.pad_id}


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")
    return value


def num_decoder_states(kind: str) -> int:
    """Number of state tensors of a unidirectional single-layer decoder of ``kind``."""
    if kind not in _NUM_STATES:
        raise ValueError(f"`kind` must be one of 'rnn', 'lstm', 'gru'. Received: kind={kind!r}")
    return _NUM_STATES[kind]


def build_encoder(
    vocab_size: int,
    embedding_dim: int = 64,
    units: int = 128,
    kind: str = "lstm",
    num_layers: int = 1,
    bidirectional: bool = True,
    decoder_units: int | None = None,
    decoder_kind: str | None = None,
    dropout_rate: float = 0.0,
    name: str = "encoder",
) -> keras.Model:
    """Recurrent encoder: ``source_ids (B, T) int32 → [encoder_outputs, *decoder_states]``.

    ``encoder_outputs`` is ``(B, T, units * (2 if bidirectional else 1))``. The initial decoder
    states (``decoder_kind``'s states, each ``(B, decoder_units)``) come from the encoder's
    final states through a ``Dense(tanh)`` bridge per state (forward and backward states
    concatenated); with a unidirectional encoder of the same kind and width the states pass
    through unchanged. Padding id 0 is masked (right padding).
    """
    _check_positive("vocab_size", vocab_size)
    _check_positive("embedding_dim", embedding_dim)
    _check_positive("units", units)
    decoder_units = units if decoder_units is None else _check_positive("decoder_units", decoder_units)
    decoder_kind = kind if decoder_kind is None else decoder_kind
    num_out_states = num_decoder_states(decoder_kind)

    source = keras.Input(shape=(None,), dtype="int32", name="source_ids")
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True,
                               name=f"{name}_embedding")(source)
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name=f"{name}_dropout")(x)
    block = RecurrentBlock(kind=kind, units=units, num_layers=num_layers,
                           bidirectional=bidirectional, return_sequences=True,
                           return_state=True, name=f"{name}_rnn")
    outputs, *states = block(x)
    per_direction = num_decoder_states(kind)
    directions = 2 if bidirectional else 1
    # states: forward states then backward states; LSTM: (h, c) per direction.
    grouped = [[states[d * per_direction + i] for d in range(directions)]
               for i in range(per_direction)]
    passthrough = (not bidirectional and kind == decoder_kind and units == decoder_units)
    decoder_states = []
    for index in range(num_out_states):
        # Decoder state i comes from encoder state i (h from h, c from c); an LSTM decoder
        # after a GRU encoder takes its c from the h as well.
        parts = grouped[min(index, per_direction - 1)]
        if passthrough:
            decoder_states.append(parts[0])
            continue
        joined = parts[0] if len(parts) == 1 else keras.layers.Concatenate(
            name=f"{name}_state_{index}_concat")(parts)
        decoder_states.append(keras.layers.Dense(decoder_units, activation="tanh",
                                                 name=f"{name}_bridge_{index}")(joined))
    # Named outputs (graph output names of the exported encoder).
    outputs = keras.layers.Identity(name="encoder_outputs")(outputs)
    decoder_states = [keras.layers.Identity(name=f"state_{n}")(s)
                      for n, s in zip(["h", "c"], decoder_states, strict=False)]
    return keras.Model(source, [outputs, *decoder_states], name=name)


def _make_attention(attention: str, units: int, score: str, name: str):
    from rnnkit.layers.attention import BahdanauAttention, LuongAttention

    if attention == "luong":
        return LuongAttention(score=score, name=name)
    if attention == "bahdanau":
        return BahdanauAttention(units, name=name)
    allowed = ", ".join(repr(a) for a in ATTENTION_KINDS)
    raise ValueError(f"`attention` must be one of {allowed}. Received: attention={attention!r}")


@dataclass
class AttentionDecoder:
    """The models of an attention decoder (they share every layer)."""

    training_model: keras.Model
    step_model: keras.Model
    kind: str
    units: int
    num_states: int


def build_attention_decoder(
    vocab_size: int,
    values_dim: int,
    embedding_dim: int = 64,
    units: int = 128,
    kind: str = "lstm",
    attention: str = "luong",
    attention_units: int | None = None,
    luong_score: str = "general",
    dropout_rate: float = 0.0,
    name: str = "decoder",
) -> AttentionDecoder:
    """Build the teacher-forcing and single-step models of an attention decoder.

    Args:
        vocab_size: size of the target vocabulary (logits width).
        values_dim: feature width ``D`` of the encoder outputs ("values") ``(B, Tv, D)``.
        embedding_dim: target embedding width.
        units: decoder RNN width (the initial states must be ``(B, units)``).
        kind: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        attention: ``"luong"`` (``luong_score`` ``"dot"`` needs ``units == values_dim``) or
            ``"bahdanau"`` (additive, ``attention_units`` wide, default ``units``).
        dropout_rate: dropout after the embedding and before the output projection.
    """
    _check_positive("vocab_size", vocab_size)
    _check_positive("values_dim", values_dim)
    _check_positive("embedding_dim", embedding_dim)
    _check_positive("units", units)
    num_states = num_decoder_states(kind)
    if attention == "luong" and luong_score == "dot" and units != values_dim:
        raise ValueError(
            "`luong_score='dot'` needs the decoder width to equal the encoder output width. "
            f"Received: units={units}, values_dim={values_dim}"
        )
    embedding = keras.layers.Embedding(vocab_size, embedding_dim, name=f"{name}_embedding")
    embed_dropout = keras.layers.Dropout(dropout_rate, name=f"{name}_embedding_dropout")
    rnn = RecurrentBlock(kind=kind, units=units, return_sequences=True, return_state=True,
                         name=f"{name}_rnn")
    attention_layer = _make_attention(attention, attention_units or units, luong_score,
                                      f"{name}_attention")
    concat = keras.layers.Concatenate(name=f"{name}_concat")
    combine = keras.layers.Dense(units, activation="tanh", name=f"{name}_attention_output")
    out_dropout = keras.layers.Dropout(dropout_rate, name=f"{name}_output_dropout")
    project = keras.layers.Dense(vocab_size, name=f"{name}_logits")

    def state_inputs(prefix: str):
        names = ["h", "c"] if kind == "lstm" else ["h"]
        return [keras.Input(shape=(units,), dtype="float32", name=f"{prefix}state_{n}")
                for n in names]

    # Teacher forcing: (target_in, *states, values, mask) -> logits (B, T, V).
    target_in = keras.Input(shape=(None,), dtype="int32", name="target_in")
    states_in = state_inputs("")
    values = keras.Input(shape=(None, values_dim), dtype="float32", name="encoder_outputs")
    values_mask = keras.Input(shape=(None,), dtype="bool", name="encoder_mask")
    x = embed_dropout(embedding(target_in))
    rnn_out, *_ = rnn(x, initial_state=states_in)
    context, _weights = attention_layer(rnn_out, values, mask=values_mask)
    hidden = out_dropout(combine(concat([rnn_out, context])))
    logits = project(hidden)
    training_model = keras.Model([target_in, *states_in, values, values_mask], logits,
                                 name=f"{name}_training")

    # One step: (token (B,1), *states, values, mask) -> (logits (B,V), *states, weights (B,Tv)).
    token = keras.Input(shape=(1,), dtype="int32", name="token")
    step_states_in = state_inputs("")
    step_values = keras.Input(shape=(None, values_dim), dtype="float32", name="encoder_outputs")
    step_mask = keras.Input(shape=(None,), dtype="bool", name="encoder_mask")
    y = embed_dropout(embedding(token))
    step_out, *new_states = rnn(y, initial_state=step_states_in)
    query = keras.layers.Reshape((units,), name=f"{name}_step_query")(step_out)
    step_context, step_weights = attention_layer(query, step_values, mask=step_mask)
    step_hidden = out_dropout(combine(concat([query, step_context])))
    step_logits = project(step_hidden)
    named_states = [keras.layers.Identity(name=f"new_state_{n}")(s)
                    for n, s in zip(["h", "c"], new_states, strict=False)]
    step_logits = keras.layers.Identity(name="logits")(step_logits)
    step_weights = keras.layers.Identity(name="attention")(step_weights)
    step_model = keras.Model([token, *step_states_in, step_values, step_mask],
                             [step_logits, *named_states, step_weights],
                             name=f"{name}_step")
    return AttentionDecoder(training_model, step_model, kind, units, num_states)


def build_seq2seq_model(encoder: keras.Model, decoder: AttentionDecoder,
                        pad_id: int = 0, name: str = "seq2seq") -> keras.Model:
    """``(source_ids (B, Ts), target_in (B, Tt)) → logits (B, Tt, V)`` for teacher forcing."""
    source = keras.Input(shape=(None,), dtype="int32", name="source_ids")
    target_in = keras.Input(shape=(None,), dtype="int32", name="target_in")
    encoder_outputs, *states = encoder(source)
    mask = PaddingMask(pad_id, name="source_mask")(source)
    logits = decoder.training_model([target_in, *states, encoder_outputs, mask])
    return keras.Model({"source_ids": source, "target_in": target_in}, logits, name=name)
