"""Hugging Face Funnel directories (`config.json` + `model.safetensors` / `pytorch_model.bin`) <-> original names.

Every tensor is mapped onto its full original TF name (`model/encoder/layer_3/rel_attn/q/kernel`, ...) and back,
with reshapes done axis by axis so that `n_head * d_head != d_model` converts correctly:

    contents = read_hf("funnel-small")               # HFContents: config, state by original name, skipped keys
    skipped = write_hf("out/hf", config, state, heads=[("classification", "mnli", 3)], use_decoder=False)
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable

import numpy as np

from funnel_tfm.config import ConfigError, ModelConfig
from funnel_tfm.errors import CheckpointError
from funnel_tfm.checkpoints.torch_state import read_torch_state

HF_CONFIG = "config.json"
HF_WEIGHTS = "model.safetensors"
HF_TORCH_WEIGHTS = "pytorch_model.bin"
TASK_PREFIX = "funnel."

Transform = Callable[[np.ndarray, ModelConfig], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Rule:
    """One HF key <-> one original name, with the reshape in each direction."""

    name: str
    to_ours: Transform
    to_hf: Transform


def _rule(name: str, kind: str) -> Rule:
    """kind: how a torch tensor relates to the original one (see `_TRANSFORMS`)."""
    to_ours, to_hf = _TRANSFORMS[kind]
    return Rule(name, to_ours, to_hf)


_TRANSFORMS: dict[str, tuple[Transform, Transform]] = {
    # torch Linear(D -> N·H) weight [N·H, D] <-> kernel [D, N, H]
    "linear_in": (lambda a, c: a.T.reshape(a.shape[1], c.n_head, c.d_head),
                  lambda a, c: a.reshape(a.shape[0], -1).T),
    # torch Linear(N·H -> D) weight [D, N·H] <-> kernel [N, H, D]
    "linear_out": (lambda a, c: a.T.reshape(c.n_head, c.d_head, a.shape[0]),
                   lambda a, c: a.reshape(-1, a.shape[-1]).T),
    "head_bias": (lambda a, c: a.reshape(c.n_head, c.d_head), lambda a, c: a.reshape(-1)),
    "transpose": (lambda a, c: a.T, lambda a, c: a.T),
    "row": (lambda a, c: a.reshape(-1), lambda a, c: a.reshape(1, -1)),  # Linear(D -> 1) weight [1, D] <-> [D]
    "same": (lambda a, c: a, lambda a, c: a),
}

_LAYER_PARTS = {
    "attention.q_head.weight": ("rel_attn/q/kernel", "linear_in"),
    "attention.k_head.weight": ("rel_attn/k/kernel", "linear_in"),
    "attention.k_head.bias": ("rel_attn/k/bias", "head_bias"),
    "attention.v_head.weight": ("rel_attn/v/kernel", "linear_in"),
    "attention.v_head.bias": ("rel_attn/v/bias", "head_bias"),
    "attention.post_proj.weight": ("rel_attn/o/kernel", "linear_out"),
    "attention.post_proj.bias": ("rel_attn/o/bias", "same"),
    "attention.r_w_bias": ("rel_attn/r_w_bias", "same"),
    "attention.r_r_bias": ("rel_attn/r_r_bias", "same"),
    "attention.r_kernel": ("rel_attn/r/kernel", "same"),
    "attention.r_s_bias": ("rel_attn/r_s_bias", "same"),
    "attention.seg_embed": ("rel_attn/seg_embed", "same"),
    "attention.layer_norm.weight": ("rel_attn/layer_norm/gamma", "same"),
    "attention.layer_norm.bias": ("rel_attn/layer_norm/beta", "same"),
    "ffn.linear_1.weight": ("ff/layer_1/kernel", "transpose"),
    "ffn.linear_1.bias": ("ff/layer_1/bias", "same"),
    "ffn.linear_2.weight": ("ff/layer_2/kernel", "transpose"),
    "ffn.linear_2.bias": ("ff/layer_2/bias", "same"),
    "ffn.layer_norm.weight": ("ff/layer_norm/gamma", "same"),
    "ffn.layer_norm.bias": ("ff/layer_norm/beta", "same"),
}
_EMBEDDING_PARTS = {
    "embeddings.word_embeddings.weight": ("model/input/word_embedding/lookup_table", "same"),
    "embeddings.layer_norm.weight": ("model/input/layer_norm/gamma", "same"),
    "embeddings.layer_norm.bias": ("model/input/layer_norm/beta", "same"),
}
_SUMMARY_PARTS = {
    "classifier.linear_hidden.weight": ("model/sequnece_summary/summary/kernel", "transpose"),
    "classifier.linear_hidden.bias": ("model/sequnece_summary/summary/bias", "same"),
}
_DISCRIMINATOR_PARTS = {
    "discriminator_predictions.dense.weight": ("model/binary_proj/dense/kernel", "transpose"),
    "discriminator_predictions.dense.bias": ("model/binary_proj/dense/bias", "same"),
    "discriminator_predictions.dense_prediction.weight": ("model/binary_loss/weight", "row"),
    "discriminator_predictions.dense_prediction.bias": ("model/binary_loss/bias", "same"),
}
_TOKEN_CLASSIFIER_PARTS = {  # FunnelForTokenClassification: dropout + Linear on FunnelModel's (decoder) output
    "classifier.weight": ("model/tagger/logit/kernel", "transpose"),
    "classifier.bias": ("model/tagger/logit/bias", "same"),
}

# Keys of transformers heads that have no counterpart here, and why.
_FOREIGN_HEADS = {
    "lm_head.": "transformers' MLM head is a plain tied Linear, not the original LM head (lm_proj + LayerNorm)",
    "qa_outputs.": "transformers' span head (one Linear for start and end) is not the original SQuAD head",
}

BASE_MODEL, FULL_MODEL = "FunnelBaseModel", "FunnelModel"
PRETRAINING, SEQUENCE_CLASSIFICATION, MULTIPLE_CHOICE, TOKEN_CLASSIFICATION = (
    "FunnelForPreTraining", "FunnelForSequenceClassification", "FunnelForMultipleChoice",
    "FunnelForTokenClassification")
_TASK_CLASSES = (PRETRAINING, SEQUENCE_CLASSIFICATION, MULTIPLE_CHOICE, TOKEN_CLASSIFICATION)
_HEAD_KIND = {SEQUENCE_CLASSIFICATION: "classification", TOKEN_CLASSIFICATION: "token_classification"}


def backbone_rules(config: ModelConfig, with_decoder: bool) -> dict[str, Rule]:
    """Every key of a transformers FunnelModel / FunnelBaseModel -> rule."""
    rules = {key: _rule(name, kind) for key, (name, kind) in _EMBEDDING_PARTS.items()}
    layer = 0
    for block, params in enumerate(config.block_param_sizes):
        for i in range(params):
            for part, (suffix, kind) in _LAYER_PARTS.items():
                rules[f"encoder.blocks.{block}.{i}.{part}"] = _rule(f"model/encoder/layer_{layer}/{suffix}", kind)
            layer += 1
    if with_decoder:
        for j in range(config.decoder_param_size):
            for part, (suffix, kind) in _LAYER_PARTS.items():
                rules[f"decoder.layers.{j}.{part}"] = _rule(f"model/decoder/layer_{layer + j}/{suffix}", kind)
    return rules


def head_rules(architecture: str, scope: str | None = None) -> dict[str, Rule]:
    """The head keys of one transformers task class (without the `funnel.` backbone prefix)."""
    if architecture == PRETRAINING:
        return {key: _rule(name, kind) for key, (name, kind) in _DISCRIMINATOR_PARTS.items()}
    if architecture == TOKEN_CLASSIFICATION:
        return {key: _rule(name, kind) for key, (name, kind) in _TOKEN_CLASSIFIER_PARTS.items()}
    if architecture in (SEQUENCE_CLASSIFICATION, MULTIPLE_CHOICE):
        out = f"model/{scope}/logit" if architecture == SEQUENCE_CLASSIFICATION else "model/race/logits"
        rules = {key: _rule(name, kind) for key, (name, kind) in _SUMMARY_PARTS.items()}
        rules["classifier.linear_out.weight"] = _rule(f"{out}/kernel", "transpose")
        rules["classifier.linear_out.bias"] = _rule(f"{out}/bias", "same")
        return rules
    return {}


# ------------------------------------------------------------------------------------------------- reading
@dataclasses.dataclass
class HFContents:
    config: ModelConfig
    state: dict[str, np.ndarray]          # full original name -> array
    skipped: dict[str, str]               # HF key -> why it was not loaded
    architecture: str


def read_safetensors(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) of a safetensors file, without torch; errors name the file."""
    from safetensors import safe_open
    try:
        with safe_open(path, framework="numpy") as handle:
            return {key: handle.get_tensor(key) for key in handle.keys()}, handle.metadata() or {}
    except Exception as error:  # safetensors raises its own error types for truncated / foreign files
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None


