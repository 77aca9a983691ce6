"""transformers' / PaddleNLP's spellings beside ours (`--model_name_or_path`, `--batch_size`,
`--version_2_with_negative`): every mapping, every contradiction, and the PaddleNLP GLUE command line running."""

from __future__ import annotations

import json
import os
import shutil

import keras
import pytest
from absl import flags

from funnel_tfm import finetune_cli, legacy_flags, training_flags
from funnel_tfm.checkpoints import export
from funnel_tfm.checkpoints.loading import from_model
from funnel_tfm.config import ModelConfig
from funnel_tfm.legacy_flags import LegacyFlagError
from funnel_tfm.modeling import FunnelTFM
from tests.test_classifier import SEQ_LEN, TINY, movie_review_cola, run_classifier, run_entry_point


def finetune_like(*argv: str, squad: bool = False) -> flags.FlagValues:
    """A fresh FlagValues with the flags of a finetuning entry point (squad: also its version flags)."""
    fv = flags.FlagValues()
    training_flags.define_finetune_flags(max_seq_length=128, eval_batch_size=8, flag_values=fv)
    training_flags.define_run_flags(train_batch_size=128, train_steps=100, save_steps=None, max_save=0,
                                    flag_values=fv)
    flags.DEFINE_integer("predict_batch_size", 8, "", flag_values=fv)
    if squad:
        flags.DEFINE_enum("train_version", "v2", ["v1", "v2"], "", flag_values=fv)
        flags.DEFINE_enum("eval_version", "v2", ["v1", "v2"], "", flag_values=fv)
        flags.DEFINE_boolean("version_2_with_negative", None, "", flag_values=fv)
    legacy_flags.define(fv)
    fv(["prog", *argv])
    return fv


def hf_dir(path, vocab_name: str = "vocab.txt", lower_case: bool | None = True) -> str:
    """A model directory as transformers writes one (weights aside): config.json, a vocabulary, tokenizer_config."""
    os.makedirs(path, exist_ok=True)
    open(os.path.join(path, "config.json"), "w").write("{}")
    open(os.path.join(path, vocab_name), "w").write("[PAD]\n")
    if lower_case is not None:
        json.dump({"do_lower_case": lower_case}, open(os.path.join(path, "tokenizer_config.json"), "w"))
    return str(path)


def test_model_name_or_path_is_init_checkpoint_with_its_vocabulary_and_casing(tmp_path):
    cased = hf_dir(tmp_path / "cased", lower_case=False)
    assert finetune_cli.hf_spellings(finetune_like(f"--model_name_or_path={cased}")) == {
        "init_checkpoint": cased, "tokenizer_path": os.path.join(cased, "vocab.txt"), "uncased": False}
    # Ours given: ours wins (an explicit --uncased, another vocabulary), the same checkpoint twice is no contradiction.
    settings = finetune_cli.hf_spellings(finetune_like(f"--model_name_or_path={cased}", "--uncased=True",
                                                       "--tokenizer_path=other.txt", f"--init_checkpoint={cased}/"))
    assert settings == {"init_checkpoint": cased}
    spm = hf_dir(tmp_path / "spm", vocab_name="spiece.model", lower_case=None)
    assert finetune_cli.hf_spellings(finetune_like(f"--model_name_or_path={spm}")) == {
        "init_checkpoint": spm, "tokenizer_path": os.path.join(spm, "spiece.model")}
    ours = tmp_path / "export"  # `funnel_tfm.export --format=hf` keeps the vocabulary under tokenizer/
    hf_dir(ours / "tokenizer", lower_case=None)
    assert finetune_cli.hf_spellings(finetune_like(f"--model_name_or_path={ours}"))["tokenizer_path"] == \
        os.path.join(ours, "tokenizer", "vocab.txt")


def test_batch_size_fills_every_batch_size_not_given():
    assert finetune_cli.hf_spellings(finetune_like("--batch_size=24")) == {
        "train_batch_size": 24, "eval_batch_size": 24, "predict_batch_size": 24}
    assert finetune_cli.hf_spellings(finetune_like("--batch_size=24", "--eval_batch_size=4")) == {
        "train_batch_size": 24, "predict_batch_size": 24}
    assert finetune_cli.hf_spellings(finetune_like()) == {}


