"""The original release's flags: every mapping onto ours, every contradiction, and the entry points taking them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from absl import flags

from funnel_tfm import legacy_flags
from funnel_tfm.data import data_fetch
from funnel_tfm.legacy_flags import LegacyFlagError


def pretrain_like(*argv: str) -> flags.FlagValues:
    """A fresh FlagValues with pretrain's flags that the original ones map onto, parsed from `argv`."""
    fv = flags.FlagValues()
    flags.DEFINE_enum("strategy", "one_device", ["one_device", "mirrored", "multi_worker", "tpu"], "", flag_values=fv)
    flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"], "", flag_values=fv)
    flags.DEFINE_string("tpu", None, "ours", flag_values=fv)
    flags.DEFINE_string("model_config", "", "", flag_values=fv)
    flags.DEFINE_string("tokenizer_path", None, "", flag_values=fv)
    legacy_flags.define(fv, train_only=True)
    fv(["prog", *argv])
    return fv


def data_like(*argv: str) -> flags.FlagValues:
    """A fresh FlagValues with create_pretrain_data's task flags, parsed from `argv`."""
    fv = flags.FlagValues()
    flags.DEFINE_integer("num_proc", 1, "", flag_values=fv)
    flags.DEFINE_integer("proc_id", 0, "", flag_values=fv)
    flags.DEFINE_string("tokenizer_path", None, "", flag_values=fv)
    legacy_flags.define(fv)
    fv(["prog", *argv])
    return fv


def contradiction(fv: flags.FlagValues, **kwargs) -> str:
    with pytest.raises(LegacyFlagError) as caught:
        legacy_flags.resolve(fv, **kwargs)
    return str(caught.value)


# ------------------------------------------------------------------------------------------------ defining
def test_defines_what_is_absent_and_reuses_what_exists():
    fv = pretrain_like()
    assert fv["tpu"].help == "ours"  # not redefined
    for name in ("use_tpu", "tpu_job_name", "tpu_zone", "gcp_project", "master", "num_hosts", "num_core_per_host",
                 "use_bfloat16", "tokenizer_type", "verbose", "overwrite", "model_config_path", "eval_all_ckpt",
                 "do_train", "do_eval", "eval_ckpt_path", "eval_batch_size", "max_eval_batch", "start_eval_steps",
                 "eval_split"):
        assert name in fv, name
    data = data_like()
    assert "num_task" in data and "task" in data and "model_config_path" not in data and "do_eval" not in data
    assert "num_task" not in fv  # only where --num_proc exists


def test_nothing_given_changes_nothing():
    assert legacy_flags.resolve(pretrain_like(), train_only=True) == {
        "strategy": "one_device", "precision": "float32", "model_config": "", "tpu": None, "verbose": False}
    assert legacy_flags.resolve(data_like()) == {"num_proc": 1, "proc_id": 0, "tpu": None, "verbose": False}


# ------------------------------------------------------------------------------------------------ mappings
@pytest.mark.parametrize("argv, strategy", [
    (["--use_tpu=True"], "tpu"),
    (["--use_tpu", "--num_hosts=4", "--num_core_per_host=8"], "tpu"),  # counts are informational on TPU
    (["--strategy=tpu", "--num_core_per_host=8"], "tpu"),
    (["--use_tpu=False"], "one_device"),
    (["--use_tpu=False", "--num_core_per_host=1", "--num_hosts=1"], "one_device"),  # the README's GPU recipe
    (["--num_core_per_host=4"], "mirrored"),
    (["--use_tpu=False", "--num_core_per_host=4", "--strategy=mirrored"], "mirrored"),
    (["--num_core_per_host=4", "--strategy=multi_worker"], "multi_worker"),
    (["--num_hosts=2"], "multi_worker"),
    (["--num_hosts=2", "--num_core_per_host=8"], "multi_worker"),
    (["--use_tpu=True", "--strategy=tpu"], "tpu"),  # equal values are no contradiction
])
def test_strategy(argv, strategy):
    assert legacy_flags.resolve(pretrain_like(*argv))["strategy"] == strategy


@pytest.mark.parametrize("argv, precision", [
    (["--use_bfloat16=True"], "mixed_bfloat16"),
    (["--use_bfloat16"], "mixed_bfloat16"),
    (["--use_bfloat16=True", "--precision=mixed_bfloat16"], "mixed_bfloat16"),
    (["--use_bfloat16=False"], "float32"),
    (["--use_bfloat16=False", "--precision=mixed_float16"], "mixed_float16"),
])
def test_precision(argv, precision):
    assert legacy_flags.resolve(pretrain_like(*argv))["precision"] == precision


