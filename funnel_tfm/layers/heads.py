"""Task heads on top of `FunnelTFM`, with the original's variable names (semantics M11, F3, F5), in keras.ops.

Each head takes explicit widths and rates; `funnel_tfm.layers.head_factories` builds them from a ModelConfig.

    out = model(inputs)
    lm_logits = LMHead(model.embedding, d_model=768, d_embed=768, vocab_size=30522, **common)(hidden, positions)
    rtd_logits = DiscriminatorHead(d_model=768, initializer=init)(out["decoder_output"])          # [B, L]
    cls_logits = ClassificationHead(768, n_class=3, dropout=0.1, initializer=init, scope="mnli")(pooled)
    race_logits = MultipleChoiceHead(768, dropout=0.1, initializer=init)(pooled, num_choices=4)  # [B, 4]
    tag_logits = TokenClassificationHead(768, n_class=9, dropout=0.1, initializer=init)(out["decoder_output"])
    squad = SquadHead(768, layer_norm_eps=1e-8, dropout=0.1, initializer=init)(hidden, p_mask, cls_index)

Every head exposes `weight_names()` relative to the `model/` scope and `scope_names()`, the top-level scopes
its weights live under, which is how a checkpoint reader recognises which heads a checkpoint holds.
All logits are float32 whatever the dtype policy.
"""

from __future__ import annotations

import re
from typing import Any

import keras
from keras import ops

from funnel_tfm.layers.core import EinsumDense, LayerNorm, WeightNamesMixin, take_along_sequence
from funnel_tfm.layers.dropout import Dropout

# Large negative logit for positions that cannot be an answer (the original's 1e30, applied in float32).
_MASKED_LOGIT = 1e30


