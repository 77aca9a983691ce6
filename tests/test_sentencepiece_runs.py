"""Entry points that make a tokenizer and then seed, run end to end with a SentencePiece model (seeding clears
TensorFlow's kernel cache, which used to delete the model, see tests/data/test_sentencepiece_seeding.py): the
classifier CLI on real movie-review sentences with `--tokenizer_type=sentence_piece`, its raw-text SavedModel
in a fresh process; (slow) pretraining records and a few pretraining steps, and the race, tagger and squad CLIs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from funnel_tfm.config import ModelConfig
from funnel_tfm.data import data_fetch
from spm_helpers import train_sentencepiece
from test_classifier import TINY, run_classifier, run_entry_point, write_cola
from test_export import assert_served_like_do_predict

SEQ_LEN = 32


@pytest.fixture(scope="module")
def sentencepiece_model(tmp_path_factory) -> str:
    return train_sentencepiece(str(tmp_path_factory.mktemp("spm")))


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory, sentencepiece_model) -> dict:
    """A tiny CoLA run (real movie-review sentences, 1,000 SentencePiece pieces): train 6 steps, evaluate and
    predict on dev."""
    root = tmp_path_factory.mktemp("sp_classifier")
    clean = [(t.replace("\t", " "), int(s > 0)) for t, s in data_fetch.movie_review_snippets() if s != 0]
    dev = clean[1000:1013]
    cola = write_cola(root / "CoLA", clean[:48], dev, [t for t, _ in clean[2000:2003]])
    ModelConfig(**{**TINY, "vocab_size": 1000}).to_json(str(root / "tiny.json"))
    model_dir = str(root / "exp")
    done = run_classifier(
        "--task_name=cola", f"--data_dir={cola}", f"--output_dir={root / 'proc'}", f"--model_dir={model_dir}",
        "--tokenizer_type=sentence_piece", f"--tokenizer_path={sentencepiece_model}", "--uncased=True",
        f"--model_config={root / 'tiny.json'}", f"--max_seq_length={SEQ_LEN}", "--do_train=True", "--do_eval=True",
        "--do_predict=True", "--train_batch_size=8", "--train_steps=6", "--save_steps=3", "--iterations=3",
        "--learning_rate=3e-3", "--eval_batch_size=8", "--predict_batch_size=4", "--jit_compile=False")
    predictions = [json.loads(line) for line in open(os.path.join(model_dir, "predict", "dev.jsonl"))]
    return {"root": root, "model_dir": model_dir, "texts": [t for t, _ in dev], "predictions": predictions,
            "stdout": done.stdout}


@pytest.mark.slow  # a classifier run, ~20 s (the seeding regression: tests/data/test_sentencepiece_seeding.py)
def test_classifier_cli_trains_evaluates_and_predicts_with_sentencepiece(classifier_run, sentencepiece_model):
    import sentencepiece
    import tensorflow as tf
    from funnel_tfm.data.tokenization import sp_preprocess_with_sources
    model_dir = classifier_run["model_dir"]
    assert os.path.exists(os.path.join(model_dir, "done"))
    results = [json.loads(line) for line in open(os.path.join(model_dir, "eval", "dev", "results.jsonl"))]
    assert [r["step"] for r in results] == [3, 6] and all(r["num_examples"] == 13 for r in results)
    assert len(classifier_run["predictions"]) == 13
    # the records hold the model's pieces: every train record is a real sentence encoded by SentencePiece
    processor = sentencepiece.SentencePieceProcessor(model_file=sentencepiece_model)
    clean = [t.replace("\t", " ") for t, s in data_fetch.movie_review_snippets() if s != 0][:48]
    encoded = [processor.encode(sp_preprocess_with_sources(t, True).text) for t in clean]
    path = os.path.join(classifier_run["root"], "proc", f"spm.model.len-{SEQ_LEN}.train.tfrecord")
    specials = {processor.piece_to_id(p) for p in ("<pad>", "<cls>", "<sep>")}
    records = 0
    for raw in tf.data.TFRecordDataset(path):
        ids = tf.train.Example.FromString(raw.numpy()).features.feature["input_ids"].int64_list.value
        words = [i for i in ids if i not in specials]
        assert len(words) >= 3 and any(words == e[:len(words)] for e in encoded), words
        records += 1
    assert records == 48


@pytest.mark.slow  # the run above, an export and a fresh process
def test_sentencepiece_saved_model_in_a_fresh_process_equals_do_predict(classifier_run, tmp_path):
    """The raw-text export of the run tokenizes in-graph with the model it holds: labels and probabilities of
    `--do_predict`, in a process with only TensorFlow and tensorflow-text."""
    from funnel_tfm.serving.exporter import export_model
    saved = export_model(classifier_run["model_dir"], "saved_model", str(tmp_path / "serving" / "1"),
                         log=lambda line: None)
    reference = assert_served_like_do_predict(saved, classifier_run["texts"], classifier_run["predictions"], tmp_path)
    assert np.ptp(reference[:, 1]) > 0  # the texts do get different answers: the comparison can fail


@pytest.mark.slow  # two processes, ~35 s on 2 cores
def test_pretraining_records_and_steps_with_sentencepiece(tmp_path, sentencepiece_model):
    """create_pretrain_data writes records of the model's pieces; pretrain (tokenizer made, then seeded) trains a
    few ELECTRA steps on them (the generator masks with the model's <mask>) and exports."""
    import tensorflow as tf
    corpus = data_fetch.sotu_corpus()[1]
    records = str(tmp_path / "records")
    made = run_entry_point("create_pretrain_data", f"--input_glob={corpus}", f"--save_dir={records}",
                           f"--tokenizer_path={sentencepiece_model}", "--tokenizer_type=sentence_piece", "--seq_len=64")
    assert "record files" in made.stdout, made.stdout
    files = tf.io.gfile.glob(os.path.join(records, "*.tfrecord*"))
    ids = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(files[0]))).numpy())
    ids = list(ids.features.feature["input"].int64_list.value)
    assert max(ids) < 1000 and len(set(ids)) > 20, ids
    model_dir = str(tmp_path / "run")
    trained = run_entry_point(
        "pretrain", f"--record_dir={records}", f"--tokenizer_path={sentencepiece_model}",
        "--tokenizer_type=sentence_piece", f"--model_dir={model_dir}", "--seq_len=64", "--num_predict=10",
        "--loss_type=electra", "--train_batch_size=8", "--train_steps=4", "--iterations=2", "--save_steps=2",
        "--learning_rate=1e-3", "--warmup_steps=1", "--jit_compile=false", "--block_size=1_1", "--decoder_size=1",
        # the ELECTRA generator has a quarter of the heads: 4, not 2
        "--d_model=64", "--d_embed=64", "--n_head=4", "--d_head=16", "--d_inner=128", "--vocab_size=1000")
    assert os.path.exists(os.path.join(model_dir, "export")), trained.stdout[-2000:]
    losses = [json.loads(line) for line in open(os.path.join(model_dir, "metrics.jsonl"))]
    assert losses and all(np.isfinite(row["loss"]) for row in losses), losses


