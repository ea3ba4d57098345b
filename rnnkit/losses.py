"""Sequence losses (Keras 3).

``MaskedSparseCategoricalCrossentropy``
    Token cross-entropy that ignores positions where ``y_true == pad_id`` and
    averages over the real tokens of the whole batch (not over B*T), with
    optional label smoothing. Padding a batch with more pad positions does not
    change the loss.

``ctc_loss`` / ``CTCLoss``
    Connectionist temporal classification. Conventions:

    - ``labels``: int ``(B, L)``, right-padded; only the first
      ``label_lengths[b]`` entries of a row are used, whatever the padding
      value. Label ids must differ from ``blank_id``.
    - ``logits``: float ``(B, T, C)`` unnormalised scores (a log-softmax is
      applied inside); only the first ``logit_lengths[b]`` frames are used.
    - ``blank_id``: the blank class (default 0). With rnnkit tokenizers,
      id 0 is ``<pad>``, which is never a real label, so it doubles as the
      blank and label padding with 0 is natural.
    - Result: per-sample negative log-likelihood ``-log p(labels | logits)``,
      shape ``(B,)``.

    ``CTCLoss(blank_id=0, label_pad_id=0)`` is the ``model.compile`` form: the
    label length of a row is the number of entries ``!= label_pad_id``; the
    frame length comes from ``y_pred``'s Keras mask when it carries one,
    otherwise all ``T`` frames count. When frame lengths are known otherwise
    (e.g. from the audio length), call ``ctc_loss`` in a custom
    ``train_step``/``compute_loss`` with explicit lengths.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="rnnkit")
class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy over tokens, ignoring ``pad_id`` targets.

    Args:
        pad_id: target id whose positions do not count (default 0).
        label_smoothing: ``eps`` in ``[0, 1)``; the target distribution becomes
            ``(1 - eps) * one_hot + eps / V``.
        from_logits: whether ``y_pred`` holds logits (default) or probabilities.
        reduction: ``"sum_over_batch_size"``/``"mean"`` (default: the weighted
            mean over real tokens), ``"sum"`` (sum over real tokens), or
            ``"none"`` (per-token losses ``(B, T)``, 0 at pad positions).

    ``y_true`` int ``(B, T)``; ``y_pred`` ``(B, T, V)``; an optional
    ``sample_weight`` ``(B,)`` or ``(B, T)`` multiplies the token weights and the
    mean divides by the summed weights of the real tokens. The Keras mask of
    ``y_pred``, if any, is ignored: the padding of ``y_true`` decides.
    """

    def __init__(
        self,
        pad_id: int = 0,
        label_smoothing: float = 0.0,
        from_logits: bool = True,
        reduction: str = "sum_over_batch_size",
        name: str = "masked_sparse_categorical_crossentropy",
        dtype=None,
    ):
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(
                f"`label_smoothing` must be in [0, 1). Received: label_smoothing={label_smoothing}"
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.pad_id = int(pad_id)
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def _token_losses(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        y_true = ops.cast(ops.convert_to_tensor(y_true), "int32")
        if self.from_logits:
            log_probs = ops.log_softmax(y_pred, axis=-1)
        else:
            log_probs = ops.log(ops.clip(y_pred, 1e-7, 1.0))
        vocab = ops.shape(y_pred)[-1]
        targets = ops.one_hot(y_true, vocab, dtype=log_probs.dtype)
        if self.label_smoothing:
            eps = self.label_smoothing
            targets = targets * (1.0 - eps) + eps / ops.cast(vocab, log_probs.dtype)
        losses = -ops.sum(targets * log_probs, axis=-1)
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), losses.dtype)
        return losses * mask, mask

    def call(self, y_true, y_pred):
        losses, _ = self._token_losses(y_true, y_pred)
        return losses

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            losses, weights = self._token_losses(y_true, y_pred)
            if sample_weight is not None:
                sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), losses.dtype)
                if len(sample_weight.shape) == 1:
                    sample_weight = ops.expand_dims(sample_weight, -1)
                weights = weights * sample_weight
            if self.reduction in (None, "none"):
                return losses * weights
            total = ops.sum(losses * weights)
            if self.reduction == "sum":
                return total
            return ops.divide_no_nan(total, ops.sum(weights))

    def get_config(self):
        config = {
            "pad_id": self.pad_id,
            "label_smoothing": self.label_smoothing,
            "from_logits": self.from_logits,
        }
        return {**super().get_config(), **config}


