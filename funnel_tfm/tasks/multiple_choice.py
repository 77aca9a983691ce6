"""Multiple choice (RACE) on the pooled summary of each (question + option, passage) sequence (semantics F3).

    task = MultipleChoiceTask.build(config, num_choices=4, dtype="float32")
    logits = task.model({"token_ids": ids, "segment_ids": seg, "padding_mask": mask})   # [B, 4, L] -> [B, 4]
    loss, sums = task.loss(batch, {}, global_batch_size=16, training=True)

The encoder runs on the `B x choices` sequences as one batch; the head (`race/logits`, the original's scope)
scores each, and the loss is the cross-entropy over the choices, float32 under every precision.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from funnel_tfm.checkpoints.loading import FunnelCheckpoint, from_model
from funnel_tfm.layers import head_factories
from funnel_tfm.tasks.backbones import AnyConfig, build_backbone, config_from_dict
from funnel_tfm.tasks.base import Task
from funnel_tfm.tasks.classification import MODEL_INPUTS, softmax_cross_entropy_numpy


@keras.saving.register_keras_serializable(package="funnel_tfm")
class MultipleChoiceModel(keras.Model):
    """Encoder (scope `model`) + pooled summary + `MultipleChoiceHead` (scope `scope`); logits [B, choices]."""

    def __init__(self, config: AnyConfig | dict, num_choices: int = 4, scope: str = "race", **kwargs) -> None:
        super().__init__(**kwargs)
        config = config_from_dict(config)
        self.config, self.num_choices, self.scope = config, num_choices, scope
        policy = self.dtype_policy
        self.backbone = build_backbone(config, use_decoder=False, name="model", dtype=policy)
        self.head = head_factories.multiple_choice_head(config, scope=scope, dtype=policy)
        self.built = True

    def call(self, inputs: dict[str, Any], training: bool = False):
        flat = {key: keras.ops.reshape(inputs[key], (-1, keras.ops.shape(inputs[key])[-1])) for key in MODEL_INPUTS}
        pooled = self.backbone(flat, training=training)["pooled_output"]
        return self.head(pooled, num_choices=self.num_choices, training=training)

    def get_config(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "num_choices": self.num_choices, "scope": self.scope,
                "name": self.name, "dtype": self.dtype_policy.name}


class MultipleChoiceTask(Task):
    name = "multiple_choice"
    regression = False

    def __init__(self, model: MultipleChoiceModel) -> None:
        self.model = model

    @classmethod
    def build(cls, config: AnyConfig, num_choices: int = 4, scope: str = "race",
              dtype: Any = None) -> "MultipleChoiceTask":
        return cls(MultipleChoiceModel(config, num_choices, scope, name="multiple_choice", dtype=dtype))

    def parts(self) -> dict[str, Any]:
        return {"model": self.model.backbone, "head": self.model.head}

    def checkpoint_view(self) -> FunnelCheckpoint:
        return from_model(self.model.backbone, {self.model.scope: self.model.head})

    def loss(self, batch, extras, global_batch_size: int, training: bool):
        logits = self.model(batch, training=training)
        labels = tf.cast(tf.reshape(batch["label"], [-1]), tf.int32)
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        real = tf.cast(tf.reshape(batch["is_real_example"], [-1]), tf.float32)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
        loss_sum, count = tf.reduce_sum(per_example * real), tf.reduce_sum(real)
        return loss_sum / float(global_batch_size), {"loss": (loss_sum, count),
                                                     "accuracy": (tf.reduce_sum(correct * real), count)}

    def per_example_numpy(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return softmax_cross_entropy_numpy(logits, labels)
