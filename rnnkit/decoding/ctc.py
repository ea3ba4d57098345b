"""CTC decoding (numpy only): greedy best path and prefix beam search.

Both take per-frame scores of shape ``(T, C)`` or ``(B, T, C)`` with the blank
at ``blank_id``. ``ctc_greedy_decode`` only needs an argmax, so logits,
probabilities or log-probabilities all work. ``ctc_prefix_beam_search``
normalises its input with a log-softmax over ``C`` first, which leaves
log-probabilities unchanged and turns logits into log-probabilities (do not
pass plain probabilities: take their log first).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import numpy as np

from rnnkit.decoding.search import Hypothesis

_NEG_INF = -math.inf


def _logaddexp(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) on Python floats (much faster than np.logaddexp on scalars)."""
    if a == _NEG_INF:
        return b
    if b == _NEG_INF:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


def _add_path_scores(store: dict, prefix: tuple[int, ...], blank_score: float,
                     label_score: float) -> None:
    """Accumulate (log-add) a prefix's ending-in-blank and ending-in-label scores in ``store``."""
    entry = store.get(prefix)
    if entry is None:
        store[prefix] = [blank_score, label_score]
    else:
        entry[0] = _logaddexp(entry[0], blank_score)
        entry[1] = _logaddexp(entry[1], label_score)


def _check_scores(log_probs, blank_id: int) -> np.ndarray:
    array = np.asarray(log_probs, dtype=np.float64)
    if array.ndim not in (2, 3):
        raise ValueError(
            f"`log_probs` must have shape (T, C) or (B, T, C). Received: shape={array.shape}"
        )
    if not 0 <= int(blank_id) < array.shape[-1]:
        raise ValueError(
            f"`blank_id` must be in [0, {array.shape[-1]}). Received: blank_id={blank_id}"
        )
    return array


def _as_batch(array: np.ndarray, lengths) -> tuple[np.ndarray, np.ndarray, bool]:
    """A ``(T, C)`` input as a batch of one; returns (batch, valid length per row, single)."""
    single = array.ndim == 2
    if single:
        array = array[None]
        if lengths is not None:
            lengths = [int(np.asarray(lengths).reshape(-1)[0])]
    return array, _row_lengths(lengths, array.shape[0], array.shape[1]), single


def _row_lengths(lengths, batch: int, frames: int) -> np.ndarray:
    if lengths is None:
        return np.full((batch,), frames, dtype=np.int64)
    values = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if values.shape[0] != batch:
        raise ValueError(
            f"`lengths` must hold one length per row ({batch}). Received: {values.shape[0]} lengths"
        )
    return np.clip(values, 0, frames)


def _collapse(path: np.ndarray, blank_id: int) -> list[int]:
    ids: list[int] = []
    previous = -1
    for token in path.tolist():
        if token != previous and token != blank_id:
            ids.append(int(token))
        previous = token
    return ids


def ctc_greedy_decode(log_probs, lengths=None, blank_id: int = 0):
    """Best-path CTC decoding: argmax per frame, merge repeats, drop blanks.

    Args:
        log_probs: ``(T, C)`` or ``(B, T, C)`` frame scores.
        lengths: for a batch, the number of valid frames of each row (frames
            beyond it are ignored); ``None`` uses all ``T`` frames. For a single
            ``(T, C)`` input, an int or ``None``.
        blank_id: index of the blank.

    Returns:
        ``list[int]`` for ``(T, C)`` input, ``list[list[int]]`` for a batch.
        Two equal labels separated by a blank stay two labels (``a _ a`` → ``a a``).
    """
    array = _check_scores(log_probs, blank_id)
    array, valid, single = _as_batch(array, lengths)
    best = np.argmax(array, axis=-1)
    decoded = [_collapse(best[row, : valid[row]], blank_id) for row in range(array.shape[0])]
    return decoded[0] if single else decoded


