"""String-in serving signatures for the sentiment SavedModel (TF Serving), tokenizer in the graph.

The SavedModel of a word-tokenizer export gets two signatures beside ``serving_default``
(which takes ``token_ids``):

* ``classify_text``: ``text`` string ``(B,)`` → ``probabilities`` float32 ``(B, num_labels)``,
  ``label_index`` int64 ``(B,)``, ``label`` string ``(B,)``;
* ``tokenize_text``: ``text`` string ``(B,)`` → ``token_ids`` int32 ``(B, T)`` (right-padded
  with 0, ``T`` = longest row of the batch) and ``lengths`` int32 ``(B,)``: exactly what
  ``classify_text`` feeds the model (for debugging a client).

``InGraphWordTokenizer`` reproduces ``rnnkit.text.Tokenizer(kind="word")`` + the runtime's
``encode_texts`` with core TensorFlow ops only (no TF Text):

1. special tokens written literally in the raw text (``<pad>``, ``<unk>``, ``<s>``, ``</s>``) are
   matched before normalization, as the ``tokenizers`` library does with its added tokens: each
   becomes a Unicode noncharacter (U+FDD0..U+FDD3, never found in interchange text) that the
   vocabulary table maps to the reserved id;
2. the tokenizer's normalizer (NFKC, then lowercase when ``lowercase``) *character by
   character*: a ``StaticHashTable`` from every code point the normalizer changes to what it
   becomes, probed from the ``tokenizers`` library itself at export (its lowercase is per
   character already: a final capital sigma gives ``σ``, unlike ICU's ``tf.strings.lower``);
3. the pre-tokenizer: runs of whitespace become one space, every match of the word pattern
   ``\\w+(?:['’]\\w+)*|[^\\w\\s]`` is surrounded by spaces, ``tf.strings.split`` cuts on the
   spaces. RE2 reads ``\\w``/``\\s`` as ASCII, so both classes are spelled out as code point
   ranges probed from the library's own pre-tokenizer (Oniguruma's Unicode classes and
   version: ``\\w`` = Alphabetic | Mark | Nd | Pc | Join_Control, not ``\\p{N}``);
4. ``StaticHashTable`` vocabulary lookup (unknown → ``<unk>`` = 1), cut to ``max_length``, an
   empty row becomes ``[<unk>]``, right padding with 0.

Known deviation: NFKC *composition* across characters (a base letter followed by a combining
mark, e.g. ``e`` + U+0301 → ``é``; Hangul jamo sequences) and canonical reordering of combining
marks are not done — core TF has no Unicode normalization op. Such text is rare (precomposed
characters are the norm); ``measure_agreement`` counts it and the export records the figure.
Invalid UTF-8 input (impossible from Python) is read with U+FFFD replacement characters.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from rnnkit.text.tokenizer import _WORD_PATTERN, SPECIAL_TOKENS, UNK_ID

CLASSIFY_SIGNATURE = "classify_text"
TOKENIZE_SIGNATURE = "tokenize_text"
TEXT_INPUT = "text"

# Special tokens written in the raw text become Unicode noncharacters (never found in
# interchange text); a genuine noncharacter of the block is first replaced by U+FDEF (→ <unk>).
_SENTINELS = [chr(0xFDD0 + i) for i in range(len(SPECIAL_TOKENS))]
_SENTINEL_CLASS = "[\ufdd0-\ufdef]"
_GENUINE_SENTINEL_STANDIN = "\ufdef"
_APOSTROPHES = ("'", "\u2019")

STRING_SIGNATURE_REASON = (
    "only a 'word' tokenizer can run in the TensorFlow graph with core ops (a '{kind}' "
    "tokenizer needs the `tokenizers` library): feed `serving_default` token_ids from "
    "assets/tokenizer.json"
)


def _code_points():
    return (c for c in range(0x110000) if not 0xD800 <= c < 0xE000)


@functools.lru_cache(maxsize=4)
def _normalizer_changes(normalizer_json: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from tokenizers import Tokenizer as HFTokenizer

    normalize = HFTokenizer.from_str(_shell(normalizer=normalizer_json)).normalizer.normalize_str
    keys, values = [], []
    for code in _code_points():
        char = chr(code)
        normalized = normalize(char)
        if normalized != char:
            keys.append(char)
            values.append(normalized)
    return tuple(keys), tuple(values)


@functools.lru_cache(maxsize=4)
def _character_classes(pre_tokenizer_json: str) -> tuple[str, str]:
    """RE2 class bodies of the word and the whitespace characters *as the tokenizer's own
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


