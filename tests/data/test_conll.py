"""The CoNLL reader and writer on the real CoNLL-2000 chunking sample (seqeval 1.2.2's sdist, via data_fetch), their
errors with file:line, tag-scheme detection, and first-sub-token alignment with the real BERT uncased WordPiece
vocabulary, checked against Hugging Face's word_ids()."""

from __future__ import annotations

import os

import pytest

from funnel_tfm.data import data_fetch
from funnel_tfm.data.conll import (ConllError, Sentence, align_first_subtokens, label_list, read_conll, split_tag,
                                   tag_scheme, word_predictions, write_conll)

pytestmark = pytest.mark.smoke

CONLL2003_LIKE = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
-DOCSTART- -X- -X- O
BRUSSELS NNP B-NP B-LOC
"""


@pytest.fixture(scope="module")
def sample() -> str:
    return data_fetch.conll2000_chunking_sample()


def write(tmp_path, text: str | bytes, name: str = "data.txt") -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(path)


def blocks_of(path: str) -> list[list[list[str]]]:
    """An independent split of a file into sentences of column lists (blank-line separated)."""
    with open(path, encoding="utf-8") as handle:
        blocks = handle.read().strip("\n").split("\n\n")
    return [[line.split() for line in block.split("\n")] for block in blocks]


# ------------------------------------------------------------------------------------------------ reading
def test_real_chunking_sample(sample):
    gold, pred = read_conll(sample, tag_column=2), read_conll(sample)  # word POS gold pred; default: last
    expected = blocks_of(sample)
    assert len(gold) == len(expected) == 40
    assert sum(len(s.words) for s in gold) == 961  # 1,000 lines, 39 blank
    for sentence, other, block in zip(gold, pred, expected):
        assert sentence.words == other.words == tuple(row[0] for row in block)
        assert sentence.tags == tuple(row[2] for row in block)
        assert other.tags == tuple(row[3] for row in block)
    assert gold[0].words[:4] == ("Rockwell", "International", "Corp.", "'s") and gold[0].line == 1
    assert gold[1].line == len(gold[0].words) + 2  # after the first sentence and its blank line
    assert tag_scheme(gold) == "IOB2"   # every gold chunk starts with B-
    assert tag_scheme(pred) == "IOB1"   # the chunker starts chunks with I-
    assert label_list(gold) == ("O", "B-ADJP", "B-ADVP", "B-NP", "B-PP", "B-SBAR", "B-VP",
                                "I-ADJP", "I-NP", "I-VP")


def test_docstart_lines_and_the_blank_after_them_are_skipped(tmp_path):
    path = write(tmp_path, CONLL2003_LIKE)
    sentences = read_conll(path)
    assert sentences == [
        Sentence(("EU", "rejects", "German", "call"), ("B-ORG", "O", "B-MISC", "O"), 3),
        Sentence(("Peter", "Blackburn"), ("B-PER", "I-PER"), 8),  # a -DOCSTART- without a blank ends it
        Sentence(("BRUSSELS",), ("B-LOC",), 11),
    ]
    assert [s.tags for s in read_conll(path, tag_column=2)][0] == ("B-NP", "B-VP", "B-NP", "I-NP")
    assert [s.tags for s in read_conll(path, tag_column=-2)][0] == ("B-NP", "B-VP", "B-NP", "I-NP")
    unlabelled = read_conll(path, has_tags=False)
    assert [s.words for s in unlabelled] == [s.words for s in sentences] and unlabelled[0].tags is None


def test_crlf_tabs_bom_and_blank_runs(tmp_path):
    path = write(tmp_path, "\ufeffA\tB-X\r\n\r\n\r\n  \r\nb  I-X \r\nc\tO\r\n\r\n")
    assert read_conll(path) == [Sentence(("A",), ("B-X",), 1), Sentence(("b", "c"), ("I-X", "O"), 5)]


def test_only_ascii_spaces_and_tabs_separate_columns(tmp_path):
    # A no-break space inside a token (real corpora have them) is part of the token.
    assert read_conll(write(tmp_path, "10\u00a0000 B-NUM\n"))[0].words == ("10\u00a0000",)


@pytest.mark.parametrize("text, line, message", [
    ("a B-X\nb I-X\n\nc B-X extra\n", 4, "3 column(s); expected 2 as on line 1"),
    ("-DOCSTART- O\n\na NN B-X\nb I-X\n", 4, "2 column(s); expected 3 as on line 3"),
    (b"a B-X\nb I-X\n\xff O\n", 3, "invalid UTF-8 (byte 0xff)"),
    ("", 1, "no token in the file"),
    ("\n\n  \n", 1, "no token in the file"),
    ("-DOCSTART- -X- O\n\n", 1, "no token in the file"),
    ("\nonly-words\nhere\n", 2, "1 column(s) and tag column -1"),
])
def test_errors_name_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(ConllError, match=rf"^{path}:{line}: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        read_conll(path)


def test_tag_column_outside_the_lines_is_an_error(tmp_path):
    path = write(tmp_path, "a NN B-X\n")
    for column in (0, 3, -3):
        with pytest.raises(ConllError, match=rf"^{path}:1: 3 column\(s\) and tag column {column}"):
            read_conll(path, tag_column=column)


def test_unknown_tag_given_a_label_list(tmp_path):
    path = write(tmp_path, "a B-PER\nb I-PER\n\nc B-LOC\n")
    assert len(read_conll(path, label_list=("O", "B-PER", "I-PER", "B-LOC"))) == 2
    with pytest.raises(ConllError, match=rf"^{path}:4: unknown tag 'B-LOC'; expected one of O, B-PER, I-PER$"):
        read_conll(path, label_list=("O", "B-PER", "I-PER"))
    assert read_conll(path, has_tags=False, label_list=("O",))[1].words == ("c",)  # no tags, nothing to check


# ------------------------------------------------------------------------------------------------ tag sets
@pytest.mark.parametrize("tags, scheme", [
    (["B-PER", "I-PER", "O", "B-LOC"], "IOB2"),
    (["B-PER", "B-PER", "O"], "IOB2"),
    (["O", "O"], "IOB2"),
    (["I-PER", "I-PER", "O"], "IOB1"),                  # a chunk starting with I-
    (["B-PER", "I-LOC"], "IOB1"),                       # I- after another type starts a chunk too
    (["I-PER", "B-PER", "O"], "IOB1"),
    (["S-PER", "O"], "IOBES"),
    (["B-PER", "E-PER"], "IOBES"),
    ([["B-PER", "I-PER"], ["I-PER"]], "IOB1"),          # lists of tags: each starts afresh
    ([["B-PER", "I-PER"], ["B-PER", "I-PER"]], "IOB2"),
])
def test_tag_scheme(tags, scheme):
    assert tag_scheme(tags) == scheme


@pytest.mark.parametrize("bad", ["X-PER", "B-", "b-PER", "PER", "BPER", "o", ""])
def test_tag_scheme_names_the_offending_tag(bad):
    with pytest.raises(ValueError, match=f"tag {bad!r} is none of IOB1, IOB2, IOBES"):
        tag_scheme(["B-PER", "O", bad])


def test_split_tag_keeps_hyphens_in_the_type():
    assert split_tag("B-GPE-LOC") == ("B", "GPE-LOC") and split_tag("O") == ("O", "")


def test_label_list_puts_o_first_and_needs_tags():
    sentences = [Sentence(("a", "b"), ("I-X", "B-A"), 1), Sentence(("c",), ("E-A",), 4)]
    assert label_list(sentences) == ("O", "B-A", "E-A", "I-X")  # "O" even when no word has it
    with pytest.raises(ValueError, match="sentence at line 7 has no tags"):
        label_list([Sentence(("a",), None, 7)])


# ------------------------------------------------------------------------------------------------ writing
def test_write_conll_round_trip_on_the_real_sample(sample, tmp_path):
    gold, pred = read_conll(sample, tag_column=2), read_conll(sample)
    out = str(tmp_path / "out" / "dev.pred")
    write_conll(out, gold, [s.tags for s in pred])
    assert [(s.words, s.tags) for s in read_conll(out, tag_column=1)] == [(s.words, s.tags) for s in gold]
    assert [s.tags for s in read_conll(out)] == [s.tags for s in pred]
    with open(out, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    assert lines[0] == "Rockwell B-NP I-NP" and lines[-2:] == ["", ""]
    assert len(lines) == 961 + 40 + 1  # a line per word, a blank after each sentence, "" after the last "\n"
    assert os.listdir(tmp_path / "out") == ["dev.pred"]  # no temporary file left behind


def test_write_conll_unlabelled_and_errors(tmp_path):
    path = str(tmp_path / "p.txt")
    write_conll(path, [Sentence(("a", "b"), None, 1)], [["B-X", "I-X"]])
    assert read_conll(path) == [Sentence(("a", "b"), ("B-X", "I-X"), 1)]
    with pytest.raises(ValueError, match="sentence at line 3: 1 predictions for 2 words"):
        write_conll(path, [Sentence(("a", "b"), ("O", "O"), 3)], [["O"]])
    with pytest.raises(ValueError, match="2 prediction lists for 1 sentences"):
        write_conll(path, [Sentence(("a",), ("O",), 1)], [["O"], ["O"]])
    with pytest.raises(ValueError, match="word 'a b' is empty or holds whitespace"):
        write_conll(path, [Sentence(("a b",), ("O",), 1)], [["O"]])
    assert read_conll(path) == [Sentence(("a", "b"), ("B-X", "I-X"), 1)]  # a failed write leaves the old file


# ------------------------------------------------------------------------------------------------ alignment
@pytest.fixture(scope="module")
def bert_vocab() -> str:
    return data_fetch.bert_uncased_vocab()


@pytest.fixture(scope="module")
def encode(bert_vocab):
    from funnel_tfm.data.tokenization import Tokenizer
    return Tokenizer.from_file(bert_vocab).encode


def test_first_subtoken_alignment_on_words_that_split(encode):
    words = ["Johanson", "visited", "jetliners", "unaffable", "Corp."]
    tags = ["B-PER", "O", "B-NP", "O", "I-NP"]
    index = {"O": 0, "B-PER": 1, "B-NP": 2, "I-NP": 3}
    pieces = [encode(w) for w in words]
    assert [len(p) for p in pieces] == [2, 1, 3, 3, 2]  # johan ##son / visited / jet ##liner ##s / ... / corp .
    ids, label_ids, label_mask, word_index, cut = align_first_subtokens(words, tags, encode, index, max_len=64)
    assert ids == [i for p in pieces for i in p] and cut == 0
    assert label_mask == [1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0]
    assert label_ids == [1, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0]
    assert word_index == [0, -1, 1, 2, -1, -1, 3, -1, -1, 4, -1]
    # Truncation keeps whole words: 2 + 1 + 3 pieces fit in 7, the 3 of "unaffable" do not.
    cut_off = align_first_subtokens(words, tags, encode, index, max_len=7)
    assert cut_off.ids == ids[:6] and cut_off.word_index == word_index[:6] and cut_off.words_cut == 2
    assert align_first_subtokens(words, tags, encode, index, max_len=1).words_cut == 5
    unlabelled = align_first_subtokens(words, None, encode, index, max_len=64)
    assert unlabelled.label_ids == [0] * len(ids) and unlabelled.label_mask == label_mask
    assert word_predictions(cut_off.word_index, ["B-PER", "I-PER", "O", "B-NP", "I-NP", "I-NP"], len(words)) == \
        ["B-PER", "O", "B-NP", "O", "O"]  # the two cut words are filled with "O"


def test_alignment_errors_and_words_without_pieces(encode):
    with pytest.raises(ValueError, match="unknown tag 'B-LOC'"):
        align_first_subtokens(["Paris"], ["B-LOC"], encode, {"O": 0}, max_len=8)
    with pytest.raises(ValueError, match="2 tags for 1 words"):
        align_first_subtokens(["Paris"], ["O", "O"], encode, {"O": 0}, max_len=8)
    # A zero-width space normalises to nothing: the word has no piece, and its prediction is the fill.
    aligned = align_first_subtokens(["a", "\u200b", "b"], ["O", "B-X", "O"], encode, {"O": 0, "B-X": 1}, 8)
    assert aligned.word_index == [0, 2] and aligned.label_ids == [0, 0]
    assert word_predictions(aligned.word_index, ["B-X", "B-X"], 3) == ["B-X", "O", "B-X"]


def test_alignment_equals_hugging_face_word_ids_on_the_real_sample(sample, bert_vocab, encode):
    transformers = pytest.importorskip("transformers")
    reference = transformers.BertTokenizerFast(vocab=bert_vocab, do_lower_case=True)
    sentences = read_conll(sample, tag_column=2)
    index = {tag: i for i, tag in enumerate(label_list(sentences))}
    split_words = 0
    for sentence in sentences:
        aligned = align_first_subtokens(sentence.words, sentence.tags, encode, index, max_len=512)
        expected = reference(list(sentence.words), is_split_into_words=True, add_special_tokens=False)
        word_ids = expected.word_ids()
        firsts = [i == 0 or word_ids[i] != word_ids[i - 1] for i in range(len(word_ids))]
        assert aligned.ids == expected["input_ids"]
        assert aligned.word_index == [w if first else -1 for w, first in zip(word_ids, firsts)]
        assert aligned.label_ids == [index[sentence.tags[w]] if first else 0 for w, first in zip(word_ids, firsts)]
        split_words += sum(not first for first in firsts)
    assert split_words > 50  # the sample really exercises multi-piece words
