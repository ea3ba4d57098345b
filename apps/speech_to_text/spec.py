"""What a speech_to_text transcriber reads from ``manifest.json`` (TF-free)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.runtime.spec import ManifestSpec, spec_field

GRAPH = "model"
WAVEFORM = "waveform"
LENGTHS = "lengths"


@dataclass(frozen=True)
class SpeechSpec(ManifestSpec):
    """Audio rate and frame hop, the CTC vocabulary and its blank, decoding and chunking."""

    sample_rate: int = spec_field("features.sample_rate")
    frame_step: int = spec_field("features.frame_step")
    vocabulary_file: str = spec_field("vocabulary.file")
    blank_id: int = spec_field("vocabulary.blank_id")
    beam_width: int = spec_field("decoding.beam_width")
    # Longer audio is cut at the quietest 10 ms within the last `search_seconds` of each chunk.
    max_audio_seconds: float = spec_field("chunking.max_audio_seconds")
    search_seconds: float = spec_field("chunking.search_seconds")
    # Shorter chunks give an empty transcript (less than one subsampled frame).
    min_samples: int = spec_field("chunking.min_samples")

    @property
    def max_samples(self) -> int:
        return int(round(self.max_audio_seconds * self.sample_rate))
