"""FNet's layers with the original f_net's parameter names (fnet semantics N2, N4, N5), in keras.ops.

    embedder = FNetEmbedding(vocab_size=32000, d_embed=768, d_model=768, max_seq_length=512, type_vocab_size=4,
                             layer_norm_eps=1e-12, dropout=0.1, initializer=init)
    block = FNetEncoderBlock(index=0, d_model=768, d_inner=3072, activation="gelu", dropout=0.1,
                             layer_norm_eps=1e-12, initializer=init, use_fft=True)
    nsp = OutputProjection(d_model=768, n_out=2, initializer=init, name="classification")
    h = block(embedder(token_ids, segment_ids))          # [B, L, D]
    hybrid = FNetEncoderBlock(index=11, ..., use_fft=True, attention_heads=12, attention_dropout=0.1)
    h = hybrid(h, padding_mask)                          # an attention layer of a hybrid (fnet semantics N9)

`weight_names()` gives the original Flax parameter paths (`scale`/`bias` for LayerNorm, `kernel`/`bias` for
Dense), relative to the scope the model places the layer in.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from funnel_tfm.layers.core import EinsumDense, LayerNorm, PositionwiseFFN, attention_scale, take_rows
from funnel_tfm.layers.dropout import Dropout
from funnel_tfm.layers.fourier import FourierMixing


def flax_layer_norm_names(norm: LayerNorm) -> dict[str, Any]:
    """Flax calls LayerNorm's gamma `scale` and its beta `bias`."""
    return {"scale": norm.gamma, "bias": norm.beta}


class FNetEmbedding(keras.layers.Layer):
    """Word + position + type embeddings, LayerNorm, projection E -> D (`hidden_mapping_in`), dropout: `embedder`.

    The position table keeps the original's shape [1, max_seq_length, E]; a length-L input uses its first L rows.
    Type ids index the table directly (original convention: [CLS] and segment A are 0, B is 1).
    """

    def __init__(self, vocab_size: int, d_embed: int, d_model: int, max_seq_length: int, type_vocab_size: int,
                 layer_norm_eps: float, dropout: float, initializer: Any, **kwargs) -> None:
        super().__init__(**kwargs)
        policy = self.dtype_policy
        self.word_embedding = self.add_weight(shape=(vocab_size, d_embed), initializer=initializer, name="word")
        self.position_embedding = self.add_weight(shape=(1, max_seq_length, d_embed), initializer=initializer,
                                                  name="position")
        self.type_embedding = self.add_weight(shape=(type_vocab_size, d_embed), initializer=initializer,
                                              name="type")
        self.layer_norm = LayerNorm(d_embed, layer_norm_eps, name="layer_norm", dtype=policy)
        self.hidden_mapping_in = EinsumDense((d_embed,), (d_model,), initializer, name="hidden_mapping_in",
                                             dtype=policy)
        self.dropout = Dropout(dropout, dtype=policy)
        self.built = True

    def call(self, token_ids, segment_ids, training: bool = False):
        # The sum and LayerNorm in float32 (LayerNorm computes in float32 anyway); the projection in compute dtype.
        x = (take_rows(ops.cast(self.word_embedding, "float32"), token_ids)
             + ops.cast(self.position_embedding, "float32")[:, :token_ids.shape[1]]
             + take_rows(ops.cast(self.type_embedding, "float32"), segment_ids))
        x = ops.cast(self.layer_norm(x), self.compute_dtype)
        return self.dropout(self.hidden_mapping_in(x), training=training)

    def weight_names(self) -> dict[str, Any]:
        names = {"word/embedding": self.word_embedding, "position/embedding": self.position_embedding,
                 "type/embedding": self.type_embedding}
        names.update({f"layer_norm/{k}": v for k, v in flax_layer_norm_names(self.layer_norm).items()})
        names.update({f"hidden_mapping_in/{k}": v for k, v in self.hidden_mapping_in.weight_names().items()})
        return names


class FNetSelfAttention(keras.layers.Layer):
    """The original hybrid's attention sublayer (Flax `nn.SelfAttention`, fnet semantics N9): bidirectional
    multi-head attention with biased q/k/v/out projections, queries scaled by 1/sqrt(d_model / n_head), softmax in
    float32, dropout on the probabilities only, no residual or LayerNorm (the block adds them).

        attention = FNetSelfAttention(d_model=768, n_head=12, attention_dropout=0.1, initializer=init,
                                      name="self_attention_10")
        y = attention(x, padding_mask)   # padding_mask [B, L]: 1 = real token

    The mask is the original's `make_attention_mask(mask, mask)`: a score counts when both its query and its key
    are real tokens. A pad query thus has no allowed key, and (like Flax, which fills masked scores with the
    float32 minimum) attends uniformly to every position; its output matters, because the Fourier layers mix
    pad rows into real ones.
    """

    def __init__(self, d_model: int, n_head: int, attention_dropout: float, initializer: Any, **kwargs) -> None:
        super().__init__(**kwargs)
        policy, d_head = self.dtype_policy, d_model // n_head
        self.scale = attention_scale(d_head)
        self.query = EinsumDense((d_model,), (n_head, d_head), initializer, name="query", dtype=policy)
        self.key = EinsumDense((d_model,), (n_head, d_head), initializer, name="key", dtype=policy)
        self.value = EinsumDense((d_model,), (n_head, d_head), initializer, name="value", dtype=policy)
        self.out = EinsumDense((n_head, d_head), (d_model,), initializer, name="out", dtype=policy)
        self.prob_dropout = Dropout(attention_dropout, dtype=policy)
        self.built = True

    def call(self, x, padding_mask, training: bool = False):
        q = self.query(x) * ops.cast(self.scale, x.dtype)
        scores = ops.cast(ops.einsum("binh,bjnh->bnij", q, self.key(x)), "float32")
        real = ops.cast(padding_mask, "float32")
        allowed = (real[:, None, :, None] * real[:, None, None, :]) > 0.5
        scores = ops.where(allowed, scores, ops.cast(FLOAT32_MIN, "float32"))
        probs = self.prob_dropout(ops.cast(ops.softmax(scores, axis=-1), x.dtype), training=training)
        return self.out(ops.einsum("bnij,bjnh->binh", probs, self.value(x)))

    def weight_names(self) -> dict[str, Any]:
        return {f"{part}/{k}": v for part in ("query", "key", "value", "out")
                for k, v in getattr(self, part).weight_names().items()}


