r"""MLM or ELECTRA pretraining from create_pretrain_data records (the original's pretrain.py, semantics P1–P10).

    python -m funnel_tfm.pretrain --record_dir=records --tokenizer_path=vocab.txt --model_dir=run \
        --model_config=B6-6-6H768 --loss_type=electra --seq_len=512 --num_predict=85 \
        --train_batch_size=256 --train_steps=1000000 --warmup_steps=10000 --learning_rate=1e-4 \
        --strategy=tpu --tpu=local --precision=mixed_bfloat16 --iterations=1000 --save_steps=10000

Flags are parsed here and handed, as a frozen `PretrainRun`, to `funnel_tfm.training.pretrain_job`.
A restarted job resumes from the latest checkpoint in --model_dir (weights, optimizer, step, loss scale, dropout
RNG and input position). --init_checkpoint starts a new run from any checkpoint `convert` reads (a FULL
original ELECTRA checkpoint continues with its generator and, with --init_global_vars, its Adam slots and
global_step). At the end the backbone (with heads and generator) is exported to --model_dir/export, readable
by FunnelTFM.from_pretrained.
"""

from __future__ import annotations

import dataclasses
import os
import sys

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
flags.DEFINE_enum("sample_strategy", "single_token", ["single_token", "word_span"], "Target sampling (semantics D6).")
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
# Optimization (semantics P6–P9; defaults are the original's).
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


def _run_from_flags():
    """The frozen run settings: every flag of this file by name, and the model config (with --<key> overrides)."""
    from funnel_tfm.training.pretrain_job import PretrainRun
    fields = {field.name for field in dataclasses.fields(PretrainRun)} - {"model_config"}
    return PretrainRun(model_config=config_flags.config_from_flags(FLAGS.model_config),
                       **{name: FLAGS[name].value for name in fields})


def main(argv: list[str]) -> None:
    del argv
    from absl import logging
    logging.set_verbosity(logging.WARNING)  # TensorFlow's per-save INFO lines would drown the progress lines
    _check_flags()
    from funnel_tfm.config import ConfigError
    from funnel_tfm.errors import CheckpointError
    try:
        from funnel_tfm.training.pretrain_job import run_pretraining
        sys.exit(run_pretraining(_run_from_flags()))
    except (ConfigError, CheckpointError, ValueError, FileNotFoundError) as error:
        _error(str(error))


if __name__ == "__main__":
    app.run(main)
