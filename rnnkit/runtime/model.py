"""Run an rnnkit export directory with numpy + ONNX Runtime or LiteRT (no TensorFlow).

Layout read here (written by `rnnkit.export.export_model`): `manifest.json`, `assets/`,
`<graph>.onnx`, `<graph>.int8.onnx`, `<graph>.tflite`, `<graph>.int8.tflite`,
`<graph>.float16.tflite` (and `saved_model/<graph>/`, which this module does not use).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit import EXPORT_FORMAT_VERSION
from rnnkit.errors import ArtifactError, UserError
from rnnkit.runtime.schema import check_manifest

BACKENDS = ("onnx", "tflite")
# Every format an export directory can hold (`rnnkit.export.EXPORTERS` registers one each).
EXPORT_FORMATS = ("saved_model", "onnx", "tflite")
QUANTIZATIONS = ("none", "int8", "float16")
# The quantizations each format can write (`"format:q"` in `export_model(quantize=...)`), and
# those a plain `"q"` entry gives it: float16 ONNX only when asked for by name.
FORMAT_QUANTIZATIONS = {"saved_model": ("none",), "onnx": ("none", "int8", "float16"),
                        "tflite": ("none", "int8", "float16")}
SHARED_QUANTIZATIONS = {"saved_model": ("none",), "onnx": ("none", "int8"),
                        "tflite": ("none", "int8", "float16")}
MANIFEST_NAME = "manifest.json"


def quantize_choices(formats) -> list[str]:
    """The entries `export_model(quantize=...)` accepts for `formats`: every plain quantization
    and each format's `"format:q"` (a format registered elsewhere is offered every one)."""
    return [*QUANTIZATIONS,
            *(f"{f}:{q}" for f in formats for q in FORMAT_QUANTIZATIONS.get(f, QUANTIZATIONS))]


def model_filename(graph: str, backend: str, quantization: str) -> str:
    """File name of one graph in one format: `model.onnx`, `model.int8.tflite`, ..."""
    suffix = "" if quantization == "none" else f".{quantization}"
    return f"{graph}{suffix}.{backend}"


def runtime_variants(manifest: dict) -> list[tuple[str, str]]:
    """The (backend, quantization) pairs an export directory holds for every graph, in a
    stable order: ONNX first, then TFLite; "none" first."""
    graphs = list(manifest.get("graphs", {}).values())
    variants = []
    for backend in ("onnx", "tflite"):
        if not graphs or backend not in manifest.get("formats", []):
            continue
        held = [set(graph.get("files", {}).get(backend, {})) for graph in graphs]
        for quantization in ("none", "int8", "float16"):
            if all(quantization in files for files in held):
                variants.append((backend, quantization))
    return variants


def resolve_quantization(manifest: dict, backend: str, quantization: str) -> str:
    """The quantization to load: `quantization`, except that `"none"` (the default) on an
    export that holds no float32 files for `backend` (a compact export written with
    `"<format>:<q>"` quantizations) means that backend's first variant (int8, then float16)."""
    if quantization != "none" or backend not in manifest.get("formats", []):
        return quantization
    held = [q for b, q in runtime_variants(manifest) if b == backend]
    if held and "none" not in held:
        return held[0]
    return quantization


