"""The pretraining objectives: MLM and ELECTRA as in the original (spec §4.8-§4.9).

    parts = PretrainingParts.build(config, "electra", width_shrink=0.25)
    loss, sums = parts.loss(batch, global_batch_size=64, training=True, noise_seed=seed)

`loss` is this replica's share of the global-batch loss (its sum over local examples divided by global
counts), so summing gradients over replicas gives the gradient of the global-batch loss whatever the number of
replicas. `sums` maps each monitored metric to (numerator, denominator) sums over the local examples, which
the training loop adds up over replicas and steps before dividing.

MLM: the backbone sees the masked input with `mlm_padding_mask` ([MASK] keys are not attended, Q17); the LM
head runs only at the `num_predict` target slots (gathered by `target_mapping`, a one-hot einsum that XLA and
TPUs handle without a gather) and the loss is the mean cross-entropy over all B·K slots, padding slots
included (Q16, kept: the sampler fills every slot unless a sequence is too short).

ELECTRA: a generator (same architecture, width × `width_shrink`, sharing the discriminator's `input`
embedding) is trained with the MLM loss on the masked input (padding-only attention mask); replacements are
drawn by Gumbel-max from its logits, without gradient; the discriminator classifies every real token as
original (1) or replaced (0); total = generator loss + `disc_coeff` × discriminator loss (mean over real
tokens). The Gumbel noise of an example is a stateless function of (seed, step, global example index), so
the samples do not depend on how the batch is split across replicas.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from funnel_tfm.checkpoints import FunnelCheckpoint, from_model
from funnel_tfm.config import ModelConfig
from funnel_tfm.heads import DiscriminatorHead, LMHead
from funnel_tfm.modeling import FunnelTFM

LOSS_TYPES = ("mlm", "electra")
_SUMMARY = "model/sequnece_summary/"


def gumbel_max_sample(logits: tf.Tensor, example_seeds: tf.Tensor) -> tf.Tensor:
    """argmax(logits + g), g = -log(-log(u + 1e-9) + 1e-9), u ~ U[0,1) per example from `example_seeds` [B, 2]."""
    shape = tf.shape(logits)[1:]
    uniform = tf.map_fn(lambda seed: tf.random.stateless_uniform(shape, seed), example_seeds,
                        fn_output_signature=tf.float32)
    gumbel = -tf.math.log(-tf.math.log(uniform + 1e-9) + 1e-9)
    return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32)


def _lm_cross_entropy(head: LMHead, hidden: tf.Tensor, batch: dict[str, tf.Tensor]):
    """(per-slot cross-entropy [B, K], logits [B, K, V]) at the target slots."""
    mapping = tf.cast(batch["target_mapping"], hidden.dtype)
    at_targets = tf.einsum("bkl,bld->bkd", mapping, hidden)  # zero vector in padding slots, as the original
    logits = head(at_targets)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=batch["target"], logits=logits)
    return ce, logits


def _accuracy_sums(logits: tf.Tensor, batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    weights = tf.cast(batch["target_weights"], tf.float32)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), batch["target"]), tf.float32)
    return tf.reduce_sum(correct * weights), tf.reduce_sum(weights)


@dataclasses.dataclass
class PretrainingParts:
    """The backbone (scope `model`) and what the objective adds: an LM head, or generator + heads."""

    loss_type: str
    model: FunnelTFM
    lm_head: LMHead | None = None
    generator: FunnelTFM | None = None
    generator_head: LMHead | None = None
    discriminator_head: DiscriminatorHead | None = None
    disc_coeff: float = 50.0

    @classmethod
    def build(cls, config: ModelConfig, loss_type: str, width_shrink: float = 0.25, disc_coeff: float = 50.0,
              dtype: Any = None) -> "PretrainingParts":
        """Fresh weights; create under `strategy.scope()` to distribute them."""
        loss_type = loss_type.lower()
        if loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type {loss_type!r}; expected one of {', '.join(LOSS_TYPES)}")
        model = FunnelTFM(config, use_decoder=config.n_block > 1, name="model", dtype=dtype)
        if loss_type == "mlm":
            return cls(loss_type, model, lm_head=LMHead(config, model.embedding, name="lm", dtype=dtype))
        gen_config = config.generator_config(width_shrink)
        generator = FunnelTFM(gen_config, use_decoder=config.n_block > 1, shared_embedding=model.embedding,
                              name="generator", dtype=dtype)
        return cls(loss_type, model, generator=generator,
                   generator_head=LMHead(gen_config, model.embedding, name="generator_lm", dtype=dtype),
                   discriminator_head=DiscriminatorHead(config, name="binary", dtype=dtype), disc_coeff=disc_coeff)

    def checkpoint_view(self) -> FunnelCheckpoint:
        """The parts under the original's names (for export, init from checkpoints, layer ids)."""
        heads = {"lm": self.lm_head} if self.lm_head is not None else {"binary": self.discriminator_head}
        view = from_model(self.model, heads, self.generator, self.generator_head)
        # Pretraining never uses the pooled summary: it is not trained, and not exported (as in the original,
        # whose pretraining checkpoints have no `sequnece_summary`).
        view.report.missing = [name for name in view.named_variables() if name.startswith(_SUMMARY)]
        return view

    def trainable_variables(self) -> dict[str, Any]:
        """Full original name -> variable, in a fixed order, without the unused pooled summary."""
        return {name: variable for name, variable in self.checkpoint_view().named_variables().items()
                if variable.trainable and not name.startswith(_SUMMARY)}

    def trackables(self) -> dict[str, Any]:
        """What a training checkpoint holds (every weight and the dropout seed states)."""
        parts = {"model": self.model, "lm_head": self.lm_head, "generator": self.generator,
                 "generator_head": self.generator_head, "discriminator_head": self.discriminator_head}
        parts = {key: value for key, value in parts.items() if value is not None}
        # Keras does not expose the dropout seed states to tf.train.Checkpoint; without them a resumed run would
        # draw other dropout masks than an uninterrupted one.
        rng = tf.Module(name="dropout_rng")
        seen, rng.states = set(), []
        for part in parts.values():
            for variable in part.non_trainable_variables:
                if "seed_generator" in variable.path and id(variable) not in seen:
                    seen.add(id(variable))
                    rng.states.append(variable.value)
        return {**parts, "dropout_rng": rng}

    def _hidden(self, model: FunnelTFM, batch: dict[str, tf.Tensor], token_ids, padding_mask, training: bool):
        out = model({"token_ids": token_ids, "segment_ids": batch["segment_ids"], "padding_mask": padding_mask},
                    training=training)
        return out["decoder_output"] if model.use_decoder else out["sequence_output"]

    def loss(self, batch: dict[str, tf.Tensor], global_batch_size: int, training: bool,
             noise_seeds: tf.Tensor | None = None, global_real_tokens: tf.Tensor | None = None
             ) -> tuple[tf.Tensor, dict[str, tuple[tf.Tensor, tf.Tensor]]]:
        """(this replica's loss share, metric sums).

        ELECTRA needs `noise_seeds` [B, 2] (the sampling) and `global_real_tokens`, the number of real tokens in
        the global batch (the discriminator loss is a mean over them); it defaults to this batch's count.
        """
        num_predict = batch["target"].shape[1]
        slots = float(global_batch_size * num_predict)
        if self.loss_type == "mlm":
            hidden = self._hidden(self.model, batch, batch["token_ids"], batch["mlm_padding_mask"], training)
            ce, logits = _lm_cross_entropy(self.lm_head, hidden, batch)
            correct, counted = _accuracy_sums(logits, batch)
            ce_sum = tf.reduce_sum(ce)
            return ce_sum / slots, {"loss": (ce_sum, tf.cast(tf.size(ce), tf.float32)),
                                    "mlm_loss": (ce_sum, tf.cast(tf.size(ce), tf.float32)),
                                    "mlm_accuracy": (correct, counted)}

        gen_hidden = self._hidden(self.generator, batch, batch["token_ids"], batch["padding_mask"], training)
        gen_ce, gen_logits = _lm_cross_entropy(self.generator_head, gen_hidden, batch)
        gen_correct, counted = _accuracy_sums(gen_logits, batch)
        sample = tf.stop_gradient(gumbel_max_sample(gen_logits, noise_seeds))
        scattered = tf.cast(tf.einsum("bk,bkl->bl", tf.cast(sample, tf.float32),
                                      tf.cast(batch["target_mapping"], tf.float32)), tf.int32)
        is_target = tf.cast(batch["is_target"], tf.bool)
        sample_ids = tf.where(is_target, scattered, batch["origin_ids"])
        original = tf.cast(tf.equal(sample_ids, batch["origin_ids"]), tf.float32)

        disc_hidden = self._hidden(self.model, batch, sample_ids, batch["padding_mask"], training)
        disc_logits = self.discriminator_head(disc_hidden)
        disc_ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=original, logits=disc_logits)
        real = tf.cast(batch["padding_mask"], tf.float32)
        local_real = tf.reduce_sum(real)
        global_real = local_real if global_real_tokens is None else tf.cast(global_real_tokens, tf.float32)
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


def with_total_loss(means: dict[str, float]) -> dict[str, float]:
    """Adds ELECTRA's `loss` = generator loss + `disc_coeff` × discriminator loss (already scaled) to the means."""
    if "loss" not in means and "generator_loss" in means:
        means = {"loss": means["generator_loss"] + means["discriminator_loss"], **means}
    return means
