"""`FunnelTFM`: the exact Funnel-Transformer backbone as a Keras 3 model, on every Keras backend (semantics M).

    from funnel_tfm import FunnelTFM, ModelConfig

    model = FunnelTFM(ModelConfig(block_size="2_2_2", d_embed=32, d_model=32, n_head=4, d_head=8, d_inner=64,
                                  vocab_size=100))
    out = model({"token_ids": ids, "segment_ids": seg, "padding_mask": mask})   # 1 = real token, 0 = pad
    out["sequence_output"]   # [B, L_last, D]  last encoder layer (pooled length)
    out["encoder_hiddens"]   # every encoder layer application, in order
    out["decoder_output"]    # [B, L, D]       only when the model has a decoder
    out["pooled_output"]     # [B, D]          tanh summary of the first token of sequence_output
    model.summary()

Sequence lengths must be static (fixed-length batches); lengths the config cannot pool raise ConfigError.

The hybrid (docs/fnet_semantics.md N8): `block_mixers` gives each encoder block attention or Fourier mixing,

    FunnelTFM(named_config("B4F-4-4H768"))        # Fourier in the full-length block 0, attention after pooling
    FunnelTFM(config.replace(block_mixers="fourier_attention_attention", use_fft=False))   # DFT matrices

Fourier blocks mix pad tokens (no mask): train and serve such a model at one fixed padded length.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from funnel_tfm.checkpoints import loading
from funnel_tfm.config import MAX_POSITIONS_NULL, ConfigError, ModelConfig
from funnel_tfm.layers import pooling
from funnel_tfm.layers.attention import AttentionInputs, FunnelLayer
from funnel_tfm.layers.attention_structure import AttentionStructure
from funnel_tfm.layers.core import EinsumDense, config_initializer
from funnel_tfm.layers.embedding import FunnelEmbedding
from funnel_tfm.layers.fourier_layer import FourierFunnelLayer


def embedding_for(config: ModelConfig, **kwargs) -> FunnelEmbedding:
    """The `input` layer that a config describes."""
    return FunnelEmbedding(config.vocab_size, config.d_embed, config.layer_norm_eps, config.dropout,
                           config_initializer(config), absolute_positions=config.rel_attn_type == "null",
                           max_positions=MAX_POSITIONS_NULL, **kwargs)


def funnel_layer_for(config: ModelConfig, **kwargs) -> FunnelLayer:
    """One attention + FFN layer with the widths and rates of `config`."""
    return FunnelLayer(config.d_model, config.n_head, config.d_head, config.d_inner, config.ff_activation,
                       config.dropout, config.dropatt, config.dropact, config.layer_norm_eps,
                       config_initializer(config), relative=config.rel_attn_type != "null", **kwargs)


def fourier_layer_for(config: ModelConfig, **kwargs) -> FourierFunnelLayer:
    """One Fourier-mixing + FFN layer with the widths and rates of `config` (fnet semantics N8)."""
    return FourierFunnelLayer(config.d_model, config.d_inner, config.ff_activation, config.dropout, config.dropact,
                              config.layer_norm_eps, config_initializer(config), config.use_fft, **kwargs)


def encoder_layer_for(config: ModelConfig, mixer: str, **kwargs) -> FunnelLayer | FourierFunnelLayer:
    """The encoder layer of a block whose token mixer is `mixer` ("attention" or "fourier")."""
    return fourier_layer_for(config, **kwargs) if mixer == "fourier" else funnel_layer_for(config, **kwargs)


@keras.saving.register_keras_serializable(package="funnel_tfm")
class FunnelTFM(keras.Model):
    """Funnel-Transformer encoder (+ optional decoder) with the pooled summary; see the module docstring.

    Besides the checkpoint formats of `funnel_tfm.checkpoints`, Keras' own archive works:
    `model.save("m.keras")`, `keras.models.load_model("m.keras")`.
    """

    def __init__(self, config: ModelConfig | dict, use_decoder: bool = True,
                 shared_embedding: FunnelEmbedding | None = None, **kwargs) -> None:
        """`shared_embedding`: use another model's `input` layer (the ELECTRA generator shares the
        discriminator's word table and LayerNorm, semantics P4); its weights are then not this model's own."""
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = ModelConfig.from_dict(config)
        self.config = config
        self.use_decoder = use_decoder
        policy = self.dtype_policy
        self.owns_embedding = shared_embedding is None
        self.embedding = embedding_for(config, name="input", dtype=policy) if self.owns_embedding \
            else shared_embedding
        self.input_projection = (EinsumDense((config.d_embed,), (config.d_model,), config_initializer(config),
                                             name="input_projection", dtype=policy)
                                 if config.d_embed != config.d_model else None)
        self.encoder_layers = [encoder_layer_for(config, mixer, name=f"layer_{i}", dtype=policy)
                               for i, mixer in enumerate(config.param_layer_mixers())]
        first_decoder = config.n_encoder_param_layers
        self.decoder_layers = ([funnel_layer_for(config, name=f"layer_{first_decoder + i}", dtype=policy)
                                for i in range(config.decoder_param_size)] if use_decoder else [])
        # Named `sequence_summary`, not `summary`: that would hide keras.Model.summary(). The original's scope
        # name keeps its typo (`sequnece_summary`) for checkpoint parity.
        self.sequence_summary = EinsumDense((config.d_model,), (config.d_model,), config_initializer(config),
                                            activation="tanh", name="sequnece_summary", dtype=policy)
        self.structure = AttentionStructure(config.rel_attn_type, config.d_model, config.pooling_size,
                                            config.separate_cls, config.truncate_seq, config.dropout,
                                            name="attention_structure", dtype=policy)
        self.built = True

    # ------------------------------------------------------------------------------------ structure
    def get_config(self) -> dict[str, Any]:
        if not self.owns_embedding:
            raise NotImplementedError("a FunnelTFM with a shared embedding is rebuilt by its owner, not from config")
        return {"config": self.config.to_dict(), "use_decoder": self.use_decoder, "name": self.name,
                "dtype": self.dtype_policy.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "FunnelTFM":
        return cls(**config)

    @classmethod
    def from_pretrained(cls, path: str, use_decoder: bool | None = None, dtype: Any = None) -> "FunnelTFM":
        """The backbone of an original (net_config.json + model.ckpt*), Hugging Face or funnel_tfm checkpoint
        directory; `model.load_report` says what was loaded. Heads and the ELECTRA generator: `load_checkpoint`.

            model = FunnelTFM.from_pretrained("B6-6-6H768-ELEC-FULL-TF")
        """
        return cls.load_checkpoint(path, use_decoder=use_decoder, dtype=dtype).model

    @classmethod
    def load_checkpoint(cls, path: str, use_decoder: bool | None = None, dtype: Any = None) -> loading.FunnelCheckpoint:
        """The backbone with every head, the generator and optimizer state the checkpoint holds.

            ckpt = FunnelTFM.load_checkpoint("B6-6-6H768-ELEC-FULL-TF")
            ckpt.model, ckpt.heads["binary"], ckpt.generator, ckpt.report.summary()
        """
        return loading.load_checkpoint(path, cls, use_decoder=use_decoder, dtype=dtype)

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
        names.update({f"sequnece_summary/summary/{k}": v for k, v in self.sequence_summary.weight_names().items()})
        return names

    def encoder_schedule(self) -> list[tuple[int, int, int, int]]:
        """(block, param layer index, repeat, sub-layer index within block) in execution order (semantics M9)."""
        schedule, first = [], 0
        for block, (params, repeats) in enumerate(zip(self.config.block_param_sizes, self.config.block_repeats)):
            for p in range(params):
                for r in range(repeats):
                    schedule.append((block, first + p, r, p * repeats + r))
            first += params
        return schedule

    # ------------------------------------------------------------------------------------ forward
    def call(self, inputs: dict[str, Any], training: bool = False) -> dict[str, Any]:
        config = self.config
        token_ids = ops.convert_to_tensor(inputs["token_ids"])
        seq_len = token_ids.shape[1]
        if seq_len is None:
            raise ConfigError("FunnelTFM needs a static sequence length (pad batches to a fixed length)")
        config.block_lengths(seq_len)  # raises a ConfigError that states the rule
        segment_ids = inputs.get("segment_ids")
        segment_ids = None if segment_ids is None else ops.cast(segment_ids, "int32")
        padding_mask = inputs.get("padding_mask")
        key_mask = (ops.ones_like(token_ids, "float32") if padding_mask is None
                    else ops.cast(padding_mask, "float32"))

        hidden = self.embedding(token_ids, segment_ids if config.rel_attn_type == "null" else None,
                                training=training)
        if self.input_projection is not None:
            hidden = self.input_projection(hidden)
        if config.rel_attn_type == "null":
            segment_ids = None  # segments entered through the embedding

        structure = self.structure
        cache = structure.begin(seq_len, training)
        stage = structure.first_stage(seq_len)
        seg, mask = segment_ids, key_mask
        block_inputs = structure.attention_inputs(cache, stage, stage, seg, seg, mask, training)
        first_inputs = block_inputs

        hiddens = []
        mixers = config.block_mixer_list
        for block, param_index, _, sub_index in self.encoder_schedule():
            layer = self.encoder_layers[param_index]
            fourier = mixers[block] == "fourier"
            if block > 0 and sub_index == 0:
                pooled_stage = structure.pool_stage(stage, block, seq_len)
                pooled_seg = None if seg is None else self._pool_ids(seg)
                pooled_mask = self._pool_mask(mask)
                pooled_hidden = pooling.pool_sequence(hidden, config.pooling_type, config.separate_cls,
                                                      config.truncate_seq, config.pooling_size)
                if fourier:
                    hidden = self._fourier_pooling_layer(layer, hidden, pooled_hidden, training)
                    stage, seg, mask = pooled_stage, pooled_seg, pooled_mask
                elif config.pool_q_only:  # pooled query attends to the unpooled keys of the previous block
                    inputs_ = structure.attention_inputs(cache, pooled_stage, stage, pooled_seg, seg, mask, training)
                    hidden = layer(pooled_hidden, hidden, hidden, inputs=inputs_, training=training)
                    stage, seg, mask = pooled_stage, pooled_seg, pooled_mask
                else:
                    stage, seg, mask = pooled_stage, pooled_seg, pooled_mask
                    inputs_ = structure.attention_inputs(cache, stage, stage, seg, seg, mask, training)
                    hidden = layer(pooled_hidden, pooled_hidden, pooled_hidden, inputs=inputs_, training=training)
                # A Fourier block needs no attention structure (no positions, segments or mask).
                block_inputs = None if fourier else structure.attention_inputs(cache, stage, stage, seg, seg, mask,
                                                                               training)
            elif fourier:
                hidden = layer(hidden, training=training)
            else:
                hidden = layer(hidden, hidden, hidden, inputs=block_inputs, training=training)
            hiddens.append(hidden)

        outputs = {"sequence_output": hidden, "encoder_hiddens": hiddens,
                   "pooled_output": self.sequence_summary(hidden[:, 0])}
        if self.use_decoder:
            outputs["decoder_output"] = self.decode(hiddens, seq_len, first_inputs, training)
        return outputs

    def _fourier_pooling_layer(self, layer: FourierFunnelLayer, hidden, pooled_hidden, training: bool):
        """First layer of a pooled Fourier block (fnet semantics N8): the pooled residual gets, with pool_q_only,
        the pooled mixing of the unpooled sequence (as attention's pooled query reads the unpooled keys), else the
        mixing of the pooled sequence."""
        if not self.config.pool_q_only:
            return layer(pooled_hidden, training=training)
        config = self.config
        mixed = pooling.pool_sequence(layer.mix(hidden), config.pooling_type, config.separate_cls,
                                      config.truncate_seq, config.pooling_size)
        return layer(pooled_hidden, mixed=mixed, training=training)

    def _pool_ids(self, ids):
        config = self.config
        return pooling.stride_pool(ids, config.separate_cls, config.truncate_seq, config.pooling_size)

    def _pool_mask(self, mask):
        """A pooled token is real if any of its sources is (semantics M8; transformers needs all of them)."""
        config = self.config
        return pooling.pool_sequence(mask, "max", config.separate_cls, config.truncate_seq, config.pooling_size)

    def decode(self, hiddens: list[Any], seq_len: int, inputs: AttentionInputs, training: bool):
        """Bridge (upsampled last block + last layer of block 0, semantics M10), then the decoder layers."""
        config = self.config
        block0_last = hiddens[config.block_depths[0] - 1]
        upsampled = pooling.upsample(hiddens[-1], config.pooling_size ** (config.n_block - 1), seq_len,
                                     config.separate_cls)
        hidden = upsampled + block0_last
        for layer in self.decoder_layers:
            for _ in range(config.decoder_repeat):
                hidden = layer(hidden, hidden, hidden, inputs=inputs, training=training)
        return hidden
