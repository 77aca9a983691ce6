"""A small SentencePiece model of real text, built the way `python -m funnel_tfm.build_vocab --type=sentencepiece`
builds one (unigram, the original's special symbols), for the tests that tokenize with SentencePiece.

    path = train_sentencepiece(str(tmp_path))          # <tmp_path>/spm.model, 1,000 pieces, uncased
"""

from __future__ import annotations

import os

from funnel_tfm.data.vocab_builder import build_sentencepiece
from funnel_tfm.data import data_fetch


def train_sentencepiece(directory: str, vocab_size: int = 1000, lines: int = 3000) -> str:
    """A unigram model of the first `lines` lines (~400 KB for 3,000) of the State of the Union corpus:
    `<directory>/spm.model` (a second or two on one core)."""
    with open(data_fetch.sotu_corpus()[0], encoding="utf-8") as handle:
        part = "".join(handle.readlines()[:lines])
    with open(os.path.join(directory, "part.txt"), "w", encoding="utf-8") as handle:
        handle.write(part)
    build_sentencepiece([os.path.join(directory, "part.txt")], vocab_size, True, os.path.join(directory, "spm"))
    return os.path.join(directory, "spm.model")