def test_version_2_with_negative_is_the_squad_version():
    assert finetune_cli.hf_spellings(finetune_like("--version_2_with_negative", squad=True)) == {
        "train_version": "v2", "eval_version": "v2"}
    assert finetune_cli.hf_spellings(finetune_like("--noversion_2_with_negative", squad=True)) == {
        "train_version": "v1", "eval_version": "v1"}
    assert finetune_cli.hf_spellings(finetune_like("--version_2_with_negative", "--eval_version=v2", squad=True))
    with pytest.raises(LegacyFlagError, match="--version_2_with_negative=True contradicts --train_version=v1"):
        finetune_cli.hf_spellings(finetune_like("--version_2_with_negative", "--train_version=v1", squad=True))


def test_model_directory_errors_name_the_flag(tmp_path):
    with pytest.raises(LegacyFlagError, match="funnel-transformer/small: not a directory .*huggingface-cli"):
        finetune_cli.hf_spellings(finetune_like("--model_name_or_path=funnel-transformer/small"))
    model = hf_dir(tmp_path / "m")
    with pytest.raises(LegacyFlagError, match="contradicts --init_checkpoint=elsewhere"):
        finetune_cli.hf_spellings(finetune_like(f"--model_name_or_path={model}", "--init_checkpoint=elsewhere"))
    os.remove(os.path.join(model, "vocab.txt"))
    with pytest.raises(LegacyFlagError, match="no vocabulary in it .*give --tokenizer_path"):
        finetune_cli.hf_spellings(finetune_like(f"--model_name_or_path={model}"))
    open(os.path.join(model, "tokenizer_config.json"), "w").write("{not json")
    with pytest.raises(LegacyFlagError, match="tokenizer_config.json: not a readable JSON object"):
        finetune_cli.hf_spellings(finetune_like(f"--model_name_or_path={model}", "--tokenizer_path=v.txt"))


@pytest.mark.slow  # ~40 s: a subprocess that writes records, trains and evaluates
def test_paddle_glue_command_finetunes_a_transformers_directory(tmp_path):
    """PaddleNLP's run_glue.py line (seed 003: --model_name_or_path --task_name --batch_size --learning_rate
    --num_train_epochs) plus the three directories this program needs, on a transformers-format tiny model
    with the real BERT vocabulary beside its config.json."""
    from funnel_tfm.data import data_fetch
    keras.utils.set_random_seed(3)
    model_dir = str(tmp_path / "xlarge")
    export(from_model(FunnelTFM(ModelConfig(**TINY), use_decoder=False)), model_dir, to="hf", overwrite=True)
    shutil.copyfile(data_fetch.bert_uncased_vocab(), os.path.join(model_dir, "vocab.txt"))
    data_dir, _ = movie_review_cola(tmp_path / "CoLA")
    run = run_classifier(f"--model_name_or_path={model_dir}", "--task_name=cola", "--batch_size=16",
                         "--learning_rate=1e-5", "--num_train_epochs=1", f"--data_dir={data_dir}",
                         f"--output_dir={tmp_path / 'proc'}", f"--model_dir={tmp_path / 'exp'}", "--do_train",
                         "--do_eval", f"--max_seq_length={SEQ_LEN}", "--iterations=1")
    assert "initialized" in run.stdout  # the backbone came from --model_name_or_path
    results = [json.loads(line) for line in open(tmp_path / "exp" / "eval" / "dev" / "results.jsonl")]
    assert [r["step"] for r in results] == [3] and results[0]["num_examples"] == 13  # 48 examples / 16 = 3 steps
    missing = run_classifier("--model_name_or_path=funnel-transformer/small", "--task_name=cola", "--do_train",
                             f"--data_dir={data_dir}", "--output_dir=p", "--model_dir=m", check=False)
    assert missing.returncode == 1 and "classifier: error: --model_name_or_path=funnel-transformer/small: not a " \
                                      "directory" in missing.stderr


def test_squad_takes_version_2_with_negative():
    """The flag exists on squad (PaddleNLP's run_squad line) and a contradiction is one error line."""
    run = run_entry_point("squad", "--noversion_2_with_negative", "--train_version=v2", "--do_train",
                          "--train_file=t.json", "--output_dir=p", "--model_dir=m", "--tokenizer_path=v.txt", check=False)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == "squad: error: --version_2_with_negative=False contradicts --train_version=v2: give " \
                                 "one of them, or equal values"