def _read_torch_bin(path: str) -> dict[str, np.ndarray]:
    return read_torch_state(path, "pytorch_model.bin")


def read_hf_tensors(directory: str) -> dict[str, np.ndarray]:
    """The tensors of an HF directory, as saved (task classes keep their `funnel.` prefix)."""
    safetensors_path = os.path.join(directory, HF_WEIGHTS)
    torch_path = os.path.join(directory, HF_TORCH_WEIGHTS)
    if os.path.exists(safetensors_path):
        return read_safetensors(safetensors_path)[0]
    if os.path.exists(torch_path):
        return _read_torch_bin(torch_path)
    raise CheckpointError(f"{directory}: no {HF_WEIGHTS} or {HF_TORCH_WEIGHTS}")


def _read_json(path: str) -> dict:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: cannot read ({error})") from None


def read_hf(directory: str) -> HFContents:
    """Reads an HF Funnel directory into original names; heads of transformers task classes included."""
    config_path = os.path.join(directory, HF_CONFIG)
    try:
        config = ModelConfig.from_json(config_path)
    except ConfigError as error:
        raise CheckpointError(str(error)) from None
    raw_config = _read_json(config_path)
    tensors = read_hf_tensors(directory)
    task_model = any(key.startswith(TASK_PREFIX) for key in tensors)
    state_hf = {(k[len(TASK_PREFIX):] if k.startswith(TASK_PREFIX) else k): v for k, v in tensors.items()}
    with_decoder = any(k.startswith("decoder.") for k in state_hf)
    architecture = _detect_architecture(raw_config, state_hf, task_model, with_decoder)
    rules = backbone_rules(config, with_decoder)
    rules.update(head_rules(architecture, _classification_scope(raw_config)))
    state, skipped = {}, {}
    for key, array in state_hf.items():
        rule = rules.get(key)
        if rule is None:
            reason = next((why for prefix, why in _FOREIGN_HEADS.items() if key.startswith(prefix)),
                          "not a weight of any Funnel model or head this project knows")
            skipped[key] = reason
            continue
        try:
            state[rule.name] = rule.to_ours(array, config)
        except ValueError:
            raise CheckpointError(f"{directory}: {key} has shape {tuple(array.shape)}, which does not fit the config "
                                  f"(d_model {config.d_model}, n_head {config.n_head}, d_head {config.d_head})") from None
    return HFContents(config=config, state=state, skipped=skipped, architecture=architecture)


