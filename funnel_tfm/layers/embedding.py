"""The input layer of the original (`input` scope): word embedding, LayerNorm, dropout.

    embedding = FunnelEmbedding(vocab_size=30522, d_embed=768, layer_norm_eps=1e-8, dropout=0.1,
                                initializer=initializer, absolute_positions=False)
    x = embedding(token_ids)                 # [B, L, d_embed]

With the original's `null` attention (`absolute_positions=True`), absolute position and segment embeddings are
added as in BERT (semantics M3).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from funnel_tfm.layers.core import LayerNorm, WeightNamesMixin, take_rows
from funnel_tfm.layers.dropout import Dropout


class FunnelEmbedding(WeightNamesMixin, keras.layers.Layer):
    """Word (and for `null` attention, absolute position and segment) embedding, LayerNorm, dropout; `input`."""

    def __init__(self, vocab_size: int, d_embed: int, layer_norm_eps: float, dropout: float, initializer: Any,
                 absolute_positions: bool = False, max_positions: int = 512, **kwargs) -> None:
        super().__init__(**kwargs)
        self.word_embedding = self.add_weight(shape=(vocab_size, d_embed), initializer=initializer,
                                              name="word_embedding")
        self.absolute = absolute_positions
        if self.absolute:
            self.position_embedding = self.add_weight(shape=(max_positions, d_embed), initializer=initializer,
                                                      name="position_embedding")
            self.segment_embedding = self.add_weight(shape=(2, d_embed), initializer=initializer,
                                                     name="segment_embedding")
        self.layer_norm = LayerNorm(d_embed, layer_norm_eps, name="layer_norm", dtype=self.dtype_policy)
        self.dropout = Dropout(dropout, dtype=self.dtype_policy)
        self.built = True

    def call(self, token_ids, segment_ids=None, training: bool = False):
        dtype = self.compute_dtype
        x = take_rows(ops.cast(self.word_embedding, dtype), token_ids)
        if self.absolute:
            x = x + ops.cast(self.position_embedding, dtype)[None, :token_ids.shape[1]]
            if segment_ids is not None:  # [CLS]'s segment id 2 maps to row 0, as in the original
                x = x + take_rows(ops.cast(self.segment_embedding, dtype), ops.mod(segment_ids, 2))
        return self.dropout(self.layer_norm(x), training=training)

    def _own_weight_names(self) -> dict[str, Any]:
        names = {"word_embedding/lookup_table": self.word_embedding}
        if self.absolute:
            names["position_embedding/lookup_table"] = self.position_embedding
            names["segment_embedding/lookup_table"] = self.segment_embedding
        return names

    def _named_sublayers(self) -> dict[str, Any]:
        return {"layer_norm": self.layer_norm}
