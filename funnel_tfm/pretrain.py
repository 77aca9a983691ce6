r"""MLM or ELECTRA pretraining from create_pretrain_data records (the original's pretrain.py, spec §4.8-§5).

    python -m funnel_tfm.pretrain --record_dir=records --tokenizer_path=vocab.txt --model_dir=run \
        --model_config=B6-6-6H768 --loss_type=electra --seq_len=512 --num_predict=85 \
        --train_batch_size=256 --train_steps=1000000 --warmup_steps=10000 --learning_rate=1e-4 \
        --strategy=tpu --tpu=local --precision=mixed_bfloat16 --iterations=1000 --save_steps=10000

A restarted job resumes from the latest checkpoint in --model_dir (weights, optimizer, step, loss scale, dropout
RNG and input position). --init_checkpoint starts a new run from any checkpoint `convert` reads (a FULL
original ELECTRA checkpoint continues with its generator and, with --init_global_vars, its Adam slots and
global_step). At the end the backbone (with heads and generator) is exported to --model_dir/export, readable
by FunnelTFM.from_pretrained.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep the progress readable

from absl import app, flags

from funnel_tfm import config_flags  # noqa: F401  (defines --d_model etc.)

FLAGS = flags.FLAGS
# Data.
flags.DEFINE_list("record_dir", None, "Directories of create_pretrain_data records (comma-separated).")
flags.DEFINE_string("tokenizer_path", None, "The vocab.txt / .model the records were written with (special ids).")
flags.DEFINE_boolean("uncased", True, "Records of the uncased tokenizer (part of the record file names).")
flags.DEFINE_integer("seq_len", 0, "Sequence length of the records.")
flags.DEFINE_integer("num_predict", None, "Number of masked target slots per example.")
flags.DEFINE_enum("sample_strategy", "single_token", ["single_token", "word_span"], "Target sampling (spec §4.6).")
flags.DEFINE_integer("num_passes", 1, "Use record passes < num_passes.")
flags.DEFINE_integer("shuffle_buffer", 20480, "Record shuffle buffer per input pipeline.")
flags.DEFINE_enum("input_sharding", "files", ["files", "global_batch"],
                  "files: each host reads its own files; global_batch: each host reads all and keeps its slice "
                  "(same batches as one device, for checks).")
# Model and objective.
flags.DEFINE_string("model_config", "", "Named config (e.g. B4-4-4H768), a config json, or a directory with one; "
                                        "per-key flags (--d_model=...) override it.")
flags.DEFINE_string("loss_type", "mlm", "mlm or electra (any case).")
flags.DEFINE_float("width_shrink", 0.25, "ELECTRA generator width relative to the discriminator.")
flags.DEFINE_float("disc_coeff", 50.0, "ELECTRA discriminator loss weight.")
flags.DEFINE_string("init_checkpoint", None, "Start from this checkpoint (original, Hugging Face or ours).")
flags.DEFINE_boolean("init_global_vars", True, "With --init_checkpoint: also restore Adam slots and global_step "
                                               "when the checkpoint has them.")
# Optimization (spec §5; defaults are the original's).
flags.DEFINE_float("learning_rate", 1e-5, "Peak learning rate.")
flags.DEFINE_integer("warmup_steps", 0, "Linear warmup steps.")
flags.DEFINE_enum("decay_method", "poly", ["poly", "linear", "cos"], "Decay after warmup.")
flags.DEFINE_float("poly_power", 1.0, "Power of the poly decay.")
flags.DEFINE_float("min_lr_ratio", 0.0, "Final learning rate / peak.")
flags.DEFINE_float("weight_decay", 0.0, "Decoupled weight decay.")
flags.DEFINE_boolean("use_wd_exclusion", False, "No weight decay on LayerNorm and biases.")
flags.DEFINE_float("clip", 1.0, "Global-norm clipping of the global-batch gradient (0: off).")
flags.DEFINE_float("lr_layer_decay_rate", 1.0, "Layer-wise learning-rate decay (1: off).")
flags.DEFINE_float("adam_beta1", 0.9, "Adam beta1.")
flags.DEFINE_float("adam_beta2", 0.99, "Adam beta2.")
flags.DEFINE_float("adam_epsilon", 1e-6, "Adam epsilon.")
flags.DEFINE_boolean("adam_correction", True, "Adam bias correction.")
# Run.
flags.DEFINE_string("model_dir", None, "Checkpoints, TensorBoard events, metrics.jsonl and the export.")
flags.DEFINE_integer("train_batch_size", 60, "Global batch size (split across replicas).")
flags.DEFINE_integer("train_steps", 100000, "Total training steps.")
flags.DEFINE_integer("iterations", 1000, "Steps per host call (and per progress line).")
flags.DEFINE_integer("save_steps", 10000, "Checkpoint every this many steps (0: only at the end).")
flags.DEFINE_integer("max_save", 5, "Checkpoints kept.")
flags.DEFINE_enum("strategy", "one_device", ["one_device", "mirrored", "multi_worker", "tpu"], "tf.distribute strategy.")
flags.DEFINE_string("tpu", None, "TPU name or grpc address; 'local' on a TPU VM.")
flags.DEFINE_integer("num_cpu_devices", 0, "Split the CPU into this many logical devices (mirrored on CPU).")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"], "Compute precision.")
flags.DEFINE_boolean("jit_compile", True, "Compile the forward and backward pass with XLA.")
flags.DEFINE_boolean("deterministic", False, "tf.config.experimental.enable_op_determinism().")
flags.DEFINE_integer("seed", 0, "Seed of the weights, masking, shuffling and sampling.")
flags.DEFINE_enum("export_format", "keras", ["keras", "hf", "original"], "Format of --model_dir/export.")


def _error(message: str) -> None:
    print(f"pretrain: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def _check_flags() -> None:
    missing = [name for name in ("record_dir", "model_dir", "tokenizer_path", "num_predict") if not FLAGS[name].value]
    if missing:
        _error("missing " + ", ".join(f"--{name}" for name in missing))
    if FLAGS.seq_len <= 0:
        _error("--seq_len must be the (positive) sequence length of the records")
    if FLAGS.loss_type.lower() not in ("mlm", "electra"):
        _error(f"--loss_type={FLAGS.loss_type}: expected mlm or electra")
    import tensorflow as tf
    for directory in FLAGS.record_dir:
        if not tf.io.gfile.isdir(directory):
            _error(f"--record_dir={directory} does not exist")


def _configure_devices() -> None:
    import tensorflow as tf
    if FLAGS.num_cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] *
                                                   FLAGS.num_cpu_devices)
    if FLAGS.deterministic:
        tf.config.experimental.enable_op_determinism()


def _model_config(init):
    from funnel_tfm.config import load_config
    config = config_flags.config_from_flags(FLAGS.model_config)
    if config is None:
        config = init.config if init is not None else load_config("B4-4-4H768")
    return config


def _initialize_from(init, parts, optimizer, trainer) -> str:
    """Assigns the weights of `init` (a FunnelCheckpoint) by original name; returns a one-line summary."""
    from funnel_tfm.errors import CheckpointError
    values = init.state()
    view = parts.checkpoint_view()
    targets = {n: v for n, v in view.named_variables().items() if n not in view.report.missing}  # trained ones
    assigned, missing = 0, []
    for name, variable in targets.items():
        if name not in values:
            missing.append(name)
            continue
        if tuple(values[name].shape) != tuple(variable.shape):
            raise CheckpointError(f"{FLAGS.init_checkpoint}: {name} has shape {tuple(values[name].shape)} in the "
                                  f"checkpoint but {tuple(variable.shape)} in the model being trained")
        variable.assign(values[name])
        assigned += 1
    unused = sorted(set(values) - set(targets))
    summary = f"initialized {assigned} weights from {FLAGS.init_checkpoint}"
    if missing:
        summary += f"; {len(missing)} left at init (e.g. {', '.join(missing[:3])})"
    if unused:
        summary += f"; {len(unused)} unused (e.g. {', '.join(unused[:3])})"
    if FLAGS.init_global_vars and init.optimizer_state:
        restored = optimizer.load_slot_state(init.optimizer_state, FLAGS.init_checkpoint)
        if "global_step" in init.optimizer_state:
            trainer.step.assign(int(init.optimizer_state["global_step"]))
        summary += f"; restored {len(restored)} optimizer values (Adam slots, global_step)"
    return summary


def _format_progress(step: int, means: dict, tokens_per_second: float) -> str:
    short = {"generator_loss": "gen", "generator_accuracy": "gen_acc", "discriminator_loss": "disc",
             "discriminator_accuracy": "disc_acc", "mlm_loss": None, "mlm_accuracy": "acc", "loss": "loss",
             "replaced_recall": None, "real_ratio": None}
    cells = [f"step {step:>7d}/{FLAGS.train_steps}"]
    for key, label in short.items():
        if label and key in means:
            cells.append(f"{label} {means[key]:.4f}")
    cells += [f"lr {means['learning_rate']:.2e}", f"gnorm {means['grad_norm']:.3f}",
              f"{tokens_per_second:,.0f} tok/s", f"skipped {int(means['skipped_steps'])}"]
    return " | ".join(cells)


def train() -> int:
    import keras
    import tensorflow as tf

    from funnel_tfm import checkpoints
    from funnel_tfm.input_func_builder import MaskingIds, first_record_ids, pretrain_input_fn, record_files
    from funnel_tfm.optimization import AdamW, DynamicLossScale, WarmupDecay
    from funnel_tfm.pretraining import PretrainingParts
    from funnel_tfm.tokenization import Tokenizer
    from funnel_tfm.training import Trainer, TrainingCheckpoints, is_chief, make_strategy, write_scalars

    _configure_devices()
    # The strategy first: MultiWorkerMirroredStrategy must configure collectives before TensorFlow runs any op.
    strategy = make_strategy(FLAGS.strategy, FLAGS.tpu)
    tokenizer = Tokenizer.from_file(FLAGS.tokenizer_path, uncased=FLAGS.uncased)
    special = MaskingIds.from_tokenizer(tokenizer)
    init = checkpoints.load_checkpoint(FLAGS.init_checkpoint) if FLAGS.init_checkpoint else None
    config = _model_config(init)
    config.block_lengths(FLAGS.seq_len)  # a ConfigError that states the rule
    if config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"the model's vocab_size is {config.vocab_size} but {FLAGS.tokenizer_path} has "
                         f"{tokenizer.vocab_size} tokens (pass --vocab_size={tokenizer.vocab_size} or another config)")
    files, num_examples = record_files(FLAGS.record_dir, "train", FLAGS.seq_len, FLAGS.uncased, FLAGS.num_passes)
    largest = int(first_record_ids(files, FLAGS.seq_len).max())
    if largest >= config.vocab_size:
        raise ValueError(f"{files[0]} holds token id {largest}, but the model's vocab_size is {config.vocab_size}: "
                         f"the records were written with another vocabulary")

    replicas = strategy.num_replicas_in_sync
    if FLAGS.train_batch_size % replicas:
        raise ValueError(f"--train_batch_size={FLAGS.train_batch_size} is not divisible by the {replicas} replicas")
    keras.utils.set_random_seed(FLAGS.seed)  # the initial weights
    with strategy.scope():
        parts = PretrainingParts.build(config, FLAGS.loss_type, FLAGS.width_shrink, FLAGS.disc_coeff,
                                       dtype=FLAGS.precision)
        schedule = WarmupDecay(FLAGS.learning_rate, FLAGS.warmup_steps, FLAGS.train_steps, FLAGS.decay_method,
                               FLAGS.min_lr_ratio, FLAGS.poly_power)
        loss_scale = DynamicLossScale() if FLAGS.precision == "mixed_float16" else None
        optimizer = AdamW(parts.trainable_variables(), schedule, weight_decay=FLAGS.weight_decay,
                          beta1=FLAGS.adam_beta1, beta2=FLAGS.adam_beta2, epsilon=FLAGS.adam_epsilon,
                          adam_correction=FLAGS.adam_correction, clip_norm=FLAGS.clip,
                          lr_layer_decay_rate=FLAGS.lr_layer_decay_rate, use_wd_exclusion=FLAGS.use_wd_exclusion,
                          loss_scale=loss_scale)
        trainer = Trainer(strategy, parts, optimizer, FLAGS.train_batch_size, seed=FLAGS.seed,
                          jit_compile=FLAGS.jit_compile)
        input_offset = tf.Variable(0, dtype=tf.int64, trainable=False, name="input_offset",
                                   aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    chief = is_chief(strategy)
    # input_offset: steps not read from these records (those of a continued original run)
    saver = TrainingCheckpoints(trainer, FLAGS.model_dir, max_to_keep=FLAGS.max_save,
                                extra={"input_offset": input_offset})
    log = (lambda line: print(line, flush=True)) if chief else (lambda line: None)

    n_params = sum(int(v.shape.num_elements()) for v in optimizer.variables_)
    restored = saver.restore_latest()
    if restored:
        log(f"resumed from {restored} at step {trainer.current_step()}")
    elif init is not None:
        log(_initialize_from(init, parts, optimizer, trainer))
        input_offset.assign(trainer.current_step())
    log(f"{FLAGS.loss_type.lower()} pretraining: {n_params:,} trainable parameters, {num_examples:,} examples in "
        f"{len(files)} files, {replicas} replica(s) on {FLAGS.strategy}, global batch {FLAGS.train_batch_size} x "
        f"{FLAGS.seq_len}, {FLAGS.precision}{', XLA' if FLAGS.jit_compile else ''}")

    start = trainer.current_step()
    dataset_fn = pretrain_input_fn(FLAGS.record_dir, FLAGS.seq_len, FLAGS.train_batch_size // replicas,
                                   FLAGS.num_predict, special, FLAGS.sample_strategy, FLAGS.uncased,
                                   num_passes=FLAGS.num_passes, seed=FLAGS.seed, stride=2 ** (config.n_block - 1),
                                   truncate_seq=config.truncate_seq, shuffle_buffer=FLAGS.shuffle_buffer,
                                   start_step=start - int(input_offset.numpy()), sharding=FLAGS.input_sharding)
    iterator = trainer.distribute(dataset_fn)
    writer = tf.summary.create_file_writer(os.path.join(FLAGS.model_dir, "train")) if chief else None
    metrics_path = os.path.join(FLAGS.model_dir, "metrics.jsonl")
    save_steps = FLAGS.save_steps if FLAGS.save_steps > 0 else FLAGS.train_steps
    step = start
    while step < FLAGS.train_steps:
        next_save = (step // save_steps + 1) * save_steps
        count = min(FLAGS.iterations, FLAGS.train_steps - step, next_save - step)
        began = time.perf_counter()
        means = trainer.run_steps(iterator, count)
        elapsed = time.perf_counter() - began
        step = trainer.current_step()
        tokens_per_second = count * FLAGS.train_batch_size * FLAGS.seq_len / elapsed
        means.update(tokens_per_second=tokens_per_second, steps_per_second=count / elapsed)
        log(_format_progress(step, means, tokens_per_second))
        if chief:
            write_scalars(writer, step, {k: v for k, v in means.items() if not k.endswith("per_second")})
            write_scalars(writer, step, {k: v for k, v in means.items() if k.endswith("per_second")}, "throughput")
            with tf.io.gfile.GFile(metrics_path, "a") as handle:
                handle.write(json.dumps({"step": step, **means}) + "\n")
        if step % save_steps == 0 or step >= FLAGS.train_steps:
            path = saver.save()
            log(f"saved {path}")

    if chief:
        view = parts.checkpoint_view()
        view.optimizer_state = optimizer.slot_state() if FLAGS.export_format == "original" else {}
        export_dir = os.path.join(FLAGS.model_dir, "export")
        report = checkpoints.export(view, export_dir, to=FLAGS.export_format, overwrite=True)
        log(f"exported {report.written} weights ({FLAGS.export_format}) to {export_dir}")
    return 0


def main(argv: list[str]) -> None:
    del argv
    from absl import logging
    logging.set_verbosity(logging.WARNING)  # TensorFlow's per-save INFO lines would drown the progress lines
    _check_flags()
    from funnel_tfm.config import ConfigError
    from funnel_tfm.errors import CheckpointError
    try:
        sys.exit(train())
    except (ConfigError, CheckpointError, ValueError, FileNotFoundError) as error:
        _error(str(error))


if __name__ == "__main__":
    app.run(main)
