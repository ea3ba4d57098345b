"""rnnkit tokenizers as TensorFlow graph ops (core TF only, no TF Text), for string-in
SavedModel signatures (TF Serving): the graph takes raw text and gives the ids the Python
``rnnkit.text.Tokenizer`` gives, and turns generated ids back into text.

* :class:`InGraphWordTokenizer` — a ``Tokenizer(kind="word")``;
* :class:`InGraphBPETokenizer` — a ``Tokenizer(kind="bpe")`` (Metaspace + BPE);
* :class:`InGraphBPEDecoder` — ``Tokenizer(kind="bpe").decode`` of id rows;
* :func:`pad_id_rows` — the shared feeding rule: rows cut to ``max_length``, an empty row
  becomes ``[<unk>]``, right padding with 0.

Shared steps, done the way the ``tokenizers`` library does them:

1. special tokens written literally in the raw text (``<pad>``, ``<unk>``, ``<s>``, ``</s>``)
   are matched before normalization, as the library matches its added tokens: each becomes a
   Unicode noncharacter (U+FDD0..U+FDD3, never found in interchange text) that the vocabulary
   table maps to the reserved id; a genuine noncharacter of the block U+FDD0..U+FDEF in the
   input is first replaced by U+FDEF (a character outside every vocabulary → ``<unk>``);
2. the tokenizer's normalizer (NFKC, then lowercase when ``lowercase``) *character by
   character*: a ``StaticHashTable`` from every code point the normalizer changes to what it
   becomes, probed from the library itself (~3 s per process, cached).

Known deviation: NFKC *composition* across characters (a base letter followed by a combining
mark, e.g. ``e`` + U+0301 → ``é``; Hangul jamo sequences) and canonical reordering of combining
marks are not done — core TF has no Unicode normalization op. Such text is rare (precomposed
characters are the norm); :func:`count_normalized_differently` counts it. Invalid UTF-8 input
(impossible from Python) is read with U+FFFD replacement characters.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from rnnkit.text.tokenizer import (
    _DIGIT_PATTERN,
    _WORD_PATTERN,
    END_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    START_ID,
    UNK_ID,
)

TEXT_INPUT = "text"

# Special tokens written in the raw text become these noncharacters; a genuine noncharacter of
# the block U+FDD0..U+FDEF is first replaced by U+FDEF (→ <unk>), which leaves U+FDEE free as
# an internal separator.
SENTINELS = tuple(chr(0xFDD0 + i) for i in range(len(SPECIAL_TOKENS)))
_SENTINEL_BLOCK = "[\ufdd0-\ufdef]"
_SENTINEL_CLASS = f"{SENTINELS[0]}-{SENTINELS[-1]}"
_GENUINE_SENTINEL_STANDIN = "\ufdef"
_SEPARATOR = "\ufdee"
_APOSTROPHES = ("'", "\u2019")
_METASPACE = "\u2581"
_NO_MERGE = np.iinfo(np.int64).max

NORMALIZATION_NOTE = (
    "normalization is done character by character: no NFKC composition of a base letter with "
    "a following combining mark and no reordering of marks (core TF has no Unicode "
    "normalization op); `agreement` gives the measured effect")


# ------------------------------------------------------------------ probing the library
def _code_points():
    return (c for c in range(0x110000) if not 0xD800 <= c < 0xE000)


def _shell(normalizer: str = "null", pre_tokenizer: str = "null") -> str:
    """A minimal tokenizer.json holding only the given normalizer / pre-tokenizer."""
    return (
        '{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], '
        f'"normalizer": {normalizer}, "pre_tokenizer": {pre_tokenizer}, '
        '"post_processor": null, "decoder": null, '
        '"model": {"type": "WordLevel", "vocab": {"<unk>": 0}, "unk_token": "<unk>"}}')


@functools.lru_cache(maxsize=4)
def normalizer_changes(normalizer_json: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(characters, what each becomes) for every code point the normalizer changes."""
    from tokenizers import Tokenizer as HFTokenizer

    normalize = HFTokenizer.from_str(_shell(normalizer=normalizer_json)).normalizer.normalize_str
    keys, values = [], []
    for code in _code_points():
        char = chr(code)
        normalized = normalize(char)
        if normalized != char:
            if not normalized:
                raise ValueError(
                    "The tokenizer's normalizer deletes a character, which the in-graph "
                    f"normalizer cannot express. Received: U+{code:04X} -> ''")
            keys.append(char)
            values.append(normalized)
    return tuple(keys), tuple(values)


