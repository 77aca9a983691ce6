"""Token classification (NER, chunking) on the decoder's full-length output.

    task = TaggingTask.build(config, n_tags=9, dtype="float32")
    logits = task.model({"token_ids": ids, "segment_ids": seg, "padding_mask": mask})    # float32 [B, L, 9]
    loss, sums = task.loss(batch, extras, global_batch_size=32, training=True)         # batch["label_ids"] [B, L]

The encoder pools the sequence, so the tagger reads the decoder's output (the last block upsampled to full
length and added to the first block's output, then the decoder layers), as the original's SQuAD head does; the
head is `tagger/logit` (dropout, dense). Positions with `label_ids` = -1 ([CLS], [SEP], a word's later pieces,
padding) are not scored.

The loss is the token-level cross-entropy **averaged over the labelled tokens of the global batch** (not over
sentences): every labelled word weighs the same, however the words fall into sentences and replicas. Each
replica divides its sum by the global count (`step_inputs` all-reduces it), so the summed gradients are those
of the global mean. Metrics `loss` and `accuracy` are over labelled tokens too.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from funnel_tfm.checkpoints.loading import FunnelCheckpoint, from_model
from funnel_tfm.layers import head_factories
from funnel_tfm.tasks.backbones import (FNET_POOLER_SCOPE, AnyConfig, build_backbone, config_from_dict,
                                       full_length_output)
from funnel_tfm.tasks.base import SUMMARY_SCOPE, Task
from funnel_tfm.tasks.classification import MODEL_INPUTS, softmax_cross_entropy_numpy


@keras.saving.register_keras_serializable(package="funnel_tfm")
class TaggerModel(keras.Model):
    """Encoder + decoder (scope `model`) + `TokenClassificationHead` (scope `tagger`); float32 logits [B, L, n]."""

    def __init__(self, config: AnyConfig | dict, n_tags: int, **kwargs) -> None:
        super().__init__(**kwargs)
        config = config_from_dict(config)
        self.config, self.n_tags = config, n_tags
        policy = self.dtype_policy
        self.backbone = build_backbone(config, use_decoder=True, name="model", dtype=policy)
        self.head = head_factories.token_classification_head(config, n_tags, dtype=policy)
        self.scope = self.head.scope
        self.built = True

    def call(self, inputs: dict[str, Any], training: bool = False):
        outputs = self.backbone({key: inputs[key] for key in MODEL_INPUTS}, training=training)
        hidden = full_length_output(self.backbone, outputs)  # the decoder's, or FNet's last layer (full length)
        return self.head(hidden, training=training)

    def get_config(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "n_tags": self.n_tags, "name": self.name,
                "dtype": self.dtype_policy.name}


class TaggingTask(Task):
    name = "tagging"

    def __init__(self, model: TaggerModel) -> None:
        self.model = model

    @classmethod
    def build(cls, config: AnyConfig, n_tags: int, dtype: Any = None) -> "TaggingTask":
        """Fresh weights; create under `strategy.scope()` to distribute them."""
        return cls(TaggerModel(config, n_tags, name="tagger_model", dtype=dtype))

    def parts(self) -> dict[str, Any]:
        return {"model": self.model.backbone, "head": self.model.head}

    def checkpoint_view(self) -> FunnelCheckpoint:
        view = from_model(self.model.backbone, {self.model.scope: self.model.head})
        # The pooled summary is not on the tagger's path: not trained, not exported.
        view.report.missing = [name for name in view.named_variables()
                               if name.startswith((SUMMARY_SCOPE, FNET_POOLER_SCOPE))]
        return view

    def step_inputs(self, batch, step, seed, replica_id, num_replicas, local_batch):
        """The number of labelled tokens in the global batch (the loss's denominator)."""
        count = tf.reduce_sum(tf.cast(self._scored(batch), tf.float32))
        if num_replicas > 1:
            count = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, count)
        return {"global_labelled_tokens": count}

    @staticmethod
    def _scored(batch: dict[str, tf.Tensor]) -> tf.Tensor:
        """[B, L] bool: labelled positions of real examples."""
        real = tf.reshape(tf.cast(batch["is_real_example"], tf.bool), [-1, 1])
        return tf.logical_and(batch["label_ids"] >= 0, real)

    def loss(self, batch, extras, global_batch_size: int, training: bool):
        """Without `extras` (outside the Trainer) the local labelled-token count is the denominator."""
        logits = self.model(batch, training=training)
        scored = tf.cast(self._scored(batch), tf.float32)
        labels = tf.maximum(tf.cast(batch["label_ids"], tf.int32), 0)  # -1 positions: any class, weight 0
        per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
        loss_sum, count = tf.reduce_sum(per_token * scored), tf.reduce_sum(scored)
        denominator = tf.maximum(extras.get("global_labelled_tokens", count), 1.0)
        return loss_sum / denominator, {"loss": (loss_sum, count), "accuracy": (tf.reduce_sum(correct * scored), count)}

    @staticmethod
    def mean_loss_numpy(logits: np.ndarray, label_ids: np.ndarray) -> float:
        """The mean cross-entropy over labelled tokens of whole-set predictions, on the host (evaluation)."""
        scored = label_ids >= 0
        if not scored.any():
            return 0.0
        return float(softmax_cross_entropy_numpy(logits[scored], label_ids[scored]).mean())
