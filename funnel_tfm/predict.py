r"""Batch inference with an exported model: one JSON line per input line, bad lines counted or rejected.

    python -m funnel_tfm.predict --model=serving/cola/1 --input=texts.txt --output=predictions.jsonl
    python -m funnel_tfm.predict --model=serving/mnli/1 --input=pairs.tsv --output=out.jsonl --bad_lines=fail
    python -m funnel_tfm.predict --model=serving/race/1 --input=questions.jsonl --output=choices.jsonl
    python -m funnel_tfm.predict --model=serving/squad/1 --input=questions.tsv --output=answers.jsonl

`--model` is a `python -m funnel_tfm.export --format=saved_model` directory of any task (tokenizer inside; the
task is read from its funnel_export.json). Inputs name the signature's fields: `.jsonl` (`{"text": ...,
"text_pair": ...}`, `{"article": ..., "question": ..., "options": [4 strings]}`, `{"question": ..., "context":
...}`; an optional `id`), `.tsv` (a header naming the columns; a classifier's `text<TAB>text_pair` needs none) or
`.txt` (a text per line: classifiers of single texts, the tagger). Progress lines go to stderr; the output file
appears only once complete; the summary line gives examples/s.

Trust: a SavedModel is a program, not data. Loading one runs the TensorFlow graph it holds, which can read and
write files; load only exports you made or trust. `--model` must be one of this project's exports (its
funnel_export.json names the task); anything else is refused before it is loaded.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep the progress readable

from absl import flags

from funnel_tfm import flag_checks

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "An export directory written by `funnel_tfm.export --format=saved_model`. A "
                                    "SavedModel is a program: load only what you trust.")
flags.DEFINE_string("input", None, "Inputs: .jsonl or .tsv naming the model's fields, or .txt (UTF-8).")
flags.DEFINE_string("output", None, "Predictions, JSON lines (written under a temporary name, then renamed).")
flags.DEFINE_integer("batch_size", 64, "Examples (input lines) per model call.", lower_bound=1)
flags.DEFINE_enum("bad_lines", "skip", ["skip", "fail"], "skip: write {line, error} and count it; fail: stop at "
                                                         "the first empty / non-UTF-8 / too long / malformed line "
                                                         "(missing field, wrong column or option count).")
flags.DEFINE_integer("max_chars", 100_000, "Lines longer than this many characters are bad lines.", lower_bound=1)


def main(argv: list[str]) -> None:
    del argv
    from funnel_tfm.finetune_cli import error
    missing = [name for name in ("model", "input", "output") if not FLAGS[name].value]
    if missing:
        error("predict", "missing " + ", ".join(f"--{name}" for name in missing))
    from funnel_tfm.serving.batch import predict_file
    log = lambda line: print(f"predict: {line}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        summary = predict_file(FLAGS.model, FLAGS.input, FLAGS.output, batch_size=FLAGS.batch_size,
                               bad_lines=FLAGS.bad_lines, max_chars=FLAGS.max_chars, progress=log)
    except (ValueError, FileNotFoundError) as failure:
        error("predict", str(failure))
    bad = ", ".join(f"{count} {reason}" for reason, count in sorted(summary["bad"].items())) or "none"
    print(f"predict: {summary['predicted']:,} examples in {summary['seconds']:.1f} s "
          f"({summary['examples_per_second']:,.1f} examples/s); bad lines: {bad}; wrote {summary['output']}",
          flush=True)


if __name__ == "__main__":
    flag_checks.run(main)
