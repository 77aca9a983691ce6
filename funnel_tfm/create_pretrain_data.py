r"""Raw text files -> pretraining TFRecords + meta json (the original's create_pretrain_data.py, semantics D2–D4).

    python -m funnel_tfm.create_pretrain_data --input_glob='corpus/*.txt' --save_dir=records \
        --tokenizer_path=vocab.txt --seq_len=128 --num_proc=8 --parallel      # all 8 tasks, every core
    python -m funnel_tfm.create_pretrain_data ... --num_proc=64 --proc_id=3  # task 3 of 64 (one host each)

Files (sorted) go to tasks as `files[proc_id::num_proc]`; each task writes
`data.{split}.pass-{pass_id}.seq-{seq_len}.{uncased|cased}.tfrecord-{proc_id:05d}-of-{num_proc:05d}` and its
`meta....json-...`. Local and gs:// paths both work. The same --seed gives byte-identical files.

The original's command lines run too (`funnel_tfm.legacy_flags`): --num_task/--task are --num_proc/--proc_id,
--tokenizer_type is checked against --tokenizer_path, --use_tpu, --use_bfloat16 and the TPU flags are accepted.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep the progress readable

from absl import app, flags

from funnel_tfm import flag_checks, legacy_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("input_glob", None, "Raw text files (glob; comma-separated globs allowed).")
flags.DEFINE_string("save_dir", None, "Output directory (local or gs://).")
flags.DEFINE_string("tokenizer_path", None, "WordPiece vocab.txt or SentencePiece .model.")
flags.DEFINE_boolean("uncased", True, "Lower-case and strip accents (WordPiece) / lower-case (SentencePiece).")
flags.DEFINE_integer("seq_len", 512, "Length of each example, [CLS] A [SEP] B [SEP].", lower_bound=4)
flags.DEFINE_integer("num_proc", 1, "Number of tasks the files are split into.", lower_bound=1)
flags.DEFINE_integer("proc_id", 0, "Task this process runs (ignored with --parallel).", lower_bound=0)
flags.DEFINE_boolean("parallel", False, "Run all --num_proc tasks here, one process per core "
                                         "(--num_proc=1 becomes the number of cores).")
flags.DEFINE_integer("pass_id", 0, "Packing pass: another pass gives another document order and A/B split.",
                     lower_bound=0)
flags.DEFINE_string("split", "train", "Split name in the file names.")
flags.DEFINE_integer("seed", 0, "Seed of every random choice (with task and pass id).", lower_bound=0)
flags.DEFINE_enum("input_format", "sentence_per_line", ["sentence_per_line", "doc_per_line"],
                  "One sentence per line with empty lines between documents, or one document per line.")
flags.DEFINE_integer("min_doc_len", 1, "Documents with fewer tokens are skipped (and counted).", lower_bound=0)
flags.DEFINE_boolean("skip_invalid_lines", False, "Skip (and count) lines that are not UTF-8 instead of failing.")
# The original's --num_task, --task, --tokenizer_type, --use_tpu, ... (mapped by legacy_flags.resolve); last, so
# that the flags above are reused.
legacy_flags.define(FLAGS)


def _run_task(arguments: dict):
    from funnel_tfm.data.pretrain_records import write_task_records
    from funnel_tfm.data.tokenization import Tokenizer
    tokenizer = Tokenizer.from_file(arguments.pop("tokenizer_path"), uncased=arguments.pop("uncased"))
    return write_task_records(tokenizer=tokenizer, **arguments)


def _run_task_or_error(arguments: dict):
    """`_run_task`, with the input errors returned instead of raised: every task of a --parallel run ends (none is
    killed half-way), and main removes what the others wrote."""
    from funnel_tfm.data.pretrain_records import DataError
    from funnel_tfm.data.tokenization import TokenizerError
    try:
        return _run_task(dict(arguments))
    except (DataError, TokenizerError, OSError) as error:
        return error


def _input_files(pattern: str, tokenizer_path: str) -> list[str]:
    from funnel_tfm.data.pretrain_records import input_files
    files, left_out = input_files(pattern, exclude=(tokenizer_path,))
    if left_out:
        print(f"create_pretrain_data: --input_glob: left out {', '.join(left_out[:3])}"
              f"{', ...' if len(left_out) > 3 else ''}", file=sys.stderr)
    return files


def _check_writable(save_dir: str) -> None:
    import tensorflow as tf
    try:
        tf.io.gfile.makedirs(save_dir)
        probe = os.path.join(save_dir, ".write-probe")
        with tf.io.gfile.GFile(probe, "w") as handle:
            handle.write("ok")
        tf.io.gfile.remove(probe)
    except (OSError, tf.errors.OpError) as error:
        raise PermissionError(f"--save_dir={save_dir}: cannot write there ({str(error).splitlines()[0]})") from None


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        settings = legacy_flags.resolve(FLAGS)  # before any work, and before TensorFlow is imported
    except legacy_flags.LegacyFlagError as error:
        print(f"create_pretrain_data: error: {error}", file=sys.stderr)
        sys.exit(1)
    from funnel_tfm.data.pretrain_records import DataError, Stats, check_settings, remove_task_outputs
    from funnel_tfm.data.tokenization import Tokenizer, TokenizerError
    try:
        check_settings(FLAGS.seq_len, 0 if FLAGS.parallel else settings["proc_id"], settings["num_proc"],
                       FLAGS.pass_id, FLAGS.seed)
        Tokenizer.from_file(FLAGS.tokenizer_path, FLAGS.uncased).require_special()  # fail before any work
        files = _input_files(FLAGS.input_glob, FLAGS.tokenizer_path)
        _check_writable(FLAGS.save_dir)
        num_proc = settings["num_proc"] if not (FLAGS.parallel and settings["num_proc"] == 1) else os.cpu_count() or 1
        tasks = list(range(num_proc)) if FLAGS.parallel else [settings["proc_id"]]
        common = dict(files=files, tokenizer_path=FLAGS.tokenizer_path, uncased=FLAGS.uncased,
                      save_dir=FLAGS.save_dir, seq_len=FLAGS.seq_len, num_task=num_proc, pass_id=FLAGS.pass_id,
                      split=FLAGS.split, seed=FLAGS.seed, input_format=FLAGS.input_format,
                      min_doc_len=FLAGS.min_doc_len, skip_invalid=FLAGS.skip_invalid_lines)
        jobs = [dict(common, task=task) for task in tasks]
        if len(jobs) == 1:
            results = [_run_task(jobs[0])]
        else:  # spawn: TensorFlow is not fork-safe
            with multiprocessing.get_context("spawn").Pool(min(len(jobs), os.cpu_count() or 1)) as pool:
                results = pool.map(_run_task_or_error, jobs)
            failed = [result for result in results if isinstance(result, Exception)]
            if failed:  # the pass is all or nothing: records of some tasks only would train on part of the text
                done = [job["task"] for job, result in zip(jobs, results) if not isinstance(result, Exception)]
                remove_task_outputs(FLAGS.save_dir, FLAGS.split, FLAGS.pass_id, FLAGS.seq_len, FLAGS.uncased,
                                    done, num_proc)
                raise failed[0]
        total = Stats()
        for result in results:
            seconds = total.seconds
            total.add(result)
            total.seconds = max(seconds, result.seconds)  # tasks ran side by side
        print(f"create_pretrain_data: {total.summary()}")
        if not total.examples:  # not an error: one task of many may get too little text
            print(f"create_pretrain_data: warning: no examples written: an example needs --seq_len={FLAGS.seq_len} "
                  f"tokens of text, the input has {total.tokens}", file=sys.stderr)
    except (DataError, TokenizerError, FileNotFoundError, PermissionError) as error:
        print(f"create_pretrain_data: error: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    flags.mark_flags_as_required(["input_glob", "save_dir", "tokenizer_path"])
    flag_checks.run(main)
