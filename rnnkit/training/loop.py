"""Training loop helpers.

``fit`` wraps ``model.fit`` with the callbacks every rnnkit run wants:

* ``BackupAndRestore`` in ``run_dir/backup``: a run killed mid-way and started
  again with the same ``run_dir`` continues from its last finished epoch;
* ``ModelCheckpoint`` of the best weights, ``EarlyStopping`` (restoring them),
  ``TerminateOnNaN``;
* ``CSVLogger`` (``history.csv``, appended on resume) and ``TensorBoard`` logs;
* optional checkpoint averaging of the last epochs (``average_last_epochs``);
* a PNG of the training curves (``curves.png``) at the end.

Gradient clipping is on by default in :func:`make_optimizer` (``clipnorm=1.0``):
exploding gradients are the classic failure of recurrent networks.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from rnnkit.errors import UserError

SCHEDULES = ("constant", "cosine")


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; optionally make TF ops deterministic."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def make_optimizer(
    learning_rate: float = 1e-3,
    *,
    name: str = "adam",
    clipnorm: float | None = 1.0,
    schedule: str = "constant",
    total_steps: int | None = None,
    warmup_steps: int = 0,
    weight_decay: float | None = None,
) -> keras.optimizers.Optimizer:
    """An optimizer with gradient clipping (on by default) and an optional LR schedule."""
    if learning_rate <= 0:
        raise ValueError(f"`learning_rate` must be > 0. Received: learning_rate={learning_rate}")
    if schedule not in SCHEDULES:
        raise ValueError(f"`schedule` must be one of {SCHEDULES}. Received: schedule={schedule!r}")
    rate: Any = learning_rate
    if schedule == "cosine":
        if not total_steps or total_steps <= 0:
            raise ValueError(
                f"`total_steps` must be > 0 with schedule='cosine'. Received: total_steps={total_steps}"
            )
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=learning_rate if warmup_steps == 0 else 0.0,
            decay_steps=max(1, total_steps - warmup_steps),
            alpha=0.05,
            warmup_target=learning_rate if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    kwargs: dict[str, Any] = {"learning_rate": rate}
    if clipnorm:
        kwargs["clipnorm"] = clipnorm
    optimizers = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
                  "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    if name not in optimizers:
        raise ValueError(f"`name` must be one of {sorted(optimizers)}. Received: name={name!r}")
    if weight_decay is not None:
        kwargs["weight_decay"] = weight_decay
    return optimizers[name](**kwargs)


def empty_dataset_error(name: str = "train_data") -> UserError:
    return UserError(f"`{name}` is empty: no examples to train on. Received: 0 batches")


def _check_not_empty(dataset: Any, name: str) -> None:
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - tensorflow is a training dependency
        return
    if isinstance(dataset, tf.data.Dataset):
        cardinality = int(dataset.cardinality())
        if cardinality == 0:
            raise empty_dataset_error(name)
    elif isinstance(dataset, (list, tuple)) and dataset and hasattr(dataset[0], "__len__"):
        if len(dataset[0]) == 0:
            raise empty_dataset_error(name)
    elif hasattr(dataset, "__len__") and len(dataset) == 0:
        raise empty_dataset_error(name)


class _Timer(keras.callbacks.Callback):
    """Adds wall-clock seconds per epoch to the logs (shown in history.csv)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


class TimeLimit(keras.callbacks.Callback):
    """Stops training once ``minutes`` of wall-clock time have passed since ``fit`` began:
    after the batch that passes it (``per_batch``; the epoch then ends early, validation
    still runs) or after the epoch that passes it."""

    def __init__(self, minutes: float, per_batch: bool = True):
        super().__init__()
        self.limit, self.per_batch = 60.0 * float(minutes), per_batch
        self.started = time.perf_counter()
        self.reached_after_epoch: int | None = None

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def _check(self, epoch: int) -> None:
        if time.perf_counter() - self.started >= self.limit and self.reached_after_epoch is None:
            self.reached_after_epoch = epoch + 1
            print(f"time limit of {self.limit / 60:.1f} min reached in epoch {epoch + 1}")
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.per_batch:
            self._check(self.epoch)

    def on_epoch_end(self, epoch, logs=None):
        self._check(epoch)


