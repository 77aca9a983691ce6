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

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep the progress readable

from absl import flags

from funnel_tfm import finetune_cli, flag_checks, legacy_flags, training_flags  # finetune_cli brings config_flags (--d_model ...)

FLAGS = flags.FLAGS
# Data and task.
flags.DEFINE_string("task_name", None, "cola, sst-2, mrpc, sts-b, qqp, mnli_matched, mnli_mismatched, qnli, rte, "
                                       "wnli, diagnostic, snli, imdb, yelp2, yelp5, amazon2, amazon5, ag, dbpedia, "
                                       "or custom (your TSV / CSV / JSONL).")
flags.DEFINE_integer("num_passes", 1, "The original repeated the training records this many times; the input "
                                      "pipeline here repeats them anyway (accepted, no effect).", lower_bound=1)
flags.DEFINE_string("text_column", "text", "--task_name=custom: column (header name or 0-based index) of the text.")
flags.DEFINE_string("text_b_column", None, "--task_name=custom: column of the second text of a pair.")
flags.DEFINE_string("label_column", "label", "--task_name=custom: column of the label.")
flags.DEFINE_list("label_list", [], "--task_name=custom: the labels in index order (default: from train).")
flags.DEFINE_boolean("regression", None, "--task_name=custom: numeric labels (default: inferred from train).")
flags.DEFINE_enum("file_format", None, ["tsv", "csv", "jsonl"], "--task_name=custom: format (default: extension).")
flags.DEFINE_boolean("has_header", True, "--task_name=custom: TSV / CSV files start with a header row.")
# Model.
flags.DEFINE_string("cls_scope", None, "Scope of the classification head (default: the task name, as the original).")
# Phases.
flags.DEFINE_boolean("do_predict", False, "Write per-example predictions and probabilities of --predict_split.")
flags.DEFINE_boolean("do_submit", False, "Write the GLUE server's files for the test split, and a zip.")
flags.DEFINE_string("predict_split", None, "Split for --do_predict (default: --eval_split).")
flags.DEFINE_integer("predict_batch_size", 8, "Prediction batch size.", lower_bound=1)
flags.DEFINE_boolean("zero_init_head", False, "Start the classification head's kernel at zero, so that every "
                     "example starts at the same logits: finetuning from a weakly pretrained checkpoint then does not "
                     "flatten its [CLS] output to silence random logits (docs/pretraining_collapse.md).")
flags.DEFINE_string("submit_dir", None, "Directory of the submission files (default: model_dir/submit).")
training_flags.define_finetune_flags(max_seq_length=128, eval_batch_size=8)
training_flags.define_optimizer_flags()
training_flags.define_run_flags(train_batch_size=128, train_steps=40000, save_steps=None, max_save=0)
legacy_flags.define(FLAGS)


def _job() -> None:
    from funnel_tfm.data.classifier_data import CustomFormat
    from funnel_tfm.training.classifier_job import ClassifierRun, run_classifier
    settings = finetune_cli.check_flags("classifier", FLAGS, ("task_name", "data_dir", "output_dir", "model_dir",
                                                              "tokenizer_path"),
                                        ("do_train", "do_eval", "do_predict", "do_submit"))
    custom = None
    if FLAGS.task_name.lower() == "custom":
        custom = CustomFormat(text_column=FLAGS.text_column, text_b_column=FLAGS.text_b_column,
                              label_column=FLAGS.label_column, label_list=tuple(FLAGS.label_list),
                              regression=FLAGS.regression, file_format=FLAGS.file_format,
                              has_header=FLAGS.has_header)
    run_classifier(finetune_cli.run_from_flags(ClassifierRun, FLAGS, settings, custom=custom))


def main(argv: list[str]) -> None:
    del argv
    finetune_cli.run_job("classifier", FLAGS, _job)


if __name__ == "__main__":
    flag_checks.run(main)
