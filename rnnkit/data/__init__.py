"""Readers (pairs, text, audio, images), the shared hash split and the bucketed batcher."""

from rnnkit.data.pairs import (  # noqa: F401
    read_freedict_examples,
    read_pairs,
    read_parallel_files,
    read_tsv_pairs,
)
