"""`export_model`: one finetuned model_dir -> one export directory, written under a temporary name and renamed.

    export_model("exp/cola", "saved_model", "serving/cola/1")              # raw text in, labels out
    export_model("exp/cola", "keras", "out/cola_keras", checkpoint="latest")  # model.keras + vocabulary
    export_model("exp/race", "hf", "out/race_hf")                          # FunnelForMultipleChoice + its tokenizer
    export_model("exp/squad", "hf", "out/squad_hf", backbone_only=True)    # FunnelModel (no HF class for the head)
    export_model("exp/fnet_cola", "hf", "out/fnet_cola_hf")                # FNetForSequenceClassification (N11)
    export_model("exp/race", "onnx", "out/race_onnx")                      # model.onnx, checked with onnxruntime

Every export holds `funnel_export.json` (task, labels, lengths, tokenizer file, source checkpoint and step) and
a copy of the vocabulary, so `funnel_tfm.predict` and users need nothing from the training directory.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from funnel_tfm import file_io
from funnel_tfm.checkpoints.loading import export as export_checkpoint
from funnel_tfm.checkpoints.loading import from_model
from funnel_tfm.config import ConfigError
from funnel_tfm.config_fnet import FNetConfig
from funnel_tfm.data.hf_tokenizer import write_hf_tokenizer
from funnel_tfm.serving.formats import check_format
from funnel_tfm.serving.saved_model import write_saved_model
from funnel_tfm.serving.source import ExportError, FinetunedModel, choose_checkpoint, load_finetuned
from funnel_tfm.training.run_dir import RUN_RECORD
from funnel_tfm.training.pretrain_dir import (export_pretrained, is_pretraining_run, restore_pretraining_task,
                                              tokenizer_of)
EXPORT_RECORD = "funnel_export.json"
KERAS_ARCHIVE = "model.keras"
ONNX_FILE = "model.onnx"


def _check_format(fmt: str, task: str | None, backbone_only: bool) -> None:
    check_format(fmt)
    if fmt == "hf" and task == "squad" and not backbone_only:
        raise ExportError("--format=hf: transformers has no class for the original's SQuAD head (end logits "
                          "conditioned on the start, and the answer-class logit); pass --backbone_only to export "
                          "the finetuned backbone as FunnelModel (FNetModel for an FNet run), or use --format=keras")


def _check_hf_expressible(config: Any, model_dir: str) -> None:
    """ExportError, before anything is written, for a config transformers' classes cannot hold: a Funnel with
    Fourier blocks (fnet semantics N8), an FNet with attention layers or d_embed != d_model (N6, N9). The
    checkpoint writers raise too, but name their staging directory and a library argument."""
    if isinstance(config, FNetConfig):
        try:
            config.to_hf_dict()
            return
        except ConfigError as error:
            reason = str(error).split(";")[0]
    elif getattr(config, "has_fourier", False):
        reason = (f"block_mixers {config.block_mixers!r} has Fourier blocks, and every layer of transformers' "
                  f"Funnel attends")
    else:
        return
    raise ExportError(f"--format=hf: {model_dir}: {reason}; export with --format=keras, saved_model or onnx")


def _write_hf(finetuned: FinetunedModel, staging: str, backbone_only: bool) -> tuple[str, list[str]]:
    """Returns (transformers class, notes on what was written specially)."""
    view = finetuned.task.checkpoint_view()
    if backbone_only:
        untrained = view.report.missing  # e.g. a tagger's pooler: written as zeros for FNet, not as its init
        view = from_model(view.model)
        view.report.missing = [name for name in untrained if name in view.named_variables()]
    report = export_checkpoint(view, staging, to="hf", overwrite=True)  # staging exists: replaced whole
    labels = finetuned.record.get("labels")
    config_path = os.path.join(staging, "config.json")
    with open(config_path) as handle:
        values = json.load(handle)
    if labels and "id2label" in values and len(labels) == len(values["id2label"]):  # the run's names, not LABEL_i
        values["id2label"] = {str(i): name for i, name in enumerate(labels)}
        values["label2id"] = {name: i for i, name in enumerate(labels)}
        with open(config_path, "w") as handle:
            json.dump(values, handle, indent=2, sort_keys=True)
    return report.detail.removeprefix("transformers class "), report.notes


def _write_onnx(finetuned: FinetunedModel, staging: str, backbone_only: bool) -> dict[str, Any]:
    from funnel_tfm.serving.onnx_export import OnnxJob, export_onnx
    from funnel_tfm.serving.samples import sample_features
    model = finetuned.task.checkpoint_view().model if backbone_only else finetuned.task.model
    job = OnnxJob(model, sample_features(finetuned, backbone_only), os.path.join(staging, ONNX_FILE))
    result = export_onnx([job])[0]
    return {"file": ONNX_FILE, **{key: value for key, value in result.items() if key != "onnx_file"}}


def _metadata(finetuned: FinetunedModel, fmt: str, vocab_name: str, backbone_only: bool,
              extra: dict[str, Any]) -> dict[str, Any]:
    record = finetuned.record
    keep = ("task", "labels", "regression", "text_pair", "max_seq_length", "uncased", "num_choices", "head_scope")
    return {"format": fmt, **{key: record[key] for key in keep if key in record},
            "task": "backbone" if backbone_only else record["task"], "tokenizer_file": vocab_name,
            "source_model_dir": os.path.abspath(finetuned.model_dir), "checkpoint": finetuned.checkpoint,
            "step": finetuned.step, **extra}


def export_model(model_dir: str, fmt: str, export_dir: str, checkpoint: str = "best", overwrite: bool = False,
                 backbone_only: bool = False, log=print) -> str:
    """Exports `model_dir`'s `checkpoint` as `fmt` into `export_dir` (see the module docstring); returns the path.
    Nothing is left at `export_dir` when anything fails."""
    _check_format(fmt, None, backbone_only)
    if os.path.exists(export_dir) and os.listdir(export_dir) and not overwrite:
        raise ExportError(f"--export_dir={export_dir}: already exists and is not empty (pass --overwrite)")
    if fmt == "onnx":
        from funnel_tfm.serving.onnx_export import check_onnx_packages
        check_onnx_packages()  # before minutes of loading
    if is_pretraining_run(model_dir) and not file_io.exists(os.path.join(model_dir, RUN_RECORD)):
        return _export_pretraining_run(model_dir, fmt, export_dir, checkpoint, overwrite, backbone_only, log)
    finetuned = load_finetuned(model_dir, checkpoint)
    _check_format(fmt, finetuned.record["task"], backbone_only)
    if fmt == "hf":
        _check_hf_expressible(finetuned.config, model_dir)
    if fmt == "saved_model" and backbone_only:
        raise ExportError("--format=saved_model --backbone_only: a raw-text signature needs a task head; use "
                          "--format=keras or --format=hf for the backbone")
    vocab = finetuned.record["tokenizer_path"]
    with file_io.atomic_directory(export_dir, overwrite=overwrite) as staging:
        extra: dict[str, Any] = {}
        if fmt == "saved_model":
            extra = write_saved_model(finetuned, staging)
        elif fmt == "onnx":
            extra = _write_onnx(finetuned, staging, backbone_only)
        elif fmt == "keras":
            model = finetuned.task.checkpoint_view().model if backbone_only else finetuned.task.model
            model.save(os.path.join(staging, KERAS_ARCHIVE))
            extra = {"file": KERAS_ARCHIVE}
        else:
            transformers_class, notes = _write_hf(finetuned, staging, backbone_only)
            notes += write_hf_tokenizer(vocab, staging, uncased=finetuned.record["uncased"],
                                        max_seq_length=finetuned.record["max_seq_length"],
                                        fnet=isinstance(finetuned.config, FNetConfig))
            extra = {"transformers_class": transformers_class}
            for note in notes:
                log(f"  {note}")
        vocab_name = os.path.basename(vocab)
        file_io.makedirs(os.path.join(staging, "tokenizer"))
        shutil.copyfile(vocab, os.path.join(staging, "tokenizer", vocab_name))
        metadata = _metadata(finetuned, fmt, os.path.join("tokenizer", vocab_name), backbone_only, extra)
        file_io.atomic_write_text(os.path.join(staging, EXPORT_RECORD), json.dumps(metadata, indent=2) + "\n")
    log(f"exported {metadata['task']} (step {finetuned.step}, {finetuned.checkpoint}) as {fmt} to {export_dir}")
    return export_dir


def _export_pretraining_run(model_dir: str, fmt: str, export_dir: str, checkpoint: str, overwrite: bool,
                            backbone_only: bool, log) -> str:
    """A pretraining run's checkpoint (latest: pretraining keeps no best) as a checkpoint directory: hf (with the
    run's vocabulary when its pretrain_objective.json names it), keras (ours) or original."""
    if fmt not in ("hf", "keras", "original"):
        raise ExportError(f"--format={fmt}: {model_dir} is a pretraining run, which has no task head to serve; "
                          f"export it as hf, keras or original, or finetune it first")
    if backbone_only:
        raise ExportError(f"--backbone_only: {model_dir} is a pretraining run; its export holds the backbone and "
                          f"the pretraining heads, which the formats keep or skip by name")
    if checkpoint in ("best", "latest"):
        step, prefix = None, None  # the latest ckpt-<step>; restore_pretraining_task names a run that has none
    else:
        step, prefix = choose_checkpoint(model_dir, checkpoint)
    task, latest_step = restore_pretraining_task(model_dir, prefix)
    step = latest_step if prefix is None else step
    prefix = prefix or f"{model_dir}/ckpt-{step}"
    if fmt == "hf":
        _check_hf_expressible(task.model.config, model_dir)
    with file_io.atomic_directory(export_dir, overwrite=overwrite) as staging:
        export_pretrained(task, staging, fmt, tokenizer=tokenizer_of(model_dir), log=lambda line: log(f"  {line}"))
    log(f"exported the pretraining run {model_dir} (step {step}, {prefix}) as {fmt} to {export_dir}")
    return export_dir
