"""In-graph tokenizers and graph greedy search == their Python counterparts (rnnkit.text,
rnnkit.decoding)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import tensorflow as tf

from rnnkit.decoding import greedy_search as numpy_greedy_search
from rnnkit.export.graph_search import greedy_search
from rnnkit.export.text_graph import (
    InGraphBPEDecoder,
    InGraphBPETokenizer,
    count_normalized_differently,
    pad_id_rows,
)
from rnnkit.text import Tokenizer

CORPUS = [
    "The twenty-first of March 2024, at 10:45 p.m.",
    "three hundred and forty-two thousand kilograms",
    "Germany and France, Italy or Spain; the Netherlands!",
    "zweihundertvierunddreißig Tage und drei Nächte in Köln",
    "Straße café naïve façade ÆSIR œuvre",
    "hello there  general kenobi (a quote) \"quoted\" 'single'",
    "aaa aaaa aaaaa abab ababab banana bandana",
    "1,234.56 $ 78 % 9/11 #42 @home e-mail",
]

TRICKY_TEXTS = [
    "", " ", "   ", "\t", "\n", " \t\n ", "a", " a", "a ", "  leading and trailing  ",
    "repeated   spaces  here", "tabs\tinside\tand\nnew\nlines", "ends with tab\t", "\ta",
    "The twenty-first of March 2024", "THE TWENTY-FIRST OF MARCH", "unseenword blorptastic",
    "digits 0123456789 31415926535", "punctuation!?.,;:()[]{}<>/\\|~^&*+=_-", "naïve Café",
    "unseen characters: ẞ 😀 中文 ğ ∑ ж", "literal <unk> token", "<unk>", "x<unk>y",
    "a <unk> b", "<unk><unk>", "<s> and </s> and <pad>", "<S> <UNK> </S", "<<unk>>",
    "▁ metaspace ▁▁ chars▁inside", "non\u00a0breaking\u2002spaces", "ﬁ ligature ＦＵＬＬ width ①",
    "\ufdd0 a noncharacter \ufdef", "İstanbul ΟΔΟΣ σ", "banana bandana ababab aaaaaaa",
]


def _tokenizers():
    """Keyed by `lowercase`, plus "digits": lowercase with `split_digits=True`."""
    made = {lowercase: Tokenizer.train(CORPUS * 2, kind="bpe", vocab_size=260,
                                       lowercase=lowercase)
            for lowercase in (True, False)}
    made["digits"] = Tokenizer.train(CORPUS * 2, kind="bpe", vocab_size=260, split_digits=True)
    return made


@pytest.fixture(scope="module")
def tokenizers():
    return _tokenizers()


def _random_texts(count: int, seed: int) -> list[str]:
    """Random strings over the corpus alphabet (+ unseen and whitespace characters) and
    scrambled corpus words: many different merge sequences."""
    rng = random.Random(seed)
    alphabet = sorted(set("".join(CORPUS))) + list("ẞ😀\t\n  ")
    words = " ".join(CORPUS).split()
    texts = []
    for index in range(count):
        if index % 2:
            texts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25))))
        else:
            picked = rng.sample(words, 3)
            texts.append(" ".join("".join(rng.sample(w, len(w))) if rng.random() < 0.5 else w
                                  for w in picked))
    return texts


@pytest.mark.parametrize("lowercase", [True, False, "digits"])
def test_in_graph_bpe_ids_equal_the_python_tokenizer(tokenizers, lowercase):
    tokenizer = tokenizers[lowercase]
    in_graph = InGraphBPETokenizer(tokenizer, max_length=12)
    texts = TRICKY_TEXTS + [t.upper() for t in TRICKY_TEXTS] + CORPUS
    got = in_graph.encode(tf.constant(texts)).to_list()
    for text, ids in zip(texts, got, strict=True):
        assert ids == tokenizer.encode(text), repr(text)
    by_text = dict(zip(texts, got, strict=True))
    assert by_text[""] == [] and by_text["<unk>"] == [1] and 1 in by_text["x<unk>y"]
    assert by_text["<s> and </s> and <pad>"][:1] == [2]
    # The merges really run: a corpus word is fewer tokens than characters.
    assert len(by_text[CORPUS[1]]) < len(CORPUS[1]) // 2
    # With split_digits every digit is one token; without, the corpus's numbers merge.
    pieces = [tokenizer.id_to_token(i) for i in by_text["digits 0123456789 31415926535"]]
    digit_pieces = [p for p in pieces if any(c.isdigit() for c in p)]
    if lowercase == "digits":
        assert digit_pieces == list("0123456789") + list("31415926535")
    else:
        assert any(len(p.strip("▁")) > 1 for p in digit_pieces)

    # Feeding rule: cut to max_length, empty → [<unk>], right padding with 0.
    long = " ".join(CORPUS)
    token_ids, lengths = in_graph(tf.constant(["", long, "a"]))
    expected = [[1], tokenizer.encode(long)[:12], tokenizer.encode("a")]
    assert lengths.numpy().tolist() == [len(row) for row in expected]
    assert token_ids.dtype == tf.int32 and token_ids.shape == (3, 12)
    for row, want in zip(token_ids.numpy().tolist(), expected, strict=True):
        assert row == want + [0] * (12 - len(want))


def test_in_graph_bpe_merges_equal_the_library_on_random_words(tokenizers):
    texts = _random_texts(3000, seed=11)
    for tokenizer in tokenizers.values():
        got = InGraphBPETokenizer(tokenizer).encode(tf.constant(texts)).to_list()
        wrong = [t for t, ids in zip(texts, got, strict=True) if ids != tokenizer.encode(t)]
        assert not wrong, wrong[:5]


def test_in_graph_bpe_decoder_equals_tokenizer_decode(tokenizers):
    rng = random.Random(5)
    for tokenizer in tokenizers.values():
        decoder = InGraphBPEDecoder(tokenizer)
        rows = [tokenizer.encode(t) for t in TRICKY_TEXTS + CORPUS]
        # Random rows with every special id (</s> stops, <pad>/<s> skipped, <unk> shown).
        rows += [[rng.randrange(tokenizer.vocab_size) for _ in range(rng.randint(0, 10))]
                 for _ in range(500)]
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), np.int32)
        for index, row in enumerate(rows):
            ids[index, : len(row)] = row
        # Past `lengths`, ids are ignored (here: garbage instead of padding).
        ids[:, -1:] = np.where(np.array([len(r) for r in rows])[:, None] < width, 7, ids[:, -1:])
        texts = decoder(tf.constant(ids), tf.constant([len(r) for r in rows])).numpy()
        for row, text in zip(rows, texts, strict=True):
            assert text.decode("utf-8") == tokenizer.decode(row), row
        assert decoder(tf.zeros([0, 3], tf.int32), tf.zeros([0], tf.int32)).shape == (0,)


def test_pad_id_rows_rule_and_empty_batch():
    ragged = tf.ragged.constant([[5, 6, 7, 8], [], [9]], dtype=tf.int64)
    token_ids, lengths, truncated = pad_id_rows(ragged, 3)
    assert token_ids.numpy().tolist() == [[5, 6, 7], [1, 0, 0], [9, 0, 0]]
    assert lengths.numpy().tolist() == [3, 1, 1]
    assert truncated.numpy().tolist() == [True, False, False]
    empty = InGraphBPETokenizer(_tokenizers()[True], 4)(tf.constant([], tf.string))
    assert empty[0].shape == (0, 1) and empty[1].shape == (0,)


def test_refuses_other_tokenizer_kinds_and_counts_the_known_deviation(tokenizers):
    words = Tokenizer.train(["a b c"], kind="word")
    with pytest.raises(ValueError, match="must be an rnnkit 'bpe' tokenizer"):
        InGraphBPETokenizer(words)
    with pytest.raises(ValueError, match="must be an rnnkit 'bpe' tokenizer"):
        InGraphBPEDecoder(words)
    # NFKC composition across characters is not done in the graph (documented deviation).
    tokenizer = tokenizers[True]
    texts = ["cafe\u0301", "café"]
    assert count_normalized_differently(tokenizer, texts) == 1
    got = InGraphBPETokenizer(tokenizer).encode(tf.constant(texts)).to_list()
    assert got[1] == tokenizer.encode("café") and got[0] != tokenizer.encode("cafe\u0301")


# ------------------------------------------------------------------------- greedy search
def _scripted_logits(vocab: int = 6) -> np.ndarray:
    """logits[row, step]: row 0 ends at step 2, row 1 at step 0, row 2 never (ties included:
    the first maximum wins), row 3 emits pad (0) before ending."""
    table = np.zeros((4, 8, vocab), np.float32)
    table[0, :, 4] = 1.0
    table[0, 2, 3] = 2.0
    table[1, :, 3] = 1.0
    table[2, :, 5] = 1.0
    table[2, ::2, 4] = 1.0  # tie between 4 and 5 on even steps → 4
    table[3, 0, 0] = 1.0
    table[3, 1:, 3] = 1.0
    return table


@pytest.mark.parametrize("max_length", [1, 3, 8])
def test_graph_greedy_search_equals_numpy_greedy_search(max_length):
    table = _scripted_logits()

    def numpy_step(tokens, states):
        step = int(states[0][0, 0])
        return table[:, step], [states[0] + 1]

    expected = numpy_greedy_search(numpy_step, [np.zeros((4, 1), np.float32)], 2, 3, max_length)

    @tf.function(autograph=False)
    def run():
        constant = tf.constant(table)

        def step(tokens, states):
            index = tf.cast(states[0][0, 0], tf.int32)
            return tf.gather(constant, index, axis=1), [states[0] + 1]

        return greedy_search(step, [tf.zeros([4, 1])], 2, 3, max_length)

    token_ids, lengths = run()
    assert lengths.numpy().tolist() == [len(row) for row in expected]
    width = max(len(row) for row in expected)
    assert token_ids.shape == (4, width)
    for row, want in zip(token_ids.numpy().tolist(), expected, strict=True):
        assert row == want + [0] * (width - len(want))


def test_graph_greedy_search_empty_batch_and_bad_arguments():
    def step(tokens, states):
        return tf.zeros([tf.shape(tokens)[0], 5]), states

    token_ids, lengths = greedy_search(step, [tf.zeros([0, 2])], 2, 3, 4)
    assert token_ids.shape == (0, 0) and lengths.shape == (0,)
    with pytest.raises(ValueError, match="max_length"):
        greedy_search(step, [tf.zeros([1, 2])], 2, 3, 0)
    with pytest.raises(ValueError, match="initial_states"):
        greedy_search(step, [], 2, 3, 4)
