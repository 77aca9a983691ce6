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
from funnel_tfm.checkpoints.loading import export
from funnel_tfm.config import ModelConfig, load_config
from funnel_tfm.data import classifier_data
from funnel_tfm.data.classifier_records import eval_dataset, read_meta, record_path, train_input_fn, write_features
from funnel_tfm.data.preprocessing import Preprocessor
from funnel_tfm.errors import CheckpointError
from funnel_tfm.modeling import FunnelTFM
from funnel_tfm.tasks.classification import ClassificationTask
from funnel_tfm.tasks.glue_metrics import glue_scores, main_score
from funnel_tfm.training.checkpointing import TrainingCheckpoints
from funnel_tfm.training.evaluation import CheckpointEvaluator, mark_done, saved_checkpoints, watch_checkpoints
from funnel_tfm.training.loop import build_optimizer, configure_devices, initialize_from, train_loop
from funnel_tfm.training.strategy import is_chief, make_strategy
from funnel_tfm.training.summaries import write_scalars
from funnel_tfm.training.trainer import Trainer


@dataclasses.dataclass(frozen=True)
class ClassifierRun:
    """Every setting of a finetuning run (the flags of `funnel_tfm.classifier`, same names and defaults)."""

    task_name: str
    data_dir: str
    output_dir: str
    model_dir: str
    tokenizer_path: str
    uncased: bool = True
    custom: classifier_data.CustomFormat | None = None
    model_config: ModelConfig | None = None   # None: the init checkpoint's config
    init_checkpoint: str | None = None
    init_global_vars: bool = False
    cls_scope: str | None = None
    max_seq_length: int = 128
    overwrite_data: bool = False
    shuffle_examples: bool = True
    shuffle_buffer: int = 2048
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False
    do_submit: bool = False
    eval_split: str = "dev"
    predict_split: str | None = None          # None: eval_split
    eval_all_ckpt: bool = True
    eval_start_step: int = -1
    eval_end_step: int = 10000000
    eval_poll_secs: float = 60.0
    retain_best: bool = False
    retain_all: bool = False
    submit_dir: str | None = None
    train_steps: int = 40000
    num_train_epochs: float | None = None     # overrides train_steps when given
    train_batch_size: int = 128
    eval_batch_size: int = 8
    predict_batch_size: int = 8
    learning_rate: float = 1e-5
    warmup_steps: int = 0
    warmup_proportion: float | None = None    # overrides warmup_steps when given
    decay_method: str = "poly"
    poly_power: float = 1.0
    min_lr_ratio: float = 0.0
    weight_decay: float = 0.0
    use_wd_exclusion: bool = False
    clip: float = 1.0
    lr_layer_decay_rate: float = 1.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.99
    adam_epsilon: float = 1e-6
    adam_correction: bool = True
    iterations: int = 1000
    save_steps: int | None = None             # None / 0: only at the end
    max_save: int = 0                         # 0: keep every checkpoint (each is evaluated)
    strategy: str = "one_device"
    tpu: str | None = None
    num_cpu_devices: int = 0
    precision: str = "float32"
    jit_compile: bool = True
    deterministic: bool = False
    seed: int = 0


# ------------------------------------------------------------------------------------------- features
def _settings(run: ClassifierRun, task: classifier_data.TaskData, split: str) -> dict[str, Any]:
    """What the records of `split` depend on: records made with other settings are not reused."""
    return {"task": task.spec.name, "split": split, "files": task.split_files(split), "uncased": run.uncased,
            "max_seq_length": run.max_seq_length, "tokenizer": os.path.abspath(run.tokenizer_path),
            "labels": list(task.spec.labels), "regression": task.spec.is_regression,
            "shuffled_with_seed": run.seed if (split == "train" and run.shuffle_examples) else None}


