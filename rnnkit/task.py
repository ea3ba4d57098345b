"""The contract between the kit and an application: ``Task`` and ``RunDir``.

An app (``apps/<name>/``, or any installed package declaring an ``rnnkit.apps`` entry point)
exposes one ``Task`` instance as ``TASK``. The subclass supplies the data, the model, the
scoring, the graphs to export and two predictors (Keras on a run directory, ``rnnkit.runtime``
on an export directory); the base owns the plumbing every app shares: the run directory and
its files, ``metrics.json`` (one file, one section per command), the recorded splits that
evaluate and export read back, the run-or-export choice of ``predict``, and the runtime
agreement of every exported variant with Keras under one key scheme (``"<backend>/<quant>"``).

Importing this module never imports TensorFlow: apps import it lazily inside their hooks.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Protocol

from rnnkit.errors import ArtifactError, UserError
from rnnkit.runtime.spec import ManifestSpec, merge_manifest

RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
SPLITS_DIR = "data"
SPLITS_INDEX = "splits.json"
MANIFEST_FILE = "manifest.json"
ENTRY_POINT_GROUP = "rnnkit.apps"


def variant_key(backend: str, quantization: str) -> str:
    """The one key of a runtime variant in every manifest figure: ``"onnx/int8"``."""
    return f"{backend}/{quantization}"


def _write_json(path: Path, value: Any) -> None:
    """Write JSON through a temporary sibling renamed into place (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n",
                         encoding="utf-8")
    os.replace(temporary, path)


class RunDir:
    """A training run directory: ``run.json`` (app, version, run facts), ``config.json``,
    ``metrics.json`` (``{"train": ..., "evaluate": ...}``), ``assets/``, the model files and
    ``data/<split>.jsonl`` + ``data/splits.json`` (the splits training used)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- creation and opening

    @staticmethod
    def default_path(app: str) -> Path:
        """``runs/<app>-<YYYYmmdd-HHMMSS>``: where a run goes when no directory is given."""
        return Path("runs") / f"{app}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"

    @classmethod
    def create(cls, app: str, config: Any, path: str | os.PathLike | None = None,
               info: Mapping[str, Any] | None = None) -> RunDir:
        """Create (or reuse, for resume) a run directory; write run.json and config.json."""
        from rnnkit import __version__
        from rnnkit.config import save_config

        run = cls(cls.default_path(app) if path is None else path)
        (run.path / "assets").mkdir(parents=True, exist_ok=True)
        _write_json(run.path / RUN_FILE, {"app": app, "rnnkit_version": __version__,
                                          **dict(info or {})})
        save_config(config, run.path / CONFIG_FILE)
        return run

    @classmethod
    def open(cls, path: str | os.PathLike, app: str | None = None) -> RunDir:
        """An existing run directory (of ``app`` when given); a UserError otherwise."""
        run = cls(path)
        if not run.path.is_dir():
            raise UserError(f"Run directory not found: {run.path}")
        if not (run.path / RUN_FILE).is_file():
            raise UserError(f"{run.path} is not a training run directory (no {RUN_FILE})")
        if app is not None and run.app != app:
            raise UserError(f"{run.path} is a {run.app!r} run, not a {app!r} run")
        return run

    # -- facts

    @property
    def info(self) -> dict[str, Any]:
        return json.loads((self.path / RUN_FILE).read_text(encoding="utf-8"))

    @property
    def app(self) -> str:
        return str(self.info.get("app"))

    def update_info(self, **values: Any) -> None:
        _write_json(self.path / RUN_FILE, {**self.info, **values})

    def config(self, config_class: type) -> Any:
        from rnnkit.config import read_config

        return read_config(config_class, self.require(CONFIG_FILE))

    def file(self, *parts: str) -> Path:
        return self.path.joinpath(*parts)

    def require(self, *parts: str, what: str | None = None) -> Path:
        """The path of a file the run must hold; an ArtifactError naming it otherwise."""
        path = self.file(*parts)
        if not path.exists():
            raise ArtifactError(f"{self.path} has no {'/'.join(parts)}"
                                + (f": {what}" if what else ""))
        return path

    # -- metrics.json

    def metrics(self, section: str | None = None) -> dict[str, Any]:
        path = self.path / METRICS_FILE
        values = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        return values.get(section, {}) if section is not None else values

    def write_metrics(self, section: str, values: Mapping[str, Any]) -> None:
        """Replace one section (``"train"``, ``"evaluate"``) of ``metrics.json``."""
        _write_json(self.path / METRICS_FILE, {**self.metrics(), section: dict(values)})

    # -- recorded splits

    def record_split(self, name: str, records: Sequence[Mapping[str, Any]]) -> Path:
        """Write ``data/<name>.jsonl`` (one JSON object per example) and index it in
        ``data/splits.json`` with its size and SHA-256."""
        path = self.path / SPLITS_DIR / f"{name}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in records)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
        index = self.split_index()
        index[name] = {"file": f"{SPLITS_DIR}/{name}.jsonl", "examples": len(records),
                       "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
        _write_json(self.path / SPLITS_DIR / SPLITS_INDEX, index)
        return path

    def split_index(self) -> dict[str, Any]:
        path = self.path / SPLITS_DIR / SPLITS_INDEX
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def has_split(self, name: str) -> bool:
        return (self.path / SPLITS_DIR / f"{name}.jsonl").is_file()

    def split(self, name: str) -> list[dict[str, Any]]:
        """The records of a split training recorded (an ArtifactError naming it if absent)."""
        path = self.path / SPLITS_DIR / f"{name}.jsonl"
        if not path.is_file():
            raise ArtifactError(f"{self.path} recorded no {name!r} split ({path} is missing); "
                                f"recorded: {sorted(self.split_index()) or 'none'}")
        # Split on "\n" only: str.splitlines() would also cut inside texts holding U+2028.
        return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n")
                if line.strip()]


class Predictor(Protocol):
    """Keras or runtime inference with the app's natural inputs and outputs."""

    def predict(self, inputs: Sequence[Any], **options: Any) -> list[dict[str, Any]]: ...


