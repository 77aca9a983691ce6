"""Small Keras 3 building blocks shared by the backbone and the heads.

Weights keep the original's shapes (e.g. a query kernel is [d_model, n_head, d_head]) so that checkpoints map
one to one, and each layer exposes `weight_names()`: original variable name suffix -> Keras variable.

    norm = LayerNorm(768, eps=1e-8)
    y = norm(x)            # computed in float32 whatever the dtype policy
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

from funnel_tfm.config import ModelConfig


def make_initializer(config: ModelConfig) -> keras.initializers.Initializer:
    """The original's initializer for every kernel, table and relative bias (spec §1.7)."""
    if config.init == "uniform":
        return keras.initializers.RandomUniform(-config.init_range, config.init_range)
    if config.init == "normal":
        return keras.initializers.RandomNormal(stddev=config.init_std)
    return keras.initializers.TruncatedNormal(stddev=config.init_std)  # truncated at 2 std, as in TF1


def activation_fn(name: str):
    """`gelu` is the tanh approximation, as in the original; `gelu_exact` is the erf form."""
    if name == "gelu":
        return lambda x: tf.nn.gelu(x, approximate=True)
    if name == "gelu_exact":
        return lambda x: tf.nn.gelu(x, approximate=False)
    if name == "relu":
        return tf.nn.relu
    if name == "tanh":
        return tf.math.tanh
    raise ValueError(f"unknown activation {name!r}")


class WeightNamesMixin:
    """Collects `weight_names()` of the layer and its named sub-layers into original-style names."""

    def _own_weight_names(self) -> dict[str, Any]:
        return {}

    def _named_sublayers(self) -> dict[str, Any]:
        return {}

    def weight_names(self) -> dict[str, Any]:
        names = dict(self._own_weight_names())
        for scope, layer in self._named_sublayers().items():
            if layer is None:
                continue
            for suffix, variable in layer.weight_names().items():
                names[f"{scope}/{suffix}"] = variable
        return names


class LayerNorm(WeightNamesMixin, keras.layers.Layer):
    """Post-LN of the original: population variance, eps 1e-8, always in float32 (spec §2.1)."""

    def __init__(self, dim: int, eps: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.eps = eps
        # autocast=False: gamma and beta must not be rounded to the compute dtype, the math is float32.
        self.gamma = self.add_weight(shape=(dim,), initializer="ones", name="gamma", autocast=False)
        self.beta = self.add_weight(shape=(dim,), initializer="zeros", name="beta", autocast=False)
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        x32 = tf.cast(x, tf.float32)
        mean, variance = tf.nn.moments(x32, axes=[-1], keepdims=True)
        y = (x32 - mean) * tf.math.rsqrt(variance + self.eps) * self.gamma + self.beta
        return tf.cast(y, x.dtype)

    def _own_weight_names(self) -> dict[str, Any]:
        return {"gamma": self.gamma, "beta": self.beta}


class EinsumDense(WeightNamesMixin, keras.layers.Layer):
    """The original `ops.dense`: kernel of shape in_shape + out_shape, optional bias of out_shape.

        proj = EinsumDense((768,), (12, 64), initializer, use_bias=False)   # x [B, L, 768] -> [B, L, 12, 64]
    """

    def __init__(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...], initializer,
                 use_bias: bool = True, activation: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        letters = "abcdefgh"
        self.in_axes = letters[:len(in_shape)]
        self.out_axes = letters[len(in_shape):len(in_shape) + len(out_shape)]
        self.kernel = self.add_weight(shape=tuple(in_shape) + tuple(out_shape), initializer=initializer,
                                      name="kernel")
        self.bias = self.add_weight(shape=tuple(out_shape), initializer="zeros", name="bias") if use_bias else None
        self.activation = activation_fn(activation) if activation else None
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        # Leading axes are spelled out instead of "...": TF 2.21 on CPU lowers "...a,ab->...b" in float16 to a
        # broadcasting oneDNN batch-matmul that returns wrong values; explicit axes become a plain 2-D matmul.
        lead = "stuvwxyz"[:x.shape.rank - len(self.in_axes)]
        equation = f"{lead}{self.in_axes},{self.in_axes}{self.out_axes}->{lead}{self.out_axes}"
        y = tf.einsum(equation, x, tf.cast(self.kernel, x.dtype))
        if self.bias is not None:
            y = y + tf.cast(self.bias, x.dtype)
        return self.activation(y) if self.activation else y

    def _own_weight_names(self) -> dict[str, Any]:
        names = {"kernel": self.kernel}
        if self.bias is not None:
            names["bias"] = self.bias
        return names


class PositionwiseFFN(WeightNamesMixin, keras.layers.Layer):
    """`LN(x + W2·dropout(act(W1·x)))` with dropout on the output as well (spec §2.7); scope `ff`."""

    def __init__(self, config: ModelConfig, d_model: int | None = None, d_inner: int | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        d_model, d_inner = d_model or config.d_model, d_inner or config.d_inner
        init = make_initializer(config)
        self.layer_1 = EinsumDense((d_model,), (d_inner,), init, activation=config.ff_activation, name="layer_1",
                                   dtype=self.dtype_policy)
        self.layer_2 = EinsumDense((d_inner,), (d_model,), init, name="layer_2", dtype=self.dtype_policy)
        self.activation_dropout = keras.layers.Dropout(config.dropact, dtype=self.dtype_policy)
        self.output_dropout = keras.layers.Dropout(config.dropout, dtype=self.dtype_policy)
        self.layer_norm = LayerNorm(d_model, config.layer_norm_eps, name="layer_norm", dtype=self.dtype_policy)
        self.built = True

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        h = self.activation_dropout(self.layer_1(x), training=training)
        h = self.output_dropout(self.layer_2(h), training=training)
        return self.layer_norm(x + h)

    def _named_sublayers(self) -> dict[str, Any]:
        return {"layer_1": self.layer_1, "layer_2": self.layer_2, "layer_norm": self.layer_norm}


def attention_scale(d_head: int) -> float:
    return 1.0 / math.sqrt(d_head)
