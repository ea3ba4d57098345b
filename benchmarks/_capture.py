"""Shared by the training benchmarks: catch the model an app trains, as the app builds it.

``capture(app, config)`` runs the app's own training (its data, its model, its compile
settings) until the first call of ``rnnkit.training.fit``, and returns what that call got
instead of training: nothing app-specific is repeated here.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

# Overrides that only make the default data smaller (the model and batch stay the defaults).
DATA_ONLY = {
    "sentiment": {"max_train_examples": 4000, "distill_teachers": 0},
    "translation": {"num_pairs": 4000},
    "captioning": {"train_size": 600, "validation_size": 64, "test_size": 64},
    "speech_to_text": {"train_size": 400, "val_size": 32, "test_size": 32},
}


class Captured(Exception):
    def __init__(self, model: Any, train_data: Any, kwargs: dict[str, Any]):
        super().__init__("captured")
        self.model, self.train_data, self.kwargs = model, train_data, kwargs


@dataclass
class Capture:
    model: Any
    train_data: Any
    kwargs: dict[str, Any]
    batch_size: int
    seconds_to_data: float


def app_config(app: Any) -> Any:
    config = app.config_class()
    names = set(getattr(config, "__dataclass_fields__", {}))
    return replace(config, **{k: v for k, v in DATA_ONLY.get(app.name, {}).items() if k in names})


def capture(app: Any, config: Any) -> Capture:
    from rnnkit.training import loop

    original = loop.fit

    def grab(model, train_data, validation_data=None, **kwargs):
        raise Captured(model, train_data, kwargs)

    loop.fit = grab
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            app.train(config, Path(run_dir) / "run")
    except Captured as caught:
        return Capture(caught.model, caught.train_data, caught.kwargs,
                       int(getattr(config, "batch_size", 0)), time.perf_counter() - started)
    finally:
        loop.fit = original
    raise RuntimeError(f"{app.name} finished without calling rnnkit.training.fit")


def repeated(train_data: Any) -> Any:
    """The batches again and again (a tf.data pipeline is repeated; others are as given)."""
    import tensorflow as tf

    return train_data.repeat() if isinstance(train_data, tf.data.Dataset) else train_data


def available_steps(train_data: Any, wanted: int) -> int:
    import tensorflow as tf

    if isinstance(train_data, tf.data.Dataset):
        return wanted
    return min(wanted, len(train_data))


class BatchTimer:
    """A Keras callback factory: seconds of the batches after the first ``skip``."""

    def __new__(cls, skip: int):
        import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.skip, self.seconds, self.batches = skip, 0.0, 0

            def on_train_batch_begin(self, batch, logs=None):
                self._start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                if batch >= self.skip:
                    self.seconds += time.perf_counter() - self._start
                    self.batches += 1

        return Timer()


def matmul_gflops(size: int = 1024, repeats: int = 20) -> float:
    """float32 matmul GFLOP/s of this machine through TensorFlow (median of ``repeats``)."""
    import numpy as np
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    tf.matmul(a, b).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.matmul(a, b).numpy()
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / float(np.median(times)) / 1e9
