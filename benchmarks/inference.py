"""Inference benchmark: one LSTM classifier through every runtime, side by side.

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/inference.py          # full (minutes)
    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/inference.py --quick  # smoke run

Model: Embedding(mask_zero=True) → LSTM(units) → Dense(2), right-padded token input.
Compared: Keras `model.predict`, a `tf.function` call, ONNX Runtime on plain tf2onnx's
conversion (a generic `Loop` for the masked LSTM), ONNX Runtime on rnnkit's native-op export
(fp32 and dynamic int8, through `rnnkit.runtime`), LiteRT fp32 / dynamic-range int8 (fixed
shapes). Prints a markdown table: median latency, throughput, max abs diff vs Keras.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small model, few repeats")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads everywhere")
    parser.add_argument("--units", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args(argv)
    units = args.units or (32 if args.quick else 256)
    steps = args.steps or (16 if args.quick else 256)
    batches = (1, 8) if args.quick else (1, 64)
    repeats = {1: 5 if args.quick else 30, batches[1]: 3 if args.quick else 10}

    import keras
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    from rnnkit import runtime
    from rnnkit.export import export_model

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
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
    print(f"exporting LSTM({units}) × {steps} steps ...", file=sys.stderr)
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
        tflite_shapes={"model": {"tokens": (batches[1], steps)}},
    )

    # Plain tf2onnx conversion of the whole model (what you get without rnnkit).
    spec = [tf.TensorSpec((None, None), tf.int32, name="tokens")]
    plain_fn = tf.function(lambda t: model(t, training=False))
    plain, _ = tf2onnx.convert.from_function(plain_fn, input_signature=spec, opset=17)
    plain_ops = {n.op_type for n in plain.graph.node}
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    plain_session = ort.InferenceSession(
        plain.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    plain_input = plain_session.get_inputs()[0].name
    serve = tf.function(lambda t: model(t, training=False))

    runners = {
        "Keras model.predict": lambda t: model.predict(t, verbose=0, batch_size=len(t)),
        "tf.function": lambda t: serve(tf.constant(t)).numpy(),
        "ORT, tf2onnx plain (" + ("Loop" if "Loop" in plain_ops else "LSTM") + ")": lambda t: (
            plain_session.run(None, {plain_input: t})[0]
        ),
    }
    ours = {
        q: runtime.load(tmp / "b1", "onnx", q, num_threads=args.threads) for q in ("none", "int8")
    }
    runners["ORT, rnnkit native LSTM fp32"] = lambda t: ours["none"].run("model", {"tokens": t})[
        "logits"
    ]
    runners["ORT, rnnkit native LSTM int8"] = lambda t: ours["int8"].run("model", {"tokens": t})[
        "logits"
    ]
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

    # Interleave the runtimes (round robin) so that load from other processes on a shared
    # machine hits them all alike; report the median per runtime.
    diffs = {name: 0.0 for name in runners}
    times = {(name, batch): [] for name in runners for batch in batches}
    for batch in batches:
        tokens = data[batch]
        reference = np.asarray(model(tokens, training=False))
        for name, fn in runners.items():
            diffs[name] = max(
                diffs[name], float(np.max(np.abs(np.asarray(fn(tokens)) - reference)))
            )
            fn(tokens)  # warm-up
        for _ in range(repeats[batch]):
            for name, fn in runners.items():
                start = time.perf_counter()
                fn(tokens)
                times[(name, batch)].append((time.perf_counter() - start) * 1000.0)
        print(f"  batch {batch}: done", file=sys.stderr)
    b1, bn = batches
    rows = []
    for name in runners:
        row = [name]
        for batch in batches:
            row.append(statistics.median(times[(name, batch)]))
            row.append(min(times[(name, batch)]))
        rows.append((row, diffs[name]))
    print(
        f"\nLSTM({units}) classifier, {steps} steps (right-padded, mixed lengths), "
        f"{args.threads} threads, {os.cpu_count()} CPU cores; {repeats[b1]} / {repeats[bn]} "
        "interleaved runs; latency as median / best\n"
    )
    print(
        f"| runtime | batch {b1} ms | batch {b1} seq/s | batch {bn} ms | batch {bn} seq/s "
        "| max abs diff vs Keras |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for (name, med1, best1, medn, bestn), diff in rows:
        print(
            f"| {name} | {med1:.2f} / {best1:.2f} | {b1 / med1 * 1000:.0f} "
            f"| {medn:.2f} / {bestn:.2f} | {bn / medn * 1000:.0f} | {diff:.1e} |"
        )
    by_name = {row[0]: row for row, _ in rows}
    loop = next(r for n, r in by_name.items() if n.startswith("ORT, tf2onnx"))
    native = by_name["ORT, rnnkit native LSTM fp32"]
    tfn = by_name["tf.function"]
    for label, offset in (("median", 0), ("best", 1)):
        print(
            f"\n{label}: native vs tf2onnx plain at batch {b1}: "
            f"{loop[1 + offset] / native[1 + offset]:.1f}x faster; native vs tf.function at "
            f"batch {bn}: {tfn[3 + offset] / native[3 + offset]:.1f}x faster"
        )


if __name__ == "__main__":
    main()
