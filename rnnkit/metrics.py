"""Evaluation metrics (no TensorFlow; sacrebleu, jiwer and matplotlib imported lazily).

- ``classification_report``: accuracy, macro/weighted F1, per-class
  precision/recall/F1/support and the confusion matrix (numpy, 0 on zero division).
- ``plot_confusion_matrix``: a PNG through matplotlib's Agg canvas.
- ``paired_bootstrap``: accuracy difference of two systems on the same examples with a
  percentile confidence interval (is one really better, or is it noise?).
- ``bleu`` / ``chrf``: sacrebleu corpus scores, 0..100.
- ``wer`` / ``cer``: corpus error rates via jiwer, as fractions (0.25 = 25 %).
- ``caption_scores``: BLEU-1..4 (0..1) and CIDEr-D for image captions.

Reference layout everywhere: ``refs[i]`` belongs to ``hyps[i]`` and is either
one string or a list of strings (several references; lists may differ in length).
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# --------------------------------------------------------------- classification


def _label_indices(values, labels: list) -> np.ndarray:
    values = list(np.asarray(values).reshape(-1).tolist())
    lookup = {label: index for index, label in enumerate(labels)}
    if all(v in lookup for v in values):
        return np.array([lookup[v] for v in values], dtype=np.int64)
    if all(isinstance(v, int) and 0 <= v < len(labels) for v in values):
        return np.array(values, dtype=np.int64)
    unknown = sorted({str(v) for v in values if v not in lookup})[:5]
    raise ValueError(
        f"`y_true`/`y_pred` must hold labels from `labels` or indices into it. "
        f"Received unknown values: {unknown}"
    )


def classification_report(y_true, y_pred, labels: Sequence | None = None) -> dict:
    """Accuracy, F1 and the confusion matrix for single-label classification.

    Args:
        y_true, y_pred: label values (members of ``labels``) or integer indices
            into ``labels``.
        labels: class names in order; ``None`` uses the sorted distinct values.

    Returns:
        ``{"accuracy", "macro_f1", "weighted_f1", "labels", "per_class":
        {str(label): {"precision", "recall", "f1", "support"}},
        "confusion_matrix": [[...]]}``; the matrix has true labels as rows and
        predictions as columns. Divisions by zero give 0.
    """
    y_true = list(np.asarray(y_true).reshape(-1).tolist())
    y_pred = list(np.asarray(y_pred).reshape(-1).tolist())
    if len(y_true) != len(y_pred):
        raise ValueError(
            "`y_true` and `y_pred` must have the same length. "
            f"Received: {len(y_true)} and {len(y_pred)}"
        )
    if labels is None:
        labels = sorted(set(y_true) | set(y_pred))
    labels = list(labels)
    if not labels:
        raise ValueError("`labels` must not be empty. Received: labels=[]")
    true_index = _label_indices(y_true, labels)
    pred_index = _label_indices(y_pred, labels)
    size = len(labels)
    matrix = np.zeros((size, size), dtype=np.int64)
    np.add.at(matrix, (true_index, pred_index), 1)

    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)

    def safe_divide(numerator, denominator):
        return np.divide(
            numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0
        )

    precision = safe_divide(true_positive, predicted)
    recall = safe_divide(true_positive, support)
    f1 = safe_divide(2 * precision * recall, precision + recall)
    total = float(support.sum())
    return {
        "accuracy": float(true_positive.sum() / total) if total else 0.0,
        "macro_f1": float(f1.mean()),
        "weighted_f1": float((f1 * support).sum() / total) if total else 0.0,
        "labels": [str(label) for label in labels],
        "per_class": {
            str(label): {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": matrix.tolist(),
    }


def paired_bootstrap(correct_a, correct_b, samples: int = 2000, confidence: float = 0.95,
                     seed: int = 0) -> dict:
    """Accuracy of system A minus system B on the same examples, with a paired bootstrap
    percentile interval: both systems are scored on the same resampled example sets.

    ``correct_a`` / ``correct_b``: per-example 1/0 (or bool), same length. Returns
    ``{"difference", "low", "high", "confidence", "samples", "p_a_not_better"}`` where the
    last is the share of resamples in which A is not ahead (a one-sided p-value estimate).
    """
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError("`correct_a` and `correct_b` must be non-empty 1-D sequences of the "
                         f"same length. Received: shapes {a.shape} and {b.shape}")
    if not 0 < confidence < 1 or samples < 1:
        raise ValueError(f"`confidence` must be in (0, 1) and `samples` >= 1. Received: "
                         f"confidence={confidence}, samples={samples}")
    rng = np.random.default_rng(seed)
    delta = a - b
    draws = rng.integers(0, len(delta), size=(samples, len(delta)))
    means = delta[draws].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    return {"difference": float(delta.mean()),
            "low": float(np.quantile(means, tail)), "high": float(np.quantile(means, 1 - tail)),
            "confidence": confidence, "samples": samples,
            "p_a_not_better": float(np.mean(means <= 0.0))}


def plot_confusion_matrix(
    matrix, labels: Sequence, path: str | os.PathLike, normalize: bool = False
) -> Path:
    """Save the confusion matrix (rows true, columns predicted) as an image.

    Uses matplotlib's object API with the Agg canvas, so no display and no
    global pyplot state. ``normalize`` divides each row by its total.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = np.asarray(matrix, dtype=np.float64)
    labels = [str(label) for label in labels]
    if values.ndim != 2 or values.shape[0] != values.shape[1] or values.shape[0] != len(labels):
        raise ValueError(
            f"`matrix` must be square with one row per label ({len(labels)}). "
            f"Received: shape={values.shape}"
        )
    if normalize:
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    size = max(3.0, 0.6 * len(labels) + 2.0)
    figure = Figure(figsize=(size + 1.0, size))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(values, cmap="Blues")
    figure.colorbar(image, ax=axes)
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    threshold = values.max() / 2.0 if values.size else 0.0
    for row in range(values.shape[0]):
        for column in range(values.shape[1]):
            value = values[row, column]
            text = f"{value:.2f}" if normalize else f"{int(value)}"
            axes.text(
                column,
                row,
                text,
                ha="center",
                va="center",
                color="white" if value > threshold else "black",
                fontsize=8,
            )
    figure.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=100)
    return target


