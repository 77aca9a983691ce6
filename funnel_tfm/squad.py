r"""Finetune and evaluate SQuAD v1.1 / v2.0 with the original's head and post-processing, as its squad.py.

    python -m funnel_tfm.squad --prepro_split=train --train_file=train-v2.0.json --output_dir=proc_data/squad \
        --tokenizer_path=vocab.uncased.txt --uncased=True --max_seq_length=512 --max_query_length=64
    python -m funnel_tfm.squad --do_train=True --do_predict=True --train_file=train-v2.0.json \
        --predict_file=dev-v2.0.json --output_dir=proc_data/squad --model_dir=exp/squad \
        --predict_dir=exp/squad/predict --tokenizer_path=vocab.uncased.txt \
        --init_checkpoint=B10-10-10H1024-ELEC-FULL-TF --learning_rate=3e-5 --lr_layer_decay_rate=0.75 \
        --train_steps=8000 --warmup_steps=1000 --train_batch_size=48 --save_steps=1000 --iterations=1000 \
        --use_tpu=True --tpu=local --use_bfloat16=True

The original's flags and spellings are accepted (funnel_tfm/legacy_flags.py); `--do_predict` (the original's) and
`--do_eval` both evaluate every checkpoint. Flags are parsed here and handed, as a frozen `SquadRun`, to
`funnel_tfm.training.squad_job`.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep the progress readable

from absl import flags

from funnel_tfm import finetune_cli, flag_checks, legacy_flags, training_flags  # finetune_cli brings config_flags (--d_model ...)

FLAGS = flags.FLAGS
flags.DEFINE_string("train_file", "", "SQuAD-format training json.")
flags.DEFINE_string("predict_file", "", "SQuAD-format json to evaluate every checkpoint on (with answers).")
flags.DEFINE_string("predict_dir", "", "Where {step}.predictions.json, .nbest_predictions.json and .null_odds.json "
                                       "go (default: model_dir/predict).")
flags.DEFINE_enum("prepro_split", None, ["train", "eval"], "Only preprocess this split, then exit.")
flags.DEFINE_integer("num_proc", 1, "Preprocessing processes; each writes the training records of every "
                                    "num_proc-th question.", lower_bound=1)
flags.DEFINE_integer("proc_id", 0, "This preprocessing process (0 .. num_proc-1).", lower_bound=0)
flag_checks.related(("proc_id", "num_proc"), lambda v: v["proc_id"] < v["num_proc"], "must be < --num_proc")
flags.DEFINE_integer("max_query_length", 64, "Question tokens kept (the first ones).", lower_bound=1)
flags.DEFINE_integer("doc_stride", 128, "Tokens between the starts of consecutive windows of a paragraph.",
                     lower_bound=1)
flags.DEFINE_integer("max_answer_length", 64, "Longest answer, in tokens, post-processing proposes.", lower_bound=1)
flags.DEFINE_boolean("keep_accents", False, "Original flag, accepted: the tokenizer's own normalisation decides "
                                            "(uncased WordPiece strips accents, as the released vocabularies).")
flags.DEFINE_enum("train_version", "v2", ["v1", "v2"], "SQuAD version of --train_file.")
flags.DEFINE_enum("eval_version", "v2", ["v1", "v2"], "SQuAD version of --predict_file (v1: exact_match, f1).")
flags.DEFINE_boolean("version_2_with_negative", None, "transformers' / PaddleNLP's spelling: true = --train_version=v2 "
                                                  "--eval_version=v2; false = v1 for both.")
flags.DEFINE_boolean("do_predict", False, "Evaluate every checkpoint on --predict_file (the original's flag).")
flags.DEFINE_integer("predict_batch_size", 128, "Evaluation batch size.", lower_bound=1)
flags.DEFINE_string("target_eval_key", "best_f1", "Result key the best checkpoint is chosen by (v1: f1).")
flags.DEFINE_integer("n_best_size", 5, "Answers kept per question in nbest_predictions.json.", lower_bound=1)
flags.DEFINE_integer("start_n_top", 5, "Start positions kept by the beam.", lower_bound=1)
flags.DEFINE_integer("end_n_top", 5, "End positions kept per start.", lower_bound=1)
flags.DEFINE_boolean("use_answer_class", True, "Answerability classifier on [CLS] and the expected start.")
flags.DEFINE_boolean("use_masked_loss", True, "Mask the question, separators and padding out of start / end.")
flags.DEFINE_boolean("conditional_end", True, "Condition the end on the start (top-k beams at inference).")
flags.DEFINE_float("cls_loss_weight", 0.5, "Weight of the answerability loss.")
flags.DEFINE_float("ans_loss_weight", 0.5, "Weight of the start + end loss.")
flag_checks.at_least("cls_loss_weight", 0.0)
flag_checks.at_least("ans_loss_weight", 0.0)
flags.DEFINE_boolean("debug_mode", False, "Keep only the first 100 questions.")
flags.DEFINE_boolean("do_ensemble", False, "Original flag: ensembling is not available here (an error if true).")
training_flags.define_finetune_flags(max_seq_length=512, eval_batch_size=128)
training_flags.define_optimizer_flags()
training_flags.define_run_flags(train_batch_size=128, train_steps=5500, save_steps=None, max_save=0)
legacy_flags.define(FLAGS)


def _job() -> None:
    from funnel_tfm.training.squad_job import SquadRun, run_squad
    phases = ("prepro_split", "do_train", "do_eval", "do_predict")
    required = ("output_dir", "tokenizer_path") + (() if FLAGS.prepro_split else ("model_dir",))
    settings = finetune_cli.check_flags("squad", FLAGS, required, phases)
    if FLAGS.do_ensemble:
        finetune_cli.error("squad", "--do_ensemble is not available: evaluate each model, then combine their "
                                    "nbest_predictions.json")
    FLAGS.data_dir, FLAGS.model_dir = FLAGS.data_dir or "", FLAGS.model_dir or ""  # not needed by every phase
    run_squad(finetune_cli.run_from_flags(SquadRun, FLAGS, settings))


def main(argv: list[str]) -> None:
    del argv
    finetune_cli.run_job("squad", FLAGS, _job, evaluation_flags=("do_eval", "do_predict"))


if __name__ == "__main__":
    flag_checks.run(main)
