"""Training speed on this CPU: each app's default model and pipeline vs plain ``model.fit``.

For every app the script runs the app's own training up to its call of
``rnnkit.training.fit`` (default config; only the amount of default data is cut, see
``_capture.DATA_ONLY``), then times training steps of that model on that pipeline three ways:

* ``rnnkit fit``: ``rnnkit.training.fit`` with the app's compile settings and the kit's
  callbacks (checkpoints, CSV log, backup);
* ``plain fit``: the same model recompiled with Keras defaults (same loss, Adam) and bare
  ``model.fit`` on the same batches;
* ``plain fit + XLA``: the same with ``jit_compile=True``.

Samples/s is the global batch over the median-free mean time of the timed steps (the first
``--skip`` steps, which trace and compile, are left out). The ceiling is TensorFlow's float32
matmul rate on this machine. Run it alone (``flock /tmp/rnnkit-cpu.lock``) with few steps:

    python benchmarks/training_speed.py --steps 12 --apps sentiment,translation
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _time_fit(model, data, steps: int, skip: int, batch_size: int, kit: bool) -> float:
    from _capture import BatchTimer

    from rnnkit.training import loop

    timer = BatchTimer(skip)
    if kit:
        with tempfile.TemporaryDirectory() as run_dir:
            loop.fit(model, data, run_dir=run_dir, epochs=1, steps_per_epoch=steps,
                     patience=None, tensorboard=False, verbose=0, callbacks=[timer],
                     monitor="loss")
    else:
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[timer])
    return batch_size * timer.batches / timer.seconds if timer.seconds else float("nan")


def _recompile(model, jit: bool) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=model.loss, jit_compile=jit)


def measure(app, steps: int, skip: int) -> dict:
    from _capture import app_config, available_steps, capture, repeated

    captured = capture(app, app_config(app))
    data = repeated(captured.train_data)
    steps = available_steps(data, steps + skip)
    row = {"app": app.name, "batch": captured.batch_size, "steps": steps - skip,
           "jit_app": bool(getattr(captured.model, "jit_compile", False))}
    row["kit"] = _time_fit(captured.model, data, steps, skip, captured.batch_size, kit=True)
    _recompile(captured.model, jit=False)
    row["plain"] = _time_fit(captured.model, data, steps, skip, captured.batch_size, kit=False)
    try:
        _recompile(captured.model, jit=True)
        row["plain_xla"] = _time_fit(captured.model, data, steps, skip, captured.batch_size,
                                     kit=False)
    except Exception as error:  # some graphs (e.g. CTC) do not compile with XLA on CPU
        row["plain_xla"] = float("nan")
        row["xla_error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:80]}"
    return row


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--apps", default="sentiment,translation,captioning,speech_to_text")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per variant")
    parser.add_argument("--skip", type=int, default=3, help="untimed first steps (tracing)")
    args = parser.parse_args(argv)

    import tensorflow as tf
    from _capture import matmul_gflops

    from rnnkit.task import get_task

    ceiling = matmul_gflops()
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {_cpu_name()}, "
          f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}, intra-op threads "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'}")
    print(f"# float32 matmul ceiling (1024x1024, TensorFlow): {ceiling:.1f} GFLOP/s")
    print("| app | global batch | timed steps | rnnkit fit (app settings) | plain model.fit | "
          "plain model.fit + XLA |")
    print("|---|---|---|---|---|---|")
    for name in [a.strip() for a in args.apps.split(",") if a.strip()]:
        row = measure(get_task(name), args.steps, args.skip)
        note = " (app compiles with XLA)" if row["jit_app"] else ""
        xla = "failed" if row.get("xla_error") else f"{row['plain_xla']:.0f}"
        # XLA compiles once per input shape: length-bucketed batches recompile per bucket.
        print(f"| {row['app']} | {row['batch']} | {row['steps']} | {row['kit']:.0f}{note} | "
              f"{row['plain']:.0f} | {xla} |", flush=True)
        if row.get("xla_error"):
            print(f"#   {row['app']} XLA: {row['xla_error']}")
    print("# samples/s; higher is better")
    return 0


if __name__ == "__main__":
    sys.exit(main())
