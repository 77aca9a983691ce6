"""The backbone a task model is built on: the Funnel (`FunnelTFM`, hybrids included) or FNet, from its config.

    backbone = build_backbone(config, use_decoder=True, name="model", dtype="float32")
    hidden = full_length_output(backbone, backbone(inputs))     # [B, L, D] for SQuAD and the tagger
    mixes_padding(config)                                        # True: train and serve at one padded length
    init = load_fnet_checkpoint("google-fnet-base")              # a FunnelCheckpoint view, `model/encoder/...`
    init = load_fnet_checkpoint("fnet-sst2")     # transformers FNetForSequenceClassification: + head `cls/logit`
    export_view(task.checkpoint_view(), "exp/cola/export")       # funnel_config.json or fnet_config.json

FNet has no decoder: its last layer is already full length, so the tasks that read every token (SQuAD, tagging)
use it directly. This project's records give [CLS] the segment id 2 (the original Funnel's); FNet's [CLS] has
type id 0 (fnet semantics N7: row 2 of a pretrained FNet's type table was never trained), so the FNet backbone of
a task converts at its input, the one boundary every task shares.
"""

from __future__ import annotations

import os
from typing import Any

import keras
from keras import ops

from funnel_tfm import file_io
from funnel_tfm.checkpoints import fnet_format, hf_fnet
from funnel_tfm.checkpoints.assign import assign_by_name
from funnel_tfm.checkpoints.loading import MODEL, FunnelCheckpoint, LoadReport, detect_heads, export
from funnel_tfm.config import ModelConfig, read_json_object
from funnel_tfm.config_fnet import FNET_CONFIG_FILE, FNetConfig, is_fnet_config_values
from funnel_tfm.data.data_utils import CLS_SEGMENT_ID, SEGMENT_A_ID
from funnel_tfm.modeling import FunnelTFM
from funnel_tfm.modeling_fnet import FNet, FNetPreTrainingModel

AnyConfig = ModelConfig | FNetConfig
FNET_POOLER_SCOPE = "model/encoder/pooler/"  # FNet's pooled summary, as Funnel's `sequnece_summary` (N5)


def fnet_type_ids(segment_ids: Any) -> Any:
    """This project's segment ids ([CLS] 2, A 0, B 1) -> FNet's type ids ([CLS] 0 with segment A, fnet N7)."""
    segment_ids = ops.cast(segment_ids, "int32")
    return ops.where(ops.equal(segment_ids, CLS_SEGMENT_ID), SEGMENT_A_ID, segment_ids)


@keras.saving.register_keras_serializable(package="funnel_tfm")
class FNetBackbone(FNet):
    """FNet as a task backbone: [CLS]'s segment id 2 read as type id 0 (`fnet_type_ids`); no decoder."""

    use_decoder = False

    def call(self, inputs: dict[str, Any], training: bool = False) -> dict[str, Any]:
        if inputs.get("segment_ids") is not None:
            inputs = {**inputs, "segment_ids": fnet_type_ids(inputs["segment_ids"])}
        return super().call(inputs, training=training)


def is_fnet(config: Any) -> bool:
    return isinstance(config, FNetConfig)


def config_from_dict(values: AnyConfig | dict[str, Any]) -> AnyConfig:
    """A task model's `get_config()["config"]` back as its config: FNet's keys (`n_layer`) or the Funnel's."""
    if not isinstance(values, dict):
        return values
    return FNetConfig.from_dict(values) if is_fnet_config_values(values) else ModelConfig.from_dict(values)


def mixes_padding(config: AnyConfig) -> bool:
    """Whether pad tokens change the outputs of real ones (Fourier mixing has no mask, fnet semantics N7/N8):
    such a model must be trained and used at one fixed padded length."""
    return is_fnet(config) or bool(getattr(config, "has_fourier", False))


def build_backbone(config: AnyConfig, use_decoder: bool, name: str = "model", dtype: Any = None) -> keras.Model:
    """`FunnelTFM(config, use_decoder)` for a Funnel config; `FNetBackbone` (no decoder to build) for FNet."""
    if is_fnet(config):
        return FNetBackbone(config, name=name, dtype=dtype)
    return FunnelTFM(config, use_decoder=use_decoder, name=name, dtype=dtype)