def _snapshot_epoch(path: Path) -> int:
    """The epoch number of a ``epoch_<k>.weights.h5`` snapshot."""
    return int(path.name.split("_")[1].split(".")[0])


class _EpochSnapshots(keras.callbacks.Callback):
    """Keeps the weights of the last `count` finished epochs as files (they survive a kill)."""

    def __init__(self, directory: Path, count: int):
        super().__init__()
        self.directory = directory
        self.count = count

    def paths(self) -> list[Path]:
        found = sorted(self.directory.glob("epoch_*.weights.h5"), key=_snapshot_epoch)
        return found[-self.count:]

    def on_epoch_end(self, epoch, logs=None):
        self.model.save_weights(str(self.directory / f"epoch_{epoch + 1}.weights.h5"))
        keep = set(self.paths())
        for path in self.directory.glob("epoch_*.weights.h5"):
            if path not in keep:
                path.unlink()


def _average_snapshots(model: keras.Model, paths: list[Path], validation_data: Any,
                       run_dir: Path) -> dict[str, Any]:
    """Replace the model's weights by the mean of the snapshots when that lowers the
    validation loss (float weights only; counters and seeds stay as trained)."""
    final = model.get_weights()
    snapshots = []
    for path in paths:
        model.load_weights(str(path))
        snapshots.append(model.get_weights())
    averaged = [np.mean([s[i] for s in snapshots], axis=0).astype(w.dtype)
                if np.issubdtype(w.dtype, np.floating) else w for i, w in enumerate(final)]
    info: dict[str, Any] = {"epochs": [_snapshot_epoch(p) for p in paths]}
    model.set_weights(final)
    final_loss = float(np.asarray(model.evaluate(validation_data, verbose=0, return_dict=True)
                                  ["loss"]))
    model.set_weights(averaged)
    averaged_loss = float(np.asarray(model.evaluate(validation_data, verbose=0,
                                                    return_dict=True)["loss"]))
    info.update(final_val_loss=final_loss, averaged_val_loss=averaged_loss,
                kept="averaged" if averaged_loss < final_loss else "final")
    if info["kept"] == "final":
        model.set_weights(final)
    (run_dir / "weight_averaging.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


class _ClusterBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose workers resume at the same epoch.

    Each worker keeps its own backup (its own folder) plus the previous epoch's
    (``double_checkpoint``). Before restoring, the workers agree on the smallest backed-up
    epoch; a worker one epoch ahead (it saved just before a peer died) goes back to its
    previous backup, so every worker restarts from the same weights and the same step."""

    def __init__(self, backup_dir: str, distribution: Any):
        super().__init__(backup_dir, double_checkpoint=True, delete_checkpoint=True)
        self.distribution = distribution

    @staticmethod
    def _epoch(path: str) -> int:
        if not os.path.exists(path):
            return 0
        return int(json.loads(Path(path).read_text())["epoch"])

    def on_train_begin(self, logs=None):
        from rnnkit.training.distribute import cluster_min_epoch

        own = self._epoch(self._training_metadata_path)
        agreed = cluster_min_epoch(self.distribution, own)
        if agreed != own:
            previous = self._epoch(self._prev_training_metadata_path)
            if agreed == 0:
                for path in (self._weights_path, self._training_metadata_path):
                    if os.path.exists(path):
                        os.remove(path)
            elif previous == agreed and os.path.exists(self._prev_weights_path):
                os.replace(self._prev_weights_path, self._weights_path)
                os.replace(self._prev_training_metadata_path, self._training_metadata_path)
            else:
                raise RuntimeError(
                    f"This worker's backup is at epoch {own} (previous {previous}) and cannot "
                    f"resume at epoch {agreed}, where the other workers are. Delete every "
                    f"worker's backup folder to start again: {self.backup_dir}")
        super().on_train_begin(logs)


def fit(
    model: keras.Model,
    train_data: Any,
    validation_data: Any = None,
    *,
    run_dir: str | Path,
    epochs: int,
    monitor: str = "val_loss",
    mode: str = "auto",
    patience: int | None = 3,
    tensorboard: bool = True,
    verbose: Any = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
    steps_per_epoch: int | None = None,
    y: Any = None,
    batch_size: int | None = None,
    average_last_epochs: int = 0,
    max_train_minutes: float = 0.0,
) -> dict[str, list[float]]:
    """``model.fit`` with checkpoints, resume after a kill, early stopping and logs.

    The model must be compiled. Calling ``fit`` again with the same ``run_dir``
    after the process died resumes from the last finished epoch (weights,
    optimizer state and epoch counter come from ``run_dir/backup``).
    Returns the history of this call (on resume: only the epochs run now;
    ``history.csv`` holds them all).

    ``average_last_epochs=N`` (N >= 2, needs validation data): at the end, the model gets the
    mean of the weights of its last N epochs (checkpoint averaging) if that has a lower
    validation loss than the final weights; ``run_dir/weight_averaging.json`` says which.
    ``max_train_minutes`` > 0 stops after the batch that passes that wall-clock budget
    (:class:`TimeLimit`).
    """
    if average_last_epochs and (average_last_epochs < 2 or validation_data is None):
        raise ValueError("`average_last_epochs` must be 0 or >= 2, with validation data. "
                         f"Received: average_last_epochs={average_last_epochs}, "
                         f"validation_data={'given' if validation_data is not None else None}")
    if epochs < 1:
        raise ValueError(f"`epochs` must be >= 1. Received: epochs={epochs}")
    _check_not_empty(train_data, "train_data")
    if validation_data is not None:
        _check_not_empty(validation_data, "validation_data")
    elif monitor.startswith("val_"):
        monitor = monitor[len("val_"):]
    import tensorflow as tf

    from rnnkit.training import distribute

    distribution = distribute.active()
    # Under a strategy the batches are global batches: the strategy splits each one into a
    # slice per replica; across workers auto-sharding by DATA picks each worker's slices.
    if distribution.mode == "multi_worker":
        if isinstance(train_data, tf.data.Dataset):
            train_data = distribute.shard_by_data(train_data)
        if isinstance(validation_data, tf.data.Dataset):
            validation_data = distribute.shard_by_data(validation_data)
    # Only the chief writes the run directory; other workers write their own folder in it.
    run_dir = distribution.run_dir(run_dir)
    if not distribution.is_chief:
        tensorboard = False
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    history_csv = run_dir / "history.csv"
    backup_dir = run_dir / "backup"
    resuming = backup_dir.exists()
    all_callbacks: list[keras.callbacks.Callback] = [
        _Timer(),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.ModelCheckpoint(
            str(run_dir / "checkpoints" / "best.weights.h5"), monitor=monitor, mode=mode,
            save_best_only=True, save_weights_only=True,
        ),
        keras.callbacks.CSVLogger(str(history_csv), append=resuming),
    ]
    if patience is not None:
        all_callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=patience, restore_best_weights=True,
        ))
    if tensorboard:
        all_callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False))
    snapshots = None
    if average_last_epochs:
        snapshots = _EpochSnapshots(run_dir / "checkpoints", average_last_epochs)
        all_callbacks.append(snapshots)
    if max_train_minutes > 0:
        all_callbacks.append(TimeLimit(max_train_minutes))
    all_callbacks.extend(callbacks)
    # BackupAndRestore last, so it restores before the others look at the epoch.
    if distribution.mode == "multi_worker":
        all_callbacks.append(_ClusterBackupAndRestore(str(backup_dir), distribution))
    else:
        all_callbacks.append(keras.callbacks.BackupAndRestore(str(backup_dir),
                                                              delete_checkpoint=True))
    if distribution.mode == "multi_worker":
        distribute.fix_keras_multi_worker(model, train_data)
    history = model.fit(
        train_data, y, validation_data=validation_data, epochs=epochs, callbacks=all_callbacks,
        verbose=verbose, steps_per_epoch=steps_per_epoch, batch_size=batch_size,
        # A tf.data pipeline shuffles itself; arrays are shuffled by Keras.
        shuffle=not isinstance(train_data, tf.data.Dataset),
    )
    snapshot_paths = snapshots.paths() if snapshots is not None else []
    if len(snapshot_paths) >= 2:
        _average_snapshots(model, snapshot_paths, validation_data, run_dir)
    if history_csv.exists() and distribution.is_chief:
        from rnnkit.training.plots import plot_curves

        try:
            plot_curves(history_csv, run_dir / "curves.png")
        except ValueError:
            pass  # nothing to plot (a run stopped before its first epoch ended)
    return {key: [float(v) for v in values] for key, values in history.history.items()}