def _task_args(task: str, root, model_config: str) -> list[str]:
    """The data and length flags of a tiny run of `task` on real text (the runs of tests/task_runs.py)."""
    if task == "race":
        from test_race import synthetic_race
        synthetic_race(str(root / "RACE"), limit=32)
        return [f"--data_dir={root / 'RACE'}", "--max_seq_length=48", "--max_qa_length=9",
                f"--model_config_path={model_config}", "--use_tpu=False"]
    if task == "tagger":
        from test_tagger import GOLD_COLUMN, write_chunking_dir
        return [f"--data_dir={write_chunking_dir(root / 'chunking')}", f"--tag_column={GOLD_COLUMN}",
                "--max_seq_length=24", f"--model_config={model_config}", "--predict_split=dev"]
    from test_squad import synthetic_squad
    data = synthetic_squad(str(root), n_train=16, n_dev=8)
    return [f"--train_file={data['train']['path']}", f"--predict_file={data['dev']['path']}", "--max_seq_length=96",
            "--max_query_length=32", "--doc_stride=32", f"--model_config_path={model_config}", "--use_tpu=False"]


@pytest.mark.slow  # a run each, ~25 s on 2 cores
@pytest.mark.parametrize("task", ["race", "tagger", "squad"])
def test_other_finetuning_clis_train_and_predict_with_sentencepiece(tmp_path, sentencepiece_model, task):
    """Each job makes its tokenizer, seeds, then writes its records and predicts: 2 steps and --do_predict."""
    ModelConfig(**{**TINY, "vocab_size": 1000}).to_json(str(tmp_path / "tiny.json"))
    model_dir = tmp_path / "exp"
    run_entry_point(task, *_task_args(task, tmp_path, str(tmp_path / "tiny.json")), f"--model_dir={model_dir}",
                    f"--output_dir={tmp_path / 'proc'}", "--tokenizer_type=sentence_piece", "--uncased=True",
                    f"--tokenizer_path={sentencepiece_model}", "--do_train=True", "--do_predict=True",
                    "--train_batch_size=8", "--train_steps=2", "--save_steps=2", "--learning_rate=3e-3",
                    "--jit_compile=False", *(["--eval_batch_size=8"] if task != "squad" else []))
    assert os.path.exists(model_dir / "done")
    predicted = [name for name in os.listdir(model_dir / "predict") if os.path.getsize(model_dir / "predict" / name)]
    assert predicted, os.listdir(model_dir / "predict")
