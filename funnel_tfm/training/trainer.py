"""The task-agnostic training step and the multi-step host call.

    strategy = make_strategy("mirrored")
    with strategy.scope():
        task = build_pretraining_task(config, "electra", dtype="mixed_bfloat16")
        optimizer = AdamW(task.trainable_variables(), WarmupDecay(1e-4, 100, 1000))
        trainer = Trainer(strategy, task, optimizer, global_batch_size=64, seed=0)
    saver = TrainingCheckpoints(trainer, "model_dir", max_to_keep=5)     # training/checkpointing.py
    saver.restore_latest()                           # resumes weights, optimizer, step, loss scale, dropout RNG
    iterator = trainer.distribute(dataset_fn_starting_at(trainer.current_step()))
    means = trainer.run_steps(iterator, 100)         # 100 steps in one host call; metric means

Why a custom loop and not `Model.fit`: the ELECTRA step (two models, sampling between them), the optimizer
semantics of `optimization.py`, and exact resumption of the input position (fit's BackupAndRestore restores
the epoch and step but not the position inside a tf.data stream) all need it. The loop is the standard
`tf.distribute` one (`strategy.run` inside a `tf.function`, several steps per call, XLA for the model), so
one-device, Mirrored, MultiWorkerMirrored and TPU strategies run the same code.

What is compiled (with `jit_compile`): on one device (`OneDeviceStrategy`) the whole replica step, i.e.
forward, backward, micro-batch accumulation, loss unscaling, clipping, the non-finite skip, the AdamW update and
the loss-scale update, is ONE XLA program per step (`AdamW.apply_gradients_in_place`). With several replicas
the gradients are one XLA program per replica, the all-reduce runs between them (collectives cannot sit inside a
`jit_compile` function under Mirrored / MultiWorkerMirrored strategies), and the update is one compiled pass per
variable in cross-replica context; under TPUStrategy the TPU compiler takes the whole replica step anyway.
"""

from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf

from funnel_tfm.tasks.base import Task
from funnel_tfm.training.optimization import AdamW

