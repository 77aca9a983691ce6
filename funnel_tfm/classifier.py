r"""Finetune and evaluate classification / regression: GLUE, the text-classification sets, your own files.

    python -m funnel_tfm.classifier --task_name=cola --data_dir=glue/CoLA --output_dir=proc_data/cola \
        --model_dir=exp/cola --tokenizer_path=vocab.uncased.txt --init_checkpoint=B6-6-6H768-ELEC-TF \
        --do_train=True --do_eval=True --max_seq_length=128 --train_batch_size=16 --learning_rate=1e-5 \
        --train_steps=5350 --warmup_steps=535 --save_steps=535 --iterations=535

The original's flags and the seed README's spellings (`--model_config_path`, `--eval_all_ckpt`, `--use_tpu`,
`--use_bfloat16`, `--num_core_per_host`, ...) are accepted (funnel_tfm/legacy_flags.py). Flags are parsed here
and handed, as a frozen `ClassifierRun`, to `funnel_tfm.training.classifier_job`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep the progress readable

from absl import app, flags

from funnel_tfm import config_flags, legacy_flags, training_flags

FLAGS = flags.FLAGS
# Data and task.
flags.DEFINE_string("task_name", None, "cola, sst-2, mrpc, sts-b, qqp, mnli_matched, mnli_mismatched, qnli, rte, "
                                       "wnli, diagnostic, snli, imdb, yelp2, yelp5, amazon2, amazon5, ag, dbpedia, "
                                       "or custom (your TSV / CSV / JSONL).")
flags.DEFINE_string("data_dir", None, "Directory of the task's raw files (e.g. glue/CoLA, aclImdb).")
flags.DEFINE_string("output_dir", None, "Directory of the preprocessed TFRecords (reused unless --overwrite_data).")
flags.DEFINE_string("tokenizer_path", None, "vocab.txt (WordPiece) or a SentencePiece .model.")
flags.DEFINE_boolean("uncased", True, "Lower-case the text (the uncased checkpoints).")
flags.DEFINE_integer("max_seq_length", 128, "Packed length of [CLS] A [SEP] B [SEP].")
flags.DEFINE_boolean("overwrite_data", False, "Rewrite the records even if they exist.")
flags.DEFINE_boolean("shuffle_examples", True, "Shuffle the training examples once when writing (seeded).")
flags.DEFINE_integer("shuffle_buffer", 2048, "tf.data shuffle buffer of the training records.")
flags.DEFINE_integer("num_passes", 1, "The original repeated the training records this many times; the input "
                                      "pipeline here repeats them anyway (accepted, no effect).")
flags.DEFINE_string("text_column", "text", "--task_name=custom: column (header name or 0-based index) of the text.")
flags.DEFINE_string("text_b_column", None, "--task_name=custom: column of the second text of a pair.")
flags.DEFINE_string("label_column", "label", "--task_name=custom: column of the label.")
flags.DEFINE_list("label_list", [], "--task_name=custom: the labels in index order (default: from train).")
flags.DEFINE_boolean("regression", None, "--task_name=custom: numeric labels (default: inferred from train).")
flags.DEFINE_enum("file_format", None, ["tsv", "csv", "jsonl"], "--task_name=custom: format (default: extension).")
flags.DEFINE_boolean("has_header", True, "--task_name=custom: TSV / CSV files start with a header row.")
# Model.
flags.DEFINE_string("model_config", "", "Named config, config json or directory; default: the init checkpoint's.")
flags.DEFINE_string("init_checkpoint", None, "Original (core or FULL, TF or PyTorch), Hugging Face or funnel_tfm "
                                             "checkpoint, a model.ckpt prefix, or a pretraining --model_dir.")
flags.DEFINE_boolean("init_global_vars", False, "Also restore Adam slots and global_step from --init_checkpoint.")
flags.DEFINE_string("cls_scope", None, "Scope of the classification head (default: the task name, as the original).")
# Phases.
flags.DEFINE_boolean("do_train", False, "Finetune.")
flags.DEFINE_boolean("do_eval", False, "Evaluate every saved checkpoint (waits for new ones until `done`).")
flags.DEFINE_boolean("do_predict", False, "Write per-example predictions and probabilities of --predict_split.")
flags.DEFINE_boolean("do_submit", False, "Write the GLUE server's files for the test split, and a zip.")
flags.DEFINE_string("eval_split", "dev", "Split to evaluate (dev, or train / test where labelled).")
flags.DEFINE_string("predict_split", None, "Split for --do_predict (default: --eval_split).")
flags.DEFINE_boolean("eval_all_ckpt", True, "Evaluate every saved checkpoint (the seed README's flag); false: only "
                                            "the latest.")
flags.DEFINE_string("eval_model_dir", "", "Evaluate the checkpoints of this directory instead of --model_dir.")
flags.DEFINE_integer("eval_start_step", -1, "Evaluate checkpoints after this step.")
flags.DEFINE_integer("eval_end_step", 10000000, "Evaluate checkpoints up to this step.")
flags.DEFINE_float("eval_poll_secs", 60.0, "While training has not finished, look for new checkpoints this often.")
flags.DEFINE_integer("eval_batch_size", 8, "Evaluation batch size.")
flags.DEFINE_integer("predict_batch_size", 8, "Prediction batch size.")
flags.DEFINE_float("num_train_epochs", None, "Train this many epochs (overrides --train_steps).")
flags.DEFINE_float("warmup_proportion", None, "Warmup as a fraction of the training steps (overrides --warmup_steps).")
flags.DEFINE_boolean("retain_best", False, "Keep (and export) the best checkpoint; delete the other evaluated ones.")
flags.DEFINE_boolean("retain_all", False, "Delete no checkpoint.")
flags.DEFINE_string("submit_dir", None, "Directory of the submission files (default: model_dir/submit).")
flags.DEFINE_boolean("overwrite", False, "With --do_eval: delete earlier evaluation results first.")
training_flags.define_optimizer_flags()
training_flags.define_run_flags(train_batch_size=128, train_steps=40000, save_steps=None, max_save=0)
legacy_flags.define(FLAGS)


def _error(message: str) -> None:
    print(f"classifier: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def _check_flags() -> dict:
    missing = [name for name in ("task_name", "data_dir", "output_dir", "model_dir", "tokenizer_path")
               if not FLAGS[name].value]
    if missing:
        _error("missing " + ", ".join(f"--{name}" for name in missing))
    if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict or FLAGS.do_submit):
        _error("nothing to do: give at least one of --do_train, --do_eval, --do_predict, --do_submit")
    try:
        return legacy_flags.resolve(FLAGS)
    except legacy_flags.LegacyFlagError as error:
        _error(str(error))


def _run_from_flags(settings: dict):
    from funnel_tfm.data.classifier_data import CustomFormat
    from funnel_tfm.training.classifier_job import ClassifierRun
    custom = None
    if FLAGS.task_name.lower() == "custom":
        custom = CustomFormat(text_column=FLAGS.text_column, text_b_column=FLAGS.text_b_column,
                              label_column=FLAGS.label_column, label_list=tuple(FLAGS.label_list),
                              regression=FLAGS.regression, file_format=FLAGS.file_format,
                              has_header=FLAGS.has_header)
    names = {field.name for field in dataclasses.fields(ClassifierRun)} - {"model_config", "custom"}
    values = {name: FLAGS[name].value for name in names}
    values.update({k: v for k, v in settings.items() if k in names})
    model_config = settings.get("model_config", FLAGS.model_config)
    if FLAGS.eval_model_dir and not FLAGS.do_train:
        values["model_dir"] = FLAGS.eval_model_dir
    return ClassifierRun(model_config=config_flags.config_from_flags(model_config), custom=custom, **values)


def main(argv: list[str]) -> None:
    del argv
    from absl import logging
    logging.set_verbosity(logging.WARNING)
    settings = _check_flags()
    for line in legacy_flags.notices(FLAGS):
        print(f"classifier: note: {line}", flush=True)
    from funnel_tfm.config import ConfigError
    from funnel_tfm.errors import CheckpointError
    from funnel_tfm.data.classifier_data import ClassifierDataError
    from funnel_tfm.data.tokenization import TokenizerError
    try:
        run = _run_from_flags(settings)
        if FLAGS.overwrite and FLAGS.do_eval:
            shutil.rmtree(os.path.join(run.model_dir, "eval"), ignore_errors=True)
        from funnel_tfm.training.classifier_job import run_classifier
        run_classifier(run)
    except (ConfigError, CheckpointError, ClassifierDataError, TokenizerError, ValueError, FileNotFoundError) as error:
        _error(str(error))
    except Exception as error:  # TensorFlow's own, e.g. no TPU behind --use_tpu: one line, not a traceback
        import tensorflow as tf
        if not isinstance(error, tf.errors.OpError):
            raise
        _error(f"{type(error).__name__}: {str(error).strip().splitlines()[0][:500]}")


if __name__ == "__main__":
    app.run(main)
