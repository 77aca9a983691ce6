"""Task heads on top of `FunnelTFM`.

    head = LMHead(config, model.embedding)              # tied to the word embedding table
    logits = head(out["decoder_output"], positions)     # [B, K, V] float32 at the K predicted positions
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from funnel_tfm.config import ModelConfig
from funnel_tfm.layers import EinsumDense, LayerNorm, WeightNamesMixin, make_initializer


class LMHead(WeightNamesMixin, keras.layers.Layer):
    """The original LM head (spec §2.12): dense D->E with `ff_activation`, LayerNorm, then the tied table.

    `logits = LN(act(h·W + b)) · word_embeddingᵀ + lm_loss/bias`, in float32. With `positions` [B, K], only
    those positions are projected (the original computed MLM logits only at the `num_predict` targets).
    """

    def __init__(self, config: ModelConfig, embedding, d_model: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        d_model = d_model or config.d_model
        self.embedding = embedding  # shares the variable: gradients reach the input table
        self.dense = EinsumDense((d_model,), (config.d_embed,), make_initializer(config),
                                 activation=config.ff_activation, name="dense", dtype=self.dtype_policy)
        self.layer_norm = LayerNorm(config.d_embed, config.layer_norm_eps, name="layer_norm", dtype=self.dtype_policy)
        self.bias = self.add_weight(shape=(config.vocab_size,), initializer="zeros", name="lm_loss_bias",
                                    autocast=False)
        self.built = True

    def call(self, hidden: tf.Tensor, positions: tf.Tensor | None = None) -> tf.Tensor:
        if positions is not None:
            hidden = tf.gather(hidden, tf.cast(positions, tf.int32), batch_dims=1)
        projected = self.layer_norm(self.dense(hidden))
        table = tf.cast(self.embedding.word_embedding, projected.dtype)
        logits = tf.einsum("bke,ve->bkv", projected, table)
        return tf.cast(logits, tf.float32) + self.bias

    def weight_names(self) -> dict[str, Any]:
        names = {f"lm_proj/dense/{k}": v for k, v in self.dense.weight_names().items()}
        names.update({f"lm_proj/layer_norm/{k}": v for k, v in self.layer_norm.weight_names().items()})
        names["lm_loss/bias"] = self.bias
        return names
