"""create_pretrain_data and the pretraining input pipeline on real text (State of the Union, real BERT vocab)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from funnel_tfm.data import data_fetch
from funnel_tfm.data import pretrain_records
from funnel_tfm.data import data_utils
from funnel_tfm.data.input_func_builder import (MaskingIds, damaged_record_file, pretrain_input_fn, record_files,
                                                unused_passes)
from funnel_tfm.data.pretrain_records import DataError, Stats, input_files, read_documents, write_task_records
from funnel_tfm.data.tokenization import Tokenizer

SEQ_LEN = 64


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_file(data_fetch.bert_uncased_vocab())


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return data_fetch.sotu_corpus()[:2]  # 2 of 8 files: ~2.7 MB, ~58 addresses


@pytest.fixture(scope="module")
def records(tmp_path_factory, corpus, tokenizer) -> str:
    directory = str(tmp_path_factory.mktemp("records"))
    for task in range(2):
        write_task_records(corpus, tokenizer, directory, SEQ_LEN, task=task, num_task=2, seed=3, log=lambda _: None)
    return directory


def read_examples(path: str) -> list[dict]:
    spec = {"input": tf.io.FixedLenFeature([SEQ_LEN], tf.int64), "seg_id": tf.io.FixedLenFeature([SEQ_LEN], tf.int64),
            "boundary": tf.io.VarLenFeature(tf.int64), "label": tf.io.FixedLenFeature([1], tf.int64)}
    out = []
    for record in tf.data.TFRecordDataset(path):
        parsed = tf.io.parse_single_example(record, spec)
        out.append({k: (tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v).numpy()
                    for k, v in parsed.items()})
    return out


# ------------------------------------------------------------------------------------ create_pretrain_data
def test_examples_have_the_original_layout(records, tokenizer):
    files, count = record_files([records], "train", SEQ_LEN, True)
    assert len(files) == 2 and count > 1000
    examples = read_examples(files[0])
    starts = tokenizer.start_id_table()
    for ex in examples[:300]:
        ids, seg = ex["input"], ex["seg_id"]
        assert ids[0] == tokenizer.cls_id and ids[-1] == tokenizer.sep_id
        seps = np.flatnonzero(ids == tokenizer.sep_id)
        assert len(seps) == 2
        a_len = seps[0] - 1
        np.testing.assert_array_equal(seg, [2] + [0] * (a_len + 1) + [1] * (SEQ_LEN - a_len - 2))
        np.testing.assert_array_equal(ex["boundary"], list(np.flatnonzero(starts[ids])) + [SEQ_LEN])
    assert {int(ex["label"][0]) for ex in examples} == {0, 1}


def test_fixed_seed_is_byte_identical_and_passes_differ(tmp_path, corpus, tokenizer):
    def run(directory, pass_id, seed=3):
        write_task_records(corpus, tokenizer, str(directory), SEQ_LEN, task=0, num_task=2, pass_id=pass_id,
                           seed=seed, log=lambda _: None)
        return open(os.path.join(directory, data_utils.record_name("train", pass_id, SEQ_LEN, True, 0, 2)),
                    "rb").read()
    first, second = run(tmp_path / "a", 0), run(tmp_path / "b", 0)
    assert first == second
    assert run(tmp_path / "c", 1) != first
    assert run(tmp_path / "d", 0, seed=4) != first


def test_last_document_of_a_file_is_not_merged_into_the_next(tmp_path, tokenizer):
    one, two = tmp_path / "1.txt", tmp_path / "2.txt"
    one.write_text("First document here.\nStill the first.\n\nSecond document, with no empty line after it.")
    two.write_text("Third document starts the next file.\n")
    stats = Stats()
    docs = [read_documents(str(p), tokenizer, 61, stats=stats) for p in (one, two)]
    assert [len(d) for d in docs] == [2, 1] and stats.documents == 3
    assert tokenizer.decode(docs[0][1][0].tolist()) == "second document , with no empty line after it ."


def test_bad_input_is_named_or_skipped_and_counted(tmp_path, tokenizer):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("Good line.\n\nAnother good line.\nBroken \xff\xfe line.\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"bad.txt:4: invalid UTF-8 at byte 7"):
        read_documents(str(bad), tokenizer, 61)
    stats = Stats()
    docs = read_documents(str(bad), tokenizer, 61, skip_invalid=True, stats=stats)
    assert stats.invalid_lines_skipped == 1 and len(docs) == 2
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n  \n")
    stats = Stats()
    assert read_documents(str(empty), tokenizer, 61, stats=stats) == [] and stats.empty_files == 1
    blanks = tmp_path / "blanks.txt"
    blanks.write_text("A sentence.\n\n\n\n\x07\n\nAnother one.\n")  # a control-only line: a document of no tokens
    stats = Stats()
    assert len(read_documents(str(blanks), tokenizer, 61, stats=stats)) == 2
    assert stats.short_documents_skipped == 1
    long = tmp_path / "long.txt"
    long.write_text(" ".join(["word"] * 150) + "\nshort.\n")
    stats = Stats()
    (ids, flags), = read_documents(str(long), tokenizer, 61, stats=stats)
    assert stats.long_lines_split == 1 and stats.sentences == 4 and len(ids) == 152
    assert [int(n) for n in np.diff(np.flatnonzero(np.diff(flags.astype(int))))] == [61, 28]


def test_a_directory_in_the_glob_is_left_out_or_named(tmp_path, tokenizer):
    (tmp_path / "a.txt").write_text("One sentence.\n")
    (tmp_path / "old.txt").mkdir()  # `corpus/*.txt` also matches a directory named like a text file
    assert input_files(str(tmp_path / "*.txt")) == ([str(tmp_path / "a.txt")], [f"{tmp_path / 'old.txt'} (a directory)"])
    with pytest.raises(FileNotFoundError, match=r"matches no files \(only .*old.txt \(a directory\)\)"):
        input_files(str(tmp_path / "o*"))
    assert input_files(f"{tmp_path / 'a.txt'}, {tmp_path / 'a*'}")[0] == [str(tmp_path / "a.txt")]
    with pytest.raises(FileNotFoundError, match=r"'.*b\*.txt' matches no files"):  # one glob of two has a typo
        input_files(f"{tmp_path / '*.txt'},{tmp_path / 'b*.txt'}")
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n")  # the seed README's --input_glob=*.txt next to the vocab
    files, left_out = input_files(str(tmp_path / "*.txt"), exclude=(str(tmp_path / "x" / ".." / "vocab.txt"),))
    assert files == [str(tmp_path / "a.txt")] and left_out[1] == f"{tmp_path / 'vocab.txt'} (the vocabulary)"
    with pytest.raises(DataError, match=r"old.txt: cannot read it as a text file"):
        read_documents(str(tmp_path / "old.txt"), tokenizer, 61)


@pytest.mark.parametrize("settings, message", [
    ({"seq_len": 3}, r"--seq_len=3: .* at least 4"),
    ({"num_task": 0}, r"--num_proc=0: at least 1"),
    ({"task": 2, "num_task": 2}, r"--proc_id=2: must be in 0..1 for --num_proc=2"),
    ({"pass_id": -1}, r"--pass_id=-1: must not be negative"),
    ({"seed": -2}, r"--seed=-2: must not be negative"),
])
def test_settings_no_task_can_run_are_named_before_any_output(tmp_path, corpus, tokenizer, settings, message):
    arguments = {"seq_len": SEQ_LEN, **settings}
    with pytest.raises(DataError, match=message):
        write_task_records(corpus[:1], tokenizer, str(tmp_path / "out"), log=lambda _: None, **arguments)
    assert not os.path.exists(tmp_path / "out")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "funnel_tfm.create_pretrain_data", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow  # several processes (CI runs it: python -m pytest -m slow)
def test_command_line_parallel_mode_and_errors(tmp_path, corpus):
    vocab = data_fetch.bert_uncased_vocab()
    glob = os.path.join(os.path.dirname(corpus[0]), "sotu.0[01].txt")
    done = run_cli(f"--input_glob={glob}", f"--save_dir={tmp_path / 'p'}", f"--tokenizer_path={vocab}",
                   f"--seq_len={SEQ_LEN}", "--num_proc=2", "--parallel", "--seed=3")
    assert done.returncode == 0, done.stderr
    assert "2 files (0 empty, skipped)" in done.stdout and "2 record files" in done.stdout
    # The same files as two separate single-task runs (what two hosts would do).
    for task in range(2):
        assert run_cli(f"--input_glob={glob}", f"--save_dir={tmp_path / 's'}", f"--tokenizer_path={vocab}",
                       f"--seq_len={SEQ_LEN}", "--num_proc=2", f"--proc_id={task}", "--seed=3").returncode == 0
    for name in sorted(os.listdir(tmp_path / "p")):
        assert (tmp_path / "p" / name).read_bytes() == (tmp_path / "s" / name).read_bytes(), name

    def error_of(*args):
        result = run_cli(*args)
        lines = [l for l in result.stderr.splitlines() if l.startswith("create_pretrain_data:")]
        assert result.returncode == 1 and len(lines) == 1, result.stderr
        return lines[0]
    base = [f"--seq_len={SEQ_LEN}"]
    assert "absent.txt: no such vocabulary" in error_of(f"--input_glob={glob}", f"--save_dir={tmp_path / 'x'}",
                                                        f"--tokenizer_path={tmp_path / 'absent.txt'}", *base)
    assert "matches no files" in error_of(f"--input_glob={tmp_path / 'none*.txt'}", f"--save_dir={tmp_path / 'x'}",
                                          f"--tokenizer_path={vocab}", *base)
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    assert "cannot write there" in error_of(f"--input_glob={glob}", f"--save_dir={blocker / 'sub'}",
                                            f"--tokenizer_path={vocab}", *base)


@pytest.mark.slow  # two spawned task processes (~25 s)
def test_a_parallel_run_with_one_bad_file_keeps_no_task_output(tmp_path, corpus):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_bytes(open(corpus[0], "rb").read()[:20000])
    (tmp_path / "in" / "b.txt").write_bytes("Good line.\nCaf\xe9 au lait.\n".encode("latin-1"))
    result = run_cli(f"--input_glob={tmp_path / 'in' / '*.txt'}", f"--save_dir={tmp_path / 'out'}",
                     f"--tokenizer_path={data_fetch.bert_uncased_vocab()}", f"--seq_len={SEQ_LEN}", "--num_proc=2",
                     "--parallel")
    errors = [line for line in result.stderr.splitlines() if line.startswith("create_pretrain_data:")]
    assert result.returncode == 1 and len(errors) == 1 and "b.txt:2: invalid UTF-8" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path / "out") == []  # task 0 had finished: its records would be half the pass


def test_a_crash_while_writing_leaves_no_complete_looking_file(tmp_path, corpus, tokenizer, monkeypatch):
    calls = {"n": 0}
    real = pretrain_records.serialize

    def failing(example):
        calls["n"] += 1
        if calls["n"] == 100:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-file
        return real(example)
    monkeypatch.setattr(pretrain_records, "serialize", failing)
    with pytest.raises(KeyboardInterrupt):
        write_task_records(corpus[:1], tokenizer, str(tmp_path), SEQ_LEN, log=lambda _: None)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------------------- input pipeline
def take(dataset, batches: int) -> dict:
    out = [b for _, b in zip(range(batches), dataset)]
    return {k: np.concatenate([np.asarray(b[k]) for b in out]) for k in out[0]}


@pytest.mark.parametrize("strategy", ["single_token", "word_span"])
def test_masking_statistics_on_real_data(records, tokenizer, strategy):
    ids = MaskingIds.from_tokenizer(tokenizer)
    num_predict = 10
    batch = take(pretrain_input_fn([records], SEQ_LEN, 32, num_predict, ids, strategy, seed=1)(None), 25)
    target = batch["is_target"]
    origin, masked = batch["origin_ids"], batch["token_ids"]
    assert (target.sum(1) == num_predict).all()  # every example gets exactly num_predict targets
    assert not (np.isin(origin, [ids.cls_id, ids.sep_id, ids.pad_id]) & target).any()
    assert (masked[~target] == origin[~target]).all()  # only targets are corrupted
    n = target.sum()
    mask_rate = ((masked == ids.mask_id) & target).sum() / n
    keep_rate = ((masked == origin) & target).sum() / n
    assert abs(mask_rate - 0.8) < 0.03 and abs(keep_rate - 0.1) < 0.025  # 8,000 targets: 3-sigma ~ 0.013
    # target positions, mapping and targets agree
    rows = np.arange(len(target))[:, None]
    assert target[rows, batch["target_positions"]].all()
    np.testing.assert_array_equal(batch["target"], origin[rows, batch["target_positions"]])
    np.testing.assert_array_equal(batch["target_mapping"].argmax(-1), batch["target_positions"])
    assert (batch["mlm_padding_mask"] == ((masked != ids.mask_id) & (masked != ids.pad_id))).all()
    # spans: contiguous runs of targets, counted in words
    starts = tokenizer.start_id_table()
    words = []
    for row in range(len(target)):
        t = 0
        while t < SEQ_LEN:
            if target[row, t]:
                s = t
                while t < SEQ_LEN and target[row, t]:
                    t += 1
                words.append(int(starts[origin[row, s:t]].sum()) + (0 if starts[origin[row, s]] else 1))
            t += 1
    histogram = np.bincount(words, minlength=6) / len(words)
    if strategy == "single_token":
        assert histogram[1] > 0.8  # isolated tokens, rare neighbours by chance
    else:
        # p(l) ∝ 1/(l+1) on 1..5 gives .345/.230/.172/.138/.115, plus single-token fill and spans cut at num_predict
        assert max(words) <= 5 + 1 and 0.25 < histogram[1] < 0.55 and histogram[2] > 0.15 and histogram[5] > 0.04


def test_record_files_leave_out_empty_tasks_and_name_missing_files(tmp_path, records):
    import json
    import shutil
    names = sorted(os.listdir(records))
    metas = [n for n in names if n.startswith("meta.")]
    for name in names:
        shutil.copy(os.path.join(records, name), tmp_path / name)
    with open(tmp_path / metas[0], "w") as handle:  # task 0 had too little text for one example
        json.dump({"filenames": [metas[0].replace("meta.", "data.").replace(".json-", ".tfrecord-")],
                   "num_example": 0}, handle)
    files, count = record_files([str(tmp_path)], "train", SEQ_LEN, True)
    assert [os.path.basename(f) for f in files] == [n for n in names if n.startswith("data.")][1:]
    assert count == json.load(open(tmp_path / metas[1]))["num_example"]
    with open(tmp_path / metas[1], "w") as handle:
        json.dump({"filenames": ["gone.tfrecord"], "num_example": 0}, handle)
    with pytest.raises(FileNotFoundError, match=r"hold no examples \(num_example 0 in meta.train.*\): the text was "
                                                r"shorter than one --seq_len=64 example"):
        record_files([str(tmp_path)], "train", SEQ_LEN, True)
    (tmp_path / metas[1]).write_text('{"filenames": ["data.train')  # a copy cut off
    with pytest.raises(ValueError, match=rf"{metas[1]}: not JSON \(Unterminated string"):
        record_files([str(tmp_path)], "train", SEQ_LEN, True)
    with open(tmp_path / metas[1], "w") as handle:  # a meta whose record file was moved away
        json.dump({"filenames": ["gone.tfrecord"], "num_example": 5}, handle)
    with pytest.raises(FileNotFoundError, match=rf"{metas[1]} lists gone.tfrecord, which is not in "):
        record_files([str(tmp_path)], "train", SEQ_LEN, True)


def test_a_cut_off_record_file_is_found(tmp_path, records):
    files, _ = record_files([records], "train", SEQ_LEN, True)
    assert damaged_record_file(files) is None
    cut = tmp_path / os.path.basename(files[1])
    cut.write_bytes(open(files[1], "rb").read()[:-100])  # a copy that stopped early
    assert damaged_record_file([files[0], str(cut)]) == (str(cut), damaged_record_file([str(cut)])[1])
    assert damaged_record_file([str(cut)])[1].startswith("truncated record at ")


def test_passes_beyond_num_passes_are_found_to_be_told(tmp_path, records):
    import shutil
    for name in os.listdir(records):  # the README's `for pass_id in seq 0 2` loop, as metas
        if name.startswith("meta."):
            for pass_id in range(3):
                shutil.copy(os.path.join(records, name), tmp_path / name.replace(".pass-0.", f".pass-{pass_id}."))
    assert unused_passes([str(tmp_path)], "train", SEQ_LEN, True, 1) == [1, 2]
    assert unused_passes([str(tmp_path)], "train", SEQ_LEN, True, 3) == []
    assert unused_passes([str(tmp_path)], "train", SEQ_LEN, False, 1) == []


def test_pipeline_is_reproducible_and_shards(records, tokenizer):
    ids = MaskingIds.from_tokenizer(tokenizer)
    make = lambda seed: pretrain_input_fn([records], SEQ_LEN, 8, 10, ids, "word_span", seed=seed)  # noqa: E731
    first, again, other = take(make(5)(None), 3), take(make(5)(None), 3), take(make(6)(None), 3)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["token_ids"], other["token_ids"])
    contexts = [tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i, num_replicas_in_sync=2)
                for i in range(2)]
    shards = [take(make(5)(c).unbatch().batch(1), 50)["origin_ids"] for c in contexts]
    files, _ = record_files([records], "train", SEQ_LEN, True)
    for shard, path in zip(shards, files):  # one file per pipeline
        known = {tuple(ex["input"]) for ex in read_examples(path)}
        assert all(tuple(row) in known for row in shard)


def test_truncate_seq_ends_with_sep_and_pads(records, tokenizer):
    ids = MaskingIds.from_tokenizer(tokenizer)
    batch = take(pretrain_input_fn([records], SEQ_LEN, 8, 10, ids, "word_span", stride=4, truncate_seq=True,
                                   seed=2)(None), 2)
    assert (batch["origin_ids"][:, -4] == ids.sep_id).all() and (batch["origin_ids"][:, -3:] == ids.pad_id).all()
    assert (batch["padding_mask"][:, -3:] == 0).all() and not batch["is_target"][:, -4:].any()


def test_non_local_paths_go_through_tf_io_gfile(corpus, tokenizer):
    """gs:// cannot be reached here; TensorFlow's ram:// file system takes the same tf.io.gfile code path."""
    tf.io.gfile.makedirs("ram://funnel_corpus")
    tf.io.gfile.copy(corpus[0], "ram://funnel_corpus/part.txt", overwrite=True)
    files = tf.io.gfile.glob("ram://funnel_corpus/*.txt")
    stats = write_task_records(files, tokenizer, "ram://funnel_records", SEQ_LEN, log=lambda _: None)
    assert stats.examples > 1000
    batch = next(iter(pretrain_input_fn(["ram://funnel_records"], SEQ_LEN, 4, 10,
                                        MaskingIds.from_tokenizer(tokenizer))(None)))
    assert batch["token_ids"].shape == (4, SEQ_LEN)
