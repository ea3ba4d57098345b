"""Export Keras models to SavedModel, ONNX (native recurrent ops) and TFLite, with parity.

    from rnnkit.export import export_model
    manifest = export_model(
        {"model": model},                       # or {"encoder": e, "decoder_step": d}
        "exported/sentiment",
        app="sentiment",
        formats=("saved_model", "onnx", "tflite"),
        quantize=("none", "int8", "float16"),
        tflite_shapes={"model": {"tokens": (1, 64)}},
        parity_inputs={"model": [{"tokens": ids}]},
        assets={"tokenizer.json": "runs/x/assets/tokenizer.json", "labels.json": b"[...]"},
        manifest_extra={"labels": ["neg", "pos"], "tokenizer": "assets/tokenizer.json"},
    )

Layout of the export directory (one entry per graph name, here "model"):

    manifest.json            format_version, app, versions, per-graph inputs/outputs
                             (name, dtype, shape with null for dynamic dims), padding "right",
                             files per format/quantization, TFLite fixed shapes and max_length,
                             ONNX recurrent ops, parity figures (max abs diff vs Keras)
    assets/                  tokenizer.json, labels, feature settings (from `assets=`)
    model.onnx               native ONNX RNN/LSTM/GRU ops, dynamic batch and time
    model.int8.onnx          ONNX Runtime dynamic int8 (GRU/RNN ops stay float32)
    model.tflite             fixed shapes (builtin ops only); `.int8.tflite` dynamic-range,
    model.float16.tflite     float16 weights
    saved_model/model/       TensorFlow SavedModel: `serving_default` + app signatures

The directory is written atomically (a temporary sibling directory renamed into place), so a
failure leaves any previous export untouched. Read it back without TensorFlow through
`rnnkit.runtime.load`.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import rnnkit
from rnnkit.errors import UserError
from rnnkit.export import onnx_graph
from rnnkit.export.formats import (
    EXPORTERS,
    ExportOptions,
    register_exporter,
    tflite_bucket_shapes,
    tflite_fixed_shapes,
)
from rnnkit.export.onnx_graph import convert_model as convert_to_onnx
from rnnkit.runtime.model import (
    MANIFEST_NAME,
    QUANTIZATIONS,
    SHARED_QUANTIZATIONS,
    quantize_choices,
)
from rnnkit.runtime.schema import SCHEMA_VERSION, check_manifest
from rnnkit.text.tokenizer import companion_config, companion_config_name

_LIBRARIES = (
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "tf2onnx",
    "onnx",
    "onnxruntime",
    "ai-edge-litert",
    "numpy",
)

__all__ = [
    "EXPORTERS",
    "QUANTIZATIONS",
    "format_quantizations",
    "convert_to_onnx",
    "export_model",
    "measure_parity",
    "register_exporter",
]


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _dtype_name(dtype) -> str:
    return np.dtype(tf.as_dtype(dtype).as_numpy_dtype).name


def graph_signature(model: keras.Model) -> dict:
    """Manifest `inputs` / `outputs` of one model (shape `null` for dynamic dims)."""

    def spec(name, kt):
        return {
            "name": name,
            "dtype": _dtype_name(kt.dtype),
            "shape": [None if d is None else int(d) for d in kt.shape],
        }

    return {
        "inputs": [
            spec(n, kt) for n, kt in zip(onnx_graph.input_names(model), model.inputs, strict=False)
        ],
        "outputs": [
            spec(n, kt)
            for n, kt in zip(onnx_graph.output_names(model), model.outputs, strict=False)
        ],
    }


def keras_outputs(model: keras.Model, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the Keras model on named numpy inputs; outputs by manifest name."""
    structure = getattr(model, "_inputs_struct", None)
    flat = [np.asarray(inputs[n]) for n in onnx_graph.input_names(model)]
    args = keras.tree.pack_sequence_as(structure, flat) if structure is not None else flat
    with onnx_graph.no_cudnn(model):
        outputs = keras.tree.flatten(model(args, training=False))
    return {
        n: keras.ops.convert_to_numpy(t)
        for n, t in zip(onnx_graph.output_names(model), outputs, strict=False)
    }


