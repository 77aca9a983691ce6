"""Extractive question answering (SQuAD) on the decoder's full-length output with the original's head (spec §6.3.4).

    task = SquadTask.build(config, dtype="float32")               # conditional end, answer class: the defaults
    beams = task.model(batch)          # start_top_index/log_probs [B, 5], end_top_index/log_probs [B, 25], cls_logits
    loss, sums = task.loss(train_batch, {}, global_batch_size=48, training=True)

Training conditions the end on the true start; inference keeps the top `start_n_top` starts and, for each, the
top `end_n_top` ends (`SquadHead`). The loss is the original's: `ans_loss_weight * (-log p(start) - log p(end))`
plus `cls_loss_weight * sigmoid cross-entropy(cls_logits, is_impossible)` (with the answer class), averaged over the
batch, float32 under every precision. Without `use_masked_loss` no position is masked (the original fed no
`p_mask` then).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from funnel_tfm.checkpoints.loading import FunnelCheckpoint, from_model
from funnel_tfm.layers import head_factories
from funnel_tfm.tasks.backbones import AnyConfig, build_backbone, config_from_dict, full_length_output
from funnel_tfm.tasks.base import Task
from funnel_tfm.tasks.classification import MODEL_INPUTS

SQUAD_SCOPE = "squad"


@keras.saving.register_keras_serializable(package="funnel_tfm")
class QuestionAnsweringModel(keras.Model):
    """Encoder + decoder (scope `model`) + `SquadHead`. With `start_positions` in the inputs the end is
    conditioned on them (training); without, the model returns the top-k beams (inference)."""

    def __init__(self, config: AnyConfig | dict, conditional_end: bool = True, use_answer_class: bool = True,
                 use_masked_loss: bool = True, start_n_top: int = 5, end_n_top: int = 5, **kwargs) -> None:
        super().__init__(**kwargs)
        config = config_from_dict(config)
        self.config, self.use_masked_loss, self.scope = config, use_masked_loss, SQUAD_SCOPE
        self.head_settings = {"conditional_end": conditional_end, "use_answer_class": use_answer_class,
                              "start_n_top": start_n_top, "end_n_top": end_n_top}
        policy = self.dtype_policy
        self.backbone = build_backbone(config, use_decoder=True, name="model", dtype=policy)
        self.head = head_factories.squad_head(config, name=SQUAD_SCOPE, dtype=policy, **self.head_settings)
        self.built = True

    def call(self, inputs: dict[str, Any], training: bool = False) -> dict[str, Any]:
        outputs = self.backbone({key: inputs[key] for key in MODEL_INPUTS}, training=training)
        hidden = full_length_output(self.backbone, outputs)  # the decoder's, or FNet's last layer (full length)
        p_mask = inputs["p_mask"] if self.use_masked_loss else keras.ops.zeros_like(inputs["p_mask"])
        return self.head(hidden, p_mask, inputs["cls_index"], start_positions=inputs.get("start_positions"),
                         training=training)

    def get_config(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "use_masked_loss": self.use_masked_loss, **self.head_settings,
                "name": self.name, "dtype": self.dtype_policy.name}


class SquadTask(Task):
    name = "squad"

    def __init__(self, model: QuestionAnsweringModel, ans_loss_weight: float = 0.5,
                 cls_loss_weight: float = 0.5) -> None:
        self.model, self.ans_loss_weight, self.cls_loss_weight = model, ans_loss_weight, cls_loss_weight

    @classmethod
    def build(cls, config: AnyConfig, conditional_end: bool = True, use_answer_class: bool = True,
              use_masked_loss: bool = True, start_n_top: int = 5, end_n_top: int = 5, ans_loss_weight: float = 0.5,
              cls_loss_weight: float = 0.5, dtype: Any = None) -> "SquadTask":
        """Fresh weights; create under `strategy.scope()` to distribute them."""
        model = QuestionAnsweringModel(config, conditional_end, use_answer_class, use_masked_loss, start_n_top,
                                       end_n_top, name="question_answering", dtype=dtype)
        return cls(model, ans_loss_weight, cls_loss_weight)

    def parts(self) -> dict[str, Any]:
        return {"model": self.model.backbone, "head": self.model.head}

    def checkpoint_view(self) -> FunnelCheckpoint:
        return from_model(self.model.backbone, {SQUAD_SCOPE: self.model.head})

    def per_example(self, batch: dict[str, tf.Tensor], training: bool) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """(per-example loss [B], the head's training outputs), float32."""
        out = self.model(batch, training=training)
        starts = tf.reshape(batch["start_positions"], [-1, 1])
        ends = tf.reshape(batch["end_positions"], [-1, 1])
        start_nll = -tf.gather(out["start_log_probs"], starts, batch_dims=1)[:, 0]
        end_nll = -tf.gather(out["end_log_probs"], ends, batch_dims=1)[:, 0]
        loss = self.ans_loss_weight * (start_nll + end_nll)
        if self.model.head_settings["use_answer_class"]:
            loss += self.cls_loss_weight * tf.nn.sigmoid_cross_entropy_with_logits(
                labels=tf.cast(tf.reshape(batch["is_impossible"], [-1]), tf.float32), logits=out["cls_logits"])
        return loss, out

    def loss(self, batch, extras, global_batch_size: int, training: bool):
        per_example, out = self.per_example(batch, training)
        real = tf.cast(tf.reshape(batch["is_real_example"], [-1]), tf.float32)
        count = tf.reduce_sum(real)
        start_hit = tf.equal(tf.argmax(out["start_log_probs"], -1, output_type=tf.int32),
                             tf.reshape(tf.cast(batch["start_positions"], tf.int32), [-1]))
        end_hit = tf.equal(tf.argmax(out["end_log_probs"], -1, output_type=tf.int32),
                           tf.reshape(tf.cast(batch["end_positions"], tf.int32), [-1]))
        both = tf.cast(tf.logical_and(start_hit, end_hit), tf.float32)
        loss_sum = tf.reduce_sum(per_example * real)
        # "accuracy": start and end both right, the end given the true start (what training sees)
        return loss_sum / float(global_batch_size), {"loss": (loss_sum, count),
                                                     "accuracy": (tf.reduce_sum(both * real), count)}
