"""Pooling between blocks and upsampling for the decoder (semantics M8, M10), on static sequence lengths.

    pooled = pool_sequence(hidden, "mean", separate_cls=True, truncate_seq=True, size=2)   # [B, 16, D] -> [B, 8, D]
    ids = stride_pool(segment_ids, separate_cls=True, truncate_seq=True, size=2)       # picks [CLS], 1, 3, 5, ...
    full = upsample(pooled, stride=2, target_len=16, separate_cls=True)                 # [B, 16, D]

`stride_pool` also takes numpy arrays (the static position indices of a stage); the rest are `keras.ops`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from keras import ops


def _split_cls(x: Any, separate_cls: bool, truncate_seq: bool) -> tuple[Any, Any]:
    """([CLS] column or None, the body that is pooled) along axis 1."""
    if not separate_cls:
        return None, x
    return x[:, :1], (x[:, 1:-1] if truncate_seq else x[:, 1:])


def _concat(parts: list[Any]) -> Any:
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts, axis=1)
    return ops.concatenate(parts, axis=1)


def stride_pool(x: Any, separate_cls: bool, truncate_seq: bool, size: int) -> Any:
    """Selection pooling along axis 1 (segment ids, position indices): the first element of each window."""
    cls, body = _split_cls(x, separate_cls, truncate_seq)
    body = body[:, ::size]
    return body if cls is None else _concat([cls, body])


def pool_sequence(x: Any, mode: str, separate_cls: bool, truncate_seq: bool, size: int) -> Any:
    """Mean / max pooling along axis 1 with window = stride = `size`; [CLS] kept apart with `separate_cls`.

    A last window that runs past the end holds fewer elements and is averaged over those (TensorFlow's SAME
    padding for size 2; for larger sizes the padding goes at the end so that windows start where
    `stride_pool` picks its elements).
    """
    cls, body = _split_cls(x, separate_cls, truncate_seq)
    length = body.shape[1]
    windows = math.ceil(length / size)
    missing = windows * size - length
    tail_shape = tuple(body.shape[2:])
    padding = [(0, 0), (0, missing)] + [(0, 0)] * len(tail_shape)
    if mode == "mean":
        padded = ops.pad(body, padding) if missing else body
        grouped = ops.reshape(padded, (-1, windows, size) + tail_shape)
        counts = np.full([windows], size, np.float32)
        counts[-1] = size - missing
        counts = ops.cast(ops.reshape(ops.convert_to_tensor(counts), (1, windows) + (1,) * len(tail_shape)), x.dtype)
        pooled = ops.sum(grouped, axis=2) / counts
    elif mode in ("max", "min"):
        sign = 1.0 if mode == "max" else -1.0
        # Every window holds at least one real element (missing < size), so -inf padding never wins.
        padded = ops.pad(sign * body, padding, constant_values=float("-inf")) if missing else sign * body
        grouped = ops.reshape(padded, (-1, windows, size) + tail_shape)
        pooled = sign * ops.max(grouped, axis=2)
    else:
        raise ValueError(f"pooling mode must be mean, max or min, got {mode!r}")
    return pooled if cls is None else ops.concatenate([cls, pooled], axis=1)


def upsample(x: Any, stride: int, target_len: int, separate_cls: bool) -> Any:
    """Repeats every body position `stride` times, then zero-pads or cuts the body to `target_len`.

    With `truncate_seq` and a length divisible by the total stride this is exactly the original (repeat, then
    `stride - 1` zero rows for the truncated tail). For other lengths the original failed with a shape error;
    padding or cutting to the input length is the natural generalisation (and what transformers does).
    """
    if stride == 1 and x.shape[1] == target_len:
        return x
    cls, body = (x[:, :1], x[:, 1:]) if separate_cls else (None, x)
    body = ops.repeat(body, stride, axis=1)
    body_len = target_len - (1 if separate_cls else 0)
    if body.shape[1] < body_len:
        body = ops.pad(body, [(0, 0), (0, body_len - body.shape[1]), (0, 0)])
    body = body[:, :body_len]
    return body if cls is None else ops.concatenate([cls, body], axis=1)
