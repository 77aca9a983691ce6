"""Relative multi-head attention of the Funnel-Transformer, in both positional forms (spec §2.4–§2.5).

Score = content (AC) + [positional (BD) + segment (EF)] * cls_mask, masked and normalised in float32.

* `rel_shift` (GPU/CPU): project one row of sinusoids per relative distance, then the reshape trick turns
  [Lq, P] scores into [Lq, Lk] without a gather.
* `factorized` (TPU): sin((p_q - p_k)w) and cos(...) are expanded into products of per-position terms, so
  BD is two einsums with no shift at all.

Both forms compute the same numbers (up to float rounding) wherever the original's two forms agree.

    attn = RelativeAttention(config, name="rel_attn")
    y = attn(q, kv, kv, inputs=AttentionInputs(positions, same_segment, key_mask, cls_mask))
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Union

import keras
import numpy as np
import tensorflow as tf

from funnel_tfm.config import ModelConfig
from funnel_tfm.layers import (EinsumDense, LayerNorm, PositionwiseFFN, WeightNamesMixin, attention_scale,
                               make_initializer)

# The original subtracts 1e6 from masked scores (spec Q26). The subtraction happens in float32 here whatever
# the precision policy, so the value never overflows float16.
MASK_PENALTY = 1e6


def inverse_frequencies(d_model: int) -> np.ndarray:
    """w_f = 1 / 10000^(f / (d_model/2)) for f < d_model/2, float32."""
    half = d_model // 2
    return (1.0 / (10000.0 ** (np.arange(half, dtype=np.float64) / half))).astype(np.float32)


def sinusoids(positions: np.ndarray, d_model: int) -> tuple[tf.Tensor, tf.Tensor]:
    """sin(p·w) and cos(p·w), each [len(positions), d_model/2], float32."""
    phase = tf.constant(np.asarray(positions, np.float32)[:, None]) * tf.constant(inverse_frequencies(d_model))[None]
    return tf.sin(phase), tf.cos(phase)


@dataclasses.dataclass(frozen=True)
class RelShiftPositions:
    """Sinusoid rows for the relative distances max_dist, max_dist - S_k, ..., min_dist and the query shift."""

    table: tf.Tensor  # [P, d_model]
    shift: int


@dataclasses.dataclass(frozen=True)
class FactorizedPositions:
    """Per-position factors: BD = Σ_d QR·q_sin·k_first + Σ_d QR·q_cos·k_second (spec §2.5.2)."""

    q_sin: tf.Tensor     # [Lq, d_model] = [sin φq, sin φq]
    q_cos: tf.Tensor     # [Lq, d_model] = [cos φq, cos φq]
    k_first: tf.Tensor   # [Lk, d_model] = [cos φk, sin φk]
    k_second: tf.Tensor  # [Lk, d_model] = [-sin φk, cos φk]


Positions = Union[RelShiftPositions, FactorizedPositions]


@dataclasses.dataclass(frozen=True)
class AttentionInputs:
    """Everything an attention call needs besides the three streams."""

    positions: Optional[Positions]      # None for rel_attn_type="null"
    same_segment: Optional[tf.Tensor]   # [B, Lq, Lk] bool, None without segment ids or for "null"
    key_mask: tf.Tensor                 # [B, Lk] float32, 1 = real key, 0 = padding
    cls_mask: Optional[tf.Tensor]       # [Lq, Lk] 0 on row 0 and column 0, 1 elsewhere; None for "null"


def arithmetic_progression(positions: np.ndarray, what: str) -> tuple[int, int]:
    """(start, step) of an evenly spaced position array (step 1 for a single position)."""
    positions = np.asarray(positions, np.int64)
    if len(positions) == 1:
        return int(positions[0]), 1
    step = int(positions[1] - positions[0])
    if step <= 0 or np.any(np.diff(positions) != step):
        raise ValueError(f"rel_shift needs evenly spaced increasing {what} positions, got {positions.tolist()}")
    return int(positions[0]), step


def rel_shift_distances(q_positions: np.ndarray, k_positions: np.ndarray) -> tuple[np.ndarray, int]:
    """Relative distances for the shift trick and the shift, with BD[i, j] = X[i, shift·(Lq − i) + j].

    Row p of the table holds distance `max_dist − p·S_k`, which after the shift equals q_pos[i] − k_pos[j].
    """
    q_start, q_step = arithmetic_progression(q_positions, "query")
    k_start, k_step = arithmetic_progression(k_positions, "key")
    if len(q_positions) == 1:
        q_step = k_step
    if q_step % k_step:
        raise ValueError(f"rel_shift needs the query stride ({q_step}) to be a multiple of the key stride ({k_step})")
    shift = q_step // k_step
    max_dist = q_start - k_start + shift * len(q_positions) * k_step
    min_dist = q_start - int(k_positions[-1])
    return np.arange(max_dist, min_dist - 1, -k_step, dtype=np.int64), shift


def rel_shift(scores: tf.Tensor, shift: int, key_len: int) -> tf.Tensor:
    """[B, N, Lq, P] -> [B, N, Lq, Lk]: view as [P, Lq], drop `shift` rows, view as [Lq, P-shift], keep Lk."""
    batch, heads = tf.shape(scores)[0], tf.shape(scores)[1]
    q_len, rows = scores.shape[2], scores.shape[3]
    x = tf.reshape(scores, [batch, heads, rows, q_len])[:, :, shift:, :]
    x = tf.reshape(x, [batch, heads, q_len, rows - shift])
    return x[..., :key_len]


class RelativeAttention(WeightNamesMixin, keras.layers.Layer):
    """Relative multi-head attention with post-LN residual on the (possibly pooled) query; scope `rel_attn`."""

    def __init__(self, config: ModelConfig, d_model: int | None = None, n_head: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config
        d_model, n_head, d_head = d_model or config.d_model, n_head or config.n_head, config.d_head
        self.n_head, self.d_head, self.scale = n_head, d_head, attention_scale(d_head)
        init = make_initializer(config)
        policy = self.dtype_policy
        self.q = EinsumDense((d_model,), (n_head, d_head), init, use_bias=False, name="q", dtype=policy)
        self.k = EinsumDense((d_model,), (n_head, d_head), init, name="k", dtype=policy)
        self.v = EinsumDense((d_model,), (n_head, d_head), init, name="v", dtype=policy)
        self.o = EinsumDense((n_head, d_head), (d_model,), init, name="o", dtype=policy)
        self.r_w_bias = self.add_weight(shape=(n_head, d_head), initializer=init, name="r_w_bias")
        self.relative = config.rel_attn_type != "null"
        if self.relative:
            self.r_r_bias = self.add_weight(shape=(n_head, d_head), initializer=init, name="r_r_bias")
            self.r_kernel = self.add_weight(shape=(d_model, n_head, d_head), initializer=init, name="r_kernel")
            self.r_s_bias = self.add_weight(shape=(n_head, d_head), initializer=init, name="r_s_bias")
            self.seg_embed = self.add_weight(shape=(2, n_head, d_head), initializer=init, name="seg_embed")
        self.prob_dropout = keras.layers.Dropout(config.dropatt, dtype=policy)
        self.output_dropout = keras.layers.Dropout(config.dropout, dtype=policy)
        self.layer_norm = LayerNorm(d_model, config.layer_norm_eps, name="layer_norm", dtype=policy)
        self.built = True

    def _bias(self, variable, dtype) -> tf.Tensor:
        return tf.cast(variable, dtype) * tf.cast(self.scale, dtype)

    def positional_scores(self, q_head: tf.Tensor, positions: Positions, key_len: int) -> tf.Tensor:
        """BD [B, N, Lq, Lk] for either positional form; q_head is already scaled."""
        dtype = q_head.dtype
        q_r = q_head + self._bias(self.r_r_bias, dtype)
        r_kernel = tf.cast(self.r_kernel, dtype)
        if isinstance(positions, RelShiftPositions):
            r_head = tf.einsum("pd,dnh->pnh", tf.cast(positions.table, dtype), r_kernel)
            scores = tf.einsum("binh,pnh->bnip", q_r, r_head)
            return rel_shift(scores, positions.shift, key_len)
        q_r = tf.einsum("binh,dnh->bind", q_r, r_kernel)  # [B, Lq, N, d_model]
        first = tf.einsum("bind,jd->bnij", q_r * tf.cast(positions.q_sin, dtype)[None, :, None],
                          tf.cast(positions.k_first, dtype))
        second = tf.einsum("bind,jd->bnij", q_r * tf.cast(positions.q_cos, dtype)[None, :, None],
                           tf.cast(positions.k_second, dtype))
        return first + second

    def segment_scores(self, q_head: tf.Tensor, same_segment: tf.Tensor) -> tf.Tensor:
        """EF [B, N, Lq, Lk]: the 'same segment' or the 'different segment' bias of each query row."""
        q_s = q_head + self._bias(self.r_s_bias, q_head.dtype)
        bias = tf.einsum("binh,snh->bnis", q_s, tf.cast(self.seg_embed, q_head.dtype))  # s=0 different, 1 same
        return tf.where(same_segment[:, None], bias[..., 1:2], bias[..., 0:1])

    def call(self, query: tf.Tensor, key: tf.Tensor, value: tf.Tensor, inputs: AttentionInputs | None = None,
             training: bool = False) -> tf.Tensor:
        dtype = query.dtype
        q_head = self.q(query) * tf.cast(self.scale, dtype)
        k_head, v_head = self.k(key), self.v(value)
        scores = tf.einsum("binh,bjnh->bnij", q_head + self._bias(self.r_w_bias, dtype), k_head)
        if self.relative and inputs.positions is not None:
            extra = self.positional_scores(q_head, inputs.positions, key.shape[1])
            if inputs.same_segment is not None:
                extra = extra + self.segment_scores(q_head, inputs.same_segment)
            scores = scores + extra * tf.cast(inputs.cls_mask, dtype)
        # Masking and softmax in float32 under every policy.
        scores = tf.cast(scores, tf.float32) - MASK_PENALTY * (1.0 - inputs.key_mask[:, None, None, :])
        probs = tf.cast(tf.nn.softmax(scores, axis=-1), dtype)
        probs = self.prob_dropout(probs, training=training)
        context = tf.einsum("bnij,bjnh->binh", probs, v_head)
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
    """One Transformer layer: relative attention then FFN, both post-LN (`layer_k` in the original)."""

    def __init__(self, config: ModelConfig, d_model: int | None = None, n_head: int | None = None,
                 d_inner: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.attention = RelativeAttention(config, d_model, n_head, name="rel_attn", dtype=self.dtype_policy)
        self.ffn = PositionwiseFFN(config, d_model, d_inner, name="ff", dtype=self.dtype_policy)
        self.built = True

    def call(self, query, key, value, inputs: AttentionInputs | None = None, training: bool = False) -> tf.Tensor:
        return self.ffn(self.attention(query, key, value, inputs=inputs, training=training), training=training)

    def _named_sublayers(self) -> dict[str, Any]:
        return {"rel_attn": self.attention, "ff": self.ffn}