def prepare_records(run: ClassifierRun, task: classifier_data.TaskData, preprocessor: Preprocessor, split: str,
                    log: Callable[[str], None]) -> tuple[str, dict[str, Any], list]:
    """(record path, meta, examples) of `split`: written once, reused while the settings are the same."""
    path = record_path(run.output_dir, run.tokenizer_path, run.max_seq_length, split)
    settings = _settings(run, task, split)
    examples = task.examples(split)
    if split == "train" and run.shuffle_examples:
        order = np.random.default_rng(run.seed).permutation(len(examples))  # seeded (the original's was not)
        examples = [examples[i] for i in order]
    meta = None if run.overwrite_data else read_meta(path)
    if meta is not None:
        if meta.get("settings") not in (None, settings):
            changed = sorted(k for k in settings if meta["settings"].get(k) != settings[k])
            raise ValueError(f"{path} was written with other settings ({', '.join(changed)}); "
                             f"pass --overwrite_data or another --output_dir")
        log(f"reusing {meta['num_examples']:,} {split} examples from {path}")
        return path, meta, examples
    meta = write_features(examples, task.spec.labels, task.spec.is_regression, preprocessor, path, settings, log=log)
    return path, meta, examples


# ------------------------------------------------------------------------------------------- model
def resolve_init_checkpoint(path: str) -> str:
    """A pretraining --model_dir means its export; anything else is passed to the checkpoint readers."""
    export_dir = os.path.join(path, "export")
    if os.path.isdir(path) and os.path.isdir(export_dir):
        return export_dir
    if os.path.isdir(path) and saved_checkpoints(path) and not any(
            os.path.exists(os.path.join(path, name)) for name in ("funnel_config.json", "config.json",
                                                                  "net_config.json")):
        raise CheckpointError(f"{path}: a training directory without an export; finish the run (it exports to "
                              f"{export_dir}) or pass a checkpoint directory")
    return path


def _config_and_init(run: ClassifierRun, preprocessor: Preprocessor):
    init = FunnelTFM.load_checkpoint(resolve_init_checkpoint(run.init_checkpoint), use_decoder=False) \
        if run.init_checkpoint else None
    if run.model_config is not None:
        config = run.model_config
        if init is not None and init.config.to_dict() != config.to_dict():
            differing = sorted(k for k, v in config.to_dict().items() if init.config.to_dict().get(k) != v)
            raise CheckpointError(f"{run.init_checkpoint} does not fit --model_config: {', '.join(differing)} differ")
    elif init is not None:
        config = init.config
    elif file_io.exists(os.path.join(run.model_dir, NET_CONFIG)):
        config = load_config(os.path.join(run.model_dir, NET_CONFIG))  # an evaluation of an earlier training run
    else:
        raise ValueError("no model: give --init_checkpoint or --model_config (or a --model_dir that holds the "
                         f"{NET_CONFIG} of a training run)")
    config.block_lengths(run.max_seq_length)  # a ConfigError that states the rule
    if config.vocab_size != preprocessor.tokenizer.vocab_size:
        raise ValueError(f"the model's vocab_size is {config.vocab_size} but {run.tokenizer_path} has "
                         f"{preprocessor.tokenizer.vocab_size} tokens")
    return config, init


NET_CONFIG = "net_config.json"  # the original wrote the model's config into model_dir, and so do we


def _head_scope(run: ClassifierRun, spec: classifier_data.TaskSpec) -> str:
    return run.cls_scope or spec.name  # the original's default: the lower-cased task name


