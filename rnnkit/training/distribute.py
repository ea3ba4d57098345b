"""Training on ``tf.distribute``: one GPU host (``mirrored``) or several hosts (``multi_worker``).

The kit never runs a loop of its own: Keras 3 on TensorFlow trains under a strategy's scope,
and this module only sets that up the same way for every app.

* ``none``: no strategy (the default strategy of TensorFlow), exactly the plain training path.
* ``mirrored``: ``tf.distribute.MirroredStrategy`` over every GPU of this host (one replica on
  the CPU when there is none).
* ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` across the hosts named in the
  standard ``TF_CONFIG`` environment variable (``{"cluster": {"worker": ["host:port", ...]},
  "task": {"type": "worker", "index": i}}``); every host runs the same command.

Batch size and learning rate (stated once, recorded in ``run.json``):

* the config's ``batch_size`` is the batch of **one replica**; the batches the app builds hold
  ``global_batch_size = batch_size * num_replicas_in_sync`` examples, which the strategy splits
  into one slice per replica (so an epoch takes ``num_replicas`` times fewer steps);
* the config's ``learning_rate`` is the rate for one replica; under ``linear`` scaling (the
  default, Goyal et al. 2017: "when the minibatch size is multiplied by k, multiply the
  learning rate by k") the run uses ``learning_rate * num_replicas``; ``sqrt`` multiplies by
  ``sqrt(num_replicas)`` (the usual choice for Adam-type optimizers at large k); ``none`` keeps
  it. With one replica nothing changes.

Data: every worker builds the full pipeline with the same seed; ``tf.data`` auto-sharding with
``AutoShardPolicy.DATA`` then gives each worker its slice of every global batch (the apps read
their data into memory, so there are no files to shard by).

Files: only the chief (task ``chief``, or worker 0 when the cluster has no chief) writes the run
directory the user asked for. Every other worker writes into ``<run_dir>/workers/<type>_<index>``
(its own checkpoints and ``BackupAndRestore`` state), so the same ``--run-dir`` works on shared
and on host-local storage. A worker that is killed stops the whole cluster (the collectives
fail); starting every worker again with the same command resumes from the last finished epoch,
each from its own backup, all at the same epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnkit.errors import UserError

STRATEGIES = ("none", "mirrored", "multi_worker")
LR_SCALING = ("linear", "sqrt", "none")
WORKERS_DIR = "workers"


@dataclass
class Distribution:
    """The strategy a run trains under and the facts derived from it."""

    mode: str = "none"
    strategy: Any = None
    num_replicas: int = 1
    num_workers: int = 1
    task_type: str = "worker"
    task_index: int = 0
    is_chief: bool = True

    @property
    def worker_name(self) -> str:
        return f"{self.task_type}_{self.task_index}"

    def scope(self) -> contextlib.AbstractContextManager:
        """The strategy's scope (models and optimizers must be built inside it)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def global_batch_size(self, per_replica_batch_size: int) -> int:
        return int(per_replica_batch_size) * self.num_replicas

    def scaled_learning_rate(self, learning_rate: float, rule: str = "linear") -> float:
        if rule not in LR_SCALING:
            raise UserError(f"`lr_scaling` must be one of {list(LR_SCALING)}. Received: {rule!r}")
        factor = {"linear": self.num_replicas, "sqrt": math.sqrt(self.num_replicas),
                  "none": 1}[rule]
        return float(learning_rate) * factor

    def run_dir(self, run_dir: str | os.PathLike) -> Path:
        """Where this process writes: the run directory on the chief, its own folder under
        ``<run_dir>/workers/`` elsewhere (idempotent)."""
        path = Path(run_dir)
        if self.is_chief or (path.parent.name == WORKERS_DIR and path.name == self.worker_name):
            return path
        return path / WORKERS_DIR / self.worker_name

    def info(self) -> dict[str, Any]:
        return {"mode": self.mode, "num_replicas": self.num_replicas,
                "num_workers": self.num_workers, "task": self.worker_name,
                "is_chief": self.is_chief}


