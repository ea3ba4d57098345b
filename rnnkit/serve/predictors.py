"""The one place that knows each app: request fields → predictor inputs → JSON results.

Every other module of ``rnnkit.serve`` is app-agnostic. An adapter wraps one app's TF-free
runtime predictor (the class in the module the app's ``Task.runtime_module`` names) and gives
the service four things: ``parse`` (the request's fields and uploads → a list of items plus
the options that must be equal for items to share a runtime call), ``run`` (a list of items →
one JSON-ready result each: the micro-batcher calls it with items of several requests),
``describe`` (what ``/v1/models`` shows) and ``version``.

Predictor APIs relied on (adjust here when an app's predictor changes):

* sentiment: ``apps.sentiment.runtime.SentimentPredictor(export_dir, backend, quantization,
  num_threads)`` and ``.predict(texts, explain=bool)`` → ``[{"label", "probabilities",
  "attention"?: [(token, weight)]}]``.
* translation: ``apps.translation.translator.TranslationPredictor(export_dir, backend,
  quantization, num_threads)`` with ``.beam_width``, ``.length_penalty``,
  ``.target_tokenizer.id_to_token`` and ``.translate(texts, method, beam_width,
  length_penalty, num_return, with_attention)`` → ``[{"translation", "ids", "truncated",
  "source_tokens", "score"? (beam), "n_best"?, "attention"? (T_out+1, T_src)}]``.
* speech_to_text: ``apps.speech_to_text.transcriber.Transcriber(export_dir, backend,
  quantization, num_threads=...)`` with ``.spec.sample_rate`` and ``.transcribe_many(waveforms)``
  → ``[str]``; audio decoding with ``rnnkit.data.audio.check_waveform`` / ``resample``.
* captioning: ``apps.captioning.captioner.Captioner(export_dir, backend, quantization,
  num_threads)`` with ``.image_size``, ``.resize_mode``, ``.grid_size``, ``.beam_width``,
  ``.tokenizer`` and ``.caption(images, with_attention, beam_width)`` → ``[{"caption", "ids",
  "score", "attention"? (len(ids)+1, T)}]``; images read by ``rnnkit.data.images.load_image``.
* any other app (a later ``forecasting``): ``rnnkit.task.get_task(app).runtime_predictor(
  export_dir, backend, quantization, num_threads).predict(inputs, **options)`` with JSON
  inputs as they come (refused if loading it imported TensorFlow).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import inspect
import io
import math
import os
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rnnkit.errors import ArtifactError, UserError
from rnnkit.serve.errors import RequestError, invalid, too_large, unreadable


@dataclass(frozen=True)
class Limits:
    """Per-request limits beside the body size (``--max-body-bytes``)."""

    max_items: int = 64
    max_text_chars: int = 4000
    max_audio_seconds: float = 60.0
    max_image_pixels: int = 4096 * 4096
    max_beam_width: int = 16


@dataclass
class Payload:
    """A request's fields (JSON object members or multipart form fields) and uploads."""

    fields: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    multipart: bool = False


@dataclass
class Parsed:
    items: list[Any]
    options: dict[str, Any]
    single: bool  # one input (answer with "result") or a list ("results")

    @property
    def key(self) -> tuple:
        return tuple(sorted(self.options.items()))


def model_version(export_dir: str | os.PathLike) -> str:
    """``sha256:<12 hex>`` of ``manifest.json``: changes whenever the model is re-exported."""
    digest = hashlib.sha256((Path(export_dir) / "manifest.json").read_bytes()).hexdigest()
    return f"sha256:{digest[:12]}"


