"""The one-GPU recipes in scripts/ run as written (on the CPU, with a tiny released-format checkpoint, tiny data
and short-run overrides passed through "$@"): preprocessing, micro-batched training, evaluation of every
checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from funnel_tfm.checkpoints.loading import export, from_model
from funnel_tfm.config import ModelConfig
from funnel_tfm.data import data_fetch
from funnel_tfm.modeling import FunnelTFM
from test_classifier import TINY
from test_race import synthetic_race
from test_squad import synthetic_squad

pytestmark = pytest.mark.slow  # whole recipes in subprocesses: `python -m pytest -m slow` (CI runs it)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def released_checkpoint(tmp_path_factory) -> str:
    """A tiny model with its decoder in the original release's layout: net_config.json, model.ckpt.*, vocab."""
    directory = str(tmp_path_factory.mktemp("ckpt") / "B1-1H32-TF")
    model = FunnelTFM(ModelConfig(**TINY), use_decoder=True)
    export(from_model(model), directory, to="original")
    shutil.copy(data_fetch.bert_uncased_vocab(), os.path.join(directory, "vocab.uncased.txt"))
    return directory


def run_script(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PATH": f"{os.path.dirname(sys.executable)}:"
                   f"{os.environ['PATH']}", **env}
    result = subprocess.run(["bash", os.path.join(REPO, "scripts", name), *args], capture_output=True, text=True,
                            timeout=900, env=environment, cwd=env.get("CWD", REPO))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_squad_one_gpu_script(tmp_path, released_checkpoint):
    data = synthetic_squad(str(tmp_path), n_train=48, n_dev=16)
    squad_dir = tmp_path / "squad"
    squad_dir.mkdir()
    os.rename(data["train"]["path"], squad_dir / "train-v2.0.json")
    os.rename(data["dev"]["path"], squad_dir / "dev-v2.0.json")
    out = tmp_path / "exp"
    result = run_script("squad_one_gpu.sh", {
        "SQUAD_DIR": str(squad_dir), "MODEL_DIR": released_checkpoint, "OUT": str(out), "NUM_PROC": "2",
        "MAX_SEQ_LENGTH": "64", "MAX_QUERY_LENGTH": "24", "PRECISION": "float32", "BATCH": "8",
        "MICRO_BATCHES": "2", "TRAIN_STEPS": "4", "SAVE_STEPS": "2", "WARMUP_STEPS": "1"},
        "--max_seq_length=64", "--max_query_length=24", "--jit_compile=False")
    assert "initialized" in result.stdout and "in 2 micro-batches" in result.stdout
    assert "training on 2 record file(s)" in result.stdout  # NUM_PROC=2: two shards, both read
    assert sorted(os.listdir(out / "proc_data")).count("vocab.uncased.txt.1.slen-64.qlen-24.train.tfrecord") == 1
    rows = [json.loads(line) for line in open(out / "run" / "eval" / "dev" / "results.jsonl")]
    assert [r["step"] for r in rows] == [2, 4] and rows[-1]["total"] == 16
    assert (out / "run" / "predict" / "4.null_odds.json").exists()


def test_race_one_gpu_script(tmp_path, released_checkpoint):
    synthetic_race(str(tmp_path / "RACE"), limit=24)
    out = tmp_path / "exp"
    result = run_script("race_one_gpu.sh", {
        "RACE_DIR": str(tmp_path / "RACE"), "MODEL_DIR": released_checkpoint, "OUT": str(out),
        "PRECISION": "float32", "BATCH": "4", "MICRO_BATCHES": "2", "TRAIN_STEPS": "2", "WARMUP_STEPS": "1"},
        "--max_seq_length=64", "--max_qa_length=16", "--save_steps=2", "--iterations=2", "--jit_compile=False")
    assert "in 2 micro-batches" in result.stdout
    best = json.load(open(out / "run" / "best_result.json"))
    assert best["step"] == 2 and best["num_examples"] > 0
