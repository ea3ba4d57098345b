"""Real human speech to measure on: every transcribed recording that the package registries
hold, read from where its package installs it. Each set is optional; ``real_sets()`` gives
the ones installed here.

Found so far (a search of Debian, PyPI and npm; see the README's speech section):

- ``pocketsphinx-librivox``: 5 LibriVox read-book sentences (Sense and Sensibility), 16 kHz.
- ``pocketsphinx-cards``: 5 spoken card names ("ace of spades"…), 16 kHz.
- ``pocketsphinx-commands``: "go forward ten meters" (16 kHz raw PCM) and a TIDIGITS digit
  string, "two nine three four zero" (8 kHz raw PCM); their transcripts are the ones
  pocketsphinx's own tests assert.

All three come with Debian's ``pocketsphinx-testdata`` (``apt-get install -y
pocketsphinx-testdata``).

    python -m apps.speech_to_text.real_speech exported/speech_to_text [--backend onnx]
    python -m apps.speech_to_text.real_speech runs/speech_to_text-<time>   # Keras
    python -m apps.speech_to_text.real_speech MODEL --verbose   # every reference/hypothesis

prints WER/CER per set and over all of them.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from apps.speech_to_text.data import SpeechSet, normalize_transcript
from rnnkit.data.audio import read_audio, resample
from rnnkit.errors import UserError

DATA = Path("/usr/share/pocketsphinx/test/data")
INSTALL = "apt-get install -y pocketsphinx-testdata"

# Raw 16-bit little-endian mono PCM files of pocketsphinx-testdata: (path, rate, transcript).
_RAW_COMMANDS = (
    ("goforward.raw", 16000, "go forward ten meters"),
    ("tidigits/dhd.2934z.raw", 8000, "two nine three four zero"),
)


def pocketsphinx_pairs(root: Path = DATA) -> list[tuple[Path, str]]:
    """(wav, transcript) of the librivox and cards sets (`<s> text </s> (id)` lines)."""
    pairs = []
    for folder, name in (("librivox", "transcription"), ("cards", "cards.transcription")):
        pairs += _transcription_pairs(root / folder, name)
    if not pairs:
        raise UserError(f"No pocketsphinx-testdata under {root} ({INSTALL})")
    return pairs


def _transcription_pairs(folder: Path, name: str) -> list[tuple[Path, str]]:
    path = folder / name
    if not path.is_file():
        return []
    pairs = []
    for line in path.read_text().splitlines():
        match = re.match(r"\s*<s>(.*)</s>\s*\((.+)\)\s*$", line)
        if match:
            pairs.append((folder / f"{match.group(2)}.wav", normalize_transcript(match.group(1))))
    return pairs


def read_raw_pcm(path: Path, rate: int, target_rate: int = 16000) -> np.ndarray:
    """Headerless 16-bit little-endian mono PCM as float32 at ``target_rate``."""
    if not path.is_file():
        raise UserError(f"Audio file not found: {path}")
    data = np.fromfile(path, dtype="<i2").astype(np.float32) / 32768.0
    return resample(data, rate, target_rate)


def _from_pairs(pairs: list[tuple[Path, str]], sample_rate: int) -> SpeechSet:
    waves = [read_audio(path, sample_rate) for path, _ in pairs]
    return SpeechSet.from_waveforms(waves, [text for _, text in pairs],
                                    [str(path) for path, _ in pairs])


def _librivox(root: Path, sample_rate: int) -> SpeechSet | None:
    pairs = _transcription_pairs(root / "librivox", "transcription")
    return _from_pairs(pairs, sample_rate) if pairs else None


def _cards(root: Path, sample_rate: int) -> SpeechSet | None:
    pairs = _transcription_pairs(root / "cards", "cards.transcription")
    return _from_pairs(pairs, sample_rate) if pairs else None


def _commands(root: Path, sample_rate: int) -> SpeechSet | None:
    found = [(root / name, rate, text) for name, rate, text in _RAW_COMMANDS
             if (root / name).is_file()]
    if not found:
        return None
    return SpeechSet.from_waveforms([read_raw_pcm(path, rate, sample_rate)
                                     for path, rate, _ in found],
                                    [text for _, _, text in found],
                                    [str(path) for path, _, _ in found])


READERS: dict[str, tuple[Callable[[Path, int], SpeechSet | None], str]] = {
    "pocketsphinx-librivox": (_librivox, INSTALL),
    "pocketsphinx-cards": (_cards, INSTALL),
    "pocketsphinx-commands": (_commands, INSTALL),
}


def real_sets(sample_rate: int = 16000, root: Path = DATA) -> dict[str, SpeechSet]:
    """Every real-speech set installed here, by name (an empty dict when none is)."""
    sets = {}
    for name, (reader, _) in READERS.items():
        data = reader(root, sample_rate)
        if data is not None and len(data):
            sets[name] = data
    return sets


def missing_sets(root: Path = DATA) -> dict[str, str]:
    """The sets not installed here, with what installs them."""
    present = real_sets(root=root)
    return {name: advice for name, (_, advice) in READERS.items() if name not in present}


def score_real_sets(transcriber, sets: dict[str, SpeechSet] | None = None,
                    keep_transcripts: bool = False) -> dict[str, Any]:
    """WER/CER per real set and over all of them (``all``), for any transcriber with
    ``transcribe_many`` (Keras or runtime)."""
    from rnnkit.metrics import cer, wer

    sets = real_sets(transcriber.spec.sample_rate) if sets is None else sets
    report: dict[str, Any] = {}
    refs_all: list[str] = []
    hyps_all: list[str] = []
    for name, data in sets.items():
        hyps = transcriber.transcribe_many([data.waveform(i) for i in range(len(data))])
        report[name] = {"wer": float(wer(data.texts, hyps)), "cer": float(cer(data.texts, hyps)),
                        "examples": len(data)}
        if keep_transcripts:
            report[name]["transcripts"] = [
                {"source": Path(source).name, "reference": ref, "hypothesis": hyp}
                for source, ref, hyp in zip(data.sources, data.texts, hyps, strict=True)]
        refs_all += data.texts
        hyps_all += hyps
    if refs_all:
        report["all"] = {"wer": float(wer(refs_all, hyps_all)),
                         "cer": float(cer(refs_all, hyps_all)), "examples": len(refs_all)}
    return report


def _transcriber(model: str, backend: str):
    path = Path(model)
    if (path / "manifest.json").is_file():
        from apps.speech_to_text.transcriber import Transcriber

        if backend == "keras":
            raise UserError(f"{model} is an export: pick onnx or tflite, not keras")
        return Transcriber(path, backend=backend)
    if (path / "model.keras").is_file():
        from apps.speech_to_text.task import KerasTranscriber
        from rnnkit.task import RunDir

        return KerasTranscriber.from_run(RunDir(path))
    raise UserError(f"Not a speech_to_text export (manifest.json) nor a finished run "
                    f"(model.keras): {model}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m apps.speech_to_text.real_speech",
                                     description="WER/CER on every installed real-speech set")
    parser.add_argument("model", nargs="?", default="exported/speech_to_text",
                        help="an export directory or a run directory (Keras)")
    parser.add_argument("backend", nargs="?", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--backend", dest="backend_option", default="onnx",
                        choices=["onnx", "tflite", "keras"])
    parser.add_argument("--verbose", action="store_true", help="print every transcript")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        sets = real_sets()
        if not sets:
            raise UserError(f"No real-speech set is installed ({INSTALL})")
        transcriber = _transcriber(args.model, args.backend or args.backend_option)
        report = score_real_sets(transcriber, sets, keep_transcripts=args.verbose)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{'set':<24} {'clips':>5} {'WER':>6} {'CER':>6}")
    for name, row in report.items():
        for item in row.get("transcripts", []):
            print(f"  {item['source']}\n    ref: {item['reference']}\n    hyp: {item['hypothesis']}")
        print(f"{name:<24} {row['examples']:>5} {row['wer']:>6.3f} {row['cer']:>6.3f}")
    for name, advice in missing_sets().items():
        print(f"{name:<24} not installed ({advice})")
    return report


if __name__ == "__main__":
    main()