@functools.lru_cache(maxsize=4)
def _word_character_classes(pre_tokenizer_json: str) -> tuple[str, str]:
    """RE2 class bodies of the word and the whitespace characters *as the word tokenizer's own
    pre-tokenizer sees them* (probing every code point in ``"a" + c + "b"``): 1 piece → word
    character, 2 pieces → whitespace, 3 → anything else (a single punctuation token)."""
    from tokenizers import Tokenizer as HFTokenizer

    pre_tokenize = HFTokenizer.from_str(
        _shell(pre_tokenizer=pre_tokenizer_json)).pre_tokenizer.pre_tokenize_str
    word, space = [], []
    for code in _code_points():
        pieces = len(pre_tokenize(f"a{chr(code)}b"))
        if pieces == 1 and chr(code) not in _APOSTROPHES:
            word.append(code)
        elif pieces == 2:
            space.append(code)
    return _ranges(word), _ranges(space)


def _ranges(codes: list[int]) -> str:
    parts = []
    start = previous = None
    for code in [*codes, None]:
        if code is not None and previous is not None and code == previous + 1:
            previous = code
            continue
        if start is not None:
            parts.append(f"\\x{{{start:X}}}" if start == previous
                         else f"\\x{{{start:X}}}-\\x{{{previous:X}}}")
        start = previous = code
    return "".join(parts)


def _drop_eager_table_initializers() -> None:
    # Tables made eagerly leave `None` in the global graph's table_initializer collection,
    # and every later graph export (SavedModel, tf2onnx, TFLite) warns about it.
    collection = tf.compat.v1.get_collection_ref(tf.compat.v1.GraphKeys.TABLE_INITIALIZERS)
    collection[:] = [op for op in collection if op is not None]


def _table(keys, values, key_dtype, value_dtype, default):
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys, key_dtype),
                                            tf.constant(values, value_dtype)),
        default_value=default)


# ------------------------------------------------------------------------ shared steps
class CharacterNormalizer(tf.Module):
    """Literal special tokens → sentinels, then the tokenizer's normalizer per character.

    `normalizer(texts, around_special="")` with a string tensor `(B,)`; `around_special` is
    put on both sides of every sentinel (the word tokenizer uses a space to split there).
    """

    def __init__(self, normalizer_spec: Any, name: str | None = None):
        super().__init__(name=name)
        keys, values = normalizer_changes(json.dumps(normalizer_spec))
        self.table = _table(keys, values, tf.string, tf.string, "")

    def __call__(self, texts: tf.Tensor, around_special: str = "") -> tf.Tensor:
        texts = tf.strings.regex_replace(tf.convert_to_tensor(texts, tf.string),
                                         _SENTINEL_BLOCK, _GENUINE_SENTINEL_STANDIN)
        for token, sentinel in zip(SPECIAL_TOKENS, SENTINELS, strict=True):
            texts = tf.strings.regex_replace(texts, re.escape(token),
                                             f"{around_special}{sentinel}{around_special}")
        chars = tf.strings.unicode_split(texts, "UTF-8", errors="replace")
        flat = chars.flat_values
        mapped = self.table.lookup(flat)
        flat = tf.where(tf.equal(mapped, ""), flat, mapped)
        return tf.strings.reduce_join(chars.with_flat_values(flat), axis=-1)


def _vocab_with_sentinels(tokenizer: Any) -> dict[str, int]:
    vocab = dict(tokenizer.backend.get_vocab(with_added_tokens=True))
    for token_id, sentinel in enumerate(SENTINELS):
        vocab[sentinel] = token_id
    return vocab