def _log_softmax(array: np.ndarray) -> np.ndarray:
    shifted = array - np.max(array, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _prefix_beam_search_single(
    log_probs: np.ndarray, beam_width: int, blank_id: int, token_min_log_prob: float | None
) -> list[tuple[tuple[int, ...], float]]:
    """Prefix beam search over one ``(T, C)`` log-probability matrix.

    Every prefix keeps two scores: ``blank`` (log-prob of all alignments of the
    first t frames that give the prefix and end in a blank) and ``label``
    (those ending in the prefix's last label). They are kept apart because a
    repeated label only extends the prefix after a blank.
    """
    neg_inf = _NEG_INF
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, neg_inf)}
    num_classes = log_probs.shape[1]
    labels_all = [c for c in range(num_classes) if c != blank_id]
    for row in log_probs:
        frame = row.tolist()
        candidates = labels_all
        if token_min_log_prob is not None:
            candidates = [c for c in labels_all if frame[c] >= token_min_log_prob]
        blank_lp = frame[blank_id]
        next_beams: dict[tuple[int, ...], list[float]] = {}

        add = partial(_add_path_scores, next_beams)

        for prefix, (blank_score, label_score) in beams.items():
            total = _logaddexp(blank_score, label_score)
            # Blank: the prefix is unchanged and now ends in a blank.
            add(prefix, total + blank_lp, neg_inf)
            last = prefix[-1] if prefix else None
            for label in candidates:
                label_lp = frame[label]
                if label == last:
                    # Repeat without a blank in between collapses into the same prefix;
                    # after a blank it starts a new copy of the label.
                    add(prefix, neg_inf, label_score + label_lp)
                    add(prefix + (label,), neg_inf, blank_score + label_lp)
                else:
                    add(prefix + (label,), neg_inf, total + label_lp)
        ranked = sorted(
            next_beams.items(), key=lambda item: _logaddexp(item[1][0], item[1][1]), reverse=True
        )
        beams = {prefix: (scores[0], scores[1]) for prefix, scores in ranked[:beam_width]}
    final = [
        (prefix, float(_logaddexp(blank_score, label_score)))
        for prefix, (blank_score, label_score) in beams.items()
    ]
    final.sort(key=lambda item: item[1], reverse=True)
    return final


def ctc_prefix_beam_search(
    log_probs,
    beam_width: int = 8,
    blank_id: int = 0,
    *,
    lengths=None,
    num_return: int | None = None,
    token_min_log_prob: float | None = None,
):
    """CTC prefix beam search in log space.

    Unlike best-path decoding, it sums the probabilities of all alignments
    that collapse to the same label sequence, so it can find a labelling whose
    total probability beats the labelling of the single best path.

    Args:
        log_probs: ``(T, C)`` or ``(B, T, C)`` log-probabilities (or logits:
            a log-softmax over ``C`` is applied first).
        beam_width: prefixes kept after each frame.
        blank_id: index of the blank.
        lengths: valid frames per row for a batch (int or ``None`` for one row).
        num_return: ``None`` returns the best ids (``list[int]``); an int
            returns that many ``Hypothesis(ids, score)`` best first, where
            ``score`` is the log-probability of the labelling (summed over the
            alignments the beam kept) and equals ``log_prob``.
        token_min_log_prob: optional pruning: labels whose frame
            log-probability is below it are not tried at that frame.

    Returns:
        For ``(T, C)``: ``list[int]`` or ``list[Hypothesis]``; for a batch, a
        list of those.
    """
    array = _check_scores(log_probs, blank_id)
    if int(beam_width) < 1:
        raise ValueError(f"`beam_width` must be >= 1. Received: beam_width={beam_width}")
    if num_return is not None and not 1 <= int(num_return) <= int(beam_width):
        raise ValueError(
            f"`num_return` must be None or between 1 and beam_width={beam_width}. "
            f"Received: num_return={num_return}"
        )
    array, valid, single = _as_batch(array, lengths)
    array = _log_softmax(array)
    results = []
    for row in range(array.shape[0]):
        ranked = _prefix_beam_search_single(
            array[row, : valid[row]], int(beam_width), int(blank_id), token_min_log_prob
        )
        if num_return is None:
            results.append(list(ranked[0][0]))
        else:
            results.append(
                [
                    Hypothesis(ids=list(prefix), score=score, log_prob=score, finished=True)
                    for prefix, score in ranked[: int(num_return)]
                ]
            )
    return results[0] if single else results


# ---------------------------------------------------------------------------------------------
# Closed-vocabulary decoding: prefix beam search through a lexicon trie (+ a word n-gram LM)


