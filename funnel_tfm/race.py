r"""Finetune and evaluate RACE (reading comprehension, 4 options per question), as the original's race.py.

    python -m funnel_tfm.race --data_dir=RACE --output_dir=proc_data/race --model_dir=exp/race \
        --uncased=True --tokenizer_type=word_piece --tokenizer_path=vocab.uncased.txt \
        --model_config_path=B6-6-6H768/net_config.json --init_checkpoint=B6-6-6H768/model.ckpt \
        --max_seq_length=512 --max_qa_length=128 --do_train=True --do_eval=True --train_batch_size=16 \
        --eval_batch_size=16 --train_steps=24000 --save_steps=2400 --iterations=2400 --warmup_steps=2400 \
        --learning_rate=2e-5 --use_tpu=True --tpu=local --use_bfloat16=True

The original's flags and the seed README's spellings are accepted (funnel_tfm/legacy_flags.py). Flags are
parsed here and handed, as a frozen `RaceRun`, to `funnel_tfm.training.race_job`.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep the progress readable

from absl import flags

from funnel_tfm import finetune_cli, flag_checks, legacy_flags, training_flags  # finetune_cli brings config_flags (--d_model ...)

FLAGS = flags.FLAGS
flags.DEFINE_integer("max_qa_length", 128, "Question + option tokens kept (the last ones).", lower_bound=1)
flags.DEFINE_boolean("do_predict", False, "Write per-question predictions of --eval_split (best checkpoint).")
training_flags.define_finetune_flags(max_seq_length=512, eval_batch_size=128)
training_flags.define_optimizer_flags()
training_flags.define_run_flags(train_batch_size=128, train_steps=40000, save_steps=None, max_save=0)
legacy_flags.define(FLAGS)


def _job() -> None:
    from funnel_tfm.training.race_job import RaceRun, run_race
    settings = finetune_cli.check_flags("race", FLAGS, ("data_dir", "output_dir", "model_dir", "tokenizer_path"),
                                        ("do_train", "do_eval", "do_predict"))
    run_race(finetune_cli.run_from_flags(RaceRun, FLAGS, settings))


def main(argv: list[str]) -> None:
    del argv
    finetune_cli.run_job("race", FLAGS, _job)


if __name__ == "__main__":
    flag_checks.run(main)