def _max_diff(reference: dict, got: dict) -> float:
    worst = 0.0
    for name, ref in reference.items():
        value = np.asarray(got[name])
        ref = np.asarray(ref)
        if value.shape != ref.shape:
            raise AssertionError(
                f"Output {name!r} has shape {value.shape}, Keras gives {ref.shape}"
            )
        if ref.size:
            worst = max(worst, float(np.max(np.abs(value.astype(np.float64) - ref))))
    return worst


def measure_parity(
    export_dir: str | os.PathLike,
    models: Mapping[str, keras.Model],
    parity_inputs: Mapping[str, Sequence[Mapping[str, np.ndarray]]],
    formats: Sequence[str],
) -> dict:
    """Max abs difference vs Keras per graph / format / quantization on the given inputs.

    Every ONNX and TFLite variant the directory's manifest lists is measured through
    `rnnkit.runtime` (so the figures include its
    padding/slicing); SavedModel through its `serving_default` signature.
    """
    from rnnkit import runtime

    export_dir = Path(export_dir)
    result: dict[str, dict[str, dict[str, float]]] = {}
    references = {
        name: [keras_outputs(models[name], feeds) for feeds in parity_inputs.get(name, [])]
        for name in models
    }
    for name in models:
        if references[name]:
            result[name] = {}
    if "saved_model" in formats:
        for name, refs in references.items():
            if not refs:
                continue
            loaded = tf.saved_model.load(str(export_dir / "saved_model" / name))
            serve = loaded.signatures["serving_default"]
            diffs = []
            for feeds, ref in zip(parity_inputs[name], refs, strict=False):
                out = serve(**{k: tf.constant(v) for k, v in feeds.items()})
                diffs.append(_max_diff(ref, {k: v.numpy() for k, v in out.items()}))
            result[name]["saved_model"] = {"none": max(diffs)}
    for backend, quantization in runtime.runtime_variants(runtime.load_manifest(export_dir)):
        loaded = runtime.load(export_dir, backend=backend, quantization=quantization)
        for name, refs in references.items():
            diffs = []
            for index, (feeds, ref) in enumerate(zip(parity_inputs[name], refs, strict=True)):
                try:
                    diffs.append(_max_diff(ref, loaded.run(name, dict(feeds))))
                except UserError as error:
                    raise UserError(
                        f"`parity_inputs[{name!r}][{index}]` cannot run on the exported "
                        f"{backend} model: {error}"
                    ) from None
            if diffs:
                result[name].setdefault(backend, {})[quantization] = max(diffs)
    return result


TOKENIZER_SUFFIX = "tokenizer.json"
INT8_NOTE = ("dynamic-range int8: activation scales are computed at run time over each input "
             "tensor, so an int8 output can change with the other rows of its batch (and, in "
             "ONNX Runtime, with the thread count); none and float16 outputs depend on neither. "
             "The int8 figures in this manifest were measured under agreement.measured_with.")


def _write_assets(assets: Mapping[str, Any], target: Path) -> list[str]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, value in (assets or {}).items():
        path = target / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, bytes):
            path.write_bytes(value)
        elif isinstance(value, (dict, list)):
            path.write_text(json.dumps(value, indent=2, ensure_ascii=False), encoding="utf-8")
        else:
            source = Path(value)
            if source.is_dir():
                shutil.copytree(source, path)
            elif source.is_file():
                shutil.copyfile(source, path)
            else:
                raise UserError(
                    f"Asset {filename!r} must be bytes, a JSON-able dict/list, or an existing "
                    f"file or directory. Received: {value!r}"
                )
        written.append(filename)
        if filename.endswith(TOKENIZER_SUFFIX) and path.is_file():
            companion = companion_config_name(filename)
            config = companion_config(path.read_text(encoding="utf-8"), Path(filename).name)
            (target / companion).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
            written.append(companion)
    return sorted(written)


