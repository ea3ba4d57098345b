"""Keras 3 functional model → ONNX graph with native recurrent ops.

tf2onnx alone turns a masked LSTM and every GRU / SimpleRNN into a generic (slow) `Loop`.
This converter walks the functional graph node by node instead:

* recurrent layer calls (`SimpleRNN`, `LSTM`, `GRU`, `Bidirectional` of one, and
  `rnnkit.layers.RecurrentBlock`) are written directly as native ONNX `RNN` / `LSTM` / `GRU`
  nodes from the layer weights, with `sequence_lens` taken from the Keras mask
  (right padding only: that is the export contract);
* nested functional models are walked recursively;
* every other layer / operation call is converted on its own with tf2onnx (a `tf.function`
  with dynamic batch/time input specs) and its nodes are spliced into the big graph under a
  unique name prefix.

Keras 3 records masks as ordinary graph nodes (e.g. `not_equal` after an
`Embedding(mask_zero=True)`) passed through the `mask=` argument, so masks need no special
tracking: they are tensors like any other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
import numpy as np
import onnx
import tensorflow as tf
from keras import tree
from onnx import TensorProto, helper, numpy_helper

DEFAULT_OPSET = 17

# Initializer holding the lower bound applied to every `sequence_lens`. It is 0 in the float
# model and set to 1 before ONNX Runtime's dynamic quantization (ORT 1.31.1 returns wrong
# results for a row whose length is 0 in the quantized LSTM).
MIN_SEQUENCE_LENGTH_NAME = "rnnkit_min_sequence_length"

_ONNX_ACTIVATIONS = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu"}


def _recurrent_block_class():
    try:
        from rnnkit.layers.recurrent import RecurrentBlock
    except Exception:  # pragma: no cover - the layer module is optional for this converter
        return None
    return RecurrentBlock


def _kind_of(layer) -> str | None:
    if isinstance(layer, keras.layers.LSTM):
        return "lstm"
    if isinstance(layer, keras.layers.GRU):
        return "gru"
    if isinstance(layer, keras.layers.SimpleRNN):
        return "rnn"
    return None


def is_recurrent(layer) -> bool:
    """True for the layer calls this converter writes as native ONNX recurrent nodes."""
    block = _recurrent_block_class()
    if block is not None and isinstance(layer, block):
        return True
    if isinstance(layer, keras.layers.Bidirectional):
        return _kind_of(layer.forward_layer) is not None
    return _kind_of(layer) is not None


def _onnx_dtype(dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(tf.as_dtype(dtype).as_numpy_dtype))


def _value_info(name: str, dtype, shape) -> onnx.ValueInfoProto:
    dims = [d if d is not None else f"{name}_dim{i}" for i, d in enumerate(shape)]
    return helper.make_tensor_value_info(name, _onnx_dtype(dtype), dims)


class _GraphBuilder:
    """Accumulates nodes, initializers and opset imports with unique names."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.opsets: dict[str, int] = {}
        self._used: set[str] = set()
        self._counter = 0
        self.has_min_length = False

    def unique(self, hint: str) -> str:
        hint = hint.replace(":", "_")
        name = hint
        while name in self._used:
            self._counter += 1
            name = f"{hint}__{self._counter}"
        self._used.add(name)
        return name

    def reserve(self, name: str) -> None:
        self._used.add(name)

    def const(self, array, hint: str) -> str:
        name = self.unique(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def ints(self, values, hint="const") -> str:
        return self.const(np.asarray(values, dtype=np.int64), hint)

    def node(self, op_type: str, inputs, num_outputs: int = 1, hint: str | None = None, **attrs):
        hint = hint or op_type.lower()
        outputs = [self.unique(f"{hint}_out{i}") for i in range(num_outputs)]
        self.nodes.append(
            helper.make_node(op_type, list(inputs), outputs, name=self.unique(hint), **attrs)
        )
        return outputs if num_outputs > 1 else outputs[0]

    def min_length(self) -> str:
        if not self.has_min_length:
            self.initializers.append(
                numpy_helper.from_array(np.asarray([0], np.int32), MIN_SEQUENCE_LENGTH_NAME)
            )
            self.reserve(MIN_SEQUENCE_LENGTH_NAME)
            self.has_min_length = True
        return MIN_SEQUENCE_LENGTH_NAME


# --------------------------------------------------------------------------------------
# Native recurrent layers
# --------------------------------------------------------------------------------------


def _activation_name(fn, layer_name: str) -> str:
    name = getattr(fn, "__name__", str(fn))
    if name not in _ONNX_ACTIVATIONS:
        allowed = ", ".join(repr(a) for a in _ONNX_ACTIVATIONS)
        raise ValueError(
            f"ONNX export supports recurrent activations {allowed}. "
            f"Received: activation={name!r} in layer {layer_name!r}"
        )
    return _ONNX_ACTIVATIONS[name]


def _direction_weights(layer):
    """(op_type, W, R, B, attrs) for one direction of a Keras RNN layer (ONNX layouts)."""
    kind = _kind_of(layer)
    cell = layer.cell
    units = cell.units
    kernel = np.asarray(keras.ops.convert_to_numpy(cell.kernel), np.float32)
    recurrent = np.asarray(keras.ops.convert_to_numpy(cell.recurrent_kernel), np.float32)
    bias = (
        np.asarray(keras.ops.convert_to_numpy(cell.bias), np.float32)
        if getattr(cell, "use_bias", True) and cell.bias is not None
        else None
    )
    attrs: dict = {}
    if kind == "lstm":
        # Keras gate order i, f, c, o  →  ONNX i, o, f, c.
        def reorder(a, axis=-1):
            i, f, c, o = np.split(a, 4, axis=axis)
            return np.concatenate([i, o, f, c], axis=axis)

        w, r = reorder(kernel).T, reorder(recurrent).T
        wb = reorder(bias) if bias is not None else np.zeros(4 * units, np.float32)
        b = np.concatenate([wb, np.zeros_like(wb)])
        acts = [
            _activation_name(cell.recurrent_activation, layer.name),
            _activation_name(cell.activation, layer.name),
            _activation_name(cell.activation, layer.name),
        ]
        op_type = "LSTM"
    elif kind == "gru":
        # Keras and ONNX share the gate order z, r, h.
        w, r = kernel.T, recurrent.T
        if bias is None:
            b = np.zeros(6 * units, np.float32)
        elif cell.reset_after:
            b = np.concatenate([bias[0], bias[1]])
        else:
            b = np.concatenate([bias, np.zeros_like(bias)])
        attrs["linear_before_reset"] = 1 if cell.reset_after else 0
        acts = [
            _activation_name(cell.recurrent_activation, layer.name),
            _activation_name(cell.activation, layer.name),
        ]
        op_type = "GRU"
    else:
        w, r = kernel.T, recurrent.T
        wb = bias if bias is not None else np.zeros(units, np.float32)
        b = np.concatenate([wb, np.zeros_like(wb)])
        acts = [_activation_name(cell.activation, layer.name)]
        op_type = "RNN"
    return op_type, w, r, b, acts, attrs


def _check_rnn_layer(layer) -> None:
    if getattr(layer, "stateful", False):
        raise ValueError(
            f"ONNX export does not support stateful recurrent layers. Received: layer "
            f"{layer.name!r} with stateful=True"
        )
    if getattr(layer, "unroll", False):
        pass  # unrolling changes nothing numerically


class _RecurrentEmitter:
    """Writes one Keras recurrent layer call (time-major internally) into a graph."""

    def __init__(self, builder: _GraphBuilder):
        self.b = builder

    def sequence_lens(self, mask: str | None) -> str | None:
        if mask is None:
            return None
        b = self.b
        as_int = b.node("Cast", [mask], to=TensorProto.INT32, hint="mask_cast")
        lengths = b.node(
            "ReduceSum", [as_int, b.ints([1], "axis1")], keepdims=0, hint="sequence_lens"
        )
        return b.node("Max", [lengths, b.min_length()], hint="sequence_lens_min")

    def _initial(self, states: list[str]) -> str:
        b = self.b
        axis0 = b.ints([0], "axis0")
        parts = [b.node("Unsqueeze", [s, axis0], hint="init_state") for s in states]
        return parts[0] if len(parts) == 1 else b.node("Concat", parts, axis=0, hint="init")

    def layer(
        self,
        layer,
        x_tm: str,
        seq_lens: str | None,
        initial_state: list[str] | None,
        return_sequences: bool,
    ):
        """Emit one (possibly bidirectional) RNN layer.

        Returns (Y (T, D, B, H) or None, Y_h (D, B, H), Y_c or None, directions, layers).
        """
        b = self.b
        if isinstance(layer, keras.layers.Bidirectional):
            directions = [layer.forward_layer, layer.backward_layer]
            direction = "bidirectional"
        else:
            directions = [layer]
            direction = "reverse" if layer.go_backwards else "forward"
            if layer.go_backwards and return_sequences:
                raise ValueError(
                    "ONNX export does not support a unidirectional layer with "
                    f"go_backwards=True and return_sequences=True. Received: layer {layer.name!r}"
                )
        for d in directions:
            _check_rnn_layer(d)
        parts = [_direction_weights(d) for d in directions]
        op_type, _, _, _, acts, attrs = parts[0]
        units = directions[0].cell.units
        w = b.const(np.stack([p[1] for p in parts]), f"{layer.name}_W")
        r = b.const(np.stack([p[2] for p in parts]), f"{layer.name}_R")
        bias = b.const(np.stack([p[3] for p in parts]), f"{layer.name}_B")
        inputs = [x_tm, w, r, bias, seq_lens or ""]
        num_states = 2 if op_type == "LSTM" else 1
        if initial_state:
            # Keras: forward states then backward states; per direction h (then c).
            per_dir = len(initial_state) // len(directions)
            hs = [initial_state[i * per_dir] for i in range(len(directions))]
            inputs.append(self._initial(hs))
            if op_type == "LSTM":
                cs = [initial_state[i * per_dir + 1] for i in range(len(directions))]
                inputs.append(self._initial(cs))
        while inputs and inputs[-1] == "":
            inputs.pop()
        activations = acts * len(directions)
        outs = b.node(
            op_type,
            inputs,
            num_outputs=1 + num_states,
            hint=layer.name,
            hidden_size=units,
            direction=direction,
            activations=activations,
            **attrs,
        )
        y, y_h = outs[0], outs[1]
        y_c = outs[2] if op_type == "LSTM" else None
        return y, y_h, y_c, directions

    def merge_sequences(self, y: str, layer) -> str:
        """(T, D, B, H) → (T, B, features) following the Bidirectional merge mode."""
        b = self.b
        if not isinstance(layer, keras.layers.Bidirectional):
            return b.node("Squeeze", [y, b.ints([1], "axis1")], hint="y_seq")
        mode = layer.merge_mode
        if mode == "concat":
            t = b.node("Transpose", [y], perm=[0, 2, 1, 3], hint="y_bi")
            return b.node("Reshape", [t, b.ints([0, 0, -1], "shape_tb")], hint="y_concat")
        return self._reduce(y, 1, mode)

    def merge_last(self, y_h: str, layer) -> str:
        """(D, B, H) → (B, features)."""
        b = self.b
        if not isinstance(layer, keras.layers.Bidirectional):
            return b.node("Squeeze", [y_h, b.ints([0], "axis0")], hint="y_last")
        mode = layer.merge_mode
        if mode == "concat":
            t = b.node("Transpose", [y_h], perm=[1, 0, 2], hint="h_bi")
            return b.node("Reshape", [t, b.ints([0, -1], "shape_b")], hint="h_concat")
        return self._reduce(y_h, 0, mode)

    def _reduce(self, value: str, axis: int, mode: str) -> str:
        b = self.b
        op = {"sum": "ReduceSum", "ave": "ReduceMean", "mul": "ReduceProd"}.get(mode)
        if op is None:
            raise ValueError(
                "ONNX export supports Bidirectional merge_mode 'concat', 'sum', 'ave', 'mul'. "
                f"Received: merge_mode={mode!r}"
            )
        if op == "ReduceSum":
            return b.node(op, [value, b.ints([axis], "axis")], keepdims=0, hint="merge")
        return b.node(op, [value], axes=[axis], keepdims=0, hint="merge")

    def states(self, y_h: str, y_c: str | None, num_dirs: int) -> list[str]:
        """Keras order: per direction h (then c), forward first."""
        b = self.b
        result = []
        for d in range(num_dirs):
            index = b.ints([d], "dir")
            for value in (y_h, y_c):
                if value is None:
                    continue
                picked = b.node("Gather", [value, index], axis=0, hint="state_pick")
                result.append(b.node("Squeeze", [picked, b.ints([0], "axis0")], hint="state"))
        return result


def _layer_flags(layer):
    """(return_sequences, return_state) of a recurrent layer call."""
    return bool(layer.return_sequences), bool(layer.return_state)


def emit_recurrent_call(
    builder: _GraphBuilder, layer, x: str, mask: str | None, initial_state: list[str] | None
) -> tuple[list[str], str | None]:
    """Write a recurrent layer call. Returns (flat Keras outputs, output mask)."""
    b = builder
    em = _RecurrentEmitter(b)
    block_cls = _recurrent_block_class()
    if block_cls is not None and isinstance(layer, block_cls):
        stack = list(layer.rnn_layers)
    else:
        stack = [layer]
    seq_lens = em.sequence_lens(mask)
    x_tm = b.node("Transpose", [x], perm=[1, 0, 2], hint="to_time_major")
    outputs: list[str] = []
    out_mask = None
    for index, sub in enumerate(stack):
        inner = sub.forward_layer if isinstance(sub, keras.layers.Bidirectional) else sub
        return_sequences, return_state = _layer_flags(inner)
        last = index == len(stack) - 1
        y, y_h, y_c, directions = em.layer(
            sub, x_tm, seq_lens, initial_state if index == 0 else None, return_sequences
        )
        if not last:
            x_tm = em.merge_sequences(y, sub)
            continue
        if return_sequences:
            seq_tm = em.merge_sequences(y, sub)
            zero_out = getattr(inner, "zero_output_for_mask", False)
            if mask is not None and not zero_out:
                # Keras repeats the last valid output over padded steps; ONNX writes zeros.
                last_out = em.merge_last(y_h, sub)
                mask_tm = b.node("Transpose", [mask], perm=[1, 0], hint="mask_tm")
                mask3 = b.node("Unsqueeze", [mask_tm, b.ints([2], "axis2")], hint="mask3")
                seq_tm = b.node("Where", [mask3, seq_tm, last_out], hint="carry_last")
            main = b.node("Transpose", [seq_tm], perm=[1, 0, 2], hint="to_batch_major")
            out_mask = mask
        else:
            main = em.merge_last(y_h, sub)
        outputs.append(main)
        if return_state:
            outputs.extend(em.states(y_h, y_c, len(directions)))
    return outputs, out_mask


# --------------------------------------------------------------------------------------
# Generic layer calls through tf2onnx
# --------------------------------------------------------------------------------------


def _unique_tensors(node) -> list:
    seen, result = set(), []
    for kt in node.arguments.keras_tensors:
        if id(kt) not in seen:
            seen.add(id(kt))
            result.append(kt)
    return result


def _rename_graph(graph: onnx.GraphProto, mapping: dict[str, str], prefix: str) -> None:
    """Rename every value / node in `graph` (recursively): mapped names or prefixed names."""

    def rename(name: str) -> str:
        if not name:
            return name
        return mapping.get(name, f"{prefix}{name}")

    for node in graph.node:
        node.name = f"{prefix}{node.name}"
        for i, name in enumerate(node.input):
            node.input[i] = rename(name)
        for i, name in enumerate(node.output):
            node.output[i] = rename(name)
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                _rename_graph(attr.g, mapping, prefix)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    _rename_graph(g, mapping, prefix)
    for collection in (graph.input, graph.output, graph.value_info):
        for v in collection:
            v.name = rename(v.name)
    for init in graph.initializer:
        init.name = rename(init.name)


def _convert_generic(builder: _GraphBuilder, op, node, values: dict, opset: int, prefix: str):
    """Convert one non-recurrent operation call with tf2onnx and splice it in."""
    import tf2onnx

    kts = _unique_tensors(node)
    specs = [
        tf.TensorSpec(tuple(kt.shape), tf.as_dtype(kt.dtype), name=f"in_{i}")
        for i, kt in enumerate(kts)
    ]

    @tf.function(autograph=False)
    def fn(*flat):
        filled = {id(kt): t for kt, t in zip(kts, flat, strict=False)}
        args, kwargs = node.arguments.fill_in(filled)
        result = op(*args, **kwargs)
        return [tf.identity(t) for t in tree.flatten(result)]

    proto, _ = tf2onnx.convert.from_function(fn, input_signature=specs, opset=opset)
    graph = proto.graph
    mapping = {}
    for inp in graph.input:
        index = int(inp.name.split(":")[0][len("in_") :])
        mapping[inp.name] = values[id(kts[index])]
    out_names, passthrough = [], []
    for out in graph.output:
        new = builder.unique(f"{prefix}out")
        if out.name in mapping:
            # A graph output that is a graph input (identity layer) needs an explicit node.
            passthrough.append(helper.make_node("Identity", [mapping[out.name]], [new], name=new))
        else:
            mapping[out.name] = new
        out_names.append(new)
    _rename_graph(graph, mapping, prefix)
    builder.nodes.extend(passthrough)
    builder.nodes.extend(graph.node)
    builder.initializers.extend(graph.initializer)
    for imp in proto.opset_import:
        builder.opsets[imp.domain] = max(builder.opsets.get(imp.domain, 0), imp.version)
    return out_names


# --------------------------------------------------------------------------------------
# Graph walk
# --------------------------------------------------------------------------------------


def _is_functional(op) -> bool:
    return isinstance(op, keras.Model) and hasattr(op, "_nodes_by_depth") and op.inputs


def _walk(builder: _GraphBuilder, model, values: dict, opset: int, path: str) -> None:
    for depth in sorted(model._nodes_by_depth.keys(), reverse=True):
        for node in model._nodes_by_depth[depth]:
            op = node.operation
            if not op or node.is_input:
                continue
            if any(id(x) not in values for x in node.input_tensors):
                continue
            prefix = builder.unique(f"{path}{op.name}") + "/"
            if is_recurrent(op):
                args = node.arguments.args
                kwargs = node.arguments.kwargs
                x = values[id(args[0])]
                mask = kwargs.get("mask")
                mask = values[id(mask)] if mask is not None else None
                initial = kwargs.get("initial_state")
                if initial is None and len(args) > 1:
                    initial = args[1]
                initial = (
                    [values[id(t)] for t in tree.flatten(initial)] if initial is not None else None
                )
                outs, _ = emit_recurrent_call(builder, op, x, mask, initial)
            elif _is_functional(op):
                flat_in = tree.flatten((node.arguments.args, node.arguments.kwargs))
                flat_in = [t for t in flat_in if isinstance(t, keras.KerasTensor)]
                if len(flat_in) != len(op.inputs):
                    outs = _convert_generic(builder, op, node, values, opset, prefix)
                else:
                    for inner, outer in zip(op.inputs, flat_in, strict=False):
                        values[id(inner)] = values[id(outer)]
                    _walk(builder, op, values, opset, prefix)
                    outs = [values[id(t)] for t in op.outputs]
            else:
                outs = _convert_generic(builder, op, node, values, opset, prefix)
            if len(outs) != len(node.outputs):
                raise ValueError(
                    f"ONNX export: layer {op.name!r} produced {len(outs)} outputs, "
                    f"expected {len(node.outputs)}"
                )
            for kt, name in zip(node.outputs, outs, strict=False):
                values[id(kt)] = name


def output_names(model) -> list[str]:
    """Names of the model outputs (Keras `output_names`, made unique)."""
    names = list(getattr(model, "output_names", None) or [])
    if len(names) != len(model.outputs):
        names = [kt._keras_history.operation.name for kt in model.outputs]
    seen: dict[str, int] = {}
    result = []
    for name in names:
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
        result.append(name)
    return result


def input_names(model) -> list[str]:
    return [kt.name for kt in model.inputs]


@contextlib.contextmanager
def no_cudnn(model) -> Iterator[None]:
    """Temporarily set `use_cudnn=False` on every recurrent layer of `model`."""
    changed = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if hasattr(layer, "use_cudnn") and layer.use_cudnn is not False:
            changed.append((layer, layer.use_cudnn))
            layer.use_cudnn = False
    try:
        yield
    finally:
        for layer, value in changed:
            layer.use_cudnn = value


def convert_model(model: keras.Model, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Convert a functional Keras 3 model to an ONNX model with native recurrent ops."""
    if not _is_functional(model):
        raise ValueError(
            "ONNX export needs a functional (or Sequential with an Input) Keras model. "
            f"Received: {type(model).__name__}"
        )
    builder = _GraphBuilder()
    builder.opsets[""] = opset
    values: dict[int, str] = {}
    graph_inputs = []
    for name, kt in zip(input_names(model), model.inputs, strict=False):
        builder.reserve(name)
        values[id(kt)] = name
        graph_inputs.append(_value_info(name, kt.dtype, kt.shape))
    outs = output_names(model)
    for name in outs:
        builder.reserve(name)
    with no_cudnn(model):
        _walk(builder, model, values, opset, "")
    graph_outputs = []
    for name, kt in zip(outs, model.outputs, strict=False):
        builder.nodes.append(
            helper.make_node("Identity", [values[id(kt)]], [name], name=builder.unique(name))
        )
        graph_outputs.append(_value_info(name, kt.dtype, kt.shape))
    graph = helper.make_graph(
        builder.nodes, model.name, graph_inputs, graph_outputs, builder.initializers
    )
    opset_imports = [helper.make_opsetid(d, v) for d, v in sorted(builder.opsets.items())]
    proto = helper.make_model(graph, opset_imports=opset_imports, producer_name="rnnkit")
    proto.ir_version = min(proto.ir_version, 9)
    proto = onnx.shape_inference.infer_shapes(proto)
    onnx.checker.check_model(proto)
    return proto


def set_min_sequence_length(proto: onnx.ModelProto, value: int) -> onnx.ModelProto:
    """Copy of `proto` whose `sequence_lens` are clamped to at least `value`."""
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    for i, init in enumerate(copy.graph.initializer):
        if init.name == MIN_SEQUENCE_LENGTH_NAME:
            copy.graph.initializer[i].CopyFrom(
                numpy_helper.from_array(np.asarray([value], np.int32), MIN_SEQUENCE_LENGTH_NAME)
            )
    return copy


FLOAT16_MIN_ELEMENTS = 16  # smaller float32 constants (scales, epsilons) stay float32
FLOAT16_SUFFIX = "__float16"


def float16_weights(proto: onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """Copy of `proto` whose float32 weights are stored as float16, each read through a `Cast`
    back to float32: half the file, float32 arithmetic (ONNX Runtime folds the casts into
    float32 constants when the session is created), the same rounding as TFLite's float16.
    Constants of fewer than `FLOAT16_MIN_ELEMENTS` values, or beyond float16's range, stay
    float32. Returns the copy and a manifest note."""
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    graph = copy.graph
    limit = float(np.finfo(np.float16).max)
    casts, halved, kept = [], 0, 0
    for index, init in enumerate(graph.initializer):
        if init.data_type != TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(init)
        if values.size < FLOAT16_MIN_ELEMENTS or not np.all(np.abs(values) <= limit):
            kept += values.size
            continue
        name = init.name
        stored = name + FLOAT16_SUFFIX
        graph.initializer[index].CopyFrom(numpy_helper.from_array(values.astype(np.float16), stored))
        casts.append(helper.make_node("Cast", [stored], [name], name=stored + "_cast",
                                      to=TensorProto.FLOAT))
        halved += values.size
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    note = (f"float16 weights ({halved} values, cast to float32 at load; float32 arithmetic); "
            f"{kept} values of small or out-of-range constants stay float32")
    return copy, note
