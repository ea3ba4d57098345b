"""Vanishing gradients made visible: ‖∂L/∂h_t‖ per time step for rnn, lstm and gru.

The task needs a long memory: a sequence of Gaussian noise whose label is the
sign of its *first* value, read out from the *last* hidden state. The loss
therefore reaches ``h_1`` only through ``T - 1`` recurrent Jacobians. We unroll
the Keras cell (the same ``SimpleRNNCell``/``LSTMCell``/``GRUCell`` that the
kit's ``RecurrentBlock`` runs) step by step under a ``GradientTape`` and read
the gradient of the loss with respect to every intermediate ``h_t``: the total
derivative, through all later steps. Measured at initialisation and after a
short training run; plotted on a log scale.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

KINDS = ("rnn", "lstm", "gru")


@dataclass
class Diagnosis:
    kind: str
    norms_at_init: list[float]
    norms_after_training: list[float]
    accuracy_after_training: float

    @property
    def first_to_last_ratio(self) -> float:
        """‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ at initialisation (≪ 1 means vanishing)."""
        return self.norms_at_init[0] / max(self.norms_at_init[-1], 1e-30)


def _make_cell(kind: str, units: int):
    import keras

    cells = {"rnn": keras.layers.SimpleRNNCell, "lstm": keras.layers.LSTMCell,
             "gru": keras.layers.GRUCell}
    if kind not in cells:
        raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
    return cells[kind](units)


def make_task(batch_size: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noise sequences labelled by the sign of their first value."""
    x = rng.normal(size=(batch_size, length, 1)).astype("float32")
    y = (x[:, 0, 0] > 0).astype("float32")[:, None]
    return x, y


def diagnose_kind(kind: str, *, length: int = 100, units: int = 32, batch_size: int = 64,
                  train_steps: int = 150, seed: int = 0) -> Diagnosis:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    cell = _make_cell(kind, units)
    readout = keras.layers.Dense(1)
    cell.build((None, 1))
    readout.build((None, units))
    optimizer = keras.optimizers.Adam(1e-3, clipnorm=1.0)
    loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
    variables = cell.trainable_variables + readout.trainable_variables

    def unroll(x):
        batch = tf.shape(x)[0]
        states = [tf.zeros((batch, size)) for size in tf.nest.flatten(cell.state_size)]
        hidden = []
        for t in range(length):
            output, states = cell(x[:, t, :], states)
            states = tf.nest.flatten(states)
            hidden.append(output)
        return hidden

    @tf.function
    def norms(x, y):
        with tf.GradientTape() as tape:
            hidden = unroll(x)
            tape.watch(hidden)
            loss = loss_fn(y, readout(hidden[-1]))
        grads = tape.gradient(loss, hidden)
        return tf.stack([tf.reduce_mean(tf.norm(g, axis=-1)) for g in grads])

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, readout(unroll(x)[-1]))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    @tf.function
    def predict(x):
        return readout(unroll(x)[-1])

    rng = np.random.default_rng(seed)
    probe_x, probe_y = make_task(batch_size, length, rng)
    at_init = norms(probe_x, probe_y).numpy()
    for _ in range(train_steps):
        train_step(*make_task(batch_size, length, rng))
    after = norms(probe_x, probe_y).numpy()
    test_x, test_y = make_task(512, length, rng)
    accuracy = float(np.mean((predict(test_x).numpy() > 0) == (test_y > 0.5)))
    return Diagnosis(kind, [float(v) for v in at_init], [float(v) for v in after], accuracy)


def plot_diagnoses(diagnoses: list[Diagnosis], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for axis, attribute, title in ((axes[0], "norms_at_init", "at initialisation"),
                                   (axes[1], "norms_after_training", "after training")):
        for diagnosis in diagnoses:
            values = getattr(diagnosis, attribute)
            axis.semilogy(range(1, len(values) + 1), values, label=diagnosis.kind)
        axis.set_title(f"‖∂L/∂h_t‖ {title}")
        axis.set_xlabel("time step t (loss at the last step)")
        axis.grid(alpha=0.3, which="both")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def run_diagnosis(*, length: int = 100, units: int = 32, batch_size: int = 64,
                  train_steps: int = 150, seed: int = 0, out_dir: Path = Path("runs/diagnose"),
                  kinds: tuple[str, ...] = KINDS) -> list[Diagnosis]:
    if length < 2:
        raise ValueError(f"`length` must be >= 2. Received: length={length}")
    if units < 1:
        raise ValueError(f"`units` must be >= 1. Received: units={units}")
    out_dir.mkdir(parents=True, exist_ok=True)
    diagnoses = []
    for kind in kinds:
        print(f"diagnosing {kind} (T={length}, units={units}) ...", flush=True)
        diagnoses.append(diagnose_kind(kind, length=length, units=units, batch_size=batch_size,
                                       train_steps=train_steps, seed=seed))
    png = plot_diagnoses(diagnoses, out_dir / "gradient_norms.png")
    (out_dir / "gradient_norms.json").write_text(
        json.dumps([asdict(d) for d in diagnoses], indent=1) + "\n")
    print(f"\n| kind | ‖∂L/∂h_1‖ at init | ‖∂L/∂h_T‖ at init | ratio h_1/h_T | "
          f"accuracy after {train_steps} steps |")
    print("|---|---|---|---|---|")
    for d in diagnoses:
        print(f"| {d.kind} | {d.norms_at_init[0]:.2e} | {d.norms_at_init[-1]:.2e} | "
              f"{d.first_to_last_ratio:.2e} | {d.accuracy_after_training:.3f} |")
    print(f"\nplot: {png}")
    return diagnoses
