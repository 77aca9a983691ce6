"""What a training objective is to the Trainer: the `Task` interface, and the helpers every task shares.

A task builds its model from a backbone plus a head, computes its loss for a global batch, returns metric
sums, and reduces them on the host. The Trainer (`funnel_tfm.training.trainer`) knows nothing else about it.

    task = MaskedLMTask.build(config, dtype="float32")
    extras = task.step_inputs(batch, step, seed, replica_id, num_replicas, local_batch)   # outside XLA
    loss, sums = task.loss(batch, extras, global_batch_size=64, training=True)          # inside XLA
    means = task.reduce_metrics({name: numerator / denominator ...})                   # on the host

`loss` is this replica's share of the global-batch loss (its sum over local examples divided by global
counts), so summing gradients over replicas gives the gradient of the global-batch loss whatever the number
of replicas. `sums` maps each metric to (numerator, denominator) sums over the local examples, which the
training loop adds up over replicas and steps before dividing.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from funnel_tfm.checkpoints.loading import FunnelCheckpoint

SUMMARY_SCOPE = "model/sequnece_summary/"


class Task:
    """Base class: subclasses set `name` and implement `checkpoint_view`, `parts` and `loss`."""

    name = "task"

    def parts(self) -> dict[str, Any]:
        """The Keras objects that hold this task's weights, by checkpoint key."""
        raise NotImplementedError

    def checkpoint_view(self) -> FunnelCheckpoint:
        """The weights under the original's names (export, init from checkpoints, layer ids)."""
        raise NotImplementedError

    def trainable_variables(self) -> dict[str, Any]:
        """Full original name -> variable, in a fixed order, of what this task trains."""
        view = self.checkpoint_view()
        unused = set(view.report.missing)
        return {name: variable for name, variable in view.named_variables().items()
                if variable.trainable and name not in unused}

    def trackables(self) -> dict[str, Any]:
        """What a training checkpoint holds (every weight and the dropout seed states)."""
        parts = {key: value for key, value in self.parts().items() if value is not None}
        # Keras does not expose the dropout seed states to tf.train.Checkpoint; without them a resumed run would
        # draw other dropout masks than an uninterrupted one.
        rng = tf.Module(name="dropout_rng")
        seen, rng.states = set(), []
        for part in parts.values():
            for variable in part.non_trainable_variables:
                if "seed_generator" in variable.path and id(variable) not in seen:
                    seen.add(id(variable))
                    rng.states.append(variable.value)
        # Keras keeps layers held in lists (the encoder and decoder layers) out of TensorFlow's object graph, so
        # `parts` alone reach only some weights: every weight is also listed under its original name.
        weights = tf.Module(name="weights")
        weights.by_name = {name: variable.value for name, variable in self.checkpoint_view().named_variables().items()}
        return {**parts, "dropout_rng": rng, "weights": weights}

    def step_inputs(self, batch: dict[str, tf.Tensor], step: tf.Tensor, seed: int, replica_id: tf.Tensor,
                    num_replicas: int, local_batch: int) -> dict[str, tf.Tensor]:
        """Per-replica values the loss needs that come from outside the compiled step (seeds, cross-replica
        counts); runs in the replica context, so it may all-reduce. None by default."""
        return {}

    def loss(self, batch: dict[str, tf.Tensor], extras: dict[str, tf.Tensor], global_batch_size: int,
             training: bool) -> tuple[tf.Tensor, dict[str, tuple[tf.Tensor, tf.Tensor]]]:
        raise NotImplementedError

    def reduce_metrics(self, means: dict[str, float]) -> dict[str, float]:
        """Host-side metrics from the summed means (e.g. a total of weighted losses). Identity by default."""
        return means


def hidden_states(backbone: Any, inputs: dict[str, Any], training: bool) -> Any:
    """The backbone's full-length output: the decoder's when it has one, else the last encoder layer (an FNet
    backbone has no decoder)."""
    out = backbone(inputs, training=training)
    return out["decoder_output"] if getattr(backbone, "use_decoder", False) else out["sequence_output"]


def lm_cross_entropy(head: Any, hidden: tf.Tensor, batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """(per-slot cross-entropy [B, K], logits [B, K, V]) at the target slots.

    The slots are gathered by `target_mapping`, a one-hot einsum that XLA and TPUs handle without a gather; a
    padding slot is a zero vector, as in the original.
    """
    mapping = tf.cast(batch["target_mapping"], hidden.dtype)
    at_targets = tf.einsum("bkl,bld->bkd", mapping, hidden)
    logits = head(at_targets)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=batch["target"], logits=logits)
    return ce, logits


def argmax_last_axis(values: tf.Tensor) -> tf.Tensor:
    """`tf.argmax(values, -1)` as int32 (the first index of the maximum), computed as a max, then the smallest
    index holding it: two plain reductions that XLA vectorises on CPU, where its single variadic (value, index)
    reduction over a 30k-word vocabulary ran 2x (4x with the Gumbel noise fused in) slower."""
    largest = tf.reduce_max(values, axis=-1, keepdims=True)
    size = values.shape[-1]
    positions = tf.range(size, dtype=tf.int32)
    return tf.reduce_min(tf.where(tf.equal(values, largest), positions, size), axis=-1)


def accuracy_sums(logits: tf.Tensor, batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """(correct target slots, counted target slots), padding slots not counted."""
    weights = tf.cast(batch["target_weights"], tf.float32)
    correct = tf.cast(tf.equal(argmax_last_axis(logits), batch["target"]), tf.float32)
    return tf.reduce_sum(correct * weights), tf.reduce_sum(weights)
