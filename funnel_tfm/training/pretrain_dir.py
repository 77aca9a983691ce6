"""A pretraining run's model_dir read back: its objective, a training checkpoint restored, the model exported.

    if is_pretraining_run("runs/mlm"):
        task, step = restore_pretraining_task("runs/mlm")             # the latest ckpt-<step>
        export_pretrained(task, "out/hf", "hf", tokenizer=tokenizer_of("runs/mlm"))

What `pretrain` writes at its start (before any step) is what makes its directory readable without its `export/`:
the model's config (`net_config.json`, or `fnet_config.json` for FNet) and `pretrain_objective.json` (the loss,
the generator's width, the tokenizer). `--init_checkpoint`, `convert --input` and `export --model_dir` take such a
directory, so a run that was stopped early, or whose export was made in another format, still converts.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import tensorflow as tf

from funnel_tfm import file_io
from funnel_tfm.checkpoints.loading import export
from funnel_tfm.config_fnet import FNET_CONFIG_FILE, load_any_config
from funnel_tfm.data.hf_tokenizer import write_hf_tokenizer
from funnel_tfm.errors import CheckpointError
from funnel_tfm.tasks import build_pretraining_task
from funnel_tfm.tasks.backbones import is_fnet
from funnel_tfm.training.run_dir import PRETRAIN_CONFIG, PRETRAIN_OBJECTIVE, saved_checkpoints
def is_pretraining_run(path: str) -> bool:
    """Whether `path` is a directory `pretrain` trained in (it holds pretrain_objective.json)."""
    return file_io.exists(os.path.join(path, PRETRAIN_OBJECTIVE))


def write_objective(model_dir: str, settings: dict[str, Any]) -> None:
    """pretrain_objective.json: loss_type, width_shrink, disc_coeff, seq_len, tokenizer_path, uncased."""
    file_io.atomic_write_text(os.path.join(model_dir, PRETRAIN_OBJECTIVE), json.dumps(settings))


def read_objective(path: str) -> dict[str, Any]:
    objective = os.path.join(path, PRETRAIN_OBJECTIVE)
    try:
        with file_io.open_file(objective) as handle:
            settings = json.load(handle)
        return {**settings, "loss_type": settings["loss_type"], "width_shrink": float(settings["width_shrink"]),
                "disc_coeff": float(settings["disc_coeff"])}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{objective}: not the settings pretrain writes ({error})") from None


def restore_pretraining_task(path: str, prefix: str | None = None) -> tuple[Any, int | None]:
    """(task, step): the pretraining task of run directory `path` with the weights of checkpoint `prefix`
    (default: the latest `ckpt-<step>`; step None for a prefix given by hand)."""
    settings = read_objective(path)
    step = None
    if prefix is None:
        found = saved_checkpoints(path)
        if not found:
            raise CheckpointError(f"{path}: a pretraining run without a training checkpoint (ckpt-<step>.index) yet")
        step, prefix = found[-1]
    fnet_config = os.path.join(path, FNET_CONFIG_FILE)
    config = load_any_config(fnet_config if file_io.exists(fnet_config) else os.path.join(path, PRETRAIN_CONFIG))
    task = build_pretraining_task(config, settings["loss_type"], settings["width_shrink"], settings["disc_coeff"])
    tf.train.Checkpoint(**task.trackables()).read(prefix).expect_partial()
    return task, step


def tokenizer_of(path: str) -> tuple[str, bool, int] | None:
    """(tokenizer_path, uncased, seq_len) the run was trained with, when its objective file names them (runs
    written before that was recorded do not) and the vocabulary is still there."""
    settings = read_objective(path)
    vocab = settings.get("tokenizer_path")
    if not vocab or not file_io.exists(vocab):
        return None
    return vocab, bool(settings.get("uncased", True)), int(settings["seq_len"])


def export_pretrained(task: Any, export_dir: str, fmt: str, tokenizer: tuple[str, bool, int] | None = None,
                      optimizer_state: dict | None = None, overwrite: bool = True,
                      log: Callable[[str], None] = print) -> None:
    """A pretraining task's model to `export_dir` in `fmt` (keras, hf, or original with `optimizer_state`); with hf
    and a `tokenizer`, its vocabulary beside it so AutoTokenizer.from_pretrained(export_dir) works too."""
    fnet = is_fnet(task.model.config)
    if fnet:
        task.model.save_pretrained(export_dir, overwrite=overwrite, format=fmt)
        untrained = "" if task.next_sentence else " (loss_type mlm: the pooler and NSP head are untrained)"
        log(f"exported FNetForPreTraining ({fmt}) to {export_dir}{untrained}")
    else:
        view = task.checkpoint_view()
        view.optimizer_state = optimizer_state or {}
        report = export(view, export_dir, to=fmt, overwrite=overwrite)
        log(f"exported {report.written} weights ({fmt}) to {export_dir}")
    if fmt == "hf" and tokenizer is not None:
        vocab, uncased, seq_len = tokenizer
        for note in write_hf_tokenizer(vocab, export_dir, uncased, seq_len, fnet=fnet):
            log(f"  {note}")
