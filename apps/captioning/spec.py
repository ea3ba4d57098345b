"""What a captioning predictor reads from ``manifest.json`` (TF-free)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.runtime.spec import ManifestSpec, spec_field


@dataclass(frozen=True)
class CaptioningSpec(ManifestSpec):
    """The tokenizer asset, the image preprocessing and the decoding defaults."""

    tokenizer_file: str = spec_field("tokenizer.file")
    image_size: int = spec_field("preprocessing.image_size")
    resize_mode: str = spec_field("preprocessing.resize_mode")
    grid_size: list[int] = spec_field("preprocessing.grid_size")
    beam_width: int = spec_field("decoding.beam_width")
    max_length: int = spec_field("decoding.max_length")
    length_penalty: float = spec_field("decoding.length_penalty")
    start_id: int = spec_field("decoding.start_id")
    end_id: int = spec_field("decoding.end_id")
