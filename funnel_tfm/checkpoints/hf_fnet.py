"""Hugging Face FNet directories (`config.json` + `model.safetensors`) <-> the original f_net parameter names.

Every tensor maps onto the Flax parameter path of the original `PreTrainingModel` (`encoder/embedder/word/embedding`,
`encoder/feed_forward_3/intermediate/kernel`, `predictions_dense/kernel`, ...; fnet semantics N5) and back; the
`classifier` of transformers' task classes maps onto this project's task heads (N11): `<scope>/logit`
(FNetForSequenceClassification, scope = `finetuning_task` or `cls`), `race/logits` (FNetForMultipleChoice),
`tagger/logit` (FNetForTokenClassification). `model.safetensors` is read with numpy; a `pytorch_model.bin` (older
saves, as google/fnet-base) needs PyTorch:

    contents = read_hf_fnet("fnet-base")     # config, state by original name, skipped keys (with why), class
    write_hf_fnet("staging", config, state, PRETRAINING)   # FNetModel, FNetForPreTraining or a task class
    architecture, scope = choose_architecture([("classification", "cola", 2)], state)  # FNetForSequenceClassification
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Callable

import numpy as np

from funnel_tfm.checkpoints.hf_format import HF_CONFIG, HF_WEIGHTS, label_fields, read_hf_tensors
from funnel_tfm.config import ConfigError
from funnel_tfm.config_fnet import FNetConfig
from funnel_tfm.errors import CheckpointError
from funnel_tfm.layers.fourier import dft_matrices

BASE_MODEL, PRETRAINING = "FNetModel", "FNetForPreTraining"
SEQUENCE_CLASSIFICATION, MULTIPLE_CHOICE, TOKEN_CLASSIFICATION, QUESTION_ANSWERING = (
    "FNetForSequenceClassification", "FNetForMultipleChoice", "FNetForTokenClassification", "FNetForQuestionAnswering")
TASK_CLASSES = (SEQUENCE_CLASSIFICATION, MULTIPLE_CHOICE, TOKEN_CLASSIFICATION)  # those whose head this project has
ARCHITECTURES = (BASE_MODEL, PRETRAINING) + TASK_CLASSES  # what write_hf_fnet writes
TASK_PREFIX = "fnet."
# The head kind (layers/heads.py) each task class holds, and the scope its head is read into when the directory
# does not name one (the classification scope is the config's `finetuning_task`, as for the Funnel).
_HEAD_KIND = {SEQUENCE_CLASSIFICATION: "classification", MULTIPLE_CHOICE: "multiple_choice",
              TOKEN_CLASSIFICATION: "token_classification"}
_DEFAULT_SCOPE = {SEQUENCE_CLASSIFICATION: "cls", MULTIPLE_CHOICE: "race", TOKEN_CLASSIFICATION: "tagger"}
_FOREIGN_HEADS = {
    "qa_outputs.": "transformers' span head (one Linear for start and end logits) is not the original SQuAD head "
                   "this project builds (end logits conditioned on the start, answer class); a SQuAD task starts its "
                   "head at init",
}
POOLER = ("encoder/pooler/kernel", "encoder/pooler/bias")

Transform = Callable[[np.ndarray], np.ndarray]
_TRANSFORMS: dict[str, tuple[Transform, Transform]] = {  # kind -> (HF -> ours, ours -> HF)
    "same": (lambda a: a, lambda a: a),
    "transpose": (lambda a: a.T, lambda a: a.T),        # torch Linear weight [out, in] <-> Flax kernel [in, out]
    "batch_axis": (lambda a: a[None], lambda a: a[0]),  # position table [L, E] <-> the original's [1, L, E]
}


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str   # original parameter path
    kind: str   # a key of _TRANSFORMS


def _norm(prefix: str, name: str) -> dict[str, Rule]:
    return {f"{prefix}.weight": Rule(f"{name}/scale", "same"), f"{prefix}.bias": Rule(f"{name}/bias", "same")}


def _dense(prefix: str, name: str) -> dict[str, Rule]:
    return {f"{prefix}.weight": Rule(f"{name}/kernel", "transpose"), f"{prefix}.bias": Rule(f"{name}/bias", "same")}


def backbone_rules(n_layer: int) -> dict[str, Rule]:
    """Every key of a transformers FNetModel -> rule."""
    rules = {
        "embeddings.word_embeddings.weight": Rule("encoder/embedder/word/embedding", "same"),
        "embeddings.position_embeddings.weight": Rule("encoder/embedder/position/embedding", "batch_axis"),
        "embeddings.token_type_embeddings.weight": Rule("encoder/embedder/type/embedding", "same"),
        **_norm("embeddings.LayerNorm", "encoder/embedder/layer_norm"),
        **_dense("embeddings.projection", "encoder/embedder/hidden_mapping_in"),
        **_dense("pooler.dense", "encoder/pooler"),
    }
    for i in range(n_layer):
        layer = f"encoder.layer.{i}"
        rules.update(_norm(f"{layer}.fourier.output.LayerNorm", f"encoder/encoder_{i}/mixing_layer_norm"))
        rules.update(_dense(f"{layer}.intermediate.dense", f"encoder/feed_forward_{i}/intermediate"))
        rules.update(_dense(f"{layer}.output.dense", f"encoder/feed_forward_{i}/output"))
        rules.update(_norm(f"{layer}.output.LayerNorm", f"encoder/encoder_{i}/output_layer_norm"))
    return rules


def pretraining_head_rules() -> dict[str, Rule]:
    """The MLM and NSP keys of FNetForPreTraining (`cls.*`); the decoder weight is the tied word table."""
    return {
        **_dense("cls.predictions.transform.dense", "predictions_dense"),
        **_norm("cls.predictions.transform.LayerNorm", "predictions_layer_norm"),
        "cls.predictions.bias": Rule("predictions_output/output_bias", "same"),
        # Both Linear weight and the original's output_kernel are [n_out, D]: no transpose.
        "cls.seq_relationship.weight": Rule("classification/output_kernel", "same"),
        "cls.seq_relationship.bias": Rule("classification/output_bias", "same"),
    }


def task_head_rules(architecture: str, scope: str) -> dict[str, Rule]:
    """The `classifier` Linear of a transformers task class -> our head's dense: `<scope>/logit` (sequence and
    token classification), `<scope>/logits` (multiple choice, one output per choice). Empty for other classes."""
    if architecture not in TASK_CLASSES:
        return {}
    return _dense("classifier", f"{scope}/{'logits' if architecture == MULTIPLE_CHOICE else 'logit'}")


def _head_scope(architecture: str, raw: dict) -> str:
    task = raw.get("finetuning_task") if architecture == SEQUENCE_CLASSIFICATION else None
    return str(task).lower() if task else _DEFAULT_SCOPE.get(architecture, "cls")


# Keys transformers may hold that are copies of other keys (tied) or buffers, checked and not loaded.
_TIED = {"cls.predictions.decoder.weight": "embeddings.word_embeddings.weight",
         "cls.predictions.decoder.bias": "cls.predictions.bias"}
_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
_DFT_BUFFERS = ("fourier.self.dft_mat_hidden", "fourier.self.dft_mat_seq")
# transformers builds DFT matrices only up to this max_position_embeddings; above it, its TPU path is an FFT.
HF_DFT_MAX_POSITIONS = 4096


def dft_buffers(config: FNetConfig) -> dict[str, np.ndarray]:
    """The complex64 DFT matrices transformers keeps as persistent buffers of each layer when
    `use_tpu_fourier_optimizations` is set; a directory without them loads with NaN matrices, so they are written.
    The sequence matrix has `tpu_short_seq_length` (= max_seq_length on export) rows.
    """
    if config.use_fft or config.max_seq_length > HF_DFT_MAX_POSITIONS:
        return {}
    matrices = {}
    for suffix, n in zip(_DFT_BUFFERS, (config.d_model, config.max_seq_length)):
        cos, sin = dft_matrices(n)
        matrices[suffix] = (cos - 1j * sin).astype(np.complex64)
    return {f"encoder.layer.{i}.{suffix}": matrix for i in range(config.n_layer) for suffix, matrix in matrices.items()}


@dataclasses.dataclass
class HFFNetContents:
    config: FNetConfig
    state: dict[str, np.ndarray]   # original parameter path -> array
    skipped: dict[str, str]        # HF key -> why it was not loaded
    architecture: str              # the transformers class the directory holds


def _read_config(directory: str) -> tuple[FNetConfig, dict]:
    path = os.path.join(directory, HF_CONFIG)
    try:
        with open(path) as handle:
            raw = json.load(handle)
        return FNetConfig.from_hf_dict(raw, path), raw
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: cannot read ({error})") from None
    except ConfigError as error:
        raise CheckpointError(str(error)) from None


def _check_tied(directory: str, key: str, array: np.ndarray, state_hf: dict[str, np.ndarray]) -> str:
    source = _TIED[key]
    if source in state_hf and not np.array_equal(array, state_hf[source]):
        raise CheckpointError(f"{directory}: {key} differs from {source}; FNet ties them (untied output "
                              f"embeddings are not supported)")
    return f"tied to {source}"


def read_hf_fnet(directory: str) -> HFFNetContents:
    """Reads a transformers FNet directory into original names; FNetForPreTraining's heads included."""
    config, raw = _read_config(directory)
    tensors = read_hf_tensors(directory)  # model.safetensors, else pytorch_model.bin (with PyTorch)
    task_model = any(key.startswith(TASK_PREFIX) for key in tensors)
    state_hf = {(k[len(TASK_PREFIX):] if k.startswith(TASK_PREFIX) else k): v for k, v in tensors.items()}
    architecture = _detect_architecture(raw, state_hf, task_model)
    rules = {**backbone_rules(config.n_layer), **pretraining_head_rules(),
             **task_head_rules(architecture, _head_scope(architecture, raw))}
    state, skipped = {}, {}
    for key, array in state_hf.items():
        if key in _TIED:
            skipped[key] = _check_tied(directory, key, array, state_hf)
        elif key in _BUFFERS:
            skipped[key] = "a buffer (positions / default type ids), not a weight"
        elif key.endswith(_DFT_BUFFERS):
            skipped[key] = "transformers' precomputed DFT matrix (a buffer); built from the input length here"
        elif key not in rules:
            skipped[key] = next((why for prefix, why in _FOREIGN_HEADS.items() if key.startswith(prefix)),
                                f"a weight of {architecture}'s head, which funnel_tfm's FNet does not build")
        else:
            rule = rules[key]
            state[rule.name] = _TRANSFORMS[rule.kind][0](array)
    _check_backbone(directory, config, state, skipped)
    return HFFNetContents(config=config, state=state, skipped=skipped, architecture=architecture)