def read_tf_config(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The parsed ``TF_CONFIG``; a UserError saying what is wrong with it."""
    text = (environ if environ is not None else os.environ).get("TF_CONFIG")
    if not text:
        raise UserError("--distribute multi_worker needs the TF_CONFIG environment variable, "
                        'e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                        '"task": {"type": "worker", "index": 0}}. Received: TF_CONFIG unset')
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"TF_CONFIG is not valid JSON ({error.msg}). Received: {text!r}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster or not isinstance(task, dict):
        raise UserError("TF_CONFIG must hold a `cluster` (task type -> list of host:port) and a "
                        f"`task` ({{'type', 'index'}}). Received: {text!r}")
    task_type, index = task.get("type"), task.get("index", 0)
    hosts = cluster.get(task_type)
    if not isinstance(hosts, list) or not isinstance(index, int) or not 0 <= index < len(hosts):
        raise UserError(f"TF_CONFIG's task {task!r} is not in its cluster "
                        f"{ {k: len(v) for k, v in cluster.items() if isinstance(v, list)} }")
    for kind, members in cluster.items():
        for address in members if isinstance(members, list) else [members]:
            host, _, port = str(address).rpartition(":")
            if not host or not port.isdigit():
                raise UserError(f"TF_CONFIG cluster addresses must be host:port. Received: "
                                f"{kind}={address!r}")
    return config


def _is_chief(config: dict[str, Any]) -> bool:
    task_type, index = config["task"]["type"], config["task"].get("index", 0)
    if "chief" in config["cluster"]:
        return task_type == "chief"
    return task_type == "worker" and index == 0


def make_distribution(mode: str = "none") -> Distribution:
    """Create the strategy of ``mode`` (one of :data:`STRATEGIES`).

    ``multi_worker`` must be created before TensorFlow runs any op in this process (it sets up
    the collective-ops server), so call this first thing in a worker."""
    if mode not in STRATEGIES:
        raise UserError(f"`distribute` must be one of {list(STRATEGIES)}. Received: {mode!r}")
    if mode == "none":
        return Distribution()
    if mode == "multi_worker":
        config = read_tf_config()  # validate before TensorFlow is imported
    import tensorflow as tf

    if mode == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
        return Distribution(mode, strategy, num_replicas=strategy.num_replicas_in_sync)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    cluster = config["cluster"]
    return Distribution(
        mode, strategy, num_replicas=strategy.num_replicas_in_sync,
        num_workers=sum(len(cluster.get(kind, [])) for kind in ("chief", "worker")),
        task_type=config["task"]["type"], task_index=int(config["task"].get("index", 0)),
        is_chief=_is_chief(config))


def active() -> Distribution:
    """The distribution of the strategy whose scope is open (the plain one when none is)."""
    import tensorflow as tf

    if not tf.distribute.has_strategy():
        return Distribution()
    strategy = tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        config = read_tf_config()
        cluster = config["cluster"]
        return Distribution(
            "multi_worker", strategy, num_replicas=strategy.num_replicas_in_sync,
            num_workers=sum(len(cluster.get(kind, [])) for kind in ("chief", "worker")),
            task_type=config["task"]["type"], task_index=int(config["task"].get("index", 0)),
            is_chief=_is_chief(config))
    return Distribution("mirrored", strategy, num_replicas=strategy.num_replicas_in_sync)


def scale_config(config: Any, distribution: Distribution,
                 lr_scaling: str = "linear") -> tuple[Any, dict[str, Any]]:
    """The config the run trains with (global batch, scaled learning rate) and the facts."""
    facts: dict[str, Any] = {**distribution.info(), "lr_scaling": lr_scaling}
    distribution.scaled_learning_rate(1.0, lr_scaling)  # validates the rule
    if distribution.num_replicas == 1:
        return config, facts
    names = {f.name for f in dataclasses.fields(config)} if dataclasses.is_dataclass(config) \
        else set()
    if "batch_size" not in names:
        raise UserError(f"--distribute {distribution.mode} with {distribution.num_replicas} "
                        "replicas needs a config with a `batch_size` field (the per-replica "
                        f"batch). Received: {type(config).__name__}")
    changes: dict[str, Any] = {"batch_size": distribution.global_batch_size(config.batch_size)}
    facts.update(per_replica_batch_size=config.batch_size,
                 global_batch_size=changes["batch_size"])
    if "learning_rate" in names:
        changes["learning_rate"] = distribution.scaled_learning_rate(config.learning_rate,
                                                                     lr_scaling)
        facts.update(base_learning_rate=config.learning_rate,
                     learning_rate=changes["learning_rate"])
    return dataclasses.replace(config, **changes), facts


def cluster_min_epoch(distribution: Distribution, epoch: int) -> int:
    """The smallest of the workers' ``epoch`` values, by one all-reduce.

    Workers' backups differ by at most one epoch (the end of an epoch is a synchronisation
    point: a worker can save its backup while a peer dies before saving). The mean over the
    replicas is then ``m + k/N`` with ``m`` the minimum and ``k < N`` workers one ahead, or
    ``m`` itself, so its floor is the minimum."""
    if distribution.strategy is None or distribution.num_workers == 1:
        return epoch
    import tensorflow as tf

    strategy = distribution.strategy

    @tf.function
    def mean_epoch():
        values = strategy.run(lambda: tf.constant(float(epoch), tf.float64))
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, values, axis=None)

    return int(math.floor(float(mean_epoch()) + 1e-9))


def shard_by_data(dataset: Any) -> Any:
    """``dataset`` with ``AutoShardPolicy.DATA`` (each worker keeps its slice of each batch)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


