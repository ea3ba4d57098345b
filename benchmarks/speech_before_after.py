"""Speech export(s) side by side: the default synthetic test split (WER/CER overall, per engine,
on the held-out voices) and every installed real recording set (pocketsphinx-testdata).

    python benchmarks/speech_before_after.py OLD_EXPORT exported/speech_to_text \\
        --names before after [--json out.json]

Prints a Markdown table (one row per export) and, with ``--json``, writes the full report.
The test split is the one ``rnnkit speech_to_text train`` holds out with the default config
(cached under ~/.cache/rnnkit; generated once when missing).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def report(export_dir: str, backend: str) -> dict[str, Any]:
    from apps.speech_to_text.config import SpeechToTextConfig
    from apps.speech_to_text.data import error_rates_by_source, synthetic_split
    from apps.speech_to_text.real_speech import score_real_sets
    from apps.speech_to_text.task import error_rates
    from apps.speech_to_text.transcriber import Transcriber

    config = SpeechToTextConfig()
    test = synthetic_split("test", config.test_size, config)
    transcriber = Transcriber(export_dir, backend)
    hyps = transcriber.transcribe_many([test.waveform(i) for i in range(len(test))])
    by_source = error_rates_by_source(test, hyps)
    held = [voice for voice in by_source.get("by_voice", {}) if voice in config.held_out_voices]
    manifest = json.loads((Path(export_dir) / "manifest.json").read_text())
    return {"export": export_dir, "backend": backend,
            "train_seconds": manifest.get("metrics", {}).get("train_seconds"),
            "synthetic_test": {**error_rates(test.texts, hyps), "examples": len(test)},
            **by_source, "held_out_voices": held,
            "real_speech": score_real_sets(transcriber)}


def _pair(rates: dict[str, Any] | None) -> str:
    return "—" if not rates else f"{rates['wer']:.3f} / {rates['cer']:.3f}"


def table(names: list[str], reports: list[dict[str, Any]]) -> str:
    engines = sorted({e for r in reports for e in r.get("by_engine", {})})
    real = sorted({s for r in reports for s in r["real_speech"] if s != "all"})
    head = ["model", "train s", "synthetic test", *engines, "held-out voices",
            "real, all", *real]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in zip(names, reports, strict=True):
        voices = r.get("by_voice", {})
        held = ", ".join(f"{v} {voices[v]['wer']:.2f}/{voices[v]['cer']:.2f}"
                         for v in r["held_out_voices"]) or "—"
        cells = [name, str(r["train_seconds"]), _pair(r["synthetic_test"]),
                 *(_pair(r.get("by_engine", {}).get(e)) for e in engines), held,
                 _pair(r["real_speech"].get("all")),
                 *(_pair(r["real_speech"].get(s)) for s in real)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("exports", nargs="+", help="speech_to_text export directories")
    parser.add_argument("--names", nargs="+", help="a short name per export")
    parser.add_argument("--backend", default="onnx", choices=("onnx", "tflite"))
    parser.add_argument("--json", help="write the full report here")
    args = parser.parse_args()
    names = args.names or [Path(e).name for e in args.exports]
    if len(names) != len(args.exports):
        parser.error(f"--names needs {len(args.exports)} names. Received: {names}")
    reports = [report(e, args.backend) for e in args.exports]
    print(table(names, reports))
    if args.json:
        Path(args.json).write_text(json.dumps(dict(zip(names, reports, strict=True)), indent=2))


if __name__ == "__main__":
    main()
