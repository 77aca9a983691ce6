"""`FunnelTFM`: the exact Funnel-Transformer backbone as a Keras 3 model (spec §2).

    from funnel_tfm.config import ModelConfig
    from funnel_tfm.modeling import FunnelTFM

    model = FunnelTFM(ModelConfig(block_size="2_2_2", d_embed=32, d_model=32, n_head=4, d_head=8, d_inner=64,
                                  vocab_size=100))
    out = model({"token_ids": ids, "segment_ids": seg, "padding_mask": mask})   # 1 = real token, 0 = pad
    out["sequence_output"]   # [B, L_last, D]  last encoder layer (pooled length)
    out["encoder_hiddens"]   # every encoder layer application, in order
    out["decoder_output"]    # [B, L, D]       only when the model has a decoder
    out["pooled_output"]     # [B, D]          tanh summary of the first token of sequence_output

Sequence lengths must be static (fixed-length batches); lengths the config cannot pool raise ConfigError.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from funnel_tfm import pooling
from funnel_tfm.attention import (AttentionInputs, FactorizedPositions, FunnelLayer, RelShiftPositions,
                                  rel_shift_distances, sinusoids)
from funnel_tfm.config import MAX_POSITIONS_NULL, ConfigError, ModelConfig
from funnel_tfm.layers import EinsumDense, LayerNorm, WeightNamesMixin, make_initializer

# Segment id of [CLS] in the original convention; [CLS] counts as the same segment as every token.
CLS_SEGMENT_ID = 2


class FunnelEmbedding(WeightNamesMixin, keras.layers.Layer):
    """Word (and for `null` attention, absolute position and segment) embedding, LayerNorm, dropout; `input`."""

    def __init__(self, config: ModelConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        init = make_initializer(config)
        self.word_embedding = self.add_weight(shape=(config.vocab_size, config.d_embed), initializer=init,
                                              name="word_embedding")
        self.absolute = config.rel_attn_type == "null"
        if self.absolute:
            self.position_embedding = self.add_weight(shape=(MAX_POSITIONS_NULL, config.d_embed),
                                                      initializer=init, name="position_embedding")
            self.segment_embedding = self.add_weight(shape=(2, config.d_embed), initializer=init,
                                                     name="segment_embedding")
        self.layer_norm = LayerNorm(config.d_embed, config.layer_norm_eps, name="layer_norm",
                                    dtype=self.dtype_policy)
        self.dropout = keras.layers.Dropout(config.dropout, dtype=self.dtype_policy)
        self.built = True

    def call(self, token_ids: tf.Tensor, segment_ids: tf.Tensor | None = None, training: bool = False) -> tf.Tensor:
        dtype = self.compute_dtype
        x = tf.gather(tf.cast(self.word_embedding, dtype), token_ids)
        if self.absolute:
            x = x + tf.cast(self.position_embedding, dtype)[None, :token_ids.shape[1]]
            if segment_ids is not None:  # [CLS]'s segment id 2 maps to row 0, as in the original
                x = x + tf.gather(tf.cast(self.segment_embedding, dtype), segment_ids % 2)
        return self.dropout(self.layer_norm(x), training=training)

    def _own_weight_names(self) -> dict[str, Any]:
        names = {"word_embedding/lookup_table": self.word_embedding}
        if self.absolute:
            names["position_embedding/lookup_table"] = self.position_embedding
            names["segment_embedding/lookup_table"] = self.segment_embedding
        return names

    def _named_sublayers(self) -> dict[str, Any]:
        return {"layer_norm": self.layer_norm}


@dataclasses.dataclass(frozen=True)
class Stage:
    """Static description of the tokens of one sequence stage (a block, or the pooled query of a block)."""

    indices: np.ndarray    # position of each token in the block-0 sequence (for `factorized`)
    positions: np.ndarray  # positions that the positional form uses

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.positions)


@keras.saving.register_keras_serializable(package="funnel_tfm")
class FunnelTFM(keras.Model):
    """Funnel-Transformer encoder (+ optional decoder) with the pooled summary; see the module docstring.

    Besides the checkpoint formats of `checkpoints.py`, Keras' own archive works: `model.save("m.keras")`,
    `keras.models.load_model("m.keras")`.
    """

    def __init__(self, config: ModelConfig | dict, use_decoder: bool = True,
                 shared_embedding: FunnelEmbedding | None = None, **kwargs) -> None:
        """`shared_embedding`: use another model's `input` layer (the ELECTRA generator shares the
        discriminator's word table and LayerNorm, spec §3.2); its weights are then not this model's own."""
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = ModelConfig.from_dict(config)
        self.config = config
        self.use_decoder = use_decoder
        policy = self.dtype_policy
        self.owns_embedding = shared_embedding is None
        self.embedding = FunnelEmbedding(config, name="input", dtype=policy) if self.owns_embedding else shared_embedding
        self.input_projection = (EinsumDense((config.d_embed,), (config.d_model,), make_initializer(config),
                                             name="input_projection", dtype=policy)
                                 if config.d_embed != config.d_model else None)
        self.encoder_layers = [FunnelLayer(config, name=f"layer_{i}", dtype=policy)
                               for i in range(config.n_encoder_param_layers)]
        first_decoder = config.n_encoder_param_layers
        self.decoder_layers = ([FunnelLayer(config, name=f"layer_{first_decoder + i}", dtype=policy)
                                for i in range(config.decoder_param_size)] if use_decoder else [])
        self.summary = EinsumDense((config.d_model,), (config.d_model,), make_initializer(config),
                                   activation="tanh", name="sequnece_summary", dtype=policy)
        self.position_dropout = keras.layers.Dropout(config.dropout, dtype=policy)
        self.built = True

    # ------------------------------------------------------------------------------------ structure
    def get_config(self) -> dict[str, Any]:
        if not self.owns_embedding:
            raise NotImplementedError("a FunnelTFM with a shared embedding is rebuilt by its owner, not from config")
        return {"config": self.config.to_dict(), "use_decoder": self.use_decoder, "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "FunnelTFM":
        return cls(**config)

    @classmethod
    def from_pretrained(cls, path: str, **kwargs) -> "FunnelTFM":
        """The backbone of an original (net_config.json + model.ckpt*), Hugging Face or funnel_tfm checkpoint
        directory; heads and the ELECTRA generator come with `checkpoints.load_checkpoint`."""
        from funnel_tfm import checkpoints  # the checkpoint layer sits above the model layer
        return checkpoints.load_pretrained(path, **kwargs)

    def weight_names(self) -> dict[str, Any]:
        """Original variable names (without the leading `model/`) -> Keras variables; a shared embedding is
        left out (it belongs to the model that owns it)."""
        names = ({f"input/{k}": v for k, v in self.embedding.weight_names().items()} if self.owns_embedding else {})
        if self.input_projection is not None:
            names.update({f"encoder/input_projection/{k}": v for k, v in self.input_projection.weight_names().items()})
        for layer in self.encoder_layers:
            names.update({f"encoder/{layer.name}/{k}": v for k, v in layer.weight_names().items()})
        for layer in self.decoder_layers:
            names.update({f"decoder/{layer.name}/{k}": v for k, v in layer.weight_names().items()})
        names.update({f"sequnece_summary/summary/{k}": v for k, v in self.summary.weight_names().items()})
        return names

    def encoder_schedule(self) -> list[tuple[int, int, int, int]]:
        """(block, param layer index, repeat, sub-layer index within block) in execution order (spec §1.3)."""
        schedule, first = [], 0
        for block, (params, repeats) in enumerate(zip(self.config.block_param_sizes, self.config.block_repeats)):
            for p in range(params):
                for r in range(repeats):
                    schedule.append((block, first + p, r, p * repeats + r))
            first += params
        return schedule

    # -------------------------------------------------------------------------- attention structures
    def _stage(self, indices: np.ndarray, block: int, seq_len: int) -> Stage:
        config = self.config
        if config.rel_attn_type == "rel_shift":
            # The original's rel_shift places token t of block b at (1 - S) + t·S with S = pooling_size^b, also
            # without separate_cls (spec Q9), where it disagrees with the factorized form in the pooling layer.
            stride = config.pooling_size ** block
            positions = (1 - stride) + np.arange(len(indices)) * stride
        else:
            positions = indices - seq_len // 2  # the original's range(-L/2, L/2), generalised to odd lengths
        return Stage(indices=indices, positions=positions)

    def _pool_stage(self, stage: Stage, block: int, seq_len: int) -> Stage:
        config = self.config
        indices = pooling.stride_pool(stage.indices[None], config.separate_cls, config.truncate_seq,
                                      config.pooling_size)[0]
        return self._stage(indices, block, seq_len)

    def _positions(self, q: Stage, k: Stage, cache: dict, training: bool):
        """Positional encodings for one (query stage, key stage) pair, shared by all layers that use it."""
        config = self.config
        if config.rel_attn_type == "null":
            return None
        cache_key = (q.key, k.key)
        if cache_key in cache:
            return cache[cache_key]
        if config.rel_attn_type == "rel_shift":
            distances, shift = rel_shift_distances(q.positions, k.positions)
            sin, cos = sinusoids(distances, config.d_model)
            table = self.position_dropout(tf.concat([sin, cos], axis=-1), training=training)
            result = RelShiftPositions(table=table, shift=shift)
        else:
            base = cache["factorized_base"]  # block-0 sinusoids; query side with dropout (spec §2.5.2)
            pick = lambda table, idx: table if len(idx) == table.shape[0] else tf.gather(table, idx)  # noqa: E731
            q_sin, q_cos = pick(base["q_sin"], q.indices), pick(base["q_cos"], q.indices)
            k_sin, k_cos = pick(base["sin"], k.indices), pick(base["cos"], k.indices)
            result = FactorizedPositions(
                q_sin=tf.concat([q_sin, q_sin], -1), q_cos=tf.concat([q_cos, q_cos], -1),
                k_first=tf.concat([k_cos, k_sin], -1), k_second=tf.concat([-k_sin, k_cos], -1))
        cache[cache_key] = result
        return result

    def _attention_inputs(self, q: Stage, k: Stage, seg_q, seg_k, key_mask, cache, training) -> AttentionInputs:
        if self.config.rel_attn_type == "null":
            return AttentionInputs(positions=None, same_segment=None, key_mask=key_mask, cls_mask=None)
        same_segment = None
        if seg_q is not None:
            same_segment = ((seg_q[:, :, None] == seg_k[:, None, :])
                            | (seg_q == CLS_SEGMENT_ID)[:, :, None] | (seg_k == CLS_SEGMENT_ID)[:, None, :])
        # Row 0 and column 0 carry no positional or segment term, also without separate_cls (spec Q8).
        cls_mask = np.ones([len(q.indices), len(k.indices)], np.float32)
        cls_mask[0, :] = 0.0
        cls_mask[:, 0] = 0.0
        return AttentionInputs(positions=self._positions(q, k, cache, training), same_segment=same_segment,
                               key_mask=key_mask, cls_mask=tf.constant(cls_mask))

    # ------------------------------------------------------------------------------------ forward
    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> dict[str, Any]:
        config = self.config
        token_ids = tf.convert_to_tensor(inputs["token_ids"])
        seq_len = token_ids.shape[1]
        if seq_len is None:
            raise ConfigError("FunnelTFM needs a static sequence length (pad batches to a fixed length)")
        config.block_lengths(seq_len)  # raises a ConfigError that states the rule
        segment_ids = inputs.get("segment_ids")
        segment_ids = None if segment_ids is None else tf.cast(segment_ids, tf.int32)
        padding_mask = inputs.get("padding_mask")
        key_mask = (tf.ones_like(token_ids, tf.float32) if padding_mask is None
                    else tf.cast(padding_mask, tf.float32))

        hidden = self.embedding(token_ids, segment_ids if config.rel_attn_type == "null" else None,
                                training=training)
        if self.input_projection is not None:
            hidden = self.input_projection(hidden)
        if config.rel_attn_type == "null":
            segment_ids = None  # segments entered through the embedding

        cache: dict = {}
        if config.rel_attn_type == "factorized":
            sin, cos = sinusoids(np.arange(seq_len) - seq_len // 2, config.d_model)
            cache["factorized_base"] = {"sin": sin, "cos": cos, "q_sin": self.position_dropout(sin, training=training),
                                        "q_cos": self.position_dropout(cos, training=training)}
        stage = self._stage(np.arange(seq_len), 0, seq_len)
        seg, mask = segment_ids, key_mask
        block_inputs = self._attention_inputs(stage, stage, seg, seg, mask, cache, training)
        first_inputs = block_inputs

        hiddens = []
        pool = lambda x: pooling.stride_pool(x, config.separate_cls, config.truncate_seq, config.pooling_size)  # noqa
        pool_mask = lambda m: pooling.pool_sequence(m, "max", config.separate_cls, config.truncate_seq,  # noqa
                                                    config.pooling_size)  # a pooled token is real if any source is
        for block, param_index, _, sub_index in self.encoder_schedule():
            layer = self.encoder_layers[param_index]
            if block > 0 and sub_index == 0:
                pooled_stage = self._pool_stage(stage, block, seq_len)
                pooled_seg = None if seg is None else pool(seg)
                pooled_hidden = pooling.pool_sequence(hidden, config.pooling_type, config.separate_cls,
                                                      config.truncate_seq, config.pooling_size)
                if config.pool_q_only:  # pooled query attends to the unpooled keys of the previous block
                    inputs_ = self._attention_inputs(pooled_stage, stage, pooled_seg, seg, mask, cache, training)
                    hidden = layer(pooled_hidden, hidden, hidden, inputs=inputs_, training=training)
                    stage, seg, mask = pooled_stage, pooled_seg, pool_mask(mask)
                else:
                    stage, seg, mask = pooled_stage, pooled_seg, pool_mask(mask)
                    inputs_ = self._attention_inputs(stage, stage, seg, seg, mask, cache, training)
                    hidden = layer(pooled_hidden, pooled_hidden, pooled_hidden, inputs=inputs_, training=training)
                block_inputs = self._attention_inputs(stage, stage, seg, seg, mask, cache, training)
            else:
                hidden = layer(hidden, hidden, hidden, inputs=block_inputs, training=training)
            hiddens.append(hidden)

        outputs = {"sequence_output": hidden, "encoder_hiddens": hiddens,
                   "pooled_output": self.summary(hidden[:, 0])}
        if self.use_decoder:
            outputs["decoder_output"] = self.decode(hiddens, seq_len, first_inputs, training)
        return outputs

    def decode(self, hiddens: list[tf.Tensor], seq_len: int, inputs: AttentionInputs, training: bool) -> tf.Tensor:
        """Bridge (upsampled last block + last layer of block 0, spec §2.9), then the decoder layers."""
        config = self.config
        block0_last = hiddens[config.block_depths[0] - 1]
        upsampled = pooling.upsample(hiddens[-1], config.pooling_size ** (config.n_block - 1), seq_len,
                                     config.separate_cls)
        hidden = upsampled + block0_last
        for layer in self.decoder_layers:
            for _ in range(config.decoder_repeat):
                hidden = layer(hidden, hidden, hidden, inputs=inputs, training=training)
        return hidden