# Flax's `big_neg` for masked float32 scores: a row with every score masked softmaxes to uniform weights.
FLOAT32_MIN = -3.4028234663852886e38


class FNetEncoderBlock(keras.layers.Layer):
    """Post-LN block: `h = LN(x + mix(x))`, then `LN(h + dropout(W2·act(W1·h)))` (the FFN of layers.core), where
    `mix` is Re(DFT(x)), or in a hybrid's attention layer (`attention_heads` set) self-attention over real tokens.

    The original splits the weights over scopes: `encoder_{i}` (the two LayerNorms), `feed_forward_{i}`
    (`intermediate`, `output`) and, for attention, `self_attention_{i}`; `weight_names()` returns them all,
    relative to the encoder.
    """

    def __init__(self, index: int, d_model: int, d_inner: int, activation: str, dropout: float,
                 layer_norm_eps: float, initializer: Any, use_fft: bool, attention_heads: int | None = None,
                 attention_dropout: float = 0.0, **kwargs) -> None:
        super().__init__(name=kwargs.pop("name", f"encoder_{index}"), **kwargs)
        policy = self.dtype_policy
        self.index = index
        self.is_attention = attention_heads is not None
        self.mixing = (FNetSelfAttention(d_model, attention_heads, attention_dropout, initializer,
                                         name=f"self_attention_{index}", dtype=policy) if self.is_attention
                       else FourierMixing(use_fft, name=f"fourier_transform_{index}", dtype=policy))
        self.mixing_layer_norm = LayerNorm(d_model, layer_norm_eps, name="mixing_layer_norm", dtype=policy)
        # activation_dropout 0: the original drops out only the FFN output.
        self.feed_forward = PositionwiseFFN(d_model, d_inner, activation, dropout, 0.0, layer_norm_eps, initializer,
                                            name=f"feed_forward_{index}", dtype=policy)
        self.built = True

    def call(self, x, padding_mask=None, training: bool = False):
        if self.is_attention:
            mask = ops.ones(tuple(x.shape[:2]), "float32") if padding_mask is None else padding_mask
            mixing = self.mixing(x, mask, training=training)
        else:
            mixing = self.mixing(x)  # pads are mixed like tokens: no mask (N7)
        # The residual sum in float32: the unnormalised mixing output is ~sqrt(L·D) times larger than x, so a
        # bfloat16 sum would keep almost nothing of x.
        mixed = ops.cast(x, "float32") + ops.cast(mixing, "float32")
        h = ops.cast(self.mixing_layer_norm(mixed), x.dtype)
        return self.feed_forward(h, training=training)

    def weight_names(self) -> dict[str, Any]:
        block, ffn = f"encoder_{self.index}", f"feed_forward_{self.index}"
        names = {f"{block}/mixing_layer_norm/{k}": v for k, v in flax_layer_norm_names(self.mixing_layer_norm).items()}
        names.update({f"{block}/output_layer_norm/{k}": v
                      for k, v in flax_layer_norm_names(self.feed_forward.layer_norm).items()})
        names.update({f"{ffn}/intermediate/{k}": v for k, v in self.feed_forward.layer_1.weight_names().items()})
        names.update({f"{ffn}/output/{k}": v for k, v in self.feed_forward.layer_2.weight_names().items()})
        if self.is_attention:
            names.update({f"self_attention_{self.index}/{k}": v for k, v in self.mixing.weight_names().items()})
        return names


class OutputProjection(keras.layers.Layer):
    """The original's `OutputProjection` with its own kernel: `y = x·Kᵀ + b`, K [n_out, D], float32 logits.

        nsp_logits = OutputProjection(768, 2, init, name="classification")(pooled)   # [B, 2]
    """

    def __init__(self, d_model: int, n_out: int, initializer: Any, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kernel = self.add_weight(shape=(n_out, d_model), initializer=initializer, name="output_kernel")
        self.bias = self.add_weight(shape=(n_out,), initializer="zeros", name="output_bias", autocast=False)
        self.built = True

    def call(self, x):
        logits = ops.einsum("bd,nd->bn", x, ops.cast(self.kernel, x.dtype))
        return ops.cast(logits, "float32") + ops.cast(self.bias, "float32")

    def weight_names(self) -> dict[str, Any]:
        return {"output_kernel": self.kernel, "output_bias": self.bias}