class Trainer:
    """One training step per replica (forward, backward, optimizer) and the multi-step host call."""

    def __init__(self, strategy: tf.distribute.Strategy, task: Task, optimizer: AdamW,
                 global_batch_size: int, seed: int = 0, jit_compile: bool = True,
                 gradient_hook: Callable[[list[tf.Tensor], tf.Tensor], list[tf.Tensor]] | None = None,
                 accumulation_steps: int = 1, fused_update: bool | None = None) -> None:
        """Create under `strategy.scope()`. `gradient_hook(grads, step)` may rewrite this replica's gradients
        before the all-reduce (fault injection in tests, e.g. a NaN at one step). `accumulation_steps` > 1
        splits each replica's batch into that many micro-batches, one forward and backward pass each, and
        applies their summed gradients once: the update of the whole batch, in the memory of one micro-batch.
        `fused_update` (default: where the strategy allows it, i.e. one device) compiles gradients and update
        into one program; False keeps them apart (the multi-replica path), e.g. to compare the two."""
        if global_batch_size % strategy.num_replicas_in_sync:
            raise ValueError(f"global batch {global_batch_size} is not divisible by the "
                             f"{strategy.num_replicas_in_sync} replicas")
        if (global_batch_size // strategy.num_replicas_in_sync) % accumulation_steps:
            raise ValueError(f"the per-replica batch {global_batch_size // strategy.num_replicas_in_sync} is not "
                             f"divisible into {accumulation_steps} accumulation steps")
        self.accumulation_steps = accumulation_steps
        self.strategy, self.task, self.optimizer = strategy, task, optimizer
        self.global_batch_size, self.seed = global_batch_size, seed
        self.variables = list(optimizer.variables_)
        self.gradient_hook = gradient_hook
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        can_fuse = isinstance(strategy, tf.distribute.OneDeviceStrategy)
        if fused_update and not can_fuse:
            raise ValueError(f"fused_update needs OneDeviceStrategy; {type(strategy).__name__} updates mirrored "
                             "variables in cross-replica context")
        self.fused_update = can_fuse if fused_update is None else fused_update
        self._gradients = tf.function(self._compute_gradients, jit_compile=jit_compile)
        self._fused_step = tf.function(self._gradients_and_update, jit_compile=jit_compile)
        self._run = tf.function(self._run_steps)

    def current_step(self) -> int:
        return int(self.step.numpy())

    def distribute(self, dataset_fn: Callable) -> Any:
        """An iterator over per-replica batches from `fn(input_context) -> dataset` (per-replica batch size)."""
        return iter(self.strategy.distribute_datasets_from_function(dataset_fn))

    # ------------------------------------------------------------------------------ one step
    def _compute_gradients(self, batch, extras):
        loss_scale = self.optimizer.loss_scale
        with tf.GradientTape() as tape:
            loss, sums = self.task.loss(batch, extras, self.global_batch_size, training=True)
            scaled = loss * loss_scale.scale if loss_scale is not None else loss
        return tape.gradient(scaled, self.variables), sums

    def _accumulated_gradients(self, batch, extras, local_batch: int, gradients: Callable):
        """The gradients and metric sums of this replica's batch, computed `accumulation_steps` micro-batches at a
        time by `gradients(batch, extras)`. The loss of each is its sum over the global batch's count
        (`Task.loss`), so the gradients add up to the batch's exactly."""
        if self.accumulation_steps == 1:
            return gradients(batch, extras)
        size = local_batch // self.accumulation_steps
        grads, sums = None, None
        for index in range(self.accumulation_steps):
            part = slice(index * size, (index + 1) * size)
            micro = {key: value[part] for key, value in batch.items()}
            micro_extras = {key: value[part] if value.shape.rank and value.shape[0] == local_batch else value
                            for key, value in extras.items()}
            part_grads, part_sums = gradients(micro, micro_extras)
            # Dense sums: an embedding's gradient comes as IndexedSlices, which do not add up in place.
            part_grads = [None if g is None else tf.convert_to_tensor(g) for g in part_grads]
            if grads is None:
                grads, sums = part_grads, dict(part_sums)
            else:
                grads = [g if p is None else p if g is None else g + p for g, p in zip(grads, part_grads)]
                sums = {k: (sums[k][0] + n, sums[k][1] + d) for k, (n, d) in part_sums.items()}
        return grads, sums

    def _replica_step(self, batch: dict[str, tf.Tensor], step: tf.Tensor):
        context = tf.distribute.get_replica_context()
        local_batch = self.global_batch_size // context.num_replicas_in_sync
        # Static shapes for XLA (MultiWorkerMirroredStrategy's input loses the static batch dimension).
        batch = {key: tf.ensure_shape(value, [local_batch] + value.shape[1:]) for key, value in batch.items()}
        # Outside the compiled function: what the task needs from the replica context (seeds, all-reduces).
        extras = self.task.step_inputs(batch, step, self.seed, context.replica_id_in_sync_group,
                                       context.num_replicas_in_sync, local_batch)
        if self.fused_update:
            sums, stats = self._fused_step(batch, extras, step)
        else:
            grads, sums = self._accumulated_gradients(batch, extras, local_batch, self._gradients)
            if self.gradient_hook is not None:
                grads = self.gradient_hook(grads, step)
            stats = self.optimizer.apply_gradients(grads)
        share = 1.0 / context.num_replicas_in_sync  # replica-identical values: their sum over replicas is one
        sums = dict(sums)
        sums["grad_norm"] = (stats["grad_norm"] * share, tf.constant(share))
        sums["learning_rate"] = (stats["learning_rate"] * share, tf.constant(share))
        return sums

    def _gradients_and_update(self, batch, extras, step):
        """One device: the gradients (accumulated), the hook and the update, compiled together."""
        local_batch = self.global_batch_size
        grads, sums = self._accumulated_gradients(batch, extras, local_batch, self._compute_gradients)
        if self.gradient_hook is not None:
            grads = self.gradient_hook(grads, step)
        return sums, self.optimizer.apply_gradients_in_place(grads)

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
        return self.task.reduce_metrics(means)
