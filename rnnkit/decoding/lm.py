"""A word n-gram language model for CTC word decoding (pure Python, no TensorFlow).

``NgramLM`` is an interpolated Kneser-Ney model with one fixed absolute discount: the top
order uses the n-gram counts, every lower order the continuation counts (how many distinct
words precede an n-gram), and the unigram level is interpolated with a uniform distribution
over the known words plus one unknown-word slot, so every word gets a non-zero probability.
Probabilities are natural logs; sentences start with ``<s>`` context and end with ``</s>``.

    lm = NgramLM.from_text("one two three\\nthree two one\\n", order=3)
    lm.log_prob(("one",), "two")     # log P(two | <s> one)
    lm.sentence_log_prob(["one", "two"])
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from rnnkit.errors import UserError

BOS = "<s>"
EOS = "</s>"


class NgramLM:
    """Interpolated Kneser-Ney word n-gram model (discount ``discount``, order ``order``)."""

    def __init__(self, sentences: Iterable[Sequence[str]], order: int = 3,
                 discount: float = 0.75):
        if int(order) < 1:
            raise UserError(f"The n-gram order must be >= 1. Received: {order}")
        if not 0.0 < float(discount) < 1.0:
            raise UserError(f"The discount must be in (0, 1). Received: {discount}")
        self.order, self.discount = int(order), float(discount)
        # counts[k][context] = {word: count}; top order: raw counts; lower: continuation counts.
        self._counts: list[dict[tuple[str, ...], dict[str, int]]] = [
            defaultdict(dict) for _ in range(self.order + 1)]
        top: dict[tuple[str, ...], int] = defaultdict(int)
        words: set[str] = set()
        sentences_seen = 0
        for sentence in sentences:
            tokens = [str(w) for w in sentence]
            if not tokens:
                continue
            sentences_seen += 1
            words.update(tokens)
            padded = [BOS] * (self.order - 1) + tokens + [EOS]
            for end in range(self.order - 1, len(padded)):
                top[tuple(padded[end - self.order + 1:end + 1])] += 1
        if not sentences_seen:
            raise UserError("The language model text holds no words")
        for gram, count in top.items():
            self._counts[self.order][gram[:-1]][gram[-1]] = count
        # Continuation counts: N1+(. gram) for every suffix gram of a higher-order n-gram.
        grams = set(top)
        for k in range(self.order - 1, 0, -1):
            lower: dict[tuple[str, ...], int] = defaultdict(int)
            for gram in grams:
                lower[gram[1:]] += 1
            for gram, count in lower.items():
                self._counts[k][gram[:-1]][gram[-1]] = count
            grams = set(lower)
        self._totals = [{context: sum(row.values()) for context, row in level.items()}
                        for level in self._counts]
        self.words = frozenset(words)
        self._uniform = 1.0 / (len(words) + 2)  # the words, </s> and one unknown-word slot
        self._cache: dict[tuple[tuple[str, ...], str], float] = {}

    @classmethod
    def from_text(cls, text: str, order: int = 3, discount: float = 0.75,
                  normalize=None) -> NgramLM:
        """One sentence per non-empty line; ``normalize(line) -> list[str]`` (default: a
        lower-cased whitespace split)."""
        split = normalize or (lambda line: line.lower().split())
        return cls((split(line) for line in text.splitlines() if line.strip()), order, discount)

    @classmethod
    def from_file(cls, path: str | os.PathLike, order: int = 3, discount: float = 0.75,
                  normalize=None) -> NgramLM:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"Language model text file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"Cannot read the language model text {path}: {error}") from None
        if not text.strip():
            raise UserError(f"The language model text file {path} is empty")
        return cls.from_text(text, order, discount, normalize)

    def _prob(self, context: tuple[str, ...], word: str) -> float:
        if not context:
            row, total = self._counts[1].get((), {}), self._totals[1].get((), 0)
            if not total:
                return self._uniform
            share = max(row.get(word, 0) - self.discount, 0.0) / total
            return share + self.discount * len(row) / total * self._uniform
        lower = self._prob(context[1:], word)
        k = len(context) + 1
        row, total = self._counts[k].get(context), self._totals[k].get(context, 0)
        if not total:
            return lower
        share = max(row.get(word, 0) - self.discount, 0.0) / total
        return share + self.discount * len(row) / total * lower

    def log_prob(self, history: Sequence[str], word: str) -> float:
        """Natural log of P(word | the last order-1 words of ``history``, ``<s>``-padded)."""
        context = tuple([BOS] * (self.order - 1) + list(history))[len(history):] \
            if self.order > 1 else ()
        key = (context, word)
        value = self._cache.get(key)
        if value is None:
            value = math.log(self._prob(context, word))
            self._cache[key] = value
        return value

    def sentence_log_prob(self, words: Sequence[str]) -> float:
        """log P(words, then ``</s>``)."""
        words = list(words)
        return sum(self.log_prob(words[:i], w) for i, w in enumerate(words + [EOS]))
