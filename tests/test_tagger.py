"""`python -m funnel_tfm.tagger` on the real CoNLL-2000 chunking sample (seqeval 1.2.2's sdist, via data_fetch):
records with the label on each word's first piece only, the loss over labelled tokens, the `tagger` head through
export and load, a tiny model learning chunking above the trivial baselines, evaluation equal to seqeval and
conlleval on the written predictions, the same counts on two replicas, and bad input as one clear error."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from seqeval import metrics as seqeval

from funnel_tfm.config import ModelConfig
from funnel_tfm.data import data_fetch
from funnel_tfm.data.conll import Sentence, read_conll
from funnel_tfm.data.tagging_records import (IGNORED, pack_sentence, tagging_eval_dataset, write_tagging_records)
from funnel_tfm.data.tokenization import Tokenizer
from test_classifier import TINY, run_entry_point  # the same tiny config and CLI runner

SEQ_LEN = 64
TRAIN_SENTENCES = 30  # of the sample's 40; the other 10 are dev (their tags all occur in the 30)
GOLD_COLUMN = 2       # the sample's columns: word POS gold pred


def run_tagger(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_entry_point("tagger", *args, check=check)


@pytest.fixture(scope="module")
def vocab() -> str:
    return data_fetch.bert_uncased_vocab()


@pytest.fixture(scope="module")
def tokenizer(vocab) -> Tokenizer:
    return Tokenizer.from_file(vocab)


def read_sample_blocks() -> list[str]:
    """The sample's sentences as text blocks (4 columns), in file order."""
    with open(data_fetch.conll2000_chunking_sample(), encoding="utf-8") as handle:
        return handle.read().strip("\n").split("\n\n")


@pytest.fixture(scope="module")
def sample_blocks() -> list[str]:
    return read_sample_blocks()


def write_chunking_dir(directory, blocks: list[str] | None = None) -> str:
    """train.txt (30 sentences) and dev.txt (10) of the real sample; test.txt: the dev words without tags."""
    blocks, directory = blocks or read_sample_blocks(), pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train.txt").write_text("\n\n".join(blocks[:TRAIN_SENTENCES]) + "\n", encoding="utf-8")
    (directory / "dev.txt").write_text("-DOCSTART- -X- -X- O\n\n" + "\n\n".join(blocks[TRAIN_SENTENCES:]) + "\n",
                                       encoding="utf-8")
    words = ["\n".join(line.split(" ")[0] for line in block.split("\n")) for block in blocks[TRAIN_SENTENCES:]]
    (directory / "test.txt").write_text("\n\n".join(words) + "\n", encoding="utf-8")
    return str(directory)


@pytest.fixture(scope="module")
def chunking_dir(tmp_path_factory, sample_blocks) -> str:
    return write_chunking_dir(tmp_path_factory.mktemp("chunking"), sample_blocks)


def tiny_config(path) -> str:
    ModelConfig(**TINY).to_json(str(path))
    return str(path)


# ------------------------------------------------------------------------------------------------ records
def test_only_first_pieces_are_labelled_and_cut_words_counted(tokenizer):
    sentence = Sentence(("Johanson", "lives", "in", "Reykjavik", "."), ("B-NP", "B-VP", "B-PP", "B-NP", "O"), 1)
    pieces = {word: tokenizer.encode(word) for word in sentence.words}
    labels = {"O": 0, "B-NP": 1, "B-PP": 2, "B-VP": 3}
    features, cut = pack_sentence(sentence, pieces, tokenizer, labels, max_seq_length=16)
    flat = [piece for word in sentence.words for piece in pieces[word]]
    firsts = np.cumsum([0] + [len(pieces[w]) for w in sentence.words[:-1]]) + 1  # after [CLS]
    assert len(flat) > len(sentence.words) and cut == 0  # some words are several pieces
    assert features["token_ids"].tolist() == [tokenizer.cls_id, *flat, tokenizer.sep_id] + \
        [tokenizer.pad_id] * (14 - len(flat))
    expected_labels = np.full(16, IGNORED)
    expected_labels[firsts] = [labels[t] for t in sentence.tags]
    assert features["label_ids"].tolist() == expected_labels.tolist()
    expected_words = np.full(16, IGNORED)
    expected_words[firsts] = range(len(sentence.words))
    assert features["word_index"].tolist() == expected_words.tolist()
    assert features["segment_ids"].tolist() == [2] + [0] * 15
    assert features["padding_mask"].tolist() == [1] * (len(flat) + 2) + [0] * (14 - len(flat))
    words_only, _ = pack_sentence(Sentence(sentence.words, None, 1), pieces, tokenizer, labels, max_seq_length=16)
    assert (words_only["label_ids"] == IGNORED).all() and words_only["word_index"].tolist() == expected_words.tolist()
    # Room for one piece less than the sentence has: the last word (".", one piece) is cut, whole.
    short, cut = pack_sentence(sentence, pieces, tokenizer, labels, max_seq_length=len(flat) + 1)
    assert cut == 1 and short["word_index"].max() == len(sentence.words) - 2


