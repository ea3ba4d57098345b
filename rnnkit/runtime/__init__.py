"""Inference on rnnkit export directories with numpy + ONNX Runtime / LiteRT only.

This package must never import TensorFlow or Keras (services install only the runtime).

    import rnnkit.runtime
    model = rnnkit.runtime.load("exported/sentiment", backend="onnx")   # or "tflite"
    outputs = model.run("model", {"token_ids": ids})                     # dict name -> array
"""

from rnnkit.runtime.model import (
    BACKENDS,
    EXPORT_FORMATS,
    QUANTIZATIONS,
    ExportedModel,
    asset_path,
    load,
    load_manifest,
    load_tokenizer,
    model_filename,
    resolve_quantization,
    runtime_variants,
)
from rnnkit.runtime.schema import SCHEMA_VERSION, check_manifest, validate_manifest

__all__ = [
    "BACKENDS",
    "EXPORT_FORMATS",
    "QUANTIZATIONS",
    "SCHEMA_VERSION",
    "ExportedModel",
    "asset_path",
    "check_manifest",
    "load",
    "load_manifest",
    "load_tokenizer",
    "model_filename",
    "resolve_quantization",
    "runtime_variants",
    "validate_manifest",
]
