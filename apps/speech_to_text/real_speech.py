"""Real-speech smoke check: transcribe Debian's `pocketsphinx-testdata` recordings.

    apt-get install -y pocketsphinx-testdata
    python -m apps.speech_to_text.real_speech exported/speech_to_text [onnx|tflite]

Prints reference / hypothesis per file and the corpus WER/CER (TF-free).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from apps.speech_to_text.data import normalize_transcript
from rnnkit.errors import UserError

DATA = Path("/usr/share/pocketsphinx/test/data")


def pocketsphinx_pairs(root: Path = DATA) -> list[tuple[Path, str]]:
    """(wav, transcript) of the librivox and cards sets (`<s> text </s> (id)` lines)."""
    pairs = []
    for folder, name in (("librivox", "transcription"), ("cards", "cards.transcription")):
        path = root / folder / name
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            match = re.match(r"\s*<s>(.*)</s>\s*\((.+)\)\s*$", line)
            if match:
                pairs.append((root / folder / f"{match.group(2)}.wav",
                              normalize_transcript(match.group(1))))
    if not pairs:
        raise UserError(f"No pocketsphinx-testdata under {root} "
                        "(apt-get install -y pocketsphinx-testdata)")
    return pairs


def main(argv: list[str] | None = None) -> dict:
    from apps.speech_to_text.transcriber import Transcriber
    from rnnkit.metrics import cer, wer

    argv = list(sys.argv[1:] if argv is None else argv)
    export_dir = argv[0] if argv else "exported/speech_to_text"
    backend = argv[1] if len(argv) > 1 else "onnx"
    transcriber = Transcriber(export_dir, backend=backend)
    refs, hyps = [], []
    for path, reference in pocketsphinx_pairs():
        result = transcriber.predict([path])[0]
        refs.append(reference)
        hyps.append(result["transcript"])
        print(f"{path.name} ({result['seconds']:.1f}s)\n  ref: {reference}\n  hyp: {result['transcript']}")
    rates = {"wer": wer(refs, hyps), "cer": cer(refs, hyps)}
    print(f"WER {rates['wer']:.3f}  CER {rates['cer']:.3f}  ({len(refs)} recordings)")
    return rates


if __name__ == "__main__":
    main()
