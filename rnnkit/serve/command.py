"""The ``rnnkit serve`` command: arguments, loading the models, running uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from rnnkit.errors import UserError


def add_serve_parser(subparsers: argparse._SubParsersAction) -> None:
    from rnnkit.runtime import BACKENDS, QUANTIZATIONS

    serve = subparsers.add_parser("serve", help="HTTP inference service over export directories")
    serve.add_argument("export_dirs", nargs="+", help="export directories (exported/<app>)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--backend", default="onnx", choices=list(BACKENDS))
    serve.add_argument("--quantization", default="none", choices=list(QUANTIZATIONS))
    serve.add_argument("--threads", type=int, default=None, help="runtime threads per model")
    serve.add_argument("--max-batch", type=int, default=32,
                       help="most items in one runtime call (1: no micro-batching)")
    serve.add_argument("--max-wait-ms", type=float, default=5.0,
                       help="longest wait for a batch to fill after its first request")
    serve.add_argument("--max-body-bytes", type=int, default=10 * 1024 * 1024)
    serve.add_argument("--max-items", type=int, default=64, help="most texts per request")
    serve.add_argument("--max-audio-seconds", type=float, default=60.0)
    serve.add_argument("--graceful-timeout", type=float, default=10.0,
                       help="seconds in-flight requests get to finish on SIGTERM/SIGINT")
    serve.add_argument("--log-level", default="info",
                       choices=["critical", "error", "warning", "info", "debug"])


def load_models(export_dirs: Sequence[str | os.PathLike], backend: str = "onnx",
                quantization: str = "none", num_threads: int | None = None,
                limits=None) -> dict:
    """``{name: adapter}``: the app's name, or ``<app>-<folder>`` when two dirs share an app."""
    from rnnkit.serve.predictors import load_adapter

    models: dict = {}
    for export_dir in export_dirs:
        path = Path(export_dir)
        if not path.is_dir():
            raise UserError(f"Export directory not found: {path}")
        adapter = load_adapter(path, backend, quantization, num_threads, limits)
        name = str(adapter.manifest["app"])
        if name in models:
            name = f"{name}-{path.name}"
        if name in models:
            raise UserError(f"Two export directories would both be served as {name!r}: "
                            f"{models[name].export_dir} and {path}")
        models[name] = adapter
    return models


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from rnnkit.serve.app import ServeConfig, create_app
    from rnnkit.serve.predictors import Limits

    for option in ("max_batch", "max_body_bytes", "max_items", "port"):
        if getattr(args, option) < 1:
            raise UserError(f"--{option.replace('_', '-')} must be >= 1. "
                            f"Received: {getattr(args, option)}")
    if args.max_wait_ms < 0:
        raise UserError(f"--max-wait-ms must be >= 0. Received: {args.max_wait_ms}")
    limits = Limits(max_items=args.max_items, max_audio_seconds=args.max_audio_seconds)
    models = load_models(args.export_dirs, args.backend, args.quantization, args.threads, limits)
    config = ServeConfig(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                         max_body_bytes=args.max_body_bytes, limits=limits)
    service = create_app(models, config)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(service.app, host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=args.graceful_timeout, access_log=False,
                lifespan="on")
    return 0
