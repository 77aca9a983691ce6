"""`python -m funnel_tfm.classifier`: the seed README's command lines, exact evaluation on two replicas,
resumption, prediction and submission files, bad input; a tiny model learning real movie-review sentiment."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn import metrics as sk

from funnel_tfm.checkpoints import export
from funnel_tfm.checkpoints.loading import from_model
from funnel_tfm.config import ModelConfig
from funnel_tfm.data import data_fetch
from funnel_tfm.modeling import FunnelTFM

SEQ_LEN = 32
TINY = {"block_size": "1_1", "d_model": 32, "d_embed": 32, "n_head": 2, "d_head": 16, "d_inner": 64,
        "vocab_size": 30522}


def run_entry_point(module: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m funnel_tfm.<module> args...` on the CPU; with `check`, a non-zero exit fails with its output."""
    result = subprocess.run([sys.executable, "-m", f"funnel_tfm.{module}", *args], capture_output=True, text=True,
                            timeout=900, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def run_classifier(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_entry_point("classifier", *args, check=check)


@pytest.fixture(scope="module")
def vocab() -> str:
    return data_fetch.bert_uncased_vocab()


@pytest.fixture(scope="module")
def reviews() -> list[tuple[str, float]]:
    return data_fetch.movie_review_snippets()


def write_cola(directory, rows: list[tuple[str, int]], dev: list[tuple[str, int]], test: list[str]) -> str:
    """The real CoLA layout: train/dev without header (source, label, original label, sentence), test with
    header `index\\tsentence`."""
    os.makedirs(directory, exist_ok=True)
    for name, items in (("train.tsv", rows), ("dev.tsv", dev)):
        with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
            for text, label in items:
                handle.write(f"mr\t{label}\t\t{text}\n")
    with open(os.path.join(directory, "test.tsv"), "w", encoding="utf-8") as handle:
        handle.write("index\tsentence\n" + "".join(f"{i}\t{text}\n" for i, text in enumerate(test)))
    return str(directory)


def movie_review_cola(directory) -> tuple[str, list[str]]:
    """A small CoLA folder of real movie-review sentences (48 train, 13 dev, 3 test): (its path, the dev texts)."""
    clean = [(t.replace("\t", " "), int(s > 0)) for t, s in data_fetch.movie_review_snippets() if s != 0]
    dev = clean[1000:1013]
    return write_cola(directory, clean[:48], dev, [t for t, _ in clean[2000:2003]]), [t for t, _ in dev]


@pytest.fixture(scope="module")
def cola_dir(tmp_path_factory, reviews) -> str:
    clean = [(text.replace("\t", " "), int(score > 0)) for text, score in reviews if score != 0]
    return write_cola(tmp_path_factory.mktemp("glue") / "CoLA", clean[:64], clean[1000:1013],
                      [t for t, _ in clean[2000:2011]])


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> str:
    """A tiny model exported in the original's format: net_config.json + model.ckpt (what MODEL_DIR holds)."""
    keras.utils.set_random_seed(3)
    model = FunnelTFM(ModelConfig(**TINY), use_decoder=False)
    directory = str(tmp_path_factory.mktemp("pretrained"))
    export(from_model(model), directory, to="original", overwrite=True)
    return directory


def test_seed_readme_train_then_eval_commands(tmp_path, vocab, cola_dir, pretrained):
    """README (A.1) verbatim, paths and sizes aside: train (do_eval=False), then the evaluation command,
    which names neither the config nor the checkpoint (they come from model_dir)."""
    model_dir, proc = str(tmp_path / "exp"), str(tmp_path / "proc")
    trained = run_classifier(
        "--do_train=True", "--do_eval=False", "--task_name=cola", f"--data_dir={cola_dir}", f"--output_dir={proc}",
        f"--model_dir={model_dir}", "--uncased=True", "--tokenizer_type=word_piece", f"--tokenizer_path={vocab}",
        f"--model_config_path={pretrained}/net_config.json", f"--init_checkpoint={pretrained}/model.ckpt",
        f"--max_seq_length={SEQ_LEN}", "--train_batch_size=8", "--learning_rate=1e-5", "--train_steps=4",
        "--warmup_steps=1", "--iterations=2", "--save_steps=2", "--num_hosts=1", "--num_core_per_host=1")
    assert "initialized" in trained.stdout and "left at init" in trained.stdout  # the new cola/logit head
    assert os.path.exists(os.path.join(proc, "vocab.txt.len-32.train.tfrecord"))
    assert os.path.exists(os.path.join(proc, "vocab.txt.len-32.train.meta.json"))
    assert os.path.exists(os.path.join(model_dir, "done"))
    evaluated = run_classifier(
        "--do_train=False", "--do_eval=True", "--task_name=cola", f"--data_dir={cola_dir}", f"--output_dir={proc}",
        f"--model_dir={model_dir}", "--uncased=True", "--tokenizer_type=word_piece", f"--tokenizer_path={vocab}",
        f"--max_seq_length={SEQ_LEN}", "--eval_batch_size=8", "--num_hosts=1", "--num_core_per_host=1")
    results = [json.loads(line) for line in open(os.path.join(model_dir, "eval", "dev", "results.jsonl"))]
    assert [r["step"] for r in results] == [2, 4] and all(r["num_examples"] == 13 for r in results)
    best = json.load(open(os.path.join(model_dir, "best_result.json")))
    assert best["step"] in (2, 4) and "mcc" in best and "best mcc" in evaluated.stdout


def test_records_of_edited_data_are_refused_not_reused(tmp_path, vocab):
    """A dev label fixed in place (same path, same row count): the old records were reused silently."""
    from funnel_tfm.data.classifier_data import get_task
    from funnel_tfm.data.preprocessing import Preprocessor
    from funnel_tfm.training.classifier_job import ClassifierRun, prepare_records
    data = write_cola(tmp_path / "CoLA", [("a fine film", 1)], [("a dull film", 1), ("a good one", 1)], ["x"])
    run = ClassifierRun(task_name="cola", data_dir=data, output_dir=str(tmp_path / "proc"),
                        model_dir=str(tmp_path / "exp"), tokenizer_path=vocab, max_seq_length=16)
    preprocessor, lines = Preprocessor.from_file(vocab, seq_len=16), []
    for _ in range(2):
        prepare_records(run, get_task("cola", data), preprocessor, "dev", lines.append)
    assert lines[-1].startswith("reusing 2 dev examples")
    write_cola(tmp_path / "CoLA", [("a fine film", 1)], [("a dull film", 0), ("a good one", 1)], ["x"])
    with pytest.raises(ValueError, match=r"dev\.tfrecord was written with other settings \(data_sha256\); pass "
                                         r"--overwrite_data"):
        prepare_records(run, get_task("cola", data), preprocessor, "dev", lines.append)


def _direct_logits(model_dir: str, step: int, records_examples) -> np.ndarray:
    """Logits from the checkpoint's weights through a plain Keras forward pass, not through the evaluator."""
    from funnel_tfm.tasks.classification import ClassificationTask
    config = ModelConfig.from_json(os.path.join(model_dir, "net_config.json"))
    task = ClassificationTask.build(config, 2, scope="cola")
    tf.train.Checkpoint(**task.trackables()).read(os.path.join(model_dir, f"ckpt-{step}")).expect_partial()
    return np.asarray(task.model(records_examples, training=False))


def test_two_replicas_count_every_dev_example_once(tmp_path, vocab, cola_dir):
    """13 dev examples, eval batch 4 on 2 replicas: the metrics equal scikit-learn's on a direct forward pass."""
    from funnel_tfm.data.preprocessing import Preprocessor
    model_dir = str(tmp_path / "exp")
    config = tmp_path / "tiny.json"
    ModelConfig(**TINY).to_json(str(config))
    run_classifier("--task_name=cola", f"--data_dir={cola_dir}", f"--output_dir={tmp_path / 'proc'}",
                   f"--model_dir={model_dir}", f"--tokenizer_path={vocab}", f"--model_config={config}",
                   f"--max_seq_length={SEQ_LEN}", "--do_train=True", "--do_eval=True", "--train_batch_size=8",
                   "--train_steps=6", "--save_steps=3", "--learning_rate=1e-3", "--eval_batch_size=4",
                   "--strategy=mirrored", "--num_cpu_devices=2", "--iterations=3", "--jit_compile=False")
    results = [json.loads(line) for line in open(os.path.join(model_dir, "eval", "dev", "results.jsonl"))]
    assert [r["num_examples"] for r in results] == [13, 13]
    rows = [line.rstrip("\n").split("\t") for line in open(os.path.join(cola_dir, "dev.tsv"), encoding="utf-8")]
    features = Preprocessor.from_file(vocab, seq_len=SEQ_LEN)(tf.constant([r[3] for r in rows]))
    labels = np.array([int(r[1]) for r in rows])
    for result in results:
        predictions = _direct_logits(model_dir, result["step"], features).argmax(-1)
        assert result["accuracy"] == pytest.approx(sk.accuracy_score(labels, predictions), abs=1e-9)
        assert result["mcc"] == pytest.approx(sk.matthews_corrcoef(labels, predictions), abs=1e-9)


@pytest.mark.slow  # the kill-and-resume mechanism is the shared loop's: tests/training/test_pretrain.py runs it always
def test_sigkill_and_restart_equal_an_uninterrupted_run(tmp_path, vocab, cola_dir):
    """Killed (SIGKILL) after its first checkpoint and restarted, a run ends with the uninterrupted run's weights."""
    config = tmp_path / "tiny.json"
    ModelConfig(**TINY).to_json(str(config))
    common = ["--task_name=cola", f"--data_dir={cola_dir}", f"--output_dir={tmp_path / 'proc'}",
              f"--tokenizer_path={vocab}", f"--model_config={config}", f"--max_seq_length={SEQ_LEN}",
              "--do_train=True", "--train_batch_size=8", "--save_steps=3", "--iterations=3", "--learning_rate=1e-3",
              "--train_steps=45", "--warmup_steps=5"]
    whole, killed = str(tmp_path / "whole"), str(tmp_path / "killed")
    run_classifier(*common, f"--model_dir={whole}")
    process = subprocess.Popen([sys.executable, "-m", "funnel_tfm.classifier", *common, f"--model_dir={killed}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and tf.train.latest_checkpoint(killed) is None:  # the save is committed
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not os.path.exists(os.path.join(killed, "ckpt-45.index")), "finished before it could be killed"
    second = run_classifier(*common, f"--model_dir={killed}")
    assert "resumed from" in second.stdout
    for name, _ in tf.train.list_variables(os.path.join(whole, "ckpt-45")):
        if name.startswith("_CHECKPOINTABLE"):
            continue
        np.testing.assert_array_equal(tf.train.load_variable(os.path.join(whole, "ckpt-45"), name),
                                      tf.train.load_variable(os.path.join(killed, "ckpt-45"), name), err_msg=name)


def test_predict_and_submit_files(tmp_path, vocab, cola_dir):
    config = tmp_path / "tiny.json"
    ModelConfig(**TINY).to_json(str(config))
    model_dir = str(tmp_path / "exp")
    run_classifier("--task_name=cola", f"--data_dir={cola_dir}", f"--output_dir={tmp_path / 'proc'}",
                   f"--model_dir={model_dir}", f"--tokenizer_path={vocab}", f"--model_config={config}",
                   f"--max_seq_length={SEQ_LEN}", "--do_train=True", "--do_eval=True", "--do_predict=True",
                   "--do_submit=True", "--train_batch_size=8", "--train_steps=2", "--eval_batch_size=5",
                   "--predict_batch_size=3", "--retain_best=True", "--jit_compile=False")
    predictions = [json.loads(line) for line in open(os.path.join(model_dir, "predict", "dev.jsonl"))]
    assert len(predictions) == 13 and all(abs(sum(p["probabilities"].values()) - 1) < 1e-5 for p in predictions)
    with open(os.path.join(model_dir, "submit", "CoLA.tsv"), encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    assert rows[0] == ["index", "prediction"] and [r[0] for r in rows[1:]] == [str(i) for i in range(11)]
    assert {r[1] for r in rows[1:]} <= {"0", "1"}
    assert zipfile.ZipFile(os.path.join(model_dir, "submit", "submission.zip")).namelist() == ["CoLA.tsv"]
    assert os.path.exists(os.path.join(model_dir, "export", "model.safetensors"))  # the best, exported


def test_bad_input_is_one_clear_error(tmp_path, vocab, cola_dir, pretrained):
    bad = tmp_path / "bad"
    write_cola(bad, [("a fine film", 1), ("a dull film", 3)], [("ok", 1)], ["x"])
    common = [f"--output_dir={tmp_path / 'proc'}", f"--model_dir={tmp_path / 'exp'}", f"--tokenizer_path={vocab}",
              f"--max_seq_length={SEQ_LEN}", "--do_train=True", "--train_steps=1", "--task_name=cola"]
    result = run_classifier(*common, f"--data_dir={bad}", f"--init_checkpoint={pretrained}", check=False)
    assert result.returncode == 1 and "train.tsv:2" in result.stderr and "'3'" in result.stderr
    assert not os.path.exists(tmp_path / "proc" / "vocab.txt.len-32.train.tfrecord")
    result = run_classifier(*common, f"--data_dir={tmp_path / 'nowhere'}", f"--init_checkpoint={pretrained}",
                            check=False)
    assert result.returncode == 1 and "nowhere" in result.stderr
    other = tmp_path / "other.json"
    ModelConfig(**{**TINY, "d_inner": 48}).to_json(str(other))
    result = run_classifier(*common, f"--data_dir={cola_dir}", f"--init_checkpoint={pretrained}",
                            f"--model_config={other}", check=False)
    assert result.returncode == 1 and "d_inner" in result.stderr
    result = run_classifier(*common, f"--data_dir={cola_dir}", f"--init_checkpoint={pretrained}", "--use_tpu=True",
                            "--strategy=mirrored", check=False)
    assert result.returncode == 1 and "--use_tpu" in result.stderr and "--strategy" in result.stderr
    # GLUE's test split has no labels: evaluating it scored every row against the first label, silently; now an
    # error before any training
    result = run_classifier(*common, "--do_eval=True", "--eval_split=test", f"--data_dir={cola_dir}",
                            f"--init_checkpoint={pretrained}", check=False)
    assert result.returncode == 1 and "test.tsv: the test split has unlabelled rows (the first: 0)" in result.stderr
    assert not os.path.exists(tmp_path / "proc" / "vocab.txt.len-32.test.tfrecord")
    assert not os.path.exists(tmp_path / "exp" / "checkpoint")


def test_watch_mode_evaluates_while_another_process_trains(tmp_path, vocab, cola_dir):
    """The evaluator starts first, waits for checkpoints, evaluates each once and exits after `done`."""
    config = tmp_path / "tiny.json"
    ModelConfig(**TINY).to_json(str(config))
    model_dir = str(tmp_path / "exp")
    common = ["--task_name=cola", f"--data_dir={cola_dir}", f"--output_dir={tmp_path / 'proc'}",
              f"--tokenizer_path={vocab}", f"--model_config={config}", f"--max_seq_length={SEQ_LEN}",
              f"--model_dir={model_dir}"]
    evaluator = subprocess.Popen([sys.executable, "-m", "funnel_tfm.classifier", *common, "--do_eval=True",
                                  "--eval_poll_secs=0.5", "--eval_batch_size=8"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_classifier(*common, "--do_train=True", "--train_batch_size=8", "--train_steps=6", "--save_steps=2",
                   "--iterations=2", "--jit_compile=False")
    stdout, stderr = evaluator.communicate(timeout=600)
    assert evaluator.returncode == 0, stdout[-2000:] + stderr[-2000:]
    results = [json.loads(line) for line in open(os.path.join(model_dir, "eval", "dev", "results.jsonl"))]
    assert [r["step"] for r in results] == [2, 4, 6]
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(os.path.join(model_dir, "eval", "dev")))
