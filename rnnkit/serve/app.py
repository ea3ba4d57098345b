"""The ASGI application: routes, request parsing, limits, errors, metrics (app-agnostic).

    POST /v1/models/{name}/predict   JSON or multipart; the app's fields (see /v1/models)
    GET  /v1/models                  every model: app, input, fields, version, manifest
    GET  /v1/models/{name}           one of them
    GET  /healthz                    {"status": "ok", "models": [...]}
    GET  /metrics                    Prometheus text: requests, latency, batch sizes
    GET  /                           a page to try each model from a browser

Errors are JSON ``{"error": {"code", "message", "status"}}``: 4xx naming the problem for bad
requests, 500 with no traceback (the log has it) when a model fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from rnnkit.errors import ArtifactError, UserError
from rnnkit.serve.batching import MicroBatcher
from rnnkit.serve.errors import RequestError, invalid, too_large
from rnnkit.serve.predictors import Adapter, Limits, Payload, jsonable

log = logging.getLogger("rnnkit.serve")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass(frozen=True)
class ServeConfig:
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_body_bytes: int = 10 * 1024 * 1024
    parse_threads: int = 2  # threads decoding audio/image uploads
    limits: Limits = field(default_factory=Limits)


class Metrics:
    def __init__(self):
        disable_created_metrics()  # no *_created series: counts and histograms only
        self.registry = CollectorRegistry()
        self.requests = Counter("rnnkit_requests", "HTTP requests by route, model and status",
                                ["route", "model", "status"], registry=self.registry)
        self.latency = Histogram("rnnkit_request_seconds", "HTTP request latency",
                                 ["route", "model"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.batch_size = Histogram("rnnkit_batch_size", "Items per runtime call", ["model"],
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.inference = Histogram("rnnkit_inference_seconds", "Seconds per runtime call",
                                   ["model"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queued = Gauge("rnnkit_queued_requests", "Requests waiting for a batch", ["model"],
                            registry=self.registry)


def _error(error: RequestError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)


class _BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes (declared or streamed), and the
    request count/latency of every route."""

    def __init__(self, app, limit: int, metrics: Metrics, models: Mapping[str, Any]):
        self.app = app
        self.limit = limit
        self.metrics = metrics
        self.models = models

    def _labels(self, path: str) -> tuple[str, str]:
        parts = path.strip("/").split("/")
        if path == "/":
            return "page", ""
        if parts[:2] == ["v1", "models"] and len(parts) >= 3:
            model = parts[2] if parts[2] in self.models else "unknown"
            return ("predict" if parts[-1] == "predict" else "model"), model
        if path in ("/v1/models", "/healthz", "/metrics"):
            return path.strip("/").replace("v1/", ""), ""
        return "other", ""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        began = time.perf_counter()
        route, model = self._labels(scope.get("path", ""))
        status = {"code": 500}

        async def send_status(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            declared = dict(scope.get("headers") or []).get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.limit:
                response = _error(too_large(f"The request body has {int(declared)} bytes, "
                                            f"more than the limit of {self.limit}"))
                return await response(scope, receive, send_status)
            seen = {"bytes": 0}
            limit = self.limit

            async def limited_receive():
                message = await receive()
                if message["type"] == "http.request":
                    seen["bytes"] += len(message.get("body", b""))
                    if seen["bytes"] > limit:
                        raise too_large(f"The request body is longer than the limit of "
                                        f"{limit} bytes")
                return message

            await self.app(scope, limited_receive, send_status)
        finally:
            self.metrics.requests.labels(route, model, str(status["code"])).inc()
            self.metrics.latency.labels(route, model).observe(time.perf_counter() - began)


class Service:
    """The models, their batchers and the ASGI app (``service.app``)."""

    def __init__(self, models: Mapping[str, Adapter], config: ServeConfig | None = None):
        if not models:
            raise UserError("serve needs at least one export directory")
        self.models = dict(models)
        self.config = config or ServeConfig()
        self.metrics = Metrics()
        self.batchers: dict[str, MicroBatcher] = {}
        self.draining = False
        self.parse_pool: ThreadPoolExecutor | None = None
        routes = [
            Route("/", self.page, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v1/models/{name}", self.one_model, methods=["GET"]),
            Route("/v1/models/{name}/predict", self.predict, methods=["POST"]),
        ]
        inner = Starlette(routes=routes, lifespan=self.lifespan, exception_handlers={
            RequestError: self._request_error, HTTPException: self._http_error,
            UserError: self._user_error, Exception: self._server_error})
        self.starlette = inner
        self.app = _BodyLimit(inner, self.config.max_body_bytes, self.metrics, self.models)

    # -- lifecycle

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        self.parse_pool = ThreadPoolExecutor(max_workers=self.config.parse_threads,
                                             thread_name_prefix="serve-parse")
        for name, adapter in self.models.items():
            batcher = MicroBatcher(adapter.run, self.config.max_batch,
                                   self.config.max_wait_ms / 1000.0, name,
                                   on_batch=self._batch_hook(name))
            batcher.start()
            self.batchers[name] = batcher
        log.info("serving %s", ", ".join(f"{n} ({a.version})" for n, a in self.models.items()))
        try:
            yield
        finally:
            self.draining = True
            for batcher in self.batchers.values():
                await batcher.close()
            self.parse_pool.shutdown(wait=True)
            log.info("stopped: every queued request was answered")

    def _batch_hook(self, name: str):
        def hook(items: int, seconds: float) -> None:
            self.metrics.batch_size.labels(name).observe(items)
            self.metrics.inference.labels(name).observe(seconds)
        return hook

    # -- errors

    async def _request_error(self, request: Request, error: RequestError):
        return _error(error)

    async def _user_error(self, request: Request, error: UserError):
        if isinstance(error, ArtifactError):  # the model files, not the request
            return await self._server_error(request, error)
        return _error(invalid(str(error).splitlines()[0] if str(error) else "invalid input"))

    async def _http_error(self, request: Request, error: HTTPException):
        codes = {404: "not_found", 405: "method_not_allowed"}
        message = (f"No route {request.method} {request.url.path}. Routes: GET /, /healthz, "
                   "/metrics, /v1/models, /v1/models/{name}; POST /v1/models/{name}/predict"
                   if error.status_code in (404, 405) else str(error.detail))
        return _error(RequestError(error.status_code, codes.get(error.status_code, "http_error"),
                                   message))

    async def _server_error(self, request: Request, error: Exception):
        incident = uuid.uuid4().hex[:12]
        log.error("incident %s: %s %s failed", incident, request.method, request.url.path,
                  exc_info=error)
        return JSONResponse({"error": {"code": "internal_error", "status": 500,
                                       "message": f"The model failed on this request (incident "
                                                  f"{incident}; the server log has the details)"}},
                            status_code=500)

    # -- routes

    def _model(self, name: str) -> Adapter:
        if name not in self.models:
            raise RequestError(404, "unknown_model", f"No model named {name!r}. Models: "
                                                     f"{sorted(self.models)}")
        return self.models[name]

    def _summary(self, name: str, with_manifest: bool) -> dict[str, Any]:
        adapter = self.models[name]
        summary = {"name": name, **adapter.describe(),
                   "endpoint": f"/v1/models/{name}/predict"}
        if with_manifest:
            summary["manifest"] = adapter.manifest
        return summary

    async def healthz(self, request: Request):
        status = "draining" if self.draining else "ok"
        return JSONResponse({"status": status, "models": sorted(self.models)},
                            status_code=503 if self.draining else 200)

    async def prometheus(self, request: Request):
        for name, batcher in self.batchers.items():
            self.metrics.queued.labels(name).set(batcher.pending)
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def list_models(self, request: Request):
        return JSONResponse(jsonable({"models": [self._summary(n, True) for n in self.models]}))

    async def one_model(self, request: Request):
        name = request.path_params["name"]
        self._model(name)
        return JSONResponse(jsonable(self._summary(name, True)))

    async def page(self, request: Request):
        html = resources.files("rnnkit.serve").joinpath("page.html").read_text(encoding="utf-8")
        return HTMLResponse(html)

    async def predict(self, request: Request):
        name = request.path_params["name"]
        adapter = self._model(name)
        batcher = self.batchers.get(name)
        if self.draining or batcher is None:
            raise RequestError(503, "shutting_down", "The server is shutting down")
        batcher.arriving += 1  # a batch being formed may wait for this request
        try:
            payload = await self._payload(request)
            if adapter.parse_in_thread:
                # Decoding uploads (audio, images) is CPU work: off the event loop, on a small
                # pool (dozens of decoding threads would fight the runtime thread for the GIL).
                parsed = await asyncio.get_running_loop().run_in_executor(
                    self.parse_pool, adapter.parse, payload)
            else:
                parsed = adapter.parse(payload)
        finally:
            batcher.arriving -= 1
        results = await batcher.submit(parsed.items, parsed.options)
        body: dict[str, Any] = {"model": name, "model_version": adapter.version}
        if parsed.single:
            body["result"] = results[0]
        else:
            body["results"] = results
        return JSONResponse(jsonable(body))

    async def _payload(self, request: Request) -> Payload:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            raw = await request.body()
            if not raw.strip():
                raise invalid("The request body is empty: send a JSON object")
            try:
                fields = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise RequestError(400, "invalid_json",
                                   f"The request body is not valid JSON: {error}") from None
            if not isinstance(fields, dict):
                raise invalid("The JSON body must be an object of fields. Received: "
                              f"{type(fields).__name__}")
            return Payload(fields=fields)
        if kind == "multipart/form-data":
            try:
                form = await request.form(max_files=4, max_fields=32,
                                          max_part_size=self.config.max_body_bytes)
            except RequestError:
                raise
            except Exception as error:  # python-multipart / Starlette parse errors
                detail = getattr(error, "detail", None) or str(error) or type(error).__name__
                raise RequestError(400, "invalid_multipart",
                                   f"The multipart body cannot be parsed: {detail}") from None
            payload = Payload(multipart=True)
            for key, value in form.multi_items():
                if isinstance(value, str):
                    payload.fields[key] = value
                else:
                    payload.files[key] = await value.read()
            await form.close()
            return payload
        raise RequestError(415, "unsupported_media_type",
                           "Send application/json or multipart/form-data. Received: "
                           f"content-type={kind or 'none'!r}")


def create_app(models: Mapping[str, Adapter], config: ServeConfig | None = None) -> Service:
    return Service(models, config)
