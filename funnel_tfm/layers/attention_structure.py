"""Attention structures (positions, segment relations, masks), built once per forward and shared by the layers.

A *stage* is the set of tokens of one block (or the pooled query of a block), described by static numpy
position arrays, so everything that depends only on the sequence length is computed in numpy at trace time.

    structure = AttentionStructure("rel_shift", d_model=768, pooling_size=2, separate_cls=True,
                                   truncate_seq=True, dropout=0.1)
    cache = structure.begin(seq_len=128, training=False)
    stage = structure.first_stage(128)
    inputs = structure.attention_inputs(cache, stage, stage, segment_ids, segment_ids, key_mask, training=False)
    pooled = structure.pool_stage(stage, block=1, seq_len=128)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np
from keras import ops

from funnel_tfm.layers.attention import AttentionInputs, FactorizedPositions, RelShiftPositions
from funnel_tfm.layers.dropout import Dropout
from funnel_tfm.layers.pooling import stride_pool

# Segment id of [CLS] (funnel_tfm.data.data_utils.CLS_SEGMENT_ID; the model layer cannot import the data layer,
# and a test checks that the two agree). [CLS] counts as the same segment as every token.
CLS_SEGMENT_ID = 2


def inverse_frequencies(d_model: int) -> np.ndarray:
    """w_f = 1 / 10000^(f / (d_model/2)) for f < d_model/2, float32."""
    half = d_model // 2
    return (1.0 / (10000.0 ** (np.arange(half, dtype=np.float64) / half))).astype(np.float32)


def sinusoids(positions: np.ndarray, d_model: int) -> tuple[Any, Any]:
    """sin(p·w) and cos(p·w), each [len(positions), d_model/2], float32 tensors."""
    phase = ops.convert_to_tensor(np.asarray(positions, np.float32)[:, None]) * \
        ops.convert_to_tensor(inverse_frequencies(d_model))[None]
    return ops.sin(phase), ops.cos(phase)


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


@dataclasses.dataclass(frozen=True)
class Stage:
    """Static description of the tokens of one sequence stage (a block, or the pooled query of a block)."""

    indices: np.ndarray    # position of each token in the block-0 sequence (for `factorized`)
    positions: np.ndarray  # positions that the positional form uses

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.positions)


class AttentionStructure(keras.layers.Layer):
    """Builds `AttentionInputs` per (query stage, key stage) pair once per forward; owns the position dropout."""

    def __init__(self, rel_attn_type: str, d_model: int, pooling_size: int, separate_cls: bool,
                 truncate_seq: bool, dropout: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rel_attn_type, self.d_model, self.pooling_size = rel_attn_type, d_model, pooling_size
        self.separate_cls, self.truncate_seq = separate_cls, truncate_seq
        self.position_dropout = Dropout(dropout, dtype=self.dtype_policy)
        self.built = True

    def begin(self, seq_len: int, training: bool) -> dict:
        """A fresh cache for one forward pass (the factorized form's block-0 sinusoids, dropout on the query side)."""
        cache: dict = {}
        if self.rel_attn_type == "factorized":
            sin, cos = sinusoids(np.arange(seq_len) - seq_len // 2, self.d_model)
            cache["factorized_base"] = {"sin": sin, "cos": cos,
                                        "q_sin": self.position_dropout(sin, training=training),
                                        "q_cos": self.position_dropout(cos, training=training)}
        return cache

    def stage(self, indices: np.ndarray, block: int, seq_len: int) -> Stage:
        if self.rel_attn_type == "rel_shift":
            # The original's rel_shift places token t of block b at (1 - S) + t·S with S = pooling_size^b, also
            # without separate_cls (semantics M4), where it disagrees with the factorized form in the pooling layer.
            stride = self.pooling_size ** block
            positions = (1 - stride) + np.arange(len(indices)) * stride
        else:
            positions = indices - seq_len // 2  # the original's range(-L/2, L/2), generalised to odd lengths
        return Stage(indices=indices, positions=positions)

    def first_stage(self, seq_len: int) -> Stage:
        return self.stage(np.arange(seq_len), 0, seq_len)

    def pool_stage(self, stage: Stage, block: int, seq_len: int) -> Stage:
        indices = stride_pool(stage.indices[None], self.separate_cls, self.truncate_seq, self.pooling_size)[0]
        return self.stage(indices, block, seq_len)

    def _positions(self, q: Stage, k: Stage, cache: dict, training: bool):
        """Positional encodings for one (query stage, key stage) pair, shared by all layers that use it."""
        cache_key = (q.key, k.key)
        if cache_key in cache:
            return cache[cache_key]
        if self.rel_attn_type == "rel_shift":
            distances, shift = rel_shift_distances(q.positions, k.positions)
            sin, cos = sinusoids(distances, self.d_model)
            table = self.position_dropout(ops.concatenate([sin, cos], axis=-1), training=training)
            result = RelShiftPositions(table=table, shift=shift)
        else:
            base = cache["factorized_base"]  # block-0 sinusoids; query side with dropout (semantics M5)

            def pick(table, idx):
                return table if len(idx) == table.shape[0] else ops.take(table, ops.convert_to_tensor(idx), axis=0)

            q_sin, q_cos = pick(base["q_sin"], q.indices), pick(base["q_cos"], q.indices)
            k_sin, k_cos = pick(base["sin"], k.indices), pick(base["cos"], k.indices)
            result = FactorizedPositions(
                q_sin=ops.concatenate([q_sin, q_sin], -1), q_cos=ops.concatenate([q_cos, q_cos], -1),
                k_first=ops.concatenate([k_cos, k_sin], -1), k_second=ops.concatenate([-k_sin, k_cos], -1))
        cache[cache_key] = result
        return result

    def attention_inputs(self, cache: dict, q: Stage, k: Stage, seg_q, seg_k, key_mask,
                         training: bool) -> AttentionInputs:
        if self.rel_attn_type == "null":
            return AttentionInputs(positions=None, same_segment=None, key_mask=key_mask, cls_mask=None)
        same_segment = None
        if seg_q is not None:
            same_segment = ops.logical_or(
                ops.logical_or(ops.equal(seg_q[:, :, None], seg_k[:, None, :]),
                               ops.equal(seg_q, CLS_SEGMENT_ID)[:, :, None]),
                ops.equal(seg_k, CLS_SEGMENT_ID)[:, None, :])
        # Row 0 and column 0 carry no positional or segment term, also without separate_cls (semantics M6).
        cls_mask = np.ones([len(q.indices), len(k.indices)], np.float32)
        cls_mask[0, :] = 0.0
        cls_mask[:, 0] = 0.0
        return AttentionInputs(positions=self._positions(q, k, cache, training), same_segment=same_segment,
                               key_mask=key_mask, cls_mask=ops.convert_to_tensor(cls_mask))
