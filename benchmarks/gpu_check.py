"""GPU check, prepared to run on a GPU machine whenever one is available (it also runs on a CPU
machine, where it says there is no GPU and measures the CPU side only).

Install: ``pip install -e .[train,gpu]`` (the ``gpu`` extra is ``tensorflow[and-cuda]``; on
such a machine uninstall ``tensorflow-cpu`` first, both provide the ``tensorflow`` module).

1. Training samples/s per app, the app's default model and pipeline (captured from the app's
   own training, see ``_capture.py``): CPU (a child process with ``CUDA_VISIBLE_DEVICES=""``),
   GPU float32 (Keras picks the cuDNN LSTM/GRU kernels there: ``use_cudnn="auto"``) and GPU
   with the ``mixed_float16`` policy.
2. Export of a model trained here (one short epoch on little data, so the weights went
   through the cuDNN kernels on a GPU): ``app.export`` rebuilds every graph with
   ``use_cudnn=False`` (``rnnkit.export.onnx_graph.no_cudnn``, Bidirectional's inner layers
   included), so the table gives the max abs difference of each exported graph vs Keras,
   the agreement of every runtime variant, and whether any cuDNN op reached the files.

    python benchmarks/gpu_check.py --steps 20            # every app
    python benchmarks/gpu_check.py --apps sentiment --no-export
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
APPS = "sentiment,translation,captioning,speech_to_text"


def _samples_per_second(name: str, steps: int, skip: int, policy: str) -> float:
    import keras
    from _capture import BatchTimer, app_config, available_steps, capture, repeated

    from rnnkit.task import get_task

    keras.mixed_precision.set_global_policy(policy)
    try:
        captured = capture(get_task(name), app_config(get_task(name)))
        data = repeated(captured.train_data)
        total = available_steps(data, steps + skip)
        timer = BatchTimer(skip)
        captured.model.fit(data, epochs=1, steps_per_epoch=total, verbose=0, callbacks=[timer])
        return captured.batch_size * timer.batches / timer.seconds
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _child_cpu(apps: list[str], steps: int, skip: int) -> dict[str, float]:
    """CPU figures from a child process that sees no GPU."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, __file__, "--apps", ",".join(apps), "--steps",
                          str(steps), "--skip", str(skip), "--cpu-json"],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cudnn_ops_in(directory: Path) -> list[str]:
    """Files of an export directory that name a cuDNN op."""
    found = []
    for path in directory.rglob("*"):
        if path.is_file() and path.suffix in (".pb", ".onnx", ".tflite"):
            if b"Cudnn" in path.read_bytes():
                found.append(str(path.relative_to(directory)))
    return found


def _export_check(name: str, work: Path) -> dict:
    from dataclasses import replace

    from _capture import app_config

    from rnnkit.task import get_task

    app = get_task(name)
    config = app_config(app)
    fields = set(getattr(config, "__dataclass_fields__", {}))
    config = replace(config, **{k: v for k, v in {"epochs": 1, "patience": 1}.items()
                                if k in fields})
    run = work / f"{name}-run"
    app.train(config, run)
    manifest = app.export(run, work / f"{name}-export", ["saved_model", "onnx", "tflite"],
                          ["none"])
    worst = max((diff for graph in manifest.get("parity", {}).values()
                 for quant in graph.values() for diff in quant.values()), default=float("nan"))
    agreement = manifest.get("agreement", {}).get("vs_keras", {})
    return {"max_abs_diff": worst, "agreement": agreement,
            "cudnn_files": _cudnn_ops_in(work / f"{name}-export")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--apps", default=APPS)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--skip", type=int, default=3)
    parser.add_argument("--no-export", action="store_true", help="skip the export parity part")
    parser.add_argument("--cpu-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    apps = [a.strip() for a in args.apps.split(",") if a.strip()]

    import tensorflow as tf

    if args.cpu_json:
        print(json.dumps({n: _samples_per_second(n, args.steps, args.skip, "float32")
                          for n in apps}))
        return 0
    gpus = tf.config.list_physical_devices("GPU")
    build = tf.sysconfig.get_build_info()
    print(f"# TensorFlow {tf.__version__}, CUDA {build.get('cuda_version', 'none')}, "
          f"cuDNN {build.get('cudnn_version', 'none')}")
    if not gpus:
        print("# no GPU: TensorFlow sees none (tf.config.list_physical_devices('GPU') == []); "
              "GPU columns are not measured and the export below comes from a CPU-trained "
              "model")
        cpu = {n: _samples_per_second(n, args.steps, args.skip, "float32") for n in apps}
    else:
        print(f"# GPUs: {[tf.config.experimental.get_device_details(g).get('device_name', g.name) for g in gpus]}")
        cpu = _child_cpu(apps, args.steps, args.skip)
    print("| app | CPU samples/s | GPU fp32 (cuDNN) samples/s | GPU mixed_float16 samples/s |")
    print("|---|---|---|---|")
    for name in apps:
        gpu32 = gpu16 = "no GPU"
        if gpus:
            gpu32 = f"{_samples_per_second(name, args.steps, args.skip, 'float32'):.0f}"
            try:
                gpu16 = f"{_samples_per_second(name, args.steps, args.skip, 'mixed_float16'):.0f}"
            except Exception as error:  # report, keep going with the other apps
                gpu16 = f"failed ({type(error).__name__})"
        print(f"| {name} | {cpu[name]:.0f} | {gpu32} | {gpu16} |", flush=True)
    if args.no_export:
        return 0
    trained_on = "GPU" if gpus else "CPU"
    print(f"\n| app ({trained_on}-trained) | max abs diff, exported graphs vs Keras | "
          "agreement with Keras | files naming a cuDNN op |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for name in apps:
            result = _export_check(name, Path(work))
            agreement = ", ".join(f"{k} {v:.3f}" for k, v in result["agreement"].items())
            print(f"| {name} | {result['max_abs_diff']:.2e} | {agreement} | "
                  f"{', '.join(result['cudnn_files']) or 'none'} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
