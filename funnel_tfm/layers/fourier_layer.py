"""A Funnel layer that mixes tokens by Fourier transform instead of attention: the hybrid (fnet semantics N8).

    layer = FourierFunnelLayer(d_model=768, d_inner=3072, activation="gelu", dropout=0.1, activation_dropout=0.0,
                               layer_norm_eps=1e-8, initializer=init, use_fft=True, name="layer_0")
    y = layer(x)                                   # LN(x + Re(DFT2(x))), then the Funnel FFN  [B, L, D]
    y = layer(pooled_x, mixed=pool(layer.mix(x)))  # first layer of a pooled block, pool_q_only (N8)

It keeps the Funnel layer's post-LN structure and its FFN (`ff`, with the Funnel's dropouts) and replaces the
attention sublayer (`rel_attn`: projections, relative biases, its LayerNorm) by the weightless FNet mixing and one
LayerNorm, scope `fourier/layer_norm`. No mask exists: pad tokens are mixed like real ones (N7, N8).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from funnel_tfm.layers.core import LayerNorm, PositionwiseFFN, WeightNamesMixin
from funnel_tfm.layers.fourier import FourierMixing


class FourierFunnelLayer(WeightNamesMixin, keras.layers.Layer):
    """`h = LN(x + mixed)` with `mixed = Re(DFT2(x))` unless given, then `LN(h + FFN(h))`; see the module docstring.

    `mixed` lets the caller supply the mixing of another sequence of x's length, as the pooling layer of a block
    does: attention's pooled query reads the unpooled keys, here the pooled residual gets the pooled mixing of the
    unpooled sequence. The mixing output is not dropped out (the original FNet has no dropout there: the sublayer
    has no weights to regularise).
    """

    def __init__(self, d_model: int, d_inner: int, activation: str, dropout: float, activation_dropout: float,
                 layer_norm_eps: float, initializer: Any, use_fft: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        policy = self.dtype_policy
        self.mixing = FourierMixing(use_fft, name="fourier_mixing", dtype=policy)
        self.layer_norm = LayerNorm(d_model, layer_norm_eps, name="layer_norm", dtype=policy)
        self.ffn = PositionwiseFFN(d_model, d_inner, activation, dropout, activation_dropout, layer_norm_eps,
                                   initializer, name="ff", dtype=policy)
        self.built = True

    def mix(self, x):
        """Re(DFT2(x)) over (sequence, hidden), in float32 on the FFT path (fourier.FourierMixing)."""
        return self.mixing(x)

    def call(self, x, mixed=None, training: bool = False):
        mixed = self.mixing(x) if mixed is None else mixed
        # The residual sum in float32: the unnormalised mixing is ~sqrt(L·D) times larger than x (as in FNet).
        h = ops.cast(self.layer_norm(ops.cast(x, "float32") + ops.cast(mixed, "float32")), x.dtype)
        return self.ffn(h, training=training)

    def _named_sublayers(self) -> dict[str, Any]:
        return {"fourier/layer_norm": self.layer_norm, "ff": self.ffn}
