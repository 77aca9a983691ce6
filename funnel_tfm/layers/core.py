"""Small Keras 3 building blocks shared by the backbone and the heads, in `keras.ops` (every backend).

Weights keep the original's shapes (e.g. a query kernel is [d_model, n_head, d_head]) so that checkpoints map
one to one, and each layer exposes `weight_names()`: original variable name suffix -> Keras variable.

    norm = LayerNorm(768, eps=1e-8)
    y = norm(x)            # computed in float32 whatever the dtype policy
    proj = EinsumDense((768,), (12, 64), make_initializer("truncated_normal", 0.02, 0.1), use_bias=False)
"""

from __future__ import annotations

import math
from typing import Any, Callable

import keras
from keras import ops

from funnel_tfm.layers.dropout import Dropout


def make_initializer(kind: str, std: float, uniform_range: float) -> keras.initializers.Initializer:
    """The original's initializer for every kernel, table and relative bias (docs/original_semantics.md M1).

        make_initializer("truncated_normal", 0.02, 0.1)   # truncated at 2 std, as TF1's
    """
    if kind == "uniform":
        return keras.initializers.RandomUniform(-uniform_range, uniform_range)
    if kind == "normal":
        return keras.initializers.RandomNormal(stddev=std)
    return keras.initializers.TruncatedNormal(stddev=std)


def config_initializer(config: Any) -> keras.initializers.Initializer:
    """`make_initializer` with the values of a ModelConfig (for the code that builds layers from a config)."""
    return make_initializer(config.init, config.init_std, config.init_range)


def activation_fn(name: str) -> Callable:
    """`gelu` is the tanh approximation, as in the original; `gelu_exact` is the erf form."""
    if name == "gelu":
        return lambda x: ops.gelu(x, approximate=True)
    if name == "gelu_exact":
        return lambda x: ops.gelu(x, approximate=False)
    if name == "relu":
        return ops.relu
    if name == "tanh":
        return ops.tanh
    raise ValueError(f"unknown activation {name!r}; expected gelu, gelu_exact, relu or tanh")


def take_rows(table: Any, ids: Any) -> Any:
    """table[ids] along axis 0 with the ids clamped to the table (backends disagree on out-of-range gathers:
    TensorFlow on CPU fails, JAX clamps, PyTorch fails; clamping makes them agree)."""
    ids = ops.clip(ops.cast(ids, "int32"), 0, table.shape[0] - 1)
    return ops.take(table, ids, axis=0)