def test_eval_dataset_counts_every_sentence_once(tmp_path, tokenizer, chunking_dir):
    sentences = read_conll(os.path.join(chunking_dir, "train.txt"), tag_column=GOLD_COLUMN)
    labels = sorted({t for s in sentences for t in s.tags})
    path = str(tmp_path / "train.tfrecord")
    meta = write_tagging_records(sentences, tokenizer, labels, path, 32, settings={}, log=lambda line: None)
    pieces = [sum(len(tokenizer.encode(w)) for w in s.words) for s in sentences]
    assert meta["num_examples"] == 30 and meta["num_sentences_cut"] == sum(p > 30 for p in pieces) > 0
    batches = list(tagging_eval_dataset(path, 32, global_batch=8, num_examples=30).as_numpy_iterator())
    real = np.concatenate([b["is_real_example"] for b in batches]) == 1
    assert len(real) == 32 and real.sum() == 30
    assert np.concatenate([b["example_index"] for b in batches])[real].tolist() == list(range(30))
    label_ids = np.concatenate([b["label_ids"] for b in batches])
    assert (label_ids[~real] == IGNORED).all()
    kept = [min(len(s.words), int((row >= 0).sum())) for s, row in zip(sentences, label_ids[real])]
    assert sum(len(s.words) for s in sentences) - sum(kept) == meta["num_words_cut"]


# ------------------------------------------------------------------------------------------------ task and head
def test_loss_is_the_mean_over_labelled_tokens_and_the_head_loads_back(tmp_path):
    from funnel_tfm.checkpoints.loading import export
    from funnel_tfm.layers.heads import ClassificationHead, TokenClassificationHead
    from funnel_tfm.modeling import FunnelTFM
    from funnel_tfm.tasks.tagging import TaggingTask
    config = ModelConfig(**TINY)
    task = TaggingTask.build(config, n_tags=5)
    rng = np.random.default_rng(0)
    labels = rng.integers(-1, 5, size=(3, 16)).astype(np.int32)
    batch = {"token_ids": rng.integers(1000, 2000, size=(3, 16)).astype(np.int32),
             "segment_ids": np.zeros((3, 16), np.int32), "padding_mask": np.ones((3, 16), np.int32),
             "label_ids": labels, "is_real_example": np.array([1, 1, 0], np.int32)}
    loss, sums = task.loss(batch, {"global_labelled_tokens": tf.constant(40.0)}, 3, training=False)
    logits = task.model(batch).numpy()
    assert logits.shape == (3, 16, 5) and logits.dtype == np.float32
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    scored = (labels >= 0) & (batch["is_real_example"][:, None] == 1)
    ce = -np.take_along_axis(log_probs, np.maximum(labels, 0)[..., None], -1)[..., 0][scored]
    assert float(loss) == pytest.approx(ce.sum() / 40.0, rel=1e-5)  # the global count, not the local one
    assert float(sums["loss"][1]) == scored.sum()
    assert float(sums["accuracy"][0]) == (logits.argmax(-1) == labels)[scored].sum()

    export(task.checkpoint_view(), str(tmp_path / "tagger"), to="keras")
    loaded = FunnelTFM.load_checkpoint(str(tmp_path / "tagger"))
    head = loaded.heads["tagger"]
    assert isinstance(head, TokenClassificationHead) and head.n_class == 5 and loaded.model.use_decoder
    assert not isinstance(head, ClassificationHead)
    hidden = loaded.model(batch)["decoder_output"]
    np.testing.assert_allclose(head(hidden).numpy(), logits, atol=1e-5)
    assert set(head.weight_names()) == {"tagger/logit/kernel", "tagger/logit/bias"}