# ------------------------------------------------------------------------------------------- phases
def _train(run, strategy, task, config, init, train_path, train_meta, log) -> None:
    replicas = strategy.num_replicas_in_sync
    if run.train_batch_size % replicas:
        raise ValueError(f"--train_batch_size={run.train_batch_size} is not divisible by the {replicas} replicas")
    with strategy.scope():
        optimizer = build_optimizer(task, run)
        trainer = Trainer(strategy, task, optimizer, run.train_batch_size, seed=run.seed, jit_compile=run.jit_compile)
    saver = TrainingCheckpoints(trainer, run.model_dir, max_to_keep=run.max_save or None)
    restored = saver.restore_latest()
    if restored:
        log(f"resumed from {restored} at step {trainer.current_step()}")
    elif init is not None:
        log(initialize_from(init, task, optimizer, trainer, run.init_checkpoint, run.init_global_vars))
    else:
        log("no --init_checkpoint: training from random initialisation")
    n_params = sum(int(v.shape.num_elements()) for v in optimizer.variables_)
    log(f"{task.model.scope} finetuning: {n_params:,} trainable parameters, {train_meta['num_examples']:,} examples, "
        f"{replicas} replica(s) on {run.strategy}, batch {run.train_batch_size} x {run.max_seq_length}, "
        f"{run.train_steps} steps, {run.precision}{', XLA' if run.jit_compile else ''}")
    dataset_fn = train_input_fn(train_path, run.max_seq_length, task.regression, run.train_batch_size // replicas,
                                seed=run.seed, shuffle_buffer=run.shuffle_buffer, start_step=trainer.current_step())

    def progress(step: int, means: dict) -> str:
        cells = [f"step {step:>6d}/{run.train_steps}", f"loss {means['loss']:.4f}"]
        if "accuracy" in means:
            cells.append(f"acc {means['accuracy']:.4f}")
        cells += [f"lr {means['learning_rate']:.2e}", f"gnorm {means['grad_norm']:.3f}",
                  f"{means['examples_per_second']:,.1f} ex/s"]
        return " | ".join(cells)

    train_loop(trainer, saver, trainer.distribute(dataset_fn), run, progress, run.train_batch_size,
               chief=is_chief(strategy), log=log)
    if is_chief(strategy):
        mark_done(run.model_dir)


def _reported_metrics(spec: classifier_data.TaskSpec) -> tuple[str, ...]:
    """GLUE's metrics of the task, and accuracy for every classification task (CoLA's is only Matthews)."""
    extra = () if spec.is_regression or "accuracy" in spec.metrics else ("accuracy",)
    return tuple(spec.metrics) + extra