def _classification_scope(raw_config: dict) -> str:
    task = raw_config.get("finetuning_task")
    return str(task).lower() if task else "cls"


def _detect_architecture(raw_config: dict, state_hf: dict, task_model: bool, with_decoder: bool) -> str:
    declared = [a for a in raw_config.get("architectures") or [] if a.startswith("Funnel")]
    if declared and declared[0] in _TASK_CLASSES:
        return declared[0]
    if "discriminator_predictions.dense.weight" in state_hf:
        return PRETRAINING
    if "classifier.linear_out.weight" in state_hf:
        return SEQUENCE_CLASSIFICATION
    if "classifier.weight" in state_hf and with_decoder:
        return TOKEN_CLASSIFICATION
    if declared:
        return declared[0]
    return FULL_MODEL if with_decoder else BASE_MODEL


# ------------------------------------------------------------------------------------------------- writing
def choose_architecture(heads: list[tuple[str, str, int]], use_decoder: bool) -> tuple[str, str | None]:
    """(transformers class, classification scope) for a model with these heads; one head per HF class.

    heads: (kind, scope, n_class). Preference: classification, multiple choice, token classification and the
    ELECTRA discriminator (both need the decoder: their transformers classes are built on FunnelModel), else the
    plain backbone.
    """
    kinds = {kind: (scope, n) for kind, scope, n in heads}
    if "classification" in kinds:
        return SEQUENCE_CLASSIFICATION, kinds["classification"][0]
    if "multiple_choice" in kinds:
        return MULTIPLE_CHOICE, None
    if "token_classification" in kinds and use_decoder:
        return TOKEN_CLASSIFICATION, None
    if "discriminator" in kinds and use_decoder:
        return PRETRAINING, None
    return (FULL_MODEL if use_decoder else BASE_MODEL), None


