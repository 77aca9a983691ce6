"""Every numeric flag of every entry point is checked where it is defined (funnel_tfm/flag_checks.py), and a bad
value is one line, `<prog>: error: --flag=value: why`, exit status 1, before anything is read or written."""

import json
import os
import subprocess
import sys

import pytest

from robust_helpers import run

ENTRY_POINTS = ("classifier", "race", "squad", "tagger", "pretrain", "create_pretrain_data", "build_vocab", "convert",
                "export", "predict", "describe", "demo")
# Integer flags where every value means something (a column counted from the end, ...): the only ones left
# unchecked, each with its reason.
UNCHECKED = {"tag_column": "0-based column, negative counts from the end (-1: the last)"}

_LIST_FLAGS = r"""
import importlib, json, sys
from absl import flags
importlib.import_module("funnel_tfm." + sys.argv[1])
found = {}
for name, flag in flags.FLAGS._flags().items():
    if name != flag.name or flags.FLAGS.find_module_defining_flag(name).startswith("absl"):
        continue
    parser = flag.parser
    if type(parser).__name__ in ("IntegerParser", "FloatParser"):
        bounded = parser.lower_bound is not None or parser.upper_bound is not None
        found[name] = bounded or bool(flag.validators)
print(json.dumps(found))
"""


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_every_numeric_flag_has_a_check(module):
    listed = subprocess.run([sys.executable, "-c", _LIST_FLAGS, module], capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    unchecked = sorted(name for name, checked in json.loads(listed.stdout).items()
                       if not checked and name not in UNCHECKED)
    assert not unchecked, f"funnel_tfm.{module}: numeric flags without a range check: {unchecked}"


CASES = [  # (entry point, arguments, the error line's text after "<prog>: error: ")
    ("classifier", ["--learning_rate=0"], "--learning_rate=0.0: must be > 0"),
    ("classifier", ["--learning_rate=-1e-4"], "--learning_rate=-0.0001: must be > 0"),
    ("classifier", ["--num_train_epochs=-1"], "--num_train_epochs=-1.0: must be > 0"),
    ("classifier", ["--adam_beta1=1.5"], "--adam_beta1=1.5: must be in [0, 1)"),
    ("classifier", ["--train_batch_size=0"], "--train_batch_size=0: 0 is not a positive integer"),
    ("classifier", ["--eval_batch_size=0"], "--eval_batch_size=0: 0 is not a positive integer"),
    ("classifier", ["--save_steps=-5"], "--save_steps=-5: -5 is not a non-negative integer"),
    ("classifier", ["--weight_decay=-0.01"], "--weight_decay=-0.01: must be >= 0"),
    ("classifier", ["--dropout=1.0"], "--dropout=1.0: must be in [0, 1)"),
    ("pretrain", ["--iterations=0"], "--iterations=0: 0 is not a positive integer"),
    ("pretrain", ["--width_shrink=0"], "--width_shrink=0.0: must be in (0, 1]"),
    ("race", ["--max_qa_length=0"], "--max_qa_length=0: 0 is not a positive integer"),
    ("squad", ["--doc_stride=0"], "--doc_stride=0: 0 is not a positive integer"),
    ("squad", ["--start_n_top=0"], "--start_n_top=0: 0 is not a positive integer"),
    ("squad", ["--num_proc=2", "--proc_id=2"], "--proc_id=2, --num_proc=2: must be < --num_proc"),
    ("predict", ["--batch_size=0"], "--batch_size=0: 0 is not a positive integer"),
    ("predict", ["--max_chars=-1"], "--max_chars=-1: -1 is not a positive integer"),
    ("build_vocab", ["--vocab_size=-5"], "--vocab_size=-5: -5 is not a positive integer"),
    ("create_pretrain_data", ["--seq_len=2"], "--seq_len=2: 2 is not integer >= 4"),
]


@pytest.mark.parametrize("module, arguments, message", CASES, ids=[f"{c[0]}{c[1][0]}" for c in CASES])
def test_a_bad_value_is_one_line_before_anything_runs(tmp_path, module, arguments, message):
    model_dir = tmp_path / "model_dir"
    result = run(module, *arguments, f"--model_dir={model_dir}" if module not in ("predict", "build_vocab",
                                                                                  "create_pretrain_data") else "-v=0",
                 cwd=str(tmp_path))
    assert result.returncode == 1, result.stdout[-1000:] + result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [f"{module}: error: {message}"], result.stderr[-2000:]
    assert os.listdir(tmp_path) == []  # nothing written, not even the model_dir