class Lexicon:
    """A word list as a trie over the label ids of a CTC charset.

    Args:
        words: the allowed words (duplicates and surrounding whitespace ignored).
        charset: the model's label strings by id (``charset[blank_id]`` is the blank); every
            character of every word must be one of them.
        blank_id: index of the blank.
        space: the label that separates words.

    Raises ``UserError`` for an empty list, a word holding the space, or characters outside
    the charset (naming them and the words that use them).
    """

    def __init__(self, words: Sequence[str], charset: Sequence[str], blank_id: int = 0,
                 space: str = " "):
        from rnnkit.errors import UserError

        label_of = {str(c): i for i, c in enumerate(charset) if i != blank_id}
        if space not in label_of:
            raise UserError(f"The model's charset has no word separator {space!r}; closed-"
                            "vocabulary decoding needs one")
        self.space_id = label_of[space]
        unique = list(dict.fromkeys(str(w).strip() for w in words))
        unique = [w for w in unique if w]
        if not unique:
            raise UserError("The vocabulary is empty: give at least one word")
        with_space = [w for w in unique if any(c.isspace() for c in w)]
        if with_space:
            raise UserError(f"Vocabulary entries must be single words. Received: "
                            f"{', '.join(map(repr, with_space[:5]))}")
        unknown: dict[str, list[str]] = {}
        for word in unique:
            for char in word:
                if char not in label_of:
                    unknown.setdefault(char, []).append(word)
        if unknown:
            named = "; ".join(f"{c!r} (in {', '.join(map(repr, ws[:3]))}"
                              f"{', ...' if len(ws) > 3 else ''})" for c, ws in unknown.items())
            allowed = "".join(c for c in label_of if c != space)
            raise UserError(f"Vocabulary words use characters the model cannot spell: {named}. "
                            f"The model's characters: {allowed!r} and the space")
        self.words = unique
        self.children: list[dict[int, int]] = [{}]
        self.word_at: list[str | None] = [None]
        for word in unique:
            node = 0
            for char in word:
                label = label_of[char]
                child = self.children[node].get(label)
                if child is None:
                    child = len(self.children)
                    self.children[node][label] = child
                    self.children.append({})
                    self.word_at.append(None)
                node = child
            self.word_at[node] = word
        self._label_of = label_of

    def __len__(self) -> int:
        return len(self.words)

    def ids(self, words: Sequence[str]) -> list[int]:
        """The label ids of ``words`` joined by single spaces."""
        ids: list[int] = []
        for index, word in enumerate(words):
            if index:
                ids.append(self.space_id)
            ids.extend(self._label_of[c] for c in word)
        return ids


def _lexicon_search_single(log_probs: np.ndarray, lexicon: Lexicon, beam_width: int,
                           blank_id: int, lm, lm_weight: float, word_bonus: float,
                           token_min_log_prob: float | None
                           ) -> list[tuple[tuple[str, ...], float, float]]:
    """``(words, total score, acoustic log-prob)`` best first, over one ``(T, C)`` matrix.

    Every prefix (label ids) carries its trie node (0 after a space or at the start), the
    words it completed and their bonus (``lm_weight`` x LM log-prob + ``word_bonus`` per word,
    added when the space after a word is emitted, or at the end). A prefix may begin with one
    space and ends on a complete word, optionally followed by one space; words are separated
    by exactly one space. Beams are ranked by acoustic score + bonus.
    """
    neg_inf = _NEG_INF
    space = lexicon.space_id
    children, word_at = lexicon.children, lexicon.word_at
    invalid = (-1, (), 0.0)

    def word_score(words: tuple[str, ...], word: str) -> float:
        score = word_bonus
        if lm is not None:
            score += lm_weight * lm.log_prob(words, word)
        return score

    # prefix -> (trie node, completed words, bonus); `invalid` for prefixes the lexicon forbids.
    states: dict[tuple[int, ...], tuple[int, tuple[str, ...], float]] = {(): (0, (), 0.0)}

    def state_of(prefix: tuple[int, ...], label: int, key: tuple[int, ...]):
        state = states.get(key)
        if state is not None:
            return state
        node, words, bonus = states[prefix]
        if label == space:
            if node == 0:  # only one leading space; never two in a row
                state = (0, words, bonus) if not prefix else invalid
            elif word_at[node] is not None:
                word = word_at[node]
                state = (0, (*words, word), bonus + word_score(words, word))
            else:
                state = invalid
        else:
            child = children[node].get(label)
            state = invalid if child is None else (child, words, bonus)
        states[key] = state
        return state

    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, neg_inf)}
    for row in log_probs:
        frame = row.tolist()
        blank_lp = frame[blank_id]
        next_beams: dict[tuple[int, ...], list[float]] = {}

        add = partial(_add_path_scores, next_beams)

        for prefix, (blank_score, label_score) in beams.items():
            total = _logaddexp(blank_score, label_score)
            add(prefix, total + blank_lp, neg_inf)
            last = prefix[-1] if prefix else None
            if last is not None:  # the last label repeated without a blank: same prefix
                add(prefix, neg_inf, label_score + frame[last])
            node = states[prefix][0]
            labels = list(children[node])
            if (node == 0 and not prefix) or word_at[node] is not None:
                labels.append(space)
            for label in labels:
                label_lp = frame[label]
                if token_min_log_prob is not None and label_lp < token_min_log_prob:
                    continue
                key = prefix + (label,)
                if state_of(prefix, label, key) is invalid:
                    continue
                # After the same label, a new copy needs a blank in between.
                add(key, neg_inf, (blank_score if label == last else total) + label_lp)

        def ranking(item):
            return _logaddexp(item[1][0], item[1][1]) + states[item[0]][2]

        ranked = sorted(next_beams.items(), key=ranking, reverse=True)
        beams = {prefix: (scores[0], scores[1]) for prefix, scores in ranked[:beam_width]}

    finals: dict[tuple[str, ...], list[float]] = {}
    for prefix, (blank_score, label_score) in beams.items():
        node, words, bonus = states[prefix]
        if node != 0:
            word = word_at[node]
            if word is None:
                continue  # ends inside a word
            bonus += word_score(words, word)
            words = (*words, word)
        if lm is not None:
            from rnnkit.decoding.lm import EOS

            bonus += lm_weight * lm.log_prob(words, EOS)
        acoustic = _logaddexp(blank_score, label_score)
        entry = finals.get(words)
        if entry is None:
            finals[words] = [acoustic, bonus]
        else:  # the same words with and without a leading / trailing space
            entry[0] = _logaddexp(entry[0], acoustic)
    ranked_words = [(words, acoustic + bonus, acoustic)
                    for words, (acoustic, bonus) in finals.items()]
    ranked_words.sort(key=lambda item: item[1], reverse=True)
    return ranked_words


