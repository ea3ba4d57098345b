"""rnnkit.text.Tokenizer: reserved ids, padding, save/load, plain-library compatibility."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tokenizers

from rnnkit.text import END_ID, PAD_ID, START_ID, UNK_ID, Tokenizer

CORPUS = [
    "The cat sat on the mat.",
    "A dog sat on the log!",
    "The lowest, the newest and the widest.",
    "Don't stop (really) now?",
    "lower newer wider lowest newest widest",
]


@pytest.fixture(scope="module")
def word():
    return Tokenizer.train(CORPUS, kind="word")


@pytest.fixture(scope="module")
def char():
    return Tokenizer.train([*CORPUS, "two\nlines"], kind="char", lowercase=False)


@pytest.fixture(scope="module")
def bpe():
    return Tokenizer.train(CORPUS * 3, kind="bpe", vocab_size=80)


@pytest.mark.parametrize("kind", ["word", "char", "bpe"])
def test_reserved_ids(kind):
    tok = Tokenizer.train(CORPUS, kind=kind, vocab_size=60 if kind == "bpe" else None)
    assert [tok.id_to_token(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert (tok.pad_id, tok.unk_id, tok.start_id, tok.end_id) == (0, 1, 2, 3)
    assert (PAD_ID, UNK_ID, START_ID, END_ID) == (0, 1, 2, 3)
    assert tok.token_to_id("</s>") == 3


def test_word_tokens_lowercase_and_unknown(word):
    assert word.tokens("The CAT sat.") == ["the", "cat", "sat", "."]
    assert word.tokens("Don't stop!") == ["don't", "stop", "!"]
    ids = word.encode("the zebra sat")
    assert ids[1] == UNK_ID
    assert ids[0] == word.token_to_id("the") and ids[2] == word.token_to_id("sat")
    assert word.vocab_size == len(word.backend.get_vocab())


def test_word_decode_joins_sensibly(word):
    ids = word.encode("The cat sat on the mat, (really) now?")
    assert word.decode(ids) == "the cat sat on the mat, (really) now?"
    assert word.decode(word.encode("the zebra")) == "the <unk>"
    assert word.decode(word.encode("the zebra"), skip_unk=True) == "the"


def test_decode_stops_at_end_and_skips_specials(word):
    cat, sat = word.token_to_id("cat"), word.token_to_id("sat")
    assert word.decode([START_ID, cat, sat, END_ID, cat, PAD_ID]) == "cat sat"
    assert word.decode(np.array([cat, PAD_ID, PAD_ID], dtype=np.int32)) == "cat"
    assert word.decode_batch([[START_ID, cat, END_ID], [sat]]) == ["cat", "sat"]


def test_encode_batch_pads_right_with_zero(word):
    batch = word.encode_batch(["the cat", "a dog sat on the log", ""])
    assert batch.dtype == np.int32
    assert batch.shape == (3, 6)
    assert batch[0, 2:].tolist() == [0, 0, 0, 0]
    assert batch[2].tolist() == [0] * 6
    assert batch[1].tolist() == word.encode("a dog sat on the log")


def test_encode_batch_start_end_and_truncation(word):
    full = word.encode("a dog sat on the log")
    batch = word.encode_batch(["a dog sat on the log", "cat"], max_length=5, add_start_end=True)
    assert batch.shape == (2, 5)
    assert batch[0].tolist() == [START_ID, *full[:3], END_ID]
    assert batch[1].tolist() == [START_ID, word.token_to_id("cat"), END_ID, 0, 0]
    cut = word.encode_batch(["a dog sat on the log"], max_length=2)
    assert cut.tolist() == [full[:2]]
    fixed = word.encode_batch(["cat"], max_length=4, pad_to_max_length=True)
    assert fixed.tolist() == [[word.token_to_id("cat"), 0, 0, 0]]
    assert word.encode("cat", add_start_end=True) == [START_ID, word.token_to_id("cat"), END_ID]


def test_char_round_trip_keeps_spaces(char):
    text = "The dog sat  on the mat!\n\nA cat."
    assert char.tokens("a c\n") == ["a", " ", "c", "\n"]
    assert char.decode(char.encode(text)) == text
    assert "<unk>" in char.decode(char.encode("Z"))  # 'Z' never seen (case kept)


def test_bpe_covers_unseen_words_with_subwords(bpe):
    tokens = bpe.tokens("slowest newer")
    assert UNK_ID not in bpe.encode("slowest newer")
    assert len(tokens) > 2  # split into sub-words
    assert bpe.decode(bpe.encode("the slowest newer")) == "the slowest newer"
    assert bpe.vocab_size <= 80


@pytest.mark.parametrize("kind", ["word", "char", "bpe"])
def test_save_load_round_trip(tmp_path, kind):
    tok = Tokenizer.train(CORPUS, kind=kind, lowercase=kind != "char", vocab_size=None)
    path = tok.save(tmp_path)
    assert path == tmp_path / "tokenizer.json"
    loaded = Tokenizer.load(tmp_path)
    assert (loaded.kind, loaded.lowercase) == (tok.kind, tok.lowercase)
    texts = ["The cat sat on the zebra.", "Lowest widest, really?"]
    np.testing.assert_array_equal(
        loaded.encode_batch(texts, add_start_end=True), tok.encode_batch(texts, add_start_end=True)
    )
    # Any file name works (two tokenizers in one assets/ directory).
    other = tok.save(tmp_path / "target_tokenizer.json")
    assert Tokenizer.load(other).encode(texts[0]) == tok.encode(texts[0])


def test_plain_tokenizers_library_gives_the_same_ids(tmp_path, word):
    path = word.save(tmp_path / "tokenizer.json")
    plain = tokenizers.Tokenizer.from_file(str(path))
    text = "The dog sat on the zebra (really)!"
    assert plain.encode(text).ids == word.encode(text)
    assert json.loads(path.read_text())["model"]["type"] == "WordLevel"


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="`texts`"):
        Tokenizer.train([], kind="word")
    with pytest.raises(ValueError, match="`texts`"):
        Tokenizer.train(["", ""], kind="word")
    with pytest.raises(ValueError, match="`kind`.*Received: kind='pieces'"):
        Tokenizer.train(CORPUS, kind="pieces")
    with pytest.raises(ValueError, match="vocab_size"):
        Tokenizer.train(CORPUS, kind="bpe", vocab_size=3)
    with pytest.raises(FileNotFoundError):
        Tokenizer.load(tmp_path / "missing")


def test_tf_free_modules_do_not_import_tensorflow():
    code = (
        "import sys, rnnkit.text, rnnkit.decoding, rnnkit.metrics\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bpe_split_digits_isolates_every_digit_and_round_trips(tmp_path):
    corpus = ["SEK649.92 and 205.00 kroner", "the 21st of March 2024", "1,234.56 dollars"] * 5
    plain = Tokenizer.train(corpus, kind="bpe", vocab_size=120)
    split = Tokenizer.train(corpus, kind="bpe", vocab_size=120, split_digits=True)
    text = "SEK649.92 and 2024"
    pieces = split.tokens(text)
    assert [p for p in pieces if any(c.isdigit() for c in p)] == list("649") + list("92") + list("2024")
    assert any(len(p.strip("▁")) > 1 and p.strip("▁").isdigit() for p in plain.tokens("2024 2024"))
    assert split.decode(split.encode(text)) == text.lower()  # lowercase=True by default
    split.save(tmp_path / "t.json")
    again = Tokenizer.load(tmp_path / "t.json")
    assert again.kind == "bpe" and again.encode(text) == split.encode(text)
    with pytest.raises(ValueError, match="split_digits"):
        Tokenizer.train(corpus, kind="word", split_digits=True)
