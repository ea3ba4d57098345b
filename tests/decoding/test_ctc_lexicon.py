"""Closed-vocabulary CTC decoding: scripted posteriors with exact expected words, the lexicon
beam search against an exhaustive search over word sequences scored by the CTC forward
algorithm (random posteriors, many seeds), the word n-gram LM, and the errors."""

import itertools
import math

import numpy as np
import pytest

from rnnkit.decoding import Lexicon, NgramLM, ctc_greedy_decode, ctc_lexicon_beam_search
from rnnkit.decoding.lm import EOS
from rnnkit.errors import UserError

CHARSET = ["<blank>", " ", "'", *"abcdefghijklmnopqrstuvwxyz"]
INDEX = {c: i for i, c in enumerate(CHARSET)}


def text_of(ids, charset=CHARSET):
    return "".join(charset[i] for i in ids)


def scripted(frames, charset=CHARSET, floor=1e-4):
    """Log-probs from ``[{char: prob, ...}, ...]`` ("_" is the blank); the rest share
    ``floor`` mass."""
    out = np.full((len(frames), len(charset)), floor)
    for t, frame in enumerate(frames):
        for char, p in frame.items():
            out[t, 0 if char == "_" else charset.index(char)] = p
        out[t] /= out[t].sum()
    return np.log(out)


def spell(text, hold=1.0):
    """Frames that spell ``text`` one character per frame, a blank between characters."""
    frames = []
    for char in text:
        frames += [{char: hold}, {"_": hold}]
    return frames


def test_scripted_posteriors_decode_to_the_exact_words():
    lexicon = Lexicon(["three", "two", "one"], CHARSET)
    # Greedy hears "tree" (the h is weaker than the blank on its frame): not in the list.
    frames = [{"t": 0.9}, {"_": 0.5, "h": 0.4}, {"r": 0.9}, {"e": 0.9}, {"_": 0.9},
              {"e": 0.9}]
    log_probs = scripted(frames)
    assert text_of(ctc_greedy_decode(log_probs)) == "tree"
    assert text_of(ctc_lexicon_beam_search(log_probs, lexicon)) == "three"
    # With "tree" in the list, the acoustically better word wins.
    assert text_of(ctc_lexicon_beam_search(log_probs, Lexicon(["three", "tree"], CHARSET))) \
        == "tree"
    # Five frames cannot spell "three" (the double e needs a blank): the best that fits.
    assert text_of(ctc_lexicon_beam_search(log_probs[:5], lexicon)) == "two"
    # Two words; "on" is a prefix of "one" and must not end the first word early.
    frames = spell("one") + [{" ": 0.9}, {"_": 0.9}] + spell("tw") + [{"o": 0.6, "e": 0.4}]
    best = ctc_lexicon_beam_search(scripted(frames), Lexicon(["one", "two", "on"], CHARSET))
    assert text_of(best) == "one two"
    # A greedy "twe" (not a word) is corrected to "two"; the trailing space is merged away.
    frames = spell("tw") + [{"e": 0.55, "o": 0.45}, {" ": 0.9}]
    assert text_of(ctc_greedy_decode(scripted(frames))) == "twe "
    assert text_of(ctc_lexicon_beam_search(scripted(frames), lexicon)) == "two"


def test_silence_decodes_to_nothing_and_batches_respect_lengths():
    lexicon = Lexicon(["yes", "no"], CHARSET)
    silence = scripted([{"_": 0.99}] * 6)
    assert ctc_lexicon_beam_search(silence, lexicon) == []
    yes = scripted(spell("yes"))
    batch = np.stack([yes, np.concatenate([scripted(spell("no")), scripted(spell("yes"))[:2]])])
    decoded = ctc_lexicon_beam_search(batch, lexicon, lengths=[6, 4])
    assert [text_of(ids) for ids in decoded] == ["yes", "no"]


