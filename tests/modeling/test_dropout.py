"""The hashed dropout mask (layers/dropout.py): bit-exact against a numpy reference of the hash on every backend
(test_backends.py reruns the `backend_slice` tests under JAX and PyTorch), the right keep rate and scale, fresh
masks per call, and the same seed state as Keras' Dropout."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from funnel_tfm.layers.dropout import Dropout, hashed_uniform, seed_keys

pytestmark = pytest.mark.backend_slice


def _mix32_reference(h: np.ndarray) -> np.ndarray:
    h = h.astype(np.uint32)
    h ^= h >> np.uint32(16)
    h = (h * np.uint32(0x7FEB352D)).astype(np.uint32)
    h ^= h >> np.uint32(15)
    h = (h * np.uint32(0x846CA68B)).astype(np.uint32)
    h ^= h >> np.uint32(16)
    return h


def _uniform_reference(shape: tuple, seed: tuple[int, int]) -> np.ndarray:
    golden = np.uint32(0x9E3779B9)
    with np.errstate(over="ignore"):
        first = _mix32_reference(np.array([seed[0]], np.uint32) * golden + np.uint32(1))
        second = _mix32_reference(np.array([seed[1]], np.uint32) ^ golden)
        index = np.arange(int(np.prod(shape)), dtype=np.uint32).reshape(shape)
        bits = _mix32_reference(_mix32_reference(index + first) ^ second)
    return (bits >> np.uint32(8)).astype(np.float32) / np.float32(1 << 24)


@pytest.mark.parametrize("seed", [(0, 0), (3, 1), (123456789, 2**31 - 5)])
def test_hashed_uniform_equals_the_numpy_reference_bit_for_bit(seed):
    shape = (3, 5, 7)
    key = seed_keys(ops.convert_to_tensor(np.array(seed, np.int64).astype(np.int32)))
    ours = ops.convert_to_numpy(hashed_uniform(shape, key))
    np.testing.assert_array_equal(ours, _uniform_reference(shape, seed))


def test_per_row_keys_broadcast_to_one_stream_per_row():
    seeds = np.array([[5, 0], [5, 1], [9, 4]], np.int32)
    first, second = seed_keys(ops.convert_to_tensor(seeds))
    rows = ops.convert_to_numpy(hashed_uniform((4, 6), (ops.reshape(first, (3, 1, 1)), ops.reshape(second, (3, 1, 1)))))
    for row, seed in zip(rows, seeds):
        np.testing.assert_array_equal(row, _uniform_reference((4, 6), tuple(seed)))


def test_uniform_statistics():
    key = seed_keys(ops.convert_to_tensor(np.array([1, 2], np.int32)))
    u = ops.convert_to_numpy(hashed_uniform((200, 1000), key)).ravel()
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.003 and abs(u.var() - 1 / 12) < 0.002
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    assert np.all(np.abs(counts / len(u) - 0.05) < 0.002)
    # Neighbouring elements are uncorrelated.
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01


def test_dropout_keeps_the_rate_scales_and_draws_fresh_masks():
    keras.utils.set_random_seed(0)
    layer = Dropout(0.1)
    x = ops.ones((64, 128, 32))
    first = ops.convert_to_numpy(layer(x, training=True))
    second = ops.convert_to_numpy(layer(x, training=True))
    for out in (first, second):
        np.testing.assert_allclose(np.unique(out), [0.0, 1 / 0.9], rtol=1e-6)
        assert abs((out == 0).mean() - 0.1) < 0.005
    both = ((first == 0) & (second == 0)).mean()
    assert abs(both - 0.01) < 0.002 and not np.array_equal(first, second)  # independent masks per call
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x, training=False)), ops.convert_to_numpy(x))


def test_dropout_is_keras_dropout_with_the_same_state_and_config():
    ours, theirs = Dropout(0.2, name="d"), keras.layers.Dropout(0.2, name="d")
    assert isinstance(ours, keras.layers.Dropout)
    # The seed state, tracked (and saved with training checkpoints) as Keras' own.
    assert [(v.name, v.shape, v.dtype) for v in ours.variables] == [(v.name, v.shape, v.dtype) for v in theirs.variables]
    assert type(ours.seed_generator) is type(theirs.seed_generator)
    assert ours.get_config() == theirs.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(ours))
    assert type(restored) is Dropout and restored.rate == 0.2
