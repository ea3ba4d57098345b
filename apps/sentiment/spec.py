"""What a sentiment predictor reads from ``manifest.json`` (TF-free)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.runtime.spec import ManifestSpec, spec_field

GRAPH = "model"
INPUT_NAME = "token_ids"


@dataclass(frozen=True)
class SentimentSpec(ManifestSpec):
    """Labels in output order, the tokenizer asset and its cut, the graph's input/outputs."""

    labels: list[str] = spec_field("labels")
    tokenizer_file: str = spec_field("tokenizer.file")
    max_length: int = spec_field("tokenizer.max_length")
    input_name: str = spec_field("task.input")
    outputs: list[str] = spec_field("task.outputs")
