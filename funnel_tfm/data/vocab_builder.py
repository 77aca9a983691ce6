"""Learns a WordPiece vocabulary or trains a SentencePiece model from raw text files (what
`python -m funnel_tfm.build_vocab` runs; tests build small models with it too).

    build_wordpiece(["corpus/a.txt"], 30000, uncased=True, output="vocab.txt")        # its size
    build_sentencepiece(["corpus/a.txt"], 32000, uncased=False, output_prefix="spm")  # spm.model, spm.vocab
    check_text(["corpus/a.txt"])        # ValueError "corpus/a.txt:7: invalid UTF-8 ..." (both builders call it)

WordPiece uses tensorflow-text's BERT vocabulary learner and puts [PAD] [UNK] [CLS] [SEP] [MASK] first;
SentencePiece (unigram) reserves <pad> <unk> <cls> <sep> <mask> at ids 0-4. Outputs are written atomically.
"""

from __future__ import annotations

import os
import shutil
import tempfile

WORDPIECE_RESERVED = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SENTENCEPIECE_SPECIAL = ["<cls>", "<sep>", "<mask>"]


def check_text(files: list[str]) -> None:
    """A ValueError naming `file:line` for bytes that are not UTF-8, and one when no file has a non-blank line
    (the learners fail on both with messages that name neither the file nor the line)."""
    from funnel_tfm import file_io
    has_text = False
    for path in files:
        with file_io.open_file(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    has_text = bool(line.decode("utf-8").strip()) or has_text
                except UnicodeDecodeError as error:
                    raise ValueError(f"{path}:{number}: invalid UTF-8 at byte {error.start} of the line (convert "
                                     f"the file, e.g. iconv -f latin1 -t utf-8)") from None
    if not has_text:
        raise ValueError(f"no text to learn from: every line of {', '.join(files[:3])}"
                         f"{', ...' if len(files) > 3 else ''} is blank")


def build_wordpiece(files: list[str], vocab_size: int, uncased: bool, output: str) -> int:
    """Learns a WordPiece vocabulary; returns its size."""
    import tensorflow as tf
    from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset

    from funnel_tfm import file_io
    check_text(files)
    lines = tf.data.TextLineDataset(files).filter(lambda line: tf.strings.length(tf.strings.strip(line)) > 0)
    vocab = bert_vocab_from_dataset.bert_vocab_from_dataset(
        lines.batch(1024).prefetch(2), vocab_size=vocab_size, reserved_tokens=WORDPIECE_RESERVED,
        bert_tokenizer_params={"lower_case": uncased})
    file_io.atomic_write_text(output, "\n".join(vocab) + "\n")
    return len(vocab)


def build_sentencepiece(files: list[str], vocab_size: int, uncased: bool, output_prefix: str,
                        character_coverage: float = 1.0) -> int:
    """Trains a unigram SentencePiece model (`<prefix>.model`, `<prefix>.vocab`); returns its size.

    `character_coverage` 1.0 gives every character of the text a piece (SentencePiece's own default, 0.9995, is
    for Chinese / Japanese: on English text it leaves characters such as `:` or `'` as <unk>).
    """
    import sentencepiece
    check_text(files)
    os.makedirs(os.path.dirname(os.path.abspath(output_prefix)), exist_ok=True)
    staging = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(output_prefix)))
    try:
        prefix = os.path.join(staging, "spm")
        sentencepiece.SentencePieceTrainer.train(
            input=",".join(files), model_prefix=prefix, vocab_size=vocab_size, model_type="unigram",
            pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, user_defined_symbols=SENTENCEPIECE_SPECIAL,
            character_coverage=character_coverage,
            normalization_rule_name="nmt_nfkc_cf" if uncased else "nmt_nfkc", input_sentence_size=2_000_000,
            shuffle_input_sentence=True, minloglevel=2)
        for suffix in (".model", ".vocab"):
            os.replace(prefix + suffix, output_prefix + suffix)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return vocab_size
