"""Building a vocabulary from real text with one command, then tokenizing and packing with it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from funnel_tfm.data import data_fetch
from funnel_tfm.data.pretrain_records import write_task_records
from funnel_tfm.data.tokenization import Tokenizer, sp_preprocess_with_sources
from funnel_tfm.data.vocab_builder import build_sentencepiece, build_wordpiece


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> str:
    """The first 3,000 lines (~400 KB) of the real corpus."""
    with open(data_fetch.sotu_corpus()[0], encoding="utf-8") as handle:
        lines = handle.readlines()[:3000]
    path = tmp_path_factory.mktemp("corpus") / "part.txt"
    path.write_text("".join(lines), encoding="utf-8")
    return str(path)


def build(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "funnel_tfm.build_vocab", *args], capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("kind", ["wordpiece", "sentencepiece"])
def test_build_vocab_then_tokenize_and_pack(tmp_path, small_corpus, kind):
    output = str(tmp_path / ("vocab.txt" if kind == "wordpiece" else "spm"))
    done = build(f"--input_glob={small_corpus}", f"--output={output}", f"--type={kind}", "--vocab_size=1000")
    assert done.returncode == 0, done.stderr
    path = output if kind == "wordpiece" else output + ".model"
    tokenizer = Tokenizer.from_file(path)
    tokenizer.require_special()
    assert 800 < tokenizer.vocab_size <= 1000
    line = "The Congress shall assemble at least once in every year."
    ids = tokenizer.encode(line)
    assert tokenizer.unk_id not in ids and len(ids) >= 10
    if kind == "sentencepiece":
        import sentencepiece
        processor = sentencepiece.SentencePieceProcessor(model_file=path)
        assert ids == processor.encode(line.lower())
        assert (tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id, tokenizer.mask_id) == (2, 3, 0, 4)
        # offsets into the original text, with the original's preprocessing (case, quotes, accents, spaces)
        hard = "  “Naïve”  CAFÉ ‘quotes’   and ``more''  "
        ids, starts, ends = tokenizer.encode_with_offsets(hard)
        assert ids == tokenizer.encode(hard)
        assert all(a < b for a, b in zip(starts, ends)) and starts == sorted(starts)
        for token_id, a, b in zip(ids, starts, ends):
            if token_id == tokenizer.unk_id:
                continue  # e.g. "'" is not among the 1,000 pieces
            piece = tokenizer.vocab[token_id].replace("▁", "")
            assert piece in sp_preprocess_with_sources(hard[a:b], True).text.replace(" ", ""), (piece, hard[a:b])
    else:
        assert tokenizer.vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    stats = write_task_records([small_corpus], tokenizer, str(tmp_path / "records"), 64, log=lambda _: None)
    assert stats.examples > 100
    assert sum(1 for _ in tf.data.TFRecordDataset(
        tf.io.gfile.glob(os.path.join(tmp_path, "records", "data.*")))) == stats.examples


def test_build_vocab_error_for_no_input(tmp_path):
    done = build(f"--input_glob={tmp_path / 'none*.txt'}", f"--output={tmp_path / 'v.txt'}")
    assert done.returncode == 1 and "matches no files" in done.stderr
    assert not (tmp_path / "v.txt").exists()


@pytest.mark.parametrize("build_one", [build_wordpiece, build_sentencepiece])
def test_text_the_learners_cannot_use_is_named(tmp_path, build_one):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("A good first line.\nCaf\xe9 au lait.\n".encode("latin-1"))
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n\t\n")
    with pytest.raises(ValueError, match=r"latin.txt:2: invalid UTF-8 at byte 3 of the line"):
        build_one([str(latin)], 100, True, str(tmp_path / "out"))
    with pytest.raises(ValueError, match=r"no text to learn from: every line of .*blank.txt is blank"):
        build_one([str(blank)], 100, True, str(tmp_path / "out"))
    assert sorted(os.listdir(tmp_path)) == ["blank.txt", "latin.txt"]


def test_sentencepiece_covers_every_character_and_makes_its_directory(tmp_path, small_corpus):
    prefix = tmp_path / "new" / "spm"  # a directory that does not exist yet, as for WordPiece
    build_sentencepiece([small_corpus], 1000, True, str(prefix))
    import sentencepiece
    processor = sentencepiece.SentencePieceProcessor(model_file=str(prefix) + ".model")
    # ':' and '(' are rare in these addresses: SentencePiece's default coverage (0.9995) left them <unk>
    assert processor.unk_id() not in processor.encode("Gentlemen of the Senate: (and) the House; 'we'")
