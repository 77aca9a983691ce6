"""FNet pretraining: masked LM, and FNet's own masked LM + next-sentence prediction (fnet semantics N5, N10).

    task = FNetPretrainingTask.build(fnet_config, next_sentence=True, dtype="float32")    # --loss_type=mlm_nsp
    loss, sums = task.loss(batch, {}, global_batch_size=64, training=True)
    task.model.save_pretrained("out/fnet", format="hf")   # transformers' FNetForPreTraining reads it

The model is `FNetPreTrainingModel` (the original's heads under its names). The batch is the pretraining
pipeline's (`data/input_func_builder.py`); with `next_sentence`, it also holds `next_sentence_label` (0: segment
B continues A, 1: B is a random span; transformers' and BERT's convention, so the exported NSP head means the
same), made from the records' stored `label` (create_pretrain_data's A/B split, semantics D3).

Loss: the MLM cross-entropy averaged over all B·K target slots (as the Funnel MLM task, P3) plus, with NSP, the
mean NSP cross-entropy over the B examples (the original FNet adds the two). The backbone sees `padding_mask`
(read only by a hybrid's attention layers, N9; the original FNet masks pads only, not [MASK] tokens) and
FNet's type ids ([CLS] 0, `backbones.fnet_type_ids`). Without NSP the pooler and NSP head are not trained.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from funnel_tfm.checkpoints.loading import FunnelCheckpoint
from funnel_tfm.config_fnet import FNetConfig
from funnel_tfm.modeling_fnet import FNetPreTrainingModel
from funnel_tfm.tasks.backbones import fnet_pretraining_view, fnet_type_ids
from funnel_tfm.tasks.base import Task, accuracy_sums, lm_cross_entropy

NSP_SCOPES = ("model/encoder/pooler/", "model/classification/")


class FNetPretrainingTask(Task):
    """MLM (`next_sentence=False`, --loss_type=mlm) or MLM + NSP (--loss_type=mlm_nsp) on an FNet config."""

    name = "fnet_pretraining"

    def __init__(self, model: FNetPreTrainingModel, next_sentence: bool) -> None:
        self.model, self.next_sentence = model, next_sentence

    @classmethod
    def build(cls, config: FNetConfig, next_sentence: bool = True, dtype: Any = None) -> "FNetPretrainingTask":
        """Fresh weights; create under `strategy.scope()` to distribute them."""
        return cls(FNetPreTrainingModel(config, name="fnet_pretraining", dtype=dtype), next_sentence)

    def parts(self) -> dict[str, Any]:
        m = self.model
        return {"model": m.backbone, "mlm_head": m.mlm_head, "nsp_head": m.nsp_head}

    def checkpoint_view(self) -> FunnelCheckpoint:
        view = fnet_pretraining_view(self.model)
        if not self.next_sentence:  # untrained, so neither optimised nor counted as learned
            view.report.missing = [name for name in view.named_variables() if name.startswith(NSP_SCOPES)]
        return view

    def loss(self, batch, extras, global_batch_size: int, training: bool):
        m = self.model
        slots = float(global_batch_size * batch["target"].shape[1])
        inputs = {"token_ids": batch["token_ids"], "segment_ids": fnet_type_ids(batch["segment_ids"]),
                  "padding_mask": batch["padding_mask"]}
        outputs = m.backbone(inputs, training=training)
        ce, logits = lm_cross_entropy(m.mlm_head, outputs["sequence_output"], batch)
        correct, counted = accuracy_sums(logits, batch)
        mlm_sum = tf.reduce_sum(ce)
        slots_here = tf.cast(tf.size(ce), tf.float32)
        loss = mlm_sum / slots
        sums = {"mlm_loss": (mlm_sum, slots_here), "mlm_accuracy": (correct, counted)}
        if self.next_sentence:
            labels = tf.reshape(tf.cast(batch["next_sentence_label"], tf.int32), [-1])
            nsp_logits = tf.cast(m.nsp_head(outputs["pooled_output"]), tf.float32)
            nsp_ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=nsp_logits)
            nsp_sum = tf.reduce_sum(nsp_ce)
            examples = tf.cast(tf.size(labels), tf.float32)
            nsp_correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(nsp_logits, -1, output_type=tf.int32), labels),
                                                tf.float32))
            loss += nsp_sum / float(global_batch_size)
            sums.update(nsp_loss=(nsp_sum, examples), nsp_accuracy=(nsp_correct, examples))
        return loss, sums

    def reduce_metrics(self, means: dict[str, float]) -> dict[str, float]:
        """`loss` = MLM loss (+ NSP loss): each is a mean over its own count (slots, examples)."""
        if "loss" not in means and "mlm_loss" in means:
            means = {"loss": means["mlm_loss"] + means.get("nsp_loss", 0.0), **means}
        return means
