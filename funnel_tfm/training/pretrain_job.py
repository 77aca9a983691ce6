"""The pretraining job behind `python -m funnel_tfm.pretrain`: plain settings in, a trained model out.

    run = PretrainRun(record_dir=["records"], tokenizer_path="vocab.txt", seq_len=128, num_predict=20,
                      model_dir="runs/mlm", model_config=named_config("B4-4-4H768"), loss_type="mlm")
    run_pretraining(run)      # resumes from run.model_dir's latest checkpoint when there is one

A restarted job resumes from the latest checkpoint in `model_dir` (weights, optimizer, step, loss scale,
dropout RNG and input position). `init_checkpoint` starts a new run from any checkpoint `convert` reads (a
FULL original ELECTRA checkpoint continues with its generator and, with `init_global_vars`, its Adam slots
and global_step). At the end the backbone (with heads and generator) is exported to `model_dir/export`.

An FNet `model_config` (FNetConfig: FNet-Base, an FNet json) trains FNet with `loss_type` "mlm" or "mlm_nsp"
(FNet's MLM + next-sentence prediction, `tasks/fnet_pretraining.py`); its export is an FNetForPreTraining
directory: transformers' format (`export_format="hf"`) or ours (`"keras"`: fnet_config.json, hybrids too).
"""

from __future__ import annotations

import dataclasses
import os

import keras
import tensorflow as tf

from funnel_tfm import file_io
from funnel_tfm.config import ConfigError, ModelConfig, load_config
from funnel_tfm.config_fnet import FNET_CONFIG_FILE, FNetConfig
from funnel_tfm.data.input_func_builder import (MaskingIds, damaged_record_file, first_record_ids, miscounted_records,
                                                pretrain_input_fn, record_files, records_have_next_sentence_label,
                                                unused_passes)
from funnel_tfm.data.tokenization import Tokenizer
from funnel_tfm.modeling import FunnelTFM
from funnel_tfm.tasks import build_pretraining_task
from funnel_tfm.tasks.backbones import check_length, is_fnet, is_fnet_checkpoint, load_fnet_checkpoint
from funnel_tfm.training import run_dir
from funnel_tfm.training.checkpointing import TrainingCheckpoints
from funnel_tfm.training.pretrain_dir import PRETRAIN_CONFIG, export_pretrained, write_objective
from funnel_tfm.training.loop import TrainingSettings, build_optimizer, configure_devices, initialize_from, train_loop
from funnel_tfm.training.strategy import is_chief, make_strategy
from funnel_tfm.training.trainer import Trainer




@dataclasses.dataclass(frozen=True)
class PretrainRun(TrainingSettings):
    """Every setting of a pretraining run (the flags of `funnel_tfm.pretrain`, same names and defaults)."""

    record_dir: list[str]
    tokenizer_path: str
    seq_len: int
    num_predict: int
    model_dir: str
    model_config: ModelConfig | FNetConfig | None = None   # None: the init checkpoint's config, else B4-4-4H768
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
    train_batch_size: int = 60
    train_steps: int = 100000
    save_steps: int = 10000
    max_save: int = 5
    export_format: str = "keras"


def _model_config(run: PretrainRun, init) -> ModelConfig | FNetConfig:
    """--model_config (with per-key overrides), else the config of --init_checkpoint, else B4-4-4H768."""
    if run.model_config is not None:
        return run.model_config
    return init.config if init is not None else load_config("B4-4-4H768")


def _format_progress(run: PretrainRun, step: int, means: dict, tokens_per_second: float) -> str:
    short = {"generator_loss": "gen", "generator_accuracy": "gen_acc", "discriminator_loss": "disc",
             "discriminator_accuracy": "disc_acc", "mlm_loss": None, "mlm_accuracy": "acc", "loss": "loss",
             "replaced_recall": None, "real_ratio": None, "nsp_loss": "nsp", "nsp_accuracy": "nsp_acc"}
    cells = [f"step {step:>7d}/{run.train_steps}"]
    for key, label in short.items():
        if label and key in means:
            cells.append(f"{label} {means[key]:.4f}")
    cells += [f"lr {means['learning_rate']:.2e}", f"gnorm {means['grad_norm']:.3f}",
              f"{tokens_per_second:,.0f} tok/s", f"skipped {int(means['skipped_steps'])}"]
    return " | ".join(cells)


