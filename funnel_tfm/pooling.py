"""Pooling between blocks and upsampling for the decoder (spec §2.6, §2.9), on static sequence lengths.

    pooled = pool_sequence(hidden, "mean", separate_cls=True, truncate_seq=True, size=2)   # [B, 16, D] -> [B, 8, D]
    ids = stride_pool(segment_ids, separate_cls=True, truncate_seq=True, size=2)       # picks [CLS], 1, 3, 5, ...
    full = upsample(pooled, stride=2, target_len=16, separate_cls=True)                 # [B, 16, D]
"""

from __future__ import annotations

import math
from typing import Union

import numpy as np
import tensorflow as tf

Array = Union[tf.Tensor, np.ndarray]


def _split_cls(x: Array, separate_cls: bool, truncate_seq: bool) -> tuple[Array | None, Array]:
    """([CLS] column or None, the body that is pooled) along axis 1."""
    if not separate_cls:
        return None, x
    return x[:, :1], (x[:, 1:-1] if truncate_seq else x[:, 1:])


def _concat(parts: list[Array]) -> Array:
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts, axis=1)
    return tf.concat(parts, axis=1)


def stride_pool(x: Array, separate_cls: bool, truncate_seq: bool, size: int) -> Array:
    """Selection pooling along axis 1 (segment ids, position indices): the first element of each window."""
    cls, body = _split_cls(x, separate_cls, truncate_seq)
    body = body[:, ::size]
    return body if cls is None else _concat([cls, body])


def pool_sequence(x: tf.Tensor, mode: str, separate_cls: bool, truncate_seq: bool, size: int) -> tf.Tensor:
    """Mean / max pooling along axis 1 with window = stride = `size`; [CLS] kept apart with `separate_cls`.

    A last window that runs past the end holds fewer elements and is averaged over those (TensorFlow's SAME
    padding for size 2; for larger sizes the padding goes at the end so that windows start where
    `stride_pool` picks its elements).
    """
    cls, body = _split_cls(x, separate_cls, truncate_seq)
    length = body.shape[1]
    windows = math.ceil(length / size)
    missing = windows * size - length
    tail_shape = body.shape[2:]
    if mode == "mean":
        padded = tf.pad(body, [[0, 0], [0, missing]] + [[0, 0]] * len(tail_shape))
        grouped = tf.reshape(padded, [-1, windows, size] + list(tail_shape))
        counts = np.full([windows], size, np.float32)
        counts[-1] = size - missing
        counts = tf.reshape(tf.constant(counts, dtype=x.dtype), [1, windows] + [1] * len(tail_shape))
        pooled = tf.reduce_sum(grouped, axis=2) / counts
    elif mode in ("max", "min"):
        sign = 1.0 if mode == "max" else -1.0
        lowest = tf.cast(x.dtype.min, x.dtype)
        padded = tf.pad(sign * body, [[0, 0], [0, missing]] + [[0, 0]] * len(tail_shape), constant_values=lowest)
        grouped = tf.reshape(padded, [-1, windows, size] + list(tail_shape))
        pooled = sign * tf.reduce_max(grouped, axis=2)
    else:
        raise ValueError(f"pooling mode must be mean, max or min, got {mode!r}")
    return pooled if cls is None else tf.concat([cls, pooled], axis=1)


def upsample(x: tf.Tensor, stride: int, target_len: int, separate_cls: bool) -> tf.Tensor:
    """Repeats every body position `stride` times, then zero-pads or cuts the body to `target_len`.

    With `truncate_seq` and a length divisible by the total stride this is exactly the original (repeat, then
    `stride - 1` zero rows for the truncated tail). For other lengths the original failed with a shape error;
    padding or cutting to the input length is the natural generalisation (and what transformers does).
    """
    if stride == 1 and x.shape[1] == target_len:
        return x
    cls, body = (x[:, :1], x[:, 1:]) if separate_cls else (None, x)
    body = tf.repeat(body, stride, axis=1)
    body_len = target_len - (1 if separate_cls else 0)
    if body.shape[1] < body_len:
        body = tf.pad(body, [[0, 0], [0, body_len - body.shape[1]], [0, 0]])
    body = body[:, :body_len]
    return body if cls is None else tf.concat([cls, body], axis=1)
