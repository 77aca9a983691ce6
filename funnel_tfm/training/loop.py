"""What every training job shares: devices, the optimizer from run settings, initialisation from a
checkpoint, and the host loop (steps per call, progress, TensorBoard, metrics.jsonl, checkpoints).

    configure_devices(run.num_cpu_devices, run.deterministic)
    optimizer = build_optimizer(task, run)          # run: any settings object with the optimizer fields
    log(initialize_from(init, task, optimizer, trainer, run.init_checkpoint, init_global_vars=False))
    train_loop(trainer, saver, iterator, run, format_progress, examples_per_step=run.train_batch_size)

The settings objects (`PretrainRun`, `ClassifierRun`, ...) share the optimizer and loop field names of the
original's flags (`learning_rate`, `warmup_steps`, ..., `train_steps`, `iterations`, `save_steps`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable

import tensorflow as tf

from funnel_tfm.checkpoints.assign import assign_by_name
from funnel_tfm.checkpoints.loading import matched_head_state
from funnel_tfm.tasks.base import Task
from funnel_tfm.training import run_dir
from funnel_tfm.training.checkpointing import TrainingCheckpoints
from funnel_tfm.training.optimization import AdamW, DynamicLossScale, WarmupDecay
from funnel_tfm.training.summaries import write_scalars
from funnel_tfm.training.trainer import Trainer


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainingSettings:
    """The original's optimization flags (semantics P6-P9) and how a run is executed, same names and defaults;
    every run settings class (`PretrainRun`, `FinetuneRun`, ...) inherits them."""

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
    iterations: int = 1000
    strategy: str = "one_device"
    tpu: str | None = None
    num_cpu_devices: int = 0
    precision: str = "float32"
    jit_compile: bool = True
    deterministic: bool = False
    seed: int = 0


def configure_devices(num_cpu_devices: int, deterministic: bool) -> None:
    """Split the CPU into logical devices (mirrored on CPU) and switch on op determinism; before any op runs."""
    if num_cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_cpu_devices)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def build_optimizer(task: Task, run: Any) -> AdamW:
    """The original's AdamW with warmup + decay, clipping, layer-wise decay and weight-decay exclusions."""
    schedule = WarmupDecay(run.learning_rate, run.warmup_steps, run.train_steps, run.decay_method,
                           run.min_lr_ratio, run.poly_power)
    loss_scale = DynamicLossScale() if run.precision == "mixed_float16" else None
    return AdamW(task.trainable_variables(), schedule, weight_decay=run.weight_decay, beta1=run.adam_beta1,
                 beta2=run.adam_beta2, epsilon=run.adam_epsilon, adam_correction=run.adam_correction,
                 clip_norm=run.clip, lr_layer_decay_rate=run.lr_layer_decay_rate,
                 use_wd_exclusion=run.use_wd_exclusion, loss_scale=loss_scale)


def initialize_from(init: Any, task: Task, optimizer: AdamW, trainer: Trainer, source: str,
                    init_global_vars: bool) -> str:
    """Assigns the weights of `init` (a FunnelCheckpoint) by original name; returns a one-line summary of what
    was loaded, left at init and unused (and, with `init_global_vars`, the optimizer state restored). A task head
    takes the checkpoint's head of its kind when it fits, and the summary says which (`matched_head_state`)."""
    view = task.checkpoint_view()
    targets = {n: v for n, v in view.named_variables().items() if n not in view.report.missing}  # trained ones
    state, head_notes = matched_head_state(init, view)
    result = assign_by_name(targets, state, source, where="the model being trained")
    missing, unused = result.missing, result.unused
    summary = f"initialized {len(result.assigned)} weights from {source}"
    if missing:
        summary += f"; {len(missing)} left at init (e.g. {', '.join(missing[:3])})"
    if unused:
        summary += f"; {len(unused)} unused (e.g. {', '.join(unused[:3])})"
    summary += "".join(f"; {note}" for note in head_notes)
    if init_global_vars and init.optimizer_state:
        restored = optimizer.load_slot_state(init.optimizer_state, source)
        if "global_step" in init.optimizer_state:
            trainer.step.assign(int(init.optimizer_state["global_step"]))
        summary += f"; restored {len(restored)} optimizer values (Adam slots, global_step)"
    return summary


def train_loop(trainer: Trainer, saver: TrainingCheckpoints, iterator: Any, run: Any,
               format_progress: Callable[[int, dict], str], examples_per_step: float, chief: bool = True,
               log: Callable[[str], None] = print, throughput_unit: str = "examples") -> None:
    """Runs to `run.train_steps` in host calls of at most `run.iterations` steps, saving every
    `run.save_steps` (0 or None: only at the end); progress lines, TensorBoard `train/*` and metrics.jsonl."""
    writer = tf.summary.create_file_writer(os.path.join(run.model_dir, "train")) if chief else None
    metrics_path = os.path.join(run.model_dir, run_dir.METRICS)
    save_steps = run.save_steps if run.save_steps else run.train_steps
    step = trainer.current_step()
    while step < run.train_steps:
        next_save = (step // save_steps + 1) * save_steps
        count = min(run.iterations, run.train_steps - step, next_save - step)
        began = time.perf_counter()
        means = trainer.run_steps(iterator, count)
        elapsed = time.perf_counter() - began
        step = trainer.current_step()
        means[f"{throughput_unit}_per_second"] = count * examples_per_step / elapsed
        means["steps_per_second"] = count / elapsed
        log(format_progress(step, means))
        if chief:
            write_scalars(writer, step, {k: v for k, v in means.items() if not k.endswith("per_second")})
            write_scalars(writer, step, {k: v for k, v in means.items() if k.endswith("per_second")}, "throughput")
            with tf.io.gfile.GFile(metrics_path, "a") as handle:
                handle.write(json.dumps({"step": step, **means}) + "\n")
        if step % save_steps == 0 or step >= run.train_steps:
            log(f"saved {saver.save()}")
