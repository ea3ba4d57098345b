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
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import tensorflow as tf

from rnnkit.export.rebuild import rebuild_tflite
from rnnkit.runtime import load_manifest


def _key(parts: list[str]) -> tuple[int, int, str]:
    """(recurrent layer, direction, weight name) of a checkpoint or Keras weight path."""
    layer = next((int(m.group(1)) for p in parts
                  for m in [re.fullmatch(r"(?:bidirectional_|)(\d+)", p)] if m), 0)
    direction = 1 if any("backward" in p for p in parts) else 0
    return layer, direction, parts[-1].lstrip("_")


def restore(model, checkpoint: Path) -> None:
    reader = tf.train.load_checkpoint(str(checkpoint))
    groups: dict[int, dict] = defaultdict(dict)
    for name in reader.get_variable_to_shape_map():
        parts = name.split("/")
        if parts[:2] == ["model", "_operations"]:
            groups[int(parts[2])][_key(parts[3:-2])] = reader.get_tensor(name)
    layers = [op for op in model._operations if getattr(op, "weights", None)]
    if len(layers) != len(groups):
        raise SystemExit(f"{len(groups)} checkpointed layers, the model has {len(layers)}")
    for (_, values), layer in zip(sorted(groups.items()), layers, strict=True):
        for weight in layer.weights:
            value = values.pop(_key(re.split(r"/", weight.path)[1:] or [weight.name]))
            weight.assign(value)
        if values:
            raise SystemExit(f"{layer.name}: checkpoint values left unassigned: {list(values)}")


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
    restore(model, export / "saved_model" / "model" / "variables" / "variables")
    section = rebuild_tflite(export, "model", model, parity_inputs,
                             shapes={length_input: (1, None)})
    print(section["inputs"])


if __name__ == "__main__":
    main(*sys.argv[1:])