def pretraining_input_fn(run: PretrainRun, config: ModelConfig | FNetConfig, special: MaskingIds,
                         per_replica_batch: int, start_step: int = 0):
    """The input pipeline for `config`: with `truncate_seq` and `separate_cls`, the last `pooling_size **
    (n_block - 1)` tokens of each example become [SEP] [PAD]... so that the truncated pooling keeps the real
    tokens (semantics D5; the original hard-coded a pooling size of 2 here, we use the config's). FNet pools
    nothing (stride 1); with --loss_type=mlm_nsp the batches carry `next_sentence_label`."""
    fnet = is_fnet(config)
    return pretrain_input_fn(run.record_dir, run.seq_len, per_replica_batch, run.num_predict, special,
                             run.sample_strategy, run.uncased, num_passes=run.num_passes, seed=run.seed,
                             stride=1 if fnet else config.total_stride,
                             truncate_seq=not fnet and config.truncate_seq and config.separate_cls,
                             shuffle_buffer=run.shuffle_buffer, start_step=start_step, sharding=run.input_sharding,
                             next_sentence=run.loss_type.lower() == "mlm_nsp")


def _load_init(path: str):
    """--init_checkpoint: an FNet directory (transformers' or ours) or any checkpoint `convert` reads."""
    return load_fnet_checkpoint(path) if is_fnet_checkpoint(path) else FunnelTFM.load_checkpoint(path)


def _check_fnet_run(run: PretrainRun, config: FNetConfig, files: list[str]) -> None:
    """What an FNet run needs before any work: an export format FNet has, NSP labels in the records."""
    if run.export_format == "original":
        raise ValueError("--export_format=original is the original Funnel's TF1 format; an FNet config exports as "
                         "hf (transformers' FNetForPreTraining) or keras (fnet_config.json + model.safetensors)")
    if run.export_format == "hf":
        config.to_hf_dict()  # a ConfigError now, not after training, for what transformers cannot hold
    if run.loss_type.lower() == "mlm_nsp" and not records_have_next_sentence_label(files):
        raise ValueError(f"{files[0]}: no `label` feature (is B the next segment?), which --loss_type=mlm_nsp "
                         f"trains on; write the records with this project's create_pretrain_data")


def _export(run: PretrainRun, task, optimizer, log) -> None:
    """The trained model to `model_dir/export` in `export_format` (original: with the Adam slots)."""
    slots = optimizer.slot_state() if run.export_format == "original" and not is_fnet(task.model.config) else None
    export_pretrained(task, os.path.join(run.model_dir, "export"), run.export_format,
                      tokenizer=(run.tokenizer_path, run.uncased, run.seq_len), optimizer_state=slots, log=log)


def _check_generator(config: ModelConfig, width_shrink: float) -> None:
    """ELECTRA's generator is the model shrunk by `width_shrink` (truncated, semantics P4): a ConfigError that
    says so when a small model shrinks to nothing (n_head 2 x 0.25 = 0 heads)."""
    try:
        config.generator_config(width_shrink)
    except ConfigError as error:
        raise ConfigError(
            f"--loss_type=electra: the generator is the model with d_model, d_inner and n_head x --width_shrink="
            f"{width_shrink} (truncated): d_model {int(config.d_model * width_shrink)}, d_inner "
            f"{int(config.d_inner * width_shrink)}, n_head {int(config.n_head * width_shrink)}, which is not a "
            f"model ({error}); give the model more width (n_head >= {int(1 / width_shrink + 0.999)}) or a larger "
            f"--width_shrink") from None


def _check_records(files: list[str], run: PretrainRun, tokenizer: Tokenizer, vocab_size: int) -> None:
    """The first record against the vocabulary: [CLS] first, [SEP] last, ids below vocab_size (records written
    with another vocabulary would otherwise train in silence)."""
    ids = first_record_ids(files, run.seq_len)
    largest = int(ids.max())
    if largest >= vocab_size:
        raise ValueError(f"{files[0]} holds token id {largest}, but the model's vocab_size is {vocab_size}: "
                         f"the records were written with another vocabulary")
    if ids[0] != tokenizer.cls_id or ids[-1] != tokenizer.sep_id:
        raise ValueError(f"{files[0]}: its examples start with id {ids[0]} and end with id {ids[-1]}, but "
                         f"[CLS] / [SEP] of {run.tokenizer_path} are {tokenizer.cls_id} / {tokenizer.sep_id}: "
                         f"the records were written with another vocabulary (pass that one as --tokenizer_path)")