@contextlib.contextmanager
def distributed(mode: str = "none", config: Any = None, run_dir: str | os.PathLike | None = None,
                lr_scaling: str = "linear") -> Iterator[tuple[Distribution, Any, Path | None,
                                                          dict[str, Any]]]:
    """Inside the strategy's scope: ``(distribution, scaled config, this process's run
    directory, facts)``. ``multi_worker`` needs ``run_dir`` (every worker the same)."""
    if mode == "multi_worker" and run_dir is None:
        raise UserError("--distribute multi_worker needs --run-dir (the same on every worker): "
                        "each worker would otherwise pick its own time-stamped directory")
    distribution = make_distribution(mode)
    scaled, facts = scale_config(config, distribution, lr_scaling) if config is not None \
        else (None, distribution.info())
    path = distribution.run_dir(run_dir) if run_dir is not None else None
    with distribution.scope():
        yield distribution, scaled, path, facts


# ---------------------------------------------------------------------------------------------
# Keras 3 under MultiWorkerMirroredStrategy (keras-team/keras#20585, open upstream)


def _build_without_peeking(model: Any, train_data: Any) -> None:
    """Work around keras-team/keras#20585 (Keras 3 ``fit`` under MultiWorkerMirroredStrategy).

    Before training, Keras 3.15's TensorFlow trainer peeks at one distributed batch and
    all-reduces it (``strategy.reduce("MEAN", batch)``) only to learn its structure for a
    symbolic build. Under MultiWorkerMirroredStrategy that reduce fails on the ``PerReplica``
    batch, and the peek opens an extra iterator, which moves a seeded ``shuffle`` on to its
    next order (so training would no longer match a single process on the same data). This
    model builds from the ``tf.data`` element spec instead (no batch read), or from this
    worker's local slice of the peeked batch for other inputs: an instance attribute, nothing
    global changes."""
    import keras
    import tensorflow as tf

    strategy = model.distribute_strategy
    spec_batch = train_data.element_spec if isinstance(train_data, tf.data.Dataset) else None

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def build(iterator=None, data_batch=None):
        if data_batch is None and spec_batch is not None:
            data_batch = spec_batch
        elif data_batch is None and iterator is not None:
            for _, _, batches in iterator:
                data_batch = keras.tree.map_structure(local, next(batches))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = build


def _mean_over_replicas(original):
    """``reduce_per_replica`` whose ``"mean"`` across workers is the element-wise mean.

    Keras 3.15 reduces each step's logs (scalars) with ``strategy.reduce("MEAN", v, axis=0)``
    under MultiWorkerMirroredStrategy, which fails on a scalar (``Invalid reduction dimension
    0``); the mean over replicas is ``axis=None``. Every other case is left to Keras."""
    import keras
    import tensorflow as tf

    def reduce_per_replica(values, strategy, reduction="auto"):
        multi_worker = (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
                        and strategy.extended._in_multi_worker_mode())
        if multi_worker and reduction in ("auto", "mean"):
            return keras.tree.map_structure(
                lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica.rnnkit_fixed = True
    return reduce_per_replica


def fix_keras_multi_worker(model: Any, train_data: Any) -> None:
    """Make ``model.fit`` work under MultiWorkerMirroredStrategy with Keras 3.15 (see above)."""
    from keras.src.backend.tensorflow import trainer

    if not getattr(trainer.reduce_per_replica, "rnnkit_fixed", False):
        trainer.reduce_per_replica = _mean_over_replicas(trainer.reduce_per_replica)
    if hasattr(model, "_maybe_symbolic_build"):
        _build_without_peeking(model, train_data)
