"""Sequence classification and regression on the pooled summary, as the original's classifier (semantics F3).

    task = ClassificationTask.build(config, n_class=3, scope="mnli_matched", dtype="float32")
    task.model.summary()                                   # a Keras model: encoder + pooled summary + head
    logits = task.model({"token_ids": ids, "segment_ids": seg, "padding_mask": mask})   # float32 [B, n_class]
    loss, sums = task.loss(batch, {}, global_batch_size=32, training=True)

The backbone is the encoder only (the original's `get_pooled_output`); the head scope is the original's
(`--cls_scope`, else the lower-cased task name), so a finetuned original checkpoint brings its head. Logits and
losses are float32 under every precision. Regression (`n_class = 1`, STS-B) uses the squared error of the raw
logit. Examples with `is_real_example = 0` (the padding of an evaluation set) count in no sum.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from funnel_tfm.checkpoints.loading import FunnelCheckpoint, from_model
from funnel_tfm.layers import head_factories
from funnel_tfm.tasks.backbones import AnyConfig, build_backbone, config_from_dict, is_fnet
from funnel_tfm.tasks.base import Task

MODEL_INPUTS = ("token_ids", "segment_ids", "padding_mask")


@keras.saving.register_keras_serializable(package="funnel_tfm")
class ClassifierModel(keras.Model):
    """Encoder (scope `model`) + pooled summary + `ClassificationHead` (scope `scope`); float32 logits."""

    def __init__(self, config: AnyConfig | dict, n_class: int, scope: str = "cls", zero_init_head: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        config = config_from_dict(config)
        self.config, self.n_class, self.scope = config, n_class, scope
        policy = self.dtype_policy
        self.backbone = build_backbone(config, use_decoder=False, name="model", dtype=policy)
        # The original FNet projects the pooled output with no dropout before it (fnet semantics N11);
        # transformers' FNetForSequenceClassification and the original Funnel drop out there.
        dropout = 0.0 if is_fnet(config) else None
        self.head = head_factories.classification_head(config, n_class, scope=scope, dropout=dropout,
                                                       zero_init=zero_init_head, dtype=policy)
        self.built = True

    def call(self, inputs: dict[str, Any], training: bool = False):
        pooled = self.backbone({key: inputs[key] for key in MODEL_INPUTS}, training=training)["pooled_output"]
        return self.head(pooled, training=training)

    def get_config(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "n_class": self.n_class, "scope": self.scope, "name": self.name,
                "dtype": self.dtype_policy.name}


class ClassificationTask(Task):
    name = "classification"

    def __init__(self, model: ClassifierModel, regression: bool) -> None:
        self.model, self.regression = model, regression

    @classmethod
    def build(cls, config: AnyConfig, n_class: int, scope: str = "cls", dtype: Any = None,
              zero_init_head: bool = False) -> "ClassificationTask":
        """Fresh weights (`n_class = 1`: regression; `zero_init_head`: the head's kernel starts at zero); create
        under `strategy.scope()` to distribute them."""
        return cls(ClassifierModel(config, n_class, scope, zero_init_head, name="classifier", dtype=dtype),
                   regression=n_class == 1)

    def parts(self) -> dict[str, Any]:
        return {"model": self.model.backbone, "head": self.model.head}

    def checkpoint_view(self) -> FunnelCheckpoint:
        return from_model(self.model.backbone, {self.model.scope: self.model.head})

    def per_example(self, batch: dict[str, tf.Tensor], training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        """(per-example loss [B], logits [B, n_class]), float32."""
        logits = self.model(batch, training=training)
        if self.regression:
            loss = tf.square(logits[:, 0] - tf.cast(tf.reshape(batch["label"], [-1]), tf.float32))
        else:
            labels = tf.cast(tf.reshape(batch["label"], [-1]), tf.int32)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        return loss, logits

    def loss(self, batch, extras, global_batch_size: int, training: bool):
        per_example, logits = self.per_example(batch, training)
        real = tf.cast(tf.reshape(batch["is_real_example"], [-1]), tf.float32)
        loss_sum = tf.reduce_sum(per_example * real)
        count = tf.reduce_sum(real)
        # The batch mean (the original's) when every example is real, which is so in training.
        sums = {"loss": (loss_sum, count)}
        if not self.regression:
            labels = tf.cast(tf.reshape(batch["label"], [-1]), tf.int32)
            correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
            sums["accuracy"] = (tf.reduce_sum(correct * real), count)
        return loss_sum / float(global_batch_size), sums

    def per_example_numpy(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The per-example loss of whole-set predictions, on the host (evaluation)."""
        if self.regression:
            return np.square(logits[:, 0].astype(np.float64) - labels.astype(np.float64))
        return softmax_cross_entropy_numpy(logits, labels)


def softmax_cross_entropy_numpy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row cross-entropy of `logits` [N, K] against class indices `labels` [N], in float64 on the host."""
    shifted = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return -log_probabilities[np.arange(len(labels)), labels.astype(np.int64)]
