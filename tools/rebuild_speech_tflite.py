"""Rebuild the shipped speech export's TFLite files with a dynamic length (no retraining).

The shipped ``exported/speech_to_text`` was exported with TFLite fixed at 20 s of audio, so
every clip cost as much as 20 s. This rebuilds its Keras
model from the default config without its training-only layers (as the export was made), loads
the weights from the export's SavedModel checkpoint (matched layer by layer and by weight
name), and hands it to ``rnnkit.export.rebuild``, which
checks it against the SavedModel before writing anything::

    python tools/rebuild_speech_tflite.py [exported/speech_to_text]
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import tensorflow as tf

from apps.speech_to_text.config import SpeechToTextConfig
from apps.speech_to_text.model import build_model
from apps.speech_to_text.spec import SpeechSpec
from apps.speech_to_text.task import GRAPH, LENGTHS, WAVEFORM
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
    layers = [op for op in model._operations if op.weights]
    if len(layers) != len(groups):
        raise SystemExit(f"{len(groups)} checkpointed layers, the model has {len(layers)}")
    for (_, values), layer in zip(sorted(groups.items()), layers, strict=True):
        for weight in layer.weights:
            value = values.pop(_key(re.split(r"/", weight.path)[1:] or [weight.name]))
            weight.assign(value)
        if values:
            raise SystemExit(f"{layer.name}: checkpoint values left unassigned: {list(values)}")


def main(export_dir: str = "exported/speech_to_text") -> None:
    export = Path(export_dir)
    config = dataclasses.replace(SpeechToTextConfig(), dropout_rate=0.0, freq_mask_count=0,
                                 time_mask_count=0)  # as exported (apps.speech_to_text.task)
    model = build_model(config)
    restore(model, export / "saved_model" / GRAPH / "variables" / "variables")
    spec = SpeechSpec.from_manifest(load_manifest(export))
    with np.load(export / load_manifest(export)["heldout_sample"]["file"]) as sample:
        audio, offsets = sample["audio"].astype(np.float32) / 32767.0, sample["offsets"]
    clips = [audio[offsets[i]:offsets[i + 1]] for i in range(4)]
    waveform = np.zeros((len(clips), spec.max_samples), np.float32)
    for row, clip in enumerate(clips):
        waveform[row, :len(clip)] = clip[: spec.max_samples]
    lengths = np.array([min(len(c), spec.max_samples) for c in clips], np.int32)
    section = rebuild_tflite(export, GRAPH, model, [{WAVEFORM: waveform, LENGTHS: lengths}],
                             shapes={WAVEFORM: (1, None)})
    print(section["inputs"])


if __name__ == "__main__":
    main(*sys.argv[1:])
