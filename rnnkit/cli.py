"""Command line: ``rnnkit <app> {train,evaluate,export,predict}``, ``rnnkit export``,
``rnnkit demo`` and ``rnnkit diagnose``.

Bad input ends with one line ``error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from rnnkit.config import choice_fields
from rnnkit.errors import UserError
from rnnkit.runtime.model import BACKENDS, EXPORT_FORMATS, QUANTIZATIONS, quantize_choices
from rnnkit.training.distribute import LR_SCALING, STRATEGIES

DEFAULT_FORMATS = ",".join(EXPORT_FORMATS)
DEFAULT_QUANTIZE = ",".join(QUANTIZATIONS)
QUANTIZE_HELP = ("comma-separated: none,int8,float16 for every format that has them (float32 "
                 "is always written), or FORMAT:Q entries that give that format exactly its "
                 "own list, e.g. onnx:float16,tflite:int8 (a compact export without float32)")


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _checked_list(text: str, allowed: list[str], option: str) -> list[str]:
    items = _split(text)
    bad = [item for item in items if item not in allowed]
    if bad or not items:
        raise UserError(f"{option} must be a comma-separated subset of {allowed}. Received: {text!r}")
    return items


def _add_app_commands(subparsers: argparse._SubParsersAction, app: Any) -> None:
    parser = subparsers.add_parser(app.name, help=app.description)
    commands = parser.add_subparsers(dest="command", required=True)

    defaults = app.config_class()
    choices = "\n".join(f"  {name}: {' | '.join(map(str, values))} "
                         f"(default {getattr(defaults, name)})"
                         for name, values in choice_fields(app.config_class).items())
    train = commands.add_parser("train", help="train on default data or --data",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=f"--set KEY=VALUE choices:\n{choices}" if choices else None)
    train.add_argument("--config", help="YAML file overriding the default config")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one config value (repeatable)")
    train.add_argument("--data", help="your own data (see the README for formats)")
    train.add_argument("--run-dir", help="where to write the run (default runs/<app>-<time>)")
    train.add_argument("--init-from", metavar="DIR",
                       help="start from the weights of this run or export directory "
                       "(fine-tuning; apps that support it)")
    train.add_argument("--distribute", default="none", choices=list(STRATEGIES),
                       help="tf.distribute strategy (multi_worker reads TF_CONFIG); batch_size "
                       "is then per replica")
    train.add_argument("--lr-scaling", default="linear", choices=list(LR_SCALING),
                       help="learning rate x replicas (linear), x sqrt(replicas) or unchanged")

    evaluate = commands.add_parser("evaluate", help="metrics on the test split of a run")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--data", help="evaluate on every row of this data instead of the "
                          "run's test split")
    _add_decode_options(evaluate, app)

    export = commands.add_parser("export", help="write an export directory")
    export.add_argument("run_dir")
    export.add_argument("--out", help="export directory (default <run_dir>/export)")
    export.add_argument("--formats", default=DEFAULT_FORMATS)
    export.add_argument("--quantize", default=DEFAULT_QUANTIZE, help=QUANTIZE_HELP)

    predict = commands.add_parser("predict", help=f"predict from {app.input_kind} input")
    predict.add_argument("model_dir", help="a run directory (Keras) or an export directory")
    predict.add_argument("inputs", nargs="*", help=f"{app.input_kind} inputs")
    predict.add_argument("--file", help="a file with one input per line")
    predict.add_argument("--backend", default="onnx", choices=[*BACKENDS, "keras"],
                         help="runtime for an export directory (keras: a run directory)")
    predict.add_argument("--quantization", default="none", choices=list(QUANTIZATIONS))
    predict.add_argument("--threads", type=int, default=None, help="runtime threads")
    predict.add_argument("--beam-width", type=int, default=None,
                         help="1 = greedy, more = beam search (default: the model manifest's)")
    predict.add_argument("--explain", action="store_true",
                         help="show per-token attention weights where the model has them")
    predict.add_argument("--json", action="store_true", help="print JSON lines")
    _add_decode_options(predict, app)
    if hasattr(app, "stream_predict"):
        predict.add_argument("--stream", action="store_true",
                             help="stream the input chunk by chunk, printing partial results "
                                  "as they come (one line per update), the final one last")


_DECODE_FLAGS = {
    "vocabulary": dict(metavar="FILE", help="closed vocabulary: decode only these words "
                       "(a text file of whitespace-separated words)"),
    "lm": dict(metavar="FILE", help="word trigram language model built from this text file "
               "(one sentence per line); without --vocabulary its words are the vocabulary"),
    "lm_weight": dict(type=float, default=None, help="language model weight (default 0.5)"),
    "word_bonus": dict(type=float, default=None, help="score added per decoded word "
                       "(default 0)"),
}


def _add_decode_options(parser: argparse.ArgumentParser, app: Any) -> None:
    """The app's decoding flags (``Task.decode_options``: speech's closed vocabulary)."""
    for name in getattr(app, "decode_options", ()):
        parser.add_argument(f"--{name.replace('_', '-')}", **_DECODE_FLAGS[name])


def _decode_values(app: Any, args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in getattr(app, "decode_options", ())}


def build_parser(apps: dict[str, Any]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnkit", description=__doc__.split("\n")[0])
    subparsers = parser.add_subparsers(dest="app", required=True)
    for app in apps.values():
        _add_app_commands(subparsers, app)

    export = subparsers.add_parser("export", help="export a training run (any app)")
    export.add_argument("run_dir")
    export.add_argument("--out")
    export.add_argument("--formats", default=DEFAULT_FORMATS)
    export.add_argument("--quantize", default=DEFAULT_QUANTIZE, help=QUANTIZE_HELP)

    demo = subparsers.add_parser("demo", help="every app: quick train, evaluate, export, parity")
    demo.add_argument("--apps", default=",".join(apps), help="comma-separated apps")
    demo.add_argument("--ship", action="store_true",
                      help="train the default configs and write exported/<app> (make exported)")
    demo.add_argument("--runs", default="runs/demo", help="where the demo runs go")

    from rnnkit.serve.command import add_serve_parser

    add_serve_parser(subparsers)

    diagnose = subparsers.add_parser(
        "diagnose", help="gradient norm per time step for rnn/lstm/gru (vanishing gradients)")
    diagnose.add_argument("--length", type=int, default=100)
    diagnose.add_argument("--units", type=int, default=32)
    diagnose.add_argument("--batch-size", type=int, default=64)
    diagnose.add_argument("--train-steps", type=int, default=150)
    diagnose.add_argument("--seed", type=int, default=0)
    diagnose.add_argument("--out", default="runs/diagnose")
    return parser


def _print_predictions(results: list[dict[str, Any]], as_json: bool) -> None:
    for result in results:
        if as_json:
            print(json.dumps(result, ensure_ascii=False))
            continue
        parts = []
        for key, value in result.items():
            if isinstance(value, float):
                value = f"{value:.4f}"
            elif isinstance(value, dict):
                value = ", ".join(
                    f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items()
                )
            elif isinstance(value, list) and value and isinstance(value[0], (list, tuple)):
                value = " ".join(f"{token}:{weight:.2f}" for token, weight in value)
            parts.append(f"{key}: {value}")
        print(" | ".join(parts))


def _run_app_command(app: Any, args: argparse.Namespace) -> None:
    from rnnkit.config import load_config

    if args.command == "train":
        config = load_config(app.config_class, args.config, args.set)
        run_dir = Path(args.run_dir) if args.run_dir else None
        metrics = app.train_distributed(config, run_dir, data=args.data,
                                        distribute=args.distribute, lr_scaling=args.lr_scaling,
                                        init_from=args.init_from)
        print(json.dumps(metrics, indent=2, default=str))
    elif args.command == "evaluate":
        _require_dir(args.run_dir)
        metrics = app.evaluate(Path(args.run_dir), data=args.data,
                               options=_decode_values(app, args))
        print(json.dumps(metrics, indent=2, default=str))
    elif args.command == "export":
        _export(app, args)
    elif args.command == "predict":
        _require_dir(args.model_dir)
        inputs = list(args.inputs)
        if args.file:
            path = Path(args.file)
            if not path.is_file():
                raise UserError(f"--file not found: {path}")
            inputs += [line.rstrip("\n") for line in path.read_text().splitlines() if line.strip()]
        if not inputs:
            raise UserError(f"predict needs at least one {app.input_kind} input (or --file)")
        options = {"backend": args.backend, "quantization": args.quantization,
                   "threads": args.threads, "beam_width": args.beam_width,
                   "explain": args.explain or None, **_decode_values(app, args)}
        if getattr(args, "stream", False):
            for result in app.stream_predict(Path(args.model_dir), inputs, options):
                _print_predictions([result], args.json)
            return
        _print_predictions(app.predict(Path(args.model_dir), inputs, options), args.json)


def _require_dir(path: str) -> None:
    if not Path(path).is_dir():
        raise UserError(f"Directory not found: {path}")


def _export(app: Any, args: argparse.Namespace) -> None:
    formats = _checked_list(args.formats, list(EXPORT_FORMATS), "--formats")
    quantize = _checked_list(args.quantize, quantize_choices(formats), "--quantize")
    _require_dir(args.run_dir)
    out = Path(args.out) if args.out else Path(args.run_dir) / "export"
    manifest = app.export(Path(args.run_dir), out, formats, quantize)
    print(f"exported {app.name} to {out}")
    parity = manifest.get("parity") if isinstance(manifest, dict) else None
    if parity:
        print(json.dumps(parity, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from rnnkit.task import RunDir, available_tasks, get_task

    try:
        apps = available_tasks()
        parser = build_parser(apps)
        args = parser.parse_args(argv)
        if args.app == "export":
            app = get_task(RunDir.open(args.run_dir).app)
            _export(app, args)
        elif args.app == "demo":
            from rnnkit.demo import run_demo

            names = _checked_list(args.apps, list(apps), "--apps")
            return run_demo([apps[name] for name in names], Path(args.runs), ship=args.ship)
        elif args.app == "serve":
            from rnnkit.serve.command import run_serve

            return run_serve(args)
        elif args.app == "diagnose":
            from rnnkit.diagnose import run_diagnosis

            run_diagnosis(length=args.length, units=args.units, batch_size=args.batch_size,
                          train_steps=args.train_steps, seed=args.seed, out_dir=Path(args.out))
        else:
            _run_app_command(apps[args.app], args)
    except (UserError, ValueError, FileNotFoundError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
