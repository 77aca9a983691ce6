"""The pretraining job behind `python -m funnel_tfm.pretrain`: plain settings in, a trained model out.

    run = PretrainRun(record_dir=["records"], tokenizer_path="vocab.txt", seq_len=128, num_predict=20,
                      model_dir="runs/mlm", model_config=named_config("B4-4-4H768"), loss_type="mlm")
    run_pretraining(run)      # resumes from run.model_dir's latest checkpoint when there is one

A restarted job resumes from the latest checkpoint in `model_dir` (weights, optimizer, step, loss scale,
dropout RNG and input position). `init_checkpoint` starts a new run from any checkpoint `convert` reads (a
FULL original ELECTRA checkpoint continues with its generator and, with `init_global_vars`, its Adam slots
and global_step). At the end the backbone (with heads and generator) is exported to `model_dir/export`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import keras
import tensorflow as tf

from funnel_tfm.checkpoints.assign import assign_by_name
from funnel_tfm.checkpoints.loading import export
from funnel_tfm.config import ModelConfig, load_config
from funnel_tfm.data.input_func_builder import MaskingIds, first_record_ids, pretrain_input_fn, record_files
from funnel_tfm.data.tokenization import Tokenizer
from funnel_tfm.modeling import FunnelTFM
from funnel_tfm.tasks import build_pretraining_task
from funnel_tfm.training.checkpointing import TrainingCheckpoints
from funnel_tfm.training.optimization import AdamW, DynamicLossScale, WarmupDecay
from funnel_tfm.training.strategy import is_chief, make_strategy
from funnel_tfm.training.summaries import write_scalars
from funnel_tfm.training.trainer import Trainer


@dataclasses.dataclass(frozen=True)
class PretrainRun:
    """Every setting of a pretraining run (the flags of `funnel_tfm.pretrain`, same names and defaults)."""

    record_dir: list[str]
    tokenizer_path: str
    seq_len: int
    num_predict: int
    model_dir: str
    model_config: ModelConfig | None = None   # None: the init checkpoint's config, else B4-4-4H768
    uncased: bool = True
    sample_strategy: str = "single_token"
    num_passes: int = 1
    shuffle_buffer: int = 20480
    input_sharding: str = "files"
    loss_type: str = "mlm"
    width_shrink: float = 0.25
    disc_coeff: float = 50.0
    init_checkpoint: str | None = None
    init_global_vars: bool = True
    learning_rate: float = 1e-5
    warmup_steps: int = 0
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
    train_batch_size: int = 60
    train_steps: int = 100000
    iterations: int = 1000
    save_steps: int = 10000
    max_save: int = 5
    strategy: str = "one_device"
    tpu: str | None = None
    num_cpu_devices: int = 0
    precision: str = "float32"
    jit_compile: bool = True
    deterministic: bool = False
    seed: int = 0
    export_format: str = "keras"


def _configure_devices(run: PretrainRun) -> None:
    if run.num_cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] *
                                                   run.num_cpu_devices)
    if run.deterministic:
        tf.config.experimental.enable_op_determinism()


def _model_config(run: PretrainRun, init) -> ModelConfig:
    """--model_config (with per-key overrides), else the config of --init_checkpoint, else B4-4-4H768."""
    if run.model_config is not None:
        return run.model_config
    return init.config if init is not None else load_config("B4-4-4H768")


def _initialize_from(run: PretrainRun, init, task, optimizer, trainer) -> str:
    """Assigns the weights of `init` (a FunnelCheckpoint) by original name; returns a one-line summary."""
    view = task.checkpoint_view()
    targets = {n: v for n, v in view.named_variables().items() if n not in view.report.missing}  # trained ones
    result = assign_by_name(targets, init.state(), run.init_checkpoint, where="the model being trained")
    missing, unused = result.missing, result.unused
    summary = f"initialized {len(result.assigned)} weights from {run.init_checkpoint}"
    if missing:
        summary += f"; {len(missing)} left at init (e.g. {', '.join(missing[:3])})"
    if unused:
        summary += f"; {len(unused)} unused (e.g. {', '.join(unused[:3])})"
    if run.init_global_vars and init.optimizer_state:
        restored = optimizer.load_slot_state(init.optimizer_state, run.init_checkpoint)
        if "global_step" in init.optimizer_state:
            trainer.step.assign(int(init.optimizer_state["global_step"]))
        summary += f"; restored {len(restored)} optimizer values (Adam slots, global_step)"
    return summary


def _format_progress(run: PretrainRun, step: int, means: dict, tokens_per_second: float) -> str:
    short = {"generator_loss": "gen", "generator_accuracy": "gen_acc", "discriminator_loss": "disc",
             "discriminator_accuracy": "disc_acc", "mlm_loss": None, "mlm_accuracy": "acc", "loss": "loss",
             "replaced_recall": None, "real_ratio": None}
    cells = [f"step {step:>7d}/{run.train_steps}"]
    for key, label in short.items():
        if label and key in means:
            cells.append(f"{label} {means[key]:.4f}")
    cells += [f"lr {means['learning_rate']:.2e}", f"gnorm {means['grad_norm']:.3f}",
              f"{tokens_per_second:,.0f} tok/s", f"skipped {int(means['skipped_steps'])}"]
    return " | ".join(cells)


def pretraining_input_fn(run: PretrainRun, config: ModelConfig, special: MaskingIds, per_replica_batch: int,
                         start_step: int = 0):
    """The input pipeline for `config`: with `truncate_seq` and `separate_cls`, the last `pooling_size **
    (n_block - 1)` tokens of each example become [SEP] [PAD]... so that the truncated pooling keeps the real
    tokens (semantics D5; the original hard-coded a pooling size of 2 here, we use the config's)."""
    return pretrain_input_fn(run.record_dir, run.seq_len, per_replica_batch, run.num_predict, special,
                             run.sample_strategy, run.uncased, num_passes=run.num_passes, seed=run.seed,
                             stride=config.total_stride, truncate_seq=config.truncate_seq and config.separate_cls,
                             shuffle_buffer=run.shuffle_buffer, start_step=start_step, sharding=run.input_sharding)


def run_pretraining(run: PretrainRun) -> int:
    """Trains, checkpoints and exports as `run` says; returns the exit status (errors are exceptions)."""
    _configure_devices(run)
    # The strategy first: MultiWorkerMirroredStrategy must configure collectives before TensorFlow runs any op.
    strategy = make_strategy(run.strategy, run.tpu)
    tokenizer = Tokenizer.from_file(run.tokenizer_path, uncased=run.uncased)
    special = MaskingIds.from_tokenizer(tokenizer)
    init = FunnelTFM.load_checkpoint(run.init_checkpoint) if run.init_checkpoint else None
    config = _model_config(run, init)
    config.block_lengths(run.seq_len)  # a ConfigError that states the rule
    if config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"the model's vocab_size is {config.vocab_size} but {run.tokenizer_path} has "
                         f"{tokenizer.vocab_size} tokens (pass --vocab_size={tokenizer.vocab_size} or another config)")
    files, num_examples = record_files(run.record_dir, "train", run.seq_len, run.uncased, run.num_passes)
    largest = int(first_record_ids(files, run.seq_len).max())
    if largest >= config.vocab_size:
        raise ValueError(f"{files[0]} holds token id {largest}, but the model's vocab_size is {config.vocab_size}: "
                         f"the records were written with another vocabulary")

    replicas = strategy.num_replicas_in_sync
    if run.train_batch_size % replicas:
        raise ValueError(f"--train_batch_size={run.train_batch_size} is not divisible by the {replicas} replicas")
    keras.utils.set_random_seed(run.seed)  # the initial weights
    with strategy.scope():
        task = build_pretraining_task(config, run.loss_type, run.width_shrink, run.disc_coeff, dtype=run.precision)
        schedule = WarmupDecay(run.learning_rate, run.warmup_steps, run.train_steps, run.decay_method,
                               run.min_lr_ratio, run.poly_power)
        loss_scale = DynamicLossScale() if run.precision == "mixed_float16" else None
        optimizer = AdamW(task.trainable_variables(), schedule, weight_decay=run.weight_decay,
                          beta1=run.adam_beta1, beta2=run.adam_beta2, epsilon=run.adam_epsilon,
                          adam_correction=run.adam_correction, clip_norm=run.clip,
                          lr_layer_decay_rate=run.lr_layer_decay_rate, use_wd_exclusion=run.use_wd_exclusion,
                          loss_scale=loss_scale)
        trainer = Trainer(strategy, task, optimizer, run.train_batch_size, seed=run.seed,
                          jit_compile=run.jit_compile)
        input_offset = tf.Variable(0, dtype=tf.int64, trainable=False, name="input_offset",
                                   aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    chief = is_chief(strategy)
    # input_offset: steps not read from these records (those of a continued original run)
    saver = TrainingCheckpoints(trainer, run.model_dir, max_to_keep=run.max_save,
                                extra={"input_offset": input_offset})
    log = (lambda line: print(line, flush=True)) if chief else (lambda line: None)

    n_params = sum(int(v.shape.num_elements()) for v in optimizer.variables_)
    restored = saver.restore_latest()
    if restored:
        log(f"resumed from {restored} at step {trainer.current_step()}")
    elif init is not None:
        log(_initialize_from(run, init, task, optimizer, trainer))
        input_offset.assign(trainer.current_step())
    log(f"{run.loss_type.lower()} pretraining: {n_params:,} trainable parameters, {num_examples:,} examples in "
        f"{len(files)} files, {replicas} replica(s) on {run.strategy}, global batch {run.train_batch_size} x "
        f"{run.seq_len}, {run.precision}{', XLA' if run.jit_compile else ''}")

    start = trainer.current_step()
    dataset_fn = pretraining_input_fn(run, config, special, run.train_batch_size // replicas,
                                      start_step=start - int(input_offset.numpy()))
    iterator = trainer.distribute(dataset_fn)
    writer = tf.summary.create_file_writer(os.path.join(run.model_dir, "train")) if chief else None
    metrics_path = os.path.join(run.model_dir, "metrics.jsonl")
    save_steps = run.save_steps if run.save_steps > 0 else run.train_steps
    step = start
    while step < run.train_steps:
        next_save = (step // save_steps + 1) * save_steps
        count = min(run.iterations, run.train_steps - step, next_save - step)
        began = time.perf_counter()
        means = trainer.run_steps(iterator, count)
        elapsed = time.perf_counter() - began
        step = trainer.current_step()
        tokens_per_second = count * run.train_batch_size * run.seq_len / elapsed
        means.update(tokens_per_second=tokens_per_second, steps_per_second=count / elapsed)
        log(_format_progress(run, step, means, tokens_per_second))
        if chief:
            write_scalars(writer, step, {k: v for k, v in means.items() if not k.endswith("per_second")})
            write_scalars(writer, step, {k: v for k, v in means.items() if k.endswith("per_second")}, "throughput")
            with tf.io.gfile.GFile(metrics_path, "a") as handle:
                handle.write(json.dumps({"step": step, **means}) + "\n")
        if step % save_steps == 0 or step >= run.train_steps:
            path = saver.save()
            log(f"saved {path}")

    if chief:
        view = task.checkpoint_view()
        view.optimizer_state = optimizer.slot_state() if run.export_format == "original" else {}
        export_dir = os.path.join(run.model_dir, "export")
        report = export(view, export_dir, to=run.export_format, overwrite=True)
        log(f"exported {report.written} weights ({run.export_format}) to {export_dir}")
    return 0
