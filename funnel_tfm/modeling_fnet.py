"""FNet (docs/fnet_semantics.md) on this codebase's layers: the backbone and the MLM + NSP pretraining model.

    from funnel_tfm.config_fnet import FNetConfig
    from funnel_tfm.modeling_fnet import FNet, FNetPreTrainingModel

    model = FNet(FNetConfig(d_embed=64, d_model=64, d_inner=128, n_layer=2, vocab_size=500, max_seq_length=128))
    out = model({"token_ids": ids, "segment_ids": seg})   # padding_mask: read only by hybrid attention layers
    out["embedding_output"]  # [B, L, D]  embedder output (after the projection)
    out["encoder_hiddens"]   # every encoder block's output, in order
    out["sequence_output"]   # [B, L, D]  the last one
    out["pooled_output"]     # [B, D]     tanh(dense(first token))

    pretrain = FNetPreTrainingModel.from_pretrained("fnet-base")        # transformers FNetForPreTraining dir
    logits = pretrain(inputs)                     # + "mlm_logits" [B, L, V], "nsp_logits" [B, 2] (float32)
    pretrain.save_pretrained("out/fnet")          # transformers.FNetForPreTraining.from_pretrained loads it

Fourier mixing has no mask: pad tokens are mixed like real ones, so pad every batch to the length the weights
were trained with (the original: max_seq_length) and expect different numbers for other paddings.

Hybrids (the original's layouts, fnet semantics N9): attention replaces Fourier mixing in some layers, which read
`padding_mask` (1 = real token) as the original does. transformers cannot hold them, so they are saved in this
project's format (fnet_config.json + model.safetensors under the original names):

    model = FNet(config.replace(num_attention_layers=2, attention_layout="top", n_head=4))
    model.save_pretrained("out/hybrid", format="keras")   # the default, "hf", refuses a hybrid
    FNet.from_pretrained("out/hybrid")            # either format
`segment_ids` are the original's type ids (0 for [CLS] and segment A, 1 for B, up to type_vocab_size - 1),
used as given; absent, they are 0.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from funnel_tfm import file_io
from funnel_tfm.checkpoints import fnet_format, hf_fnet
from funnel_tfm.checkpoints.assign import assign_by_name
from funnel_tfm.checkpoints.loading import LoadReport
from funnel_tfm.config import ConfigError
from funnel_tfm.config_fnet import FNetConfig
from funnel_tfm.errors import CheckpointError
from funnel_tfm.layers.core import EinsumDense
from funnel_tfm.layers.fnet_blocks import FNetEmbedding, FNetEncoderBlock, OutputProjection, flax_layer_norm_names
from funnel_tfm.layers.heads import LMHead


def _initializer(config: FNetConfig) -> keras.initializers.Initializer:
    """The original draws every kernel and table from N(0, 0.02) (biases too; here they start at zero)."""
    return keras.initializers.RandomNormal(stddev=config.init_std)


def _check_whole_heads(assigned: list[str], missing: list[str], source: str) -> None:
    """Raises CheckpointError when a head comes in part (`classification/output_bias` without its kernel): a
    head the checkpoint lacks entirely stays at init (said in `load_report`), half of one would be silently wrong.
    A head is the first word of its names (`predictions_dense`, `predictions_output` -> predictions)."""
    def head(name: str) -> str:
        return name.split("/")[0].split("_")[0]
    present = {head(name) for name in assigned}
    partial = [name for name in missing if head(name) in present and name not in hf_fnet.POOLER]
    if partial:
        raise CheckpointError(f"{source}: {len(partial)} weight(s) of a head the checkpoint holds in part are "
                              f"missing: {', '.join(partial[:8])}{' ...' if len(partial) > 8 else ''}")


class _HFCheckpointMixin:
    """`from_pretrained` / `save_pretrained` through transformers' directory format or this project's
    (`checkpoints.fnet_format`: hybrids), both under the original names."""

    hf_architecture = hf_fnet.BASE_MODEL
    SAVE_FORMATS = ("hf", "keras")

    @classmethod
    def from_pretrained(cls, path: str, use_fft: bool | None = None, dtype: Any = None) -> Any:
        """A model with the weights of a transformers FNet directory or one of ours (fnet_config.json);
        `model.load_report` says what was loaded.

        use_fft: override the Fourier path of the config (both compute the same function).
        """
        contents = fnet_format.read_any_fnet(path)
        config, state, skipped = contents.config, contents.state, dict(contents.skipped)
        config = config if use_fft is None else config.replace(use_fft=use_fft)
        model = cls(config, dtype=dtype)
        result = assign_by_name(model.weight_names(), state, source=path)
        _check_whole_heads(result.assigned, result.missing, path)
        skipped.update({name: f"{cls.__name__} has no place for it" for name in result.unused})
        model.load_report = LoadReport(loaded=result.assigned, skipped=skipped, missing=result.missing)
        return model

    def save_pretrained(self, directory: str, overwrite: bool = False, format: str = "hf") -> None:
        """Writes the model atomically: "hf" (config.json + model.safetensors for transformers' FNetModel /
        FNetForPreTraining; a CheckpointError for what transformers cannot express: a hybrid, d_embed != d_model)
        or "keras" (ours: fnet_config.json + model.safetensors, any config).

            model.save_pretrained("out/hybrid", format="keras")
        """
        if format not in self.SAVE_FORMATS:
            raise CheckpointError(f"save_pretrained: unknown format {format!r}; expected "
                                  f"{', '.join(self.SAVE_FORMATS)}")
        state = {name: keras.ops.convert_to_numpy(variable) for name, variable in self.weight_names().items()}
        writer = hf_fnet.write_hf_fnet if format == "hf" else fnet_format.write_fnet
        try:
            with file_io.atomic_directory(directory, overwrite=overwrite) as staging:
                writer(staging, self.config, state, self.hf_architecture)
        except file_io.OutputExistsError as error:
            raise CheckpointError(str(error)) from None


@keras.saving.register_keras_serializable(package="funnel_tfm")
class FNet(_HFCheckpointMixin, keras.Model):
    """The FNet encoder with its pooler (the original `EncoderModel`); see the module docstring."""

    def __init__(self, config: FNetConfig | dict, **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = FNetConfig.from_dict(config)
        self.config = config
        policy, init = self.dtype_policy, _initializer(config)
        self.embedder = FNetEmbedding(config.vocab_size, config.d_embed, config.d_model, config.max_seq_length,
                                      config.type_vocab_size, config.layer_norm_eps, config.dropout, init,
                                      name="embedder", dtype=policy)
        attending = set(config.attention_layers())
        self.encoder_blocks = [FNetEncoderBlock(i, config.d_model, config.d_inner, config.ff_activation,
                                                config.dropout, config.layer_norm_eps, init, config.use_fft,
                                                attention_heads=config.n_head if i in attending else None,
                                                attention_dropout=config.attention_dropout, dtype=policy)
                               for i in range(config.n_layer)]
        self.pooler = EinsumDense((config.d_model,), (config.d_model,), init, activation="tanh", name="pooler",
                                  dtype=policy)
        self.built = True

    def get_config(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "name": self.name, "dtype": self.dtype_policy.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "FNet":
        return cls(**config)

    def weight_names(self) -> dict[str, Any]:
        """Original Flax parameter paths (`encoder/...`, as inside the original PreTrainingModel) -> variables."""
        names = {f"encoder/embedder/{k}": v for k, v in self.embedder.weight_names().items()}
        for block in self.encoder_blocks:
            names.update({f"encoder/{k}": v for k, v in block.weight_names().items()})
        names.update({f"encoder/pooler/{k}": v for k, v in self.pooler.weight_names().items()})
        return names

    def call(self, inputs: dict[str, Any], training: bool = False) -> dict[str, Any]:
        token_ids = ops.convert_to_tensor(inputs["token_ids"])
        seq_len = token_ids.shape[1]
        self.config.check_length(seq_len)
        segment_ids = inputs.get("segment_ids")
        segment_ids = ops.zeros_like(token_ids, "int32") if segment_ids is None else ops.cast(segment_ids, "int32")
        hidden = self.embedder(token_ids, segment_ids, training=training)
        outputs = {"embedding_output": hidden}
        # Only a hybrid's attention layers read the mask (fnet semantics N9); Fourier layers mix pads (N7).
        padding_mask = inputs.get("padding_mask") if self.config.is_hybrid else None
        padding_mask = None if padding_mask is None else ops.cast(padding_mask, "float32")
        hiddens = []
        for block in self.encoder_blocks:
            hidden = block(hidden, padding_mask, training=training)
            hiddens.append(hidden)
        outputs.update(encoder_hiddens=hiddens, sequence_output=hidden, pooled_output=self.pooler(hidden[:, 0]))
        return outputs


@keras.saving.register_keras_serializable(package="funnel_tfm")
class FNetPreTrainingModel(_HFCheckpointMixin, keras.Model):
    """The backbone with the original MLM head (dense D->E + gelu + LayerNorm, tied word table, output bias) and
    the NSP head (2-way projection of the pooled output). Returns the backbone's dict plus float32
    `mlm_logits` [B, L, V] (or [B, K, V] at `inputs["masked_lm_positions"]` [B, K], as the original computes
    them) and `nsp_logits` [B, 2].
    """

    hf_architecture = hf_fnet.PRETRAINING

    def __init__(self, config: FNetConfig | dict, **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = FNetConfig.from_dict(config)
        self.config = config
        policy, init = self.dtype_policy, _initializer(config)
        self.backbone = FNet(config, name="encoder", dtype=policy)
        self.mlm_head = LMHead(self.backbone.embedder, config.d_model, config.d_embed, config.vocab_size,
                               config.ff_activation, config.layer_norm_eps, init, name="predictions", dtype=policy)
        self.nsp_head = OutputProjection(config.d_model, 2, init, name="classification", dtype=policy)
        self.built = True

    def get_config(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "name": self.name, "dtype": self.dtype_policy.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "FNetPreTrainingModel":
        return cls(**config)

    def weight_names(self) -> dict[str, Any]:
        """The backbone's names plus the original heads: predictions_dense, predictions_layer_norm,
        predictions_output/output_bias and classification/output_{kernel,bias}."""
        names = self.backbone.weight_names()
        names.update({f"predictions_dense/{k}": v for k, v in self.mlm_head.dense.weight_names().items()})
        names.update({f"predictions_layer_norm/{k}": v
                      for k, v in flax_layer_norm_names(self.mlm_head.layer_norm).items()})
        names["predictions_output/output_bias"] = self.mlm_head.bias
        names.update({f"classification/{k}": v for k, v in self.nsp_head.weight_names().items()})
        return names

    def call(self, inputs: dict[str, Any], training: bool = False) -> dict[str, Any]:
        outputs = dict(self.backbone(inputs, training=training))
        outputs["mlm_logits"] = self.mlm_head(outputs["sequence_output"], inputs.get("masked_lm_positions"))
        outputs["nsp_logits"] = self.nsp_head(outputs["pooled_output"])
        return outputs


__all__ = ["ConfigError", "FNet", "FNetConfig", "FNetPreTrainingModel"]