def ctc_loss(labels, logits, label_lengths, logit_lengths, blank_id: int = 0):
    """Per-sample CTC negative log-likelihood, shape ``(B,)``.

    See the module docstring for the conventions. ``logits`` are unnormalised
    (a log-softmax is applied inside, so log-probabilities work too).
    """
    labels = ops.cast(ops.convert_to_tensor(labels), "int32")
    logits = ops.convert_to_tensor(logits)
    label_lengths = ops.cast(ops.reshape(ops.convert_to_tensor(label_lengths), (-1,)), "int32")
    logit_lengths = ops.cast(ops.reshape(ops.convert_to_tensor(logit_lengths), (-1,)), "int32")
    # Entries past a row's label length are replaced, so any padding value works.
    positions = ops.expand_dims(ops.arange(ops.shape(labels)[1], dtype="int32"), 0)
    valid = ops.less(positions, ops.expand_dims(label_lengths, -1))
    labels = ops.where(valid, labels, ops.zeros_like(labels))
    return ops.ctc_loss(labels, logits, label_lengths, logit_lengths, mask_index=int(blank_id))


@keras.saving.register_keras_serializable(package="rnnkit")
class CTCLoss(keras.losses.Loss):
    """CTC loss for ``model.compile``: ``y_true`` labels ``(B, L)`` padded with
    ``label_pad_id``, ``y_pred`` logits ``(B, T, C)``.

    Frame lengths come from ``y_pred``'s Keras mask when present, otherwise
    all ``T`` frames are used. Reduction over the batch follows Keras (default:
    mean of the per-sample negative log-likelihoods).
    """

    def __init__(
        self,
        blank_id: int = 0,
        label_pad_id: int = 0,
        reduction: str = "sum_over_batch_size",
        name: str = "ctc_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.blank_id = int(blank_id)
        self.label_pad_id = int(label_pad_id)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # Keras keeps a layer's output mask on the tensor (`_keras_mask`).
        frame_mask = getattr(y_pred, "_keras_mask", None)
        with keras.name_scope(self.name):
            y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
            losses = self._losses(y_true, y_pred, frame_mask)
            if sample_weight is not None:
                sample_weight = ops.reshape(
                    ops.cast(ops.convert_to_tensor(sample_weight), losses.dtype), (-1,)
                )
                losses = losses * sample_weight
            if self.reduction in (None, "none"):
                return losses
            total = ops.sum(losses)
            if self.reduction == "sum":
                return total
            if self.reduction == "mean_with_sample_weight" and sample_weight is not None:
                return ops.divide_no_nan(total, ops.sum(sample_weight))
            return total / ops.cast(ops.shape(losses)[0], losses.dtype)

    def _losses(self, y_true, y_pred, frame_mask=None):
        y_true = ops.cast(ops.convert_to_tensor(y_true), "int32")
        label_lengths = ops.sum(ops.cast(ops.not_equal(y_true, self.label_pad_id), "int32"), -1)
        if frame_mask is None:
            batch, frames = ops.shape(y_pred)[0], ops.shape(y_pred)[1]
            logit_lengths = ops.full((batch,), frames, dtype="int32")
        else:
            logit_lengths = ops.sum(ops.cast(frame_mask, "int32"), axis=-1)
        return ops.cast(
            ctc_loss(y_true, y_pred, label_lengths, logit_lengths, self.blank_id), y_pred.dtype
        )

    def call(self, y_true, y_pred):
        return self._losses(y_true, y_pred)

    def get_config(self):
        config = {"blank_id": self.blank_id, "label_pad_id": self.label_pad_id}
        return {**super().get_config(), **config}