def format_quantizations(formats: Sequence[str],
                         quantize: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Which quantizations each format writes, from `quantize` entries `"q"` (every format
    whose `SHARED_QUANTIZATIONS` has it; `"none"` is added) or `"format:q"` (that format gets
    exactly those, from its `FORMAT_QUANTIZATIONS`)."""
    if isinstance(quantize, str):
        quantize = (quantize,)
    if len(quantize):
        quantize = _check_choices("quantize", quantize, quantize_choices(formats))
    shared = ("none", *(q for q in quantize if ":" not in q))
    result = {}
    for fmt in formats:
        own = tuple(q.split(":", 1)[1] for q in quantize if q.startswith(f"{fmt}:"))
        # a format registered elsewhere (`register_exporter`) is offered every quantization
        chosen = own or tuple(q for q in shared if q in SHARED_QUANTIZATIONS.get(fmt, QUANTIZATIONS))
        result[fmt] = tuple(q for q in QUANTIZATIONS if q in chosen)
    return result


def _check_choices(name: str, values: Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise UserError(
            f"`{name}` must be a non-empty list of {', '.join(repr(a) for a in allowed)}. "
            f"Received: {name}={list(values)!r}"
        )
    return tuple(dict.fromkeys(values))


def _json_scalar(value: Any) -> Any:
    """numpy scalars (metrics computed with numpy) as plain JSON numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _write_manifest(path: Path, manifest: dict) -> None:
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=_json_scalar) + "\n",
                    encoding="utf-8")