def ctc_lexicon_beam_search(
    log_probs,
    lexicon: Lexicon,
    beam_width: int = 16,
    blank_id: int = 0,
    *,
    lengths=None,
    num_return: int | None = None,
    lm=None,
    lm_weight: float = 0.5,
    word_bonus: float = 0.0,
    token_min_log_prob: float | None = None,
):
    """CTC prefix beam search restricted to sequences of ``lexicon`` words.

    The label sequence must spell words of the lexicon separated by single spaces (one
    leading and one trailing space are allowed and merged away), and end on a complete word;
    the empty transcript (all blanks) is allowed. With an ``lm`` (``rnnkit.decoding.lm``:
    anything with ``log_prob(history, word)``) every completed word adds ``lm_weight`` x its
    log-probability given the previous words, and the end adds ``lm_weight`` x log P(</s>);
    ``word_bonus`` is added per word with or without an LM.

    Args:
        log_probs: ``(T, C)`` or ``(B, T, C)`` log-probabilities (or logits).
        lexicon: the allowed words (:class:`Lexicon` over the model's charset).
        beam_width: prefixes kept after each frame.
        blank_id: index of the blank.
        lengths: valid frames per row for a batch (int or ``None`` for one row).
        num_return: ``None`` returns the best ids (the words joined by single spaces); an int
            returns up to that many ``Hypothesis(ids, score, log_prob)`` best first, ``score``
            being acoustic + LM + bonus and ``log_prob`` the acoustic log-probability (summed
            over the alignments the beam kept, and over the leading/trailing-space variants).
        token_min_log_prob: optional pruning of unlikely labels per frame.

    Returns:
        For ``(T, C)``: ``list[int]`` or ``list[Hypothesis]``; for a batch, a list of those.
        When no complete word sequence survives the beam, the result is empty.
    """
    array = _check_scores(log_probs, blank_id)
    if not isinstance(lexicon, Lexicon):
        raise ValueError(f"`lexicon` must be a Lexicon. Received: {type(lexicon).__name__}")
    if int(beam_width) < 1:
        raise ValueError(f"`beam_width` must be >= 1. Received: beam_width={beam_width}")
    if num_return is not None and int(num_return) < 1:
        raise ValueError(f"`num_return` must be None or >= 1. Received: num_return={num_return}")
    if not math.isfinite(float(lm_weight)) or not math.isfinite(float(word_bonus)):
        raise ValueError(f"`lm_weight` and `word_bonus` must be finite. Received: "
                         f"{lm_weight}, {word_bonus}")
    if max(lexicon.space_id, *(label for row in lexicon.children for label in row)) \
            >= array.shape[-1]:
        raise ValueError(f"The lexicon uses label ids beyond the {array.shape[-1]} classes of "
                         "`log_probs`")
    array, valid, single = _as_batch(array, lengths)
    array = _log_softmax(array)
    results = []
    for row in range(array.shape[0]):
        ranked = _lexicon_search_single(
            array[row, : valid[row]], lexicon, int(beam_width), int(blank_id), lm,
            float(lm_weight), float(word_bonus), token_min_log_prob)
        if num_return is None:
            results.append(lexicon.ids(ranked[0][0]) if ranked else [])
        else:
            results.append([Hypothesis(ids=lexicon.ids(words), score=score, log_prob=acoustic,
                                       finished=True)
                            for words, score, acoustic in ranked[: int(num_return)]])
    return results[0] if single else results