def _shell(normalizer: str = "null", pre_tokenizer: str = "null") -> str:
    """A minimal tokenizer.json holding only the given normalizer / pre-tokenizer."""
    return (
        '{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], '
        f'"normalizer": {normalizer}, "pre_tokenizer": {pre_tokenizer}, '
        '"post_processor": null, "decoder": null, '
        '"model": {"type": "WordLevel", "vocab": {"<unk>": 0}, "unk_token": "<unk>"}}')


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
    """A `Tokenizer(kind="word")` + `encode_texts(..., max_length)` as TensorFlow ops.

    `tokenizer(texts)` with a string tensor `(B,)` returns `(token_ids int32 (B, T), lengths
    int32 (B,))`, `T = max(lengths)` (at least 1). Building it probes the tokenizer's
    normalizer and pre-tokenizer on every code point (~3 s, cached per process).
    """

    def __init__(self, tokenizer: Any, max_length: int, name: str | None = None):
        spec = _check_word_tokenizer(tokenizer)
        if int(max_length) < 1:
            raise ValueError(f"`max_length` must be >= 1. Received: max_length={max_length}")
        super().__init__(name=name)
        self.max_length = int(max_length)
        keys, values = _normalizer_changes(json.dumps(spec.get("normalizer")))
        self.normalizer_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.string),
                                                tf.constant(values, tf.string)),
            default_value="")
        word, space = _character_classes(json.dumps(spec.get("pre_tokenizer")))
        self._whitespace_run = f"[{space}]+"
        quotes = "".join(_APOSTROPHES)
        self._token = f"[{word}]+(?:[{quotes}][{word}]+)*|[^{word}{space}]"
        vocab = dict(tokenizer.backend.get_vocab(with_added_tokens=True))
        for token_id, sentinel in enumerate(_SENTINELS):
            vocab[sentinel] = token_id
        self.vocab_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(vocab), tf.string),
                tf.constant(list(vocab.values()), tf.int64)),
            default_value=UNK_ID)
        # Tables made eagerly leave `None` in the global graph's table_initializer collection,
        # and every later graph export (SavedModel, tf2onnx, TFLite) warns about it.
        collection = tf.compat.v1.get_collection_ref(tf.compat.v1.GraphKeys.TABLE_INITIALIZERS)
        collection[:] = [op for op in collection if op is not None]

    def normalize(self, texts: tf.Tensor) -> tf.Tensor:
        """Special tokens → noncharacters, then the normalizer one character at a time."""
        texts = tf.strings.regex_replace(texts, _SENTINEL_CLASS, _GENUINE_SENTINEL_STANDIN)
        for token, sentinel in zip(SPECIAL_TOKENS, _SENTINELS, strict=True):
            texts = tf.strings.regex_replace(texts, re.escape(token), f" {sentinel} ")
        chars = tf.strings.unicode_split(texts, "UTF-8", errors="replace")
        flat = chars.flat_values
        mapped = self.normalizer_table.lookup(flat)
        flat = tf.where(tf.equal(mapped, ""), flat, mapped)
        return tf.strings.reduce_join(chars.with_flat_values(flat), axis=-1)

    def tokens(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Token strings `(B, None)` (before the vocabulary and the `max_length` cut)."""
        texts = self.normalize(tf.convert_to_tensor(texts, tf.string))
        texts = tf.strings.regex_replace(texts, self._whitespace_run, " ")
        texts = tf.strings.regex_replace(texts, self._token, r" \0 ")
        return tf.strings.split(texts)

    def __call__(self, texts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        ids = tf.ragged.map_flat_values(self.vocab_table.lookup, self.tokens(texts))
        ids = tf.cast(ids[:, : self.max_length], tf.int32)
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        width = tf.maximum(tf.reduce_max(tf.concat([lengths, [0]], 0)), 1)
        batch = tf.shape(lengths)[0]
        dense = ids.to_tensor(default_value=0, shape=tf.stack([batch, width]))
        # A text with no token is fed as [<unk>] (the runtime's rule: every row has length >= 1).
        first = tf.logical_and(tf.equal(lengths, 0)[:, None], tf.equal(tf.range(width), 0)[None])
        dense = tf.where(first, tf.constant(UNK_ID, tf.int32), dense)
        return dense, tf.maximum(lengths, 1)


class TextClassifier(tf.Module):
    """The Keras model behind an in-graph word tokenizer: the `classify_text` and
    `tokenize_text` signatures (`signatures()` gives them for `export_model`)."""

    def __init__(self, model: Any, tokenizer: Any, labels: Sequence[str], max_length: int):
        super().__init__(name="text_classifier")
        self.model = model
        self.tokenizer = InGraphWordTokenizer(tokenizer, max_length)
        self.labels = tf.constant([str(label) for label in labels], tf.string)
        spec = tf.TensorSpec([None], tf.string, name=TEXT_INPUT)
        self.classify_text = tf.function(self._classify, input_signature=[spec],
                                         autograph=False)
        self.tokenize_text = tf.function(self._tokenize, input_signature=[spec],
                                         autograph=False)

    def _tokenize(self, text):
        token_ids, lengths = self.tokenizer(text)
        return {"token_ids": tf.identity(token_ids, name="token_ids"),
                "lengths": tf.identity(lengths, name="lengths")}

    def _classify(self, text):
        token_ids, _ = self.tokenizer(text)
        outputs = self.model(token_ids, training=False)
        probabilities = outputs["probabilities"] if isinstance(outputs, dict) else outputs
        label_index = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {"probabilities": tf.identity(probabilities, name="probabilities"),
                "label_index": tf.identity(label_index, name="label_index"),
                "label": tf.gather(self.labels, label_index, name="label")}

    def signatures(self) -> dict[str, Any]:
        return {CLASSIFY_SIGNATURE: self.classify_text, TOKENIZE_SIGNATURE: self.tokenize_text}


def signature_manifest(num_labels: int, max_length: int) -> dict[str, Any]:
    """Manifest entry describing the string signatures of `saved_model/model`."""
    text = {"name": TEXT_INPUT, "dtype": "string", "shape": [None]}
    return {
        CLASSIFY_SIGNATURE: {
            "inputs": [text],
            "outputs": [
                {"name": "probabilities", "dtype": "float32", "shape": [None, num_labels]},
                {"name": "label_index", "dtype": "int64", "shape": [None]},
                {"name": "label", "dtype": "string", "shape": [None]},
            ],
        },
        TOKENIZE_SIGNATURE: {
            "inputs": [text],
            "outputs": [
                {"name": "token_ids", "dtype": "int32", "shape": [None, None]},
                {"name": "lengths", "dtype": "int32", "shape": [None]},
            ],
        },
        "tokenization": (
            "in the graph with core TF ops: literal special tokens → reserved ids, the "
            "tokenizer's normalizer (NFKC + lowercase) per character through a lookup table, "
            "whitespace split + the word/punctuation regex (character classes probed from the "
            "tokenizers library), vocabulary StaticHashTable (unknown → 1), cut to "
            f"max_length={max_length}, empty text → [<unk>], right padding with 0"),
        "deviation": (
            "normalization is done character by character: no NFKC composition of a base "
            "letter with a following combining mark and no reordering of marks (core TF has "
            "no Unicode normalization op); `agreement` gives the measured effect"),
    }


def measure_agreement(tokenizer: Any, texts: Sequence[str], max_length: int,
                      token_ids_fn=None, batch_size: int = 512) -> dict[str, Any]:
    """Share of `texts` whose in-graph token ids equal `encode_texts(tokenizer, ...)`.

    `token_ids_fn(text_batch) -> token_ids (B, T)` defaults to a fresh `InGraphWordTokenizer`
    (pass a loaded SavedModel's `tokenize_text` to check the exported graph). Also counts the
    texts whose normalization differs when done character by character (the known deviation:
    NFKC composition), whether or not that changes their ids.
    """
    from apps.sentiment.runtime import encode_texts

    texts = [str(t) for t in texts]
    if token_ids_fn is None:
        in_graph = InGraphWordTokenizer(tokenizer, max_length)

        def token_ids_fn(batch):
            return in_graph(tf.constant(batch))[0]

    expected = encode_texts(tokenizer, texts, max_length)
    mismatched = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        ids = np.asarray(token_ids_fn(batch))
        for offset, row in enumerate(ids):
            index = start + offset
            want = expected[index]
            if row[: len(want)].tolist() != want or np.any(row[len(want):] != 0):
                mismatched.append(index)
    normalize = tokenizer.backend.normalizer.normalize_str
    composed = sum(normalize(t) != "".join(normalize(c) for c in t) for t in texts)
    return {
        "examples": len(texts),
        "token_ids_equal": (len(texts) - len(mismatched)) / max(len(texts), 1),
        "mismatched": len(mismatched),
        "mismatched_examples": [texts[i] for i in mismatched[:5]],
        "texts_normalized_differently": int(composed),
    }
