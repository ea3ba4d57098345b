"""Speech TFLite latency: the old fixed 20 s graph vs. the dynamic-length graph, side by side.

    TF_CPP_MIN_LOG_LEVEL=2 PYTHONPATH=. .venv/bin/python benchmarks/tflite_speech.py [--quick]

The shipped speech model's weights (``exported/speech_to_text``, restored into its Keras model
by ``tools/rebuild_tflite.py``'s ``restore``) are converted twice into a temporary
directory: with the waveform fixed at ``max_audio_seconds`` (what every export did before:
each clip is padded to 20 s) and with a dynamic length (``tflite_shapes`` ``(1, None)``: what
exports do now). Both run batch 1 through ``rnnkit.runtime`` (so padding, resizing and slicing
are included) on speech-like clips of 2, 5, 10 and 20 s, fp32 and dynamic-range int8, at the
same thread count, taking turns in blocks of calls so that load from other processes hits both
alike. Also checked: the held-out sample's transcripts are identical between the two graphs.
Prints a markdown table (median ms per call and the speed-up).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

SECONDS = (2, 5, 10, 20)


def _build_variants(export: Path, out: Path) -> dict[str, Path]:
    from rebuild_tflite import restore

    from apps.speech_to_text.config import SpeechToTextConfig
    from apps.speech_to_text.model import build_model
    from apps.speech_to_text.task import GRAPH
    from rnnkit.export.formats import input_specs, serving_function, write_tflite

    config = dataclasses.replace(SpeechToTextConfig(), dropout_rate=0.0, freq_mask_count=0,
                                 time_mask_count=0)
    model = build_model(config)
    restore(model, export / "saved_model" / GRAPH / "variables" / "variables")
    manifest = json.loads((export / "manifest.json").read_text())
    max_samples = int(round(manifest["chunking"]["max_audio_seconds"]
                            * manifest["features"]["sample_rate"]))
    dirs = {}
    for name, length in (("fixed_20s", max_samples), ("dynamic", None)):
        target = out / name
        shutil.copytree(export, target, ignore=shutil.ignore_patterns("*.tflite"))
        shapes = {"waveform": (1, length), "lengths": (1,)}
        result = write_tflite(GRAPH, [serving_function(model, input_specs(model, shapes))],
                              [shapes], target, ["none", "int8"])
        manifest["graphs"][GRAPH]["tflite"] = {**result["tflite"], "max_length": length}
        manifest["graphs"][GRAPH]["files"]["tflite"] = result["files"]
        (target / "manifest.json").write_text(json.dumps(manifest))
        dirs[name] = target
    return dirs


def _clip(seconds: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Noise shaped like speech: 4 Hz syllable envelope over band-limited noise."""
    t = np.arange(seconds * rate) / rate
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    noise = np.convolve(rng.standard_normal(t.size), np.ones(8) / 8, mode="same")
    return (0.2 * envelope * noise).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--export", default=str(ROOT / "exported" / "speech_to_text"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="few calls: a smoke run")
    args = parser.parse_args()
    from apps.speech_to_text.transcriber import Transcriber
    from rnnkit import runtime

    export = Path(args.export)
    rounds, block = (2, 1) if args.quick else (5, 3)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = _build_variants(export, Path(tmp))
        with np.load(export / "heldout_sample.npz") as data:
            audio, offsets = data["audio"].astype(np.float32) / 32767.0, data["offsets"]
        waves = [audio[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
        same = {}
        for quantization in ("none", "int8"):
            texts = [Transcriber(d, backend="tflite", quantization=quantization)
                     .transcribe_many(waves) for d in dirs.values()]
            same[quantization] = sum(a == b for a, b in zip(*texts, strict=True))
        rng = np.random.default_rng(0)
        rows = []
        for quantization in ("none", "int8"):
            models = {name: runtime.load(d, backend="tflite", quantization=quantization,
                                         num_threads=args.threads) for name, d in dirs.items()}
            for seconds in SECONDS:
                wave = _clip(seconds, 16000, rng)[None]
                feeds = {"waveform": wave, "lengths": np.array([wave.shape[1]], np.int32)}
                times: dict[str, list[float]] = {name: [] for name in models}
                for _ in range(rounds):
                    for name, model in models.items():
                        time.sleep(0.05)
                        model.run("model", feeds)
                        for _ in range(block):
                            started = time.perf_counter()
                            model.run("model", feeds)
                            times[name].append(time.perf_counter() - started)
                fixed, dynamic = (statistics.median(times[n]) * 1000 for n in models)
                rows.append((quantization, seconds, fixed, dynamic, fixed / dynamic))
    print(f"# Speech TFLite, batch 1, {args.threads} threads — {time.strftime('%Y-%m-%d')}, "
          f"{platform.processor() or platform.machine()}, {len(waves)} held-out clips\n")
    print("| variant | clip | fixed 20 s graph (ms) | dynamic-length graph (ms) | speed-up |")
    print("|---|---|---|---|---|")
    for quantization, seconds, fixed, dynamic, ratio in rows:
        print(f"| {quantization} | {seconds} s | {fixed:.1f} | {dynamic:.1f} | {ratio:.1f}x |")
    print()
    for quantization, count in same.items():
        print(f"held-out transcripts identical ({quantization}): {count}/{len(waves)}")


if __name__ == "__main__":
    main()