# --------------------------------------------------------------- translation


def _reference_streams(refs, count: int) -> list[list[str | None]]:
    """Per-hypothesis references → sacrebleu's reference streams (None = missing)."""
    if len(refs) != count:
        raise ValueError(
            f"`refs` must hold one entry per hypothesis ({count}). Received: {len(refs)}"
        )
    per_hyp = [[r] if isinstance(r, str) else list(r) for r in refs]
    if any(len(r) == 0 for r in per_hyp):
        raise ValueError("Every entry of `refs` needs at least one reference. Received: []")
    width = max((len(r) for r in per_hyp), default=1)
    return [[r[k] if k < len(r) else None for r in per_hyp] for k in range(width)]


def _check_hyps(hyps) -> list[str]:
    if isinstance(hyps, str):
        raise ValueError("`hyps` must be a list of strings, not one string.")
    return [str(h) for h in hyps]


def bleu(hyps: Sequence[str], refs: Sequence) -> float:
    """Corpus BLEU (sacrebleu defaults: 13a tokenization, 4-grams), 0..100."""
    from sacrebleu.metrics import BLEU

    hyps = _check_hyps(hyps)
    if not hyps:
        return 0.0
    return float(BLEU().corpus_score(hyps, _reference_streams(refs, len(hyps))).score)


def chrf(hyps: Sequence[str], refs: Sequence) -> float:
    """Corpus chrF (sacrebleu defaults: character 6-grams, beta 2), 0..100."""
    from sacrebleu.metrics import CHRF

    hyps = _check_hyps(hyps)
    if not hyps:
        return 0.0
    return float(CHRF().corpus_score(hyps, _reference_streams(refs, len(hyps))).score)


# --------------------------------------------------------------------- speech


def _error_rate(refs, hyps, unit: str) -> float:
    import jiwer

    refs = _check_hyps(refs)
    hyps = _check_hyps(hyps)
    if len(refs) != len(hyps):
        raise ValueError(
            f"`refs` and `hyps` must have the same length. Received: {len(refs)} and {len(hyps)}"
        )
    errors = 0
    reference_units = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        if unit == "word":
            ref_units, hyp_units = ref.split(), hyp.split()
        else:
            ref_units, hyp_units = list(ref.strip()), list(hyp.strip())
        if not ref_units:
            errors += len(hyp_units)  # all insertions
            continue
        if not hyp_units:
            errors += len(ref_units)  # all deletions
            reference_units += len(ref_units)
            continue
        if unit == "word":
            out = jiwer.process_words(" ".join(ref_units), " ".join(hyp_units))
        else:
            out = jiwer.process_characters(ref.strip(), hyp.strip())
        errors += out.substitutions + out.deletions + out.insertions
        reference_units += out.substitutions + out.deletions + out.hits
    return float(errors / max(reference_units, 1))


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus word error rate: (S + D + I) / reference words, as a fraction.

    Empty pairs are allowed: an empty hypothesis counts its reference words as
    deletions; an empty reference counts the hypothesis words as insertions
    (so an all-empty reference set gives the insertion count, divided by 1).
    """
    return _error_rate(refs, hyps, "word")


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus character error rate (spaces count as characters), as a fraction.
    Empty references and hypotheses are handled as in ``wer``."""
    return _error_rate(refs, hyps, "char")


# ------------------------------------------------------------------- captions

_CAPTION_WORD = re.compile(r"\w+(?:'\w+)?")
CIDER_SIGMA = 6.0