def pad_id_rows(ids: tf.RaggedTensor, max_length: int
                ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`(token_ids int32 (B, T), lengths int32 (B,), truncated bool (B,))` of id rows
    `(B, None)`: each row cut to `max_length`, an empty row fed as `[<unk>]` (every row has
    length >= 1), right padding with 0, `T = max(lengths)` (at least 1)."""
    truncated = ids.row_lengths() > max_length
    ids = tf.cast(ids[:, :max_length], tf.int32)
    lengths = tf.cast(ids.row_lengths(), tf.int32)
    width = tf.maximum(tf.reduce_max(tf.concat([lengths, [0]], 0)), 1)
    batch = tf.shape(lengths)[0]
    dense = ids.to_tensor(default_value=PAD_ID, shape=tf.stack([batch, width]))
    first = tf.logical_and(tf.equal(lengths, 0)[:, None], tf.equal(tf.range(width), 0)[None])
    dense = tf.where(first, tf.constant(UNK_ID, tf.int32), dense)
    return dense, tf.maximum(lengths, 1), truncated


# ------------------------------------------------------------------------- word tokenizer
def _check_word_tokenizer(tokenizer: Any) -> dict:
    spec = json.loads(tokenizer.to_json())
    expected = [{"type": "WhitespaceSplit"},
                {"type": "Split", "pattern": {"Regex": _WORD_PATTERN}, "behavior": "Isolated",
                 "invert": False}]
    pre_tokenizer = spec.get("pre_tokenizer") or {}
    if tokenizer.kind != "word" or pre_tokenizer.get("pretokenizers") != expected:
        raise ValueError(
            "`tokenizer` must be an rnnkit 'word' tokenizer (WhitespaceSplit + the word "
            f"pattern) to run in the graph. Received: kind={tokenizer.kind!r}, pre_tokenizer="
            f"{json.dumps(pre_tokenizer)[:200]}")
    return spec


class InGraphWordTokenizer(tf.Module):
    """A `Tokenizer(kind="word")` + the feeding rule of :func:`pad_id_rows` as TF ops.

    `tokenizer(texts)` with a string tensor `(B,)` returns `(token_ids int32 (B, T), lengths
    int32 (B,))`. Pre-tokenizer: runs of whitespace become one space, every match of the word
    pattern ``\\w+(?:['’]\\w+)*|[^\\w\\s]`` is surrounded by spaces, ``tf.strings.split`` cuts
    on the spaces. RE2 reads ``\\w``/``\\s`` as ASCII, so both classes are spelled out as code
    point ranges probed from the library's own pre-tokenizer (Oniguruma's Unicode classes:
    ``\\w`` = Alphabetic | Mark | Nd | Pc | Join_Control, not ``\\p{N}``). Building it probes
    the normalizer and the pre-tokenizer on every code point (~3 s each, cached per process).
    """

    def __init__(self, tokenizer: Any, max_length: int, name: str | None = None):
        spec = _check_word_tokenizer(tokenizer)
        if int(max_length) < 1:
            raise ValueError(f"`max_length` must be >= 1. Received: max_length={max_length}")
        super().__init__(name=name)
        self.max_length = int(max_length)
        self.normalizer = CharacterNormalizer(spec.get("normalizer"))
        word, space = _word_character_classes(json.dumps(spec.get("pre_tokenizer")))
        self._whitespace_run = f"[{space}]+"
        quotes = "".join(_APOSTROPHES)
        self._token = f"[{word}]+(?:[{quotes}][{word}]+)*|[^{word}{space}]"
        vocab = _vocab_with_sentinels(tokenizer)
        self.vocab_table = _table(list(vocab), list(vocab.values()), tf.string, tf.int64,
                                  UNK_ID)
        _drop_eager_table_initializers()

    def normalize(self, texts: tf.Tensor) -> tf.Tensor:
        """Special tokens → noncharacters (split off by spaces), then the normalizer."""
        return self.normalizer(texts, around_special=" ")

    def tokens(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Token strings `(B, None)` (before the vocabulary and the `max_length` cut)."""
        texts = self.normalize(tf.convert_to_tensor(texts, tf.string))
        texts = tf.strings.regex_replace(texts, self._whitespace_run, " ")
        texts = tf.strings.regex_replace(texts, self._token, r" \0 ")
        return tf.strings.split(texts)

    def encode(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Token ids `(B, None)` int64, exactly `Tokenizer.encode` (no cut)."""
        return tf.ragged.map_flat_values(self.vocab_table.lookup, self.tokens(texts))

    def __call__(self, texts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        token_ids, lengths, _ = pad_id_rows(self.encode(texts), self.max_length)
        return token_ids, lengths


# -------------------------------------------------------------------------- BPE tokenizer
_METASPACE_SPEC = {"type": "Metaspace", "replacement": _METASPACE, "prepend_scheme": "always",
                   "split": True}
_BPE_SPEC = {"dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
             "ignore_merges": False}


# `Tokenizer.train(kind="bpe", split_digits=True)`: Metaspace, then every ASCII digit isolated.
_DIGITS_SPLIT_SPEC = {"type": "Split", "pattern": {"Regex": _DIGIT_PATTERN},
                      "behavior": "Isolated", "invert": False}


def _splits_digits(pre_tokenizer: Any) -> bool | None:
    """False for the plain Metaspace pre-tokenizer, True for Metaspace + isolated digits,
    None for anything else."""
    if pre_tokenizer == _METASPACE_SPEC:
        return False
    if (isinstance(pre_tokenizer, dict) and pre_tokenizer.get("type") == "Sequence"
            and pre_tokenizer.get("pretokenizers") == [_METASPACE_SPEC, _DIGITS_SPLIT_SPEC]):
        return True
    return None


def _check_bpe_tokenizer(tokenizer: Any) -> dict:
    spec = json.loads(tokenizer.to_json())
    model = spec.get("model") or {}
    settings = {key: model.get(key) for key in _BPE_SPEC}
    pre_tokenizer, decoder = spec.get("pre_tokenizer"), spec.get("decoder")
    if (tokenizer.kind != "bpe" or model.get("type") != "BPE" or settings != _BPE_SPEC
            or _splits_digits(pre_tokenizer) is None or decoder != _METASPACE_SPEC):
        raise ValueError(
            "`tokenizer` must be an rnnkit 'bpe' tokenizer (Metaspace '▁' prepend 'always' + "
            "BPE without dropout, prefixes or byte fallback) to run in the graph. Received: "
            f"kind={tokenizer.kind!r}, model={json.dumps(settings)[:200]}, "
            f"pre_tokenizer={json.dumps(pre_tokenizer)[:120]}, "
            f"decoder={json.dumps(decoder)[:120]}")
    return spec


def _merge_table(spec: dict, vocab: dict[str, int], vocab_size: int
                 ) -> tuple[list[int], list[int], list[int]]:
    """(pair keys `left * vocab_size + right`, ranks, merged ids) of the BPE merges."""
    keys, ranks, merged = [], [], []
    seen = set()
    for rank, merge in enumerate(spec["model"].get("merges") or []):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        key = vocab[left] * vocab_size + vocab[right]
        if key in seen:  # the library keeps the first rank of a pair
            continue
        seen.add(key)
        keys.append(key)
        ranks.append(rank)
        merged.append(vocab[left + right])
    return keys, ranks, merged


class InGraphBPETokenizer(tf.Module):
    """A `Tokenizer(kind="bpe")` as TF ops: `encode(texts)` gives the ids `(B, None)` of
    `Tokenizer.encode`; `tokenizer(texts)` adds the feeding rule of :func:`pad_id_rows`.

    Steps after the shared ones (special tokens, per-character normalizer):

    * Metaspace, per segment between literal special tokens (the library pre-tokenizes each
      such segment on its own): every ``" "`` becomes ``"▁"``, a non-empty segment not
      starting with ``"▁"`` gets one prepended, and every ``"▁"`` starts a new piece (tabs and
      newlines stay inside pieces, as in the library); with ``split_digits`` (the
      tokenizer's pre-tokenizer isolates ``[0-9]`` after Metaspace) every ASCII digit is then
      a piece of its own;
    * BPE on each distinct piece: its characters are looked up in the vocabulary (a character
      outside it → ``<unk>`` id 1, one per character), then the merges are applied as the
      library does: repeatedly the pair of lowest merge rank, its leftmost occurrence first,
      on every piece in parallel inside a ``tf.while_loop`` (a pair table keyed
      ``left_id * vocab_size + right_id`` gives rank and merged id).
    """

    def __init__(self, tokenizer: Any, max_length: int | None = None,
                 name: str | None = None):
        spec = _check_bpe_tokenizer(tokenizer)
        if max_length is not None and int(max_length) < 1:
            raise ValueError(f"`max_length` must be >= 1. Received: max_length={max_length}")
        super().__init__(name=name)
        self.max_length = None if max_length is None else int(max_length)
        self.split_digits = bool(_splits_digits(spec.get("pre_tokenizer")))
        self.normalizer = CharacterNormalizer(spec.get("normalizer"))
        vocab = _vocab_with_sentinels(tokenizer)
        self.vocab_size = max(vocab.values()) + 1
        self.vocab_table = _table(list(vocab), list(vocab.values()), tf.string, tf.int64,
                                  UNK_ID)
        keys, ranks, merged = _merge_table(spec, vocab, self.vocab_size)
        keys, ranks, merged = keys or [-1], ranks or [_NO_MERGE], merged or [UNK_ID]
        self.rank_table = _table(keys, ranks, tf.int64, tf.int64, _NO_MERGE)
        self.merged_table = _table(keys, merged, tf.int64, tf.int64, UNK_ID)
        _drop_eager_table_initializers()

    def pieces(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Metaspace pieces `(B, None)`; a literal special token is one sentinel piece."""
        texts = self.normalizer(texts)
        texts = tf.strings.regex_replace(texts, " ", _METASPACE)
        texts = tf.strings.regex_replace(
            texts, f"(^|[{_SENTINEL_CLASS}])([^{_METASPACE}{_SENTINEL_CLASS}])",
            f"\\1{_METASPACE}\\2")
        # Every piece starts with "▁" or is a sentinel (text after a sentinel got its "▁").
        texts = tf.strings.regex_replace(texts, f"([{_METASPACE}{_SENTINEL_CLASS}])",
                                         f"{_SEPARATOR}\\1")
        if self.split_digits:  # every ASCII digit is a piece of its own
            texts = tf.strings.regex_replace(texts, f"({_DIGIT_PATTERN})",
                                             f"{_SEPARATOR}\\1{_SEPARATOR}")
        pieces = tf.strings.split(texts, sep=_SEPARATOR)
        return tf.ragged.boolean_mask(pieces, tf.not_equal(pieces, ""))

    def _merge(self, ids: tf.Tensor) -> tf.Tensor:
        """BPE merges on symbol ids `(N, L)` int64 right-padded with -1."""
        width = tf.shape(ids)[1]
        columns = tf.range(width)[None]

        def body(ids, _):
            left, right = ids[:, :-1], ids[:, 1:]
            keys = left * self.vocab_size + right
            valid = tf.logical_and(left >= 0, right >= 0)
            ranks = tf.where(valid, self.rank_table.lookup(keys), _NO_MERGE)
            best = tf.reduce_min(ranks, axis=1)
            active = best < _NO_MERGE
            position = tf.argmax(tf.cast(tf.equal(ranks, best[:, None]), tf.int32), axis=1,
                                 output_type=tf.int32)
            merged = tf.gather(self.merged_table.lookup(keys), position, batch_dims=1)
            shifted = tf.concat([ids[:, 1:], tf.fill([tf.shape(ids)[0], 1],
                                                     tf.constant(-1, tf.int64))], 1)
            at = tf.logical_and(active[:, None], tf.equal(columns, position[:, None]))
            after = tf.logical_and(active[:, None], columns > position[:, None])
            ids = tf.where(at, merged[:, None], tf.where(after, shifted, ids))
            return ids, tf.reduce_any(active)

        ids, _ = tf.while_loop(lambda ids, again: again, body, (ids, tf.constant(True)),
                               shape_invariants=(tf.TensorShape([None, None]),
                                                 tf.TensorShape([])))
        return ids

    def encode(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Token ids `(B, None)` int64, exactly `Tokenizer.encode` (no cut)."""
        pieces = self.pieces(tf.convert_to_tensor(texts, tf.string))
        unique, index = tf.unique(pieces.flat_values)
        chars = tf.strings.unicode_split(unique, "UTF-8", errors="replace")
        symbols = tf.ragged.map_flat_values(self.vocab_table.lookup, chars)
        count = tf.shape(unique, out_type=tf.int64)[0]
        # One -1 column more than the longest piece: at least one pair column (argmax needs
        # a non-empty axis, also for an empty batch).
        width = tf.maximum(tf.reduce_max(tf.concat([symbols.row_lengths(), [0]], 0)), 1) + 1
        dense = symbols.to_tensor(default_value=-1, shape=tf.stack([count, width]))
        merged = self._merge(dense)
        per_piece = tf.ragged.boolean_mask(merged, merged >= 0)
        return pieces.with_flat_values(tf.gather(per_piece, index)).merge_dims(1, 2)

    def __call__(self, texts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        if self.max_length is None:
            raise ValueError("Calling an InGraphBPETokenizer needs `max_length`. "
                             "Received: max_length=None (use `encode` for uncut ids)")
        token_ids, lengths, _ = pad_id_rows(self.encode(texts), self.max_length)
        return token_ids, lengths


class InGraphBPEDecoder(tf.Module):
    """`Tokenizer(kind="bpe").decode` of id rows as TF ops.

    `decoder(token_ids (B, T), lengths (B,)) -> text (B,)`: per row the first `lengths` ids,
    stopping at ``</s>``, ``<pad>``/``<s>`` (and ids outside the vocabulary) skipped,
    ``<unk>`` shown as ``"<unk>"``; the pieces are joined, ``"▁"`` becomes a space, and the
    first kept piece loses its ``"▁"`` (the library's Metaspace decoder).
    """

    def __init__(self, tokenizer: Any, name: str | None = None):
        _check_bpe_tokenizer(tokenizer)
        super().__init__(name=name)
        vocab = tokenizer.backend.get_vocab(with_added_tokens=True)
        self.vocab_size = max(vocab.values()) + 1
        tokens = [""] * self.vocab_size
        for token, token_id in vocab.items():
            tokens[token_id] = token
        self.tokens = tf.constant(tokens, tf.string)

    def __call__(self, token_ids: tf.Tensor, lengths: tf.Tensor | None = None) -> tf.Tensor:
        token_ids = tf.cast(tf.convert_to_tensor(token_ids), tf.int64)
        width = tf.shape(token_ids)[1]
        keep = tf.logical_and(tf.not_equal(token_ids, PAD_ID), tf.not_equal(token_ids, START_ID))
        keep = tf.logical_and(keep, tf.logical_and(token_ids >= 0, token_ids < self.vocab_size))
        if lengths is not None:
            keep = tf.logical_and(keep, tf.range(width)[None] < tf.cast(lengths, tf.int32)[:, None])
        ended = tf.cumsum(tf.cast(tf.equal(token_ids, END_ID), tf.int32), axis=1) > 0
        kept = tf.ragged.boolean_mask(token_ids, tf.logical_and(keep, tf.logical_not(ended)))
        pieces = tf.gather(self.tokens, kept.flat_values)
        first = tf.equal(tf.range(tf.size(kept.flat_values, out_type=tf.int64)),
                         tf.gather(kept.row_starts(), kept.value_rowids()))
        pieces = tf.where(first, tf.strings.regex_replace(pieces, _METASPACE, ""),
                          tf.strings.regex_replace(pieces, _METASPACE, " "))
        return tf.strings.reduce_join(kept.with_flat_values(pieces), axis=1)


# ----------------------------------------------------------------------------- checking
def compare_token_ids(texts: Sequence[str], expected: Sequence[Sequence[int]],
                      token_ids_fn: Callable[[list[str]], Any], batch_size: int = 512
                      ) -> dict[str, Any]:
    """Share of `texts` whose `token_ids_fn(batch) -> (B, T)` row equals `expected[i]`
    followed by 0 padding only."""
    texts = [str(t) for t in texts]
    mismatched = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        ids = np.asarray(token_ids_fn(batch))
        for offset, row in enumerate(ids):
            want = list(expected[start + offset])
            if row[: len(want)].tolist() != want or np.any(row[len(want):] != 0):
                mismatched.append(start + offset)
    return {
        "examples": len(texts),
        "token_ids_equal": (len(texts) - len(mismatched)) / max(len(texts), 1),
        "mismatched": len(mismatched),
        "mismatched_examples": [texts[i] for i in mismatched[:5]],
    }


def count_normalized_differently(tokenizer: Any, texts: Sequence[str]) -> int:
    """Texts whose normalization differs when done character by character (the known
    deviation: NFKC composition), whether or not that changes their ids."""
    normalize = tokenizer.backend.normalizer.normalize_str
    return int(sum(normalize(t) != "".join(normalize(c) for c in t) for t in texts))
