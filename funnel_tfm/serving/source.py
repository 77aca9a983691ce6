"""A finetuned model as its finetuning run left it: the run record, the config and one checkpoint's weights.

    finetuned = load_finetuned("exp/cola", checkpoint="best")    # or "latest", or a checkpoint prefix
    finetuned.task.model(features)                               # the task's Keras model, weights restored
    finetuned.record["labels"], finetuned.step, finetuned.checkpoint

"best" is the checkpoint `best_result.json` names (what `--do_predict` uses), else the latest, as the jobs do.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import tensorflow as tf

from funnel_tfm import file_io
from funnel_tfm.config import ModelConfig
from funnel_tfm.config_fnet import FNetConfig, load_any_config
from funnel_tfm.data.preprocessing import Preprocessor
from funnel_tfm.errors import CheckpointError
from funnel_tfm.tasks.base import Task
from funnel_tfm.tasks.classification import ClassificationTask
from funnel_tfm.tasks.multiple_choice import MultipleChoiceTask
from funnel_tfm.tasks.squad import SquadTask
from funnel_tfm.tasks.tagging import TaggingTask
from funnel_tfm.training.run_dir import NET_CONFIG, best_checkpoint, saved_checkpoints
from funnel_tfm.training.run_record import RUN_RECORD, RunRecordError, read_run_record

CHECKPOINT_CHOICES = ("best", "latest")


class ExportError(ValueError):
    """What stops an export or a prediction (names the file, field or flag and what was expected)."""


@dataclasses.dataclass
class FinetunedModel:
    record: dict[str, Any]
    config: ModelConfig | FNetConfig
    task: Task
    checkpoint: str
    step: int | None
    model_dir: str

    def preprocessor(self, seq_len: int | None = None) -> Preprocessor:
        """The run's tokenizer and packing (its --max_seq_length unless `seq_len`)."""
        return Preprocessor.from_file(self.record["tokenizer_path"], uncased=self.record["uncased"],
                                      seq_len=seq_len or self.record["max_seq_length"])


def choose_checkpoint(model_dir: str, checkpoint: str) -> tuple[int | None, str]:
    """(step, prefix) of "best", "latest" or a checkpoint prefix; an ExportError when there is none."""
    if checkpoint not in CHECKPOINT_CHOICES:
        if not tf.io.gfile.exists(checkpoint + ".index"):
            raise ExportError(f"--checkpoint={checkpoint}: no {checkpoint}.index (expected best, latest or the "
                              f"prefix of a training checkpoint such as {os.path.join(model_dir, 'ckpt-100')})")
        return None, checkpoint
    found = saved_checkpoints(model_dir)
    if not found:
        raise ExportError(f"{model_dir}: no finetuned checkpoint (ckpt-<step>.index); train with --do_train first")
    if checkpoint == "latest":
        return found[-1]
    return best_checkpoint(model_dir)


def build_task(record: dict[str, Any], config: ModelConfig | FNetConfig, record_path: str) -> Task:
    """The task model the record describes, with fresh weights."""
    kind = record["task"]
    if kind == "classification":
        n_class = 1 if record.get("regression") else len(record.get("labels") or ())
        if n_class == 0:
            raise RunRecordError(f"{record_path}: a classification record without labels and not regression")
        return ClassificationTask.build(config, n_class, scope=record["head_scope"], dtype="float32")
    if kind == "multiple_choice":
        return MultipleChoiceTask.build(config, record.get("num_choices", 4), scope=record.get("head_scope", "race"),
                                        dtype="float32")
    if kind == "tagging":
        return TaggingTask.build(config, len(record["labels"]), dtype="float32")
    return SquadTask.build(config, record.get("conditional_end", True), record.get("use_answer_class", True),
                           dtype="float32")


def load_finetuned(model_dir: str, checkpoint: str = "best") -> FinetunedModel:
    """See the module docstring. Errors name the file: no model_dir, record, config, tokenizer or checkpoint."""
    if not file_io.exists(model_dir):
        raise ExportError(f"--model_dir={model_dir}: no such directory")
    step, prefix = choose_checkpoint(model_dir, checkpoint)
    record = read_run_record(model_dir)
    if not file_io.exists(record["tokenizer_path"]):
        raise ExportError(f"{os.path.join(model_dir, RUN_RECORD)}: tokenizer_path {record['tokenizer_path']} does "
                          f"not exist (the vocabulary the model was finetuned with is needed to serve it)")
    config_path = os.path.join(model_dir, NET_CONFIG)
    if not file_io.exists(config_path):
        raise ExportError(f"{config_path}: missing (the model's config, written by the training run)")
    config = load_any_config(config_path)  # a Funnel or an FNet run
    task = build_task(record, config, os.path.join(model_dir, RUN_RECORD))
    status = tf.train.Checkpoint(**task.trackables()).read(prefix)
    try:
        status.expect_partial().assert_existing_objects_matched()
    except AssertionError as error:
        raise CheckpointError(f"{prefix}: does not hold this task's weights ({str(error).splitlines()[0][:300]})")
    return FinetunedModel(record, config, task, prefix, step, model_dir)
