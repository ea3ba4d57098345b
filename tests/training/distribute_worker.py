"""A tiny rnnkit app trained by one process of the distribution tests.

``python tests/training/distribute_worker.py MODE RUN_DIR BATCH_SIZE LEARNING_RATE [EPOCHS]``
trains it through ``Task.train(..., distribute=MODE)`` (``TF_CONFIG`` from the environment for
``multi_worker``) and leaves ``final_weights.npz`` and ``metrics.json`` in the directory this
process writes (the run directory on the chief, ``workers/<task>`` elsewhere). With
``RNNKIT_TEST_EXIT_AFTER_EPOCH=k`` the process dies (exit code 3) at the end of epoch ``k``,
before its backup of that epoch is written: a killed worker.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rnnkit.task import RunDir, Task  # noqa: E402

EXAMPLES = 96
STEPS = 12
FEATURES = 3


@dataclass
class TinyConfig:
    batch_size: int = 8
    learning_rate: float = 0.01
    epochs: int = 3
    units: int = 8
    seed: int = 7


def sequences(seed: int = 0):
    """Sequences whose target is the mean of their first feature over the real steps."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(EXAMPLES, STEPS, FEATURES)).astype("float32")
    lengths = rng.integers(4, STEPS + 1, size=EXAMPLES)
    for row, length in enumerate(lengths):
        x[row, length:] = 0.0  # right padding, masked by the model
    y = np.array([x[row, :length, 0].mean() for row, length in enumerate(lengths)], "float32")
    return x, y[:, None]


class TinyTask(Task):
    name = "tiny_sequence"
    description = "masked LSTM regression (distribution tests)"
    config_class = TinyConfig
    runtime_module = "rnnkit.runtime"

    def fit(self, config: TinyConfig, run: RunDir, data: str | None) -> dict:
        import keras
        import numpy as np
        import tensorflow as tf

        from rnnkit.layers import RecurrentBlock
        from rnnkit.training import fit, make_optimizer, set_seed

        set_seed(config.seed)
        x, y = sequences()
        train = (tf.data.Dataset.from_tensor_slices((x[:64], y[:64]))
                 .shuffle(64, seed=config.seed).batch(config.batch_size))
        validation = tf.data.Dataset.from_tensor_slices((x[64:], y[64:])).batch(config.batch_size)
        inputs = keras.Input((STEPS, FEATURES))
        masked = keras.layers.Masking()(inputs)
        hidden = RecurrentBlock("lstm", config.units)(masked)
        model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
        model.compile(optimizer=make_optimizer(config.learning_rate), loss="mse")
        callbacks = []
        exit_after = os.environ.get("RNNKIT_TEST_EXIT_AFTER_EPOCH")
        if exit_after:
            class Die(keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None):
                    if epoch + 1 == int(exit_after):
                        os._exit(3)

            callbacks.append(Die())
        history = fit(model, train, validation, run_dir=run.path, epochs=config.epochs,
                      patience=None, tensorboard=False, verbose=0, callbacks=callbacks)
        np.savez(run.path / "final_weights.npz", *model.get_weights())
        return {"loss": history["loss"], "val_loss": history["val_loss"]}


TASK = TinyTask()

if __name__ == "__main__":
    mode, run_dir, batch_size, learning_rate = sys.argv[1:5]
    epochs = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    TASK.train_distributed(TinyConfig(batch_size=int(batch_size),
                                      learning_rate=float(learning_rate), epochs=epochs),
                           run_dir, distribute=mode)
