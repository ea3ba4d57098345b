"""String-in / string-out serving signatures of the translation export (TF Serving).

With BPE tokenizers on both sides (the default), the encoder's SavedModel
(``saved_model/encoder``) gets two signatures beside ``serving_default`` (which takes
``source_ids``); it then also holds the decoder_step weights:

* ``translate_text``: ``text`` string ``(B,)`` → ``translation`` string ``(B,)``,
  ``token_ids`` int32 ``(B, T)`` and ``lengths`` int32 ``(B,)`` (the generated target ids,
  right-padded with 0, without ``<s>``/``</s>``), ``truncated`` bool ``(B,)`` (the source was
  cut to ``max_source_length``);
* ``tokenize_text``: ``text`` → ``token_ids`` int32 ``(B, T)``, ``lengths`` int32 ``(B,)``,
  ``truncated`` bool ``(B,)``: exactly the source ids ``translate_text`` feeds the encoder.

Everything runs in the graph with core TF ops: the source tokenizer
(``rnnkit.export.text_graph.InGraphBPETokenizer``), the ``Translator``'s source rule (empty
text → ``[<unk>]``; longer than ``max_source_length`` → cut with ``long_input="truncate"``, the
request fails with ``long_input="error"``), the encoder, greedy decoding over the decoder step
(``rnnkit.export.graph_search.greedy_search``, a ``tf.while_loop`` of at most
``max_target_length - 1`` steps that stops once every row has emitted ``</s>``), and
``Tokenizer.decode`` of the target ids (``InGraphBPEDecoder``). Beam search stays host-side
(``apps.translation.translator`` over ONNX / TFLite).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from rnnkit.export.graph_search import greedy_search
from rnnkit.export.onnx_graph import no_cudnn
from rnnkit.export.text_graph import (
    NORMALIZATION_NOTE,
    TEXT_INPUT,
    InGraphBPEDecoder,
    InGraphBPETokenizer,
    compare_token_ids,
    count_normalized_differently,
    pad_id_rows,
)
from rnnkit.text.tokenizer import END_ID, START_ID

GRAPH = "encoder"
TRANSLATE_SIGNATURE = "translate_text"
TOKENIZE_SIGNATURE = "tokenize_text"
STRING_SIGNATURE_REASON = (
    "the in-graph tokenizers cover 'bpe' source and target tokenizers only. Received: "
    "source={source!r}, target={target!r}: translate with the host-side Translator "
    "(apps.translation.translator) over the ONNX / TFLite graphs")


def supports_text_signatures(source_tokenizer: Any, target_tokenizer: Any) -> bool:
    return source_tokenizer.kind == "bpe" and target_tokenizer.kind == "bpe"


class TextTranslator:
    """The encoder + decoder-step Keras models behind an in-graph tokenizer and greedy search:
    the `translate_text` and `tokenize_text` signatures.

    `signatures()` gives them as concrete functions for `export_model`, traced once here with
    cuDNN off (so that the SavedModel also serves on CPU). `resources` (a `tf.Module` holding
    the models and the lookup tables they capture) must be tracked by the saved object: the
    functions are deliberately not attributes of a tracked module, which would make
    `tf.saved_model.save` trace and store them a second time.
    """

    def __init__(self, encoder: Any, step_model: Any, source_tokenizer: Any,
                 target_tokenizer: Any, max_source_length: int, max_target_length: int,
                 long_input: str = "truncate"):
        if long_input not in ("truncate", "error"):
            raise ValueError("`long_input` must be one of 'truncate', 'error'. "
                             f"Received: long_input={long_input!r}")
        if int(max_target_length) < 2:
            raise ValueError("`max_target_length` must be >= 2 (it counts <s>). "
                             f"Received: max_target_length={max_target_length}")
        self.resources = tf.Module(name="text_translator")
        self.resources.encoder = self.encoder = encoder
        self.resources.step_model = self.step_model = step_model
        self.resources.source = self.source = InGraphBPETokenizer(source_tokenizer,
                                                                  int(max_source_length))
        self.resources.target = self.target = InGraphBPEDecoder(target_tokenizer)
        self.max_source_length = int(max_source_length)
        self.max_steps = int(max_target_length) - 1  # the target length counts <s>
        self.long_input = long_input
        spec = tf.TensorSpec([None], tf.string, name=TEXT_INPUT)
        self.translate_text = tf.function(self._translate, input_signature=[spec],
                                          autograph=False)
        self.tokenize_text = tf.function(self._tokenize, input_signature=[spec],
                                         autograph=False)
        with no_cudnn(encoder), no_cudnn(step_model):
            self._concrete = {TRANSLATE_SIGNATURE: self.translate_text.get_concrete_function(),
                              TOKENIZE_SIGNATURE: self.tokenize_text.get_concrete_function()}

    def _source_ids(self, text):
        ids = self.source.encode(text)
        token_ids, lengths, truncated = pad_id_rows(ids, self.max_source_length)
        if self.long_input == "error":
            check = tf.debugging.Assert(
                tf.logical_not(tf.reduce_any(truncated)),
                [f"a text has more source tokens than max_source_length="
                 f"{self.max_source_length} (long_input='error'); token counts:",
                 ids.row_lengths()])
            with tf.control_dependencies([check]):
                token_ids = tf.identity(token_ids)
        return token_ids, lengths, truncated

    def _tokenize(self, text):
        token_ids, lengths, truncated = self._source_ids(text)
        return {"token_ids": tf.identity(token_ids, name="token_ids"),
                "lengths": tf.identity(lengths, name="lengths"),
                "truncated": tf.identity(truncated, name="truncated")}

    def _translate(self, text):
        # Through the `tokenize_text` function itself: the SavedModel stores its graph once,
        # and translate_text feeds exactly what tokenize_text returns.
        source = self.tokenize_text(text)
        source_ids, truncated = source["token_ids"], source["truncated"]
        mask = tf.not_equal(source_ids, 0)
        encoder_outputs, *states = self.encoder(source_ids, training=False)
        encoder_outputs = tf.identity(encoder_outputs)  # drop the Keras mask: `mask` is passed

        def step(tokens, states):
            logits, *rest = self.step_model(
                [tokens[:, None], *states, encoder_outputs, mask], training=False)
            return logits, rest[:-1]  # the last output is the attention

        token_ids, lengths = greedy_search(step, states, START_ID, END_ID, self.max_steps)
        return {"translation": tf.identity(self.target(token_ids, lengths), name="translation"),
                "token_ids": tf.identity(token_ids, name="token_ids"),
                "lengths": tf.identity(lengths, name="lengths"),
                "truncated": tf.identity(truncated, name="truncated")}

    def signatures(self) -> dict[str, Any]:
        return dict(self._concrete)


def signature_manifest(max_source_length: int, max_target_length: int,
                       long_input: str) -> dict[str, Any]:
    """Manifest entry describing the string signatures of `saved_model/encoder`."""
    text = {"name": TEXT_INPUT, "dtype": "string", "shape": [None]}
    ids = [{"name": "token_ids", "dtype": "int32", "shape": [None, None]},
           {"name": "lengths", "dtype": "int32", "shape": [None]},
           {"name": "truncated", "dtype": "bool", "shape": [None]}]
    rule = ("cut to max_source_length" if long_input == "truncate"
            else "the request fails (InvalidArgument)")
    return {
        TRANSLATE_SIGNATURE: {
            "inputs": [text],
            "outputs": [{"name": "translation", "dtype": "string", "shape": [None]}, *ids],
            "notes": ("greedy decoding in the graph (tf.while_loop, at most "
                      f"{max_target_length - 1} steps, stops when every row has emitted </s>); "
                      "token_ids/lengths: the generated target ids without <s>/</s>, right-"
                      "padded with 0; truncated: the source was cut. Beam search: host-side "
                      "Translator over the ONNX/TFLite graphs. Unknown source words and unseen "
                      "names are not copied here (the raw model output, as Translator."
                      "translate): `rnnkit translation predict` and `rnnkit serve` copy them "
                      "on the host (apps.translation.translator.copy_unknown_words)"),
        },
        TOKENIZE_SIGNATURE: {
            "inputs": [text],
            "outputs": ids,
            "notes": "the source ids translate_text feeds the encoder (encoder_mask = ids != 0)",
        },
        "tokenization": (
            "in the graph with core TF ops: literal special tokens → reserved ids, the "
            "tokenizer's normalizer (NFKC [+ lowercase]) per character through a lookup table, "
            "Metaspace ('▁', prepended per segment, split before every '▁'), BPE merges in "
            "rank order (lowest rank first, leftmost on ties) in a tf.while_loop, characters "
            "outside the vocabulary → <unk> (1) each; empty text → [<unk>]; longer than "
            f"max_source_length={max_source_length}: {rule}; right padding with 0. "
            "Detokenization: ids → pieces (<pad>/<s> skipped, stop at </s>, <unk> shown), "
            "joined, '▁' → space, the first piece's '▁' dropped (Tokenizer.decode)"),
        "deviation": NORMALIZATION_NOTE,
    }


def measure_agreement(translate_fn, tokenize_fn, translator: Any, texts: Sequence[str],
                      batch_size: int = 64) -> dict[str, Any]:
    """`translate_text` / `tokenize_text` (functions `batch of str -> dict of numpy`) vs the
    Python `translator` (Keras greedy) on `texts`: shares of identical source ids, target ids
    and translations, and of identical `truncated` flags."""
    texts = [str(t) for t in texts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # long inputs: compared through `truncated`
        rows, truncated = translator.encode_sources(texts)
        expected = translator.translate(texts, "greedy")
    tokens = compare_token_ids(texts, rows, lambda batch: tokenize_fn(batch)["token_ids"],
                               batch_size)
    started = time.perf_counter()
    outputs = [translate_fn(texts[start:start + batch_size])
               for start in range(0, len(texts), batch_size)]
    seconds = time.perf_counter() - started
    translations = [t.decode("utf-8") for out in outputs for t in out["translation"]]
    ids = [row[:length].tolist() for out in outputs
           for row, length in zip(out["token_ids"], out["lengths"], strict=True)]
    flags = [bool(f) for out in outputs for f in out["truncated"]]
    same_text = [a == b["translation"] for a, b in zip(translations, expected, strict=True)]
    same_ids = [a == b["ids"] for a, b in zip(ids, expected, strict=True)]
    count = max(len(texts), 1)
    return {
        "examples": len(texts),
        "source_ids_equal": tokens["token_ids_equal"],
        "translation_equal_to_keras_greedy": sum(same_text) / count,
        "target_ids_equal_to_keras_greedy": sum(same_ids) / count,
        "truncated_equal": sum(a == b for a, b in zip(flags, truncated, strict=True)) / count,
        "mismatched_examples": [texts[i] for i in range(len(texts))
                                if not (same_text[i] and same_ids[i])][:5],
        "texts_normalized_differently": count_normalized_differently(
            translator.source_tokenizer, texts),
        "translate_text_seconds": round(seconds, 2),
    }


def saved_model_functions(saved_model_dir) -> tuple[Any, Any]:
    """`translate_text` / `tokenize_text` of an exported SavedModel as `batch -> numpy dict`."""
    loaded = tf.saved_model.load(str(saved_model_dir))
    translate = loaded.signatures[TRANSLATE_SIGNATURE]
    tokenize = loaded.signatures[TOKENIZE_SIGNATURE]

    def run(signature):
        def call(batch):
            out = signature(text=tf.constant(list(batch), tf.string))
            return {name: np.asarray(value) for name, value in out.items()}

        return call

    call_translate, call_tokenize = run(translate), run(tokenize)
    call_translate.loaded = call_tokenize.loaded = loaded  # keep the tables alive
    return call_translate, call_tokenize