def take_along_sequence(x: Any, index: Any) -> Any:
    """x [B, L, ...] at index [B, K] -> [B, K, ...] (a batched gather along axis 1), index clamped to [0, L)."""
    index = ops.clip(ops.cast(index, "int32"), 0, x.shape[1] - 1)
    for _ in range(len(x.shape) - 2):  # expand_dims, not a reshape to index.shape: the batch may be unknown
        index = ops.expand_dims(index, -1)
    return ops.take_along_axis(x, index, axis=1)


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
    """Post-LN of the original: population variance, eps 1e-8, always in float32 (semantics M2)."""

    def __init__(self, dim: int, eps: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dim, self.eps = dim, eps
        # autocast=False: gamma and beta must not be rounded to the compute dtype, the math is float32.
        self.gamma = self.add_weight(shape=(dim,), initializer="ones", name="gamma", autocast=False)
        self.beta = self.add_weight(shape=(dim,), initializer="zeros", name="beta", autocast=False)
        self.built = True

    def call(self, x):
        x32 = ops.cast(x, "float32")
        mean = ops.mean(x32, axis=-1, keepdims=True)
        centered = x32 - mean
        variance = ops.mean(ops.square(centered), axis=-1, keepdims=True)
        y = centered * ops.rsqrt(variance + self.eps) * ops.cast(self.gamma, "float32") + ops.cast(self.beta,
                                                                                                  "float32")
        return ops.cast(y, x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dim": self.dim, "eps": self.eps}

    def _own_weight_names(self) -> dict[str, Any]:
        return {"gamma": self.gamma, "beta": self.beta}


class EinsumDense(WeightNamesMixin, keras.layers.Layer):
    """The original `ops.dense`: kernel of shape in_shape + out_shape, optional bias of out_shape.

        proj = EinsumDense((768,), (12, 64), initializer, use_bias=False)   # x [B, L, 768] -> [B, L, 12, 64]
    """

    def __init__(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...], initializer: Any = "glorot_uniform",
                 use_bias: bool = True, activation: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        self.initializer = keras.initializers.get(initializer)
        self.use_bias, self.activation_name = use_bias, activation
        letters = "abcdefgh"
        self.in_axes = letters[:len(in_shape)]
        self.out_axes = letters[len(in_shape):len(in_shape) + len(out_shape)]
        self.kernel = self.add_weight(shape=self.in_shape + self.out_shape, initializer=self.initializer,
                                      name="kernel")
        self.bias = self.add_weight(shape=self.out_shape, initializer="zeros", name="bias") if use_bias else None
        self.activation = activation_fn(activation) if activation else None
        self.built = True

    def call(self, x):
        # Leading axes are spelled out instead of "...": TF 2.21 on CPU lowers "...a,ab->...b" in float16 to a
        # broadcasting oneDNN batch-matmul that returns wrong values; explicit axes become a plain 2-D matmul.
        lead = "stuvwxyz"[:len(x.shape) - len(self.in_axes)]
        equation = f"{lead}{self.in_axes},{self.in_axes}{self.out_axes}->{lead}{self.out_axes}"
        y = ops.einsum(equation, x, ops.cast(self.kernel, x.dtype))
        if self.bias is not None:
            y = y + ops.cast(self.bias, x.dtype)
        return self.activation(y) if self.activation else y

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "in_shape": self.in_shape, "out_shape": self.out_shape,
                "initializer": keras.initializers.serialize(self.initializer), "use_bias": self.use_bias,
                "activation": self.activation_name}

    def _own_weight_names(self) -> dict[str, Any]:
        names = {"kernel": self.kernel}
        if self.bias is not None:
            names["bias"] = self.bias
        return names


class PositionwiseFFN(WeightNamesMixin, keras.layers.Layer):
    """`LN(x + W2·dropout(act(W1·x)))` with dropout on the output as well (semantics M7); scope `ff`.

        ffn = PositionwiseFFN(768, 3072, "gelu", dropout=0.1, activation_dropout=0.0, layer_norm_eps=1e-8,
                              initializer=initializer)
    """

    def __init__(self, d_model: int, d_inner: int, activation: str, dropout: float, activation_dropout: float,
                 layer_norm_eps: float, initializer: Any, **kwargs) -> None:
        super().__init__(**kwargs)
        policy = self.dtype_policy
        self.layer_1 = EinsumDense((d_model,), (d_inner,), initializer, activation=activation, name="layer_1",
                                   dtype=policy)
        self.layer_2 = EinsumDense((d_inner,), (d_model,), initializer, name="layer_2", dtype=policy)
        self.activation_dropout = Dropout(activation_dropout, dtype=policy)
        self.output_dropout = Dropout(dropout, dtype=policy)
        self.layer_norm = LayerNorm(d_model, layer_norm_eps, name="layer_norm", dtype=policy)
        self.built = True

    def call(self, x, training: bool = False):
        h = self.activation_dropout(self.layer_1(x), training=training)
        h = self.output_dropout(self.layer_2(h), training=training)
        return self.layer_norm(x + h)

    def _named_sublayers(self) -> dict[str, Any]:
        return {"layer_1": self.layer_1, "layer_2": self.layer_2, "layer_norm": self.layer_norm}


def attention_scale(d_head: int) -> float:
    return 1.0 / math.sqrt(d_head)
