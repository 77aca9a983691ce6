"""Task heads on top of `FunnelTFM`, with the original's variable names (spec §2.12, §2.13, §6.3.4).

    out = model(inputs)
    lm_logits = LMHead(config, model.embedding)(out["decoder_output"], positions)     # [B, K, V]
    rtd_logits = DiscriminatorHead(config)(out["decoder_output"])                      # [B, L]
    cls_logits = ClassificationHead(config, n_class=3, scope="mnli")(out["pooled_output"])  # [B, 3]
    race_logits = MultipleChoiceHead(config)(out["pooled_output"], num_choices=4)     # [B, 4]
    squad = SquadHead(config)(out["decoder_output"], p_mask, cls_index)               # dict of log-probs

Every head exposes `weight_names()` relative to the `model/` scope and `scope_names()`, the top-level scopes
its weights live under, which is how a checkpoint reader recognises which heads a checkpoint holds.
All logits are float32 whatever the dtype policy.
"""

from __future__ import annotations

import re
from typing import Any

import keras
import tensorflow as tf

from funnel_tfm.config import ModelConfig
from funnel_tfm.layers import EinsumDense, LayerNorm, WeightNamesMixin, make_initializer

# Large negative logit for positions that cannot be an answer (the original's 1e30, applied in float32).
_MASKED_LOGIT = 1e30


class LMHead(WeightNamesMixin, keras.layers.Layer):
    """The original LM head (spec §2.12): dense D->E with `ff_activation`, LayerNorm, then the tied table.

    `logits = LN(act(h·W + b)) · word_embeddingᵀ + lm_loss/bias`, in float32. With `positions` [B, K], only
    those positions are projected (the original computed MLM logits only at the `num_predict` targets).
    """

    kind = "lm"

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

    @staticmethod
    def scope_names() -> tuple[str, ...]:
        return ("lm_proj", "lm_loss")


