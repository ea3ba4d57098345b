"""WER/CER of an exported speech model without and with closed-vocabulary decoding.

    python benchmarks/speech_vocabulary.py [exported/speech_to_text] [--backend onnx]

Sets measured (each decoded greedy, prefix beam 16, and with the word list; the LM rows use
the same texts as the LM corpus, so they show the mechanism's ceiling, not a fair LM):
- real: Debian's pocketsphinx-testdata recordings (``apt-get install pocketsphinx-testdata``),
  word list = the words of their transcripts;
- synthetic digits: the held-out synthetic test split's digit strings (espeak-ng voices and
  texts unseen in training), word list = the ten digit words;
- synthetic all: the whole held-out test split, word list = the words of its transcripts.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from apps.speech_to_text.transcriber import Transcriber
from rnnkit.metrics import cer, wer

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _rates(refs, hyps):
    return {"wer": round(float(wer(refs, hyps)), 4), "cer": round(float(cer(refs, hyps)), 4)}


def measure(transcriber: Transcriber, waves, refs, words, lm_text: str | None = None):
    rows = {}
    for name, options in (("greedy", {"beam_width": 1}), ("beam16", {"beam_width": 16}),
                          ("vocabulary", {"vocabulary": words})):
        started = time.perf_counter()
        hyps = transcriber.transcribe_many(waves, **options)
        rows[name] = {**_rates(refs, hyps),
                      "decode_seconds": round(time.perf_counter() - started, 2)}
    if lm_text is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
            handle.write(lm_text)
        for weight in (0.5, 1.0):
            hyps = transcriber.transcribe_many(waves, vocabulary=words, lm=handle.name,
                                               lm_weight=weight)
            rows[f"vocabulary+lm{weight:g}(oracle text)"] = _rates(refs, hyps)
        Path(handle.name).unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("export_dir", nargs="?", default="exported/speech_to_text")
    parser.add_argument("--backend", default="onnx")
    args = parser.parse_args()
    transcriber = Transcriber(args.export_dir, backend=args.backend, num_threads=1)
    results: dict = {"export": args.export_dir, "backend": args.backend}

    from apps.speech_to_text.real_speech import pocketsphinx_pairs
    from rnnkit.runtime.audio import read_audio

    pairs = pocketsphinx_pairs()
    waves = [read_audio(path, transcriber.spec.sample_rate) for path, _ in pairs]
    refs = [text for _, text in pairs]
    words = sorted({w for t in refs for w in t.split()})
    results["real_pocketsphinx"] = {"clips": len(refs), "words": len(words),
                                    **measure(transcriber, waves, refs, words,
                                              "\n".join(refs) + "\n")}

    from apps.speech_to_text.config import SpeechToTextConfig
    from apps.speech_to_text.data import synthetic_split

    config = SpeechToTextConfig()
    test = synthetic_split("test", config.test_size, config)
    digit_rows = [i for i, t in enumerate(test.texts) if set(t.split()) <= set(DIGITS)]
    results["synthetic_digits"] = {
        "utterances": len(digit_rows),
        **measure(transcriber, [test.waveform(i) for i in digit_rows],
                  [test.texts[i] for i in digit_rows], list(DIGITS))}
    all_words = sorted({w for t in test.texts for w in t.split()})
    results["synthetic_all"] = {
        "utterances": len(test), "words": len(all_words),
        **measure(transcriber, [test.waveform(i) for i in range(len(test))], list(test.texts),
                  all_words)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
