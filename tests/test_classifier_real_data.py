"""Tiny models finetuned on real labelled text through the CLI learn something real: movie-review sentiment
(SST-2 layout; 10,605 Rotten Tomatoes sentences with human scores), the same scores as a regression, and
SpamAssassin's emails as a custom CSV task. Random initialisation, a few hundred steps on 2 CPU cores."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from funnel_tfm.config import ModelConfig
from funnel_tfm.data import data_fetch
from test_classifier import TINY, run_classifier


@pytest.fixture(scope="module")
def real_dirs(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("real")
    dirs = data_fetch.glue_style_movie_reviews(str(root / "glue"))
    dirs["spam"] = data_fetch.spam_csv(str(root / "spam"), max_chars=1500)  # subject and the start of the body
    return dirs


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("config") / "tiny.json")
    ModelConfig(**{**TINY, "d_model": 64, "d_embed": 64, "n_head": 4, "d_inner": 128}).to_json(path)
    return path


def _finetune(tmp_path, task_args: list[str], data_dir: str, config: str, steps: int, seq_len: int) -> dict:
    model_dir = str(tmp_path / "exp")
    run_classifier(*task_args, f"--data_dir={data_dir}", f"--output_dir={tmp_path / 'proc'}",
                   f"--model_dir={model_dir}", f"--tokenizer_path={data_fetch.bert_uncased_vocab()}",
                   f"--model_config={config}", f"--max_seq_length={seq_len}", "--do_train=True", "--do_eval=True",
                   "--train_batch_size=32", f"--train_steps={steps}", f"--save_steps={steps}",
                   f"--warmup_steps={steps // 10}", "--learning_rate=1e-3", "--eval_batch_size=64", "--iterations=100",
                   "--jit_compile=False")  # XLA on CPU is ~5x slower than plain TF for a model this small
    best = json.load(open(os.path.join(model_dir, "best_result.json")))
    print(task_args[0], {k: v for k, v in best.items() if k not in ("path", "split")})
    return best


def _majority(path: str, column: int, header: bool = True) -> float:
    with open(path, encoding="utf-8") as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle][1 if header else 0:]
    counts = Counter(row[column] for row in rows)
    return max(counts.values()) / len(rows)


def test_movie_review_sentiment_beats_the_majority_class(tmp_path, real_dirs, tiny_config):
    best = _finetune(tmp_path, ["--task_name=sst-2"], real_dirs["SST-2"], tiny_config, steps=300, seq_len=32)
    majority = _majority(os.path.join(real_dirs["SST-2"], "dev.tsv"), 1)
    assert best["num_examples"] > 900
    assert best["accuracy"] > majority + 0.08, (best, majority)


def test_movie_review_scores_as_regression_correlate(tmp_path, real_dirs, tiny_config):
    best = _finetune(tmp_path, ["--task_name=custom", "--text_column=sentence", "--label_column=score",
                                "--regression=True"], real_dirs["MR-REG"], tiny_config, steps=200, seq_len=32)
    assert best["pearson"] > 0.2 and best["spearman"] > 0.2, best


def test_spam_emails_as_custom_csv(tmp_path, real_dirs, tiny_config):
    best = _finetune(tmp_path, ["--task_name=custom", "--text_column=text", "--label_column=label"],
                     real_dirs["spam"], tiny_config, steps=100, seq_len=96)
    assert best["accuracy"] > 0.9, best  # the majority class (ham) is ~0.69
