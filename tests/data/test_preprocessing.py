"""The preprocessor: the original's truncation loop, transformers' Funnel tokenizer on real text, in-graph use."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tensorflow as tf

transformers = pytest.importorskip("transformers")

from funnel_tfm.data import data_fetch  # noqa: E402
from funnel_tfm.data.preprocessing import Preprocessor, pair_lengths  # noqa: E402
from funnel_tfm.data.tokenization import Tokenizer, TokenizerError  # noqa: E402

pytestmark = pytest.mark.smoke


def original_truncation(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """The original classifier's loop, written out: pop from the longer, from B when equal."""
    while len_a + len_b > budget:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return len_a, len_b


def test_pair_lengths_equal_the_original_loop_everywhere():
    cases = list(itertools.product(range(14), range(14), range(0, 16)))
    kept_a, kept_b = pair_lengths(tf.constant([c[0] for c in cases], tf.int64),
                                  tf.constant([c[1] for c in cases], tf.int64),
                                  tf.constant([c[2] for c in cases], tf.int64))
    expected = np.array([original_truncation(*case) for case in cases])
    np.testing.assert_array_equal(np.stack([kept_a.numpy(), kept_b.numpy()], 1), expected)


@pytest.fixture(scope="module")
def vocab_path() -> str:
    return data_fetch.bert_uncased_vocab()


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    lines = []
    with open(data_fetch.sotu_corpus()[0], encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    return lines[:400]


@pytest.mark.parametrize("seq_len", [16, 31])
def test_pairs_and_singles_equal_transformers_funnel_tokenizer(vocab_path, sentences, seq_len):
    """HF's FunnelTokenizerFast tokenizes and packs ([CLS] segment 2) independently; the lengths come from the
    original's loop, because HF's longest-first gives the odd token of a balanced cut to the longer text
    (semantics F2), where the original gives it to A."""
    reference = transformers.FunnelTokenizerFast(vocab=vocab_path, do_lower_case=True, cls_token="[CLS]",
                                                 sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]",
                                                 mask_token="[MASK]")
    pre = Preprocessor.from_file(vocab_path, uncased=True, seq_len=seq_len)
    text_a, text_b = sentences[0::2], sentences[1::2]
    # Short and long texts in both positions, so every branch of the truncation rule is taken.
    text_a = [a if i % 5 else " ".join(a.split(" ")[:2]) for i, a in enumerate(text_a)]
    text_b = [b if i % 3 else b.split(" ")[0] for i, b in enumerate(text_b)]
    backend = reference.backend_tokenizer  # the Rust tokenizer: its own tokenization, post-processor, padding
    for pair in (True, False):
        expected = {"input_ids": [], "token_type_ids": [], "attention_mask": []}
        for a_text, b_text in zip(text_a, text_b):
            a = backend.encode(a_text, add_special_tokens=False)
            b = backend.encode(b_text, add_special_tokens=False) if pair else None
            if pair:
                kept_a, kept_b = original_truncation(len(a.ids), len(b.ids), seq_len - 3)
                a.truncate(kept_a)
                b.truncate(kept_b)
            else:
                a.truncate(seq_len - 2)
            packed = backend.post_process(a, b, add_special_tokens=True)
            packed.pad(seq_len, pad_id=reference.pad_token_id, pad_type_id=0, pad_token="[PAD]")
            expected["input_ids"].append(packed.ids)
            expected["token_type_ids"].append(packed.type_ids)
            expected["attention_mask"].append(packed.attention_mask)
        ours = pre(tf.constant(text_a), tf.constant(text_b) if pair else None)
        np.testing.assert_array_equal(ours["token_ids"].numpy(), expected["input_ids"])
        np.testing.assert_array_equal(ours["segment_ids"].numpy(), expected["token_type_ids"])
        np.testing.assert_array_equal(ours["padding_mask"].numpy(), expected["attention_mask"])
        assert (ours["padding_mask"].numpy().sum(1) == seq_len).mean() > 0.3  # truncation was exercised
        assert (ours["padding_mask"].numpy().sum(1) < seq_len).mean() > 0.05  # and padding


def test_packing_layout_by_hand(vocab_path):
    tok = Tokenizer.from_file(vocab_path)
    pre = Preprocessor(tok, seq_len=10)
    features = pre(tf.constant("hello world"), tf.constant("good morning to you all"))  # scalar in, [10] out
    a, b = tok.encode("hello world"), tok.encode("good morning to you all")
    assert len(a) == 2 and len(b) == 5  # exactly the budget of 10 - 3: nothing is cut
    expected_ids = [tok.cls_id] + a + [tok.sep_id] + b + [tok.sep_id]
    assert features["token_ids"].numpy().tolist() == expected_ids
    assert features["segment_ids"].numpy().tolist() == [2, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert features["padding_mask"].numpy().tolist() == [1] * 10
    single = pre(tf.constant("hello"))
    assert single["token_ids"].numpy().tolist() == [tok.cls_id, tok.encode("hello")[0], tok.sep_id] + [tok.pad_id] * 7
    assert single["segment_ids"].numpy().tolist() == [2, 0, 0] + [0] * 7
    assert single["padding_mask"].numpy().tolist() == [1, 1, 1] + [0] * 7


def test_inside_tf_data_and_tf_function(vocab_path, sentences):
    """The same object works per example and per batch inside tf.data, and in a traced serving function."""
    pre = Preprocessor.from_file(vocab_path, seq_len=24)
    eager = pre(tf.constant(sentences[:8]), tf.constant(sentences[8:16]))
    per_example = tf.data.Dataset.from_tensor_slices((sentences[:8], sentences[8:16])).map(pre).batch(8)
    batched = tf.data.Dataset.from_tensor_slices((sentences[:8], sentences[8:16])).batch(4).map(pre)
    serving = tf.function(pre, input_signature=[tf.TensorSpec([None], tf.string)] * 2)
    for features in (next(iter(per_example)), _concat(batched), serving(sentences[:8], sentences[8:16])):
        for name in ("token_ids", "segment_ids", "padding_mask"):
            assert features[name].dtype == tf.int32 and features[name].shape == (8, 24)
            np.testing.assert_array_equal(features[name].numpy(), eager[name].numpy())


def _concat(dataset: tf.data.Dataset) -> dict:
    parts = list(dataset)
    return {name: tf.concat([p[name] for p in parts], 0) for name in parts[0]}


def test_bad_settings_are_named(tmp_path):
    vocab = tmp_path / "no_specials.txt"
    vocab.write_text("[UNK]\nhello\nworld\n")
    with pytest.raises(TokenizerError, match=r"no_specials.txt: the vocabulary lacks .*\[CLS\].*needed to pack"):
        Preprocessor.from_file(str(vocab))
    good = tmp_path / "good.txt"
    good.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")
    with pytest.raises(ValueError, match="seq_len=2"):
        Preprocessor.from_file(str(good), seq_len=2)