_LAYER_KEY = re.compile(r"^encoder\.layer\.(\d+)\.")


def _check_backbone(directory: str, config: FNetConfig, state: dict[str, np.ndarray], skipped: dict[str, str]) -> None:
    """Raises CheckpointError when config.json does not describe the weights: a backbone weight is missing (it
    would silently stay at its random init) or the file holds layers beyond `num_hidden_layers`. The pooler may
    be absent (transformers' FNetModel(add_pooling_layer=False))."""
    missing = sorted(key for key, rule in backbone_rules(config.n_layer).items()
                     if rule.name not in state and rule.name not in POOLER)
    extra = sorted({int(m.group(1)) for m in map(_LAYER_KEY.match, skipped) if m and int(m.group(1)) >= config.n_layer})
    check_backbone_fit(directory, HF_CONFIG, missing, extra, f"config.json's num_hidden_layers ({config.n_layer})")


def check_backbone_fit(source: str, config_file: str, missing: list[str], extra_layers: list[int],
                       layer_count: str) -> None:
    """One CheckpointError for backbone weights the file lacks and layers it holds beyond `layer_count` (its
    wording, e.g. "n_layer (2)"); nothing when both are empty. Shared by both FNet directory formats."""
    problems = []
    if missing:
        problems.append(f"{len(missing)} backbone weight(s) missing: {', '.join(missing[:8])}"
                        f"{' ...' if len(missing) > 8 else ''}")
    if extra_layers:
        problems.append(f"weights of encoder layer(s) {extra_layers}, which {layer_count} does not build")
    if problems:
        raise CheckpointError(f"{source}: the weights do not fit {config_file}: {'; '.join(problems)}")


