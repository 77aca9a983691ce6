"""Shared set-up of the pretraining tests: real records, a tiny config, in-process training and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

from funnel_tfm.data import data_fetch
from funnel_tfm.config import ModelConfig
from funnel_tfm.data.input_func_builder import MaskingIds, pretrain_input_fn
from funnel_tfm.training.optimization import AdamW, DynamicLossScale, WarmupDecay
from funnel_tfm.data.pretrain_records import write_task_records
from funnel_tfm.tasks import build_pretraining_task
from funnel_tfm.data.tokenization import Tokenizer
from funnel_tfm.training.trainer import Trainer

SEQ_LEN = 64
NUM_PREDICT = 10
MODEL_FLAGS = {"block_size": "1_1", "decoder_size": "1", "d_model": "64", "d_embed": "64", "n_head": "4",
               "d_head": "16", "d_inner": "128"}


def tiny_pretrain_config(**changes) -> ModelConfig:
    values = {k: (int(v) if k.startswith(("d_", "n_")) else v) for k, v in MODEL_FLAGS.items()}
    return ModelConfig(**{**values, **changes})


def write_records(directory: str, tokenizer: Tokenizer) -> str:
    corpus = data_fetch.sotu_corpus()[:2]
    for task in range(2):
        write_task_records(corpus, tokenizer, directory, SEQ_LEN, task=task, num_task=2, seed=5, log=lambda _: None)
    return directory


def train_in_process(records: str, tokenizer: Tokenizer, loss_type: str, steps: int, batch_size: int = 16,
                     learning_rate: float = 2e-3, precision: str = "float32", gradient_hook=None, config=None,
                     steps_per_call: int = 10, initial_loss_scale: float = 2.0 ** 15, jit_compile: bool = True,
                     schedule_steps: int = 200):
    """Trains on one device; returns (trainer, [metric means per host call])."""
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    config = config or tiny_pretrain_config()
    with strategy.scope():
        task = build_pretraining_task(config, loss_type, dtype=precision)
        loss_scale = DynamicLossScale(initial_loss_scale) if precision == "mixed_float16" else None
        optimizer = AdamW(task.trainable_variables(), WarmupDecay(learning_rate, 10, schedule_steps),
                          loss_scale=loss_scale)
        trainer = Trainer(strategy, task, optimizer, batch_size, gradient_hook=gradient_hook, jit_compile=jit_compile)
    dataset_fn = pretrain_input_fn([records], SEQ_LEN, batch_size, NUM_PREDICT, MaskingIds.from_tokenizer(tokenizer),
                                   stride=2, shuffle_buffer=1000)
    iterator = trainer.distribute(dataset_fn)
    history = []
    while trainer.current_step() < steps:
        history.append(trainer.run_steps(iterator, min(steps_per_call, steps - trainer.current_step())))
    return trainer, history, iterator


def run_pretrain(args: dict, env: dict | None = None, wait: bool = True):
    """Runs `python -m funnel_tfm.pretrain` with `--key=value` args; returns the CompletedProcess (or Popen)."""
    command = [sys.executable, "-m", "funnel_tfm.pretrain"] + [f"--{k}={v}" for k, v in args.items()]
    full_env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    if not wait:
        return subprocess.Popen(command, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=600)


def exported_weights(model_dir: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file
    return load_file(os.path.join(model_dir, "export", "model.safetensors"))
