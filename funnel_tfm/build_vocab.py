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

from funnel_tfm import flag_checks  # noqa: E402
from funnel_tfm.data.vocab_builder import build_sentencepiece, build_wordpiece  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("input_glob", None, "Raw text files (glob; comma-separated globs allowed).")
flags.DEFINE_string("output", None, "WordPiece: the vocab file. SentencePiece: the prefix of .model/.vocab.")
flags.DEFINE_enum("type", "wordpiece", ["wordpiece", "sentencepiece"], "What to build.")
flags.DEFINE_integer("vocab_size", 30000, "Target vocabulary size (WordPiece may end a little off it).",
                     lower_bound=1)
flags.DEFINE_boolean("uncased", True, "Lower-case (and for WordPiece strip accents) before learning.")
flags.DEFINE_float("character_coverage", 1.0, "SentencePiece: share of the text's characters that get a piece "
                                              "(1.0: all; 0.9995 for Chinese / Japanese).")
flag_checks.within("character_coverage", 0.0, 1.0, low_open=True)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import tensorflow as tf

    from funnel_tfm.data.pretrain_records import input_files
    try:
        # directories are left out, and the output of an earlier run (`--input_glob=*.txt --output=vocab.txt`)
        outputs = (FLAGS.output,) if FLAGS.type == "wordpiece" else (FLAGS.output + ".model", FLAGS.output + ".vocab")
        files, left_out = input_files(FLAGS.input_glob, exclude=outputs)
    except FileNotFoundError as error:
        print(f"build_vocab: error: {error}", file=sys.stderr)
        sys.exit(1)
    if left_out:
        print(f"build_vocab: --input_glob: left out {', '.join(left_out[:3])}{', ...' if len(left_out) > 3 else ''}",
              file=sys.stderr)
    try:
        if FLAGS.type == "wordpiece":
            size = build_wordpiece(files, FLAGS.vocab_size, FLAGS.uncased, FLAGS.output)
            print(f"build_vocab: wrote {FLAGS.output} ({size} tokens from {len(files)} files)")
        else:
            size = build_sentencepiece(files, FLAGS.vocab_size, FLAGS.uncased, FLAGS.output, FLAGS.character_coverage)
            print(f"build_vocab: wrote {FLAGS.output}.model and .vocab ({size} pieces from {len(files)} files)")
    except (OSError, RuntimeError, ValueError, tf.errors.OpError) as error:
        print(f"build_vocab: error: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    flags.mark_flags_as_required(["input_glob", "output"])
    flag_checks.run(main)
