"""Distributed training: two MultiWorkerMirroredStrategy workers on loopback vs one process,
a killed worker resumed, and the strategy/TF_CONFIG/scaling rules.

The two-worker runs use the tiny app of ``distribute_worker.py`` (a masked LSTM regression,
64 training sequences, 3 epochs of 4 steps at global batch 16). Tolerance of the comparison
with one process training on the same global batches: 1e-5 absolute on every weight (the
weights are of order 1; float32 summation order is the only difference, measured ~2e-7).
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("distribute_worker.py")
PER_REPLICA_BATCH = 8
LEARNING_RATE = 0.01
TOLERANCE = 1e-5
TIMEOUT = 120


def _free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _environment(tf_config: dict | None = None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           "CUDA_VISIBLE_DEVICES": "", **extra}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _start(mode: str, run_dir: Path, batch: int, rate: float, env: dict[str, str],
           log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, str(run_dir), str(batch), str(rate)],
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT)


def _workers(run_dir: Path, logs: Path, extra: dict[int, dict[str, str]] | None = None):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return [_start("multi_worker", run_dir, PER_REPLICA_BATCH, LEARNING_RATE,
                   _environment({"cluster": cluster, "task": {"type": "worker", "index": i}},
                                **(extra or {}).get(i, {})),
                   logs / f"worker_{i}.log") for i in range(2)]


def _wait(processes: list[subprocess.Popen], logs: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    for process in processes:
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            pytest.fail(f"training processes ran over {TIMEOUT}s; logs in {logs}")
    failed = [p for p in processes if p.returncode != 0]
    if failed:
        text = "\n".join(log.read_text()[-3000:] for log in sorted(logs.glob("*.log")))
        pytest.fail(f"exit codes {[p.returncode for p in processes]}:\n{text}")


def _weights(directory: Path) -> list[np.ndarray]:
    with np.load(directory / "final_weights.npz") as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert [w.shape for w in a] == [w.shape for w in b]
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def _backed_up_epoch(metadata: Path) -> int:
    try:
        return int(json.loads(metadata.read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return -1


def _train_metrics(directory: Path) -> dict:
    return json.loads((directory / "metrics.json").read_text())["train"]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """Two workers and, at the same time, one process on the same global batch."""
    base = tmp_path_factory.mktemp("distribute")
    logs = base / "logs"
    logs.mkdir()
    processes = _workers(base / "run", logs)
    # One process, global batch = 8 x 2 replicas, learning rate scaled the same (linear: x2).
    processes.append(_start("none", base / "single", 2 * PER_REPLICA_BATCH,
                            2 * LEARNING_RATE, _environment(), logs / "single.log"))
    _wait(processes, logs)
    return base


@pytest.mark.slow
def test_two_loopback_workers_agree_and_match_one_process(two_workers):
    chief, other = two_workers / "run", two_workers / "run" / "workers" / "worker_1"
    facts = _train_metrics(chief)["distribute"]
    assert facts["num_replicas"] == 2 and facts["num_workers"] == 2 and facts["is_chief"]
    assert facts["global_batch_size"] == 2 * PER_REPLICA_BATCH
    assert facts["learning_rate"] == pytest.approx(2 * LEARNING_RATE)
    assert _train_metrics(other)["distribute"]["is_chief"] is False
    # The chief wrote the run; the other worker only its own folder.
    assert (chief / "checkpoints" / "best.weights.h5").is_file()
    assert (chief / "history.csv").is_file() and (chief / "curves.png").is_file()
    assert not (other / "curves.png").exists()
    assert not (chief / "backup").exists() and not (other / "backup").exists()  # finished

    losses = _train_metrics(chief)["loss"]
    assert len(losses) == 3 and losses[-1] < 0.5 * losses[0]
    assert _train_metrics(other)["loss"] == pytest.approx(losses, abs=1e-7)

    weights = _weights(chief)
    assert _max_diff(weights, _weights(other)) <= 1e-7  # all-reduced: the same update
    single = _weights(two_workers / "single")
    assert _max_diff(weights, single) <= TOLERANCE
    assert _train_metrics(two_workers / "single")["loss"] == pytest.approx(losses, abs=TOLERANCE)


@pytest.mark.slow
def test_a_killed_worker_resumes_with_its_peer_at_the_same_epoch(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    run = tmp_path / "run"
    # Worker 1 dies at the end of epoch 2, before backing it up; the chief then waits for its
    # peer (measured: in the collectives of its own epoch-2 saving, so it never gets ahead)
    # until it is stopped too.
    chief, worker = _workers(run, logs, extra={1: {"RNNKIT_TEST_EXIT_AFTER_EPOCH": "2"}})
    assert worker.wait(timeout=TIMEOUT) == 3
    chief_metadata = run / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 3  # give a chief that can back up epoch 2 the time to
    while time.monotonic() < deadline and _backed_up_epoch(chief_metadata) < 2:
        time.sleep(0.2)
    chief.kill()
    chief.wait(timeout=30)
    chief_epoch = _backed_up_epoch(chief_metadata)
    worker_epoch = _backed_up_epoch(run / "workers" / "worker_1" / "backup"
                                    / "training_metadata.json")
    assert worker_epoch == 1 and chief_epoch in (1, 2)  # 2: resolved by the epoch agreement

    # Both started again with the same command: they resume at epoch 1 and run epochs 2-3.
    processes = _workers(run, logs)
    _wait(processes, logs)
    first, second = _train_metrics(run), _train_metrics(run / "workers" / "worker_1")
    assert len(first["loss"]) == len(second["loss"]) == 2
    assert first["loss"] == pytest.approx(second["loss"], abs=1e-7)
    assert _max_diff(_weights(run), _weights(run / "workers" / "worker_1")) <= 1e-7
    with open(run / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    epochs = [row["epoch"] for row in rows]
    assert epochs[-2:] == ["1", "2"] and epochs[0] == "0" and len(epochs) in (3, 4)
    assert first["loss"][-1] < 0.5 * float(rows[0]["loss"])
    assert not (run / "backup").exists()


# ------------------------------------------------------------------------------ fast checks


def test_tf_config_errors_say_what_is_wrong():
    from rnnkit.errors import UserError
    from rnnkit.training.distribute import read_tf_config

    with pytest.raises(UserError, match="TF_CONFIG unset"):
        read_tf_config({})
    with pytest.raises(UserError, match="not valid JSON"):
        read_tf_config({"TF_CONFIG": "{cluster"})
    with pytest.raises(UserError, match="must hold a `cluster`"):
        read_tf_config({"TF_CONFIG": json.dumps({"task": {"type": "worker", "index": 0}})})
    bad_index = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}
    with pytest.raises(UserError, match="not in its cluster"):
        read_tf_config({"TF_CONFIG": json.dumps(bad_index)})
    no_port = {"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}
    with pytest.raises(UserError, match="host:port"):
        read_tf_config({"TF_CONFIG": json.dumps(no_port)})
    good = {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]},
            "task": {"type": "worker", "index": 1}}
    assert read_tf_config({"TF_CONFIG": json.dumps(good)}) == good


def test_chief_is_the_chief_task_or_worker_zero():
    from rnnkit.training.distribute import _is_chief

    workers = {"worker": ["a:1", "b:1"]}
    assert _is_chief({"cluster": workers, "task": {"type": "worker", "index": 0}})
    assert not _is_chief({"cluster": workers, "task": {"type": "worker", "index": 1}})
    with_chief = {"chief": ["c:1"], **workers}
    assert _is_chief({"cluster": with_chief, "task": {"type": "chief", "index": 0}})
    assert not _is_chief({"cluster": with_chief, "task": {"type": "worker", "index": 0}})


def test_scaling_rule_and_per_worker_run_directories(tmp_path):
    from dataclasses import dataclass

    from rnnkit.errors import UserError
    from rnnkit.training.distribute import Distribution, scale_config

    @dataclass
    class Config:
        batch_size: int = 32
        learning_rate: float = 1e-3

    four = Distribution("multi_worker", num_replicas=4, num_workers=2, task_index=1,
                        is_chief=False)
    scaled, facts = scale_config(Config(), four, "linear")
    assert (scaled.batch_size, scaled.learning_rate) == (128, pytest.approx(4e-3))
    assert facts["per_replica_batch_size"] == 32 and facts["global_batch_size"] == 128
    assert scale_config(Config(), four, "sqrt")[0].learning_rate == pytest.approx(2e-3)
    assert scale_config(Config(), four, "none")[0].learning_rate == pytest.approx(1e-3)
    assert scale_config(Config(), Distribution(), "linear")[0] == Config()  # one replica
    with pytest.raises(UserError, match="lr_scaling"):
        scale_config(Config(), four, "cubic")

    @dataclass
    class NoBatch:
        learning_rate: float = 1e-3

    with pytest.raises(UserError, match="`batch_size` field"):
        scale_config(NoBatch(), four)
    path = four.run_dir(tmp_path / "run")
    assert path == tmp_path / "run" / "workers" / "worker_1"
    assert four.run_dir(path) == path  # idempotent
    assert Distribution(is_chief=True).run_dir(tmp_path / "run") == tmp_path / "run"


def test_mirrored_on_this_host_trains_in_process(tmp_path):
    sys.path.insert(0, str(WORKER.parent))
    try:
        from distribute_worker import TASK, TinyConfig
    finally:
        sys.path.remove(str(WORKER.parent))
    metrics = TASK.train_distributed(TinyConfig(epochs=1), tmp_path / "run",
                                     distribute="mirrored")
    facts = metrics["distribute"]
    assert facts["mode"] == "mirrored" and facts["is_chief"]
    # Without GPUs MirroredStrategy holds one replica: the config is used as given.
    assert facts["num_replicas"] == 1 and "global_batch_size" not in facts
    assert json.loads((tmp_path / "run" / "run.json").read_text())["distribute"] == facts
    assert (tmp_path / "run" / "final_weights.npz").is_file()


def test_cli_distribute_errors(tmp_path, monkeypatch, capsys):
    from rnnkit.cli import main

    monkeypatch.delenv("TF_CONFIG", raising=False)
    apps = ("sentiment", "train", "--set", "epochs=1")
    assert main([*apps, "--distribute", "multi_worker", "--run-dir", str(tmp_path)]) == 2
    assert "TF_CONFIG" in capsys.readouterr().err
    assert main([*apps, "--distribute", "multi_worker"]) == 2
    assert "needs --run-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([*apps, "--distribute", "horovod"])
    assert exit_info.value.code == 2


def test_a_worker_one_epoch_ahead_goes_back_to_its_previous_backup(tmp_path, monkeypatch):
    import keras

    from rnnkit.training import distribute, loop

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
    backup = tmp_path / "backup"
    saver = keras.callbacks.BackupAndRestore(str(backup), double_checkpoint=True,
                                             delete_checkpoint=False)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[saver])
    after_one = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=2, verbose=0, callbacks=[saver])  # backup: epoch 2, .bkp: epoch 1
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 2

    monkeypatch.setattr(distribute, "cluster_min_epoch", lambda distribution, epoch: epoch - 1)
    fresh = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    fresh.compile(optimizer="sgd", loss="mse")
    restore = loop._ClusterBackupAndRestore(str(backup), distribute.Distribution())
    restore.set_model(fresh)
    restore.on_train_begin()
    assert fresh._initial_epoch == 1
    assert _max_diff(fresh.get_weights(), after_one) == 0.0

    # A peer that had not finished its first epoch: everyone starts from scratch.
    restore.on_train_begin()
    assert not (backup / "latest.weights.h5").exists()
    assert not (backup / "training_metadata.json").exists()
