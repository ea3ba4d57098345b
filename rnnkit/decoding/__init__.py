"""Decoding over step functions and CTC outputs (numpy only, never TensorFlow).

See ``rnnkit.decoding.search`` for the step-function protocol and the beam
row layout (``np.repeat(batch, beam_width)``; use ``tile_for_beam``).
"""

from rnnkit.decoding.ctc import (
    Lexicon,
    ctc_greedy_decode,
    ctc_lexicon_beam_search,
    ctc_prefix_beam_search,
)
from rnnkit.decoding.lm import NgramLM
from rnnkit.decoding.search import (
    Hypothesis,
    beam_search,
    greedy_search,
    length_penalty_factor,
    tile_for_beam,
)

# Decoders by name: apps pick theirs from a config field (validated against these keys).
DECODERS = {"greedy": greedy_search, "beam": beam_search}
CTC_DECODERS = {"greedy": ctc_greedy_decode, "prefix_beam": ctc_prefix_beam_search}

__all__ = [
    "CTC_DECODERS",
    "DECODERS",
    "Hypothesis",
    "Lexicon",
    "NgramLM",
    "beam_search",
    "ctc_greedy_decode",
    "ctc_lexicon_beam_search",
    "ctc_prefix_beam_search",
    "greedy_search",
    "length_penalty_factor",
    "tile_for_beam",
]