def test_renames():
    settings = legacy_flags.resolve(pretrain_like("--model_config_path=cfg/net_config.json", "--master=grpc://h:8470",
                                                  "--verbose"))
    assert settings["model_config"] == "cfg/net_config.json" and settings["tpu"] == "grpc://h:8470"
    assert settings["verbose"] is True
    same = pretrain_like("--model_config_path=B4-4-4H768", "--model_config=B4-4-4H768", "--master=x", "--tpu=x")
    assert legacy_flags.resolve(same)["model_config"] == "B4-4-4H768"
    settings = legacy_flags.resolve(data_like("--num_task=8", "--task=3"))
    assert (settings["num_proc"], settings["proc_id"]) == (8, 3)
    assert legacy_flags.resolve(data_like("--num_task=8", "--num_proc=8", "--task=0", "--proc_id=0"))["num_proc"] == 8


@pytest.mark.parametrize("spelling, path", [
    ("word_piece", "vocab.txt"), ("WordPiece", "vocab.uncased.txt"), ("WORD_PIECE", "gs://b/vocab.txt"),
    ("sentence_piece", "spm.model"), ("sent_piece", "spm.model"), ("SentencePiece", "gs://b/spm.model"),
])
def test_tokenizer_type_that_fits_the_path(spelling, path):
    legacy_flags.resolve(pretrain_like(f"--tokenizer_type={spelling}", f"--tokenizer_path={path}"))
    legacy_flags.resolve(data_like(f"--tokenizer_type={spelling}", f"--tokenizer_path={path}"))


def test_tokenizer_type_alone_or_unknown():
    legacy_flags.resolve(pretrain_like("--tokenizer_type=sentence_piece"))  # the missing path is reported elsewhere
    with pytest.raises(flags.IllegalFlagValueError):
        pretrain_like("--tokenizer_type=bpe")
    assert legacy_flags.tokenizer_kind("SentencePiece") == "sentence_piece"


def test_run_modes_that_only_train():
    legacy_flags.resolve(pretrain_like("--do_train=True", "--do_eval=False", "--eval_all_ckpt", "--overwrite",
                                       "--eval_batch_size=8", "--eval_split=dev"), train_only=True)
    assert "not implemented" in contradiction(pretrain_like("--do_eval=True"), train_only=True)
    assert "--do_train=False" in contradiction(pretrain_like("--do_train=False"), train_only=True)


def test_notices_name_the_unused_tpu_address_flags():
    assert legacy_flags.notices(pretrain_like("--tpu=x")) == []
    messages = legacy_flags.notices(pretrain_like("--tpu_zone=us-central1-a", "--gcp_project=p"))
    assert [m.split()[0] for m in messages] == ["--tpu_zone", "--gcp_project"]


# ------------------------------------------------------------------------------------------------ contradictions
@pytest.mark.parametrize("argv, original, ours", [
    (["--use_tpu=True", "--strategy=mirrored"], "--use_tpu=True", "--strategy=mirrored"),
    (["--use_tpu=False", "--strategy=tpu"], "--use_tpu=False", "--strategy=tpu"),
    (["--num_hosts=2", "--strategy=mirrored"], "--num_hosts=2", "--strategy=mirrored"),
    (["--num_hosts=2", "--strategy=one_device"], "--num_hosts=2", "--strategy=one_device"),
    (["--num_core_per_host=8", "--strategy=one_device"], "--num_core_per_host=8", "--strategy=one_device"),
    (["--use_bfloat16=True", "--precision=mixed_float16"], "--use_bfloat16=True", "--precision=mixed_float16"),
    (["--use_bfloat16=True", "--precision=float32"], "--use_bfloat16=True", "--precision=float32"),
    (["--use_bfloat16=False", "--precision=mixed_bfloat16"], "--use_bfloat16=False", "--precision=mixed_bfloat16"),
    (["--model_config_path=a", "--model_config=b"], "--model_config_path=a", "--model_config=b"),
    (["--master=grpc://a:8470", "--tpu=b"], "--master=grpc://a:8470", "--tpu=b"),
    (["--tokenizer_type=sentence_piece", "--tokenizer_path=vocab.txt"], "--tokenizer_type",
     "--tokenizer_path=vocab.txt"),
    (["--tokenizer_type=word_piece", "--tokenizer_path=spm.model"], "--tokenizer_type", "--tokenizer_path=spm.model"),
])
def test_contradiction_names_both_flags(argv, original, ours):
    message = contradiction(pretrain_like(*argv))
    assert original in message and ours in message, message


