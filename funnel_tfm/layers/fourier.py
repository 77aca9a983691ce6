"""FNet's token mixing: the real part of the 2-D discrete Fourier transform over (sequence, hidden), two ways.

    mix = FourierMixing(use_fft=True)    # keras.ops.fft2 in float32: GPUs, CPUs, long sequences
    mix = FourierMixing(use_fft=False)   # DFT matrices, matmuls only: TPUs (MXU), bfloat16, ONNX-friendly
    y = mix(x)                           # x [B, L, D] -> Re(F_L · x · F_D)  [B, L, D]

Both compute the same function (fnet semantics N3): the transform is unnormalised, as in the original, whose
post-mixing LayerNorm absorbs the scale (normalising would break pretrained weights). There is no attention
mask: padding tokens are mixed into every position like real ones, so a model must see inputs padded to the
length it was trained with (the original always padded to `max_seq_length`).

The DFT path writes F_n = C_n − i·S_n with C_n[j, k] = cos(2πjk/n), S_n[j, k] = sin(2πjk/n), so that

    Re(F_L X F_D) = C_L X C_D − S_L X S_D

which is two real matmuls on the hidden axis and two on the sequence axis, and no complex dtype. The matrices are
built for the static length of each input (a constant under `jit`), so any length works; the original built them
once for `max_seq_length` and accepted only that length.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


def dft_matrices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(C_n, S_n) in float64: the cosine and sine parts of the n-point DFT matrix, F_n = C_n − i·S_n.

        cos, sin = dft_matrices(4)   # cos[1] == [1, 0, -1, 0]
    """
    index = np.arange(n, dtype=np.int64)
    # j·k mod n keeps the angle in [0, 2π): cos(2π·jk/n) for large jk would lose digits to the argument's size.
    angle = 2.0 * np.pi * (np.outer(index, index) % n) / n
    return np.cos(angle), np.sin(angle)


def fourier_mix_fft(x: Any) -> Any:
    """Re(FFT2(x)) over the last two axes, in float32 whatever the input dtype (complex64 has no 16-bit form).

        y = fourier_mix_fft(x)   # x [B, L, D] float32 -> [B, L, D] float32
    """
    x32 = ops.cast(x, "float32")
    real, _ = ops.fft2((x32, ops.zeros_like(x32)))
    return real


def fourier_mix_dft(x: Any, dtype: str | None = None) -> Any:
    """Re(F_L · x · F_D) with real DFT matrices and matmuls only, computed in `dtype` (default: x's dtype).

        y = fourier_mix_dft(x)                     # float32 in, float32 out
        y = fourier_mix_dft(x_bf16)                # bfloat16 matmuls (TPU MXU); ~3 significant digits
    """
    dtype = dtype or keras.backend.standardize_dtype(x.dtype)
    seq_len, width = x.shape[-2], x.shape[-1]
    if seq_len is None or width is None:
        raise ValueError(f"the DFT path needs static sequence and hidden sizes, found {tuple(x.shape)}; pad batches "
                         f"to a fixed length or use the FFT path (use_fft=True)")
    cos_d, sin_d = dft_matrices(width)
    cos_l, sin_l = dft_matrices(seq_len)
    x = ops.cast(x, dtype)
    # One matmul on the hidden axis for both parts: [.., D] x [D, 2D] -> X·C_D and X·S_D side by side.
    hidden_parts = ops.einsum("bld,de->ble", x, ops.convert_to_tensor(np.concatenate([cos_d, sin_d], 1), dtype))
    x_cos, x_sin = hidden_parts[..., :width], hidden_parts[..., width:]
    mixed_cos = ops.einsum("nl,bld->bnd", ops.convert_to_tensor(cos_l, dtype), x_cos)
    mixed_sin = ops.einsum("nl,bld->bnd", ops.convert_to_tensor(sin_l, dtype), x_sin)
    return mixed_cos - mixed_sin


@keras.saving.register_keras_serializable(package="funnel_tfm")
class FourierMixing(keras.layers.Layer):
    """FNet's mixing sublayer (no weights): Re(DFT over sequence and hidden axes) by FFT or by DFT matrices.

        mixed = FourierMixing(use_fft=False, dtype="mixed_bfloat16")(x)   # [B, L, D] bfloat16

    The result keeps the dtype it was computed in, so the caller's residual sum loses nothing to rounding: the FFT
    path always runs in float32. The DFT path runs in x's dtype, except float16, where it runs in float32: the
    unnormalised sums reach L·D·max|x| (the zero-frequency term adds every entry), beyond float16's 65504 for
    ordinary sizes, while bfloat16 has float32's range.
    """

    def __init__(self, use_fft: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.use_fft = use_fft
        self.built = True

    def call(self, x):
        if self.use_fft:
            return fourier_mix_fft(x)
        dtype = keras.backend.standardize_dtype(x.dtype)
        return fourier_mix_dft(x, "float32" if dtype == "float16" else dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "use_fft": self.use_fft}