def run_pretraining(run: PretrainRun) -> int:
    """Trains, checkpoints and exports as `run` says; returns the exit status (errors are exceptions)."""
    if not 0 < run.num_predict < run.seq_len - 3:  # before any work, and before anything is written
        raise ValueError(f"--num_predict={run.num_predict}: must be in 1..{run.seq_len - 4} (fewer than the "
                         f"--seq_len - 3 = {run.seq_len - 3} text tokens of an example)")
    configure_devices(run.num_cpu_devices, run.deterministic)
    # The strategy first: MultiWorkerMirroredStrategy must configure collectives before TensorFlow runs any op.
    strategy = make_strategy(run.strategy, run.tpu)
    tokenizer = Tokenizer.from_file(run.tokenizer_path, uncased=run.uncased)
    special = MaskingIds.from_tokenizer(tokenizer)
    init = _load_init(run.init_checkpoint) if run.init_checkpoint else None
    config = _model_config(run, init)
    check_length(config, run.seq_len)  # a ConfigError that states the rule
    if config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"the model's vocab_size is {config.vocab_size} but {run.tokenizer_path} has "
                         f"{tokenizer.vocab_size} tokens (pass --vocab_size={tokenizer.vocab_size} or another config)")
    files, num_examples = record_files(run.record_dir, "train", run.seq_len, run.uncased, run.num_passes)
    _check_records(files, run, tokenizer, config.vocab_size)
    miscounted = miscounted_records(run.record_dir, "train", run.seq_len, run.uncased, run.num_passes)
    if miscounted:
        raise ValueError(f"{miscounted[0]}{f' (and {len(miscounted) - 1} more)' if len(miscounted) > 1 else ''}: "
                         f"record files cut short or replaced; copy them again or write the records again with "
                         f"create_pretrain_data")
    if is_fnet(config):
        _check_fnet_run(run, config, files)
    elif run.loss_type.lower() == "electra":
        _check_generator(config, run.width_shrink)

    replicas = strategy.num_replicas_in_sync
    if run.train_batch_size % replicas:
        raise ValueError(f"--train_batch_size={run.train_batch_size} is not divisible by the {replicas} replicas")
    keras.utils.set_random_seed(run.seed)  # the initial weights
    with strategy.scope():
        task = build_pretraining_task(config, run.loss_type, run.width_shrink, run.disc_coeff, dtype=run.precision)
        optimizer = build_optimizer(task, run)
        trainer = Trainer(strategy, task, optimizer, run.train_batch_size, seed=run.seed,
                          jit_compile=run.jit_compile)
        input_offset = tf.Variable(0, dtype=tf.int64, trainable=False, name="input_offset",
                                   aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    chief = is_chief(strategy)
    config_file = FNET_CONFIG_FILE if is_fnet(config) else PRETRAIN_CONFIG
    lock = run_dir.claim(run.model_dir, config, config_file) if chief else None  # noqa: F841  (held to the end)
    if chief:  # what a finetuning run needs to read this directory's training checkpoints before the export
        config.to_json(os.path.join(run.model_dir, config_file))
        write_objective(run.model_dir, {"loss_type": run.loss_type.lower(), "width_shrink": run.width_shrink,
                                        "disc_coeff": run.disc_coeff, "seq_len": run.seq_len,
                                        "tokenizer_path": os.path.abspath(run.tokenizer_path)
                                        if not file_io.is_remote(run.tokenizer_path) else run.tokenizer_path,
                                        "uncased": run.uncased})
    # input_offset: steps not read from these records (those of a continued original run)
    saver = TrainingCheckpoints(trainer, run.model_dir, max_to_keep=run.max_save or None,  # 0: keep all
                                extra={"input_offset": input_offset})
    log = (lambda line: print(line, flush=True)) if chief else (lambda line: None)

    n_params = sum(int(v.shape.num_elements()) for v in optimizer.variables_)
    restored = saver.restore_latest()
    if restored:
        log(f"resumed from {restored} at step {trainer.current_step()}")
    elif init is not None:
        log(initialize_from(init, task, optimizer, trainer, run.init_checkpoint, run.init_global_vars))
        input_offset.assign(trainer.current_step())
    log(f"{run.loss_type.lower()} pretraining: {n_params:,} trainable parameters, {num_examples:,} examples in "
        f"{len(files)} files, {replicas} replica(s) on {run.strategy}, global batch {run.train_batch_size} x "
        f"{run.seq_len}, {run.precision}{', XLA' if run.jit_compile else ''}")
    unused = unused_passes(run.record_dir, "train", run.seq_len, run.uncased, run.num_passes)
    if unused:
        log(f"note: records of pass {', '.join(map(str, unused))} are not read (--num_passes={run.num_passes} reads "
            f"passes below it; --num_passes={unused[-1] + 1} reads them all)")

    start = trainer.current_step()
    dataset_fn = pretraining_input_fn(run, config, special, run.train_batch_size // replicas,
                                      start_step=start - int(input_offset.numpy()))
    iterator = trainer.distribute(dataset_fn)
    progress = lambda step, means: _format_progress(run, step, means, means["tokens_per_second"])  # noqa: E731
    try:
        train_loop(trainer, saver, iterator, run, progress, examples_per_step=run.train_batch_size * run.seq_len,
                   chief=chief, log=log, throughput_unit="tokens")
    except tf.errors.DataLossError:  # its message names no file: find the one that cannot be read
        damaged = damaged_record_file(files)
        if damaged is None:
            raise
        raise ValueError(f"{damaged[0]}: damaged record file ({damaged[1]}); copy it again or write the records "
                         f"again with create_pretrain_data (the checkpoints in {run.model_dir} are kept)") from None

    if chief:
        _export(run, task, optimizer, log)
    return 0
