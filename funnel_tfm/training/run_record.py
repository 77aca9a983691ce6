"""What a finetuning run records in its model_dir so its model can leave it: task, labels, tokenizer, lengths.

    write_run_record(run.model_dir, task="classification", tokenizer_path=run.tokenizer_path, uncased=True,
                     max_seq_length=128, labels=["0", "1"], head_scope="cola", text_pair=False)
    record = read_run_record("exp/cola")    # {"task": "classification", "labels": ["0", "1"], ...}

`python -m funnel_tfm.export` reads it, so a user never repeats the task, the labels or the tokenizer. The
file is written atomically (a reader never sees half of it). A model_dir trained before this record existed
has none: `read_run_record` then raises a RunRecordError that says which job to rerun.
"""

from __future__ import annotations

import json
import os
from typing import Any

from funnel_tfm.training.run_dir import RUN_RECORD
from funnel_tfm import file_io

TASKS = ("classification", "multiple_choice", "squad", "tagging")
VERSION = 1


class RunRecordError(ValueError):
    """A model_dir without a usable run record (names the file and the field)."""


def write_run_record(model_dir: str, task: str, tokenizer_path: str, uncased: bool, max_seq_length: int,
                     **extra: Any) -> str:
    """Writes `model_dir/run_record.json`; `extra` holds what the task adds (labels, head_scope, ...)."""
    if task not in TASKS:
        raise ValueError(f"task {task!r}: expected one of {', '.join(TASKS)}")
    record = {"version": VERSION, "task": task, "tokenizer_path": os.path.abspath(tokenizer_path)
              if not file_io.is_remote(tokenizer_path) else tokenizer_path,
              "uncased": bool(uncased), "max_seq_length": int(max_seq_length), **extra}
    path = os.path.join(model_dir, RUN_RECORD)
    file_io.atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


def read_run_record(model_dir: str) -> dict[str, Any]:
    """The record of `model_dir`; a RunRecordError names what is missing."""
    path = os.path.join(model_dir, RUN_RECORD)
    if not file_io.exists(path):
        raise RunRecordError(f"{path}: no run record (task, labels, tokenizer): this model_dir was not written by a "
                             f"finetuning job of this version; rerun it with --do_train (it resumes from the latest "
                             f"checkpoint and writes the record)")
    with file_io.open_file(path) as handle:
        try:
            record = json.load(handle)
        except json.JSONDecodeError as error:
            raise RunRecordError(f"{path}: not JSON ({error})") from None
    for field in ("task", "tokenizer_path", "uncased", "max_seq_length"):
        if field not in record:
            raise RunRecordError(f"{path}: no {field!r} field")
    if record["task"] not in TASKS:
        raise RunRecordError(f"{path}: task {record['task']!r}, expected one of {', '.join(TASKS)}")
    return record
