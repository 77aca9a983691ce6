"""absl flags of the optimizer and of a training run, shared by the training entry points.

    from funnel_tfm import training_flags
    training_flags.define_optimizer_flags()                       # --learning_rate ... (the original's defaults)
    training_flags.define_run_flags(train_batch_size=128, train_steps=40000, save_steps=None, max_save=0)

Defaults that differ between the original's scripts (batch size, steps, saving) are passed in.
"""

from __future__ import annotations

from absl import flags

from funnel_tfm import flag_checks


def define_optimizer_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The original's optimization.py flags (semantics P6-P9), same names and defaults."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_float("learning_rate", 1e-5, "Peak learning rate.", **define)
    flags.DEFINE_integer("warmup_steps", 0, "Linear warmup steps.", lower_bound=0, **define)
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
    flag_checks.above("learning_rate", 0.0, flag_values)  # 0: no training; negative: gradient ascent
    flag_checks.above("poly_power", 0.0, flag_values)
    flag_checks.within("min_lr_ratio", 0.0, 1.0, flag_values=flag_values)
    flag_checks.at_least("weight_decay", 0.0, flag_values)
    flag_checks.at_least("clip", 0.0, flag_values)
    flag_checks.within("lr_layer_decay_rate", 0.0, 1.0, low_open=True, flag_values=flag_values)
    for beta in ("adam_beta1", "adam_beta2"):
        flag_checks.within(beta, 0.0, 1.0, high_open=True, flag_values=flag_values)
    flag_checks.above("adam_epsilon", 0.0, flag_values)


def define_run_flags(train_batch_size: int, train_steps: int, save_steps: int | None, max_save: int,
                     flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Batch, steps, checkpoints, distribution and precision of a training run."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_string("model_dir", None, "Checkpoints, TensorBoard events, metrics.jsonl and the export.", **define)
    flags.DEFINE_integer("train_batch_size", train_batch_size, "Global batch size (split across replicas).",
                         lower_bound=1, **define)
    flags.DEFINE_integer("train_steps", train_steps, "Total training steps.", lower_bound=1, **define)
    flags.DEFINE_integer("iterations", 1000, "Steps per host call (and per progress line).", lower_bound=1,
                         **define)
    flags.DEFINE_integer("save_steps", save_steps, "Checkpoint every this many steps (0 / unset: only at the end).",
                         lower_bound=0, **define)
    flags.DEFINE_integer("max_save", max_save, "Checkpoints kept (0: all).", lower_bound=0, **define)
    flags.DEFINE_enum("strategy", "one_device", ["one_device", "mirrored", "multi_worker", "tpu"],
                      "tf.distribute strategy.", **define)
    flags.DEFINE_string("tpu", None, "TPU name or grpc address; 'local' on a TPU VM.", **define)
    flags.DEFINE_integer("num_cpu_devices", 0, "Split the CPU into this many logical devices (mirrored on CPU).",
                         lower_bound=0, **define)
    flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"], "Compute precision.",
                      **define)
    flags.DEFINE_boolean("jit_compile", True, "Compile the forward and backward pass with XLA.", **define)
    flags.DEFINE_boolean("deterministic", False, "tf.config.experimental.enable_op_determinism().", **define)
    flags.DEFINE_integer("seed", 0, "Seed of the weights, shuffling, dropout and sampling.", lower_bound=0,
                         **define)


