"""The finetuning job behind `python -m funnel_tfm.classifier`: GLUE, text classification, your own data.

    run = ClassifierRun(task_name="cola", data_dir="glue/CoLA", output_dir="proc_data/cola", model_dir="exp/cola",
                        tokenizer_path="vocab.txt", init_checkpoint="B6-6-6H768-ELEC-TF", do_train=True,
                        do_eval=True, train_steps=5350, warmup_steps=535, save_steps=535, train_batch_size=16)
    run_classifier(run)

Training resumes from `model_dir`'s latest checkpoint; `model_dir/done` marks its end. Evaluation runs every
saved checkpoint in step order (or only the last with `eval_all_ckpt=False`), waiting for new ones while a
training process elsewhere has not written `done`; results go to `model_dir/eval/<split>/results.jsonl`,
TensorBoard `eval/*` and `model_dir/best_result.json`. Prediction writes per-example outputs; submission writes
the GLUE server's files and one zip (semantics F1-F3).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import zipfile
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from funnel_tfm import file_io
from funnel_tfm.data import classifier_data
from funnel_tfm.data.classifier_records import (eval_dataset, examples_digest, record_path, train_input_fn,
                                                write_features)
from funnel_tfm.data.preprocessing import Preprocessor
from funnel_tfm.layers.heads import TokenClassificationHead
from funnel_tfm.tasks.classification import ClassificationTask
from funnel_tfm.tasks.glue_metrics import glue_scores, main_score
from funnel_tfm.training.run_dir import NET_CONFIG, best_checkpoint
from funnel_tfm.training import run_dir
from funnel_tfm.training.finetune import (FinetuneRun, cached_records, evaluate_checkpoints, model_config_and_init,
                                          predict_logits, shuffled_for_training, train_task, with_schedule)
from funnel_tfm.training.loop import configure_devices
from funnel_tfm.training.run_record import write_run_record
from funnel_tfm.training.strategy import is_chief, make_strategy


RESERVED_SCOPES = (TokenClassificationHead.SCOPE, "start_logits", "end_logits", "answer_class")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClassifierRun(FinetuneRun):
    """Every setting of a finetuning run (the flags of `funnel_tfm.classifier`, same names and defaults)."""

    task_name: str
    custom: classifier_data.CustomFormat | None = None
    cls_scope: str | None = None
    do_submit: bool = False
    predict_split: str | None = None          # None: eval_split
    submit_dir: str | None = None
    predict_batch_size: int = 8
    eval_batch_size: int = 8
    zero_init_head: bool = False              # the head's kernel starts at zero (docs/pretraining_collapse.md)
    max_seq_length: int = 128


# ------------------------------------------------------------------------------------------- features
def _settings(run: ClassifierRun, task: classifier_data.TaskData, split: str) -> dict[str, Any]:
    """What the records of `split` depend on: records made with other settings are not reused."""
    return {"task": task.spec.name, "split": split, "files": task.split_files(split), "uncased": run.uncased,
            "max_seq_length": run.max_seq_length, "tokenizer": os.path.abspath(run.tokenizer_path),
            "tokenizer_sha256": file_io.sha256_file(run.tokenizer_path),
            "labels": list(task.spec.labels), "regression": task.spec.is_regression,
            "shuffled_with_seed": run.seed if (split == "train" and run.shuffle_examples) else None}


def prepare_records(run: ClassifierRun, task: classifier_data.TaskData, preprocessor: Preprocessor, split: str,
                    log: Callable[[str], None], labelled: bool = False) -> tuple[str, dict[str, Any], list]:
    """(record path, meta, examples) of `split`: written once, reused while the settings are the same.
    `labelled`: every example must have a label (evaluation; unlabelled rows would be scored as the first label)."""
    path = record_path(run.output_dir, run.tokenizer_path, run.max_seq_length, split)
    examples = task.examples(split)
    unlabelled = next((e for e in examples if e.label is None), None)
    if labelled and unlabelled is not None:
        raise classifier_data.ClassifierDataError(
            f"{', '.join(task.split_files(split))}: the {split} split has unlabelled rows (the first: "
            f"{unlabelled.guid}); evaluation needs a label in every row: choose another --eval_split, or "
            f"--do_predict / --do_submit for predictions")
    if split == "train":
        classifier_data.check_training_labels(examples, task.spec, task.split_files(split))
    settings = {**_settings(run, task, split), "data_sha256": examples_digest(examples)}  # an edited file: refused
    examples = shuffled_for_training(run, examples, split)
    meta = cached_records(path, settings, run.overwrite_data, lambda: write_features(
        examples, task.spec.labels, task.spec.is_regression, preprocessor, path, settings, log=log),
        f"{split} examples", log)
    return path, meta, examples


# ------------------------------------------------------------------------------------------- model
def _head_scope(run: ClassifierRun, spec: classifier_data.TaskSpec) -> str:
    scope = run.cls_scope or spec.name  # the original's default: the lower-cased task name
    if scope in RESERVED_SCOPES:
        raise ValueError(f"--cls_scope={scope!r} is reserved for another head (a checkpoint's {scope}/ weights are "
                         f"read back as that head); choose another name")
    return scope


# ------------------------------------------------------------------------------------------- phases
def _reported_metrics(spec: classifier_data.TaskSpec) -> tuple[str, ...]:
    """GLUE's metrics of the task, and accuracy for every classification task (CoLA's is only Matthews)."""
    extra = () if spec.is_regression or "accuracy" in spec.metrics else ("accuracy",)
    return tuple(spec.metrics) + extra


def _score_fn(spec: classifier_data.TaskSpec, task: ClassificationTask) -> Callable[[dict], dict[str, float]]:
    def score(outputs: dict[str, np.ndarray], step: int) -> dict[str, float]:
        logits, labels = outputs["logits"], outputs["label"]
        predictions = logits[:, 0] if spec.is_regression else np.argmax(logits, -1)
        scores = glue_scores(_reported_metrics(spec), predictions, labels)
        loss = float(task.per_example_numpy(logits, labels).mean())
        return {"loss": loss, **scores, "main": main_score(scores, spec.main_metric)}
    return score


def _evaluate(run, strategy, task, spec, path, meta, log) -> dict[str, Any] | None:
    dataset = eval_dataset(path, run.max_seq_length, spec.is_regression, run.eval_batch_size, meta["num_examples"])
    return evaluate_checkpoints(run, strategy, task, dataset, _score_fn(spec, task),
                                ("loss",) + _reported_metrics(spec), log, main_name=spec.main_metric)


def _predict(run, strategy, task, spec, split, path, meta, examples, log) -> tuple[np.ndarray, list]:
    step, prefix = best_checkpoint(run.model_dir)
    dataset = eval_dataset(path, run.max_seq_length, spec.is_regression, run.predict_batch_size,
                           meta["num_examples"])
    logits = predict_logits(strategy, task, prefix, dataset)
    log(f"predicted {len(logits):,} {split} examples with {prefix}")
    return logits, examples


def _label_strings(spec, logits: np.ndarray) -> list[str]:
    if spec.is_regression:
        return [f"{value:.6f}" for value in logits[:, 0]]
    return [spec.labels[i] for i in np.argmax(logits, -1)]


def _write_predictions(run, spec, split, logits, examples, log) -> str:
    out = os.path.join(run.model_dir, "predict", f"{split}.jsonl")
    probabilities = None if spec.is_regression else tf.nn.softmax(logits, -1).numpy()
    lines = []
    for i, (example, label) in enumerate(zip(examples, _label_strings(spec, logits))):
        row = {"guid": example.guid, "prediction": float(logits[i, 0]) if spec.is_regression else label,
               "label": example.label}
        if probabilities is not None:
            row["probabilities"] = {name: float(p) for name, p in zip(spec.labels, probabilities[i])}
        lines.append(json.dumps(row))
    file_io.atomic_write_text(out, "\n".join(lines) + "\n")
    log(f"wrote {len(lines):,} predictions to {out}")
    return out


def submission_rows(spec, logits: np.ndarray, examples: list) -> list[str]:
    """`index\\tprediction` lines of the GLUE server: label strings; STS-B clipped to [0, 5] (the original
    rescaled by the maximum instead, semantics F1)."""
    if spec.is_regression:
        values = [f"{min(max(float(v), 0.0), 5.0):.3f}" for v in logits[:, 0]]
    else:
        values = _label_strings(spec, logits)
    return ["index\tprediction"] + [f"{e.guid}\t{v}" for e, v in zip(examples, values)]


# ------------------------------------------------------------------------------------------- the job
def run_classifier(run: ClassifierRun, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Runs the phases `run` asks for; returns {"best": best eval result or None, "predictions": path, ...}."""
    if not (run.do_train or run.do_eval or run.do_predict or run.do_submit):
        raise ValueError("nothing to do: give at least one of --do_train, --do_eval, --do_predict, --do_submit")
    configure_devices(run.num_cpu_devices, run.deterministic)
    strategy = make_strategy(run.strategy, run.tpu)
    chief = is_chief(strategy)
    log = log or ((lambda line: print(line, flush=True)) if chief else (lambda line: None))
    task_data = classifier_data.get_task(run.task_name, run.data_dir, run.custom)
    spec = task_data.spec
    preprocessor = Preprocessor.from_file(run.tokenizer_path, uncased=run.uncased, seq_len=run.max_seq_length)
    # The evaluation records first: an unusable --eval_split (unlabelled, bad rows) fails now, not after training.
    eval_records = (prepare_records(run, task_data, preprocessor, run.eval_split, log, labelled=True)
                    if run.do_eval else None)
    config, init = model_config_and_init(run, preprocessor.tokenizer.vocab_size)
    n_class = 1 if spec.is_regression else len(spec.labels)
    keras.utils.set_random_seed(run.seed)  # the head's initial weights
    with strategy.scope():
        task = ClassificationTask.build(config, n_class, scope=_head_scope(run, spec), dtype=run.precision,
                                        zero_init_head=run.zero_init_head)
    outcome: dict[str, Any] = {"best": None}

    if run.do_train:
        # Every check before the first write into model_dir: the model against its checkpoints, the training data
        # (prepare_records), then the lock, the config and the run record.
        run_dir.check_same_model(run.model_dir, config, NET_CONFIG)
        path, meta, examples = prepare_records(run, task_data, preprocessor, "train", log)
        if chief:  # the lock is held to the end of this function; then `export` needs the config and the record
            lock = run_dir.lock(run.model_dir)  # noqa: F841
            config.to_json(os.path.join(run.model_dir, NET_CONFIG))  # every key: exactly this model
            write_run_record(run.model_dir, "classification", run.tokenizer_path, run.uncased, run.max_seq_length,
                             task_name=spec.name, labels=list(spec.labels), regression=spec.is_regression,
                             head_scope=_head_scope(run, spec), text_pair=any(e.text_b is not None for e in examples))
        file_io.makedirs(run.model_dir)  # every worker's, once the checks passed
        run = with_schedule(run, meta["num_examples"])
        replicas = strategy.num_replicas_in_sync
        dataset_fn_at = lambda start: train_input_fn(  # noqa: E731
            path, run.max_seq_length, spec.is_regression, run.train_batch_size // replicas, seed=run.seed,
            shuffle_buffer=run.shuffle_buffer, start_step=start)
        train_task(run, strategy, task, init, dataset_fn_at, meta["num_examples"], log)
    file_io.makedirs(run.model_dir)
    if run.do_eval:
        path, meta, _ = eval_records
        outcome["best"] = _evaluate(run, strategy, task, spec, path, meta, log)
    if run.do_predict:
        split = run.predict_split or run.eval_split
        path, meta, examples = prepare_records(run, task_data, preprocessor, split, log)
        logits, examples = _predict(run, strategy, task, spec, split, path, meta, examples, log)
        outcome["predictions"] = _write_predictions(run, spec, split, logits, examples, log)
    if run.do_submit:
        outcome["submission"] = _submit(run, strategy, task, task_data, preprocessor, log)
    return outcome


