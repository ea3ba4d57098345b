"""The exporters: SavedModel, ONNX (native recurrent ops) and TFLite (fixed shapes).

Each exporter is a function `(name, model, out_dir, options) -> dict` that writes the files
of one graph into `out_dir` and returns what it wrote (file names per quantization, extra
manifest facts). They are registered by name in `EXPORTERS`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from rnnkit.export import onnx_graph
from rnnkit.runtime.model import model_filename


@dataclass
class ExportOptions:
    """Options shared by the exporters for one graph."""

    quantize: tuple[str, ...] = ("none",)
    tflite_shape: dict[str, tuple[int, ...]] | None = None
    signatures: dict = field(default_factory=dict)
    # Object (e.g. a tf.Module) owning what the extra signatures capture (lookup tables, other
    # models): saved with the SavedModel so that those resources are tracked.
    signature_owner: Any = None
    opset: int = onnx_graph.DEFAULT_OPSET
    # Keras layer names (top-level, or "outer/inner" paths) whose ONNX nodes int8 leaves float.
    quantize_exclude: tuple[str, ...] = ()
    # Input name -> shorter axis-1 lengths: extra fixed-shape signatures in the same TFLite file.
    tflite_buckets: dict[str, tuple[int, ...]] | None = None


Exporter = Callable[[str, keras.Model, Path, ExportOptions], dict]
EXPORTERS: dict[str, Exporter] = {}


def register_exporter(name: str):
    """Decorator adding an exporter to the `EXPORTERS` registry."""

    def wrap(fn: Exporter) -> Exporter:
        EXPORTERS[name] = fn
        return fn

    return wrap


def input_specs(model: keras.Model, shapes: dict[str, tuple] | None = None) -> list:
    """`tf.TensorSpec`s named like the model inputs (dynamic dims unless `shapes` fixes them)."""
    specs = []
    for name, kt in zip(onnx_graph.input_names(model), model.inputs, strict=False):
        shape = tuple(shapes[name]) if shapes else tuple(kt.shape)
        specs.append(tf.TensorSpec(shape, tf.as_dtype(kt.dtype), name=name))
    return specs


def serving_function(model: keras.Model, specs: list) -> tf.types.experimental.ConcreteFunction:
    """Concrete function `(**named inputs) -> {output name: tensor}` in inference mode."""
    out_names = onnx_graph.output_names(model)
    structure = getattr(model, "_inputs_struct", None)

    @tf.function(autograph=False)
    def serve(*args):
        if structure is not None:
            inputs = keras.tree.pack_sequence_as(structure, list(args))
        else:
            inputs = list(args) if len(args) > 1 else args[0]
        outputs = keras.tree.flatten(model(inputs, training=False))
        return {
            name: tf.identity(t, name=name) for name, t in zip(out_names, outputs, strict=False)
        }

    return serve.get_concrete_function(*specs)


# --------------------------------------------------------------------------------------
# SavedModel
# --------------------------------------------------------------------------------------


@register_exporter("saved_model")
def export_saved_model(name: str, model: keras.Model, out_dir: Path, options: ExportOptions):
    """`saved_model/<name>/` with a `serving_default` signature (+ the app's extra ones)."""
    target = out_dir / "saved_model" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    module = tf.Module()
    module.model = model
    with onnx_graph.no_cudnn(model):
        signatures = {"serving_default": serving_function(model, input_specs(model))}
        extra = dict(options.signatures or {})
        module.extra_functions = list(extra.values())
        if options.signature_owner is not None:
            module.signature_owner = options.signature_owner
        for sig_name, fn in extra.items():
            if isinstance(fn, tf.types.experimental.GenericFunction):
                fn = fn.get_concrete_function()
            signatures[sig_name] = fn
        tf.saved_model.save(module, str(target), signatures=signatures)
    return {"files": {"none": f"saved_model/{name}"}, "signatures": sorted(signatures)}


# --------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------


@register_exporter("onnx")
def export_onnx(name: str, model: keras.Model, out_dir: Path, options: ExportOptions):
    """`<name>.onnx` (native RNN/LSTM/GRU ops), `<name>.int8.onnx` (dynamic quantization) and
    `<name>.float16.onnx` (float16 weights, float32 arithmetic), as `options.quantize` lists."""
    import onnx

    proto = onnx_graph.convert_model(model, opset=options.opset)
    files, notes = {}, {}
    if "none" in options.quantize:
        files["none"] = model_filename(name, "onnx", "none")
        onnx.save(proto, str(out_dir / files["none"]))
    if "int8" in options.quantize:
        files["int8"] = model_filename(name, "onnx", "int8")
        notes["int8"] = quantize_onnx(proto, out_dir / files["int8"], options.quantize_exclude)
    if "float16" in options.quantize:
        files["float16"] = model_filename(name, "onnx", "float16")
        half, note = onnx_graph.float16_weights(proto)
        onnx.save(half, str(out_dir / files["float16"]))
        notes["float16"] = note
    recurrent = sorted({n.op_type for n in proto.graph.node if n.op_type in ("RNN", "LSTM", "GRU")})
    return {
        "files": files,
        "opset": options.opset,
        "recurrent_ops": recurrent,
        "quantization_notes": notes,
    }


def nodes_of_layers(proto, layer_names) -> list[str]:
    """ONNX node names that belong to the given Keras layers.

    The converter names every node of a layer `<layer path>/...` (`builder.unique` adds a
    `__<n>` suffix when the path is taken, e.g. by an output name), so a node belongs to layer
    `name` when its name starts with `name/` or `name__<digits>/`. Raises `UserError` for a name that matches no node.
    """
    import re

    from rnnkit.errors import UserError

    selected = []
    for layer_name in layer_names:
        pattern = re.compile(re.escape(layer_name) + r"(__\d+)?/")
        matched = [n.name for n in proto.graph.node if pattern.match(n.name)]
        if not matched:
            layers = sorted({n.name.split("/")[0] for n in proto.graph.node if "/" in n.name})
            raise UserError(
                f"`quantize_exclude` names layer {layer_name!r}, which has no ONNX nodes. "
                f"Layers with nodes: {layers}"
            )
        selected.extend(matched)
    return list(dict.fromkeys(selected))


ONNX_INT8_OPS = ("MatMul", "LSTM", "Gather")  # what ONNX int8 quantizes; Conv stays float32


def quantize_onnx(proto, target: Path, exclude_layers=(), op_types=ONNX_INT8_OPS) -> str:
    """Dynamic int8 quantization with ONNX Runtime; returns a note on what was quantized.

    The nodes of the Keras layers named in `exclude_layers` stay float32; `op_types` are the
    node types quantized (default `ONNX_INT8_OPS`).
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # ORT 1.31.1's quantized LSTM is wrong for rows of length 0: clamp lengths to >= 1.
    clamped = onnx_graph.set_min_sequence_length(proto, 1)
    excluded = nodes_of_layers(clamped, exclude_layers)
    root = logging.getLogger()
    level = root.level
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        source = Path(tmp) / "float.onnx"
        onnx.save(clamped, str(source))
        root.setLevel(logging.ERROR)  # ORT logs a pre-processing hint on the root logger
        try:
            # Convolutions stay float32: ORT's ConvInteger was 10x slower than the float Conv
            # on the captioning encoder and 8x less accurate on the speech frontend (measured).
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                             op_types_to_quantize=list(op_types),
                             nodes_to_exclude=excluded)
        finally:
            root.setLevel(level)
    kinds = {n.op_type for n in proto.graph.node}
    skipped = sorted(kinds & {"GRU", "RNN"})
    note = f"dynamic int8 weights ({', '.join(op_types)}); sequence_lens clamped to >= 1"
    if skipped:
        note += f"; {', '.join(skipped)} stay float32 (ONNX Runtime does not quantize them)"
    if exclude_layers:
        note += f"; layers kept float32: {', '.join(exclude_layers)}"
    return note


# --------------------------------------------------------------------------------------
# TFLite
# --------------------------------------------------------------------------------------

DEFAULT_TFLITE_BATCH = 1
DEFAULT_TFLITE_LENGTH = 128


def tflite_fixed_shapes(model: keras.Model, shapes: dict | None) -> dict[str, tuple[int, ...]]:
    """Input shapes for TFLite: given ones, else batch 1 and length 128. The batch is always
    fixed (a dynamic batch leaves the recurrent loops' element shapes unknown, which the
    converter rejects); a given ``None`` on another axis keeps that axis dynamic (any length;
    the runtime resizes the input per call, so cost follows the input's length)."""
    shapes = dict(shapes or {})
    result = {}
    names = onnx_graph.input_names(model)
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise ValueError(
            f"`tflite_shapes` names inputs {unknown} that the model does not have. "
            f"Model inputs: {names}"
        )
    for name, kt in zip(names, model.inputs, strict=False):
        if name in shapes:
            shape = tuple(None if d is None else int(d) for d in shapes[name])
            if len(shape) != len(kt.shape) or shape[0] is None or any(
                k is not None and k != s for k, s in zip(kt.shape, shape, strict=False)
            ):
                raise ValueError(
                    f"`tflite_shapes[{name!r}]` must be compatible with the input shape "
                    f"{tuple(kt.shape)} with a fixed batch (other axes may be None: any "
                    f"length). Received: {shape}"
                )
        else:
            shape = tuple(
                d if d is not None else (DEFAULT_TFLITE_BATCH if i == 0 else DEFAULT_TFLITE_LENGTH)
                for i, d in enumerate(kt.shape)
            )
        result[name] = shape
    return result


def tflite_max_length(model: keras.Model, shapes: dict[str, tuple]) -> int | None:
    """The longest fixed length of the model's dynamic axes (``None``: no fixed maximum)."""
    fixed = [
        shape[i]
        for kt, shape in zip(model.inputs, shapes.values(), strict=False)
        for i in range(1, len(shape))
        if kt.shape[i] is None and shape[i] is not None
    ]
    return max(fixed) if fixed else None


def tflite_bucket_shapes(shapes: dict[str, tuple[int, ...]],
                         buckets: dict[str, Sequence[int]] | None) -> list[dict[str, tuple]]:
    """The fixed input shapes of every TFLite signature, shortest first, ``shapes`` last.

    ``buckets``: input name -> axis-1 lengths shorter than its fixed length (each list as long
    as the others: bucket ``i`` takes the ``i``-th length of every named input)."""
    buckets = {k: sorted({int(v) for v in values}) for k, values in (buckets or {}).items()}
    if not buckets:
        return [shapes]
    unknown = sorted(set(buckets) - set(shapes))
    counts = {len(v) for v in buckets.values()}
    if unknown or len(counts) != 1:
        raise ValueError(f"`tflite_buckets` must name inputs of {sorted(shapes)} with lists of "
                         f"one length. Received: {buckets}")
    for key, lengths in buckets.items():
        if len(shapes[key]) < 2 or shapes[key][1] is None or lengths[0] < 1 or \
                lengths[-1] >= shapes[key][1]:
            raise ValueError(f"`tflite_buckets[{key!r}]` must hold lengths in [1, "
                             f"{shapes[key][1] if len(shapes[key]) > 1 else 0}). "
                             f"Received: {lengths}")
    result = []
    for index in range(counts.pop()):
        bucket = dict(shapes)
        for key, lengths in buckets.items():
            bucket[key] = (shapes[key][0], lengths[index], *shapes[key][2:])
        result.append(bucket)
    return [*result, shapes]


def _tflite_converters(frozen: list, staging: Path) -> Callable[[], Any]:
    """A maker of fresh converters for one frozen function, or for several as named
    signatures (through a variable-free SavedModel written once to ``staging``:
    ``from_concrete_functions`` takes only one function)."""
    if len(frozen) == 1:
        return lambda: tf.lite.TFLiteConverter.from_concrete_functions(frozen)
    signatures = {f"bucket{i}": function for i, function in enumerate(frozen)}
    tf.saved_model.save(tf.Module(), str(staging), signatures=signatures)
    return lambda: tf.lite.TFLiteConverter.from_saved_model(str(staging),
                                                           signature_keys=list(signatures))


@register_exporter("tflite")
def export_tflite(name: str, model: keras.Model, out_dir: Path, options: ExportOptions):
    """`<name>.tflite`, `<name>.int8.tflite`, `<name>.float16.tflite` (fixed shapes; with
    `tflite_buckets`, one signature `bucket<i>` per shape in the same file)."""
    shapes = tflite_fixed_shapes(model, options.tflite_shape)
    bucket_shapes = tflite_bucket_shapes(shapes, options.tflite_buckets)
    with onnx_graph.no_cudnn(model):
        concretes = [serving_function(model, input_specs(model, b)) for b in bucket_shapes]
        result = write_tflite(name, concretes, bucket_shapes, out_dir, options.quantize)
    result["tflite"]["max_length"] = tflite_max_length(model, shapes)
    if "int8" in options.quantize and options.quantize_exclude:
        result["tflite"]["quantization_notes"]["int8"] = (
            "dynamic-range int8 of every constant weight tensor; `quantize_exclude` "
            f"({', '.join(options.quantize_exclude)}) is not applied: the TFLite converter "
            "cannot leave chosen layers float (a layer stays float only if it holds no "
            "constant weights)"
        )
    return result


def write_tflite(name: str, concretes: list, bucket_shapes: list[dict[str, tuple]],
                 out_dir: Path, quantize: Sequence[str]) -> dict:
    """Freeze the fixed-shape concrete functions (one per bucket, the full shape last) and
    write ``<name>[.int8|.float16].tflite``; returns ``files`` and the manifest's ``tflite``
    section (``max_length`` left to the caller)."""
    import tempfile

    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    functions = [convert_variables_to_constants_v2(c) for c in concretes]
    concrete, frozen, shapes = concretes[-1], functions[-1], bucket_shapes[-1]
    files = {}
    with tempfile.TemporaryDirectory() as staging:
        converters = _tflite_converters(functions, Path(staging) / "signatures")
        for quantization in ("none", "int8", "float16"):
            if quantization not in quantize:
                continue
            converter = converters()
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            if quantization == "int8":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            elif quantization == "float16":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.target_spec.supported_types = [tf.float16]
            files[quantization] = model_filename(name, "tflite", quantization)
            (out_dir / files[quantization]).write_bytes(converter.convert())
    output_shapes = {
        key: [None if d is None else int(d) for d in spec.shape]
        for key, spec in concrete.structured_outputs.items()
    }
    # The frozen function keeps the flat output order of the dict (sorted keys), not its keys:
    # record which TFLite tensor (a signature runner: output_<i>) holds which named output.
    keys = tf.nest.flatten({key: key for key in concrete.structured_outputs})
    section: dict[str, Any] = {
        "quantization_notes": {},
        "inputs": {k: list(v) for k, v in shapes.items()},
        "outputs": output_shapes,
        "input_tensors": {
            name: t.name.split(":")[0] for name, t in zip(shapes, frozen.inputs, strict=False)
        },
        "output_tensors": {
            key: t.name.split(":")[0] for key, t in zip(keys, frozen.outputs, strict=False)
        },
    }
    if len(bucket_shapes) > 1:
        section["buckets"] = [
            {"signature": f"bucket{i}", "inputs": {k: list(v) for k, v in bucket.items()},
             "signature_inputs": {k: k for k in bucket},
             "signature_outputs": {key: f"output_{j}" for j, key in enumerate(keys)}}
            for i, bucket in enumerate(bucket_shapes)]
    return {"files": files, "tflite": section}


def random_inputs(model: keras.Model, batch: int = 2, length: int = 5, seed: int = 0) -> dict:
    """Small random inputs for a model (used when no parity inputs are given)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, kt in zip(onnx_graph.input_names(model), model.inputs, strict=False):
        shape = [
            d if d is not None else (batch if i == 0 else length) for i, d in enumerate(kt.shape)
        ]
        dtype = np.dtype(tf.as_dtype(kt.dtype).as_numpy_dtype)
        if dtype == np.bool_:
            feeds[name] = np.ones(shape, bool)
        elif np.issubdtype(dtype, np.integer):
            feeds[name] = rng.integers(1, 3, shape).astype(dtype)
        else:
            feeds[name] = rng.normal(size=shape).astype(dtype)
    return feeds