def load_manifest(export_dir: str | os.PathLike) -> dict:
    """Read and validate `manifest.json` of an export directory."""
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise ArtifactError(f"Export directory not found. Received: export_dir={str(export_dir)!r}")
    path = export_dir / MANIFEST_NAME
    if not path.is_file():
        raise ArtifactError(
            f"{MANIFEST_NAME} is missing from the export directory {str(export_dir)!r}: "
            "is this an rnnkit export directory?"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{str(path)!r} is not valid JSON: {error}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("graphs"), dict):
        raise ArtifactError(f"{str(path)!r} has no `graphs` section: not an rnnkit manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise ArtifactError(f"{str(path)!r} has no integer `format_version`. Received: {version!r}")
    if version > EXPORT_FORMAT_VERSION:
        raise ArtifactError(
            f"{str(path)!r} has format_version={version}, newer than this rnnkit supports "
            f"({EXPORT_FORMAT_VERSION}): upgrade rnnkit to load it"
        )
    check_manifest(manifest, str(path))
    return manifest


def _is_int(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.integer)


def _convert_input(graph: str, spec: dict, value: Any) -> np.ndarray:
    """Check dtype/rank/shape of one input against its manifest spec; cast safe dtypes."""
    name = spec["name"]
    expected = np.dtype(spec["dtype"])
    array = np.asarray(value)
    if array.dtype != expected:
        ok = False
        if _is_int(expected) and (_is_int(array.dtype) or array.dtype == np.bool_):
            info = np.iinfo(expected)
            ok = array.size == 0 or (array.min() >= info.min and array.max() <= info.max)
        elif np.issubdtype(expected, np.floating) and (
            np.issubdtype(array.dtype, np.floating) or _is_int(array.dtype)
        ):
            ok = True
        elif expected == np.bool_ and array.dtype == np.bool_:
            ok = True
        if not ok:
            raise UserError(
                f"Input {name!r} of graph {graph!r} must have dtype {expected.name}. "
                f"Received: dtype={array.dtype.name} (cannot be converted safely)"
            )
        array = array.astype(expected)
    shape = spec["shape"]
    if array.ndim != len(shape):
        raise UserError(
            f"Input {name!r} of graph {graph!r} must have rank {len(shape)} (shape "
            f"{_shape_str(shape)}). Received: shape={tuple(array.shape)}"
        )
    for axis, (want, got) in enumerate(zip(shape, array.shape, strict=False)):
        if want is not None and want != got:
            raise UserError(
                f"Input {name!r} of graph {graph!r} must have size {want} on axis {axis} "
                f"(shape {_shape_str(shape)}). Received: shape={tuple(array.shape)}"
            )
    return array


def _shape_str(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


class _OnnxGraph:
    def __init__(self, path: Path, num_threads: int | None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # ORT raises its own exception types
            raise ArtifactError(
                f"ONNX Runtime cannot load {str(path)!r} (corrupt or incompatible model "
                f"file): {str(error).splitlines()[0] if str(error) else type(error).__name__}"
            ) from None
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self.output_names, inputs)
        return dict(zip(self.output_names, values, strict=False))


class _TFLiteGraph:
    """A fixed-shape TFLite graph: pads batch/time to the fixed shapes, slices back."""

    def __init__(self, path: Path, graph: str, info: dict, num_threads: int | None):
        from ai_edge_litert.interpreter import Interpreter

        self.graph = graph
        self.info = info
        fixed = (info.get("tflite") or {}).get("inputs")
        if not fixed:
            raise ArtifactError(
                f"The manifest has no TFLite fixed shapes for graph {graph!r}: "
                "was it exported with the 'tflite' format?"
            )
        self.fixed_inputs = {k: tuple(v) for k, v in fixed.items()}
        self.fixed_outputs = {k: tuple(v) for k, v in (info["tflite"].get("outputs") or {}).items()}
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except Exception as error:
            raise ArtifactError(
                f"LiteRT cannot load {str(path)!r} (corrupt or incompatible model file): "
                f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
            ) from None
        self.batch = min(shape[0] for shape in self.fixed_inputs.values())
        # Length buckets: one fixed-shape signature each, shortest first (the last = inputs).
        self.buckets = [
            (bucket["signature"], {k: tuple(v) for k, v in bucket["inputs"].items()},
             bucket["signature_inputs"], bucket["signature_outputs"])
            for bucket in info["tflite"].get("buckets") or []
        ]
        self.runners: dict[str, Any] = {}
        if self.buckets:
            available = self.interpreter.get_signature_list()
            missing = [key for key, *_ in self.buckets if key not in available]
            if missing:
                raise ArtifactError(f"{str(path)!r} has no signature(s) {missing} "
                                    f"(it has {sorted(available)}): the model does not match "
                                    "its manifest")
            return
        self.input_index = self._tensor_indices(
            path,
            self.interpreter.get_input_details(),
            info["inputs"],
            info["tflite"].get("input_tensors") or {},
        )
        self.output_index = self._tensor_indices(
            path,
            self.interpreter.get_output_details(),
            info["outputs"],
            info["tflite"].get("output_tensors") or {},
        )
        # Current input shapes: a dynamic-length input is resized only when its shape changes.
        self.input_shapes = {d["index"]: tuple(d["shape"])
                             for d in self.interpreter.get_input_details()}

    @staticmethod
    def _tensor_indices(path, details, specs, tensor_names) -> dict[str, int]:
        by_name = {d["name"]: d["index"] for d in details}
        result = {}
        for position, spec in enumerate(specs):
            tensor = tensor_names.get(spec["name"], spec["name"])
            if tensor in by_name:
                result[spec["name"]] = by_name[tensor]
            elif len(details) == len(specs):
                result[spec["name"]] = details[position]["index"]
            else:
                raise ArtifactError(
                    f"{str(path)!r} has no tensor for {spec['name']!r} "
                    f"(tensors: {sorted(by_name)}): the model does not match its manifest"
                )
        return result

    def check_lengths(self, inputs: dict[str, np.ndarray]) -> None:
        for spec in self.info["inputs"]:
            fixed = self.fixed_inputs[spec["name"]]
            array = inputs[spec["name"]]
            for axis in range(1, array.ndim):
                if fixed[axis] is not None and array.shape[axis] > fixed[axis]:
                    raise UserError(
                        f"Input {spec['name']!r} of graph {self.graph!r} has size "
                        f"{array.shape[axis]} on axis {axis}, longer than the TFLite model's "
                        f"fixed maximum {fixed[axis]} (max_length={fixed[axis]}); "
                        "truncate the input or use the ONNX backend (dynamic shapes)"
                    )

    def bucket_for(self, inputs: dict[str, np.ndarray]) -> int | None:
        """Index of the shortest bucket every input fits (``None``: an unbucketed model)."""
        if not self.buckets:
            return None
        for index, (_, shapes, _, _) in enumerate(self.buckets):
            if all(inputs[name].shape[axis] <= shapes[name][axis]
                   for name in shapes for axis in range(1, inputs[name].ndim)):
                return index
        return len(self.buckets) - 1

    def _invoke(self, bucket: int | None, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if bucket is None:
            resized = False
            for name, array in feeds.items():
                index = self.input_index[name]
                if self.input_shapes[index] != array.shape:  # a dynamic-length axis
                    self.interpreter.resize_tensor_input(index, list(array.shape))
                    self.input_shapes[index] = array.shape
                    resized = True
            if resized:
                self.interpreter.allocate_tensors()
            for name, array in feeds.items():
                self.interpreter.set_tensor(self.input_index[name], array)
            self.interpreter.invoke()
            return {spec["name"]: np.array(self.interpreter.get_tensor(
                self.output_index[spec["name"]])) for spec in self.info["outputs"]}
        key, _, signature_inputs, signature_outputs = self.buckets[bucket]
        if key not in self.runners:
            self.runners[key] = self.interpreter.get_signature_runner(key)
        out = self.runners[key](**{signature_inputs[k]: v for k, v in feeds.items()})
        return {name: np.array(out[signature_outputs[name]]) for name in signature_outputs}

    def _run_chunk(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {}
        actual: dict[int, int] = {}  # fixed size -> actual size of dynamic input dims
        bucket = self.bucket_for(inputs)
        for spec in self.info["inputs"]:
            name = spec["name"]
            array = inputs[name]
            fixed = self.fixed_inputs[name] if bucket is None else self.buckets[bucket][1][name]
            pad = [(0, 0 if f is None else f - s) for f, s in zip(fixed, array.shape, strict=False)]
            if any(p[1] for p in pad):
                array = np.pad(array, pad)
            feeds[name] = array
            for axis, dim in enumerate(spec["shape"]):
                if axis > 0 and dim is None and fixed[axis] is not None:
                    actual[fixed[axis]] = max(actual.get(fixed[axis], 0), inputs[name].shape[axis])
        batch = next(iter(inputs.values())).shape[0]
        values = self._invoke(bucket, feeds)
        result = {}
        for spec in self.info["outputs"]:
            value = values[spec["name"]]
            index = []
            for axis, dim in enumerate(spec["shape"]):
                if axis == 0 and dim is None:
                    index.append(slice(0, batch))
                elif dim is None and value.shape[axis] in actual:
                    index.append(slice(0, actual[value.shape[axis]]))
                else:
                    index.append(slice(None))
            result[spec["name"]] = value[tuple(index)]
        return result

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.check_lengths(inputs)
        batch = next(iter(inputs.values())).shape[0]
        if batch <= self.batch:
            return self._run_chunk(inputs)
        parts = [
            self._run_chunk({k: v[start : start + self.batch] for k, v in inputs.items()})
            for start in range(0, batch, self.batch)
        ]
        return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}


class ExportedModel:
    """The graphs of one export directory, loaded for one backend and quantization.

    Attributes:
        manifest: the parsed `manifest.json`.
        export_dir: the directory.
        backend: `"onnx"` or `"tflite"`.
        quantization: `"none"`, `"int8"` or `"float16"` (the one loaded: see
            `resolve_quantization`).
        graph_names: names of the graphs (`["model"]`, or `["encoder", "decoder_step"]`).
    """

    def __init__(
        self,
        export_dir: str | os.PathLike,
        backend: str = "onnx",
        quantization: str = "none",
        num_threads: int | None = None,
    ):
        if backend not in BACKENDS:
            allowed = ", ".join(repr(b) for b in BACKENDS)
            raise UserError(f"`backend` must be one of {allowed}. Received: backend={backend!r}")
        if quantization not in QUANTIZATIONS:
            allowed = ", ".join(repr(q) for q in QUANTIZATIONS)
            raise UserError(
                f"`quantization` must be one of {allowed}. Received: quantization={quantization!r}"
            )
        self.export_dir = Path(export_dir)
        self.manifest = load_manifest(self.export_dir)
        self.backend = backend
        self.quantization = resolve_quantization(self.manifest, backend, quantization)
        self.graph_names = list(self.manifest["graphs"])
        self._graphs: dict[str, Any] = {}
        for graph, info in self.manifest["graphs"].items():
            path = self.export_dir / model_filename(graph, backend, self.quantization)
            if not path.is_file():
                available = sorted(p.name for p in self.export_dir.glob(f"{graph}*.{backend}"))
                raise ArtifactError(
                    f"Model file {str(path)!r} is missing (backend={backend!r}, "
                    f"quantization={self.quantization!r}). Files present for graph {graph!r}: "
                    f"{available or 'none'}"
                )
            if backend == "onnx":
                self._graphs[graph] = _OnnxGraph(path, num_threads)
            else:
                self._graphs[graph] = _TFLiteGraph(path, graph, info, num_threads)

    def input_specs(self, name: str | None = None) -> list[dict]:
        """Manifest input specs (`name`, `dtype`, `shape`) of one graph."""
        return self.manifest["graphs"][self._graph_name(name)]["inputs"]

    def output_specs(self, name: str | None = None) -> list[dict]:
        return self.manifest["graphs"][self._graph_name(name)]["outputs"]

    def max_length(self, name: str | None = None) -> int | None:
        """TFLite's fixed maximum sequence length of a graph (None for ONNX)."""
        if self.backend != "tflite":
            return None
        return (self.manifest["graphs"][self._graph_name(name)].get("tflite") or {}).get(
            "max_length"
        )

    def _graph_name(self, name: str | None) -> str:
        if name is None:
            if len(self.graph_names) != 1:
                raise UserError(
                    f"`name` is required: this export has graphs {self.graph_names}. "
                    "Received: name=None"
                )
            return self.graph_names[0]
        if name not in self.manifest["graphs"]:
            raise UserError(f"`name` must be one of {self.graph_names}. Received: name={name!r}")
        return name

    def run(
        self, name: str | None = None, inputs: dict[str, Any] | None = None
    ) -> dict[str, np.ndarray]:
        """Run graph `name` (optional when there is one graph) on a dict of named inputs."""
        if isinstance(name, dict) and inputs is None:
            name, inputs = None, name
        name = self._graph_name(name)
        info = self.manifest["graphs"][name]
        if not isinstance(inputs, dict):
            raise UserError(
                f"`inputs` must be a dict of input name -> array. Received: {type(inputs).__name__}"
            )
        expected = [spec["name"] for spec in info["inputs"]]
        missing = [n for n in expected if n not in inputs]
        unknown = [n for n in inputs if n not in expected]
        if missing or unknown:
            raise UserError(
                f"Graph {name!r} takes inputs {expected}. Received: {sorted(inputs)} "
                f"(missing {missing}, unexpected {unknown})"
            )
        arrays = {
            spec["name"]: _convert_input(name, spec, inputs[spec["name"]])
            for spec in info["inputs"]
        }
        batches = {a.shape[0] for a in arrays.values() if a.ndim}
        if len(batches) > 1:
            raise UserError(
                f"All inputs of graph {name!r} must have the same batch size. "
                f"Received: { ({k: v.shape for k, v in arrays.items()}) }"
            )
        return self._graphs[name].run(arrays)

    __call__ = run


def load(
    export_dir: str | os.PathLike,
    backend: str = "onnx",
    quantization: str = "none",
    num_threads: int | None = None,
) -> ExportedModel:
    """Load an export directory for inference (TensorFlow-free).

    Args:
        export_dir: directory written by `rnnkit.export.export_model` (or `rnnkit <app> export`).
        backend: `"onnx"` (ONNX Runtime, dynamic shapes) or `"tflite"` (LiteRT, fixed shapes:
            inputs are padded to them and results sliced back; longer inputs are rejected).
        quantization: `"none"` (float32; on an export without float32 files, its first
            quantized variant), `"int8"` (dynamic-range weights), `"float16"` (float16 weights).
        num_threads: intra-op threads (None = the runtime's default).
    """
    return ExportedModel(export_dir, backend, quantization, num_threads)


def load_tokenizer(export_dir: str | os.PathLike, filename: str = "tokenizer.json"):
    """Load `assets/<filename>` of an export directory with `rnnkit.text.Tokenizer`."""
    path = Path(export_dir) / "assets" / filename
    if not path.is_file():
        raise ArtifactError(f"Tokenizer asset {str(path)!r} is missing from the export directory")
    from rnnkit.text import Tokenizer

    return Tokenizer.load(path)


def asset_path(export_dir: str | os.PathLike, filename: str) -> Path:
    """Path of `assets/<filename>`, checked to exist."""
    path = Path(export_dir) / "assets" / filename
    if not path.exists():
        raise ArtifactError(f"Asset {str(path)!r} is missing from the export directory")
    return path
