"""Rebuild a shipped export's TFLite files with a dynamic length (no retraining).

The shipped ``exported/speech_to_text`` and ``exported/sentiment`` were exported with TFLite
fixed at their maximum length (20 s of audio, 64 tokens), so every input cost as much as the
longest. This rebuilds the app's Keras model from its default config (speech: without its
training-only layers, as the export was made), loads the weights from the export's SavedModel
checkpoint (matched layer by layer and by weight name), and hands it to
``rnnkit.export.rebuild``, which checks it against the SavedModel before writing anything::

    python tools/rebuild_tflite.py speech_to_text [exported/speech_to_text]
    python tools/rebuild_tflite.py sentiment [exported/sentiment]
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from rnnkit.export.rebuild import rebuild_tflite, restore_checkpoint
from rnnkit.runtime import load_manifest


def _speech(export: Path):
    from apps.speech_to_text.config import SpeechToTextConfig
    from apps.speech_to_text.model import build_model
    from apps.speech_to_text.spec import SpeechSpec

    config = dataclasses.replace(SpeechToTextConfig(), dropout_rate=0.0, freq_mask_count=0,
                                 time_mask_count=0)  # as exported (apps.speech_to_text.task)
    spec = SpeechSpec.from_manifest(load_manifest(export))
    with np.load(export / load_manifest(export)["heldout_sample"]["file"]) as sample:
        audio, offsets = sample["audio"].astype(np.float32) / 32767.0, sample["offsets"]
    clips = [audio[offsets[i]:offsets[i + 1]] for i in range(4)]
    waveform = np.zeros((len(clips), spec.max_samples), np.float32)
    for row, clip in enumerate(clips):
        waveform[row, :len(clip)] = clip[: spec.max_samples]
    lengths = np.array([min(len(c), spec.max_samples) for c in clips], np.int32)
    return build_model(config), [{"waveform": waveform, "lengths": lengths}], "waveform"


def _sentiment(export: Path):
    from apps.sentiment.config import SentimentConfig
    from apps.sentiment.model import build_model

    manifest = load_manifest(export)
    vocab = int(manifest["tokenizer"]["vocab_size"])
    model = build_model(SentimentConfig(), vocab, len(manifest["labels"]),
                        lexicon_valence=np.zeros(vocab, np.float32))  # values: the checkpoint's
    rows = np.random.default_rng(0).integers(1, vocab, (8, 64)).astype(np.int32)
    for i in range(8):
        rows[i, 5 + 7 * i:] = 0  # right-padded, lengths 5..54
    return model, [{"token_ids": rows}], "token_ids"


def main(app: str, export_dir: str | None = None) -> None:
    builders = {"speech_to_text": _speech, "sentiment": _sentiment}
    if app not in builders:
        raise SystemExit(f"app must be one of {sorted(builders)}. Received: {app!r}")
    export = Path(export_dir or f"exported/{app}")
    model, parity_inputs, length_input = builders[app](export)
    restore_checkpoint(model, export / "saved_model" / "model" / "variables" / "variables")
    section = rebuild_tflite(export, "model", model, parity_inputs,
                             shapes={length_input: (1, None)})
    print(section["inputs"])


if __name__ == "__main__":
    main(*sys.argv[1:])