def export_model(
    models: Mapping[str, keras.Model] | keras.Model,
    out_dir: str | os.PathLike,
    *,
    app: str | None = None,
    formats: Sequence[str] = ("saved_model", "onnx", "tflite"),
    quantize: Sequence[str] = ("none", "int8", "float16"),
    tflite_shapes: Mapping[str, Mapping[str, Sequence[int]]] | None = None,
    tflite_buckets: Mapping[str, Mapping[str, Sequence[int]]] | None = None,
    parity_inputs: Mapping[str, Sequence[Mapping[str, np.ndarray]]] | None = None,
    assets: Mapping[str, Any] | None = None,
    manifest_extra: Mapping[str, Any] | None = None,
    signatures: Mapping[str, Mapping[str, Any]] | None = None,
    signature_owners: Mapping[str, Any] | None = None,
    opset: int = onnx_graph.DEFAULT_OPSET,
    quantize_exclude: Mapping[str, Sequence[str]] | None = None,
    finalize: Callable[[Path, dict], None] | None = None,
) -> dict:
    """Export one or more Keras functional models into one self-describing directory.

    Args:
        models: graph name -> functional Keras model (`{"model": m}` for one-model apps,
            `{"encoder": e, "decoder_step": d}` for seq2seq). A bare model means `{"model": m}`.
        out_dir: export directory, replaced atomically (the old one stays until the new one is
            complete; on error it is left untouched and no temporary directory remains).
        app: app name recorded in the manifest.
        formats: names from `EXPORTERS` (`"saved_model"`, `"onnx"`, `"tflite"`).
        quantize: `"none"` (float32; always written unless a format names its own list),
            `"int8"` (ONNX dynamic quantization, TFLite dynamic-range), `"float16"` (weights
            stored as float16, arithmetic in float32; ONNX and TFLite). `"<format>:<q>"` entries
            (e.g. `"onnx:float16"`, `"tflite:int8"`) give that format exactly its own list,
            without float32 unless named: a compact export for a size budget.
        tflite_shapes: graph name -> input name -> fixed TFLite shape; dynamic dims not given
            default to batch 1 and length 128. Recorded in the manifest; the runtime pads to them.
        tflite_buckets: graph name -> input name -> shorter axis-1 lengths: the TFLite file
            then holds one fixed-shape signature per length (plus `tflite_shapes`), and the
            runtime runs each input on the shortest that fits (cost grows with the input).
        parity_inputs: graph name -> list of named numpy input dicts (right-padded batches).
            Max abs differences vs Keras are measured for every format and quantization.
        assets: file name under `assets/` -> bytes, dict/list (written as JSON), or a path.
        manifest_extra: extra top-level manifest entries (tokenizer settings, labels, metrics).
        signatures: graph name -> {signature name: tf.function with an input_signature} added
            to that graph's SavedModel beside `serving_default`.
        signature_owners: graph name -> the object (a `tf.Module`) owning the resources those
            signatures capture (lookup tables, other models); saved with that SavedModel.
        opset: ONNX opset.
        quantize_exclude: graph name -> Keras layer names whose nodes int8 ONNX keeps float32
            (e.g. a signal-processing frontend). TFLite's dynamic-range quantizer cannot skip
            layers; its manifest note says so.
        finalize: called as `finalize(staging_dir, manifest)` once every artifact is written
            and measured, before the directory is moved into place: an app adds its own files
            (held-out samples) and manifest entries (task-level parity) there, so they are part
            of the same atomic replace. The manifest is written again after it returns.

    Returns:
        The manifest (also written to `<out_dir>/manifest.json`).
    """
    if isinstance(models, keras.Model):
        models = {"model": models}
    if not models:
        raise UserError("`models` must name at least one Keras model. Received: {}")
    formats = _check_choices("formats", formats, tuple(EXPORTERS))
    per_format = format_quantizations(formats, quantize)
    tflite_shapes = dict(tflite_shapes or {})
    tflite_buckets = dict(tflite_buckets or {})
    parity_inputs = dict(parity_inputs or {})
    signatures = dict(signatures or {})
    signature_owners = dict(signature_owners or {})
    quantize_exclude = {k: tuple(v) for k, v in (quantize_exclude or {}).items()}
    for arg_name, mapping in (
        ("tflite_shapes", tflite_shapes),
        ("tflite_buckets", tflite_buckets),
        ("parity_inputs", parity_inputs),
        ("signatures", signatures),
        ("signature_owners", signature_owners),
        ("quantize_exclude", quantize_exclude),
    ):
        unknown = sorted(set(mapping) - set(models))
        if unknown:
            raise UserError(
                f"`{arg_name}` names graphs {unknown} that are not in `models` ({sorted(models)})"
            )
    if "tflite" in formats:
        for name, model in models.items():
            tflite_bucket_shapes(tflite_fixed_shapes(model, tflite_shapes.get(name)),
                                 tflite_buckets.get(name))  # validate early

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{token}"
    tmp.mkdir()
    try:
        graphs: dict[str, dict] = {}
        for name, model in models.items():
            info = graph_signature(model)
            info["files"] = {}
            for fmt in formats:
                options = ExportOptions(
                    quantize=per_format[fmt],
                    tflite_shape=tflite_shapes.get(name),
                    tflite_buckets=tflite_buckets.get(name),
                    signatures=signatures.get(name, {}),
                    signature_owner=signature_owners.get(name),
                    opset=opset,
                    quantize_exclude=quantize_exclude.get(name, ()),
                )
                result = EXPORTERS[fmt](name, model, tmp, options)
                info["files"][fmt] = result.pop("files")
                for key, value in result.items():
                    if key == "tflite":
                        info["tflite"] = value
                    else:
                        info.setdefault(fmt, {})[key] = value
            graphs[name] = info
        manifest = {
            "format_version": rnnkit.EXPORT_FORMAT_VERSION,
            "schema_version": SCHEMA_VERSION,
            "app": app,
            "rnnkit_version": rnnkit.__version__,
            "padding": "right",
            "formats": list(formats),
            "quantization": [q for q in QUANTIZATIONS
                             if any(q in held for held in per_format.values())],
            "graphs": graphs,
            "assets": _write_assets(assets or {}, tmp / "assets"),
            "libraries": _library_versions(),
            "parity": {},
        }
        if "int8" in manifest["quantization"]:
            manifest["quantization_notes"] = {"int8": INT8_NOTE}
        for key, value in (manifest_extra or {}).items():
            if key in manifest:
                raise UserError(f"`manifest_extra` may not override the exporter's {key!r} entry")
            manifest[key] = value
        _write_manifest(tmp / MANIFEST_NAME, manifest)
        if parity_inputs:
            manifest["parity"] = measure_parity(tmp, models, parity_inputs, formats)
            _write_manifest(tmp / MANIFEST_NAME, manifest)
        if finalize is not None:
            finalize(tmp, manifest)
            _write_manifest(tmp / MANIFEST_NAME, manifest)
        check_manifest(manifest, f"the manifest exported to {str(out_dir)!r}")
        _replace_dir(tmp, out_dir, token)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _replace_dir(new: Path, target: Path, token: str) -> None:
    """Move `new` to `target`, replacing an existing `target` only once `new` is in place."""
    if target.exists():
        old = target.parent / f".{target.name}.old-{token}"
        os.replace(target, old)
        try:
            os.replace(new, target)
        except BaseException:
            os.replace(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)
