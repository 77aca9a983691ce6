"""absl flags of the optimizer and of a training run, shared by the training entry points.

    from funnel_tfm import training_flags
    training_flags.define_optimizer_flags()                       # --learning_rate ... (the original's defaults)
    training_flags.define_run_flags(train_batch_size=128, train_steps=40000, save_steps=None, max_save=0)

Defaults that differ between the original's scripts (batch size, steps, saving) are passed in.
"""

from __future__ import annotations

from absl import flags


def define_optimizer_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The original's optimization.py flags (semantics P6-P9), same names and defaults."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_float("learning_rate", 1e-5, "Peak learning rate.", **define)
    flags.DEFINE_integer("warmup_steps", 0, "Linear warmup steps.", **define)
    flags.DEFINE_enum("decay_method", "poly", ["poly", "linear", "cos"], "Decay after warmup.", **define)
    flags.DEFINE_float("poly_power", 1.0, "Power of the poly decay.", **define)
    flags.DEFINE_float("min_lr_ratio", 0.0, "Final learning rate / peak.", **define)
    flags.DEFINE_float("weight_decay", 0.0, "Decoupled weight decay.", **define)
    flags.DEFINE_boolean("use_wd_exclusion", False, "No weight decay on LayerNorm and biases.", **define)
    flags.DEFINE_float("clip", 1.0, "Global-norm clipping of the global-batch gradient (0: off).", **define)
    flags.DEFINE_float("lr_layer_decay_rate", 1.0, "Layer-wise learning-rate decay (1: off).", **define)
    flags.DEFINE_float("adam_beta1", 0.9, "Adam beta1.", **define)
    flags.DEFINE_float("adam_beta2", 0.99, "Adam beta2.", **define)
    flags.DEFINE_float("adam_epsilon", 1e-6, "Adam epsilon.", **define)
    flags.DEFINE_boolean("adam_correction", True, "Adam bias correction.", **define)


def define_run_flags(train_batch_size: int, train_steps: int, save_steps: int | None, max_save: int,
                     flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Batch, steps, checkpoints, distribution and precision of a training run."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_string("model_dir", None, "Checkpoints, TensorBoard events, metrics.jsonl and the export.", **define)
    flags.DEFINE_integer("train_batch_size", train_batch_size, "Global batch size (split across replicas).", **define)
    flags.DEFINE_integer("train_steps", train_steps, "Total training steps.", **define)
    flags.DEFINE_integer("iterations", 1000, "Steps per host call (and per progress line).", **define)
    flags.DEFINE_integer("save_steps", save_steps, "Checkpoint every this many steps (0 / unset: only at the end).",
                         **define)
    flags.DEFINE_integer("max_save", max_save, "Checkpoints kept (0: all).", **define)
    flags.DEFINE_enum("strategy", "one_device", ["one_device", "mirrored", "multi_worker", "tpu"],
                      "tf.distribute strategy.", **define)
    flags.DEFINE_string("tpu", None, "TPU name or grpc address; 'local' on a TPU VM.", **define)
    flags.DEFINE_integer("num_cpu_devices", 0, "Split the CPU into this many logical devices (mirrored on CPU).",
                         **define)
    flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"], "Compute precision.",
                      **define)
    flags.DEFINE_boolean("jit_compile", True, "Compile the forward and backward pass with XLA.", **define)
    flags.DEFINE_boolean("deterministic", False, "tf.config.experimental.enable_op_determinism().", **define)
    flags.DEFINE_integer("seed", 0, "Seed of the weights, shuffling, dropout and sampling.", **define)
