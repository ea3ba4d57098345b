import csv
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from rnnkit.errors import UserError
from rnnkit.training import fit, make_optimizer, plot_curves, set_seed


def tiny_model():
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    model.compile(optimizer=make_optimizer(1e-2), loss="mse")
    return model


def tiny_data(n=32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5, 3)).astype("float32")
    return x, x.sum(axis=(1, 2))[:, None]


def test_optimizer_clips_by_default():
    assert make_optimizer(1e-3).clipnorm == 1.0
    assert make_optimizer(1e-3, clipnorm=None).clipnorm is None


def test_optimizer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="schedule.*Received: schedule='linear'"):
        make_optimizer(1e-3, schedule="linear")
    with pytest.raises(ValueError, match="learning_rate"):
        make_optimizer(0.0)
    with pytest.raises(ValueError, match="total_steps"):
        make_optimizer(1e-3, schedule="cosine")


def test_cosine_schedule_decays():
    optimizer = make_optimizer(1e-2, schedule="cosine", total_steps=100)
    schedule = optimizer._learning_rate
    assert float(schedule(0)) == pytest.approx(1e-2)
    assert float(schedule(100)) < 1e-3


def test_seed_makes_runs_reproducible(tmp_path):
    weights = []
    for index in range(2):
        set_seed(7)
        model = tiny_model()
        x, y = tiny_data()
        fit(model, x, None, y=y, batch_size=8, run_dir=tmp_path / str(index), epochs=2,
            patience=None, tensorboard=False, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_fit_writes_history_checkpoint_and_curves(tmp_path):
    import tensorflow as tf

    x, y = tiny_data()
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    history = fit(tiny_model(), data, data, run_dir=tmp_path, epochs=3, verbose=0)
    assert len(history["loss"]) == 3
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert (tmp_path / "checkpoints" / "best.weights.h5").is_file()
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert (tmp_path / "logs").is_dir()
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert float(rows[0]["epoch_seconds"]) > 0


def test_checkpoint_averaging_keeps_the_mean_of_the_last_epochs_if_better(tmp_path):
    import json

    import tensorflow as tf

    x, y = tiny_data()
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    set_seed(0)
    model = tiny_model()
    fit(model, data, data, run_dir=tmp_path, epochs=4, verbose=0, average_last_epochs=3)
    snapshots = sorted((tmp_path / "checkpoints").glob("epoch_*.weights.h5"))
    assert [p.name for p in snapshots] == [f"epoch_{e}.weights.h5" for e in (2, 3, 4)]
    info = json.loads((tmp_path / "weight_averaging.json").read_text())
    assert info["epochs"] == [2, 3, 4]
    expected = []
    for path in snapshots:
        probe = tiny_model()
        probe.load_weights(str(path))
        expected.append(probe.get_weights())
    mean = [np.mean(ws, axis=0) for ws in zip(*expected, strict=True)]
    got = model.get_weights()
    if info["kept"] == "averaged":
        assert info["averaged_val_loss"] < info["final_val_loss"]
        for a, b in zip(got, mean, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    else:
        assert info["averaged_val_loss"] >= info["final_val_loss"]
        for a, b in zip(got, expected[-1], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # Whichever was kept, the model's validation loss is the lower of the two.
    loss = model.evaluate(data, verbose=0)
    assert loss == pytest.approx(min(info["averaged_val_loss"], info["final_val_loss"]),
                                 rel=1e-4)
    with pytest.raises(ValueError, match="average_last_epochs"):
        fit(tiny_model(), data, None, run_dir=tmp_path / "b", epochs=1, average_last_epochs=2)


def test_empty_dataset_is_a_clear_error(tmp_path):
    import tensorflow as tf

    empty = tf.data.Dataset.from_tensor_slices((np.zeros((0, 5, 3), "float32"),
                                                np.zeros((0, 1), "float32"))).batch(4)
    with pytest.raises(UserError, match="train_data.*empty.*Received: 0"):
        fit(tiny_model(), empty, run_dir=tmp_path, epochs=1, verbose=0)


def test_nan_loss_stops_training(tmp_path):
    x, y = tiny_data()
    y = y.copy()
    y[0] = np.nan
    history = fit(tiny_model(), x, None, y=y, batch_size=8, run_dir=tmp_path, epochs=5,
                  verbose=0, tensorboard=False, patience=None)
    assert len(history["loss"]) == 1


RESUME_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import keras, numpy as np
    from rnnkit.training import fit, make_optimizer, set_seed

    run_dir, kill_at = sys.argv[1], int(sys.argv[2])
    set_seed(0)
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4), keras.layers.Dense(1)])
    model.compile(optimizer=make_optimizer(1e-2), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5, 3)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None]

    class Killer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            print("begin", epoch, flush=True)
            if epoch == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # a hard kill: no cleanup runs

    fit(model, x, None, y=y, batch_size=8, run_dir=run_dir, epochs=5, patience=None,
        tensorboard=False, verbose=0, callbacks=[Killer()])
    print("finished", flush=True)
""")


def test_training_killed_midway_resumes_from_last_checkpoint(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(RESUME_SCRIPT)
    run_dir = tmp_path / "run"
    first = subprocess.run([sys.executable, str(script), str(run_dir), "3"],
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == -9, first.stderr[-2000:]
    assert "begin 3" in first.stdout and "finished" not in first.stdout
    assert (run_dir / "backup").is_dir()
    second = subprocess.run([sys.executable, str(script), str(run_dir), "-1"],
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    # The restarted run begins at epoch 3, not 0: epochs 0-2 are not trained again.
    began = [int(line.split()[1]) for line in second.stdout.splitlines() if line.startswith("begin")]
    assert began == [3, 4]
    assert "finished" in second.stdout
    rows = list(csv.DictReader(open(run_dir / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]
    assert not (run_dir / "backup").exists()  # removed once training completed


def test_plot_curves_rejects_empty_history(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n")
    with pytest.raises(ValueError, match="No epochs"):
        plot_curves(path, tmp_path / "x.png")


def test_time_limit_stops_within_the_epoch_that_passes_it(tmp_path):
    from rnnkit.training import TimeLimit

    x, y = tiny_data(64)
    limit = TimeLimit(1e-9)  # passed by the first batch
    history = fit(tiny_model(), x, (x, y), y=y, batch_size=4, run_dir=tmp_path / "a", epochs=5,
                  tensorboard=False, verbose=0, callbacks=[limit])
    assert len(history["loss"]) == 1 and limit.reached_after_epoch == 1
    batches = []

    class Count(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append(batch)

    per_epoch = TimeLimit(1e-9, per_batch=False)
    fit(tiny_model(), x, (x, y), y=y, batch_size=4, run_dir=tmp_path / "b", epochs=5,
        tensorboard=False, verbose=0, callbacks=[per_epoch, Count()])
    assert len(batches) == 16 and per_epoch.reached_after_epoch == 1  # the whole first epoch
    history = fit(tiny_model(), x, (x, y), y=y, batch_size=4, run_dir=tmp_path / "c", epochs=3,
                  tensorboard=False, verbose=0, max_train_minutes=60)
    assert len(history["loss"]) == 3  # a budget not reached changes nothing
