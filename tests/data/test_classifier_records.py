"""Finetuning records: the in-graph Example serializer against protobuf's own, the original's features written
and read back, the padded and numbered evaluation stream, and the resumable training stream."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from funnel_tfm.data import data_fetch
from funnel_tfm.data.classifier_data import Example
from funnel_tfm.data.classifier_records import (eval_dataset, meta_path, read_meta, train_input_fn,
                                                write_features)
from funnel_tfm.data.example_proto import serialize_examples
from funnel_tfm.data.preprocessing import Preprocessor

pytestmark = pytest.mark.smoke


def test_serialize_examples_equals_protobuf():
    rng = np.random.default_rng(0)
    ints = rng.integers(-5, 2 ** 40, (4, 7))
    floats = rng.normal(size=(4, 3)).astype(np.float32)
    ours = serialize_examples({"ids": tf.constant(ints), "mask": tf.constant(floats),
                               "label": tf.constant(ints[:, :1] % 1000, tf.int32)}).numpy()
    for row in range(4):
        expected = tf.train.Example(features=tf.train.Features(feature={
            "ids": tf.train.Feature(int64_list=tf.train.Int64List(value=ints[row])),
            "mask": tf.train.Feature(float_list=tf.train.FloatList(value=floats[row])),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=ints[row, :1] % 1000))}))
        assert tf.train.Example.FromString(ours[row]) == expected


@pytest.fixture(scope="module")
def preprocessor() -> Preprocessor:
    return Preprocessor.from_file(data_fetch.bert_uncased_vocab(), seq_len=24)


EXAMPLES = [Example("a-0", "a fine film", None, "pos"), Example("a-1", "a dull film", None, "neg"),
            Example("b-0", "is it good?", "it is very good indeed, truly", "pos"),
            Example("b-1", "the plot", "thin", "neg"), Example("c-0", "one more single", None, None)]


def test_written_records_are_the_originals_features(tmp_path, preprocessor):
    path = str(tmp_path / "vocab.txt.len-24.dev.tfrecord")
    meta = write_features(EXAMPLES, ("neg", "pos"), False, preprocessor, path, {"task": "t"}, log=lambda _: None)
    assert meta["num_examples"] == 5 and read_meta(path)["settings"] == {"task": "t"}
    assert meta_path(path).endswith("vocab.txt.len-24.dev.meta.json")
    records = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    assert len(records) == 5
    for example, record in zip(EXAMPLES, records):
        packed = preprocessor(tf.constant([example.text_a]),
                              None if example.text_b is None else tf.constant([example.text_b]))
        feature = record.features.feature
        assert list(feature["input_ids"].int64_list.value) == packed["token_ids"][0].numpy().tolist()
        assert list(feature["segment_ids"].int64_list.value) == packed["segment_ids"][0].numpy().tolist()
        assert list(feature["input_mask"].float_list.value) == (1 - packed["padding_mask"][0].numpy()).tolist()
        assert list(feature["label_ids"].int64_list.value) == [{"neg": 0, "pos": 1, None: 0}[example.label]]
        assert list(feature["is_real_example"].int64_list.value) == [1]


def test_eval_stream_pads_and_numbers_every_example(tmp_path, preprocessor):
    path = str(tmp_path / "r.tfrecord")
    write_features(EXAMPLES, ("neg", "pos"), False, preprocessor, path, {}, log=lambda _: None)
    batches = list(eval_dataset(path, 24, False, global_batch=4, num_examples=5))
    assert [b["token_ids"].shape[0] for b in batches] == [4, 4]
    index = np.concatenate([b["example_index"].numpy() for b in batches])
    real = np.concatenate([b["is_real_example"].numpy() for b in batches])
    assert index.tolist() == [0, 1, 2, 3, 4, -1, -1, -1] and real.tolist() == [1] * 5 + [0] * 3
    assert np.concatenate([b["label"].numpy() for b in batches])[:5].tolist() == [1, 0, 1, 0, 0]


def test_regression_labels_are_floats(tmp_path, preprocessor):
    path = str(tmp_path / "r.tfrecord")
    examples = [Example(str(i), f"text {i}", None, 0.25 * i) for i in range(3)]
    write_features(examples, (), True, preprocessor, path, {}, log=lambda _: None)
    labels = np.concatenate([b["label"].numpy() for b in eval_dataset(path, 24, True, 3, 3)])
    np.testing.assert_allclose(labels, [0.0, 0.25, 0.5])


def test_training_stream_resumes_at_a_step(tmp_path, preprocessor):
    path = str(tmp_path / "r.tfrecord")
    examples = [Example(str(i), f"sentence number {i}", None, "pos" if i % 2 else "neg") for i in range(37)]
    write_features(examples, ("neg", "pos"), False, preprocessor, path, {}, log=lambda _: None)
    whole = [b["token_ids"].numpy() for b in train_input_fn(path, 24, False, 4, seed=3)(None).take(12)]
    resumed = [b["token_ids"].numpy() for b in train_input_fn(path, 24, False, 4, seed=3, start_step=5)(None).take(7)]
    for expected, got in zip(whole[5:], resumed):
        np.testing.assert_array_equal(expected, got)
    other_seed = [b["token_ids"].numpy() for b in train_input_fn(path, 24, False, 4, seed=4)(None).take(3)]
    assert any((a != b).any() for a, b in zip(whole, other_seed))
