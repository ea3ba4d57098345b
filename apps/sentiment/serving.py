"""String-in serving signatures for the sentiment SavedModel (TF Serving), tokenizer in the graph.

The SavedModel of a word-tokenizer export gets two signatures beside ``serving_default``
(which takes ``token_ids``):

* ``classify_text``: ``text`` string ``(B,)`` → ``probabilities`` float32 ``(B, num_labels)``,
  ``label_index`` int64 ``(B,)``, ``label`` string ``(B,)``;
* ``tokenize_text``: ``text`` string ``(B,)`` → ``token_ids`` int32 ``(B, T)`` (right-padded
  with 0, ``T`` = longest row of the batch) and ``lengths`` int32 ``(B,)``: exactly what
  ``classify_text`` feeds the model (for debugging a client).

``InGraphWordTokenizer`` (``rnnkit.export.text_graph``) reproduces
``rnnkit.text.Tokenizer(kind="word")`` + the runtime's ``encode_texts`` with core TensorFlow ops
only (no TF Text): literal special tokens → reserved ids, the normalizer per character through
a lookup table probed from the ``tokenizers`` library, the word pre-tokenizer as RE2 regexes
with character classes probed from the library, vocabulary lookup, cut to ``max_length``, an
empty row → ``[<unk>]``. Known deviation (documented there): no NFKC composition across
characters; ``measure_agreement`` counts it and the export records the figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from rnnkit.export.text_graph import (
    NORMALIZATION_NOTE,
    TEXT_INPUT,
    InGraphWordTokenizer,
    compare_token_ids,
    count_normalized_differently,
)

__all__ = [
    "CLASSIFY_SIGNATURE",
    "TOKENIZE_SIGNATURE",
    "TEXT_INPUT",
    "InGraphWordTokenizer",
    "TextClassifier",
    "measure_agreement",
    "signature_manifest",
]

CLASSIFY_SIGNATURE = "classify_text"
TOKENIZE_SIGNATURE = "tokenize_text"

STRING_SIGNATURE_REASON = (
    "only a 'word' tokenizer can run in the TensorFlow graph with core ops (a '{kind}' "
    "tokenizer needs the `tokenizers` library): feed `serving_default` token_ids from "
    "assets/tokenizer.json"
)


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
        "deviation": NORMALIZATION_NOTE,
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

    result = compare_token_ids(texts, encode_texts(tokenizer, texts, max_length),
                               token_ids_fn, batch_size)
    result["texts_normalized_differently"] = count_normalized_differently(tokenizer, texts)
    return result
