"""Dropout with a counter-based hashed mask: the same masks on every Keras backend, and cheap under XLA on CPU.

    drop = Dropout(0.1)                        # a keras.layers.Dropout: same seed state, same checkpoints
    y = drop(x, training=True)
    u = hashed_uniform((4, 8), key=ops.convert_to_tensor([7], "int32"))   # U[0, 1) from (key, element index)

Why not the mask of `keras.layers.Dropout`: on the TensorFlow backend it draws Philox numbers
(`stateless_dropout`) from a seed read at run time, and XLA's CPU compiler fuses the Philox key derivation into
the per-element loop. In a tiny model (d_model 32, 16 x 64) the attention-probability dropout alone cost 110 ms
of a 340 ms training step; this mask costs about 1 ms for the same tensor (bench/train_speed.py, BENCHMARKS.md).

The mask is `lowbias32(lowbias32(index + k1) ^ k2) >= rate · 2^24` on its top 24 bits, with (k1, k2) hashed
from the layer's two-word seed, which advances once per call as in Keras' Dropout (the seed state is saved with
training checkpoints, so a resumed run draws the same masks). All arithmetic is int32 with wrap-around and
masked (logical) shifts, which every backend computes bit for bit alike.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

# lowbias32 (a 32-bit integer finaliser with low bias) constants, as int32 two's complement.
_MULTIPLIER_1 = 0x7FEB352D
_MULTIPLIER_2 = 0x846CA68B - (1 << 32)
_GOLDEN = 0x9E3779B9 - (1 << 32)


def _shift_xor(h: Any, bits: int) -> Any:
    """h ^ (h >>> bits) on int32 (arithmetic shift, then the sign-extended bits masked off)."""
    return ops.bitwise_xor(h, ops.bitwise_and(ops.right_shift(h, bits), (1 << (32 - bits)) - 1))


def mix32(h: Any) -> Any:
    """lowbias32 of int32 values: a bijection of the 32-bit words whose output bits look independent."""
    h = _shift_xor(h, 16)
    h = ops.multiply(h, ops.cast(_MULTIPLIER_1, "int32"))
    h = _shift_xor(h, 15)
    h = ops.multiply(h, ops.cast(_MULTIPLIER_2, "int32"))
    return _shift_xor(h, 16)


def seed_keys(seed: Any) -> tuple[Any, Any]:
    """Two int32 keys from a two-word seed (a Keras `SeedGenerator` draw, or per-row seeds [..., 2])."""
    seed = ops.cast(seed, "int32")
    first, second = seed[..., 0], seed[..., 1]
    return mix32(ops.add(ops.multiply(first, ops.cast(_GOLDEN, "int32")), 1)), mix32(ops.bitwise_xor(second, _GOLDEN))


def hashed_uniform(shape: tuple, key: tuple[Any, Any]) -> Any:
    """float32 U[0, 1) numbers of `shape`, element i = f(key, i) with i the row-major index in `shape`.

    `key` is a pair from `seed_keys`; its parts may carry leading batch axes that broadcast against `shape`
    (one key per example: `seed_keys(seeds[B, 2])` with keys reshaped to [B, 1, ...])."""
    size = 1
    for dim in shape:
        size = size * dim
    index = ops.reshape(ops.arange(size, dtype="int32"), shape)
    first, second = key
    bits = mix32(ops.bitwise_xor(mix32(ops.add(index, first)), second))
    top = ops.bitwise_and(ops.right_shift(bits, 8), (1 << 24) - 1)
    return ops.multiply(ops.cast(top, "float32"), 1.0 / (1 << 24))


@keras.saving.register_keras_serializable(package="funnel_tfm")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` with the hashed mask (module docstring): same arguments, seed state and config."""

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training or self.rate == 0 or self.noise_shape is not None:
            return super().call(inputs, training=training)
        if self.rate >= 1:
            return ops.zeros_like(inputs)
        uniform = hashed_uniform(tuple(ops.shape(inputs)), seed_keys(self.seed_generator.next()))
        keep = ops.greater_equal(uniform, self.rate)
        scaled = ops.divide(inputs, ops.cast(1.0 - self.rate, inputs.dtype))
        return ops.where(keep, scaled, ops.zeros_like(inputs))
