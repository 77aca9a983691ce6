"""Data that would train or score nonsense in silence is one clear error (issue 25, point 3)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from robust_helpers import SENTENCES, one_error_line, run, write_sst2

from funnel_tfm.data.classifier_data import ClassifierDataError, CustomFormat, get_task


def write_jsonl(directory, rows) -> str:
    os.makedirs(directory, exist_ok=True)
    for split in ("train", "dev"):
        with open(os.path.join(directory, f"{split}.jsonl"), "w", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(row) + "\n" for row in rows))
    return str(directory)


def test_two_spellings_of_one_numeric_label_are_refused(tmp_path):
    data = write_jsonl(tmp_path, [{"text": "good", "label": 1}, {"text": "bad", "label": 0},
                                  {"text": "fine", "label": 1.0}])
    with pytest.raises(ClassifierDataError, match=r"train.jsonl:3: label '1.0' is the number of label '1' \(line 1\)"):
        get_task("custom", data, CustomFormat()).spec


def test_distinct_labels_that_are_numbers_stay_classes(tmp_path):
    data = write_jsonl(tmp_path, [{"text": "good", "label": 1}, {"text": "bad", "label": 0}])
    assert get_task("custom", data, CustomFormat()).spec.labels == ("0", "1")


@pytest.mark.slow  # a classifier process (CI runs it: python -m pytest -m slow)
def test_a_training_split_of_one_class_is_refused_by_the_classifier(tmp_path, vocab, tiny_model_config):
    data = write_sst2(tmp_path / "sst2", [(text, "1") for text, _ in SENTENCES], dev_rows=SENTENCES)
    result = run("classifier", "--task_name=sst-2", f"--data_dir={data}", f"--output_dir={tmp_path / 'rec'}",
                 f"--model_dir={tmp_path / 'run'}", f"--tokenizer_path={vocab}", f"--model_config={tiny_model_config}",
                 "--max_seq_length=16", "--do_train=True", "--train_steps=2", "--train_batch_size=4",
                 "--learning_rate=1e-3", "--jit_compile=False")
    message = one_error_line(result, "classifier")
    assert "the training split has one class only: '1' (16 rows)" in message, message


def test_duplicate_question_ids_in_a_predict_file_are_counted_and_named(tmp_path):
    """Real SQuAD-format files hold them (the QuAC sample the SQuAD tests read): a warning with the count and the
    first, since predictions.json keeps one answer per id."""
    from funnel_tfm.data.squad_data import read_squad
    qas = [{"id": "q1", "question": "Who won?"}, {"id": "q1", "question": "Who lost?"}]
    path = tmp_path / "dev.json"
    path.write_text(json.dumps({"version": "v2.0", "data": [{"paragraphs": [{"context": "A beat B.", "qas": qas}]}]}))
    squad = read_squad(str(path), is_training=False)
    assert squad.duplicate_ids == ("data[0].paragraphs[0].qas[1]: id 'q1' (first at data[0].paragraphs[0].qas[0])",)
    assert len(squad.examples) == 2


def test_pretraining_records_that_hold_fewer_examples_than_their_meta_are_named(tmp_path):
    from funnel_tfm.data.input_func_builder import miscounted_records
    name = "data.train.pass-0.seq-8.uncased.tfrecord-00000-of-00001"
    example = tf.train.Example(features=tf.train.Features(feature={
        "input": tf.train.Feature(int64_list=tf.train.Int64List(value=list(range(8))))})).SerializeToString()
    with tf.io.TFRecordWriter(str(tmp_path / name)) as writer:
        for _ in range(3):  # a copy cut at a record boundary: readable, but 3 of the 5 the meta promises
            writer.write(example)
    meta = tmp_path / "meta.train.pass-0.seq-8.uncased.json-00000-of-00001"
    meta.write_text(json.dumps({"filenames": [name], "num_example": 5}))
    assert miscounted_records([str(tmp_path)], "train", 8, True) == [f"{meta}: promises 5 examples, its files hold 3"]
    assert miscounted_records([str(tmp_path)], "train", 8, True, max_bytes=10) is None  # too large: not counted
    meta.write_text(json.dumps({"filenames": [name], "num_example": 3}))
    assert miscounted_records([str(tmp_path)], "train", 8, True) == []


def test_cached_finetuning_records_are_keyed_by_the_vocabulary_content(tmp_path):
    from funnel_tfm.training.classifier_job import ClassifierRun, _settings
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n")
    data = write_sst2(tmp_path / "sst2", SENTENCES)
    task = get_task("sst-2", data)
    run_settings = ClassifierRun(task_name="sst-2", data_dir=data, output_dir=str(tmp_path), model_dir=str(tmp_path),
                                 tokenizer_path=str(vocab), model_config=None)
    before = _settings(run_settings, task, "dev")
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nb\n")  # same path, other content
    assert _settings(run_settings, task, "dev")["tokenizer_sha256"] != before["tokenizer_sha256"]
    assert np.all([before[key] == value for key, value in _settings(run_settings, task, "dev").items()
                   if key != "tokenizer_sha256"])


@pytest.mark.slow  # a classifier process (CI runs it: python -m pytest -m slow)
def test_damaged_finetuning_records_name_the_file_and_the_fix(tmp_path, vocab, tiny_model_config):
    data = write_sst2(tmp_path / "sst2", SENTENCES)
    common = ["--task_name=sst-2", f"--data_dir={data}", f"--output_dir={tmp_path / 'rec'}",
              f"--tokenizer_path={vocab}", f"--model_config={tiny_model_config}", "--max_seq_length=16",
              "--do_train=True", "--train_steps=2", "--train_batch_size=4", "--learning_rate=1e-3",
              "--jit_compile=False"]
    first = run("classifier", *common, f"--model_dir={tmp_path / 'run1'}")
    assert first.returncode == 0, first.stderr[-3000:]
    [train] = [p for p in (tmp_path / "rec").iterdir() if p.name.endswith("train.tfrecord")]
    train.write_bytes(train.read_bytes()[:-7])  # a copy cut off inside its last record
    message = one_error_line(run("classifier", *common, f"--model_dir={tmp_path / 'run2'}"), "classifier")
    assert message.startswith(f"{train}: damaged record file") and "--overwrite_data" in message, message


def test_squad_eval_out_file_that_is_a_directory_is_one_line(tmp_path):
    result = run("squad_eval", str(tmp_path / "data.json"), str(tmp_path / "pred.json"), f"--out-file={tmp_path}")
    assert result.returncode == 2 and "is a directory" in result.stderr.strip().splitlines()[-1]


def test_a_pytorch_checkpoint_whose_values_are_not_tensors_is_one_line(tmp_path):
    torch = pytest.importorskip("torch")
    (tmp_path / "hf").mkdir()
    torch.save({"funnel.embeddings.word_embeddings.weight": [1, 2, 3], "note": "hello"},
               str(tmp_path / "hf" / "pytorch_model.bin"))
    (tmp_path / "hf" / "config.json").write_text(json.dumps({"model_type": "funnel", "block_sizes": [1, 1],
                                                              "d_model": 16, "n_head": 2, "d_head": 8,
                                                              "d_inner": 32, "vocab_size": 30}))
    message = one_error_line(run("convert", f"--input={tmp_path / 'hf'}", f"--output={tmp_path / 'out'}",
                                 "--to=keras"), "convert")
    assert "values are not: funnel.embeddings.word_embeddings.weight (list), note (str)" in message, message
    assert not (tmp_path / "out").exists()
