"""Inference benchmark: every runtime side by side, on a synthetic LSTM and on each shipped app.

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/inference.py          # full (many minutes)
    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/inference.py --quick  # smoke run
    ... --apps sentiment,translation --skip-synthetic --markdown bench.md

Part 1, synthetic: Embedding(mask_zero=True) → LSTM(units) → Dense(2) on right-padded tokens.
Compared: Keras `model.predict`, a `tf.function` call, ONNX Runtime on plain tf2onnx's
conversion (a generic `Loop` for the masked LSTM), ONNX Runtime on rnnkit's native-op export
(fp32 and dynamic int8, through `rnnkit.runtime`), LiteRT fp32 / dynamic-range int8 (fixed
shapes). Checks the export issue's targets: rnnkit's ONNX ≥ 3× faster than the Loop conversion
at batch 1 × 256 steps, and faster than a `tf.function` call at batch 64.

Part 2, per app: for each graph of each shipped export directory (`exported/<app>`), inputs are
built from the manifest's input specs (right-padded token ids of mixed lengths, speech clips,
rendered images, decoder states from running the encoder) and timed through the SavedModel's
`serving_default` signature (the tf.function path), `model.predict` on a Keras Model around
`keras.layers.TFSMLayer`, ONNX Runtime on plain tf2onnx's conversion of that signature,
ONNX Runtime on the shipped `<graph>.onnx` / `<graph>.int8.onnx`, and LiteRT on the shipped
`<graph>.tflite` / `<graph>.int8.tflite` (fixed shapes: batches larger than the fixed batch run
in chunks, as `rnnkit.runtime` does). Formats an app did not ship get an "n/a: reason" row.

All runtimes use the same threads (`--threads` intra-op, 1 inter-op) and take turns in
rotating blocks: each turn waits `SETTLE_S`, makes one untimed call, then `BLOCK` timed calls,
and the rounds repeat until every runtime has its count, so that load from other processes hits
them alike. Blocks and the pause, rather than back-to-back single calls: ORT, Eigen and XNNPACK
keep their pool threads spinning for a while after a call, and those spinning threads steal the
cores of whichever runtime runs next. Measured on the 2-core machine, ORT fp32 LSTM(256) × 256
steps at batch 1, 2 threads, median of 10-call blocks alternating with the Loop model: no pause
2.89 ms (the first five calls of each block 3.5–7 ms, the rest 1.9 ms), 5 ms pause 2.06 ms,
50 ms pause 1.70 ms with every position of the block alike. A service that runs one model
never sees the other runtime's spinning threads, so the pause measures what it would see.
Latencies are medians (the synthetic table also shows the best call). `--quick` uses batch 8
instead of 64 and few repeats: its figures are a smoke test, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
APPS = ("sentiment", "translation", "speech_to_text", "captioning")
RECURRENT_OPS = ("LSTM", "GRU", "RNN")


# ----------------------------------------------------------------------------- shared helpers
def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:160]}" if text else type(error).__name__


def _ort_options(threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def _op_counts(model_proto) -> dict[str, int]:
    """Op types of an ONNX model, subgraphs (Loop/If bodies) included."""
    counts: dict[str, int] = {}

    def visit(graph):
        for node in graph.node:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    visit(attribute.g)
                for sub in attribute.graphs:
                    visit(sub)

    visit(model_proto.graph)
    return counts


def _describe_ops(counts: dict[str, int]) -> str:
    native = [f"{counts[op]} {op}" for op in RECURRENT_OPS if counts.get(op)]
    return ", ".join([f"{counts.get('Loop', 0)} Loop", *native])


def _max_abs_diff(
    reference: dict[str, np.ndarray],
    got: dict[str, np.ndarray],
    length_output: str | None = None,
) -> float:
    """Max abs difference over the reference's outputs.

    With `length_output` (a per-row count of valid frames, e.g. CTC `logit_lengths`), frame
    axes (axis 1) are compared over each row's valid frames only: frames past it are padding
    (LiteRT keeps its fixed frame count there).
    """
    valid = None
    if length_output is not None and length_output in reference:
        valid = np.asarray(reference[length_output]).astype(int)
    worst = 0.0
    for name, ref in reference.items():
        if name not in got:
            raise KeyError(f"output {name!r} missing (has {sorted(got)})")
        value = np.asarray(got[name])
        ref = np.asarray(ref)
        if valid is not None and name != length_output and ref.ndim >= 2:
            if value.shape[:1] + value.shape[2:] != ref.shape[:1] + ref.shape[2:] or (
                value.shape[1] < int(valid.max(initial=0))
            ):
                raise ValueError(f"output {name!r} has shape {value.shape}, reference {ref.shape}")
            for row, length in enumerate(valid):
                if length > 0:
                    diff = np.abs(value[row, :length].astype(np.float64) - ref[row, :length])
                    worst = max(worst, float(np.max(diff)))
            continue
        if value.shape != ref.shape:
            raise ValueError(f"output {name!r} has shape {value.shape}, reference {ref.shape}")
        if ref.size:
            diff = np.abs(value.astype(np.float64) - ref.astype(np.float64))
            worst = max(worst, float(np.max(diff)))
    return worst


@dataclass
class Runner:
    """One runtime on one graph: `fn(feeds) -> {output name: array}`, or why it cannot run."""

    name: str
    fn: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None
    reason: str = ""
    fixed: dict[str, str] = field(default_factory=dict)  # TFLite fixed input shapes
    fixed_batch: int | None = None  # TFLite fixed batch


BLOCK = 5  # timed calls per turn (after one untimed call)
SETTLE_S = 0.05  # pause before each turn: lets the previous runtime's pool threads stop spinning


def _time_rotated(
    runners: dict[str, Callable[[], object]],
    repeats: int,
    max_seconds: float = float("inf"),
) -> dict[str, list[float]]:
    """Time each runner `repeats` times, in rotating turns of a `SETTLE_S` pause, one untimed
    call and `BLOCK` timed calls; stops after the round that passes `max_seconds` once every
    runner has 3 timings."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    start_all = time.perf_counter()
    while any(len(t) < repeats for t in times.values()):
        for name, fn in runners.items():
            todo = min(BLOCK, repeats - len(times[name]))
            if todo <= 0:
                continue
            time.sleep(SETTLE_S)
            fn()
            for _ in range(todo):
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) * 1000.0)
        if (
            min(len(t) for t in times.values()) >= 3
            and time.perf_counter() - start_all > max_seconds
        ):
            break
    return times