def label_fields(n_class: int, sequence_scope: str | None = None) -> dict:
    """transformers' config fields of a head with `n_class` outputs: placeholder label names (the exporter writes the
    run's real ones over them), and for sequence classification its task and problem type.

        label_fields(2, "cola")   # {"id2label": {...}, "label2id": {...}, "finetuning_task": "cola", ...}
    """
    values = {"id2label": {str(i): f"LABEL_{i}" for i in range(n_class)},
              "label2id": {f"LABEL_{i}": i for i in range(n_class)}}
    if sequence_scope is not None:
        values["finetuning_task"] = sequence_scope
        values["problem_type"] = "regression" if n_class == 1 else "single_label_classification"
    return values


def hf_config_dict(config: ModelConfig, architecture: str, scope: str | None, n_class: int | None) -> dict:
    values = config.to_hf_dict()
    values["architectures"] = [architecture]
    if architecture in _HEAD_KIND:
        values.update(label_fields(n_class, scope if architecture == SEQUENCE_CLASSIFICATION else None))
    return values


def write_hf(directory: str, config: ModelConfig, state: dict[str, np.ndarray],
             heads: list[tuple[str, str, int]], use_decoder: bool) -> tuple[str, dict[str, str]]:
    """Writes config.json + model.safetensors into an existing (staging) directory.

    Returns (transformers class, {original name: why it was not written}). Raises CheckpointError when a
    weight the class needs is absent from `state`, or the config cannot be expressed in transformers.
    """
    from safetensors.numpy import save_file
    architecture, scope = choose_architecture(heads, use_decoder)
    n_class = next((n for kind, s, n in heads if kind == _HEAD_KIND.get(architecture) and scope in (None, s)), None)
    with_decoder = architecture in (FULL_MODEL, PRETRAINING, TOKEN_CLASSIFICATION)
    rules = backbone_rules(config, with_decoder)
    task = architecture not in (FULL_MODEL, BASE_MODEL)
    if task:
        rules = {TASK_PREFIX + key: rule for key, rule in rules.items()}
        rules.update(head_rules(architecture, scope))
    try:
        config_values = hf_config_dict(config, architecture, scope, n_class)
    except ConfigError as error:
        raise CheckpointError(str(error)) from None
    absent = sorted(rule.name for rule in rules.values() if rule.name not in state)
    if absent:
        raise CheckpointError(f"cannot write {architecture}: missing {len(absent)} weight(s): {', '.join(absent[:8])}"
                              f"{' ...' if len(absent) > 8 else ''}")
    tensors = {key: np.ascontiguousarray(rule.to_hf(state[rule.name], config).astype(np.float32))
               for key, rule in rules.items()}
    written = {rule.name for rule in rules.values()}
    skipped = {name: f"{architecture} has no place for it" for name in state if name not in written}
    with open(os.path.join(directory, HF_CONFIG), "w") as handle:
        json.dump(config_values, handle, indent=2, sort_keys=True)
    save_file(tensors, os.path.join(directory, HF_WEIGHTS), metadata={"format": "pt"})
    return architecture, skipped