def _submit(run, strategy, task, task_data, preprocessor, log) -> str:
    spec = task_data.spec
    if spec.submit_name is None:
        raise ValueError(f"--do_submit: {spec.name} is not a GLUE task (use --do_predict --predict_split=test)")
    submit_dir = run.submit_dir or os.path.join(run.model_dir, "submit")
    file_io.makedirs(submit_dir)
    files = {}
    jobs = [(task_data, run)]
    if spec.name == "mnli_matched":  # the original also predicted the diagnostic set (AX) with the MNLI model
        try:
            diagnostic = classifier_data.get_task("diagnostic", run.data_dir)
            diagnostic.split_files("test")
            jobs.append((diagnostic, dataclasses.replace(run, output_dir=os.path.join(run.output_dir, "diagnostic"))))
        except classifier_data.ClassifierDataError as error:
            log(f"no AX predictions: {error}")
    for data, job_run in jobs:
        path, meta, examples = prepare_records(job_run, data, preprocessor, "test", log)
        logits, examples = _predict(job_run, strategy, task, data.spec, "test", path, meta, examples, log)
        name = os.path.join(submit_dir, f"{data.spec.submit_name}.tsv")
        file_io.atomic_write_text(name, "\n".join(submission_rows(data.spec, logits, examples)) + "\n")
        files[name] = len(examples)
    archive = os.path.join(submit_dir, "submission.zip")
    temporary = archive + ".tmp"
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as handle:
        for name in files:
            handle.write(name, os.path.basename(name))
    shutil.move(temporary, archive)
    log(f"wrote {', '.join(f'{os.path.basename(n)} ({c:,} rows)' for n, c in files.items())} and {archive}")
    return archive
