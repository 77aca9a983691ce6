"""The RACE job behind `python -m funnel_tfm.race`: reading comprehension, accuracy overall / middle / high.

    run = RaceRun(data_dir="RACE", output_dir="proc_data/race", model_dir="exp/race", tokenizer_path="vocab.txt",
                  init_checkpoint="B6-6-6H768-ELEC-TF", do_train=True, do_eval=True, train_batch_size=16,
                  train_steps=24000, warmup_steps=2400, learning_rate=2e-5, save_steps=2400)
    run_race(run)

Training, resumption, evaluation of every checkpoint and the best checkpoint are the classifier's
(`training/finetune.py`); the records and the model are RACE's (`data/race_data.py`, `tasks/multiple_choice.py`).
Predictions (`--do_predict`) go to `model_dir/predict/<split>.jsonl` with the probability of each option.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable

import keras
import numpy as np

from funnel_tfm import file_io
from funnel_tfm.data import race_data
from funnel_tfm.data.classifier_records import examples_digest
from funnel_tfm.data.tokenization import Tokenizer
from funnel_tfm.tasks.glue_metrics import accuracy
from funnel_tfm.tasks.multiple_choice import MultipleChoiceTask
from funnel_tfm.training.run_dir import NET_CONFIG, best_checkpoint
from funnel_tfm.training.run_record import write_run_record
from funnel_tfm.training import run_dir
from funnel_tfm.training.finetune import (FinetuneRun, cached_records, evaluate_checkpoints, model_config_and_init,
                                          predict_logits, shuffled_for_training, train_task, with_schedule)
from funnel_tfm.training.loop import configure_devices
from funnel_tfm.training.strategy import is_chief, make_strategy


@dataclasses.dataclass(frozen=True, kw_only=True)
class RaceRun(FinetuneRun):
    """Every setting of a RACE run (the flags of `funnel_tfm.race`, the original's names and defaults)."""

    max_seq_length: int = 512
    max_qa_length: int = 128
    eval_batch_size: int = 128


def prepare_race_records(run: RaceRun, tokenizer: Tokenizer, split: str, log: Callable[[str], None],
                         labelled: bool = False) -> tuple[str, dict[str, Any], list]:
    """(record path, meta, examples) of `split`, written once and reused while the settings are the same.
    `labelled`: every question must have its answer (evaluation; a missing one would be scored as "A")."""
    path = os.path.join(run.output_dir, f"{os.path.basename(run.tokenizer_path)}.len-{run.max_seq_length}.{split}"
                                        f".tfrecord")
    examples = race_data.read_race(run.data_dir, split)
    unlabelled = next((e for e in examples if e.label is None), None)
    if labelled and unlabelled is not None:
        raise race_data.RaceDataError(f"{os.path.join(run.data_dir, split, unlabelled.level)}: question "
                                      f"{unlabelled.guid} has no answer (no \"answers\" key); evaluation needs every "
                                      f"answer: choose another --eval_split, or --do_predict for predictions")
    settings = {"task": "race", "split": split, "uncased": run.uncased, "max_seq_length": run.max_seq_length,
                "max_qa_length": run.max_qa_length, "tokenizer": os.path.abspath(run.tokenizer_path),
                "tokenizer_sha256": file_io.sha256_file(run.tokenizer_path),
                "data_dir": os.path.abspath(run.data_dir), "num_questions": len(examples),
                "data_sha256": examples_digest(examples),  # edited files: refused, not answered with old records
                "shuffled_with_seed": run.seed if (split == "train" and run.shuffle_examples) else None}
    examples = shuffled_for_training(run, examples, split)
    meta = cached_records(path, settings, run.overwrite_data, lambda: race_data.write_race_records(
        examples, tokenizer, path, run.max_seq_length, run.max_qa_length, settings, log=log), f"{split} questions", log)
    return path, meta, examples


def _score_fn(task: MultipleChoiceTask) -> Callable[[dict], dict[str, float]]:
    def score(outputs: dict[str, np.ndarray], step: int) -> dict[str, float]:
        logits, labels, high = outputs["logits"], outputs["label"], outputs["is_high_example"] == 1
        predictions = np.argmax(logits, -1)
        overall = accuracy(predictions, labels)
        return {"loss": float(task.per_example_numpy(logits, labels).mean()), "accuracy": overall,
                "accuracy_middle": accuracy(predictions[~high], labels[~high]),
                "accuracy_high": accuracy(predictions[high], labels[high]),
                "num_middle": int((~high).sum()), "num_high": int(high.sum()), "main": overall}
    return score


def _write_predictions(run: RaceRun, split: str, logits: np.ndarray, examples: list,
                       log: Callable[[str], None]) -> str:
    shifted = logits - logits.max(-1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(-1, keepdims=True)
    rows = [json.dumps({"guid": e.guid, "level": e.level, "prediction": race_data.ANSWERS[int(np.argmax(p))],
                        "answer": None if e.label is None else race_data.ANSWERS[e.label],
                        "probabilities": {race_data.ANSWERS[i]: float(v) for i, v in enumerate(p)}})
            for e, p in zip(examples, probabilities)]
    out = os.path.join(run.model_dir, "predict", f"{split}.jsonl")
    file_io.atomic_write_text(out, "\n".join(rows) + "\n")
    log(f"wrote {len(rows):,} predictions to {out}")
    return out


def run_race(run: RaceRun, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Runs the phases `run` asks for; returns {"best": the best evaluation result or None, ...}."""
    if not (run.do_train or run.do_eval or run.do_predict):
        raise ValueError("nothing to do: give at least one of --do_train, --do_eval, --do_predict")
    configure_devices(run.num_cpu_devices, run.deterministic)
    strategy = make_strategy(run.strategy, run.tpu)
    chief = is_chief(strategy)
    log = log or ((lambda line: print(line, flush=True)) if chief else (lambda line: None))
    tokenizer = Tokenizer.from_file(run.tokenizer_path, uncased=run.uncased)
    tokenizer.require_special(("cls", "sep"))
    # The evaluation records first: an unusable --eval_split (no answers, bad files) fails now, not after training.
    eval_records = prepare_race_records(run, tokenizer, run.eval_split, log, labelled=True) if run.do_eval else None
    config, init = model_config_and_init(run, tokenizer.vocab_size)
    keras.utils.set_random_seed(run.seed)
    with strategy.scope():
        task = MultipleChoiceTask.build(config, len(race_data.ANSWERS), dtype=run.precision)
    outcome: dict[str, Any] = {"best": None}
    if run.do_train:
        run_dir.check_same_model(run.model_dir, config, NET_CONFIG)  # every check before the first write there
        path, meta, _ = prepare_race_records(run, tokenizer, "train", log)
        if chief:  # the lock is held to the end of this function
            lock = run_dir.lock(run.model_dir)  # noqa: F841
            config.to_json(os.path.join(run.model_dir, NET_CONFIG))
            write_run_record(run.model_dir, "multiple_choice", run.tokenizer_path, run.uncased, run.max_seq_length,
                             labels=list(race_data.ANSWERS), num_choices=len(race_data.ANSWERS),
                             head_scope=task.model.scope,  # what `export` needs to serve this model
                             max_qa_length=run.max_qa_length)
        file_io.makedirs(run.model_dir)  # every worker's, once the checks passed
        run = with_schedule(run, meta["num_examples"])
        per_replica = run.train_batch_size // strategy.num_replicas_in_sync
        dataset_fn_at = lambda start: race_data.race_train_input_fn(  # noqa: E731
            path, run.max_seq_length, per_replica, seed=run.seed, shuffle_buffer=run.shuffle_buffer, start_step=start)
        train_task(run, strategy, task, init, dataset_fn_at, meta["num_examples"], log)
    file_io.makedirs(run.model_dir)
    if run.do_eval:
        path, meta, _ = eval_records
        dataset = race_data.race_eval_dataset(path, run.max_seq_length, run.eval_batch_size, meta["num_examples"])
        outcome["best"] = evaluate_checkpoints(run, strategy, task, dataset, _score_fn(task),
                                               ("loss", "accuracy", "accuracy_middle", "accuracy_high"), log,
                                               keep=("label", "is_high_example"))
    if run.do_predict:
        path, meta, examples = prepare_race_records(run, tokenizer, run.eval_split, log)
        _, prefix = best_checkpoint(run.model_dir)
        dataset = race_data.race_eval_dataset(path, run.max_seq_length, run.eval_batch_size, meta["num_examples"])
        outcome["predictions"] = _write_predictions(run, run.eval_split, predict_logits(strategy, task, prefix,
                                                                                        dataset), examples, log)
    return outcome
