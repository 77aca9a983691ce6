"""Masked language modelling, as the original's MLM pretraining (docs/original_semantics.md P1–P3).

    task = MaskedLMTask.build(config, dtype="float32")
    task.model.summary()                                  # a Keras model: backbone + tied LM head
    logits = task.model({"token_ids": ids, "segment_ids": seg, "padding_mask": mask,
                         "target_mapping": mapping})      # [B, K, V] at the K target slots
    loss, sums = task.loss(batch, {}, global_batch_size=64, training=True)

The backbone sees the masked input with `mlm_padding_mask` ([MASK] keys are not attended, P2); the LM head
runs only at the `num_predict` target slots and the loss is the mean cross-entropy over all B·K slots, padding
slots included (P3, kept: the sampler fills every slot unless a sequence is too short).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from funnel_tfm.checkpoints.loading import FunnelCheckpoint, from_model
from funnel_tfm.config import ModelConfig
from funnel_tfm.layers import head_factories
from funnel_tfm.modeling import FunnelTFM
from funnel_tfm.tasks.base import SUMMARY_SCOPE, Task, accuracy_sums, hidden_states, lm_cross_entropy


@keras.saving.register_keras_serializable(package="funnel_tfm")
class MaskedLMModel(keras.Model):
    """Backbone (scope `model`) + LM head tied to its word table; logits at `target_mapping`'s slots, or at
    every position without it."""

    def __init__(self, config: ModelConfig | dict, **kwargs) -> None:
        super().__init__(**kwargs)
        config = ModelConfig.from_dict(config) if isinstance(config, dict) else config
        self.config = config
        policy = self.dtype_policy
        self.backbone = FunnelTFM(config, use_decoder=config.n_block > 1, name="model", dtype=policy)
        self.lm_head = head_factories.lm_head(config, self.backbone.embedding, name="lm", dtype=policy)
        self.built = True

    def call(self, inputs: dict[str, Any], training: bool = False):
        hidden = hidden_states(self.backbone, inputs, training)
        if "target_mapping" in inputs:
            hidden = keras.ops.einsum("bkl,bld->bkd", keras.ops.cast(inputs["target_mapping"], hidden.dtype), hidden)
        return self.lm_head(hidden)

    def get_config(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "name": self.name, "dtype": self.dtype_policy.name}


class MaskedLMTask(Task):
    name = "mlm"

    def __init__(self, model: MaskedLMModel) -> None:
        self.model = model

    @classmethod
    def build(cls, config: ModelConfig, dtype: Any = None) -> "MaskedLMTask":
        """Fresh weights; create under `strategy.scope()` to distribute them."""
        return cls(MaskedLMModel(config, name="mlm_model", dtype=dtype))

    def parts(self) -> dict[str, Any]:
        return {"model": self.model.backbone, "lm_head": self.model.lm_head}

    def checkpoint_view(self) -> FunnelCheckpoint:
        view = from_model(self.model.backbone, {"lm": self.model.lm_head})
        # Pretraining never uses the pooled summary: it is not trained, and not exported (as in the original,
        # whose pretraining checkpoints have no `sequnece_summary`).
        view.report.missing = [name for name in view.named_variables() if name.startswith(SUMMARY_SCOPE)]
        return view

    def loss(self, batch, extras, global_batch_size: int, training: bool):
        slots = float(global_batch_size * batch["target"].shape[1])
        inputs = {"token_ids": batch["token_ids"], "segment_ids": batch["segment_ids"],
                  "padding_mask": batch["mlm_padding_mask"]}
        hidden = hidden_states(self.model.backbone, inputs, training)
        ce, logits = lm_cross_entropy(self.model.lm_head, hidden, batch)
        correct, counted = accuracy_sums(logits, batch)
        ce_sum = tf.reduce_sum(ce)
        slots_here = tf.cast(tf.size(ce), tf.float32)
        return ce_sum / slots, {"loss": (ce_sum, slots_here), "mlm_loss": (ce_sum, slots_here),
                                "mlm_accuracy": (correct, counted)}