class DiscriminatorHead(WeightNamesMixin, keras.layers.Layer):
    """ELECTRA replaced-token detection (`binary_logits`): `gelu(h·W + b)·w + c` per token, float32.

    The original always uses gelu here, whatever `ff_activation` says. A positive logit means "original token".
    """

    kind = "discriminator"

    def __init__(self, config: ModelConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        init = make_initializer(config)
        self.dense = EinsumDense((config.d_model,), (config.d_model,), init, activation="gelu", name="dense",
                                 dtype=self.dtype_policy)
        self.weight = self.add_weight(shape=(config.d_model,), initializer=init, name="binary_loss_weight",
                                      autocast=False)
        self.bias = self.add_weight(shape=(1,), initializer="zeros", name="binary_loss_bias", autocast=False)
        self.built = True

    def call(self, hidden: tf.Tensor) -> tf.Tensor:
        projected = tf.cast(self.dense(hidden), tf.float32)
        return tf.einsum("bld,d->bl", projected, self.weight) + self.bias

    def weight_names(self) -> dict[str, Any]:
        names = {f"binary_proj/dense/{k}": v for k, v in self.dense.weight_names().items()}
        names.update({"binary_loss/weight": self.weight, "binary_loss/bias": self.bias})
        return names

    @staticmethod
    def scope_names() -> tuple[str, ...]:
        return ("binary_proj", "binary_loss")


class ClassificationHead(WeightNamesMixin, keras.layers.Layer):
    """Classification (n_class > 1) or regression (n_class = 1) on the pooled summary: dropout, dense.

    Scope `<scope>/logit` (the original used the lower-cased task name, e.g. `mnli_matched`, `sts-b`).
    """

    kind = "classification"

    def __init__(self, config: ModelConfig, n_class: int, scope: str = "cls", **kwargs) -> None:
        super().__init__(name=kwargs.pop("name", re.sub(r"\W", "_", scope)), **kwargs)
        self.scope, self.n_class = scope, n_class
        self.dropout = keras.layers.Dropout(config.dropout, dtype=self.dtype_policy)
        self.logit = EinsumDense((config.d_model,), (n_class,), make_initializer(config), name="logit",
                                 dtype=self.dtype_policy)
        self.built = True

    def call(self, pooled: tf.Tensor, training: bool = False) -> tf.Tensor:
        return tf.cast(self.logit(self.dropout(pooled, training=training)), tf.float32)

    def weight_names(self) -> dict[str, Any]:
        return {f"{self.scope}/logit/{k}": v for k, v in self.logit.weight_names().items()}

    def scope_names(self) -> tuple[str, ...]:
        return (self.scope,)


class MultipleChoiceHead(WeightNamesMixin, keras.layers.Layer):
    """RACE head: pooled summary of each (question+option, passage) row -> dropout -> dense 1 -> [B, choices]."""

    kind = "multiple_choice"

    def __init__(self, config: ModelConfig, scope: str = "race", **kwargs) -> None:
        super().__init__(name=kwargs.pop("name", scope), **kwargs)
        self.scope = scope
        self.dropout = keras.layers.Dropout(config.dropout, dtype=self.dtype_policy)
        self.logits = EinsumDense((config.d_model,), (1,), make_initializer(config), name="logits",
                                  dtype=self.dtype_policy)
        self.built = True

    def call(self, pooled: tf.Tensor, num_choices: int, training: bool = False) -> tf.Tensor:
        """`pooled` [B·num_choices, D], choices of one example adjacent -> logits [B, num_choices]."""
        logits = tf.cast(self.logits(self.dropout(pooled, training=training)), tf.float32)
        return tf.reshape(logits, [-1, num_choices])

    def weight_names(self) -> dict[str, Any]:
        return {f"{self.scope}/logits/{k}": v for k, v in self.logits.weight_names().items()}

    def scope_names(self) -> tuple[str, ...]:
        return (self.scope,)


class SquadHead(WeightNamesMixin, keras.layers.Layer):
    """The original XLNet-style SQuAD head on the decoder output (spec §6.3.4).

        out = head(hidden, p_mask, cls_index, start_positions=gt_start)   # training: end conditioned on gt start
        out = head(hidden, p_mask, cls_index)                              # inference: top-k starts, then ends

    Training returns `start_log_probs`, `end_log_probs` [B, L] and `cls_logits` [B]; inference returns
    `start_top_log_probs/index` [B, K], `end_top_log_probs/index` [B, K·K'] (or [B, K'] without
    `conditional_end`) and `cls_logits`. `p_mask` is 1 where a token cannot be part of an answer.
    """

    kind = "squad"

    def __init__(self, config: ModelConfig, conditional_end: bool = True, use_answer_class: bool = True,
                 start_n_top: int = 5, end_n_top: int = 5, **kwargs) -> None:
        super().__init__(name=kwargs.pop("name", "squad"), **kwargs)
        d, init, policy = config.d_model, make_initializer(config), self.dtype_policy
        self.conditional_end, self.use_answer_class = conditional_end, use_answer_class
        self.start_n_top, self.end_n_top = start_n_top, end_n_top
        self.start = EinsumDense((d,), (1,), init, name="dense", dtype=policy)
        if conditional_end:
            self.end_hidden = EinsumDense((2 * d,), (d,), init, activation="tanh", name="dense_0", dtype=policy)
            self.end_norm = LayerNorm(d, config.layer_norm_eps, name="layer_norm", dtype=policy)
            self.end = EinsumDense((d,), (1,), init, name="dense_1", dtype=policy)
        else:
            self.end = EinsumDense((d,), (1,), init, name="dense", dtype=policy)
        if use_answer_class:
            self.answer_hidden = EinsumDense((2 * d,), (d,), init, activation="tanh", name="dense_0", dtype=policy)
            self.answer_dropout = keras.layers.Dropout(config.dropout, dtype=policy)
            self.answer = EinsumDense((d,), (1,), init, use_bias=False, name="dense_1", dtype=policy)
        self.built = True

    @staticmethod
    def _masked(logits: tf.Tensor, p_mask: tf.Tensor) -> tf.Tensor:
        return logits * (1.0 - p_mask) - _MASKED_LOGIT * p_mask

    def _end_logits(self, hidden: tf.Tensor, start_features: tf.Tensor) -> tf.Tensor:
        """hidden [B, L, D], start_features [B, ..., D] broadcast over L -> float32 logits [B, ..., L]."""
        if not self.conditional_end:
            return tf.cast(self.end(hidden)[..., 0], tf.float32)
        if start_features.shape.rank == 2:  # one start per example
            tiled = tf.broadcast_to(start_features[:, None], tf.shape(hidden))
            x = tf.concat([hidden, tiled], axis=-1)
        else:  # [B, K, D]: K candidate starts, each scored against every position
            k = start_features.shape[1]
            tiled_hidden = tf.broadcast_to(hidden[:, None], [tf.shape(hidden)[0], k, hidden.shape[1], hidden.shape[2]])
            tiled_start = tf.broadcast_to(start_features[:, :, None], tf.shape(tiled_hidden))
            x = tf.concat([tiled_hidden, tiled_start], axis=-1)
        return tf.cast(self.end(self.end_norm(self.end_hidden(x)))[..., 0], tf.float32)

    def call(self, hidden: tf.Tensor, p_mask: tf.Tensor, cls_index: tf.Tensor,
             start_positions: tf.Tensor | None = None, training: bool = False) -> dict[str, tf.Tensor]:
        p_mask = tf.cast(p_mask, tf.float32)
        start_logits = self._masked(tf.cast(self.start(hidden)[..., 0], tf.float32), p_mask)
        start_log_probs = tf.nn.log_softmax(start_logits, axis=-1)
        outputs: dict[str, tf.Tensor] = {}
        if start_positions is not None:
            start_features = tf.gather(hidden, tf.cast(start_positions, tf.int32), batch_dims=1)
            end_logits = self._masked(self._end_logits(hidden, start_features), p_mask)
            outputs.update(start_log_probs=start_log_probs, end_log_probs=tf.nn.log_softmax(end_logits, axis=-1))
        else:
            top_log_probs, top_index = tf.math.top_k(start_log_probs, k=self.start_n_top)
            outputs.update(start_top_log_probs=top_log_probs, start_top_index=top_index)
            if self.conditional_end:
                start_features = tf.gather(hidden, top_index, batch_dims=1)              # [B, K, D]
                end_logits = self._masked(self._end_logits(hidden, start_features), p_mask[:, None])
                end_top_log_probs, end_top_index = tf.math.top_k(tf.nn.log_softmax(end_logits, -1), k=self.end_n_top)
                batch = tf.shape(hidden)[0]
                outputs.update(end_top_log_probs=tf.reshape(end_top_log_probs, [batch, -1]),
                               end_top_index=tf.reshape(end_top_index, [batch, -1]))
            else:
                end_logits = self._masked(self._end_logits(hidden, None), p_mask)
                end_top_log_probs, end_top_index = tf.math.top_k(tf.nn.log_softmax(end_logits, -1), k=self.end_n_top)
                outputs.update(end_top_log_probs=end_top_log_probs, end_top_index=end_top_index)
        cls_index = tf.cast(cls_index, tf.int32)
        if self.use_answer_class:
            cls_features = tf.gather(hidden, cls_index, batch_dims=1)
            start_probs = tf.cast(tf.nn.softmax(start_logits, axis=-1), hidden.dtype)
            start_summary = tf.einsum("bl,bld->bd", start_probs, hidden)
            x = self.answer_hidden(tf.concat([start_summary, cls_features], axis=-1))
            outputs["cls_logits"] = tf.cast(self.answer(self.answer_dropout(x, training=training))[:, 0], tf.float32)
        else:
            outputs["cls_logits"] = tf.gather(start_log_probs, cls_index, batch_dims=1)
        return outputs

    def weight_names(self) -> dict[str, Any]:
        names = {f"start_logits/dense/{k}": v for k, v in self.start.weight_names().items()}
        if self.conditional_end:
            parts = {"dense_0": self.end_hidden, "layer_norm": self.end_norm, "dense_1": self.end}
        else:
            parts = {"dense": self.end}
        if self.use_answer_class:
            parts_answer = {"dense_0": self.answer_hidden, "dense_1": self.answer}
            for scope, layer in parts_answer.items():
                names.update({f"answer_class/{scope}/{k}": v for k, v in layer.weight_names().items()})
        for scope, layer in parts.items():
            names.update({f"end_logits/{scope}/{k}": v for k, v in layer.weight_names().items()})
        return names

    @staticmethod
    def scope_names() -> tuple[str, ...]:
        return ("start_logits", "end_logits", "answer_class")