def jsonable(value: Any) -> Any:
    """numpy arrays/scalars, tuples and non-finite floats → plain JSON values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------------------------
# field readers (JSON values or multipart strings)


def _check_fields(payload: Payload, allowed: Sequence[str]) -> None:
    unknown = [name for name in sorted(set(payload.fields) | set(payload.files))
               if name not in allowed]
    if unknown:
        raise invalid(f"Unknown field(s) {unknown}. Accepted fields: {list(allowed)}")


def _int_option(payload: Payload, name: str, default: int, low: int, high: int) -> int:
    value = payload.fields.get(name, default)
    if isinstance(value, str) and payload.multipart and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"`{name}` must be an integer. Received: {value!r}")
    if not low <= value <= high:
        raise invalid(f"`{name}` must be between {low} and {high}. Received: {name}={value}")
    return value


def _float_option(payload: Payload, name: str, default: float, low: float, high: float) -> float:
    value = payload.fields.get(name, default)
    if isinstance(value, str) and payload.multipart:
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid(f"`{name}` must be a number. Received: {value!r}")
    if not low <= value <= high:
        raise invalid(f"`{name}` must be between {low} and {high}. Received: {name}={value}")
    return float(value)


def _bool_option(payload: Payload, name: str) -> bool:
    value = payload.fields.get(name, False)
    if isinstance(value, str) and payload.multipart and value.lower() in (
            "true", "false", "1", "0", "on", "off"):
        value = value.lower() in ("true", "1", "on")
    if not isinstance(value, bool):
        raise invalid(f"`{name}` must be true or false. Received: {value!r}")
    return value


def _texts(payload: Payload, limits: Limits) -> tuple[list[str], bool]:
    """``text`` (one string) or ``texts`` (a list of strings), checked."""
    has_one, has_many = "text" in payload.fields, "texts" in payload.fields
    if has_one == has_many:
        raise invalid("Send exactly one of `text` (a string) or `texts` (a list of strings). "
                      f"Received: {'both' if has_one else 'neither'}")
    if has_one:
        values, names = [payload.fields["text"]], ["text"]
    else:
        values = payload.fields["texts"]
        if not isinstance(values, list):
            raise invalid(f"`texts` must be a list of strings. Received: {type(values).__name__}")
        if not values:
            raise invalid("`texts` is empty: send at least one string")
        if len(values) > limits.max_items:
            raise too_large(f"`texts` has {len(values)} items, more than the limit of "
                            f"{limits.max_items} per request")
        names = [f"texts[{i}]" for i in range(len(values))]
    for name, value in zip(names, values, strict=True):
        if not isinstance(value, str):
            raise invalid(f"`{name}` must be a string. Received: {type(value).__name__}")
        if not value.strip():
            raise invalid(f"`{name}` is empty: send some text")
        if len(value) > limits.max_text_chars:
            raise too_large(f"`{name}` has {len(value)} characters, more than the limit of "
                            f"{limits.max_text_chars}")
    return list(values), has_one


def _upload(payload: Payload, name: str, what: str) -> bytes:
    """The bytes of upload ``name``: a multipart file, or base64 text in a JSON field."""
    if name in payload.files:
        data = payload.files[name]
    elif name in payload.fields:
        value = payload.fields[name]
        if not isinstance(value, str):
            raise invalid(f"`{name}` must be a base64 string of the {what} file. "
                          f"Received: {type(value).__name__}")
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise unreadable(what, f"`{name}` is not valid base64") from None
    else:
        raise invalid(f"`{name}` is missing: send the {what} file as a multipart upload named "
                      f"{name!r} or as base64 text in the JSON field {name!r}")
    if not data:
        raise invalid(f"`{name}` is empty: the {what} file has no bytes")
    return data


# ---------------------------------------------------------------------------------------------
# adapters


class Adapter:
    """One loaded export directory of one app."""

    app: ClassVar[str]
    input_kind: ClassVar[str]
    fields: ClassVar[dict[str, str]]
    parse_in_thread: ClassVar[bool] = False  # True where parse decodes files

    def __init__(self, export_dir: str | os.PathLike, backend: str = "onnx",
                 quantization: str = "none", num_threads: int | None = None,
                 limits: Limits | None = None):
        from rnnkit.runtime import load_manifest, resolve_quantization

        self.export_dir = Path(export_dir)
        self.manifest = load_manifest(self.export_dir)
        self.backend = backend
        # what runs: "none" on a compact export (no float32 files) is its quantized variant
        self.quantization = resolve_quantization(self.manifest, backend, quantization)
        self.limits = limits or Limits()
        self.version = model_version(self.export_dir)
        self.predictor = self.load(num_threads)

    def load(self, num_threads: int | None) -> Any:
        raise NotImplementedError

    def parse(self, payload: Payload) -> Parsed:
        raise NotImplementedError

    def run(self, items: list[Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"app": self.manifest.get("app"), "input": self.input_kind,
                "fields": dict(self.fields), "backend": self.backend,
                "quantization": self.quantization, "model_version": self.version,
                "export_dir": str(self.export_dir)}


class SentimentAdapter(Adapter):
    app = "sentiment"
    input_kind = "text"
    fields = {"text": "a string", "texts": "a list of strings (instead of text)",
              "explain": "true: per-token attention weights"}

    def load(self, num_threads):
        from apps.sentiment.runtime import SentimentPredictor

        predictor = SentimentPredictor(self.export_dir, self.backend, self.quantization,
                                       num_threads)
        if not predictor.has_attention:  # this export has no attention output to show
            self.fields = {k: v for k, v in self.fields.items() if k != "explain"}
        return predictor

    def parse(self, payload):
        _check_fields(payload, list(self.fields))
        texts, single = _texts(payload, self.limits)
        explain = "explain" in self.fields and _bool_option(payload, "explain")
        return Parsed(texts, {"explain": explain}, single)

    def run(self, items, options):
        results = self.predictor.predict(list(items), explain=bool(options["explain"]))
        for result in results:
            if "attention" in result:
                result["attention"] = [{"token": token, "weight": float(weight)}
                                       for token, weight in result["attention"]]
        return results


class TranslationAdapter(Adapter):
    app = "translation"
    input_kind = "text"
    fields = {"text": "a string", "texts": "a list of strings (instead of text)",
              "beam_width": "1 = greedy; more = beam search (default: the manifest's)",
              "n_best": "how many hypotheses to return (<= beam_width)",
              "length_penalty": "GNMT length penalty alpha (default: the manifest's)",
              "explain": "true: the attention map (target x source tokens)"}

    def load(self, num_threads):
        from apps.translation.translator import TranslationPredictor

        predictor = TranslationPredictor(self.export_dir, self.backend, self.quantization,
                                         num_threads)
        self.default_beam = int(predictor.beam_width)
        self.default_penalty = float(predictor.length_penalty)
        return predictor

    def parse(self, payload):
        _check_fields(payload, list(self.fields))
        texts, single = _texts(payload, self.limits)
        beam = _int_option(payload, "beam_width", self.default_beam, 1, self.limits.max_beam_width)
        n_best = _int_option(payload, "n_best", 1, 1, beam)
        penalty = _float_option(payload, "length_penalty", self.default_penalty, 0.0, 5.0)
        return Parsed(texts, {"beam_width": beam, "n_best": n_best, "length_penalty": penalty,
                              "explain": _bool_option(payload, "explain")}, single)

    def run(self, items, options):
        beam = int(options["beam_width"])
        with warnings.catch_warnings():
            # Long inputs are cut to max_source_length: each result says so in "truncated".
            warnings.simplefilter("ignore")
            raw = self.predictor.translate(
                list(items), "beam" if beam > 1 else "greedy", beam_width=beam,
                length_penalty=float(options["length_penalty"]),
                num_return=int(options["n_best"]), with_attention=bool(options["explain"]),
                copy_unknown=True)  # unknown words and unseen names copied from the source
        results = []
        tokenizer = self.predictor.target_tokenizer
        for item in raw:
            result: dict[str, Any] = {"translation": item["translation"],
                                      "truncated": bool(item.get("truncated", False))}
            if "score" in item:
                result["score"] = item["score"]
            if "n_best" in item:
                result["n_best"] = item["n_best"]
            if "attention" in item:
                targets = [tokenizer.id_to_token(i) for i in item["ids"]] + ["</s>"]
                weights = np.asarray(item["attention"])
                result["attention"] = {"source_tokens": list(item.get("source_tokens", [])),
                                       "target_tokens": targets[: len(weights)],
                                       "weights": weights.round(5)}
            results.append(result)
        return results


class SpeechAdapter(Adapter):
    app = "speech_to_text"
    input_kind = "audio"
    parse_in_thread = True
    fields = {"audio": "a WAV/FLAC/OGG file: multipart upload or base64 text in JSON"}

    def load(self, num_threads):
        from apps.speech_to_text.transcriber import Transcriber

        return Transcriber(self.export_dir, self.backend, self.quantization,
                           num_threads=num_threads)

    def parse(self, payload):
        _check_fields(payload, list(self.fields))
        return Parsed([self.decode(_upload(payload, "audio", "audio"))], {}, True)

    def decode(self, data: bytes) -> np.ndarray:
        """Audio file bytes → float32 mono waveform at the model's rate, checked."""
        import soundfile

        from rnnkit.data.audio import check_waveform, resample

        try:
            info = soundfile.info(io.BytesIO(data))
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
            readable = ", ".join(sorted(soundfile.available_formats()))
            reason = re.sub(r"^Error opening <[^>]*>: ", "", str(error)).rstrip(".")
            raise unreadable("audio", f"`audio` cannot be decoded ({reason}); readable "
                             f"formats: {readable}") from None
        if info.frames <= 0 or info.samplerate <= 0:
            raise invalid("`audio` has no samples")
        seconds = info.frames / info.samplerate
        if seconds > self.limits.max_audio_seconds:
            raise too_large(f"`audio` lasts {seconds:.1f} s, more than the limit of "
                            f"{self.limits.max_audio_seconds:g} s")
        try:
            samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
            waveform = check_waveform(samples, source="audio")
        except UserError as error:
            raise unreadable("audio", f"`audio`: {error}") from None
        except (soundfile.LibsndfileError, RuntimeError, ValueError) as error:
            raise unreadable("audio", f"`audio` is corrupt: {error}") from None
        if waveform.size == 0:
            raise invalid("`audio` has no samples")
        return resample(waveform, int(rate), int(self.predictor.spec.sample_rate))

    def run(self, items, options):
        rate = float(self.predictor.spec.sample_rate)
        texts = self.predictor.transcribe_many(list(items))
        return [{"transcript": text, "seconds": round(wave.size / rate, 3)}
                for wave, text in zip(items, texts, strict=True)]


