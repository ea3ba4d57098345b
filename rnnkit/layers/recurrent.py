"""`RecurrentBlock`: a stack of Keras recurrent layers behind one argument set.

The block holds Keras's own `SimpleRNN` / `LSTM` / `GRU` layers (optionally wrapped in
`keras.layers.Bidirectional`) so that the fused kernels (cuDNN on GPU) apply, and so that
the exporter can read standard weights from `RecurrentBlock.rnn_layers`.
"""

from __future__ import annotations

import keras

try:  # Keras stores masks on tensors through this helper (works for every tensor type).
    from keras.src.backend.common.masking import get_keras_mask as _get_keras_mask
except ImportError:  # pragma: no cover - other Keras versions

    def _get_keras_mask(x):
        return getattr(x, "_keras_mask", None)


# Recurrent layer kinds by name: every app config's `kind` / `rnn_kind` Literal is a subset
# (tests/test_config.py checks it).
RECURRENT_KINDS: dict[str, type[keras.layers.Layer]] = {
    "rnn": keras.layers.SimpleRNN,
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
}

MERGE_MODES = ("concat", "sum", "mul", "ave")
RNN_ACTIVATIONS = ("tanh", "relu")

# Number of state tensors each kind carries per direction.
_NUM_STATES = {"rnn": 1, "lstm": 2, "gru": 1}


def _check_rate(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1). Received: {name}={value!r}")
    return float(value)


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")
    return value