@pytest.mark.parametrize("argv, original, ours", [
    (["--num_task=4", "--num_proc=2"], "--num_task=4", "--num_proc=2"),
    (["--task=1", "--proc_id=0"], "--task=1", "--proc_id=0"),
])
def test_task_contradiction_names_both_flags(argv, original, ours):
    message = contradiction(data_like(*argv))
    assert original in message and ours in message, message


def test_counts_below_one_are_rejected_by_absl():
    for argv in (["--num_hosts=0"], ["--num_core_per_host=0"]):
        with pytest.raises(flags.IllegalFlagValueError):
            pretrain_like(*argv)


def test_an_empty_count_is_not_given():
    """The seed README's IMDB command passes `--num_hosts=${NUM_HOST}`, a variable its script never sets."""
    fv = pretrain_like("--num_hosts=", "--num_core_per_host=8")
    assert fv.num_hosts is None and legacy_flags.resolve(fv, train_only=True)["strategy"] == "mirrored"
    with pytest.raises(flags.IllegalFlagValueError, match="invalid literal"):
        pretrain_like("--num_core_per_host=x")


# ------------------------------------------------------------------------------------------------ entry points
def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_create_pretrain_data_takes_the_original_flags(tmp_path):
    (tmp_path / "a.txt").write_text("The first sentence of a document.\nAnd its second sentence here.\n\n"
                                    "Another document starts here.\nIt has two sentences as well.\n")
    save_dir = tmp_path / "records"
    done = run_module("funnel_tfm.create_pretrain_data", f"--input_glob={tmp_path / '*.txt'}",
                      f"--save_dir={save_dir}", f"--tokenizer_path={data_fetch.bert_uncased_vocab()}", "--seq_len=16",
                      "--tokenizer_type=word_piece", "--num_task=1", "--task=0", "--use_tpu=False",
                      "--use_bfloat16=False", "--uncased=True", "--pass_id=0", "--split=train", "--min_doc_len=1")
    assert done.returncode == 0, done.stderr
    names = sorted(os.listdir(save_dir))
    assert names == ["data.train.pass-0.seq-16.uncased.tfrecord-00000-of-00001",
                     "meta.train.pass-0.seq-16.uncased.json-00000-of-00001"], names
    examples = int(re.search(r"(\d+) examples in 1 record files", done.stdout).group(1))
    assert examples > 0, done.stdout


def error_line(result: subprocess.CompletedProcess, prog: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"{prog}: error:")]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    return lines[0]


def test_create_pretrain_data_contradiction_is_one_error_line(tmp_path):
    result = run_module("funnel_tfm.create_pretrain_data", f"--input_glob={tmp_path / '*.txt'}",
                        f"--save_dir={tmp_path}", f"--tokenizer_path={tmp_path / 'spm.model'}",
                        "--tokenizer_type=word_piece", "--num_task=2", "--task=0")
    line = error_line(result, "create_pretrain_data")
    assert "--tokenizer_type=word_piece" in line and "--tokenizer_path=" in line


@pytest.mark.parametrize("args, named", [
    (["--use_tpu=True", "--strategy=mirrored"], ["--use_tpu=True", "--strategy=mirrored"]),
    (["--tokenizer_type=sentence_piece"], ["--tokenizer_type=sentence_piece", "--tokenizer_path="]),
    (["--do_eval=True"], ["--do_eval=True", "not implemented"]),
])
def test_pretrain_rejects_a_contradiction_before_any_work(tmp_path, args, named):
    # No records exist: the contradiction must be reported before the records (or TensorFlow) are looked at.
    result = run_module("funnel_tfm.pretrain", f"--record_dir={tmp_path / 'none'}", f"--model_dir={tmp_path / 'm'}",
                        f"--tokenizer_path={data_fetch.bert_uncased_vocab()}", "--seq_len=16", "--num_predict=2",
                        *args)
    line = error_line(result, "pretrain")
    assert all(name in line for name in named), line
    assert not os.path.exists(tmp_path / "m")
