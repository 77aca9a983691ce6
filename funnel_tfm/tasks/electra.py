"""ELECTRA pretraining, as the original's (docs/original_semantics.md P4–P5).

    task = ElectraTask.build(config, width_shrink=0.25, disc_coeff=50.0)
    task.model.summary()                 # a Keras model: generator + discriminator sharing the `input` layer
    extras = task.step_inputs(batch, step, seed, replica_id, num_replicas, local_batch)
    loss, sums = task.loss(batch, extras, global_batch_size=64, training=True)

A generator (same architecture, width × `width_shrink`, sharing the discriminator's `input` embedding) is
trained with the MLM loss on the masked input (padding-only attention mask); replacements are drawn by
Gumbel-max from its logits, without gradient; the discriminator classifies every real token as original (1) or
replaced (0); total = generator loss + `disc_coeff` × discriminator loss (mean over the real tokens of the
global batch). The Gumbel noise of an example is a stateless function of (seed, step, global example index),
so the samples do not depend on how the batch is split across replicas.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from funnel_tfm.checkpoints.loading import FunnelCheckpoint, from_model
from funnel_tfm.config import ModelConfig
from funnel_tfm.layers import head_factories
from funnel_tfm.layers.dropout import hashed_uniform, seed_keys
from funnel_tfm.modeling import FunnelTFM
from funnel_tfm.tasks.base import (SUMMARY_SCOPE, Task, accuracy_sums, argmax_last_axis, hidden_states,
                                   lm_cross_entropy)


def gumbel_max_sample(logits: tf.Tensor, example_seeds: tf.Tensor) -> tf.Tensor:
    """argmax(logits + g), g = -log(-log(u + 1e-9) + 1e-9), u ~ U[0,1) per example from `example_seeds` [B, 2].

    The uniforms are the hashed counters of layers/dropout.py, one stream per example: a Philox draw per example
    (`stateless_uniform` in a `map_fn`) compiled into a slow per-element key derivation under XLA on CPU."""
    first, second = seed_keys(example_seeds)
    key_shape = [-1] + [1] * (logits.shape.rank - 1)
    uniform = hashed_uniform(tuple(logits.shape[1:]), (tf.reshape(first, key_shape), tf.reshape(second, key_shape)))
    gumbel = -tf.math.log(-tf.math.log(uniform + 1e-9) + 1e-9)
    return argmax_last_axis(logits + gumbel)


@keras.saving.register_keras_serializable(package="funnel_tfm")
class ElectraModel(keras.Model):
    """Discriminator backbone (scope `model`) + binary head, generator (scope `generator`) + its LM head.

    Called on a batch it returns the discriminator's per-token logits for `token_ids` and, with a
    `target_mapping`, the generator's logits at the target slots of `masked_ids` (default `token_ids`).
    """

    def __init__(self, config: ModelConfig | dict, width_shrink: float = 0.25, **kwargs) -> None:
        super().__init__(**kwargs)
        config = ModelConfig.from_dict(config) if isinstance(config, dict) else config
        self.config, self.width_shrink = config, width_shrink
        policy = self.dtype_policy
        use_decoder = config.n_block > 1
        self.discriminator = FunnelTFM(config, use_decoder=use_decoder, name="model", dtype=policy)
        self.generator_config = config.generator_config(width_shrink)
        self.generator = FunnelTFM(self.generator_config, use_decoder=use_decoder,
                                   shared_embedding=self.discriminator.embedding, name="generator", dtype=policy)
        self.generator_head = head_factories.lm_head(self.generator_config, self.discriminator.embedding,
                                                     name="generator_lm", dtype=policy)
        self.discriminator_head = head_factories.discriminator_head(config, name="binary", dtype=policy)
        self.built = True

    def call(self, inputs: dict[str, Any], training: bool = False) -> dict[str, Any]:
        outputs = {"discriminator_logits": self.discriminator_head(
            hidden_states(self.discriminator, inputs, training))}
        if "target_mapping" in inputs:
            masked = {**inputs, "token_ids": inputs.get("masked_ids", inputs["token_ids"])}
            hidden = hidden_states(self.generator, masked, training)
            mapping = keras.ops.cast(inputs["target_mapping"], hidden.dtype)
            outputs["generator_logits"] = self.generator_head(keras.ops.einsum("bkl,bld->bkd", mapping, hidden))
        return outputs

    def get_config(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "width_shrink": self.width_shrink, "name": self.name,
                "dtype": self.dtype_policy.name}


class ElectraTask(Task):
    name = "electra"

    def __init__(self, model: ElectraModel, disc_coeff: float = 50.0) -> None:
        self.model, self.disc_coeff = model, disc_coeff

    @classmethod
    def build(cls, config: ModelConfig, width_shrink: float = 0.25, disc_coeff: float = 50.0,
              dtype: Any = None) -> "ElectraTask":
        """Fresh weights; create under `strategy.scope()` to distribute them."""
        return cls(ElectraModel(config, width_shrink, name="electra_model", dtype=dtype), disc_coeff)

    def parts(self) -> dict[str, Any]:
        m = self.model
        return {"model": m.discriminator, "generator": m.generator, "generator_head": m.generator_head,
                "discriminator_head": m.discriminator_head}

    def checkpoint_view(self) -> FunnelCheckpoint:
        m = self.model
        view = from_model(m.discriminator, {"binary": m.discriminator_head}, m.generator, m.generator_head)
        view.report.missing = [name for name in view.named_variables() if name.startswith(SUMMARY_SCOPE)]
        return view

    def step_inputs(self, batch, step, seed, replica_id, num_replicas, local_batch):
        """The Gumbel noise seeds of this replica's examples and the real-token count of the global batch."""
        first = tf.cast(replica_id, tf.int64) * local_batch
        example = first + tf.range(local_batch, dtype=tf.int64)  # index in the global batch
        noise_seeds = tf.stack([tf.fill([local_batch], seed * 1_000_003 + step), example], axis=1)
        real = tf.reduce_sum(tf.cast(batch["padding_mask"], tf.float32))
        if num_replicas > 1:
            real = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, real)
        return {"noise_seeds": noise_seeds, "global_real_tokens": real}

    def loss(self, batch, extras, global_batch_size: int, training: bool):
        """Needs `extras` from `step_inputs`; without `global_real_tokens` the local count is used."""
        m = self.model
        slots = float(global_batch_size * batch["target"].shape[1])
        masked = {"token_ids": batch["token_ids"], "segment_ids": batch["segment_ids"],
                  "padding_mask": batch["padding_mask"]}
        gen_ce, gen_logits = lm_cross_entropy(m.generator_head, hidden_states(m.generator, masked, training), batch)
        gen_correct, counted = accuracy_sums(gen_logits, batch)
        sample = tf.stop_gradient(gumbel_max_sample(gen_logits, extras["noise_seeds"]))
        scattered = tf.cast(tf.einsum("bk,bkl->bl", tf.cast(sample, tf.float32),
                                      tf.cast(batch["target_mapping"], tf.float32)), tf.int32)
        sample_ids = tf.where(tf.cast(batch["is_target"], tf.bool), scattered, batch["origin_ids"])
        original = tf.cast(tf.equal(sample_ids, batch["origin_ids"]), tf.float32)

        disc_inputs = {**masked, "token_ids": sample_ids}
        disc_logits = m.discriminator_head(hidden_states(m.discriminator, disc_inputs, training))
        disc_ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=original, logits=disc_logits)
        real = tf.cast(batch["padding_mask"], tf.float32)
        local_real = tf.reduce_sum(real)
        global_real = tf.cast(extras.get("global_real_tokens", local_real), tf.float32)
        disc_sum = tf.reduce_sum(disc_ce * real)
        gen_sum = tf.reduce_sum(gen_ce)
        loss = gen_sum / slots + self.disc_coeff * disc_sum / tf.maximum(global_real, 1.0)
        disc_correct = tf.reduce_sum(tf.cast(tf.equal(tf.cast(disc_logits > 0, tf.float32), original),
                                             tf.float32) * real)
        replaced = (1.0 - original) * real
        replaced_found = tf.reduce_sum(tf.cast(disc_logits <= 0, tf.float32) * replaced)
        slots_here = tf.cast(tf.size(gen_ce), tf.float32)
        return loss, {
            "generator_loss": (gen_sum, slots_here), "generator_accuracy": (gen_correct, counted),
            "discriminator_loss": (self.disc_coeff * disc_sum, local_real),
            "discriminator_accuracy": (disc_correct, local_real),
            "replaced_recall": (replaced_found, tf.reduce_sum(replaced)),
            "real_ratio": (tf.reduce_sum(original * real), local_real),
        }

    def reduce_metrics(self, means: dict[str, float]) -> dict[str, float]:
        """`loss` = generator loss + `disc_coeff` × discriminator loss (already scaled)."""
        if "loss" not in means and "generator_loss" in means:
            means = {"loss": means["generator_loss"] + means["discriminator_loss"], **means}
        return means