@keras.saving.register_keras_serializable(package="rnnkit")
class RecurrentBlock(keras.layers.Layer):
    """A stack of `num_layers` recurrent layers of one kind.

    Args:
        kind: `"rnn"` (`keras.layers.SimpleRNN`), `"lstm"` or `"gru"` (`reset_after=True`).
        units: hidden size of every layer (per direction).
        num_layers: number of stacked layers; intermediate layers return sequences.
        bidirectional: wrap every layer in `keras.layers.Bidirectional`.
        merge_mode: how the two directions are combined: `"concat"`, `"sum"`, `"mul"`,
            `"ave"` (only used when `bidirectional=True`).
        dropout_rate: dropout on each layer's inputs, in [0, 1).
        recurrent_dropout_rate: dropout on each layer's recurrent state, in [0, 1)
            (anything above 0 disables the cuDNN fast path).
        return_sequences: return the last layer's full sequence `(B, T, D)` instead of its
            final output `(B, D)`.
        return_state: also return the last layer's final states:
            `[outputs, *states]` (lstm: h, c; gru/rnn: h; bidirectional: forward states
            then backward states).
        activation: `"tanh"` or `"relu"` for `kind="rnn"`; lstm/gru accept only `"tanh"`.
        use_cudnn: passed to Keras's LSTM/GRU (`"auto"`, `True`, `False`; ignored for
            `kind="rnn"`). Build with `use_cudnn=False` before exporting from a GPU machine:
            the cuDNN op (`CudnnRNNV3`) has no ONNX equivalent.

    Call arguments:
        inputs: `(batch, time, features)`.
        mask: optional bool `(batch, time)`; taken from `inputs` when it carries a Keras mask
            (e.g. after `Embedding(mask_zero=True)` or `Masking`). Right padding is the
            export contract.
        initial_state: optional list of tensors for the first layer (for a bidirectional
            first layer: forward states then backward states, Keras's convention).
        training: Python bool, enables dropout.

    Output width is `units`, or `2 * units` for a bidirectional block with
    `merge_mode="concat"`.
    """

    def __init__(
        self,
        kind: str = "lstm",
        units: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        merge_mode: str = "concat",
        dropout_rate: float = 0.0,
        recurrent_dropout_rate: float = 0.0,
        return_sequences: bool = False,
        return_state: bool = False,
        activation: str = "tanh",
        use_cudnn: str | bool = "auto",
        **kwargs,
    ):
        if kind not in RECURRENT_KINDS:
            allowed = ", ".join(repr(k) for k in RECURRENT_KINDS)
            raise ValueError(f"`kind` must be one of {allowed}. Received: kind={kind!r}")
        units = _check_positive_int("units", units)
        num_layers = _check_positive_int("num_layers", num_layers)
        if merge_mode not in MERGE_MODES:
            allowed = ", ".join(repr(m) for m in MERGE_MODES)
            raise ValueError(
                f"`merge_mode` must be one of {allowed}. Received: merge_mode={merge_mode!r}"
            )
        dropout_rate = _check_rate("dropout_rate", dropout_rate)
        recurrent_dropout_rate = _check_rate("recurrent_dropout_rate", recurrent_dropout_rate)
        if kind == "rnn":
            if activation not in RNN_ACTIVATIONS:
                allowed = ", ".join(repr(a) for a in RNN_ACTIVATIONS)
                raise ValueError(
                    f"`activation` must be one of {allowed} for kind='rnn'. "
                    f"Received: activation={activation!r}"
                )
        elif activation != "tanh":
            raise ValueError(
                f"`activation` must be 'tanh' for kind={kind!r} (the cuDNN fast path and the "
                "native ONNX LSTM/GRU ops require the standard tanh/sigmoid gates); a custom "
                f"activation is only available for kind='rnn'. Received: activation={activation!r}"
            )
        if use_cudnn not in ("auto", True, False):
            raise ValueError(
                f"`use_cudnn` must be 'auto', True or False. Received: use_cudnn={use_cudnn!r}"
            )
        super().__init__(**kwargs)
        self.kind = kind
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bool(bidirectional)
        self.merge_mode = merge_mode
        self.dropout_rate = dropout_rate
        self.recurrent_dropout_rate = recurrent_dropout_rate
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.activation = activation
        self.use_cudnn = use_cudnn
        self.supports_masking = True

        # Sublayers are created here (so Keras tracks them) and built in build().
        self.rnn_layers: list[keras.layers.Layer] = [
            self._make_layer(index) for index in range(num_layers)
        ]

    def _make_layer(self, index: int) -> keras.layers.Layer:
        last = index == self.num_layers - 1
        options = dict(
            units=self.units,
            dropout=self.dropout_rate,
            recurrent_dropout=self.recurrent_dropout_rate,
            return_sequences=self.return_sequences if last else True,
            return_state=self.return_state if last else False,
            name=f"{self.kind}_{index}",
        )
        if self.kind == "rnn":
            options["activation"] = self.activation
        else:
            options["use_cudnn"] = self.use_cudnn
            if self.kind == "gru":
                options["reset_after"] = True
        layer = RECURRENT_KINDS[self.kind](**options)
        if self.bidirectional:
            layer = keras.layers.Bidirectional(
                layer, merge_mode=self.merge_mode, name=f"bidirectional_{index}"
            )
        return layer

    @property
    def num_states(self) -> int:
        """Number of state tensors returned with `return_state=True`."""
        return _NUM_STATES[self.kind] * (2 if self.bidirectional else 1)

    @property
    def output_units(self) -> int:
        """Width of the output features."""
        if self.bidirectional and self.merge_mode == "concat":
            return 2 * self.units
        return self.units

    def _check_input_shape(self, shape) -> None:
        shape = tuple(shape)
        if len(shape) != 3:
            raise ValueError(
                f"`RecurrentBlock` expects 3-D inputs (batch, time, features). "
                f"Received: inputs with shape={shape} (rank {len(shape)})"
            )
        if shape[-1] is None:
            raise ValueError(
                "`RecurrentBlock` needs a known features dimension (the last axis). "
                f"Received: inputs with shape={shape}"
            )

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        shape = tuple(input_shape)
        for layer in self.rnn_layers:
            if not layer.built:
                layer.build(shape)
            shape = (shape[0], shape[1], self.output_units)
        self.built = True

    def call(self, inputs, mask=None, initial_state=None, training=None):
        self._check_input_shape(inputs.shape)
        if mask is None:
            # Keras only fills `mask` itself when `inputs` is the sole tensor argument.
            mask = _get_keras_mask(inputs)
        if initial_state is not None and not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        if initial_state is not None:
            initial_state = list(initial_state)
            expected = self.num_states
            if len(initial_state) != expected:
                raise ValueError(
                    f"`initial_state` must be a list of {expected} tensors for "
                    f"kind={self.kind!r}, bidirectional={self.bidirectional}. "
                    f"Received: {len(initial_state)} tensors"
                )
        outputs = inputs
        for index, layer in enumerate(self.rnn_layers):
            outputs = layer(
                outputs,
                mask=mask,
                initial_state=initial_state if index == 0 else None,
                training=training,
            )
        if self.return_state:
            outputs = list(outputs)
        return outputs

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            mask = _get_keras_mask(inputs)
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * self.num_states
        return output_mask

    def compute_output_shape(self, input_shape, *args, **kwargs):
        input_shape = tuple(input_shape)
        batch = input_shape[0]
        if self.return_sequences:
            output_shape = (batch, input_shape[1], self.output_units)
        else:
            output_shape = (batch, self.output_units)
        if self.return_state:
            return [output_shape] + [(batch, self.units)] * self.num_states
        return output_shape

    def get_config(self):
        config = {
            "kind": self.kind,
            "units": self.units,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "merge_mode": self.merge_mode,
            "dropout_rate": self.dropout_rate,
            "recurrent_dropout_rate": self.recurrent_dropout_rate,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "activation": self.activation,
            "use_cudnn": self.use_cudnn,
        }
        return {**super().get_config(), **config}
