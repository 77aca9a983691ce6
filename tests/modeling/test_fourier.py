"""FNet's Fourier mixing (fnet semantics N3): both paths against numpy's float64 FFT, against each other, and in
bfloat16 / float16. The `backend_slice` ones (all but the numpy-only and most shape cases) rerun on the JAX
and PyTorch backends from test_fnet.py.

Tolerances: every output of the unnormalised transform sums L·D input terms, so its size, and float32's rounding
in it, grow like sqrt(L·D) for unit inputs (≈ 23 at 16×32). Raw mixing outputs are therefore compared relative
to that scale: 1e-6·sqrt(L·D) in float32 (≈ 2e-5 absolute at 16×32). After the model's LayerNorm the values are
O(1) again and test_fnet.py holds FFT == DFT to 1e-5 absolute.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from funnel_tfm.layers.fourier import FourierMixing, dft_matrices

backend_slice = pytest.mark.backend_slice

SHAPES = [(16, 32), (12, 32), (12, 30), (7, 5), (1, 4)]
ON_BACKENDS_TOO = {(16, 32), (12, 30)}  # the other backends rerun a power-of-two and an odd-width case


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("n", [1, 2, 7, 12, 16])
def test_dft_matrices_are_the_dft(n):
    cos, sin = dft_matrices(n)
    np.testing.assert_allclose(cos - 1j * sin, np.fft.fft(np.eye(n)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("seq_len,width", [pytest.param(*shape, marks=backend_slice) if shape in ON_BACKENDS_TOO else shape
                                           for shape in SHAPES])
def test_fft_and_dft_paths_match_numpy(rng, seq_len, width):
    x = rng.normal(size=(2, seq_len, width)).astype(np.float32)
    reference = np.fft.fft2(x.astype(np.float64)).real
    atol = 1e-6 * np.sqrt(seq_len * width)
    fft, dft = to_numpy(FourierMixing(use_fft=True)(x)), to_numpy(FourierMixing(use_fft=False)(x))
    assert fft.dtype == dft.dtype == np.float32
    np.testing.assert_allclose(fft, reference, rtol=0, atol=atol, err_msg="FFT path")
    np.testing.assert_allclose(dft, reference, rtol=0, atol=atol, err_msg="DFT path")
    np.testing.assert_allclose(fft, dft, rtol=0, atol=atol, err_msg="FFT vs DFT")


@backend_slice
def test_the_transform_is_unnormalised_and_mixes_every_token(rng):
    """No 1/sqrt(L·D) factor (checkpoint parity), and one token changes every output position (no mask)."""
    x = np.zeros((1, 8, 4), np.float32)
    x[0, 0, 0] = 1.0
    for use_fft in (True, False):  # a unit impulse at (0, 0) has an all-ones spectrum
        np.testing.assert_allclose(to_numpy(FourierMixing(use_fft)(x)), np.ones((1, 8, 4)), rtol=0, atol=1e-6)
    y = rng.normal(size=(1, 8, 4)).astype(np.float32)
    changed = y.copy()
    changed[0, -1] += rng.normal(size=4).astype(np.float32)  # e.g. a pad token with another id
    for use_fft in (True, False):
        delta = to_numpy(FourierMixing(use_fft)(changed)) - to_numpy(FourierMixing(use_fft)(y))
        assert (np.abs(delta).max(-1) > 1e-3).all(), "every position must see the last token"


@backend_slice
def test_dft_path_runs_in_bfloat16(rng):
    """Under mixed_bfloat16 the DFT path's matmuls run in bfloat16 (the TPU MXU path); the FFT path stays float32.
    bfloat16 keeps 8 bits of mantissa, so the error is ~1% of the output scale."""
    x = rng.normal(size=(2, 16, 32)).astype(np.float32)
    reference = np.fft.fft2(x.astype(np.float64)).real
    dft = FourierMixing(use_fft=False, dtype="mixed_bfloat16")(x)
    assert keras.backend.standardize_dtype(dft.dtype) == "bfloat16"
    error = np.abs(to_numpy(keras.ops.cast(dft, "float32")) - reference).max()
    assert error < 5e-2 * np.sqrt(16 * 32), error
    fft = FourierMixing(use_fft=True, dtype="mixed_bfloat16")(x)
    assert keras.backend.standardize_dtype(fft.dtype) == "float32"


@backend_slice
def test_float16_inputs_are_mixed_in_float32():
    """The zero-frequency term of 8·ones[128, 128] is 131072, beyond float16's 65504."""
    x = keras.ops.cast(np.full((1, 128, 128), 8.0, np.float32), "float16")
    for use_fft in (True, False):
        y = to_numpy(FourierMixing(use_fft)(x))
        assert y.dtype == np.float32 and np.isfinite(y).all()
        assert y[0, 0, 0] == 131072.0 and np.abs(y[0, 1:, :]).max() < 1e-2


@backend_slice
def test_config_round_trip():
    layer = FourierMixing(use_fft=False, name="mix")
    again = FourierMixing.from_config(layer.get_config())
    assert again.use_fft is False and again.name == "mix"