@dataclass
class ExportPlan:
    """What an app hands the base to export: the graphs and how to check them.

    ``agreement_inputs`` are predictor inputs on which every runtime variant's ``compared``
    output is compared with the Keras predictor's (``manifest["agreement"]``); ``finalize``
    adds app-specific manifest entries and files to the staging directory.
    """

    models: dict[str, Any]
    spec: ManifestSpec
    keras_predictor: Predictor
    agreement_inputs: Sequence[Any]
    agreement_source: str
    tflite_shapes: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)
    tflite_buckets: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)
    parity_inputs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    assets: dict[str, Any] = field(default_factory=dict)
    manifest_extra: dict[str, Any] = field(default_factory=dict)
    signatures: dict[str, Any] | None = None
    signature_owners: dict[str, Any] | None = None
    quantize_exclude: dict[str, Any] | None = None
    predict_options: dict[str, Any] = field(default_factory=dict)
    finalize: Callable[[Path, dict[str, Any]], None] | None = None


@dataclass
class InitSource:
    """Where ``train --init-from`` starts: a run directory (``run``) or an export directory
    (``manifest``)."""

    path: Path
    kind: str  # "run" or "export"
    run: RunDir | None = None
    manifest: dict[str, Any] | None = None


class Task:
    """Base of every app. Subclasses set the class attributes and implement the hooks."""

    name: ClassVar[str]
    description: ClassVar[str]
    config_class: ClassVar[type]
    input_kind: ClassVar[str] = "text"  # what predict takes: "text", "audio file", ...
    # The result key compared between Keras and every runtime variant at export.
    compared_output: ClassVar[str] = "label"
    # The TF-free module holding the runtime predictor (services import only this).
    runtime_module: ClassVar[str]
    demo_order: ClassVar[int] = 100
    # Overrides for the quick model `rnnkit demo` trains (exported/ uses the defaults).
    demo_overrides: ClassVar[dict[str, Any]] = {}
    headline_metrics: ClassVar[tuple[str, ...]] = ()
    export_formats: ClassVar[tuple[str, ...]] = ("saved_model", "onnx", "tflite")
    export_quantizations: ClassVar[tuple[str, ...]] = ("none", "int8", "float16")
    # What `rnnkit demo --ship` (`make exported`) writes to exported/<app>/: every format and
    # quantization, unless an app's shipped model needs a compact export to fit 15 MB
    # (`"format:q"` entries, see `rnnkit.export.format_quantizations`).
    shipped_formats: ClassVar[tuple[str, ...]] = ("saved_model", "onnx", "tflite")
    shipped_quantizations: ClassVar[tuple[str, ...]] = ("none", "int8", "float16")
    # Decoding options ``score`` and the predictors' ``predict`` also take (the CLI adds a
    # flag for each: speech_to_text's closed vocabulary).
    decode_options: ClassVar[tuple[str, ...]] = ()

    # How the runtime predictor batches its inputs (int8 outputs depend on batch composition).
    batch_rule: ClassVar[str]

    # -- hooks

    def fit(self, config: Any, run: RunDir, data: str | None) -> dict[str, Any]:
        """Train, save the model in ``run``, record the splits; return the training figures.
        Apps that support ``--init-from`` also take ``init_from`` (an :class:`InitSource`)."""
        raise NotImplementedError

    # Apps whose ``fit`` takes ``init_from`` (train --init-from: start from a trained model).
    supports_init_from: ClassVar[bool] = False

    def initial_config(self, config: Any, source: InitSource) -> Any:
        """The config to train with when starting from ``source``: the app keeps what must
        match the source's weights (architecture, features). Default: ``config``."""
        return config

    def score(self, run: RunDir, data: str | None) -> dict[str, Any]:
        """Metrics of the run's model on its recorded test split (or on ``data``)."""
        raise NotImplementedError

    def export_plan(self, run: RunDir, formats: Sequence[str]) -> ExportPlan:
        raise NotImplementedError

    def keras_predictor(self, run: RunDir) -> Predictor:
        raise NotImplementedError

    def runtime_predictor(self, export_dir: str | os.PathLike, backend: str = "onnx",
                          quantization: str = "none",
                          num_threads: int | None = None) -> Predictor:
        raise NotImplementedError

    # -- plumbing

    def measured_with(self) -> dict[str, Any]:
        """The batching and threads under which export-time runtime figures are measured."""
        return {"batching": self.batch_rule,
                "threads": "runtime default (ONNX Runtime: one per core; LiteRT: its default)",
                "tflite": "rows in chunks of the graph's fixed batch, the last zero-padded",
                "cpu_count": os.cpu_count()}

    def open_run(self, run_dir: str | os.PathLike) -> RunDir:
        return RunDir.open(run_dir, self.name)

    def train(self, config: Any, run_dir: str | os.PathLike | None = None,
              data: str | os.PathLike | None = None,
              init_from: str | os.PathLike | None = None) -> dict[str, Any]:
        """Train on the default data (or ``data``) into ``run_dir``; returns the figures also
        written to ``metrics.json["train"]``. ``init_from``: a run or export directory of this
        app whose weights the training starts from (apps with ``supports_init_from``)."""
        return self._train(config, run_dir, data, init_from)

    def init_source(self, path: str | os.PathLike) -> InitSource:
        """A run directory or an export directory of this app to start training from."""
        if not self.supports_init_from:
            raise UserError(f"{self.name} train does not take --init-from")
        path = Path(path)
        if (path / RUN_FILE).is_file():
            run = self.open_run(path)
            run.require("config.json", what="not a finished run")
            return InitSource(path, "run", run=run)
        if (path / MANIFEST_FILE).is_file():
            from rnnkit.runtime.model import load_manifest

            manifest = load_manifest(path)
            if manifest.get("app") != self.name:
                raise UserError(f"--init-from {path} is an export of app "
                                f"{manifest.get('app')!r}, not {self.name!r}")
            return InitSource(path, "export", manifest=manifest)
        raise UserError(f"--init-from {path} is neither a run directory ({RUN_FILE}) nor an "
                        f"export directory ({MANIFEST_FILE})")

    def _train(self, config: Any, run_dir: str | os.PathLike | None,
               data: str | os.PathLike | None, init_from: str | os.PathLike | None = None,
               **facts: Any) -> dict[str, Any]:
        data = _existing(data)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        source = None if init_from is None else self.init_source(init_from)
        if source is not None:
            config = self.initial_config(config, source)
        run = RunDir.create(self.name, config, run_dir)
        if source is None:
            metrics = {**self.fit(config, run, data), **facts}
        else:
            run.update_info(init_from={"path": str(source.path), "kind": source.kind})
            metrics = {**self.fit(config, run, data, init_from=source), **facts,
                       "init_from": str(source.path)}
        run.write_metrics("train", metrics)
        return metrics

    def train_distributed(self, config: Any, run_dir: str | os.PathLike | None = None,
                          data: str | os.PathLike | None = None, *, distribute: str = "none",
                          lr_scaling: str = "linear",
                          init_from: str | os.PathLike | None = None) -> dict[str, Any]:
        """:meth:`train` under a ``tf.distribute`` strategy (``none``, ``mirrored``,
        ``multi_worker``; see ``rnnkit.training.distribute``): the model is built in the
        strategy's scope, the config's ``batch_size`` is per replica (the app batches
        ``batch_size * replicas``) and its ``learning_rate`` is scaled by ``lr_scaling``.
        Non-chief workers write ``<run_dir>/workers/<task>``. The facts go to
        ``run.json["distribute"]`` and ``metrics.json["train"]["distribute"]``."""
        if distribute == "none":
            return self.train(config, run_dir, data, init_from)
        from rnnkit.training.distribute import distributed

        if run_dir is None and distribute != "multi_worker":
            run_dir = RunDir.default_path(self.name)
        with distributed(distribute, config, run_dir, lr_scaling) as (_, scaled, path, facts):
            metrics = self._train(scaled, path, data, init_from, distribute=facts)
        run = RunDir(path)
        if (run.path / RUN_FILE).is_file():
            run.update_info(distribute=facts)
        return metrics

    def evaluate(self, run_dir: str | os.PathLike, data: str | os.PathLike | None = None,
                 options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Score the run on its recorded test split (or every row of ``data``); also written
        to ``metrics.json["evaluate"]``. ``options``: the app's ``decode_options``."""
        options = {k: v for k, v in dict(options or {}).items() if v is not None}
        unknown = sorted(set(options) - set(self.decode_options))
        if unknown:
            raise UserError(f"{self.name} evaluate does not take {', '.join(unknown)}. Its "
                            f"options: {', '.join(self.decode_options) or 'none'}")
        run = self.open_run(run_dir)
        data = _existing(data)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        metrics = self.score(run, data, **options)
        run.write_metrics("evaluate", metrics)
        return metrics

    def export(self, run_dir: str | os.PathLike, out_dir: str | os.PathLike,
               formats: Sequence[str] | None = None,
               quantize: Sequence[str] | None = None) -> dict[str, Any]:
        """Write ``out_dir`` atomically: the graphs in every format, the spec's manifest
        entries, parity (max abs diff per graph) and ``manifest["agreement"]``."""
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from rnnkit.export import export_model
        from rnnkit.runtime import runtime_variants

        run = self.open_run(run_dir)
        formats = list(formats or self.export_formats)
        quantize = list(quantize or self.export_quantizations)
        plan = self.export_plan(run, formats)

        def finalize(staging: Path, manifest: dict[str, Any]) -> None:
            reference = self._compared(plan.keras_predictor.predict(
                plan.agreement_inputs, **plan.predict_options))
            agreement: dict[str, float] = {}
            for backend, quantization in runtime_variants(manifest):
                predictor = self.runtime_predictor(staging, backend, quantization)
                got = self._compared(predictor.predict(plan.agreement_inputs,
                                                       **plan.predict_options))
                same = sum(a == b for a, b in zip(got, reference, strict=True))
                agreement[variant_key(backend, quantization)] = same / max(1, len(reference))
            manifest["agreement"] = {"compared": self.compared_output,
                                     "source": plan.agreement_source,
                                     "examples": len(reference), "vs_keras": agreement,
                                     "measured_with": self.measured_with()}
            if plan.finalize is not None:
                plan.finalize(staging, manifest)

        return export_model(
            plan.models, out_dir, app=self.name, formats=formats, quantize=quantize,
            tflite_shapes=plan.tflite_shapes, tflite_buckets=plan.tflite_buckets,
            parity_inputs=plan.parity_inputs,
            assets=plan.assets,
            manifest_extra=merge_manifest(plan.spec.to_manifest(), plan.manifest_extra),
            signatures=plan.signatures, signature_owners=plan.signature_owners,
            quantize_exclude=plan.quantize_exclude, finalize=finalize)

    def predict(self, model_dir: str | os.PathLike, inputs: Sequence[Any] | str,
                options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """One result per input. ``model_dir``: an export directory (``rnnkit.runtime``,
        ``options["backend"]`` onnx|tflite, ``options["quantization"]``) or a run directory
        (Keras; also ``backend="keras"``). Other options go to the predictor."""
        options = {k: v for k, v in dict(options or {}).items() if v is not None}
        backend = options.pop("backend", "onnx")
        quantization = options.pop("quantization", "none")
        threads = options.pop("threads", None)
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        if not inputs:
            raise UserError(f"predict needs at least one {self.input_kind} input")
        model_dir = Path(model_dir)
        if (model_dir / MANIFEST_FILE).is_file() and backend != "keras":
            predictor = self.runtime_predictor(model_dir, backend, quantization, threads)
        elif (model_dir / RUN_FILE).is_file():
            predictor = self.keras_predictor(self.open_run(model_dir))
        elif (model_dir / MANIFEST_FILE).is_file():
            raise UserError(f"--backend keras needs a run directory; {model_dir} is an export "
                            "directory (use --backend onnx or tflite)")
        else:
            raise UserError(f"{model_dir} is neither a run directory ({RUN_FILE}) nor an export "
                            f"directory ({MANIFEST_FILE})")
        _check_options(self.name, predictor, options)
        return predictor.predict(inputs, **options)

    def _compared(self, results: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [result[self.compared_output] for result in results]


def _check_options(app: str, predictor: Predictor, options: Mapping[str, Any]) -> None:
    """A UserError naming the options this app's predictor does not take."""
    parameters = inspect.signature(predictor.predict).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        raise UserError(f"{app} predict does not take {', '.join(unknown)}. Its options: "
                        f"{', '.join(p for p in parameters if p not in ('self', 'inputs', 'texts'))}")


def _existing(data: str | os.PathLike | None) -> str | None:
    if data is None:
        return None
    if not Path(data).exists():
        raise UserError(f"Data file not found: {data}")
    return str(data)


# ---------------------------------------------------------------------------------------------
# Registry


def _package_tasks() -> list[Task]:
    """``TASK`` of every package under ``apps/`` (the apps shipped beside the kit)."""
    try:
        package = importlib.import_module("apps")
    except ModuleNotFoundError:
        return []
    tasks = []
    for module in pkgutil.iter_modules(package.__path__):
        if module.ispkg:
            task = getattr(importlib.import_module(f"apps.{module.name}"), "TASK", None)
            if isinstance(task, Task):
                tasks.append(task)
    return tasks


def _entry_point_tasks() -> list[Task]:
    """Tasks other installed packages declare under the ``rnnkit.apps`` entry-point group."""
    tasks = []
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        task = entry.load()
        if not isinstance(task, Task):
            raise ArtifactError(f"entry point {entry.name!r} ({entry.value}) is not an "
                                f"rnnkit.task.Task. Received: {type(task).__name__}")
        tasks.append(task)
    return tasks


def available_tasks() -> dict[str, Task]:
    """Every app, by name, in demo order."""
    tasks = {task.name: task for task in _package_tasks() + _entry_point_tasks()}
    return dict(sorted(tasks.items(), key=lambda item: (item[1].demo_order, item[0])))


def get_task(name: str) -> Task:
    tasks = available_tasks()
    if name not in tasks:
        raise UserError(f"Unknown app {name!r}. Available: {', '.join(tasks) or 'none'}")
    return tasks[name]