def _detect_architecture(raw: dict, state_hf: dict[str, np.ndarray], task_model: bool) -> str:
    """The class `architectures` declares (transformers' save_pretrained writes it), else the one the keys show;
    a bare `classifier` is read as sequence classification, the commonest."""
    declared = [a for a in raw.get("architectures") or [] if a.startswith("FNet")]
    if declared:
        return declared[0]
    if "cls.predictions.bias" in state_hf:
        return PRETRAINING
    if "qa_outputs.weight" in state_hf:
        return QUESTION_ANSWERING
    if "classifier.weight" in state_hf:
        return SEQUENCE_CLASSIFICATION
    return BASE_MODEL if not task_model else "an FNet task class"


def choose_architecture(heads: list[tuple[str, str, int]], state: dict[str, np.ndarray]) -> tuple[str, str | None]:
    """(transformers class, head scope) for a model with these heads ((kind, scope, n_class), as
    `FunnelCheckpoint.head_specs` lists them) and weights: the task class of its sequence classification, multiple
    choice or token classification head (in that order), else FNetForPreTraining when `state` holds the MLM and
    NSP heads, else FNetModel (a SQuAD head has no transformers class: it is not written)."""
    for architecture, kind in _HEAD_KIND.items():
        scope = next((s for k, s, _ in heads if k == kind), None)
        if scope is not None:
            return architecture, scope
    if all(rule.name in state for rule in pretraining_head_rules().values()):
        return PRETRAINING, None
    return BASE_MODEL, None


