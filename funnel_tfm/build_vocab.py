r"""Builds a WordPiece vocabulary or a SentencePiece model from raw text, for pretraining on your own data.

    python -m funnel_tfm.build_vocab --input_glob='corpus/*.txt' --output=my_vocab.txt --vocab_size=30000
    python -m funnel_tfm.build_vocab --input_glob='corpus/*.txt' --output=my_spm --type=sentencepiece \
        --vocab_size=32000 --nouncased                    # writes my_spm.model and my_spm.vocab

WordPiece uses tensorflow-text's BERT vocabulary learner and puts [PAD] [UNK] [CLS] [SEP] [MASK] first;
SentencePiece (unigram) reserves <pad> <unk> <cls> <sep> <mask> at ids 0-4. Either result works with
`Tokenizer.from_file` and create_pretrain_data. The output is written atomically.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from funnel_tfm.data.vocab_builder import build_sentencepiece, build_wordpiece  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("input_glob", None, "Raw text files (glob; comma-separated globs allowed).")
flags.DEFINE_string("output", None, "WordPiece: the vocab file. SentencePiece: the prefix of .model/.vocab.")
flags.DEFINE_enum("type", "wordpiece", ["wordpiece", "sentencepiece"], "What to build.")
flags.DEFINE_integer("vocab_size", 30000, "Target vocabulary size (WordPiece may end a little off it).")
flags.DEFINE_boolean("uncased", True, "Lower-case (and for WordPiece strip accents) before learning.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import tensorflow as tf
    files = sorted({f for part in FLAGS.input_glob.split(",") if part for f in tf.io.gfile.glob(part)})
    if not files:
        print(f"build_vocab: error: --input_glob={FLAGS.input_glob!r} matches no files", file=sys.stderr)
        sys.exit(1)
    try:
        if FLAGS.type == "wordpiece":
            size = build_wordpiece(files, FLAGS.vocab_size, FLAGS.uncased, FLAGS.output)
            print(f"build_vocab: wrote {FLAGS.output} ({size} tokens from {len(files)} files)")
        else:
            size = build_sentencepiece(files, FLAGS.vocab_size, FLAGS.uncased, FLAGS.output)
            print(f"build_vocab: wrote {FLAGS.output}.model and .vocab ({size} pieces from {len(files)} files)")
    except (OSError, RuntimeError, ValueError) as error:
        print(f"build_vocab: error: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    flags.mark_flags_as_required(["input_glob", "output"])
    app.run(main)
