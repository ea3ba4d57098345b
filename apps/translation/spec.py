"""What a translation predictor reads from ``manifest.json`` (TF-free)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.runtime.spec import ManifestSpec, spec_field


@dataclass(frozen=True)
class TranslationSpec(ManifestSpec):
    """Tokenizer assets, length limits, the long-input rule and the decoding defaults."""

    source_tokenizer: str = spec_field("translation.source_tokenizer")
    target_tokenizer: str = spec_field("translation.target_tokenizer")
    max_source_length: int = spec_field("translation.max_source_length")
    max_target_length: int = spec_field("translation.max_target_length")
    long_input: str = spec_field("translation.long_input")
    beam_width: int = spec_field("translation.beam_width")
    length_penalty: float = spec_field("translation.length_penalty")
    start_id: int = spec_field("translation.start_id")
    end_id: int = spec_field("translation.end_id")
    pad_id: int = spec_field("translation.pad_id")