def _scores(spec: classifier_data.TaskSpec, logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    predictions = logits[:, 0] if spec.is_regression else np.argmax(logits, -1)
    return glue_scores(_reported_metrics(spec), predictions, labels)


def _evaluate(run, strategy, task, spec, path, meta, log) -> dict[str, Any] | None:
    """Every checkpoint (or the last), in step order; returns the best result."""
    evaluator = CheckpointEvaluator(strategy, task.parts())
    eval_dir = os.path.join(run.model_dir, "eval", run.eval_split)
    file_io.makedirs(eval_dir)
    writer = tf.summary.create_file_writer(eval_dir)
    results_path = os.path.join(eval_dir, "results.jsonl")
    earlier = _earlier_results(results_path)  # a restarted evaluation does not redo (or repeat) a checkpoint
    best = max(earlier.values(), key=lambda r: r["main"], default=None)
    if run.eval_all_ckpt:
        checkpoints = watch_checkpoints(run.model_dir, run.eval_poll_secs, run.eval_start_step, run.eval_end_step)
    else:
        checkpoints = saved_checkpoints(run.model_dir)[-1:]
        if not checkpoints:
            raise CheckpointError(f"{run.model_dir}: no checkpoint to evaluate")
    dataset = eval_dataset(path, run.max_seq_length, spec.is_regression, run.eval_batch_size, meta["num_examples"])
    for step, prefix in checkpoints:
        if step in earlier:
            continue
        evaluator.restore(prefix)
        outputs = evaluator.predict(task.model, dataset, keep=("label",))
        scores = _scores(spec, outputs["logits"], outputs["label"])
        per_example = task.per_example_numpy(outputs["logits"], outputs["label"])
        result = {"step": step, "path": prefix, "split": run.eval_split, "num_examples": len(outputs["label"]),
                  "loss": float(per_example.mean()), **scores, "main": main_score(scores, spec.main_metric)}
        log(f"eval {run.eval_split} step {step}: " + " | ".join(f"{k} {result[k]:.4f}"
                                                                 for k in ("loss",) + _reported_metrics(spec)))
        with tf.io.gfile.GFile(results_path, "a") as handle:
            handle.write(json.dumps(result) + "\n")
        write_scalars(writer, step, {k: result[k] for k in ("loss",) + _reported_metrics(spec)}, group="eval")
        if best is None or result["main"] > best["main"]:
            best = result
            file_io.atomic_write_text(os.path.join(run.model_dir, "best_result.json"), json.dumps(best, indent=4))
    if best is None:
        log(f"no checkpoint to evaluate in {run.model_dir}")
        return None
    log(f"best {spec.main_metric} {best['main']:.4f} at step {best['step']} ({best['path']})")
    if run.retain_best:
        _retain_best(run, task, evaluator, best, log)
    return best


def _earlier_results(path: str) -> dict[int, dict[str, Any]]:
    """Step -> result of the checkpoints already evaluated into `path` (empty when there is none)."""
    if not file_io.exists(path):
        return {}
    with file_io.open_file(path) as handle:
        return {row["step"]: row for row in map(json.loads, filter(str.strip, handle))}


def _retain_best(run, task, evaluator, best, log) -> None:
    """Keeps (and exports) the best checkpoint; deletes the other evaluated ones unless --retain_all."""
    evaluator.restore(best["path"])
    export_dir = os.path.join(run.model_dir, "export")
    export(task.checkpoint_view(), export_dir, to="keras", overwrite=True)
    log(f"exported the best checkpoint (step {best['step']}) to {export_dir}")
    if run.retain_all:
        return
    # The latest checkpoint stays too: a training process may still resume from it.
    latest = saved_checkpoints(run.model_dir)[-1][1]
    for _, prefix in saved_checkpoints(run.model_dir):
        if prefix not in (best["path"], latest):
            for name in tf.io.gfile.glob(prefix + ".*"):
                tf.io.gfile.remove(name)


def _best_checkpoint(run) -> tuple[int, str]:
    """The best evaluated checkpoint of `model_dir`, else its latest."""
    best_path = os.path.join(run.model_dir, "best_result.json")
    if file_io.exists(best_path):
        with file_io.open_file(best_path) as handle:
            best = json.load(handle)
        if tf.io.gfile.exists(best["path"] + ".index"):
            return int(best["step"]), best["path"]
    checkpoints = saved_checkpoints(run.model_dir)
    if not checkpoints:
        raise CheckpointError(f"{run.model_dir}: no checkpoint to predict with")
    return checkpoints[-1]


def _label_strings(spec, logits: np.ndarray) -> list[str]:
    if spec.is_regression:
        return [f"{value:.6f}" for value in logits[:, 0]]
    return [spec.labels[i] for i in np.argmax(logits, -1)]


def _predict(run, strategy, task, spec, split, path, meta, examples, log) -> tuple[np.ndarray, list]:
    step, prefix = _best_checkpoint(run)
    evaluator = CheckpointEvaluator(strategy, task.parts())
    evaluator.restore(prefix)
    dataset = eval_dataset(path, run.max_seq_length, spec.is_regression, run.predict_batch_size,
                           meta["num_examples"])
    logits = evaluator.predict(task.model, dataset)["logits"]
    log(f"predicted {len(logits):,} {split} examples with {prefix}")
    return logits, examples


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
    config, init = _config_and_init(run, preprocessor)
    n_class = 1 if spec.is_regression else len(spec.labels)
    keras.utils.set_random_seed(run.seed)  # the head's initial weights
    with strategy.scope():
        task = ClassificationTask.build(config, n_class, scope=_head_scope(run, spec), dtype=run.precision)
    file_io.makedirs(run.model_dir)
    if run.do_train and chief:
        config.to_json(os.path.join(run.model_dir, NET_CONFIG))  # every key: exactly this model
    outcome: dict[str, Any] = {"best": None}

    if run.do_train:
        path, meta, _ = prepare_records(run, task_data, preprocessor, "train", log)
        if run.num_train_epochs:
            run = dataclasses.replace(run, train_steps=max(1, int(run.num_train_epochs * meta["num_examples"]
                                                                  / run.train_batch_size)))
        if run.warmup_proportion is not None:
            run = dataclasses.replace(run, warmup_steps=int(run.warmup_proportion * run.train_steps))
        _train(run, strategy, task, config, init, path, meta, log)
    if run.do_eval:
        path, meta, _ = prepare_records(run, task_data, preprocessor, run.eval_split, log)
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
