"""The tokenizer files of a transformers export: `AutoTokenizer.from_pretrained(dir)` packs real sentence pairs
exactly as our Preprocessor (ids, Funnel's [CLS] type id 2, the mask), for BERT's and the original's vocabularies."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from funnel_tfm.data import data_fetch
from funnel_tfm.data.preprocessing import Preprocessor
from funnel_tfm.data.hf_tokenizer import HF_TOKENIZER_CONFIG, write_hf_tokenizer

SEQ_LEN = 160


@pytest.fixture(scope="module")
def pairs() -> tuple[list[str], list[str]]:
    """Real, cased movie-review sentences (accents, quotes, punctuation) as pairs short enough to need no cut."""
    texts = [text for text, _ in data_fetch.movie_review_snippets()[:400]]
    return texts[0::2], texts[1::2]


def original_style_vocab(path) -> str:
    """BERT's vocabulary with the original release's <cls> <sep> <pad> <mask> <unk> in place of [CLS] ..."""
    names = {"[CLS]": "<cls>", "[SEP]": "<sep>", "[PAD]": "<pad>", "[MASK]": "<mask>", "[UNK]": "<unk>"}
    lines = open(data_fetch.bert_uncased_vocab(), encoding="utf-8").read().splitlines()
    open(path, "w", encoding="utf-8").write("\n".join(names.get(line, line) for line in lines) + "\n")
    return str(path)


@pytest.mark.parametrize("vocab_kind", ["bert", "original"])
def test_auto_tokenizer_packs_as_our_preprocessor(tmp_path, pairs, vocab_kind):
    from transformers import AutoTokenizer
    vocab = data_fetch.bert_uncased_vocab() if vocab_kind == "bert" else original_style_vocab(tmp_path / "v.txt")
    out = tmp_path / "hf"
    out.mkdir()
    notes = write_hf_tokenizer(vocab, str(out), uncased=True, max_seq_length=SEQ_LEN, fnet=False)
    assert "FunnelTokenizer" in notes[0]
    hf = AutoTokenizer.from_pretrained(str(out))
    assert type(hf).__name__ == "FunnelTokenizer" and hf.model_max_length == SEQ_LEN
    theirs = hf(*pairs, padding="max_length", max_length=SEQ_LEN, return_tensors="np")
    ours = {name: value.numpy() for name, value in
            Preprocessor.from_file(vocab, seq_len=SEQ_LEN)(tf.constant(pairs[0]), tf.constant(pairs[1])).items()}
    assert ours["padding_mask"][:, -1].max() == 0  # no pair was cut, so truncation rules play no part
    np.testing.assert_array_equal(theirs["input_ids"], ours["token_ids"])
    np.testing.assert_array_equal(theirs["token_type_ids"], ours["segment_ids"])  # [CLS] = 2
    np.testing.assert_array_equal(theirs["attention_mask"], ours["padding_mask"])
    assert len(hf) == 30522  # no special token of transformers' own was added to the vocabulary


def test_fnet_and_cased_settings(tmp_path):
    from transformers import AutoTokenizer
    write_hf_tokenizer(data_fetch.bert_uncased_vocab(), str(tmp_path), uncased=False, max_seq_length=64, fnet=True)
    config = json.load(open(tmp_path / HF_TOKENIZER_CONFIG))
    assert config["tokenizer_class"] == "BertTokenizer" and config["do_lower_case"] is False
    encoded = AutoTokenizer.from_pretrained(str(tmp_path))("Paris", "Rome")
    assert encoded["token_type_ids"][0] == 0 and "attention_mask" not in encoded  # FNet: [CLS] type 0, no mask


def test_sentencepiece_gets_a_note_and_no_files(tmp_path):
    from tests.spm_helpers import train_sentencepiece
    (tmp_path / "spm").mkdir()
    (tmp_path / "out").mkdir()
    model = train_sentencepiece(str(tmp_path / "spm"))
    notes = write_hf_tokenizer(model, str(tmp_path / "out"), uncased=True, max_seq_length=64, fnet=False)
    assert "SentencePiece" in notes[0] and os.listdir(tmp_path / "out") == []
