"""Loading and saving Funnel-Transformer weights in every format, through the original variable names.

Every format is read into one dict `full original name -> array` (`model/encoder/layer_3/rel_attn/q/kernel`,
`generator/lm_proj/dense/kernel`, ...), and a `FunnelCheckpoint` is built from it: the backbone, whatever heads
the names show, the ELECTRA generator of a FULL checkpoint, and the optimizer state. Writing goes the other way.

    ckpt = load_checkpoint("B6-6-6H768-ELEC-FULL-TF")   # original: net_config.json + model.ckpt*
    ckpt.model, ckpt.heads["binary"], ckpt.generator, ckpt.generator_head, ckpt.optimizer_state
    print(ckpt.report.summary())                         # loaded / skipped (with why) / left at init
    export(ckpt, "out/hf", to="hf")                      # config.json + model.safetensors, transformers loads it
    export(ckpt, "out/original", to="original")          # net_config.json + model.ckpt*, optimizer state kept
    export(ckpt, "out/keras", to="keras")                # funnel_config.json + model.safetensors (this project)
    FunnelTFM.from_pretrained("out/keras")               # any of the four formats: the backbone only
    export(fnet_task_view, "out/hf", to="hf")            # an FNet view: FNetForSequenceClassification, ... (N11)

Formats: the original TF1 checkpoint (and the original PyTorch `model.pt` with `net_config.pytorch.json`),
Hugging Face (`config.json` + `model.safetensors` or `pytorch_model.bin`), and ours ("keras"). Outputs are
written into a staging directory that is renamed into place only when complete.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

import numpy as np

from funnel_tfm import file_io
from funnel_tfm.checkpoints import fnet_format, hf_fnet, hf_format, original_format
from funnel_tfm.checkpoints.assign import assign_by_name
from funnel_tfm.config import ConfigError, ModelConfig
from funnel_tfm.config_fnet import FNetConfig
from funnel_tfm.errors import CheckpointError
from funnel_tfm.layers import head_factories
from funnel_tfm.layers.heads import TokenClassificationHead

__all__ = ["CheckpointError", "FunnelCheckpoint", "LoadReport", "build_checkpoint", "export", "load_checkpoint",
           "matched_head_state", "save_pretrained"]

OUR_CONFIG = "funnel_config.json"
OUR_WEIGHTS = "model.safetensors"
FORMATS = ("hf", "original", "keras")

MODEL, GENERATOR = "model/", "generator/"
_BACKBONE_SCOPES = ("input/", "encoder/", "decoder/", "sequnece_summary/")
_OPTIONAL_BACKBONE = ("sequnece_summary/",)  # pretraining checkpoints have no pooled summary
_LAYER_NAME = re.compile(r"^(encoder|decoder)/layer_(\d+)/")
_QUERY_KERNEL = re.compile(r"^(encoder|decoder)/layer_\d+/rel_attn/q/kernel$")
_MIXER_SCOPE = re.compile(r"^(encoder|decoder)/layer_(\d+)/(rel_attn|fourier)/")


@dataclasses.dataclass
class LoadReport:
    """What a load did: loaded names, skipped source names (with why), model weights left at their init."""

    loaded: list[str] = dataclasses.field(default_factory=list)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    missing: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        return (f"loaded {len(self.loaded)} tensors, skipped {len(self.skipped)}, "
                f"left {len(self.missing)} at init")

    def details(self) -> list[str]:
        lines = [f"skipped {name}: {why}" for name, why in sorted(self.skipped.items())]
        lines += [f"left at init: {name}" for name in self.missing]
        return lines


@dataclasses.dataclass
class FunnelCheckpoint:
    """A backbone with its heads, generator and optimizer state, as read from (or written to) a checkpoint."""

    model: Any                                   # FunnelTFM
    heads: dict[str, Any] = dataclasses.field(default_factory=dict)   # scope -> head layer
    generator: Any = None                        # FunnelTFM sharing model.embedding, or None
    generator_head: Any = None                   # LMHead of the generator, or None
    optimizer_state: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    report: LoadReport = dataclasses.field(default_factory=LoadReport)
    source_format: str = "keras"

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def named_variables(self) -> dict[str, Any]:
        """Full original name -> Keras variable, for every part."""
        names = {MODEL + k: v for k, v in self.model.weight_names().items()}
        for head in self.heads.values():
            names.update({MODEL + k: v for k, v in head.weight_names().items()})
        if self.generator is not None:
            names.update({GENERATOR + k: v for k, v in self.generator.weight_names().items()
                          if not k.startswith("sequnece_summary/")})  # the generator is never summarised
        if self.generator_head is not None:
            names.update({GENERATOR + k: v for k, v in self.generator_head.weight_names().items()})
        return names

    def state(self) -> dict[str, np.ndarray]:
        """Full original name -> float32 array, for every weight that was loaded or trained (not left at init)."""
        untouched = set(self.report.missing)
        return {name: np.asarray(variable.numpy(), np.float32) for name, variable in self.named_variables().items()
                if name not in untouched}

    def head_specs(self) -> list[tuple[str, str, int]]:
        return [(head.kind, scope, getattr(head, "n_class", 1)) for scope, head in self.heads.items()]


# Heads with one dense under `<scope>/`, matched across scopes; SQuAD's keeps its own names and partial loads.
_TASK_HEAD_KINDS = ("classification", "multiple_choice", "token_classification")


def _head_label(head: Any) -> str:
    n_class = getattr(head, "n_class", None)
    return f" ({n_class} {'class' if n_class == 1 else 'classes'})" if n_class is not None else ""


def matched_head_state(init: FunnelCheckpoint, view: FunnelCheckpoint) -> tuple[dict[str, np.ndarray], list[str]]:
    """`init.state()` with each task head of `view` matched to a head of its kind in `init`, and one note per head.

        state, notes = matched_head_state(init_checkpoint, task.checkpoint_view())

    The match is the checkpoint's head under the same scope, as the original's `<task>/logit` scopes do (a CoLA run
    does not inherit an SST-2 head). Only a transformers checkpoint, whose task class holds one head under a scope
    read from its `finetuning_task` (or a default), also gives its only head of that kind to another scope. A head whose
    shapes do not fit (another label count) is left out, so the task's head stays at init and the note says why,
    instead of the load failing. Heads the checkpoint's reader could not map (a transformers span head) are named.
    """
    state, notes = init.state(), []
    for scope, head in view.heads.items():
        if getattr(head, "kind", None) not in _TASK_HEAD_KINDS:
            continue
        same_kind = {s: h for s, h in init.heads.items() if getattr(h, "kind", None) == head.kind}
        only_one = next(iter(same_kind)) if len(same_kind) == 1 and init.source_format == "hf" else None
        source = scope if scope in same_kind else only_one
        if source is None:
            held = (f"its {head.kind} heads are another task's: {', '.join(sorted(same_kind))}" if same_kind
                    else f"the checkpoint has no {head.kind} head")
            notes.append(f"the {head.kind} head '{scope}' starts at init ({held})")
            continue
        values = {MODEL + scope + name[len(source):]: state.pop(MODEL + name)  # `<source>/...` -> `<scope>/...`
                  for name in same_kind[source].weight_names() if MODEL + name in state}
        targets = {MODEL + name: variable for name, variable in head.weight_names().items()}
        what = f"the checkpoint's {head.kind} head '{source}'{_head_label(same_kind[source])}"
        if set(values) == set(targets) and all(np.shape(values[n]) == tuple(targets[n].shape) for n in targets):
            state.update(values)
            notes.append(f"brought {what}" + (f" as '{scope}'" if source != scope else ""))
        else:
            notes.append(f"the {head.kind} head '{scope}'{_head_label(head)} starts at init: {what} does not fit")
    foreign = sorted(name for name, why in init.report.skipped.items() if why.startswith("transformers' span head"))
    if foreign:
        notes.append(f"not read: {', '.join(foreign)} ({init.report.skipped[foreign[0]]})")
    return state, notes


# ------------------------------------------------------------------------------------------- building
def _strip(state: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {name[len(prefix):]: value for name, value in state.items() if name.startswith(prefix)}


def detect_heads(config: Any, names: dict[str, np.ndarray], model) -> tuple[dict[str, Any], list[str]]:
    """Heads whose scopes appear among `model/` names (without the prefix); returns (heads, unclaimed names).
    `config`: a ModelConfig, or an FNetConfig for the task heads of an FNet checkpoint (`tasks/backbones.py`)."""
    heads: dict[str, Any] = {}
    policy = model.dtype_policy
    scopes = {name.split("/", 1)[0] for name in names if not name.startswith(_BACKBONE_SCOPES)}
    if scopes & {"lm_proj", "lm_loss"}:
        heads["lm"] = head_factories.lm_head(config, model.embedding, name="lm", dtype=policy)  # tied table
    if scopes & {"binary_proj", "binary_loss"}:
        heads["binary"] = head_factories.discriminator_head(config, name="binary", dtype=policy)
    if scopes & {"start_logits", "end_logits", "answer_class"}:
        heads["squad"] = head_factories.squad_head(config, conditional_end="end_logits/dense_0/kernel" in names,
                                                   use_answer_class="answer_class/dense_0/kernel" in names,
                                                   dtype=policy)
    if "race" in scopes and "race/logits/kernel" in names:
        heads["race"] = head_factories.multiple_choice_head(config, dtype=policy)
    tagger = TokenClassificationHead.SCOPE
    tagger_kernel = names.get(f"{tagger}/logit/kernel")
    if tagger in scopes and tagger_kernel is not None and tagger_kernel.ndim == 2:  # reserved: tokens, not sequences
        heads[tagger] = head_factories.token_classification_head(config, n_class=tagger_kernel.shape[1], dtype=policy)
    for scope in sorted(scopes):
        kernel = names.get(f"{scope}/logit/kernel")
        if kernel is not None and kernel.ndim == 2 and scope not in heads:
            heads[scope] = head_factories.classification_head(config, n_class=kernel.shape[1], scope=scope,
                                                              dtype=policy)
    claimed = set().union(*(head.scope_names() for head in heads.values()))
    unclaimed = sorted(n for n in names if not n.startswith(_BACKBONE_SCOPES) and n.split("/", 1)[0] not in claimed)
    return heads, unclaimed


def _generator_config(config: ModelConfig, names: dict[str, np.ndarray], source: str) -> ModelConfig:
    """The generator's width from its own weights (d_model, n_head, d_inner), the rest from the config.

    n_head comes from the first attention layer's query kernel (a Fourier layer has none, fnet semantics N8); a
    generator without attention layers keeps the discriminator's head width, d_head.
    """
    ff = names.get("encoder/layer_0/ff/layer_1/kernel")
    queries = sorted((n for n in names if _QUERY_KERNEL.match(n)), key=_layer_order)
    q = names[queries[0]] if queries else None
    if ff is None or ff.ndim != 2 or (q is not None and q.ndim != 3) or (q is None and not config.has_fourier):
        raise CheckpointError(f"{source}: the generator/ weights lack generator/encoder/layer_0/rel_attn/q/kernel or "
                              f"ff/layer_1/kernel with the expected rank, so its width cannot be read")
    d_model = int(ff.shape[0])
    n_head = int(q.shape[1]) if q is not None else max(1, d_model // config.d_head)
    return config.replace(d_model=d_model, n_head=n_head, d_inner=int(ff.shape[1]))


def _mixer_mismatches(names: dict[str, np.ndarray], config: ModelConfig, with_decoder: bool) -> list[str]:
    """Layers whose weights in the checkpoint belong to the other token mixer than the config gives them
    (attention weights `rel_attn/*` for a Fourier layer, `fourier/*` for an attention layer; fnet semantics N8)."""
    mixers = dict(enumerate(config.param_layer_mixers()))
    if with_decoder:
        mixers.update({config.n_encoder_param_layers + j: "attention" for j in range(config.decoder_param_size)})
    found: dict[int, str] = {}
    for name in names:
        match = _MIXER_SCOPE.match(name)
        if match:
            found[int(match.group(2))] = "attention" if match.group(3) == "rel_attn" else "fourier"
    return [f"layer_{k} is {kind} in the checkpoint ({'rel_attn' if kind == 'attention' else 'fourier'}/* weights) "
            f"but {mixers[k]} in the config" for k, kind in sorted(found.items()) if k in mixers and mixers[k] != kind]


def _unexpected_layers(names: dict[str, np.ndarray], targets: dict[str, Any], with_decoder: bool) -> list[str]:
    """Backbone-scope names that the config does not build (more layers, or layers of another kind)."""
    extra = []
    for name in names:
        if not name.startswith(_BACKBONE_SCOPES) or name in targets:
            continue
        if name.startswith("decoder/") and not with_decoder:
            continue
        extra.append(name)
    return sorted(extra)


def _listing(names: list[str], limit: int = 12) -> str:
    """Names for an error line; 8 or more weights of one layer are folded into `.../layer_k/* (n weights)`."""
    groups: dict[str, list[str]] = {}
    for name in sorted(names):
        match = re.match(r"^(.*?/(?:encoder|decoder)/layer_\d+/)", name)
        groups.setdefault(match.group(1) if match else name, []).append(name)
    items = []
    for key, members in sorted(groups.items(), key=lambda kv: _layer_order(kv[0])):
        items += [f"{key}* ({len(members)} weights)"] if len(members) >= 8 else members  # a (nearly) whole layer
    return ", ".join(items[:limit]) + (f" ... ({len(items) - limit} more)" if len(items) > limit else "")


def _layer_order(name: str) -> tuple:
    match = re.search(r"layer_(\d+)/", name)
    return (int(match.group(1)) if match else -1, name)


def build_checkpoint(config: ModelConfig, state: dict[str, np.ndarray], source: str, backbone_cls: type,
                     use_decoder: bool | None = None, optimizer_state: dict[str, np.ndarray] | None = None,
                     report: LoadReport | None = None, source_format: str = "keras",
                     dtype: Any = None) -> FunnelCheckpoint:
    """Builds every part the full original names in `state` describe and assigns them, checking shapes.

    Errors (CheckpointError) name the variable and both shapes for a config that does not fit the weights,
    list missing weights, and list backbone weights the config does not build. `backbone_cls` is the backbone
    class (`FunnelTFM`): passed in, because the checkpoint layer sits below the model that loads through it.
    """
    report = report or LoadReport()
    optimizer_state = dict(optimizer_state or {})
    for name in optimizer_state:
        report.skipped[name] = "optimizer state: kept in FunnelCheckpoint.optimizer_state, written back to original"
    core = _strip(state, MODEL)
    generator_names = _strip(state, GENERATOR)
    for name in state:
        if not name.startswith((MODEL, GENERATOR)):
            report.skipped[name] = "outside the model/ and generator/ scopes"
    with_decoder = any(n.startswith("decoder/") for n in core) if use_decoder is None else use_decoder
    mismatches = _mixer_mismatches(core, config, with_decoder)
    if mismatches:
        raise CheckpointError(f"{source}: the checkpoint's token mixers do not match the config's block_mixers "
                              f"{config.block_mixers!r} (block_size {config.block_size!r}): {'; '.join(mismatches)}. "
                              f"Load it with the config it was saved with (its funnel_config.json)")
    model = backbone_cls(config, use_decoder=with_decoder, dtype=dtype)
    targets = model.weight_names()
    unexpected = [MODEL + name for name in _unexpected_layers(core, targets, with_decoder)]
    for name in core:
        if name.startswith("decoder/") and not with_decoder:
            report.skipped[MODEL + name] = "decoder weight, and the model was built without the decoder"

    heads, unclaimed = detect_heads(config, core, model)
    for name in unclaimed:
        report.skipped[MODEL + name] = "no head in this project uses this scope"
    result = FunnelCheckpoint(model=model, heads=heads, optimizer_state=optimizer_state, report=report,
                              source_format=source_format)
    if generator_names:
        gen_config = _generator_config(config, generator_names, source)
        result.generator = backbone_cls(gen_config, use_decoder=any(n.startswith("decoder/") for n in generator_names),
                                     shared_embedding=model.embedding, name="generator", dtype=dtype)
        if any(n.startswith(("lm_proj/", "lm_loss/")) for n in generator_names):
            result.generator_head = head_factories.lm_head(gen_config, model.embedding, name="generator_lm",
                                                           dtype=model.dtype_policy)

    targets = result.named_variables()
    report.loaded += assign_by_name(targets, state, source, where="the model built from the config").assigned
    loaded = set(report.loaded)
    required = [n for n in targets if n not in loaded
                and not (n.startswith(MODEL) and n[len(MODEL):].startswith(_OPTIONAL_BACKBONE))]
    problems = []
    if unexpected:
        problems.append(f"{len(unexpected)} weight(s) that the config does not build (block_size "
                        f"{config.block_size!r}, decoder_size {config.decoder_size!r}, rel_attn_type "
                        f"{config.rel_attn_type!r}, block_mixers {config.block_mixers!r}): {_listing(unexpected)}")
    if required:
        problems.append(f"{len(required)} required weight(s) missing from the checkpoint: {_listing(sorted(required))}")
    if problems:
        raise CheckpointError(f"{source}: " + "; ".join(problems))
    extra_generator = sorted(GENERATOR + n for n in generator_names if GENERATOR + n not in targets)
    for name in extra_generator:
        report.skipped[name] = "generator weight the generator config does not build"
    report.missing = sorted(n for n in targets if n not in loaded)
    model.load_report = report
    return result


# ------------------------------------------------------------------------------------------- reading
def detect_format(path: str) -> str:
    """"keras" (ours), "hf", "original" or "original_pytorch"; raises CheckpointError naming what was looked for."""
    if not os.path.isdir(path):
        if original_format.find_tf_checkpoint(path):
            return "original"
        raise CheckpointError(f"{path}: no such directory")
    if os.path.exists(os.path.join(path, OUR_CONFIG)):
        return "keras"
    if os.path.exists(os.path.join(path, hf_format.HF_CONFIG)):
        return "hf"
    if original_format.find_config(path):
        if os.path.exists(os.path.join(path, original_format.PYTORCH_WEIGHTS)) and not \
                original_format.find_tf_checkpoint(path):
            return "original_pytorch"
        return "original"
    raise CheckpointError(f"{path}: not a checkpoint directory: found none of {OUR_CONFIG} (funnel_tfm), "
                          f"{hf_format.HF_CONFIG} (Hugging Face), {' / '.join(original_format.CONFIG_NAMES)} "
                          f"(original release)")


def _load_config(path: str) -> ModelConfig:
    try:
        return ModelConfig.from_json(path)
    except ConfigError as error:
        raise CheckpointError(str(error)) from None


def _read_ours(directory: str) -> tuple[ModelConfig, dict[str, np.ndarray], dict[str, str]]:
    config = _load_config(os.path.join(directory, OUR_CONFIG))
    path = os.path.join(directory, OUR_WEIGHTS)
    if not os.path.exists(path):
        raise CheckpointError(f"{directory}: no {OUR_WEIGHTS} next to {OUR_CONFIG}")
    state, metadata = hf_format.read_safetensors(path)
    return config, state, metadata


def load_checkpoint(path: str, backbone_cls: type, use_decoder: bool | None = None,
                    dtype: Any = None) -> FunnelCheckpoint:
    """Reads any supported format (see the module docstring); `use_decoder=False` drops a decoder.

    Called through the backbone: `FunnelTFM.load_checkpoint(path)` (or `funnel_tfm.load_checkpoint`).
    """
    kind = detect_format(path)
    report = LoadReport()
    optimizer_state: dict[str, np.ndarray] = {}
    if kind == "keras":
        config, state, metadata = _read_ours(path)
        if use_decoder is None and "use_decoder" in metadata:
            use_decoder = metadata["use_decoder"] == "True"
    elif kind == "hf":
        contents = hf_format.read_hf(path)
        config, state = contents.config, contents.state
        report.skipped.update(contents.skipped)
    elif kind == "original_pytorch":
        config = _load_config(original_format.find_config(path))
        state, skipped = original_format.read_pytorch_checkpoint(os.path.join(path, original_format.PYTORCH_WEIGHTS))
        report.skipped.update(skipped)
    else:
        directory = path if os.path.isdir(path) else os.path.dirname(path)
        config_path = original_format.find_config(directory)
        if config_path is None:
            raise CheckpointError(f"{directory}: no {' or '.join(original_format.CONFIG_NAMES)} next to the checkpoint")
        config = _load_config(config_path)
        prefix = original_format.find_tf_checkpoint(path)
        if prefix is None:
            raise CheckpointError(f"{path}: {os.path.basename(config_path)} but no TF checkpoint (model.ckpt*.index) "
                                  f"or {original_format.PYTORCH_WEIGHTS}")
        contents = original_format.read_tf_checkpoint(prefix)
        state, optimizer_state = contents.state, contents.optimizer_state
    return build_checkpoint(config, state, path, backbone_cls, use_decoder=use_decoder, optimizer_state=optimizer_state,
                            report=report, source_format=kind, dtype=dtype)


# ------------------------------------------------------------------------------------------- writing
@dataclasses.dataclass
class ExportReport:
    path: str
    format: str
    written: int
    skipped: dict[str, str]
    detail: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)


def _write_keras(directory: str, ckpt: FunnelCheckpoint, state: dict[str, np.ndarray]) -> dict[str, str]:
    from safetensors.numpy import save_file
    ckpt.config.to_json(os.path.join(directory, OUR_CONFIG))
    arrays = {name: np.ascontiguousarray(value) for name, value in state.items()}
    save_file(arrays, os.path.join(directory, OUR_WEIGHTS),
              metadata={"format": "funnel_tfm", "use_decoder": str(ckpt.model.use_decoder)})
    return {name: "optimizer state is not part of this format" for name in ckpt.optimizer_state}


def _write_original(directory: str, ckpt: FunnelCheckpoint, state: dict[str, np.ndarray]) -> dict[str, str]:
    ckpt.config.to_json(os.path.join(directory, original_format.CONFIG_NAMES[0]), original=True)
    original_format.write_tf_checkpoint(directory, state, ckpt.optimizer_state)
    return {}


def export(ckpt: FunnelCheckpoint, directory: str, to: str, overwrite: bool = False) -> ExportReport:
    """Writes `ckpt` as `to` ("hf", "original" or "keras") into a new directory, atomically.

    Only weights that were loaded or trained are written (weights left at their random init are not).
    """
    if to not in FORMATS:
        raise CheckpointError(f"unknown output format {to!r}; expected one of {', '.join(FORMATS)}")
    if isinstance(ckpt.config, FNetConfig):
        return _export_fnet(ckpt, directory, to, overwrite)
    if to != "keras" and ckpt.config.has_fourier:
        raise CheckpointError(f"{directory}: block_mixers {ckpt.config.block_mixers!r} has Fourier blocks, which the "
                              f"{to!r} format cannot express (every layer of the original and of transformers' Funnel "
                              f"attends); write to='keras' (funnel_config.json + model.safetensors)")
    state = ckpt.state()
    try:
        with file_io.atomic_directory(directory, overwrite=overwrite) as staging:
            detail = ""
            if to == "hf":
                architecture, skipped = hf_format.write_hf(staging, ckpt.config, state, ckpt.head_specs(),
                                                           ckpt.model.use_decoder)
                skipped.update({name: "transformers has no optimizer state in a model directory"
                                for name in ckpt.optimizer_state})
                detail = f"transformers class {architecture}"
            elif to == "original":
                skipped = _write_original(staging, ckpt, state)
            else:
                skipped = _write_keras(staging, ckpt, state)
    except file_io.OutputExistsError as error:
        raise CheckpointError(str(error)) from None
    written = len(state) - len([n for n in skipped if n in state])
    return ExportReport(path=directory, format=to, written=written, skipped=skipped, detail=detail)


def _export_fnet(ckpt: FunnelCheckpoint, directory: str, to: str, overwrite: bool) -> ExportReport:
    """An FNet view (`model/encoder/...` and its heads) as transformers' class for its head (`hf_fnet`: task
    classes, FNetForPreTraining, FNetModel) or ours (`fnet_format`, any FNet config)."""
    if to == "original":
        raise CheckpointError(f"{directory}: the original Funnel format cannot hold FNet (its layers mix by Fourier "
                              f"transform); write to='hf' (transformers' FNet classes) or to='keras' (fnet_config.json "
                              f"+ model.safetensors)")
    state = _strip(ckpt.state(), MODEL)
    architecture, scope = hf_fnet.choose_architecture(ckpt.head_specs(), state)
    skipped, notes = {}, []
    try:
        with file_io.atomic_directory(directory, overwrite=overwrite) as staging:
            if to == "hf":
                skipped, zeroed = hf_fnet.write_hf_fnet(staging, ckpt.config, state, architecture, scope)
                if zeroed:
                    notes.append(f"{', '.join(zeroed)} written as zeros: {architecture} holds a pooler, which this "
                                 f"model never trained (its head reads every token, not the pooled output)")
            else:
                fnet_format.write_fnet(staging, ckpt.config, state, architecture)
    except file_io.OutputExistsError as error:
        raise CheckpointError(str(error)) from None
    skipped = {MODEL + name: why for name, why in skipped.items()}
    skipped.update({name: "optimizer state is not part of this format" for name in ckpt.optimizer_state})
    written = len(state) - len([name for name in skipped if name[len(MODEL):] in state])
    detail = f"transformers class {architecture}" if to == "hf" else ""
    return ExportReport(path=directory, format=to, written=written, skipped=skipped, detail=detail, notes=notes)


def from_model(model, heads: dict[str, Any] | None = None, generator=None, generator_head=None) -> FunnelCheckpoint:
    """Wraps a model built or trained here (every weight counts as set) for `export`."""
    return FunnelCheckpoint(model=model, heads=dict(heads or {}), generator=generator, generator_head=generator_head)


def save_pretrained(model, directory: str, heads: dict[str, Any] | None = None, overwrite: bool = True) -> None:
    """Writes a backbone (and heads) in our format, readable by `FunnelTFM.from_pretrained`.

        save_pretrained(model, "out/keras", heads={"lm": lm_head})
    """
    export(from_model(model, heads), directory, to="keras", overwrite=overwrite)
