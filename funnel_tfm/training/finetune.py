"""The phases every finetuning job shares: train a task, evaluate every checkpoint, keep the best, predict.

    train_task(run, strategy, task, init, lambda start: train_input_fn(..., start_step=start), 8453, log)
    best = evaluate_checkpoints(run, strategy, task, eval_dataset(...), score, ("loss", "accuracy"), log)
    step, prefix = best_checkpoint(run.model_dir)
    logits = predict_logits(strategy, task, prefix, dataset)

`run` is a job's settings object (`ClassifierRun`, `RaceRun`, ...): they share the original's flag names
(`train_batch_size`, `train_steps`, `model_dir`, `eval_split`, `eval_all_ckpt`, `retain_best`, ...). A job
supplies only what is its own: the input streams and `score(outputs, step) -> {"loss", metrics..., "main"}`.

The backbone may be FNet (an FNet --model_config or --init_checkpoint: a transformers FNet directory, ours, or an
FNet pretraining run). FNet and Fourier blocks mix pad tokens, so such a model is trained and used at one padded
length: `model_config_and_init` refuses a --max_seq_length other than the one `run_record.json` holds from training.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from funnel_tfm import file_io
from funnel_tfm.checkpoints.loading import FunnelCheckpoint
from funnel_tfm.config import ModelConfig
from funnel_tfm.config_fnet import FNetConfig, load_any_config
from funnel_tfm.modeling import FunnelTFM
from funnel_tfm.tasks.backbones import (check_length, export_view, is_fnet_checkpoint, load_fnet_checkpoint,
                                       mixes_padding)
from funnel_tfm.errors import CheckpointError
from funnel_tfm.tasks.base import Task
from funnel_tfm.training.checkpointing import TrainingCheckpoints
from funnel_tfm.training.evaluation import CheckpointEvaluator, mark_done, saved_checkpoints, watch_checkpoints
from funnel_tfm.training.loop import TrainingSettings, build_optimizer, initialize_from, train_loop
from funnel_tfm.training.pretrain_dir import is_pretraining_run, restore_pretraining_task
from funnel_tfm.training.run_dir import PRETRAIN_OBJECTIVE
from funnel_tfm.training import run_dir
from funnel_tfm.training.run_dir import NET_CONFIG, RUN_RECORD, best_checkpoint  # noqa: F401  (re-exported)
from funnel_tfm.training.strategy import is_chief
from funnel_tfm.training.summaries import write_scalars
from funnel_tfm.training.trainer import Trainer



@dataclasses.dataclass(frozen=True, kw_only=True)
class FinetuneRun(TrainingSettings):
    """The settings every finetuning job has (the original's flag names and defaults); jobs add their own."""

    data_dir: str
    output_dir: str
    model_dir: str
    tokenizer_path: str
    uncased: bool = True
    model_config: ModelConfig | FNetConfig | None = None   # None: the init checkpoint's config
    init_checkpoint: str | None = None
    init_global_vars: bool = False
    max_seq_length: int = 128
    overwrite_data: bool = False
    shuffle_examples: bool = True
    shuffle_buffer: int = 2048
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False
    eval_split: str = "dev"
    eval_all_ckpt: bool = True
    eval_start_step: int = -1
    eval_end_step: int = 10000000
    eval_poll_secs: float = 60.0
    retain_best: bool = False
    retain_all: bool = False
    train_steps: int = 40000
    num_train_epochs: float | None = None     # overrides train_steps when given
    train_batch_size: int = 128
    gradient_accumulation_steps: int = 1      # micro-batches per step: the batch of a TPU on a 16 GB GPU
    eval_batch_size: int = 8
    warmup_proportion: float | None = None    # overrides warmup_steps when given
    save_steps: int | None = None             # None / 0: only at the end
    max_save: int = 0                         # 0: keep every checkpoint (each is evaluated)


def with_schedule(run: Any, num_examples: int) -> Any:
    """`run` with `train_steps` from `num_train_epochs` and `warmup_steps` from `warmup_proportion`, when given
    (the epoch and proportion forms override the step forms)."""
    if run.num_train_epochs:
        run = dataclasses.replace(run, train_steps=max(1, int(run.num_train_epochs * num_examples
                                                              / run.train_batch_size)))
    if run.warmup_proportion is not None:
        run = dataclasses.replace(run, warmup_steps=int(run.warmup_proportion * run.train_steps))
    return run


def shuffled_for_training(run: FinetuneRun, examples: list, split: str) -> list:
    """The training examples in one seeded order (the original shuffled once, unseeded); others as they are."""
    if split != "train" or not run.shuffle_examples:
        return examples
    return [examples[i] for i in np.random.default_rng(run.seed).permutation(len(examples))]


def cached_records(path: str, settings: dict[str, Any], overwrite: bool, write: Callable[[], dict[str, Any]],
                   what: str, log: Callable[[str], None]) -> dict[str, Any]:
    """The meta of the records at `path`: reused when they were written with the same `settings`, refused when
    with others (unless `overwrite`), else written by `write()`."""
    meta_file = path.replace("tfrecord", "meta.json")
    if not overwrite and file_io.exists(path) and file_io.exists(meta_file):
        with file_io.open_file(meta_file) as handle:
            meta = json.load(handle)
        if meta.get("settings") not in (None, settings):
            changed = sorted(k for k in settings if meta["settings"].get(k) != settings[k])
            raise ValueError(f"{path} was written with other settings ({', '.join(changed)}); pass --overwrite_data "
                             f"or another --output_dir")
        log(f"reusing {meta['num_examples']:,} {what} from {path}")
        return meta
    return write()


def load_init_checkpoint(path: str, use_decoder: bool = False) -> FunnelCheckpoint:
    """What --init_checkpoint names: any checkpoint `convert` reads, a pretraining --model_dir (its export, else
    its latest training checkpoint, read through the pretraining task it was written by) or one of that run's
    `ckpt-<step>` prefixes (e.g. `load_init_checkpoint("runs/mlm/ckpt-300")`), Funnel or FNet
    (a transformers FNet directory, ours, an FNet pretraining run). `use_decoder`: build the decoder too (SQuAD
    and tagging read the full-length output); its weights come when present. FNet has no decoder."""
    # One `ckpt-<step>` of a run, e.g. a pretraining run's earlier step (the original's `model.ckpt` prefix is a
    # checkpoint `convert` reads, below).
    if re.fullmatch(r"ckpt-\d+", os.path.basename(path)) and file_io.exists(path + ".index"):
        run_dir = os.path.dirname(path)
        if not is_pretraining_run(run_dir):
            raise CheckpointError(f"{path}: a training checkpoint of {run_dir or '.'}, which is not a pretraining run "
                                  f"(no {PRETRAIN_OBJECTIVE}); give the run directory of a finetuned model to "
                                  f"--model_dir, or an exported checkpoint to --init_checkpoint")
        return restore_pretraining_task(run_dir, path)[0].checkpoint_view()
    export_dir = os.path.join(path, "export")
    if os.path.isdir(export_dir):
        return _load_exported(export_dir, use_decoder)
    checkpoints = saved_checkpoints(path)
    if checkpoints and is_pretraining_run(path):
        return restore_pretraining_task(path)[0].checkpoint_view()
    if checkpoints and not file_io.exists(os.path.join(path, "funnel_config.json")):
        raise CheckpointError(f"{path}: training checkpoints, but neither an export nor {PRETRAIN_OBJECTIVE} (the "
                              f"settings of the pretraining run that wrote them)")
    return _load_exported(path, use_decoder)


def _load_exported(path: str, use_decoder: bool) -> FunnelCheckpoint:
    """A checkpoint directory: FNet's (transformers' or ours) or any format `convert` reads."""
    if is_fnet_checkpoint(path):
        return load_fnet_checkpoint(path)
    return FunnelTFM.load_checkpoint(path, use_decoder=use_decoder)


def check_training_length(run: Any, config: ModelConfig | FNetConfig) -> None:
    """A ValueError when a model that mixes pad tokens (FNet, Fourier blocks) would be used at another
    --max_seq_length than it was trained at (model_dir/run_record.json).

    An error, not a warning: such a model's outputs for the real tokens change with the padded length (fnet
    semantics N7), so scores at another length are quietly wrong, and the fix (the training length) is known.
    Attention-only Funnels mask pads and may be used at any length the config pools.
    """
    path = os.path.join(run.model_dir, RUN_RECORD)
    if not mixes_padding(config) or not file_io.exists(path):
        return
    with file_io.open_file(path) as handle:
        trained = json.load(handle).get("max_seq_length")
    if trained is not None and int(trained) != run.max_seq_length:
        raise ValueError(f"--max_seq_length={run.max_seq_length}, but {path} says this model was trained at "
                         f"max_seq_length {trained}: its token mixing is a Fourier transform over every position, "
                         f"pads included, so its outputs hold only at the padded length it was trained with; pass "
                         f"--max_seq_length={trained}")


def model_config_and_init(run: FinetuneRun, vocab_size: int, use_decoder: bool = False
                          ) -> tuple[ModelConfig | FNetConfig, FunnelCheckpoint | None]:
    """The model's config (--model_config, else the init checkpoint's, else model_dir's) and the init checkpoint;
    errors for a length the config cannot take or (`check_training_length`) was not trained at."""
    init = load_init_checkpoint(run.init_checkpoint, use_decoder) if run.init_checkpoint else None
    if run.model_config is not None:
        config = run.model_config
        if init is not None and init.config.to_dict() != config.to_dict():
            differing = sorted(k for k, v in config.to_dict().items() if init.config.to_dict().get(k) != v)
            raise CheckpointError(f"{run.init_checkpoint} does not fit --model_config: {', '.join(differing)} differ")
    elif init is not None:
        config = init.config
    elif file_io.exists(os.path.join(run.model_dir, NET_CONFIG)):
        config = load_any_config(os.path.join(run.model_dir, NET_CONFIG))  # an evaluation of an earlier training run
    else:
        raise ValueError("no model: give --init_checkpoint or --model_config (or a --model_dir that holds the "
                         f"{NET_CONFIG} of a training run)")
    check_length(config, run.max_seq_length)  # a ConfigError that states the rule
    check_training_length(run, config)
    if config.vocab_size != vocab_size:
        raise ValueError(f"the model's vocab_size is {config.vocab_size} but {run.tokenizer_path} has "
                         f"{vocab_size} tokens")
    return config, init




def train_task(run: Any, strategy: tf.distribute.Strategy, task: Task, init: Any,
               dataset_fn_at: Callable[[int], Callable], num_examples: int, log: Callable[[str], None]) -> None:
    """Trains `task` to `run.train_steps` (resuming from `run.model_dir`, else from `init`), then marks `done`.
    `dataset_fn_at(step)` is the per-replica input function that starts at `step` (exact resumption)."""
    replicas = strategy.num_replicas_in_sync
    if run.train_batch_size % replicas:
        raise ValueError(f"--train_batch_size={run.train_batch_size} is not divisible by the {replicas} replicas")
    with strategy.scope():
        optimizer = build_optimizer(task, run)
        trainer = Trainer(strategy, task, optimizer, run.train_batch_size, seed=run.seed, jit_compile=run.jit_compile,
                          accumulation_steps=run.gradient_accumulation_steps)
    saver = TrainingCheckpoints(trainer, run.model_dir, max_to_keep=run.max_save or None)
    restored = saver.restore_latest()
    if restored:
        log(f"resumed from {restored} at step {trainer.current_step()}")
    elif init is not None:
        log(initialize_from(init, task, optimizer, trainer, run.init_checkpoint, run.init_global_vars))
    else:
        log("no --init_checkpoint: training from random initialisation")
    n_params = sum(int(v.shape.num_elements()) for v in optimizer.variables_)
    log(f"{task.model.scope} finetuning: {n_params:,} trainable parameters, {num_examples:,} examples, "
        f"{replicas} replica(s) on {run.strategy}, batch {run.train_batch_size} x {run.max_seq_length}"
        f"{f' in {run.gradient_accumulation_steps} micro-batches' if run.gradient_accumulation_steps > 1 else ''}, "
        f"{run.train_steps} steps, {run.precision}{', XLA' if run.jit_compile else ''}")

    def progress(step: int, means: dict) -> str:
        cells = [f"step {step:>6d}/{run.train_steps}", f"loss {means['loss']:.4f}"]
        if "accuracy" in means:
            cells.append(f"acc {means['accuracy']:.4f}")
        cells += [f"lr {means['learning_rate']:.2e}", f"gnorm {means['grad_norm']:.3f}",
                  f"{means['examples_per_second']:,.1f} ex/s"]
        return " | ".join(cells)

    iterator = trainer.distribute(dataset_fn_at(trainer.current_step()))
    train_loop(trainer, saver, iterator, run, progress, run.train_batch_size, chief=is_chief(strategy), log=log)
    if is_chief(strategy):
        mark_done(run.model_dir)


def evaluate_checkpoints(run: Any, strategy: tf.distribute.Strategy, task: Task, dataset: tf.data.Dataset,
                         score: Callable[[dict[str, np.ndarray], int], dict[str, Any]], reported: tuple[str, ...],
                         log: Callable[[str], None], keep: tuple[str, ...] = ("label",),
                         main_name: str = "accuracy") -> dict[str, Any] | None:
    """Every checkpoint of `run.model_dir` in step order (waiting for new ones until `done`), or only the latest
    without `run.eval_all_ckpt`; results to `eval/<split>/results.jsonl`, TensorBoard `eval/*` and
    `best_result.json`. `score(outputs, step)` gives the metrics and `main` (the `main_name` metric the best
    checkpoint is chosen by); returns the best result."""
    evaluator = CheckpointEvaluator(strategy, task.trackables())
    eval_dir = run_dir.eval_dir(run.model_dir, run.eval_split)
    file_io.makedirs(eval_dir)
    writer = tf.summary.create_file_writer(eval_dir)
    results_path = os.path.join(eval_dir, "results.jsonl")
    earlier = earlier_results(results_path)  # a restarted evaluation does not redo (or repeat) a checkpoint
    best = max(earlier.values(), key=lambda r: r["main"], default=None)
    if run.eval_all_ckpt:
        checkpoints = watch_checkpoints(run.model_dir, run.eval_poll_secs, run.eval_start_step, run.eval_end_step)
    else:
        checkpoints = saved_checkpoints(run.model_dir)[-1:]
        if not checkpoints:
            raise CheckpointError(f"{run.model_dir}: no checkpoint to evaluate")
    for step, prefix in checkpoints:
        if step in earlier:
            continue
        evaluator.restore(prefix)
        outputs = evaluator.predict(task.model, dataset, keep=keep)
        result = {"step": step, "path": prefix, "split": run.eval_split,
                  "num_examples": len(outputs["example_index"]),
                  **score(outputs, step)}
        log(f"eval {run.eval_split} step {step}: " + " | ".join(f"{k} {result[k]:.4f}" for k in reported))
        with tf.io.gfile.GFile(results_path, "a") as handle:
            handle.write(json.dumps(result) + "\n")
        write_scalars(writer, step, {k: result[k] for k in reported}, group="eval")
        if best is None or result["main"] > best["main"]:
            best = result
            run_dir.write_best_result(run.model_dir, best)
    if best is None:
        log(f"no checkpoint to evaluate in {run.model_dir}")
        return None
    log(f"best {main_name} {best['main']:.4f} at step {best['step']} ({best['path']})")
    if run.retain_best:
        retain_best(run, task, evaluator, best, log)
    return best


def earlier_results(path: str) -> dict[int, dict[str, Any]]:
    """Step -> result of the checkpoints already evaluated into `path` (empty when there is none)."""
    if not file_io.exists(path):
        return {}
    with file_io.open_file(path) as handle:
        return {row["step"]: row for row in map(json.loads, filter(str.strip, handle))}


def retain_best(run: Any, task: Task, evaluator: CheckpointEvaluator, best: dict[str, Any],
                log: Callable[[str], None]) -> None:
    """Keeps (and exports) the best checkpoint; deletes the other evaluated ones unless `run.retain_all`."""
    evaluator.restore(best["path"])
    export_dir = os.path.join(run.model_dir, "export")
    written = export_view(task.checkpoint_view(), export_dir)
    log(f"exported the best checkpoint (step {best['step']}, {written}) to {export_dir}")
    if run.retain_all:
        return
    # The latest checkpoint stays too: a training process may still resume from it.
    latest = saved_checkpoints(run.model_dir)[-1][1]
    for _, prefix in saved_checkpoints(run.model_dir):
        if prefix not in (best["path"], latest):
            for name in tf.io.gfile.glob(prefix + ".*"):
                tf.io.gfile.remove(name)


def predict_outputs(strategy: tf.distribute.Strategy, task: Task, prefix: str, dataset: tf.data.Dataset,
                    keep: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The model's outputs (and `keep` inputs) for every real example of `dataset`, in order, with the weights
    of checkpoint `prefix`."""
    evaluator = CheckpointEvaluator(strategy, task.trackables())
    evaluator.restore(prefix)
    return evaluator.predict(task.model, dataset, keep=keep)


def predict_logits(strategy: tf.distribute.Strategy, task: Task, prefix: str, dataset: tf.data.Dataset) -> np.ndarray:
    """The logits of every real example of `dataset`, in order, with the weights of checkpoint `prefix`."""
    return predict_outputs(strategy, task, prefix, dataset)["logits"]