def _forward(log_probs, labels, blank=0):
    """log P(labels | log_probs) by the CTC forward algorithm (sum over alignments)."""
    extended = [blank]
    for label in labels:
        extended += [label, blank]
    size = len(extended)
    alpha = np.full(size, -np.inf)
    alpha[0] = log_probs[0, blank]
    if size > 1:
        alpha[1] = log_probs[0, extended[1]]
    for t in range(1, log_probs.shape[0]):
        new = np.full(size, -np.inf)
        for s in range(size):
            terms = [alpha[s]]
            if s >= 1:
                terms.append(alpha[s - 1])
            if s >= 2 and extended[s] != blank and extended[s] != extended[s - 2]:
                terms.append(alpha[s - 2])
            new[s] = np.logaddexp.reduce(terms) + log_probs[t, extended[s]]
        alpha = new
    return float(np.logaddexp(alpha[-1], alpha[-2]) if size > 1 else alpha[-1])


def _sequence_score(log_probs, words, lexicon, lm=None, lm_weight=0.0, word_bonus=0.0):
    """(total, acoustic): acoustic summed over the leading/trailing single-space variants."""
    core = lexicon.ids(words)
    space = lexicon.space_id
    variants = {tuple(core), (space, *core)} if not words else {
        tuple(lead + core + trail) for lead in ([], [space]) for trail in ([], [space])}
    acoustic = float(np.logaddexp.reduce([_forward(log_probs, list(v)) for v in variants]))
    bonus = word_bonus * len(words)
    if lm is not None:
        bonus += lm_weight * lm.sentence_log_prob(words)
    return acoustic + bonus, acoustic


def _exhaustive(log_probs, lexicon, lm=None, lm_weight=0.0, word_bonus=0.0):
    """The best word sequence over every sequence whose spelling fits in T frames."""
    frames = log_probs.shape[0]
    best, best_words = -math.inf, None
    for count in range(0, frames + 1):
        fits = 0
        for words in itertools.product(lexicon.words, repeat=count):
            ids = lexicon.ids(words)
            needed = len(ids) + sum(a == b for a, b in zip(ids, ids[1:], strict=False))
            if needed > frames:
                continue
            fits += 1
            total, _ = _sequence_score(log_probs, words, lexicon, lm, lm_weight, word_bonus)
            if total > best:
                best, best_words = total, words
        if count and not fits:
            break
    return best_words, best


def _random_case(seed, charset):
    rng = np.random.default_rng(seed)
    frames = int(rng.integers(3, 8))
    # Peaky random posteriors, like a trained CTC model's.
    logits = rng.normal(0.0, 2.5, size=(frames, len(charset)))
    logits[:, 0] += rng.uniform(0.0, 2.0)
    letters = charset[2:]
    words = set()
    while len(words) < int(rng.integers(2, 6)):
        words.add("".join(rng.choice(letters, size=int(rng.integers(1, 4)))))
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True), sorted(words)


@pytest.mark.parametrize("seed", range(40))
def test_wide_beam_equals_exhaustive_search_over_word_sequences(seed):
    charset = ["<blank>", " ", "a", "b", "c"]
    log_probs, words = _random_case(seed, charset)
    lexicon = Lexicon(words, charset)
    expected, expected_score = _exhaustive(log_probs, lexicon)
    [best] = ctc_lexicon_beam_search(log_probs, lexicon, beam_width=10_000, num_return=1)
    assert text_of(best.ids, charset) == " ".join(expected)
    assert best.score == pytest.approx(expected_score, abs=1e-9)
    assert best.log_prob == pytest.approx(expected_score, abs=1e-9)


@pytest.mark.parametrize("seed", range(25))
def test_wide_beam_with_lm_and_bonus_equals_exhaustive_search(seed):
    charset = ["<blank>", " ", "a", "b", "c"]
    log_probs, words = _random_case(1000 + seed, charset)
    rng = np.random.default_rng(seed)
    text = "\n".join(" ".join(rng.choice(words, size=int(rng.integers(1, 4))))
                     for _ in range(6))
    lm = NgramLM.from_text(text, order=2)
    lexicon = Lexicon(words, charset)
    expected, expected_score = _exhaustive(log_probs, lexicon, lm, 0.8, 0.3)
    [best] = ctc_lexicon_beam_search(log_probs, lexicon, beam_width=10_000, num_return=1,
                                     lm=lm, lm_weight=0.8, word_bonus=0.3)
    assert text_of(best.ids, charset) == " ".join(expected)
    assert best.score == pytest.approx(expected_score, abs=1e-9)