def caption_tokens(text: str) -> list[str]:
    """Caption tokenization for BLEU/CIDEr: lowercase words, punctuation dropped."""
    return _CAPTION_WORD.findall(str(text).lower())


def _ngrams(tokens: list[str], max_order: int) -> list[Counter]:
    return [
        Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        for n in range(1, max_order + 1)
    ]


def _tfidf(counts: list[Counter], log_docs: float, document_frequency: Counter):
    vectors, norms = [], []
    for order_counts in counts:
        vector = {
            gram: tf * (log_docs - math.log(max(1.0, document_frequency[gram])))
            for gram, tf in order_counts.items()
        }
        vectors.append(vector)
        norms.append(math.sqrt(sum(v * v for v in vector.values())))
    return vectors, norms


def cider_d(hyps: Sequence[str], refs_list: Sequence, max_order: int = 4) -> float:
    """CIDEr-D (Vedantam et al., 2015), the COCO-caption variant, ×10 scale.

    For each n = 1..4, hypothesis and references become TF-IDF vectors of
    n-gram counts, the IDF being ``log(#images) - log(df)`` with ``df`` the
    number of images whose references contain the n-gram (over this reference
    corpus). The n-gram similarity is ``sum_g min(h_g, r_g) * r_g / (|h| |r|)``
    (the clipped cosine of CIDEr-D) times ``exp(-(len_h - len_r)^2 / (2 * 6^2))``
    with lengths in words. Per image: the mean over n and over references, ×10;
    the corpus score is the mean over images. An identical caption with one
    reference scores 10 when every n-gram order exists and is specific to
    the image; n-grams present in every image's references get IDF 0.
    """
    hyps = _check_hyps(hyps)
    if len(refs_list) != len(hyps):
        raise ValueError(
            f"`refs_list` must hold one entry per hypothesis ({len(hyps)}). "
            f"Received: {len(refs_list)}"
        )
    if not hyps:
        return 0.0
    references = [[r] if isinstance(r, str) else list(r) for r in refs_list]
    ref_counts = [[_ngrams(caption_tokens(r), max_order) for r in refs] for refs in references]
    document_frequency: Counter = Counter()
    for image_counts in ref_counts:
        grams = set()
        for counts in image_counts:
            for order_counts in counts:
                grams.update(order_counts)
        document_frequency.update(grams)
    log_docs = math.log(float(len(hyps)))

    scores = []
    for hyp, image_counts, refs in zip(hyps, ref_counts, references, strict=True):
        hyp_tokens = caption_tokens(hyp)
        hyp_vectors, hyp_norms = _tfidf(
            _ngrams(hyp_tokens, max_order), log_docs, document_frequency
        )
        total = np.zeros((max_order,))
        for counts, ref in zip(image_counts, refs, strict=True):
            ref_vectors, ref_norms = _tfidf(counts, log_docs, document_frequency)
            delta = len(hyp_tokens) - len(caption_tokens(ref))
            gaussian = math.exp(-(delta**2) / (2.0 * CIDER_SIGMA**2))
            for n in range(max_order):
                if hyp_norms[n] == 0.0 or ref_norms[n] == 0.0:
                    continue
                overlap = sum(
                    min(value, ref_vectors[n].get(gram, 0.0)) * ref_vectors[n].get(gram, 0.0)
                    for gram, value in hyp_vectors[n].items()
                )
                total[n] += gaussian * overlap / (hyp_norms[n] * ref_norms[n])
        scores.append(10.0 * float(total.mean()) / max(len(refs), 1))
    return float(np.mean(scores))


def caption_scores(hyps: Sequence[str], refs_list: Sequence) -> dict:
    """BLEU-1..4 (corpus BLEU with all references, 0..1) and CIDEr-D.

    Captions are tokenized by ``caption_tokens`` (lowercase words, no
    punctuation) and BLEU-n is sacrebleu's corpus BLEU with
    ``max_ngram_order=n`` on those tokens (no further tokenization).
    """
    from sacrebleu.metrics import BLEU

    hyps = _check_hyps(hyps)
    if not hyps:
        return {"bleu1": 0.0, "bleu2": 0.0, "bleu3": 0.0, "bleu4": 0.0, "cider": 0.0}
    references = [[r] if isinstance(r, str) else list(r) for r in refs_list]
    hyp_text = [" ".join(caption_tokens(h)) for h in hyps]
    ref_text = [[" ".join(caption_tokens(r)) for r in refs] for refs in references]
    streams = _reference_streams(ref_text, len(hyps))
    scores = {}
    for order in range(1, 5):
        metric = BLEU(max_ngram_order=order, tokenize="none", effective_order=False)
        scores[f"bleu{order}"] = float(metric.corpus_score(hyp_text, streams).score) / 100.0
    scores["cider"] = cider_d(hyps, references)
    return scores