def define_finetune_flags(max_seq_length: int, eval_batch_size: int,
                          flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Data, model and phase flags of the finetuning entry points (the original's classifier.py / race.py)."""
    define = dict(flag_values=flag_values)
    # Data.
    flags.DEFINE_string("data_dir", None, "Directory of the task's raw files (e.g. glue/CoLA, aclImdb, RACE).",
                        **define)
    flags.DEFINE_string("output_dir", None, "Directory of the preprocessed TFRecords (reused unless "
                                            "--overwrite_data).", **define)
    flags.DEFINE_string("tokenizer_path", None, "vocab.txt (WordPiece) or a SentencePiece .model.", **define)
    flags.DEFINE_boolean("uncased", True, "Lower-case the text (the uncased checkpoints).", **define)
    flags.DEFINE_integer("max_seq_length", max_seq_length, "Packed length of one sequence.", lower_bound=4,
                         **define)
    flags.DEFINE_boolean("overwrite_data", False, "Rewrite the records even if they exist.", **define)
    flags.DEFINE_boolean("shuffle_examples", True, "Shuffle the training examples once when writing (seeded).",
                         **define)
    flags.DEFINE_integer("shuffle_buffer", 2048, "tf.data shuffle buffer of the training records.", lower_bound=1,
                         **define)
    # Model.
    flags.DEFINE_string("model_config", "", "Named config, config json or directory; default: the init "
                                            "checkpoint's.", **define)
    flags.DEFINE_string("init_checkpoint", None, "Original (core or FULL, TF or PyTorch), Hugging Face or funnel_tfm "
                                                 "checkpoint, a model.ckpt prefix, or a pretraining --model_dir.",
                        **define)
    flags.DEFINE_boolean("init_global_vars", False, "Also restore Adam slots and global_step from "
                                                    "--init_checkpoint.", **define)
    # Phases.
    flags.DEFINE_boolean("do_train", False, "Finetune.", **define)
    flags.DEFINE_boolean("do_eval", False, "Evaluate every saved checkpoint (waits for new ones until `done`).",
                         **define)
    flags.DEFINE_string("eval_split", "dev", "Split to evaluate (dev, or train / test where labelled).", **define)
    flags.DEFINE_boolean("eval_all_ckpt", True, "Evaluate every saved checkpoint (the seed README's flag); false: "
                                                "only the latest.", **define)
    flags.DEFINE_string("eval_model_dir", "", "Evaluate the checkpoints of this directory instead of --model_dir.",
                        **define)
    flags.DEFINE_integer("eval_start_step", -1, "Evaluate checkpoints after this step.", lower_bound=-1,
                         **define)
    flags.DEFINE_integer("eval_end_step", 10000000, "Evaluate checkpoints up to this step.", lower_bound=0,
                         **define)
    flags.DEFINE_float("eval_poll_secs", 60.0, "While training has not finished, look for new checkpoints this "
                                               "often.", **define)
    flag_checks.above("eval_poll_secs", 0.0, flag_values)
    flags.DEFINE_integer("eval_batch_size", eval_batch_size, "Evaluation batch size.", lower_bound=1, **define)
    flags.DEFINE_integer("gradient_accumulation_steps", 1, "Split each step's batch into this many micro-batches "
                                                           "(same update, the memory of one micro-batch).",
                         lower_bound=1, **define)
    flags.DEFINE_float("num_train_epochs", None, "Train this many epochs (overrides --train_steps).", **define)
    flags.DEFINE_float("warmup_proportion", None, "Warmup as a fraction of the training steps (overrides "
                                                  "--warmup_steps).", **define)
    flag_checks.above("num_train_epochs", 0.0, flag_values)
    flag_checks.within("warmup_proportion", 0.0, 1.0, flag_values=flag_values)
    flags.DEFINE_boolean("retain_best", False, "Keep (and export) the best checkpoint; delete the other evaluated "
                                               "ones.", **define)
    flags.DEFINE_boolean("retain_all", False, "Delete no checkpoint.", **define)
    flags.DEFINE_boolean("overwrite", False, "With --do_eval: delete earlier evaluation results first.", **define)
    _define_hf_spellings(define)


def _define_hf_spellings(define: dict) -> None:
    # transformers' and PaddleNLP's example scripts (run_glue.py, run_squad.py); finetune_cli.hf_spellings maps them.
    flags.DEFINE_string("model_name_or_path", None, "transformers' / PaddleNLP's spelling: a model directory "
                        "(config.json + weights + vocab.txt or spiece.model) = --init_checkpoint, whose vocabulary "
                        "is the default --tokenizer_path and whose tokenizer_config.json do_lower_case the default "
                        "--uncased.", **define)
    flags.DEFINE_integer("batch_size", None, "transformers' / PaddleNLP's spelling: the batch size of every phase "
                         "not given its own (--train_batch_size, --eval_batch_size, --predict_batch_size).",
                         lower_bound=1, **define)