class LMHead(WeightNamesMixin, keras.layers.Layer):
    """The original LM head (semantics M11): dense D->E with `ff_activation`, LayerNorm, then the tied table.

    `logits = LN(act(h·W + b)) · word_embeddingᵀ + lm_loss/bias`, in float32. With `positions` [B, K], only
    those positions are projected (the original computed MLM logits only at the `num_predict` targets).
    """

    kind = "lm"

    def __init__(self, embedding, d_model: int, d_embed: int, vocab_size: int, activation: str,
                 layer_norm_eps: float, initializer: Any, **kwargs) -> None:
        super().__init__(**kwargs)
        self.embedding = embedding  # shares the variable: gradients reach the input table
        self.dense = EinsumDense((d_model,), (d_embed,), initializer, activation=activation, name="dense",
                                 dtype=self.dtype_policy)
        self.layer_norm = LayerNorm(d_embed, layer_norm_eps, name="layer_norm", dtype=self.dtype_policy)
        self.bias = self.add_weight(shape=(vocab_size,), initializer="zeros", name="lm_loss_bias", autocast=False)
        self.built = True

    def call(self, hidden, positions=None):
        if positions is not None:
            hidden = take_along_sequence(hidden, positions)
        projected = self.layer_norm(self.dense(hidden))
        table = ops.cast(self.embedding.word_embedding, projected.dtype)
        logits = ops.einsum("bke,ve->bkv", projected, table)
        return ops.cast(logits, "float32") + ops.cast(self.bias, "float32")

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

    def __init__(self, d_model: int, initializer: Any, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dense = EinsumDense((d_model,), (d_model,), initializer, activation="gelu", name="dense",
                                 dtype=self.dtype_policy)
        self.weight = self.add_weight(shape=(d_model,), initializer=initializer, name="binary_loss_weight",
                                      autocast=False)
        self.bias = self.add_weight(shape=(1,), initializer="zeros", name="binary_loss_bias", autocast=False)
        self.built = True

    def call(self, hidden):
        projected = ops.cast(self.dense(hidden), "float32")
        return ops.einsum("bld,d->bl", projected, ops.cast(self.weight, "float32")) + ops.cast(self.bias, "float32")

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

    def __init__(self, d_model: int, n_class: int, dropout: float, initializer: Any, scope: str = "cls",
                 **kwargs) -> None:
        super().__init__(name=kwargs.pop("name", re.sub(r"\W", "_", scope)), **kwargs)
        self.scope, self.n_class = scope, n_class
        self.dropout = Dropout(dropout, dtype=self.dtype_policy)
        self.logit = EinsumDense((d_model,), (n_class,), initializer, name="logit", dtype=self.dtype_policy)
        self.built = True

    def call(self, pooled, training: bool = False):
        return ops.cast(self.logit(self.dropout(pooled, training=training)), "float32")

    def weight_names(self) -> dict[str, Any]:
        return {f"{self.scope}/logit/{k}": v for k, v in self.logit.weight_names().items()}

    def scope_names(self) -> tuple[str, ...]:
        return (self.scope,)


class MultipleChoiceHead(WeightNamesMixin, keras.layers.Layer):
    """RACE head: pooled summary of each (question+option, passage) row -> dropout -> dense 1 -> [B, choices]."""

    kind = "multiple_choice"

    def __init__(self, d_model: int, dropout: float, initializer: Any, scope: str = "race", **kwargs) -> None:
        super().__init__(name=kwargs.pop("name", scope), **kwargs)
        self.scope = scope
        self.dropout = Dropout(dropout, dtype=self.dtype_policy)
        self.logits = EinsumDense((d_model,), (1,), initializer, name="logits", dtype=self.dtype_policy)
        self.built = True

    def call(self, pooled, num_choices: int, training: bool = False):
        """`pooled` [B·num_choices, D], choices of one example adjacent -> logits [B, num_choices]."""
        logits = ops.cast(self.logits(self.dropout(pooled, training=training)), "float32")
        return ops.reshape(logits, (-1, num_choices))

    def weight_names(self) -> dict[str, Any]:
        return {f"{self.scope}/logits/{k}": v for k, v in self.logits.weight_names().items()}

    def scope_names(self) -> tuple[str, ...]:
        return (self.scope,)


class TokenClassificationHead(WeightNamesMixin, keras.layers.Layer):
    """Tagging (NER, chunking) on the full-length output: dropout, dense -> float32 logits [B, L, n_class].

        logits = TokenClassificationHead(768, n_class=9, dropout=0.1, initializer=init)(out["decoder_output"])

    Weights `tagger/logit/kernel` [D, n_class] and `tagger/logit/bias`, named like the classification head's
    `<scope>/logit`. The weights alone cannot say whether they score tokens or sequences, so the scope is fixed
    and reserved: a checkpoint reader takes `tagger/logit` for this head, any other `<scope>/logit` for a
    classification head.
    """

    kind = "token_classification"
    SCOPE = "tagger"

    def __init__(self, d_model: int, n_class: int, dropout: float, initializer: Any, **kwargs) -> None:
        super().__init__(name=kwargs.pop("name", self.SCOPE), **kwargs)
        self.scope, self.n_class = self.SCOPE, n_class
        self.dropout = Dropout(dropout, dtype=self.dtype_policy)
        self.logit = EinsumDense((d_model,), (n_class,), initializer, name="logit", dtype=self.dtype_policy)
        self.built = True

    def call(self, hidden, training: bool = False):
        """`hidden` [B, L, D] -> float32 logits [B, L, n_class]."""
        return ops.cast(self.logit(self.dropout(hidden, training=training)), "float32")

    def weight_names(self) -> dict[str, Any]:
        return {f"{self.scope}/logit/{k}": v for k, v in self.logit.weight_names().items()}

    def scope_names(self) -> tuple[str, ...]:
        return (self.scope,)


class SquadHead(WeightNamesMixin, keras.layers.Layer):
    """The original XLNet-style SQuAD head on the decoder output (semantics F5).

        out = head(hidden, p_mask, cls_index, start_positions=gt_start)   # training: end conditioned on gt start
        out = head(hidden, p_mask, cls_index)                              # inference: top-k starts, then ends

    Training returns `start_log_probs`, `end_log_probs` [B, L] and `cls_logits` [B]; inference returns
    `start_top_log_probs/index` [B, K], `end_top_log_probs/index` [B, K·K'] (or [B, K'] without
    `conditional_end`) and `cls_logits`. `p_mask` is 1 where a token cannot be part of an answer.
    """

    kind = "squad"

    def __init__(self, d_model: int, layer_norm_eps: float, dropout: float, initializer: Any,
                 conditional_end: bool = True, use_answer_class: bool = True, start_n_top: int = 5,
                 end_n_top: int = 5, **kwargs) -> None:
        super().__init__(name=kwargs.pop("name", "squad"), **kwargs)
        d, init, policy = d_model, initializer, self.dtype_policy
        self.conditional_end, self.use_answer_class = conditional_end, use_answer_class
        self.start_n_top, self.end_n_top = start_n_top, end_n_top
        self.start = EinsumDense((d,), (1,), init, name="dense", dtype=policy)
        if conditional_end:
            self.end_hidden = EinsumDense((2 * d,), (d,), init, activation="tanh", name="dense_0", dtype=policy)
            self.end_norm = LayerNorm(d, layer_norm_eps, name="layer_norm", dtype=policy)
            self.end = EinsumDense((d,), (1,), init, name="dense_1", dtype=policy)
        else:
            self.end = EinsumDense((d,), (1,), init, name="dense", dtype=policy)
        if use_answer_class:
            self.answer_hidden = EinsumDense((2 * d,), (d,), init, activation="tanh", name="dense_0", dtype=policy)
            self.answer_dropout = Dropout(dropout, dtype=policy)
            self.answer = EinsumDense((d,), (1,), init, use_bias=False, name="dense_1", dtype=policy)
        self.built = True

    @staticmethod
    def _masked(logits, p_mask):
        return logits * (1.0 - p_mask) - _MASKED_LOGIT * p_mask

    def _end_logits(self, hidden, start_features):
        """hidden [B, L, D], start_features [B, ..., D] broadcast over L -> float32 logits [B, ..., L]."""
        if not self.conditional_end:
            return ops.cast(self.end(hidden)[..., 0], "float32")
        if len(start_features.shape) == 2:  # one start per example
            tiled = ops.broadcast_to(start_features[:, None], ops.shape(hidden))
            x = ops.concatenate([hidden, tiled], axis=-1)
        else:  # [B, K, D]: K candidate starts, each scored against every position
            k = start_features.shape[1]
            shape = (ops.shape(hidden)[0], k, hidden.shape[1], hidden.shape[2])
            tiled_hidden = ops.broadcast_to(hidden[:, None], shape)
            tiled_start = ops.broadcast_to(start_features[:, :, None], shape)
            x = ops.concatenate([tiled_hidden, tiled_start], axis=-1)
        return ops.cast(self.end(self.end_norm(self.end_hidden(x)))[..., 0], "float32")

    def _top_ends(self, end_logits):
        return ops.top_k(ops.log_softmax(end_logits, axis=-1), k=self.end_n_top)

    def call(self, hidden, p_mask, cls_index, start_positions=None, training: bool = False) -> dict[str, Any]:
        p_mask = ops.cast(p_mask, "float32")
        start_logits = self._masked(ops.cast(self.start(hidden)[..., 0], "float32"), p_mask)
        start_log_probs = ops.log_softmax(start_logits, axis=-1)
        outputs: dict[str, Any] = {}
        if start_positions is not None:
            start_features = take_along_sequence(hidden, ops.reshape(start_positions, (-1, 1)))[:, 0]
            end_logits = self._masked(self._end_logits(hidden, start_features), p_mask)
            outputs.update(start_log_probs=start_log_probs, end_log_probs=ops.log_softmax(end_logits, axis=-1))
        else:
            top_log_probs, top_index = ops.top_k(start_log_probs, k=self.start_n_top)
            outputs.update(start_top_log_probs=top_log_probs, start_top_index=top_index)
            if self.conditional_end:
                start_features = take_along_sequence(hidden, top_index)                    # [B, K, D]
                end_logits = self._masked(self._end_logits(hidden, start_features), p_mask[:, None])
                end_top_log_probs, end_top_index = self._top_ends(end_logits)
                outputs.update(end_top_log_probs=ops.reshape(end_top_log_probs, (ops.shape(hidden)[0], -1)),
                               end_top_index=ops.reshape(end_top_index, (ops.shape(hidden)[0], -1)))
            else:
                end_top_log_probs, end_top_index = self._top_ends(self._masked(self._end_logits(hidden, None), p_mask))
                outputs.update(end_top_log_probs=end_top_log_probs, end_top_index=end_top_index)
        cls_index = ops.reshape(ops.cast(cls_index, "int32"), (-1, 1))
        if self.use_answer_class:
            cls_features = take_along_sequence(hidden, cls_index)[:, 0]
            start_probs = ops.cast(ops.softmax(start_logits, axis=-1), hidden.dtype)
            start_summary = ops.einsum("bl,bld->bd", start_probs, hidden)
            x = self.answer_hidden(ops.concatenate([start_summary, cls_features], axis=-1))
            outputs["cls_logits"] = ops.cast(self.answer(self.answer_dropout(x, training=training))[:, 0], "float32")
        else:
            outputs["cls_logits"] = ops.take_along_axis(start_log_probs, cls_index, axis=1)[:, 0]
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