def test_a_moderate_beam_mostly_agrees_with_the_exhaustive_search():
    charset = ["<blank>", " ", "a", "b", "c"]
    agree = 0
    for seed in range(30):
        log_probs, words = _random_case(5000 + seed, charset)
        lexicon = Lexicon(words, charset)
        expected, _ = _exhaustive(log_probs, lexicon)
        agree += text_of(ctc_lexicon_beam_search(log_probs, lexicon, beam_width=8),
                         charset) == " ".join(expected)
    assert agree >= 27


def test_lm_flips_a_decision_the_acoustics_leave_close():
    lexicon = Lexicon(["one", "two", "too", "three"], CHARSET)
    # "one t?o": the acoustics lean slightly to "too" over "two".
    frames = spell("one") + [{" ": 0.9}, {"_": 0.9}, {"t": 0.9}, {"o": 0.52, "w": 0.48},
                             {"_": 0.9}, {"o": 0.9}]
    log_probs = scripted(frames)
    assert text_of(ctc_lexicon_beam_search(log_probs, lexicon)) == "one too"
    lm = NgramLM.from_text("one two three\none two\nthree two one\n", order=3)
    assert lm.log_prob(["one"], "two") > lm.log_prob(["one"], "too")
    flipped = ctc_lexicon_beam_search(log_probs, lexicon, lm=lm, lm_weight=0.5)
    assert text_of(flipped) == "one two"
    # A clear acoustic decision is not overturned by the same LM.
    clear = scripted(spell("one") + [{" ": 0.9}, {"_": 0.9}] + spell("too"))
    assert text_of(ctc_lexicon_beam_search(clear, lexicon, lm=lm, lm_weight=0.5)) == "one too"
    # The word bonus trades insertions: a weak "one" at the start is kept with a bonus.
    weak = scripted([{"o": 0.3, "_": 0.7}, {"n": 0.3, "_": 0.7}, {"e": 0.3, "_": 0.7},
                     {" ": 0.9}] + spell("two"))
    assert text_of(ctc_lexicon_beam_search(weak, lexicon)) == "two"
    assert text_of(ctc_lexicon_beam_search(weak, lexicon, word_bonus=4.0)) == "one two"


def test_ngram_lm_is_normalised_and_backs_off():
    lm = NgramLM.from_text("a b c\na b\nb c a\n", order=3)
    words = ["a", "b", "c", EOS]
    for history in ([], ["a"], ["a", "b"], ["c", "c"]):
        known = sum(math.exp(lm.log_prob(history, w)) for w in words)
        unknown = math.exp(lm.log_prob(history, "zzz"))
        assert 0.0 < unknown < 0.2
        assert known + unknown == pytest.approx(1.0, abs=1e-9)  # one unknown-word slot
    assert lm.log_prob(["a"], "b") > lm.log_prob(["a"], "c")
    assert lm.sentence_log_prob(["a", "b"]) > lm.sentence_log_prob(["b", "a"])
    unigram = NgramLM.from_text("x x y\n", order=1)
    assert unigram.log_prob(["y"], "x") > unigram.log_prob(["x"], "y")


def test_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(UserError, match="empty"):
        Lexicon(["", "  "], CHARSET)
    with pytest.raises(UserError, match=r"'é' \(in 'café'\).*'1' \(in 'r2d1'\)"):
        Lexicon(["café", "tea", "r2d1"], CHARSET)
    with pytest.raises(UserError, match="single words"):
        Lexicon(["turn on"], CHARSET)
    with pytest.raises(UserError, match="separator"):
        Lexicon(["ab"], ["<blank>", "a", "b"])
    with pytest.raises(UserError, match="not found"):
        NgramLM.from_file(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(UserError, match="empty"):
        NgramLM.from_file(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match="beam_width"):
        ctc_lexicon_beam_search(scripted(spell("a")), Lexicon(["a"], CHARSET), beam_width=0)
    with pytest.raises(ValueError, match="classes"):
        ctc_lexicon_beam_search(np.zeros((3, 4)), Lexicon(["z"], CHARSET))
