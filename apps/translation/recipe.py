"""Defaults that follow the data: model and vocabulary sizes from the number of training
pairs, early stopping on validation BLEU, and beam width / length penalty chosen on
validation.

Sizing (:data:`SIZE_RULES`): a size field left at 0 in the config (``source_vocab_size``,
``target_vocab_size``, ``embedding_dim``, ``encoder_units``, ``decoder_units``,
``attention_units``) and ``dropout_rate < 0`` take the values of the first rule whose
``max_pairs`` is at least the number of training pairs. A value set in the config wins.

Validation BLEU (:class:`ValidationBleu`): after every epoch the first ``valid_bleu_pairs``
validation pairs are translated greedily with the encoder and decoder-step models being
trained, and BLEU against their references is logged as ``val_bleu`` (with the training
minutes so far, for a BLEU-vs-minutes curve). With ``early_stopping="bleu"`` the weights of the
best epoch are kept, and training stops after ``patience`` epochs without a gain.

Decoding (:func:`choose_decoding`): greedy and beam search for every width in
:data:`BEAM_WIDTHS` × length penalty in :data:`LENGTH_PENALTIES` on those validation pairs;
the best BLEU wins (ties: the cheaper setting), and becomes the run's ``beam_width`` /
``length_penalty`` (the export's defaults).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Any

import numpy as np

# (max training pairs, BPE vocabulary per side, embedding, encoder units per direction,
#  decoder and attention units, dropout). Budget: the largest rule is ~3 M parameters, ~4 min
# per epoch of 200k pairs on one core; the middle rule is the shipped model's (0.70 M).
SIZE_RULES: tuple[tuple[float, int, int, int, int, float], ...] = (
    # 1000, not 600: on 10k corpus pairs a 600-piece BPE cuts sentences longer (21.9 vs 19.2
    # source pieces on average) and drops 10.6 % of them as longer than max_source_length
    # (1000: 6.8 %).
    (20_000, 1000, 64, 128, 128, 0.2),
    (120_000, 1000, 64, 128, 128, 0.1),
    (float("inf"), 4000, 128, 256, 256, 0.1),
)
SIZED_FIELDS = ("source_vocab_size", "target_vocab_size", "embedding_dim", "encoder_units",
                "decoder_units", "attention_units")
BEAM_WIDTHS = (1, 2, 4, 8)
LENGTH_PENALTIES = (0.0, 0.6, 1.0)


def size_rule(num_pairs: int) -> dict[str, Any]:
    """The sizes :data:`SIZE_RULES` gives for ``num_pairs`` training pairs."""
    for max_pairs, vocab, embedding, encoder, decoder, dropout in SIZE_RULES:
        if num_pairs <= max_pairs:
            return {"source_vocab_size": vocab, "target_vocab_size": vocab,
                    "embedding_dim": embedding, "encoder_units": encoder,
                    "decoder_units": decoder, "attention_units": decoder,
                    "dropout_rate": dropout}
    raise AssertionError("the last rule covers every size")


def resolve_sizes(config, num_pairs: int):
    """``(config, sized)``: ``config`` with its automatic fields (0, or a negative dropout)
    filled in for ``num_pairs`` training pairs, and the fields that were filled."""
    rule = size_rule(num_pairs)
    sized = {name: rule[name] for name in SIZED_FIELDS if not getattr(config, name)}
    if config.dropout_rate < 0:
        sized["dropout_rate"] = rule["dropout_rate"]
    return dataclasses.replace(config, **sized), sized


def corpus_bleu(hyps: list[str], refs: list[str]) -> float:
    from rnnkit.metrics import bleu

    return round(float(bleu(hyps, refs)), 2)


def _keras_callback_base():
    import keras

    return keras.callbacks.Callback


class ValidationBleu(_keras_callback_base()):
    """Greedy BLEU on validation pairs after each epoch (``logs["val_bleu"]``); with
    ``early_stopping`` it keeps the best epoch's weights and stops after ``patience`` epochs
    without a gain. ``curve`` holds ``(training minutes, epoch, val_bleu)`` per epoch."""

    def __init__(self, translator, pairs: list[tuple[str, str]], patience: int | None,
                 early_stopping: bool = True):
        super().__init__()
        self.translator, self.pairs = translator, pairs
        self.patience, self.early_stopping = patience, early_stopping
        self.best, self.best_epoch, self.best_weights = -1.0, -1, None
        self.curve: list[tuple[float, int, float]] = []
        self.eval_seconds = 0.0
        self.started = time.perf_counter()
        self.wait = 0

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def score(self) -> float:
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hyps = [r["translation"] for r in
                    self.translator.translate([s for s, _ in self.pairs], "greedy")]
        self.eval_seconds += time.perf_counter() - started
        return corpus_bleu(hyps, [t for _, t in self.pairs])

    def on_epoch_end(self, epoch, logs=None):
        value = self.score()
        minutes = (time.perf_counter() - self.started - self.eval_seconds) / 60.0
        self.curve.append((round(minutes, 2), epoch + 1, value))
        if logs is not None:
            logs["val_bleu"] = value
        print(f"epoch {epoch + 1}: val_bleu {value:.2f} ({minutes:.1f} training minutes)",
              flush=True)
        if value > self.best:
            self.best, self.best_epoch, self.wait = value, epoch + 1, 0
            if self.early_stopping:
                self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.early_stopping and self.patience is not None and self.wait >= self.patience:
                print(f"early stopping: no val_bleu gain for {self.wait} epochs "
                      f"(best {self.best:.2f} after epoch {self.best_epoch})", flush=True)
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.early_stopping and self.best_weights is not None and \
                self.curve and self.curve[-1][1] != self.best_epoch:
            self.model.set_weights(self.best_weights)
            print(f"restored the weights of epoch {self.best_epoch} "
                  f"(val_bleu {self.best:.2f})", flush=True)


class TimeBudgetCosine(_keras_callback_base()):
    """Cosine learning-rate decay over the time budget: before every batch the rate is
    ``lr * (alpha + (1 - alpha) * (1 + cos(pi * p)) / 2)`` with ``p`` the larger of the share
    of steps done (of ``total_steps``) and the share of ``minutes`` passed, after a linear
    warm-up of ``warmup_steps``. A step-based cosine over ``epochs`` never decays when the
    time budget ends training first (on a busy machine, or on a large corpus); this one reaches
    its floor when the budget does. The optimizer must have a plain (non-schedule) rate."""

    def __init__(self, learning_rate: float, total_steps: int, minutes: float,
                 warmup_steps: int = 0, alpha: float = 0.05):
        super().__init__()
        self.base, self.total = float(learning_rate), max(int(total_steps), 1)
        self.budget = 60.0 * float(minutes)
        self.warmup, self.alpha = int(warmup_steps), float(alpha)
        self.step, self.started = 0, time.perf_counter()

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def rate(self, step: int, elapsed: float) -> float:
        if step < self.warmup:
            return self.base * (step + 1) / self.warmup
        progress = step / self.total
        if self.budget > 0:
            progress = max(progress, elapsed / self.budget)
        progress = min(progress, 1.0)
        return self.base * (self.alpha + (1 - self.alpha) * 0.5 * (1 + np.cos(np.pi * progress)))

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = self.rate(self.step,
                                                       time.perf_counter() - self.started)
        self.step += 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.rate(self.step, time.perf_counter() -
                                                    self.started))


def choose_decoding(translator, pairs: list[tuple[str, str]],
                    widths: tuple[int, ...] = BEAM_WIDTHS,
                    penalties: tuple[float, ...] = LENGTH_PENALTIES) -> dict[str, Any]:
    """Validation BLEU of greedy search and of every beam width × length penalty; the best
    (ties: smaller width, then smaller penalty) as ``beam_width`` / ``length_penalty``."""
    sources, refs = [s for s, _ in pairs], [t for _, t in pairs]
    scores: dict[str, float] = {}
    best: tuple[float, int, float] | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for width in widths:
            for penalty in (penalties if width > 1 else (0.0,)):
                if width == 1:
                    results = translator.translate(sources, "greedy")
                else:
                    results = translator.translate(sources, "beam", beam_width=width,
                                                   length_penalty=penalty)
                value = corpus_bleu([r["translation"] for r in results], refs)
                scores[f"{width}/{penalty}"] = value
                # Strictly better only: ties keep the earlier (cheaper) setting.
                if best is None or value > best[0]:
                    best = (value, width, penalty)
    assert best is not None
    return {"beam_width": best[1], "length_penalty": best[2], "bleu": best[0],
            "pairs": len(pairs), "scores": scores}


def validation_pairs(pairs: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    """At most ``limit`` validation pairs, spread over the split (every k-th)."""
    if limit <= 0 or len(pairs) <= limit:
        return list(pairs)
    index = np.linspace(0, len(pairs) - 1, limit).round().astype(int)
    return [pairs[i] for i in sorted(set(index.tolist()))]
