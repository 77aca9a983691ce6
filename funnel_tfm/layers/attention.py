"""Relative multi-head attention of the Funnel-Transformer, in both positional forms (semantics M4–M6).

Score = content (AC) + [positional (BD) + segment (EF)] * cls_mask, masked and normalised in float32.

* `rel_shift` (GPU/CPU): project one row of sinusoids per relative distance, then the reshape trick turns
  [Lq, P] scores into [Lq, Lk] without a gather.
* `factorized` (TPU): sin((p_q - p_k)w) and cos(...) are expanded into products of per-position terms, so
  BD is two einsums with no shift at all.

Both forms compute the same numbers (up to float rounding) wherever the original's two forms agree. The
structures (`AttentionInputs`) are computed once per forward by `attention_structure.AttentionStructure`.

    attn = RelativeAttention(d_model=768, n_head=12, d_head=64, dropout=0.1, attention_dropout=0.1,
                             layer_norm_eps=1e-8, initializer=initializer, relative=True, name="rel_attn")
    y = attn(q, kv, kv, inputs=AttentionInputs(positions, same_segment, key_mask, cls_mask))
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Union

import keras
from keras import ops

from funnel_tfm.layers.core import EinsumDense, LayerNorm, PositionwiseFFN, WeightNamesMixin, attention_scale
from funnel_tfm.layers.dropout import Dropout

# The original subtracts 1e6 from masked scores (semantics M6). The subtraction happens in float32 here
# whatever the precision policy, so the value never overflows float16.
MASK_PENALTY = 1e6


@dataclasses.dataclass(frozen=True)
class RelShiftPositions:
    """Sinusoid rows for the relative distances max_dist, max_dist - S_k, ..., min_dist and the query shift."""

    table: Any  # [P, d_model]
    shift: int


@dataclasses.dataclass(frozen=True)
class FactorizedPositions:
    """Per-position factors: BD = Σ_d QR·q_sin·k_first + Σ_d QR·q_cos·k_second (semantics M5)."""

    q_sin: Any     # [Lq, d_model] = [sin φq, sin φq]
    q_cos: Any     # [Lq, d_model] = [cos φq, cos φq]
    k_first: Any   # [Lk, d_model] = [cos φk, sin φk]
    k_second: Any  # [Lk, d_model] = [-sin φk, cos φk]


Positions = Union[RelShiftPositions, FactorizedPositions]


@dataclasses.dataclass(frozen=True)
class AttentionInputs:
    """Everything an attention call needs besides the three streams."""

    positions: Optional[Positions]  # None for rel_attn_type="null"
    same_segment: Optional[Any]     # [B, Lq, Lk] bool, None without segment ids or for "null"
    key_mask: Any                   # [B, Lk] float32, 1 = real key, 0 = padding
    cls_mask: Optional[Any]         # [Lq, Lk] 0 on row 0 and column 0, 1 elsewhere; None for "null"


def rel_shift(scores, shift: int, key_len: int):
    """[B, N, Lq, P] -> [B, N, Lq, Lk]: view as [P, Lq], drop `shift` rows, view as [Lq, P-shift], keep Lk."""
    heads, q_len, rows = scores.shape[1], scores.shape[2], scores.shape[3]
    x = ops.reshape(scores, (-1, heads, rows, q_len))[:, :, shift:, :]
    x = ops.reshape(x, (-1, heads, q_len, rows - shift))
    return x[..., :key_len]


class RelativeAttention(WeightNamesMixin, keras.layers.Layer):
    """Relative multi-head attention with post-LN residual on the (possibly pooled) query; scope `rel_attn`.

    `relative=False` is the original's `null` attention type (absolute positions enter in the embedding).
    """

    def __init__(self, d_model: int, n_head: int, d_head: int, dropout: float, attention_dropout: float,
                 layer_norm_eps: float, initializer: Any, relative: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_head, self.d_head, self.scale = n_head, d_head, attention_scale(d_head)
        policy = self.dtype_policy
        self.q = EinsumDense((d_model,), (n_head, d_head), initializer, use_bias=False, name="q", dtype=policy)
        self.k = EinsumDense((d_model,), (n_head, d_head), initializer, name="k", dtype=policy)
        self.v = EinsumDense((d_model,), (n_head, d_head), initializer, name="v", dtype=policy)
        self.o = EinsumDense((n_head, d_head), (d_model,), initializer, name="o", dtype=policy)
        self.r_w_bias = self.add_weight(shape=(n_head, d_head), initializer=initializer, name="r_w_bias")
        self.relative = relative
        if relative:
            self.r_r_bias = self.add_weight(shape=(n_head, d_head), initializer=initializer, name="r_r_bias")
            self.r_kernel = self.add_weight(shape=(d_model, n_head, d_head), initializer=initializer,
                                            name="r_kernel")
            self.r_s_bias = self.add_weight(shape=(n_head, d_head), initializer=initializer, name="r_s_bias")
            self.seg_embed = self.add_weight(shape=(2, n_head, d_head), initializer=initializer, name="seg_embed")
        self.prob_dropout = Dropout(attention_dropout, dtype=policy)
        self.output_dropout = Dropout(dropout, dtype=policy)
        self.layer_norm = LayerNorm(d_model, layer_norm_eps, name="layer_norm", dtype=policy)
        self.built = True

    def _bias(self, variable, dtype):
        return ops.cast(variable, dtype) * ops.cast(self.scale, dtype)

    def positional_scores(self, q_head, positions: Positions, key_len: int):
        """BD [B, N, Lq, Lk] for either positional form; q_head is already scaled."""
        dtype = q_head.dtype
        q_r = q_head + self._bias(self.r_r_bias, dtype)
        r_kernel = ops.cast(self.r_kernel, dtype)
        if isinstance(positions, RelShiftPositions):
            r_head = ops.einsum("pd,dnh->pnh", ops.cast(positions.table, dtype), r_kernel)
            scores = ops.einsum("binh,pnh->bnip", q_r, r_head)
            return rel_shift(scores, positions.shift, key_len)
        q_r = ops.einsum("binh,dnh->bind", q_r, r_kernel)  # [B, Lq, N, d_model]
        first = ops.einsum("bind,jd->bnij", q_r * ops.cast(positions.q_sin, dtype)[None, :, None],
                           ops.cast(positions.k_first, dtype))
        second = ops.einsum("bind,jd->bnij", q_r * ops.cast(positions.q_cos, dtype)[None, :, None],
                            ops.cast(positions.k_second, dtype))
        return first + second

    def segment_scores(self, q_head, same_segment):
        """EF [B, N, Lq, Lk]: the 'same segment' or the 'different segment' bias of each query row."""
        q_s = q_head + self._bias(self.r_s_bias, q_head.dtype)
        bias = ops.einsum("binh,snh->bnis", q_s, ops.cast(self.seg_embed, q_head.dtype))  # s=0 different, 1 same
        return ops.where(same_segment[:, None], bias[..., 1:2], bias[..., 0:1])

    def call(self, query, key, value, inputs: AttentionInputs | None = None, training: bool = False):
        dtype = query.dtype
        q_head = self.q(query) * ops.cast(self.scale, dtype)
        k_head, v_head = self.k(key), self.v(value)
        scores = ops.einsum("binh,bjnh->bnij", q_head + self._bias(self.r_w_bias, dtype), k_head)
        if self.relative and inputs.positions is not None:
            extra = self.positional_scores(q_head, inputs.positions, key.shape[1])
            if inputs.same_segment is not None:
                extra = extra + self.segment_scores(q_head, inputs.same_segment)
            scores = scores + extra * ops.cast(inputs.cls_mask, dtype)
        # Masking and softmax in float32 under every policy.
        key_mask = ops.cast(inputs.key_mask, "float32")
        scores = ops.cast(scores, "float32") - MASK_PENALTY * (1.0 - key_mask[:, None, None, :])
        probs = ops.cast(ops.softmax(scores, axis=-1), dtype)
        probs = self.prob_dropout(probs, training=training)
        context = ops.einsum("bnij,bjnh->binh", probs, v_head)
        output = self.output_dropout(self.o(context), training=training)
        return self.layer_norm(query + output)

    def _own_weight_names(self) -> dict[str, Any]:
        names = {"r_w_bias": self.r_w_bias}
        if self.relative:
            names.update({"r_r_bias": self.r_r_bias, "r/kernel": self.r_kernel, "r_s_bias": self.r_s_bias,
                          "seg_embed": self.seg_embed})
        return names

    def _named_sublayers(self) -> dict[str, Any]:
        return {"q": self.q, "k": self.k, "v": self.v, "o": self.o, "layer_norm": self.layer_norm}


class FunnelLayer(WeightNamesMixin, keras.layers.Layer):
    """One Transformer layer: relative attention then FFN, both post-LN (`layer_k` in the original).

        layer = FunnelLayer(d_model=768, n_head=12, d_head=64, d_inner=3072, activation="gelu", dropout=0.1,
                            attention_dropout=0.1, activation_dropout=0.0, layer_norm_eps=1e-8,
                            initializer=initializer, relative=True, name="layer_0")
    """

    def __init__(self, d_model: int, n_head: int, d_head: int, d_inner: int, activation: str, dropout: float,
                 attention_dropout: float, activation_dropout: float, layer_norm_eps: float, initializer: Any,
                 relative: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.attention = RelativeAttention(d_model, n_head, d_head, dropout, attention_dropout, layer_norm_eps,
                                           initializer, relative, name="rel_attn", dtype=self.dtype_policy)
        self.ffn = PositionwiseFFN(d_model, d_inner, activation, dropout, activation_dropout, layer_norm_eps,
                                   initializer, name="ff", dtype=self.dtype_policy)
        self.built = True

    def call(self, query, key, value, inputs: AttentionInputs | None = None, training: bool = False):
        return self.ffn(self.attention(query, key, value, inputs=inputs, training=training), training=training)

    def _named_sublayers(self) -> dict[str, Any]:
        return {"rel_attn": self.attention, "ff": self.ffn}