# ----------------------------------------------------------------------------- part 1: synthetic
def _quantize_plain(proto, tmp: Path):
    """Plain tf2onnx model → ONNX Runtime dynamic int8 of its MatMul weights (inside the Loop
    body too): rnnkit's int8 op types less `Gather` — ORT 1.31.1 aborts the process (a failed
    C++ assertion) when it loads the Loop model with a quantized embedding Gather."""
    import onnx

    from rnnkit.export.formats import ONNX_INT8_OPS, quantize_onnx

    target = tmp / "plain.int8.onnx"
    quantize_onnx(proto, target, op_types=[op for op in ONNX_INT8_OPS if op != "Gather"])
    return onnx.load(str(target))


def run_synthetic(args, batches: tuple[int, int]) -> list[str]:
    import keras
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    from rnnkit import runtime
    from rnnkit.export import export_model

    units = args.units or (32 if args.quick else 256)
    steps = args.steps or (16 if args.quick else 256)
    b1, bn = batches
    repeats = {b1: 5 if args.quick else 30, bn: 3 if args.quick else 10}

    keras.utils.set_random_seed(0)
    vocab = 1000
    tokens_in = keras.Input((None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab, 128, mask_zero=True)(tokens_in)
    x = keras.layers.LSTM(units)(x)
    model = keras.Model(tokens_in, keras.layers.Dense(2, name="logits")(x))

    rng = np.random.default_rng(0)
    data = {}
    for batch in batches:
        tokens = rng.integers(1, vocab, (batch, steps)).astype("int32")
        lengths = rng.integers(steps // 2, steps + 1, batch)
        lengths[0] = steps
        for row, length in enumerate(lengths):
            tokens[row, length:] = 0
        data[batch] = tokens

    tmp = Path(tempfile.mkdtemp(prefix="rnnkit-bench-"))
    try:
        _log(f"synthetic: exporting LSTM({units}) × {steps} steps ...")
        export_model(
            {"model": model},
            tmp / "b1",
            formats=("onnx", "tflite"),
            quantize=("none", "int8"),
            tflite_shapes={"model": {"tokens": (1, steps)}},
        )
        export_model(
            {"model": model},
            tmp / "bN",
            formats=("tflite",),
            quantize=("none", "int8"),
            tflite_shapes={"model": {"tokens": (bn, steps)}},
        )

        # Plain tf2onnx conversion of the whole model (what you get without rnnkit).
        spec = [tf.TensorSpec((None, None), tf.int32, name="tokens")]
        plain_fn = tf.function(lambda t: model(t, training=False))
        plain, _ = tf2onnx.convert.from_function(plain_fn, input_signature=spec, opset=17)
        plain_ops = _op_counts(plain)
        plain_session = ort.InferenceSession(
            plain.SerializeToString(),
            _ort_options(args.threads),
            providers=["CPUExecutionProvider"],
        )
        plain_input = plain_session.get_inputs()[0].name
        # Dynamic int8 quantization of its weights too (see _quantize_plain), so that int8 is
        # compared with int8.
        plain_int8 = _quantize_plain(plain, tmp)
        plain_int8_session = ort.InferenceSession(
            plain_int8.SerializeToString(),
            _ort_options(args.threads),
            providers=["CPUExecutionProvider"],
        )
        serve = tf.function(lambda t: model(t, training=False))

        loop_name = f"ORT, tf2onnx plain fp32 ({_describe_ops(plain_ops)})"
        loop8_name = f"ORT, tf2onnx plain int8 ({_describe_ops(_op_counts(plain_int8))})"
        runners = {
            "Keras model.predict": lambda t: model.predict(t, verbose=0, batch_size=len(t)),
            "tf.function": lambda t: serve(tf.constant(t)).numpy(),
            loop_name: lambda t: plain_session.run(None, {plain_input: t})[0],
            loop8_name: lambda t: plain_int8_session.run(None, {plain_input: t})[0],
        }
        ours = {
            q: runtime.load(tmp / "b1", "onnx", q, num_threads=args.threads)
            for q in ("none", "int8")
        }
        runners["ORT, rnnkit native LSTM fp32"] = lambda t: ours["none"].run(
            "model", {"tokens": t}
        )["logits"]
        runners["ORT, rnnkit native LSTM int8"] = lambda t: ours["int8"].run(
            "model", {"tokens": t}
        )["logits"]
        lite = {
            (b, q): runtime.load(
                tmp / ("b1" if b == 1 else "bN"), "tflite", q, num_threads=args.threads
            )
            for b in batches
            for q in ("none", "int8")
        }
        for q, label in (("none", "fp32"), ("int8", "int8")):
            runners[f"LiteRT {label} (fixed shape)"] = lambda t, q=q: lite[(len(t), q)].run(
                "model", {"tokens": t}
            )["logits"]

        diffs = {name: 0.0 for name in runners}
        times = {(name, batch): [] for name in runners for batch in batches}
        for batch in batches:
            tokens = data[batch]
            reference = np.asarray(model(tokens, training=False))
            for name, fn in runners.items():
                diffs[name] = max(
                    diffs[name], float(np.max(np.abs(np.asarray(fn(tokens)) - reference)))
                )
            timed = _time_rotated(
                {name: (lambda fn=fn, t=tokens: fn(t)) for name, fn in runners.items()},
                repeats[batch],
            )
            for name, values in timed.items():
                times[(name, batch)] = values
            _log(f"synthetic: batch {batch} done")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(name, batch):
        return statistics.median(times[(name, batch)])

    def best(name, batch):
        return min(times[(name, batch)])

    lines = [
        f"### Synthetic LSTM({units}) classifier, {steps} steps",
        "",
        f"Right-padded, mixed lengths; {args.threads} threads, {os.cpu_count()} CPU cores; "
        f"{repeats[b1]} / {repeats[bn]} timed calls in rotating blocks of {BLOCK} "
        f"after a {SETTLE_S * 1000:.0f} ms pause; "
        "latency as median / best.",
        "",
        f"| runtime | batch {b1} ms | batch {b1} seq/s | batch {bn} ms | batch {bn} seq/s "
        "| max abs diff vs Keras |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in runners:
        lines.append(
            f"| {name} | {med(name, b1):.2f} / {best(name, b1):.2f} "
            f"| {b1 / med(name, b1) * 1000:.0f} "
            f"| {med(name, bn):.2f} / {best(name, bn):.2f} "
            f"| {bn / med(name, bn) * 1000:.0f} | {diffs[name]:.1e} |"
        )
    native, native8 = "ORT, rnnkit native LSTM fp32", "ORT, rnnkit native LSTM int8"
    vs_loop = med(loop_name, b1) / med(native, b1)
    vs_loop8 = med(loop8_name, b1) / med(native8, b1)
    vs_tf = med("tf.function", bn) / med(native, bn)
    vs_tf8 = med("tf.function", bn) / med(native8, bn)
    best_loop = best(loop_name, b1) / best(native, b1)
    best_loop8 = best(loop8_name, b1) / best(native8, b1)
    best_tf = best("tf.function", bn) / best(native, bn)
    lines += [
        "",
        "Targets (medians; rnnkit ONNX fp32 vs plain fp32, int8 vs plain int8 in brackets):",
        "",
        f"- ≥ 3× faster than the plain tf2onnx conversion at batch {b1} × {steps} steps: "
        f"{vs_loop:.1f}× [{vs_loop8:.1f}×] → fp32 {'met' if vs_loop >= 3 else 'NOT met'}, "
        f"int8 {'met' if vs_loop8 >= 3 else 'NOT met'} "
        f"(best call vs best call: {best_loop:.1f}× [{best_loop8:.1f}×])",
        f"- faster than a tf.function call at batch {bn}: {vs_tf:.1f}× [{vs_tf8:.1f}×] → "
        f"{'met' if vs_tf > 1 else 'NOT met'} (best vs best: {best_tf:.1f}×)",
    ]
    if "Loop" not in plain_ops:
        lines.append(
            "- note: plain tf2onnx emitted no Loop here, so the first target compares "
            "against its native op"
        )
    if args.quick:
        lines.append(
            f"- quick run: the targets are defined at 256 steps / batch 64 with LSTM(256); "
            f"these {steps}-step / batch {bn} / LSTM({units}) figures are indicative only"
        )
    return lines


# ----------------------------------------------------------------------------- part 2: apps
def snapshot(export_dir: Path, into: Path) -> Path:
    """Copy an export directory (other developers may re-export it while we run)."""
    for attempt in range(3):
        try:
            target = into / f"{export_dir.name}-{attempt}"
            shutil.copytree(export_dir, target)
            json.loads((target / "manifest.json").read_text(encoding="utf-8"))
            return target
        except (FileNotFoundError, OSError, json.JSONDecodeError):
            if attempt == 2:
                raise
            time.sleep(2.0)
    raise AssertionError("unreachable")


def _vocab_size(export_dir: Path, filename: str) -> int | None:
    path = export_dir / "assets" / filename
    if not path.is_file():
        return None
    from rnnkit.text import Tokenizer

    return Tokenizer.load(path).vocab_size


class InputMaker:
    """Realistic feeds for one graph, from its manifest input specs."""

    def __init__(self, export_dir: Path, manifest: dict, seed: int = 0):
        self.dir = export_dir
        self.manifest = manifest
        self.rng = np.random.default_rng(seed)
        self._clips: list[np.ndarray] | None = None
        self._images: list[np.ndarray] | None = None

    # sequence lengths for TFLite's fixed maximum (so that every format can run the same feeds;
    # a dynamic-length TFLite input takes the default)
    def _max_time(self, info: dict, name: str, default: int) -> int:
        fixed = ((info.get("tflite") or {}).get("inputs") or {}).get(name)
        return int(fixed[1]) if fixed and len(fixed) > 1 and fixed[1] is not None else default

    def _token_vocab(self, graph: str, info: dict, name: str) -> int:
        if name.startswith("source"):
            candidates = ("source_tokenizer.json", "tokenizer.json")
        elif graph != "model" and name == "token":
            logits = [o for o in info["outputs"] if o["name"] == "logits"]
            if logits and logits[0]["shape"][-1]:
                return int(logits[0]["shape"][-1])
            candidates = ("target_tokenizer.json", "tokenizer.json")
        else:
            candidates = ("tokenizer.json",)
        for filename in candidates:
            size = _vocab_size(self.dir, filename)
            if size:
                return size
        return 100

    def _lengths(self, batch: int, maximum: int) -> np.ndarray:
        lengths = self.rng.integers(max(1, maximum // 4), maximum + 1, batch)
        lengths[0] = maximum  # the batch spans the full length
        return lengths

    def _speech_clips(self) -> list[np.ndarray]:
        if self._clips is None:
            path = self.dir / "heldout_sample.npz"
            clips = []
            if path.is_file():
                data = np.load(path)
                audio, offsets = data["audio"], data["offsets"]
                scale = 32768.0 if audio.dtype == np.int16 else 1.0
                for start, end in zip(offsets[:-1], offsets[1:], strict=False):
                    clips.append(audio[start:end].astype(np.float32) / scale)
            if not clips:  # synthetic voiced sound: harmonics with a pitch glide, plus noise
                rate = int((self.manifest.get("features") or {}).get("sample_rate", 16000))
                for _ in range(16):
                    n = int(self.rng.uniform(1.0, 4.0) * rate)
                    t = np.arange(n) / rate
                    pitch = 120 + 40 * np.sin(2 * np.pi * 0.5 * t)
                    phase = 2 * np.pi * np.cumsum(pitch) / rate
                    wave = sum(np.sin(k * phase) / k for k in range(1, 6))
                    wave += 0.05 * self.rng.standard_normal(n)
                    clips.append((0.3 * wave / np.max(np.abs(wave))).astype(np.float32))
            self._clips = clips
        return self._clips

    def _sample_images(self, height: int, width: int) -> list[np.ndarray]:
        if self._images is None:
            from PIL import Image

            images = []
            for path in sorted((self.dir / "samples").glob("*.png"))[:64]:
                with Image.open(path) as image:
                    rgb = image.convert("RGB").resize((width, height))
                    images.append(np.asarray(rgb, dtype=np.float32))
            if not images:
                images = [
                    self.rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
                    for _ in range(8)
                ]
            self._images = images
        return self._images

    def make(
        self,
        graph: str,
        info: dict,
        batch: int,
        upstream: dict[str, np.ndarray] | None = None,
        upstream_lengths: np.ndarray | None = None,
    ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """Feeds for `graph` at `batch`, and the sequence lengths used (for a decoder's mask).

        `upstream`: the encoder's outputs at this batch (decoder inputs of the same name take
        them); `upstream_lengths`: the encoder's input lengths (they make `encoder_mask`).
        """
        upstream = upstream or {}
        feeds: dict[str, np.ndarray] = {}
        lengths: np.ndarray | None = None
        deferred = []
        for spec in info["inputs"]:
            name, dtype, shape = spec["name"], np.dtype(spec["dtype"]), spec["shape"]
            if name in upstream:
                feeds[name] = np.asarray(upstream[name]).astype(dtype)
            elif dtype == np.bool_ or (np.issubdtype(dtype, np.integer) and len(shape) == 1):
                deferred.append(spec)  # masks and lengths follow the sequences
            elif np.issubdtype(dtype, np.integer) and len(shape) == 2 and shape[1] == 1:
                vocab = self._token_vocab(graph, info, name)
                feeds[name] = self.rng.integers(4, vocab, (batch, 1)).astype(dtype)
            elif np.issubdtype(dtype, np.integer) and len(shape) == 2:
                vocab = self._token_vocab(graph, info, name)
                lengths = self._lengths(batch, self._max_time(info, name, 64))
                ids = self.rng.integers(4, vocab, (batch, int(lengths.max()))).astype(dtype)
                ids[np.arange(ids.shape[1])[None, :] >= lengths[:, None]] = 0  # right padding
                feeds[name] = ids
            elif len(shape) == 2 and shape[1] is None:  # waveform
                clips = self._speech_clips()
                maximum = self._max_time(info, name, 20 * 16000)
                chosen = [clips[(i * 7) % len(clips)][:maximum] for i in range(batch)]
                lengths = np.array([len(c) for c in chosen])
                wave = np.zeros((batch, int(lengths.max())), dtype)
                for row, clip in enumerate(chosen):
                    wave[row, : len(clip)] = clip
                feeds[name] = wave
            elif len(shape) == 4:  # images (B, H, W, C)
                images = self._sample_images(int(shape[1]), int(shape[2]))
                feeds[name] = np.stack([images[i % len(images)] for i in range(batch)]).astype(
                    dtype
                )
            else:  # states etc.: bounded values like an LSTM's
                concrete = [batch] + [d or 16 for d in shape[1:]]
                feeds[name] = np.tanh(self.rng.standard_normal(concrete)).astype(dtype)
        for spec in deferred:
            name, dtype, shape = spec["name"], np.dtype(spec["dtype"]), spec["shape"]
            if dtype == np.bool_:
                width = next(
                    (v.shape[1] for v in feeds.values() if v.ndim == 3),
                    self._max_time(info, name, 16),
                )
                source = upstream_lengths if upstream_lengths is not None else lengths
                if source is None:
                    feeds[name] = np.ones((batch, width), bool)
                else:
                    feeds[name] = np.arange(width)[None, :] < np.asarray(source)[:, None]
            else:
                if lengths is None:
                    lengths = np.full(batch, 1)
                feeds[name] = np.asarray(lengths).astype(dtype)
        ordered = {spec["name"]: feeds[spec["name"]] for spec in info["inputs"]}
        return ordered, lengths


def _app_runners(args, export_dir: Path, manifest: dict, graph: str, info: dict, cache: dict):
    """Runners for one graph: (reference runner or None, list of runners, notes lines)."""
    import keras
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    from rnnkit import runtime

    files = info.get("files") or {}
    shipped_formats = ", ".join(manifest.get("formats") or sorted(files)) or "none"
    runners: list[Runner] = []
    reference: Runner | None = None

    # --- TensorFlow: SavedModel signature (tf.function), model.predict, plain tf2onnx
    saved_dir = files.get("saved_model", {}).get("none")
    saved_path = export_dir / saved_dir if saved_dir else export_dir / "saved_model" / graph
    tf_names = (
        "TF SavedModel signature (tf.function)",
        "Keras model.predict (TFSMLayer)",
        "ORT, plain tf2onnx of the SavedModel",
    )
    if not (saved_path / "saved_model.pb").is_file():
        why = f"n/a: no SavedModel shipped (formats: {shipped_formats})"
        runners += [Runner(name, None, why) for name in tf_names]
    else:
        loaded = tf.saved_model.load(str(saved_path))
        signature = loaded.signatures["serving_default"]
        input_specs = [
            tf.TensorSpec(
                [None if d is None else int(d) for d in spec["shape"]],
                tf.as_dtype(spec["dtype"]),
                name=spec["name"],
            )
            for spec in info["inputs"]
        ]

        def run_signature(feeds, signature=signature):
            out = signature(**{k: tf.constant(v) for k, v in feeds.items()})
            return {k: v.numpy() for k, v in out.items()}

        reference = Runner(tf_names[0], run_signature)
        runners.append(reference)

        # model.predict: TFSMLayer calls its endpoint with one positional argument, but a
        # SavedModel signature takes keyword arguments only, so call it with **inputs.
        class SignatureLayer(keras.layers.TFSMLayer):
            def call(self, inputs, training=False):
                return self.call_endpoint_fn(**inputs)

        try:
            layer = SignatureLayer(str(saved_path), call_endpoint="serving_default")
            keras_inputs = {
                spec.name: keras.Input(shape=spec.shape[1:], dtype=spec.dtype.name, name=spec.name)
                for spec in input_specs
            }
            wrapped = keras.Model(keras_inputs, layer(keras_inputs))

            def run_predict(feeds, wrapped=wrapped):
                out = wrapped.predict(feeds, verbose=0, batch_size=len(next(iter(feeds.values()))))
                return {k: np.asarray(v) for k, v in out.items()}

            runners.append(Runner(tf_names[1], run_predict))
        except Exception as error:  # report, do not stop the benchmark
            runners.append(
                Runner(tf_names[1], None, f"n/a: TFSMLayer failed: {_first_line(error)}")
            )

        # The "what you get without rnnkit" baseline: tf2onnx on the loaded signature.
        try:
            names = [spec.name for spec in input_specs]
            plain_fn = tf.function(
                lambda *tensors: signature(**dict(zip(names, tensors, strict=True))),
                input_signature=input_specs,
            )
            start = time.perf_counter()
            plain, _ = tf2onnx.convert.from_function(
                plain_fn, input_signature=input_specs, opset=17
            )
            seconds = time.perf_counter() - start
            counts = _op_counts(plain)
            session = ort.InferenceSession(
                plain.SerializeToString(),
                _ort_options(args.threads),
                providers=["CPUExecutionProvider"],
            )
            output_names = [o.name for o in session.get_outputs()]

            def run_plain(feeds, session=session, output_names=output_names):
                return dict(zip(output_names, session.run(output_names, feeds), strict=True))

            label = f"ORT, plain tf2onnx ({_describe_ops(counts)})"
            runners.append(Runner(label, run_plain))
            cache.setdefault("loops", []).append(
                f"{manifest.get('app')}/{graph}: plain tf2onnx → {_describe_ops(counts)} "
                f"({sum(counts.values())} nodes, {counts.get('Transpose', 0)} Transpose; "
                f"converted in {seconds:.1f} s)"
            )
        except Exception as error:
            runners.append(
                Runner(tf_names[2], None, f"n/a: conversion failed: {_first_line(error)}")
            )

    # --- shipped ONNX and TFLite files through rnnkit.runtime (TFLite: padding + chunks)
    for backend, label in (("onnx", "ORT, rnnkit"), ("tflite", "LiteRT")):
        for quantization, qlabel in (("none", "fp32"), ("int8", "int8")):
            name = f"{label} {qlabel}"
            filename = files.get(backend, {}).get(quantization)
            if not filename or not (export_dir / filename).is_file():
                shipped = ", ".join(files.get(backend, {})) or "none"
                why = (
                    f"n/a: not shipped ({backend} quantizations: {shipped})"
                    if backend in files
                    else f"n/a: no {backend} shipped (formats: {shipped_formats})"
                )
                runners.append(Runner(name, None, why))
                continue
            key = (backend, quantization)
            try:
                if key not in cache:
                    cache[key] = runtime.load(
                        export_dir, backend, quantization, num_threads=args.threads
                    )
                model = cache[key]
            except Exception as error:
                runners.append(Runner(name, None, f"n/a: load failed: {_first_line(error)}"))
                continue
            runner = Runner(name, lambda feeds, m=model, g=graph: m.run(g, feeds))
            if backend == "onnx" and quantization == "none":
                import onnx

                counts = _op_counts(onnx.load(str(export_dir / filename)))
                cache.setdefault("loops", []).append(
                    f"{manifest.get('app')}/{graph}: rnnkit {filename} → {_describe_ops(counts)} "
                    f"({sum(counts.values())} nodes, {counts.get('Transpose', 0)} Transpose)"
                )
            if backend == "tflite":
                fixed = (info.get("tflite") or {}).get("inputs") or {}
                fixed_batch = min(shape[0] for shape in fixed.values()) if fixed else 1
                dims = {k: "×".join(map(str, v)) for k, v in fixed.items()}
                runner.fixed, runner.fixed_batch = dims, fixed_batch
            runners.append(runner)
    if reference is None:
        reference = next((r for r in runners if r.name == "ORT, rnnkit fp32" and r.fn), None)
    return reference, runners


def _shapes(outputs: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in outputs.items())


def _tflite_note(runner: Runner, batch: int) -> str:
    fixed_batch = runner.fixed_batch
    if fixed_batch is None:
        return ""
    if batch > fixed_batch:
        chunks = -(-batch // fixed_batch)
        return f" (fixed batch {fixed_batch}: {chunks} chunks)"
    if batch < fixed_batch:
        return f" (fixed batch {fixed_batch}: padded)"
    return f" (fixed batch {fixed_batch})"


def run_app(args, app: str, batches: tuple[int, int], workdir: Path) -> tuple[list[str], list[str]]:
    """Rows of the per-app table and findings for one app."""
    findings: list[str] = []
    source = Path(args.export_root) / app
    if not (source / "manifest.json").is_file():
        return [f"| {app} | n/a: no export directory at {source} | | | | |"], [
            f"{app}: no export directory at {source}"
        ]
    export_dir = snapshot(source, workdir)
    manifest = json.loads((export_dir / "manifest.json").read_text(encoding="utf-8"))
    maker = InputMaker(export_dir, manifest)
    cache: dict = {}
    rows: list[str] = []
    graph_runners = {}
    for graph, info in manifest["graphs"].items():
        _log(f"{app}/{graph}: loading runtimes ...")
        graph_runners[graph] = _app_runners(args, export_dir, manifest, graph, info, cache)

    # Inputs per batch; a decoder step takes the encoder's real outputs as its inputs.
    feeds_by = {}
    for batch in batches:
        upstream, upstream_lengths = None, None
        for graph, info in manifest["graphs"].items():
            feeds, lengths = maker.make(graph, info, batch, upstream, upstream_lengths)
            feeds_by[(graph, batch)] = feeds
            reference = graph_runners[graph][0]
            if graph == "encoder" and reference is not None:
                upstream, upstream_lengths = reference.fn(feeds), lengths

    missing = sorted({r.reason for _, rs in graph_runners.values() for r in rs if r.fn is None})
    findings += [f"{app}: {reason}" for reason in missing]
    findings += cache.get("loops", [])
    for graph, (reference, runners) in graph_runners.items():
        live = [r for r in runners if r.fn is not None]
        ref_mark = "" if reference and reference.name.startswith("TF") else " †"
        if reference is None:
            findings.append(f"{app}/{graph}: nothing to run")
            continue
        for batch in batches:
            feeds = feeds_by[(graph, batch)]
            shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in feeds.items())
            _log(f"{app}/{graph} batch {batch}: {shapes}")
            expected = reference.fn(feeds)
            length_output = next(
                (
                    o["name"]
                    for o in manifest["graphs"][graph]["outputs"]
                    if len(o["shape"]) == 1 and "length" in o["name"]
                ),
                None,
            )
            diffs: dict[str, str] = {}
            lite_shapes = "not run"
            ok = []
            for runner in live:
                try:
                    got = runner.fn(feeds)
                    if runner.fixed_batch is not None:
                        lite_shapes = _shapes(got)
                    diff = _max_abs_diff(expected, got, length_output)
                    diffs[runner.name] = "ref" if runner is reference else f"{diff:.1e}{ref_mark}"
                    ok.append(runner)
                except Exception as error:
                    diffs[runner.name] = f"n/a: failed: {_first_line(error)}"
                    findings.append(
                        f"{app}/{graph} batch {batch}: {runner.name} failed: {_first_line(error)}"
                    )
            repeats = (5 if args.quick else 30) if batch == 1 else (3 if args.quick else 10)
            times = _time_rotated(
                {r.name: (lambda r=r, f=feeds: r.fn(f)) for r in ok}, repeats, args.max_seconds
            )
            for runner in runners:
                label = runner.name + _tflite_note(runner, batch)
                if runner.fn is None:
                    rows.append(f"| {app}/{graph} | {label} | {batch} | {runner.reason} | | |")
                elif runner.name not in times or not times.get(runner.name):
                    rows.append(f"| {app}/{graph} | {label} | {batch} | {diffs[runner.name]} | | |")
                else:
                    median = statistics.median(times[runner.name])
                    rows.append(
                        f"| {app}/{graph} | {label} | {batch} | {median:.2f} "
                        f"| {batch / median * 1000:.0f} | {diffs[runner.name]} |"
                    )
        for runner in runners:
            if runner.fixed:
                dims = ", ".join(f"{k} {v}" for k, v in runner.fixed.items())
                findings.append(f"{app}/{graph}: TFLite fixed shapes {dims}")
                break
        if length_output:
            findings.append(
                f"{app}/{graph}: diffs over each row's valid frames ({length_output}); "
                "rnnkit.runtime's LiteRT output keeps the fixed frame count "
                f"(shapes: {_shapes(expected)} vs LiteRT {lite_shapes})"
            )
        if ref_mark:
            findings.append(f"{app}/{graph}: † no SavedModel shipped, diffs are vs ORT rnnkit fp32")
    return rows, findings


def run_apps(args, batches: tuple[int, int]) -> list[str]:
    apps = [a.strip() for a in args.apps.split(",") if a.strip()]
    rows: list[str] = []
    findings: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="rnnkit-bench-apps-"))
    try:
        for app in apps:
            app_rows, app_findings = run_app(args, app, batches, workdir)
            rows += app_rows
            findings += app_findings
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    b1, bn = batches
    repeats = f"{5 if args.quick else 30} / {3 if args.quick else 10}"
    lines = [
        "### Shipped apps (exported/*)",
        "",
        f"Batches {b1} and {bn}; {args.threads} threads everywhere; {repeats} timed calls "
        f"in rotating blocks of {BLOCK} after a {SETTLE_S * 1000:.0f} ms pause "
        f"(fewer past {args.max_seconds:.0f} s per graph and batch); median latency per call; "
        "throughput = batch / median. TFLite runs its fixed shapes through rnnkit.runtime: "
        "sequences padded to the fixed length, batches padded or run in chunks of the fixed batch "
        "(noted in the runtime column). Decoder-step inputs are the encoder's outputs on the "
        "encoder's inputs; items/s for a decoder step = rows decoded by one step.",
        "",
        "| app/graph | runtime | batch | median ms | items/s | max abs diff vs SavedModel |",
        "|---|---|---:|---:|---:|---:|",
        *rows,
        "",
        "Findings:",
        "",
        *[f"- {line}" for line in dict.fromkeys(findings)],
    ]
    return lines


# ----------------------------------------------------------------------------- main
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small model, batch 8, few repeats")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads everywhere")
    parser.add_argument("--units", type=int, default=None, help="synthetic LSTM units")
    parser.add_argument("--steps", type=int, default=None, help="synthetic sequence length")
    parser.add_argument(
        "--apps", default=",".join(APPS), help=f"comma-separated apps (default {','.join(APPS)})"
    )
    parser.add_argument("--skip-synthetic", action="store_true", help="only the app tables")
    parser.add_argument("--export-root", default=str(ROOT / "exported"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="stop repeating a graph/batch past this many seconds (default 60, quick 20)",
    )
    parser.add_argument("--markdown", default=None, help="also write the tables to this file")
    args = parser.parse_args(argv)
    unknown = [a.strip() for a in args.apps.split(",") if a.strip() and a.strip() not in APPS]
    if unknown:
        parser.error(f"`--apps` must name apps from {', '.join(APPS)}. Received: {unknown}")
    if args.max_seconds is None:
        args.max_seconds = 20.0 if args.quick else 60.0
    batches = (1, 8) if args.quick else (1, 64)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    tf.get_logger().setLevel(logging.ERROR)

    sections: list[list[str]] = []
    if not args.skip_synthetic:
        sections.append(run_synthetic(args, batches))
    if args.apps.strip():
        sections.append(run_apps(args, batches))
    text = "\n\n".join("\n".join(lines) for lines in sections)
    header = (
        f"## Inference benchmark{' (--quick: smoke run, not a measurement)' if args.quick else ''}"
        f"\n\n{os.cpu_count()} CPU cores, {args.threads} threads; "
        f"ORT intra={args.threads} inter=1, TF intra={args.threads} inter=1, "
        f"LiteRT num_threads={args.threads}.\n\n"
    )
    print("\n" + header + text)
    if args.markdown:
        Path(args.markdown).write_text(header + text + "\n", encoding="utf-8")
        _log(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