def test_exported_to_transformers_token_classification_gives_the_same_logits(tmp_path):
    """Export as FunnelForTokenClassification: transformers' independent PyTorch model gives our logits, and the
    directory loads back with the `tagger` head. Unpadded inputs: with padding transformers pools the mask
    differently from the original (tests/modeling/test_parity_hf.py)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from funnel_tfm.checkpoints.loading import export
    from funnel_tfm.modeling import FunnelTFM
    from funnel_tfm.tasks.tagging import TaggingTask
    task = TaggingTask.build(ModelConfig(**TINY), n_tags=7)
    rng = np.random.default_rng(1)
    for variable in task.model.head.weights:  # the bias off zero, so a lost bias would show
        variable.assign(rng.normal(size=variable.shape).astype(np.float32))
    inputs = {"token_ids": rng.integers(1000, 2000, size=(2, 16)).astype(np.int32),
              "segment_ids": np.array([[2] + [0] * 8 + [1] * 7] * 2, np.int32),
              "padding_mask": np.ones((2, 16), np.int32)}
    ours = task.model(inputs).numpy()
    report = export(task.checkpoint_view(), str(tmp_path / "hf"), to="hf")
    assert report.detail == "transformers class FunnelForTokenClassification"
    hf_model = transformers.FunnelForTokenClassification.from_pretrained(str(tmp_path / "hf")).eval()
    with torch.no_grad():
        theirs = hf_model(input_ids=torch.tensor(inputs["token_ids"], dtype=torch.long),
                          token_type_ids=torch.tensor(inputs["segment_ids"], dtype=torch.long),
                          attention_mask=torch.tensor(inputs["padding_mask"])).logits.numpy()
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-5)
    loaded = FunnelTFM.load_checkpoint(str(tmp_path / "hf"))
    np.testing.assert_allclose(loaded.heads["tagger"](loaded.model(inputs)["decoder_output"]).numpy(), ours,
                               rtol=0, atol=1e-5)


def test_the_head_is_backend_neutral():
    """The head on JAX (keras.ops only) gives numpy's dense layer; run in a fresh process (one backend each)."""
    pytest.importorskip("jax")
    script = ("import numpy as np, keras\n"
              "from funnel_tfm.layers.heads import TokenClassificationHead\n"
              "head = TokenClassificationHead(8, n_class=3, dropout=0.5, initializer='glorot_uniform')\n"
              "x = np.random.default_rng(0).normal(size=(2, 4, 8)).astype('float32')\n"
              "out = np.asarray(head(x, training=False))\n"
              "want = x @ np.asarray(head.logit.kernel) + np.asarray(head.logit.bias)\n"
              "assert out.shape == (2, 4, 3) and out.dtype == np.float32 and np.allclose(out, want, atol=1e-5)\n"
              "print(keras.backend.backend())\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "KERAS_BACKEND": "jax", "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0 and result.stdout.strip().endswith("jax"), result.stderr[-2000:]


# ------------------------------------------------------------------------------------------------ the job
@pytest.fixture(scope="module")
def trained(tmp_path_factory, vocab, chunking_dir) -> dict:
    """One run: train 200 steps (a save every 100), evaluate every checkpoint on dev, predict dev."""
    root = tmp_path_factory.mktemp("tagger_run")
    model_dir = str(root / "exp")
    common = [f"--data_dir={chunking_dir}", f"--output_dir={root / 'proc'}", f"--tokenizer_path={vocab}",
              f"--tag_column={GOLD_COLUMN}", f"--max_seq_length={SEQ_LEN}", "--eval_batch_size=8",
              "--jit_compile=False"]
    result = run_tagger(*common, f"--model_dir={model_dir}", f"--model_config={tiny_config(root / 'tiny.json')}",
                        "--do_train=True", "--do_eval=True", "--do_predict=True", "--train_batch_size=8",
                        "--train_steps=200", "--save_steps=100", "--iterations=50", "--warmup_steps=20",
                        "--learning_rate=2e-3")
    results = [json.loads(line) for line in open(os.path.join(model_dir, "eval", "dev", "results.jsonl"))]
    return {"model_dir": model_dir, "common": common, "stdout": result.stdout, "results": results,
            "best": json.load(open(os.path.join(model_dir, "best_result.json")))}


def test_tiny_tagger_learns_real_chunking_and_evaluates_every_checkpoint(trained, chunking_dir):
    assert [r["step"] for r in trained["results"]] == [100, 200]  # one row per save
    assert all(r["num_examples"] == 10 and r["num_words"] == 241 for r in trained["results"])
    dev = read_conll(os.path.join(chunking_dir, "dev.txt"), tag_column=GOLD_COLUMN)
    gold = [list(s.tags) for s in dev]
    # The trivial baselines score no chunk at all: all "O", and the majority tag (I-NP) everywhere, which chunks
    # a whole sentence into one NP.
    assert seqeval.f1_score(gold, [["O"] * len(g) for g in gold]) == 0.0
    assert seqeval.f1_score(gold, [["I-NP"] * len(g) for g in gold]) == 0.0
    majority_accuracy = max(np.mean([t == tag for g in gold for t in g]) for tag in ("I-NP", "B-NP", "O"))
    best = trained["best"]
    assert best["f1"] > 0.3, best                         # measured: 0.44 (a per-word lookup of train: 0.50)
    assert best["accuracy"] > majority_accuracy + 0.15, (best, majority_accuracy)   # measured 0.66 vs 0.33
    assert best["main"] == best["f1"] and "NP" in best["per_type"]


def test_eval_equals_seqeval_and_conlleval_on_the_written_predictions(trained, chunking_dir):
    path = os.path.join(trained["model_dir"], "predict", "dev.conll")
    gold_back, predicted = read_conll(path, tag_column=1), read_conll(path, tag_column=2)  # word gold pred
    dev = read_conll(os.path.join(chunking_dir, "dev.txt"), tag_column=GOLD_COLUMN)
    assert [s.words for s in gold_back] == [s.words for s in dev] == [s.words for s in predicted]
    assert [s.tags for s in gold_back] == [s.tags for s in dev]
    gold, pred = [list(s.tags) for s in dev], [list(s.tags) for s in predicted]
    best = trained["best"]  # the predictions are the best checkpoint's
    assert best["f1"] == seqeval.f1_score(gold, pred)
    assert best["precision"] == seqeval.precision_score(gold, pred)
    assert best["recall"] == seqeval.recall_score(gold, pred)
    assert best["accuracy"] == seqeval.accuracy_score(gold, pred)
    with open(path, "rb") as handle:
        report = subprocess.run(["perl", data_fetch.conlleval_script(), "-d", " "], stdin=handle,
                                capture_output=True, text=True, check=True).stdout
    fb1 = float(re.search(r"precision:\s+[\d.]+%; recall:\s+[\d.]+%; FB1:\s+([\d.]+)", report).group(1))
    assert fb1 == round(100 * best["f1"], 2)


def test_two_replicas_give_the_same_counts_and_an_unlabelled_file_is_predicted(trained, chunking_dir):
    """Re-evaluation of the same checkpoints on 2 replicas (batch 8 = 4 per replica, 6 padding sentences)."""
    result = run_tagger(*trained["common"], f"--model_dir={trained['model_dir']}", "--do_eval=True",
                        "--do_predict=True", "--predict_split=test", "--overwrite=True", "--strategy=mirrored",
                        "--num_cpu_devices=2", "--predict_batch_size=4")
    assert "10 sentences (241 words) in batches of 8 on 2 replica(s)" in result.stdout
    again = [json.loads(line) for line in open(os.path.join(trained["model_dir"], "eval", "dev", "results.jsonl"))]
    assert len(again) == len(trained["results"])
    for one, two in zip(trained["results"], again):
        assert (two["step"], two["num_examples"], two["num_words"]) == (one["step"], one["num_examples"], 241)
        assert {k: two["per_type"][k]["support"] for k in two["per_type"]} == \
            {k: one["per_type"][k]["support"] for k in one["per_type"]}
        for metric in ("precision", "recall", "f1", "accuracy"):
            assert two[metric] == pytest.approx(one[metric], abs=1e-12), metric
    lines = open(os.path.join(trained["model_dir"], "predict", "test.conll"), encoding="utf-8").read()
    unlabelled = read_conll(os.path.join(trained["model_dir"], "predict", "test.conll"))  # word pred
    assert {len(line.split(" ")) for line in lines.splitlines() if line} == {2}
    dev = read_conll(os.path.join(chunking_dir, "dev.txt"), tag_column=GOLD_COLUMN)
    assert [s.words for s in unlabelled] == [s.words for s in dev]


def one_error_line(stderr: str) -> str:
    """The error line, after checking there is no traceback (TensorFlow's start-up notices may precede it)."""
    assert "Traceback" not in stderr, stderr
    return stderr.strip().splitlines()[-1]


def test_bad_input_is_one_clear_error_and_writes_nothing(tmp_path, vocab, sample_blocks):
    data = tmp_path / "data"
    data.mkdir()
    train = sample_blocks[:3]
    broken = train[1].split("\n")
    broken[4] = broken[4] + " extra"  # line 5 of the second sentence: 5 columns instead of 4
    (data / "train.txt").write_text("\n\n".join([train[0], "\n".join(broken), train[2]]) + "\n", encoding="utf-8")
    bad_line = len(train[0].split("\n")) + 1 + 5
    common = [f"--data_dir={data}", f"--output_dir={tmp_path / 'proc'}", f"--model_dir={tmp_path / 'exp'}",
              f"--tokenizer_path={vocab}", f"--model_config={tiny_config(tmp_path / 'tiny.json')}",
              f"--tag_column={GOLD_COLUMN}", f"--max_seq_length={SEQ_LEN}", "--do_train=True", "--do_eval=True",
              "--train_steps=2", "--jit_compile=False"]
    result = run_tagger(*common, check=False)
    assert result.returncode == 1 and one_error_line(result.stderr).startswith("tagger: error: "), result.stderr
    assert f"train.txt:{bad_line}: 5 column(s); expected 4" in result.stderr
    assert not os.path.exists(tmp_path / "proc") and not os.path.exists(tmp_path / "exp")

    (data / "train.txt").write_text("\n\n".join(train) + "\n", encoding="utf-8")
    dev = sample_blocks[3].split("\n")
    dev[2] = " ".join(dev[2].split(" ")[:2] + ["B-XYZ", "O"])  # a tag training never saw
    (data / "dev.txt").write_text("\n".join(dev) + "\n", encoding="utf-8")
    result = run_tagger(*common, check=False)
    assert result.returncode == 1 and one_error_line(result.stderr).startswith("tagger: error: "), result.stderr
    assert "dev.txt:3: unknown tag 'B-XYZ'; expected one of O, B-" in result.stderr
    assert not os.path.exists(tmp_path / "proc") and not os.path.exists(tmp_path / "exp")  # failed before training


def test_conll2003_file_names_are_found(tmp_path, sample_blocks):
    from funnel_tfm.data.tagging_records import read_split
    (tmp_path / "eng.train").write_text("-DOCSTART- -X- -X- O\n\n" + sample_blocks[0] + "\n", encoding="utf-8")
    (tmp_path / "eng.testa").write_text(sample_blocks[1] + "\n", encoding="utf-8")
    assert len(read_split(str(tmp_path), "train")) == len(read_split(str(tmp_path), "dev")) == 1
    (tmp_path / "dev.txt").write_text(sample_blocks[2] + "\n\n" + sample_blocks[3] + "\n", encoding="utf-8")
    assert len(read_split(str(tmp_path), "dev")) == 2  # {split}.txt first
    with pytest.raises(FileNotFoundError, match=r"test.txt: no such file .*eng.testb"):
        read_split(str(tmp_path), "test")
