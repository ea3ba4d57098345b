"""Rebuild an existing export's TFLite files with other shapes, without retraining.

An export holds TFLite files of one fixed shape per graph: every input is padded to the
maximum. ``rebuild_tflite`` rebuilds a graph's TFLite files with new shapes (e.g. a dynamic
length axis, or length-bucket signatures) from a Keras model holding the export's weights
(the SavedModel alone cannot: its recurrent loops were traced with a dynamic batch, which the
TFLite converter rejects), after checking that the model gives the SavedModel's outputs on
the given inputs. It measures the new files against the SavedModel and rewrites the files
and the manifest's ``tflite`` section and ``parity`` entry; the files are converted beside
the old ones and moved into place only when every variant converted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from rnnkit.errors import UserError
from rnnkit.export import _max_diff, keras_outputs, onnx_graph
from rnnkit.export.formats import (
    input_specs,
    serving_function,
    tflite_bucket_shapes,
    tflite_fixed_shapes,
    tflite_max_length,
    write_tflite,
)
from rnnkit.runtime.model import MANIFEST_NAME, load_manifest

MATCH_TOLERANCE = 1e-4


def _weight_key(parts: list[str]) -> tuple[int, int, str]:
    """(recurrent layer, direction, weight name) of a checkpoint or Keras weight path."""
    layer = next((int(m.group(1)) for p in parts
                  for m in [re.fullmatch(r"(?:bidirectional_|)(\d+)", p)] if m), 0)
    direction = 1 if any("backward" in p for p in parts) else 0
    return layer, direction, parts[-1].lstrip("_")


def restore_checkpoint(model: keras.Model, checkpoint: str | os.PathLike) -> None:
    """Assign the weights of an export's SavedModel checkpoint
    (``saved_model/<graph>/variables/variables``) to ``model``, a Keras model of the same
    architecture: the checkpoint's layers in order onto ``model``'s layers that hold weights,
    matched within a layer by weight name (recurrent layer and direction included). A
    UserError names the first mismatch (layer count, a missing weight, a shape)."""
    try:
        reader = tf.train.load_checkpoint(str(checkpoint))
    except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError) as error:
        raise UserError(f"Cannot read the weights checkpoint {checkpoint}: "
                        f"{str(error).splitlines()[0]}") from None
    groups: dict[int, dict] = defaultdict(dict)
    for name in reader.get_variable_to_shape_map():
        parts = name.split("/")
        if parts[:2] == ["model", "_operations"]:
            groups[int(parts[2])][_weight_key(parts[3:-2])] = reader.get_tensor(name)
    layers = [op for op in model._operations if getattr(op, "weights", None)]
    if len(layers) != len(groups):
        raise UserError(f"{checkpoint} holds {len(groups)} layers with weights, the model has "
                        f"{len(layers)}: not the same architecture")
    for (_, values), layer in zip(sorted(groups.items()), layers, strict=True):
        for weight in layer.weights:
            key = _weight_key(re.split(r"/", weight.path)[1:] or [weight.name])
            if key not in values:
                raise UserError(f"{checkpoint} has no weight {weight.path} for layer "
                                f"{layer.name}: not the same architecture")
            value = values.pop(key)
            if tuple(value.shape) != tuple(weight.shape):
                raise UserError(f"{layer.name}: {weight.path} has shape {tuple(weight.shape)} "
                                f"in the model, {tuple(value.shape)} in {checkpoint}")
            weight.assign(value)
        if values:
            raise UserError(f"{layer.name}: checkpoint values left unassigned: {list(values)}")


def rebuild_tflite(export_dir: str | os.PathLike, graph: str, model: keras.Model,
                   parity_inputs: Sequence[Mapping[str, np.ndarray]],
                   shapes: Mapping[str, Sequence[int | None]] | None = None,
                   buckets: Mapping[str, Sequence[int]] | None = None) -> dict[str, Any]:
    """Rebuild ``graph``'s TFLite files from ``model`` with input ``shapes`` (default: the
    current ones; ``None`` on a length axis: any length) and optional ``buckets`` (input name
    -> shorter axis-1 lengths, one signature each). ``model`` must reproduce
    ``saved_model/<graph>`` on ``parity_inputs`` (max abs diff < 1e-4); the manifest's TFLite
    parity becomes the max abs difference of each new file from the SavedModel on them.
    Returns the new ``tflite`` section."""
    from rnnkit import runtime

    export_dir = Path(export_dir)
    manifest = load_manifest(export_dir)
    info = manifest["graphs"].get(graph)
    if info is None or "tflite" not in info.get("files", {}):
        raise UserError(f"{export_dir} has no TFLite graph {graph!r}. "
                        f"Graphs: {sorted(manifest['graphs'])}")
    if not parity_inputs:
        raise UserError("`parity_inputs` must hold at least one input batch to check on")
    saved = export_dir / "saved_model" / graph
    if not saved.is_dir():
        raise UserError(f"{saved} is missing: the rebuilt graph is checked against it")
    loaded = tf.saved_model.load(str(saved))  # kept alive: the signature uses its variables
    serve = loaded.signatures["serving_default"]
    references = [{k: v.numpy() for k, v in serve(
        **{n: tf.constant(a) for n, a in feeds.items()}).items()} for feeds in parity_inputs]
    mismatch = max(_max_diff(ref, keras_outputs(model, feeds))
                   for ref, feeds in zip(references, parity_inputs, strict=True))
    if mismatch > MATCH_TOLERANCE:
        raise UserError(f"The model does not reproduce {saved} (max abs diff {mismatch:.3g}): "
                        "it must hold the export's weights")
    current = {k: tuple(v) for k, v in info["tflite"]["inputs"].items()}
    wanted = tflite_fixed_shapes(model, {**current, **(shapes or {})})
    bucket_shapes = tflite_bucket_shapes(wanted, buckets)
    quantize = list(info["files"]["tflite"])
    staging = export_dir / f".rebuild-{os.getpid()}"
    staging.mkdir()
    try:
        with onnx_graph.no_cudnn(model):
            concretes = [serving_function(model, input_specs(model, b)) for b in bucket_shapes]
            result = write_tflite(graph, concretes, bucket_shapes, staging, quantize)
        for filename in result["files"].values():
            os.replace(staging / filename, export_dir / filename)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    section = {**result["tflite"],
               "quantization_notes": info["tflite"].get("quantization_notes", {}),
               "max_length": tflite_max_length(model, bucket_shapes[-1]),
               "parity_reference": "saved_model (rebuilt by rnnkit.export.rebuild)"}
    info["tflite"] = section
    info["files"]["tflite"] = result["files"]
    _write(export_dir / MANIFEST_NAME, manifest)
    parity = manifest.setdefault("parity", {}).setdefault(graph, {})
    parity["tflite"] = {}
    for quantization in quantize:
        variant = runtime.load(export_dir, backend="tflite", quantization=quantization)
        parity["tflite"][quantization] = max(
            _max_diff(ref, variant.run(graph, dict(feeds)))
            for ref, feeds in zip(references, parity_inputs, strict=True))
    _write(export_dir / MANIFEST_NAME, manifest)
    return section


def _write(path: Path, manifest: dict) -> None:
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    os.replace(temporary, path)