class CaptioningAdapter(Adapter):
    app = "captioning"
    input_kind = "image"
    parse_in_thread = True
    fields = {"image": "a PNG/JPEG/... file: multipart upload or base64 text in JSON",
              "beam_width": "1 = greedy; more = beam search (default: the manifest's)",
              "explain": "true: the attention map over the image grid per word"}

    def load(self, num_threads):
        from apps.captioning.captioner import Captioner

        return Captioner(self.export_dir, self.backend, self.quantization, num_threads)

    def parse(self, payload):
        _check_fields(payload, list(self.fields))
        image = self.decode(_upload(payload, "image", "image"))
        beam = _int_option(payload, "beam_width", int(self.predictor.beam_width), 1,
                           self.limits.max_beam_width)
        return Parsed([image], {"beam_width": beam, "explain": _bool_option(payload, "explain")},
                      True)

    def decode(self, data: bytes) -> np.ndarray:
        """Image bytes → uint8 (size, size, 3), the training preprocessing."""
        from PIL import Image, UnidentifiedImageError

        from rnnkit.data.images import load_image

        try:
            with Image.open(io.BytesIO(data)) as header:
                width, height = header.size
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            raise unreadable("image", f"`image` is not a readable image ({e})") from None
        if width * height > self.limits.max_image_pixels:
            raise too_large(f"`image` is {width}x{height} = {width * height} pixels, more than "
                            f"the limit of {self.limits.max_image_pixels}")
        try:
            return load_image(data, int(self.predictor.image_size),
                              resize_mode=self.predictor.resize_mode,
                              max_pixels=self.limits.max_image_pixels)
        except UserError as error:
            raise unreadable("image", f"`image`: {error}") from None

    def run(self, items, options):
        raw = self.predictor.caption(list(items), with_attention=bool(options["explain"]),
                                     beam_width=int(options["beam_width"]))
        grid = list(self.predictor.grid_size)
        tokenizer = self.predictor.tokenizer
        results = []
        for item in raw:
            result: dict[str, Any] = {"caption": item["caption"], "score": item["score"]}
            if "attention" in item:
                words = [tokenizer.id_to_token(i) for i in item["ids"]] + ["</s>"]
                result["attention"] = {"grid": grid, "tokens": words,
                                       "weights": np.asarray(item["attention"]).round(5)}
            results.append(result)
        return results