def full_length_output(backbone: keras.Model, outputs: dict[str, Any]) -> Any:
    """The decoder's output when the backbone has one, else the last encoder layer (FNet's is full length)."""
    return outputs["decoder_output"] if getattr(backbone, "use_decoder", False) else outputs["sequence_output"]


def check_length(config: AnyConfig, seq_len: int) -> None:
    """A ConfigError that states the rule when `config` cannot take inputs of `seq_len` tokens."""
    if is_fnet(config):
        config.check_length(seq_len)
    else:
        config.block_lengths(seq_len)


class NamedWeights:
    """Variables under given names, as a `FunnelCheckpoint` head: how the FNet pretraining heads (N5 names:
    predictions_*, classification/*) sit beside the backbone in a checkpoint view."""

    kind = "named_weights"

    def __init__(self, names: dict[str, Any]) -> None:
        self.names = names

    def weight_names(self) -> dict[str, Any]:
        return dict(self.names)


def fnet_pretraining_view(model: FNetPreTrainingModel) -> FunnelCheckpoint:
    """The weights of an FNetPreTrainingModel under `model/` + their original names (N5), the backbone's as a
    task's FNet backbone has them (`model/encoder/...`), so finetuning initialises from it by name."""
    backbone = set(map(id, model.backbone.weight_names().values()))
    heads = {name: variable for name, variable in model.weight_names().items() if id(variable) not in backbone}
    return FunnelCheckpoint(model=model.backbone, heads={"fnet_pretraining": NamedWeights(heads)})


def load_fnet_checkpoint(path: str) -> FunnelCheckpoint:
    """A transformers FNet directory (FNetModel, FNetForPreTraining, FNetForSequenceClassification,
    FNetForMultipleChoice, FNetForTokenClassification, FNetForQuestionAnswering) or ours (fnet_config.json) as a
    checkpoint view: the backbone (`model/encoder/...`), the pretraining heads (N5) and the task heads the names
    show (`<scope>/logit`, `race/logits`, `tagger/logit`, SQuAD's; fnet semantics N11). Weights the directory
    lacks (an FNetModel's heads) are `report.missing`, so they are not used; keys it cannot map are
    `report.skipped`, with why (transformers' span head among them)."""
    contents = fnet_format.read_any_fnet(path)
    model = FNetPreTrainingModel(contents.config)
    view = fnet_pretraining_view(model)
    heads, unclaimed = detect_heads(contents.config, contents.state, model.backbone)
    view.heads.update(heads)
    result = assign_by_name(view.named_variables(), {MODEL + n: v for n, v in contents.state.items()}, path)
    skipped = dict(contents.skipped)
    pretraining = set(model.weight_names())
    skipped.update({n: "no head in this project uses this scope" for n in unclaimed if n not in pretraining})
    view.report = LoadReport(loaded=result.assigned, skipped=skipped, missing=result.missing)
    view.source_format = "fnet" if fnet_format.is_fnet_directory(path) else "hf"  # ours, or transformers' FNet
    return view


def is_fnet_checkpoint(path: str) -> bool:
    """A directory that `load_fnet_checkpoint` reads: fnet_config.json, or a config.json of model_type fnet."""
    if os.path.isfile(os.path.join(path, FNET_CONFIG_FILE)):
        return True
    config = os.path.join(path, "config.json")
    return os.path.isfile(config) and read_json_object(config).get("model_type") == "fnet"


def export_view(view: FunnelCheckpoint, directory: str) -> str:
    """Writes a task's checkpoint view in this project's format, atomically; returns a one-line summary.

    A Funnel: funnel_config.json + model.safetensors (`checkpoints.export`). FNet: fnet_config.json +
    model.safetensors under the original names (backbone `encoder/...`, head scopes as the task named them),
    which `FNet.from_pretrained` reads (head weights are reported as skipped there).
    """
    if not is_fnet(view.config):
        report = export(view, directory, to="keras", overwrite=True)
        return f"{report.written} weights (funnel_tfm format)"
    state = {name[len(MODEL):]: value for name, value in view.state().items()}
    with file_io.atomic_directory(directory, overwrite=True) as staging:
        fnet_format.write_fnet(staging, view.config, state, hf_fnet.BASE_MODEL)
    return f"{len(state)} weights (FNet, {FNET_CONFIG_FILE})"
