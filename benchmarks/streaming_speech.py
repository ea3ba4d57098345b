"""Streaming speech to text: latency per chunk, real-time factor and the accuracy cost.

    apt-get install -y pocketsphinx-testdata          # the 10 real recordings
    TF_CPP_MIN_LOG_LEVEL=2 PYTHONPATH=. .venv/bin/python benchmarks/streaming_speech.py \\
        --stream runs/stream/export --offline exported/speech_to_text [more exports] [--quick]

TF-free (numpy, ONNX Runtime, LiteRT). ``--stream`` is the export of a ``streaming=true``
run (its ``stream_step`` graph); ``--offline`` are bidirectional exports to compare with.

1. Speed: the held-out sample shipped in the streaming export (``heldout_sample.npz``) is
   streamed through ``StreamingTranscriber`` (fixed-size chunks of the step graph, batch 1)
   for ORT and LiteRT, fp32 and int8, at 2 threads and at 1 thread. The variants take turns
   clip by clip for ``--rounds`` rounds, so load from other processes hits them alike.
   Reported: median and 95th-percentile milliseconds per step call (one chunk, including the
   runtime's input checks), and the real-time factor = processing time (steps + greedy
   decoding) / audio duration.
2. Accuracy: WER/CER on the default synthetic test split (the same utterances for every
   model) and on the 10 real ``pocketsphinx-testdata`` recordings: the streaming model
   streamed (ORT and LiteRT, fp32 and int8) and offline (its whole-utterance graph), and each
   bidirectional export offline (ORT fp32, greedy). Also counted: test utterances whose
   streamed transcript equals the same export's offline transcript, per variant.

Prints markdown tables (date, machine, cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

VARIANTS = [("onnx", "none"), ("onnx", "int8"), ("tflite", "none"), ("tflite", "int8")]


class TimedStep:
    """Wraps a ``StepRunner``: records the seconds of each call."""

    def __init__(self, step):
        self.inner, self.seconds = step, []

    def __call__(self, chunk):
        started = time.perf_counter()
        result = self.inner(chunk)
        self.seconds.append(time.perf_counter() - started)
        return result

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _sample_clips(export: Path) -> list[np.ndarray]:
    with np.load(export / "heldout_sample.npz") as data:
        audio, offsets = data["audio"].astype(np.float32) / 32767.0, data["offsets"]
    return [audio[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def speed(export: Path, threads: list[int], rounds: int) -> list[dict]:
    from apps.speech_to_text.streaming import StreamingTranscriber

    clips = _sample_clips(export)
    runners = {}
    for count in threads:
        for backend, quantization in VARIANTS:
            stream = StreamingTranscriber(export, backend, quantization, num_threads=count)
            stream.step = TimedStep(stream.step)
            stream.stream_all(clips[0])  # warm-up
            stream.step.seconds.clear()
            runners[(backend, quantization, count)] = (stream, [])
    for _ in range(rounds):
        for clip in clips:
            for stream, totals in runners.values():
                started = time.perf_counter()
                stream.stream_all(clip)
                totals.append(time.perf_counter() - started)
    rate = next(iter(runners.values()))[0].spec.sample_rate
    audio_seconds = rounds * sum(clip.size for clip in clips) / rate
    rows = []
    for (backend, quantization, count), (stream, totals) in runners.items():
        steps = np.array(stream.step.seconds) * 1000
        rows.append({"backend": backend, "quantization": quantization, "threads": count,
                     "chunk_ms": stream.chunk_samples * 1000 / rate,
                     "median_ms": float(np.median(steps)),
                     "p95_ms": float(np.percentile(steps, 95)),
                     "rtf": sum(totals) / audio_seconds, "chunks": len(steps)})
    return rows


def _rates(refs, hyps) -> dict[str, float]:
    from rnnkit.metrics import cer, wer

    return {"wer": float(wer(refs, hyps)), "cer": float(cer(refs, hyps))}


def accuracy(stream_export: Path, offline: list[Path], quick: bool) -> tuple[list, dict]:
    from apps.speech_to_text.config import SpeechToTextConfig
    from apps.speech_to_text.data import synthetic_split
    from apps.speech_to_text.real_speech import pocketsphinx_pairs
    from apps.speech_to_text.streaming import StreamingTranscriber
    from apps.speech_to_text.transcriber import Transcriber
    from rnnkit.runtime.audio import read_audio

    config = SpeechToTextConfig()
    test = synthetic_split("test", config.test_size, config)
    count = 40 if quick else len(test)
    synthetic = ([test.waveform(i) for i in range(count)], test.texts[:count])
    pairs = pocketsphinx_pairs()
    real = ([read_audio(path) for path, _ in pairs], [text for _, text in pairs])
    rows, equal = [], {}
    for backend, quantization in VARIANTS:
        stream = StreamingTranscriber(stream_export, backend, quantization)
        offline_same = Transcriber(stream_export, backend, quantization)
        row = {"model": "streaming, streamed", "variant": f"{backend}/{quantization}"}
        for name, (waves, refs) in (("synthetic", synthetic), ("real", real)):
            hyps = [stream.stream_all(wave).text for wave in waves]
            row[name] = _rates(refs, hyps)
            if name == "synthetic":
                same = offline_same.transcribe_many(waves)
                equal[f"{backend}/{quantization}"] = (
                    sum(a == b for a, b in zip(hyps, same, strict=True)), len(waves))
        rows.append(row)
    for label, export in [("streaming, offline graph", stream_export),
                          *((f"bidirectional {path}", path) for path in offline)]:
        transcriber = Transcriber(export, "onnx")
        row = {"model": label, "variant": "onnx/none"}
        for name, (waves, refs) in (("synthetic", synthetic), ("real", real)):
            row[name] = _rates(refs, transcriber.transcribe_many(waves))
        rows.append(row)
    return rows, {"equal": equal, "synthetic_utterances": count, "real_recordings": len(pairs)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stream", required=True, help="export of a streaming=true run")
    parser.add_argument("--offline", nargs="*", default=["exported/speech_to_text"],
                        help="bidirectional exports to compare with")
    parser.add_argument("--threads", default="2,1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 round, 40 test utterances")
    args = parser.parse_args()
    stream_export = Path(args.stream)
    threads = [int(t) for t in args.threads.split(",")]
    speed_rows = speed(stream_export, threads, 1 if args.quick else args.rounds)
    accuracy_rows, agreement = accuracy(stream_export, [Path(p) for p in args.offline],
                                        args.quick)

    print(f"# Streaming speech — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared)\n")
    print(f"Speed: {len(_sample_clips(stream_export))} held-out clips, batch 1, "
          f"chunk {speed_rows[0]['chunk_ms']:.0f} ms, {speed_rows[0]['chunks']} chunks per "
          "variant\n")
    print("| runtime | weights | threads | ms per chunk (median) | p95 | real-time factor |")
    print("|---|---|---|---|---|---|")
    for row in speed_rows:
        print(f"| {row['backend']} | {row['quantization']} | {row['threads']} | "
              f"{row['median_ms']:.2f} | {row['p95_ms']:.2f} | {row['rtf']:.4f} |")
    print(f"\nAccuracy: {agreement['synthetic_utterances']} synthetic test utterances, "
          f"{agreement['real_recordings']} real recordings (pocketsphinx-testdata), greedy\n")
    print("| model | variant | synthetic WER | CER | real WER | CER |")
    print("|---|---|---|---|---|---|")
    for row in accuracy_rows:
        s, r = row["synthetic"], row["real"]
        print(f"| {row['model']} | {row['variant']} | {s['wer']:.4f} | {s['cer']:.4f} | "
              f"{r['wer']:.4f} | {r['cer']:.4f} |")
    print("\nStreamed == offline transcript (same export, same variant), synthetic test:")
    for key, (same, total) in agreement["equal"].items():
        print(f"- {key}: {same}/{total}")


if __name__ == "__main__":
    main()
