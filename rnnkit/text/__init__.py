"""Tokenizers (word, char, BPE) saved as ``tokenizer.json`` assets; no TensorFlow."""

from rnnkit.text.tokenizer import (
    END_ID,
    KINDS,
    PAD_ID,
    SPECIAL_TOKENS,
    START_ID,
    UNK_ID,
    Tokenizer,
)

__all__ = ["END_ID", "KINDS", "PAD_ID", "SPECIAL_TOKENS", "START_ID", "UNK_ID", "Tokenizer"]
