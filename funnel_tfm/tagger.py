r"""Finetune and evaluate token classification (NER, chunking, POS) on CoNLL-style files.

    python -m funnel_tfm.tagger --data_dir=conll2003 --output_dir=proc_data/ner --model_dir=exp/ner \
        --uncased=False --tokenizer_path=vocab.cased.txt --init_checkpoint=B6-6-6H768-ELEC-TF \
        --max_seq_length=128 --do_train=True --do_eval=True --do_predict=True --predict_split=test \
        --train_batch_size=32 --eval_batch_size=32 --train_steps=4000 --save_steps=1000 --iterations=500 \
        --warmup_proportion=0.1 --learning_rate=5e-5

`data_dir` holds `train.txt`, `dev.txt` (`--eval_split`) and `test.txt` in CoNLL format: one token per line with
its tag in `--tag_column` (default: the last column), a blank line between sentences, `-DOCSTART-` lines skipped;
BIO / IOB1 / IOBES tags. Every checkpoint is evaluated (entity F1 as seqeval and conlleval compute it) and the
best kept; predictions go to `model_dir/predict/<split>.conll`. Flags are parsed here and handed, as a frozen
`TaggerRun`, to `funnel_tfm.training.tagger_job`.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep the progress readable

from absl import flags

from funnel_tfm import finetune_cli, flag_checks, legacy_flags, training_flags  # finetune_cli brings config_flags (--d_model ...)

FLAGS = flags.FLAGS
flags.DEFINE_integer("tag_column", -1, "Column of the tag (0-based; negative counts from the end; the word is "
                                       "column 0).")
flags.DEFINE_boolean("do_predict", False, "Write the predicted tags of --predict_split (best checkpoint) as "
                                          "`word [gold] pred` lines.")
flags.DEFINE_string("predict_split", None, "Split for --do_predict (default: --eval_split); a file of words only "
                                           "is fine.")
flags.DEFINE_integer("predict_batch_size", 32, "Prediction batch size.", lower_bound=1)
training_flags.define_finetune_flags(max_seq_length=128, eval_batch_size=32)
training_flags.define_optimizer_flags()
training_flags.define_run_flags(train_batch_size=32, train_steps=4000, save_steps=None, max_save=0)
legacy_flags.define(FLAGS)


def _job() -> None:
    from funnel_tfm.training.tagger_job import TaggerRun, run_tagger
    settings = finetune_cli.check_flags("tagger", FLAGS, ("data_dir", "output_dir", "model_dir", "tokenizer_path"),
                                        ("do_train", "do_eval", "do_predict"))
    run_tagger(finetune_cli.run_from_flags(TaggerRun, FLAGS, settings))


def main(argv: list[str]) -> None:
    del argv
    finetune_cli.run_job("tagger", FLAGS, _job)


if __name__ == "__main__":
    flag_checks.run(main)