def _config_values(config: FNetConfig, architecture: str, scope: str | None, state: dict[str, np.ndarray]) -> dict:
    values = {**config.to_hf_dict(), "architectures": [architecture],
              # An explicit dtype: without one, transformers infers it by reading the file's dtypes, and fails on
              # the complex64 DFT buffers ("unknown dtype C64").
              "dtype": "float32"}
    if architecture in (SEQUENCE_CLASSIFICATION, TOKEN_CLASSIFICATION):
        n_class = int(np.shape(state[f"{scope}/logit/kernel"])[-1])
        values.update(label_fields(n_class, scope if architecture == SEQUENCE_CLASSIFICATION else None))
    return values


def write_hf_fnet(directory: str, config: FNetConfig, state: dict[str, np.ndarray], architecture: str,
                  scope: str | None = None) -> tuple[dict[str, str], list[str]]:
    """Writes config.json + model.safetensors (the keys transformers saves) into an existing directory.

        skipped, zeroed = write_hf_fnet("staging", config, state, SEQUENCE_CLASSIFICATION, scope="cola")

    `scope`: where the task head's weights are in `state` (default: cls, race, tagger). Returns ({name in
    `state`: why it was not written}, [names written as zeros]): every transformers class holds the pooler, which
    a tagger never trains (its head reads the tokens), so an absent pooler is written as zeros. Raises
    CheckpointError when the config cannot be expressed in transformers or a weight is missing.
    """
    from safetensors.numpy import save_file
    if architecture not in ARCHITECTURES:
        raise CheckpointError(f"cannot write {architecture!r}; expected one of {', '.join(ARCHITECTURES)}")
    scope = scope or _DEFAULT_SCOPE.get(architecture)
    state = dict(state)
    zeroed = [name for name in POOLER if name not in state]
    for name in zeroed:
        state[name] = np.zeros((config.d_model,) * (2 if name.endswith("kernel") else 1), np.float32)
    rules = backbone_rules(config.n_layer)
    prefix = TASK_PREFIX if architecture != BASE_MODEL else ""
    rules = {prefix + key: rule for key, rule in rules.items()}
    rules.update(pretraining_head_rules() if architecture == PRETRAINING else task_head_rules(architecture, scope))
    absent = sorted(rule.name for rule in rules.values() if rule.name not in state)
    if absent:
        raise CheckpointError(f"cannot write {architecture}: missing {len(absent)} weight(s): {', '.join(absent[:8])}"
                              f"{' ...' if len(absent) > 8 else ''}")
    try:
        values = _config_values(config, architecture, scope, state)
    except ConfigError as error:
        raise CheckpointError(str(error)) from None
    tensors = {key: np.ascontiguousarray(_TRANSFORMS[rule.kind][1](np.asarray(state[rule.name], np.float32)))
               for key, rule in rules.items()}
    tensors.update({prefix + key: matrix for key, matrix in dft_buffers(config).items()})
    with open(os.path.join(directory, HF_CONFIG), "w") as handle:
        json.dump(values, handle, indent=2, sort_keys=True)
    save_file(tensors, os.path.join(directory, HF_WEIGHTS), metadata={"format": "pt"})
    written = {rule.name for rule in rules.values()}
    return {name: f"{architecture} has no place for it" for name in state if name not in written}, zeroed
