"""Distribution strategy, the training step and loop, and crash-safe checkpoints.

    strategy = make_strategy("mirrored")
    with strategy.scope():
        parts = PretrainingParts.build(config, "electra", dtype="mixed_bfloat16")
        optimizer = AdamW(parts.trainable_variables(), WarmupDecay(1e-4, 100, 1000))
        trainer = Trainer(strategy, parts, optimizer, global_batch_size=64, seed=0)
    checkpoints = TrainingCheckpoints(trainer, "model_dir", max_to_keep=5)
    checkpoints.restore_latest()                     # resumes weights, optimizer, step, loss scale, dropout RNG
    iterator = trainer.distribute(dataset_fn_starting_at(trainer.current_step()))
    means = trainer.run_steps(iterator, 100)         # 100 steps in one host call; metric means

Why a custom loop and not `Model.fit`: the ELECTRA step (two models, sampling between them), the optimizer
semantics of `optimization.py`, and exact resumption of the input position (fit's BackupAndRestore restores
the epoch and step but not the position inside a tf.data stream) all need it. The loop is the standard
`tf.distribute` one (`strategy.run` inside a `tf.function`, several steps per call, XLA for the model), so
one-device, Mirrored, MultiWorkerMirrored and TPU strategies run the same code.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Callable

import tensorflow as tf

from funnel_tfm.errors import CheckpointError
from funnel_tfm.optimization import AdamW, DynamicLossScale
from funnel_tfm.pretraining import PretrainingParts, with_total_loss

STRATEGIES = ("one_device", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def make_strategy(name: str, tpu: str | None = None) -> tf.distribute.Strategy:
    """`one_device` (first GPU, else CPU), `mirrored` (all local GPUs, or all logical CPUs), `multi_worker`
    (TF_CONFIG describes the cluster), `tpu` (`tpu` = name / grpc address, or "local" on a TPU VM)."""
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable (cluster and task)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "local")
        if tpu != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"strategy {name!r}; expected one of {', '.join(STRATEGIES)}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True where checkpoints and summaries are written (worker 0 / the only worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type or isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and "chief" not in resolver.cluster_spec().as_dict())


def worker_id(strategy: tf.distribute.Strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    return int(resolver.task_id or 0) if resolver is not None and resolver.task_type else 0


class Trainer:
    """One training step per replica (forward, backward, optimizer) and the multi-step host call."""

    def __init__(self, strategy: tf.distribute.Strategy, parts: PretrainingParts, optimizer: AdamW,
                 global_batch_size: int, seed: int = 0, jit_compile: bool = True,
                 gradient_hook: Callable[[list[tf.Tensor], tf.Tensor], list[tf.Tensor]] | None = None) -> None:
        """Create under `strategy.scope()`. `gradient_hook(grads, step)` may rewrite this replica's gradients
        before the all-reduce (fault injection in tests, e.g. a NaN at one step)."""
        if global_batch_size % strategy.num_replicas_in_sync:
            raise ValueError(f"global batch {global_batch_size} is not divisible by the "
                             f"{strategy.num_replicas_in_sync} replicas")
        self.strategy, self.parts, self.optimizer = strategy, parts, optimizer
        self.global_batch_size, self.seed = global_batch_size, seed
        self.variables = list(optimizer.variables_)
        self.gradient_hook = gradient_hook
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self._gradients = tf.function(self._compute_gradients, jit_compile=jit_compile)
        self._run = tf.function(self._run_steps)

    def current_step(self) -> int:
        return int(self.step.numpy())

    def distribute(self, dataset_fn: Callable) -> Any:
        """An iterator over per-replica batches from `fn(input_context) -> dataset` (per-replica batch size)."""
        return iter(self.strategy.distribute_datasets_from_function(dataset_fn))

    # ------------------------------------------------------------------------------ one step
    def _compute_gradients(self, batch, noise_seeds, global_real_tokens):
        loss_scale = self.optimizer.loss_scale
        with tf.GradientTape() as tape:
            loss, sums = self.parts.loss(batch, self.global_batch_size, training=True, noise_seeds=noise_seeds,
                                         global_real_tokens=global_real_tokens)
            scaled = loss * loss_scale.scale if loss_scale is not None else loss
        return tape.gradient(scaled, self.variables), sums

    def _replica_step(self, batch: dict[str, tf.Tensor], step: tf.Tensor):
        context = tf.distribute.get_replica_context()
        local_batch = self.global_batch_size // context.num_replicas_in_sync
        # Static shapes for XLA (MultiWorkerMirroredStrategy's input loses the static batch dimension).
        batch = {key: tf.ensure_shape(value, [local_batch] + value.shape[1:]) for key, value in batch.items()}
        first = tf.cast(context.replica_id_in_sync_group, tf.int64) * local_batch
        example = first + tf.range(local_batch, dtype=tf.int64)  # index in the global batch
        noise_seeds = tf.stack([tf.fill([local_batch], self.seed * 1_000_003 + step), example], axis=1)
        real = tf.reduce_sum(tf.cast(batch["padding_mask"], tf.float32))
        global_real = context.all_reduce(tf.distribute.ReduceOp.SUM, real) if context.num_replicas_in_sync > 1 \
            else real
        grads, sums = self._gradients(batch, noise_seeds, global_real)
        if self.gradient_hook is not None:
            grads = self.gradient_hook(grads, step)
        stats = self.optimizer.apply_gradients(grads)
        share = 1.0 / context.num_replicas_in_sync  # replica-identical values: their sum over replicas is one
        sums = dict(sums)
        sums["grad_norm"] = (stats["grad_norm"] * share, tf.constant(share))
        sums["learning_rate"] = (stats["learning_rate"] * share, tf.constant(share))
        return sums

    def _one_step(self, iterator):
        sums = self.strategy.run(self._replica_step, args=(next(iterator), self.step.read_value()))
        self.step.assign_add(1)
        return {k: (self.strategy.reduce("SUM", n, axis=None), self.strategy.reduce("SUM", d, axis=None))
                for k, (n, d) in sums.items()}

    def _run_steps(self, iterator, num_steps: tf.Tensor):
        totals = self._one_step(iterator)  # the first step outside the loop fixes the structure of the sums
        for _ in tf.range(num_steps - 1):
            sums = self._one_step(iterator)
            totals = {k: (totals[k][0] + n, totals[k][1] + d) for k, (n, d) in sums.items()}
        return totals

    def run_steps(self, iterator, num_steps: int) -> dict[str, float]:
        """Runs `num_steps` steps in one host call; returns the metric means over them (and the counters)."""
        totals = self._run(iterator, tf.constant(num_steps, tf.int64))
        means = {k: float(n) / max(float(d), 1e-12) for k, (n, d) in totals.items()}
        means["skipped_steps"] = float(self.optimizer.skipped.numpy())
        if self.optimizer.loss_scale is not None:
            means["loss_scale"] = float(self.optimizer.loss_scale.scale.numpy())
        return with_total_loss(means)


class TrainingCheckpoints:
    """`ckpt-<step>` checkpoints of everything a resumed run needs, the last `max_to_keep` kept.

    Crash safety: TensorFlow writes a checkpoint's files under temporary names and renames them, and the
    `checkpoint` index file that names the latest one is replaced atomically after the files are complete; a
    crash during a save therefore leaves the previous checkpoint as the latest, intact. Under
    MultiWorkerMirroredStrategy every worker takes part in the save; only the chief's copy is kept.
    """

    def __init__(self, trainer: Trainer, directory: str, max_to_keep: int = 5, extra: dict | None = None) -> None:
        objects = {"step": trainer.step, "optimizer": trainer.optimizer, **trainer.parts.trackables(),
                   **(extra or {})}
        if trainer.optimizer.loss_scale is not None:
            objects["loss_scale"] = trainer.optimizer.loss_scale
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.directory = directory
        self.chief = is_chief(trainer.strategy)
        target = directory if self.chief else os.path.join(directory, f".worker-{worker_id(trainer.strategy)}-tmp")
        self.manager = tf.train.CheckpointManager(self.checkpoint, target, max_to_keep=max_to_keep,
                                                  step_counter=trainer.step)
        self.trainer = trainer

    def latest(self) -> str | None:
        return tf.train.latest_checkpoint(self.directory)

    def restore_latest(self) -> str | None:
        """Restores the latest checkpoint of `directory` (None when there is none); a checkpoint written for
        another model or objective is a CheckpointError that names the first mismatching variable."""
        path = self.latest()
        if path is None:
            return None
        try:
            self.checkpoint.read(path).assert_existing_objects_matched()
        except (ValueError, AssertionError, tf.errors.InvalidArgumentError) as error:
            raise CheckpointError(f"{path}: this checkpoint does not fit the model being trained (another config "
                                  f"or --loss_type?); use another --model_dir or the same settings. "
                                  f"TensorFlow says: {_first_line(error)}") from None
        return path

    def save(self) -> str:
        path = self.manager.save(checkpoint_number=self.trainer.current_step())
        if not self.chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)
        return path


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else type(error).__name__


def write_scalars(writer, step: int, values: dict[str, float], group: str = "train") -> None:
    """TensorBoard scalars `<group>/<name>` without the tensorboard package (TensorFlow 2.21 no longer pulls it
    in): the summary op with the `scalars` plugin metadata that TensorBoard's own `scalar()` writes."""
    from tensorflow.core.framework import summary_pb2
    metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    with writer.as_default():
        for name, value in values.items():
            tf.summary.write(f"{group}/{name}", tf.constant(value, tf.float32), step=step, metadata=metadata)
    writer.flush()