class TaskAdapter(Adapter):
    """Any other app through its Task's ``runtime_predictor``: ``input`` or ``inputs`` are
    passed as JSON values; other fields are the predictor's keyword options."""

    input_kind = "json"
    fields = {"input": "one input (JSON)", "inputs": "a list of inputs (instead of input)",
              "...": "the predictor's keyword options"}

    def load(self, num_threads):
        from rnnkit.task import get_task

        self.app = str(self.manifest.get("app"))
        had_tensorflow = "tensorflow" in sys.modules
        predictor = get_task(self.app).runtime_predictor(self.export_dir, self.backend,
                                                         self.quantization, num_threads)
        if not had_tensorflow and "tensorflow" in sys.modules:
            raise ArtifactError(f"Loading the {self.app!r} runtime predictor imported "
                                "TensorFlow, which the service must not: add an adapter for "
                                "it in rnnkit/serve/predictors.py")
        parameters = inspect.signature(predictor.predict).parameters
        self.options = [name for name, p in parameters.items()
                        if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD][1:]
        return predictor

    def parse(self, payload):
        if payload.multipart:
            raise RequestError(415, "unsupported_media_type",
                               f"{self.app} takes application/json requests")
        has_one, has_many = "input" in payload.fields, "inputs" in payload.fields
        if has_one == has_many:
            raise invalid("Send exactly one of `input` or `inputs` (a list). Received: "
                          f"{'both' if has_one else 'neither'}")
        items = [payload.fields["input"]] if has_one else payload.fields["inputs"]
        if not isinstance(items, list) or not items:
            raise invalid("`inputs` must be a non-empty list")
        if len(items) > self.limits.max_items:
            raise too_large(f"`inputs` has {len(items)} items, more than the limit of "
                            f"{self.limits.max_items} per request")
        options = {k: v for k, v in payload.fields.items() if k not in ("input", "inputs")}
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise invalid(f"Unknown field(s) {unknown}. Options: {self.options}")
        for name, value in options.items():
            if isinstance(value, dict | list):
                raise invalid(f"`{name}` must be a plain value. Received: "
                              f"{type(value).__name__}")
        return Parsed(items, options, has_one)

    def run(self, items, options):
        return list(self.predictor.predict(list(items), **options))


ADAPTERS: dict[str, type[Adapter]] = {
    adapter.app: adapter
    for adapter in (SentimentAdapter, TranslationAdapter, SpeechAdapter, CaptioningAdapter)
}


def load_adapter(export_dir: str | os.PathLike, backend: str = "onnx",
                 quantization: str = "none", num_threads: int | None = None,
                 limits: Limits | None = None) -> Adapter:
    """The adapter of the app ``export_dir/manifest.json`` names, loaded."""
    from rnnkit.runtime import load_manifest

    app = load_manifest(export_dir).get("app")
    if not isinstance(app, str):
        raise ArtifactError(f"{export_dir}/manifest.json names no `app`. Received: {app!r}")
    adapter = ADAPTERS.get(app, TaskAdapter)
    return adapter(export_dir, backend, quantization, num_threads, limits)
