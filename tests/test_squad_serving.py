"""The SQuAD raw-text signature answers as `python -m funnel_tfm.squad --do_predict` does: every window of a long
context (the job's stride, best-context tokens, best answer over windows, null odds over windows), character
offsets for WordPiece and SentencePiece, non-ASCII text included. The in-graph pieces are checked against the
job's own Python functions; the slow tests serve exported models in a fresh process against the job's files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from funnel_tfm.data import data_fetch, squad_data
from funnel_tfm.data.tokenization import Tokenizer

HARD_TEXTS = [
    "The Broncos' defense (ranked 1st) won Super Bowl 50, 24–10.",
    "Café Müller, naïve\u200b façade — Ångström: 東京は大きい!",
    "  “Naïve”  CAFÉ ‘quotes’   and ``more''  ",
    "odd ''' quotes ```` and `'` mixed '' ``",
    "tab\there\x07 and 🙂 emoji.\u00a0\u00a0NBSP,\u3000ideographic\nnew  line \t",
    "a \u0301 b ¨ c ´d ﬁne ① ΣΑΣ İstanbul हिन्दी",
    "   ", "",
]


@pytest.fixture(scope="module")
def sentencepiece_model(tmp_path_factory) -> str:
    """A 1,000-piece unigram model of real text (State of the Union), uncased, with the original's specials."""
    import sentencepiece
    root = tmp_path_factory.mktemp("spm")
    with open(data_fetch.sotu_corpus()[0], encoding="utf-8") as handle:
        (root / "part.txt").write_text("".join(handle.readlines()[:3000]), encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(root / "part.txt"), model_prefix=str(root / "spm"), vocab_size=1000, model_type="unigram",
        pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, user_defined_symbols=["<cls>", "<sep>", "<mask>"],
        normalization_rule_name="nmt_nfkc_cf", minloglevel=2)
    return str(root / "spm.model")


def tokenizers(sentencepiece_model: str) -> list[Tokenizer]:
    vocab = data_fetch.bert_uncased_vocab()
    return [Tokenizer.from_file(vocab, uncased=True), Tokenizer.from_file(vocab, uncased=False),
            Tokenizer.from_file(sentencepiece_model, uncased=True),
            Tokenizer.from_file(sentencepiece_model, uncased=False)]


# ------------------------------------------------------------------------------------------------ offsets
def test_in_graph_character_offsets_equal_the_jobs(sentencepiece_model):
    """`text_offsets.tokenize_with_char_offsets` (in a graph) against `Tokenizer.encode_batch_with_offsets` (the
    job's Python) for WordPiece and SentencePiece, cased and uncased: accents, curly and doubled quotes, runs of
    (non-ASCII) white space, lone combining marks, compatibility characters, CJK, emoji, control characters."""
    from funnel_tfm.serving.text_offsets import tokenize_with_char_offsets
    for tokenizer in tokenizers(sentencepiece_model):
        graph = tf.function(lambda t, tokenizer=tokenizer: tokenize_with_char_offsets(tokenizer, t))
        ids, first, end = graph(tf.constant(HARD_TEXTS))
        for row, (want_ids, want_first, want_end) in enumerate(tokenizer.encode_batch_with_offsets(HARD_TEXTS)):
            where = (tokenizer.kind, tokenizer.uncased, HARD_TEXTS[row])
            assert ids[row].numpy().tolist() == want_ids, where
            assert first[row].numpy().tolist() == want_first, where
            assert end[row].numpy().tolist() == want_end, where
        assert sum(len(x) for x in ids.numpy()) > 60  # the texts are tokenized: the comparison can fail


def test_strip_like_python():
    from funnel_tfm.serving.text_offsets import strip_like_python
    texts = [" a b ", "\u00a0\u3000x\u2009", "\n\t", "", "é ", "\u200bz"]  # U+200B is no white space to Python
    stripped, lead, trail = strip_like_python(tf.constant(texts))
    assert [s.decode() for s in stripped.numpy()] == [t.strip() for t in texts]
    assert lead.numpy().tolist() == [len(t) - len(t.lstrip()) for t in texts]
    assert trail.numpy().tolist() == [len(t.lstrip()) - len(t.strip()) for t in texts]


# ------------------------------------------------------------------------------------------------ windows
def test_windows_and_best_context_equal_the_jobs():
    """`plan_windows` + `max_context_flags` (one batch per stride) against `squad_data.doc_windows` and
    `max_context_flags`, with ties between windows and a short last window."""
    from funnel_tfm.serving.squad_signature import max_context_flags, plan_windows
    combos = [(tokens, room) for tokens in range(0, 41) for room in (1, 3, 6, 7, 16)]
    num_tokens = tf.constant([t for t, _ in combos], tf.int32)
    room = tf.constant([r for _, r in combos], tf.int32)
    for stride in (1, 2, 3, 5, 128):
        row, start, length, count = plan_windows(num_tokens, room, stride)
        flags = max_context_flags(row, start, length, count, num_tokens, room, stride).numpy()
        row, start, length = row.numpy(), start.numpy(), length.numpy()
        for b, (tokens, max_tokens) in enumerate(combos):
            windows = squad_data.doc_windows(tokens, max_tokens, stride)
            mine = np.flatnonzero(row == b)
            assert [(start[w], length[w]) for w in mine] == windows, (tokens, max_tokens, stride)
            for which, w in enumerate(mine):
                expected = squad_data.max_context_flags(windows, which) if tokens else []
                assert flags[w, :length[w]].tolist() == expected, (tokens, max_tokens, stride, which)
                assert not flags[w, length[w]:].any()


def test_answer_over_windows_equals_make_predictions():
    """`best_span` + `best_answer` + `answer_text` on random beams over several windows of each question against
    the job's `make_predictions`: best-context starts, ties across windows (log-probabilities in halves), questions
    with no candidate, the null odds over windows with and without the answer class."""
    from funnel_tfm.serving.squad_signature import (Windows, answer_text, best_answer, best_span, max_context_flags,
                                                    plan_windows)
    from funnel_tfm.tasks.squad_postprocess import make_predictions
    rng = np.random.default_rng(0)
    n_questions, k, doc_offset = 60, 3, 4
    tokens = rng.integers(0, 30, n_questions).astype(np.int32)
    room = rng.choice([4, 6, 9], n_questions).astype(np.int32)
    stride = 3
    row, start, length, count = plan_windows(tf.constant(tokens), tf.constant(room), stride)
    flags = max_context_flags(row, start, length, count, tf.constant(tokens), tf.constant(room), stride)
    n_windows = int(tf.size(row))
    contexts = [" ".join(f"w{i}é" for i in range(n)) for n in tokens]
    char_starts = [[c.index(f"w{i}é") if i == 0 else c.index(f" w{i}é") + 1 for i in range(n)]
                   for c, n in zip(contexts, tokens)]
    char_ends = [[s + len(f"w{i}é") for i, s in enumerate(starts)] for starts in char_starts]
    for conditional in (True, False):
        j = k * k if conditional else k
        length_np = length.numpy()
        beams = {"start_top_index": rng.integers(doc_offset - 1, doc_offset + 10, (n_windows, k)),
                 "end_top_index": rng.integers(doc_offset - 1, doc_offset + 10, (n_windows, j)),
                 "start_top_log_probs": (np.round(rng.normal(size=(n_windows, k)) * 2) / 2).astype(np.float32),
                 "end_top_log_probs": (np.round(rng.normal(size=(n_windows, j)) * 2) / 2).astype(np.float32),
                 "cls_logits": rng.normal(size=n_windows).astype(np.float32)}
        windows = Windows(row, start, length, tf.fill([n_windows], doc_offset), flags, count, {})
        s, e, score = best_span({key: tf.constant(value) for key, value in beams.items()}, windows.doc_offset,
                                windows.length, 3, conditional, windows.max_context)
        first, last, log_prob = best_answer(windows, s, e, score, n_questions)
        ragged = lambda rows: tf.ragged.constant(rows, dtype=tf.int32, row_splits_dtype=tf.int64)  # noqa: E731
        text, begin, finish = answer_text(tf.constant(contexts), ragged(char_starts), ragged(char_ends), first,
                                          last)
        index = {"questions": [{"id": str(q), "context": q} for q in range(n_questions)],
                 "contexts": [{"starts": a, "ends": b} for a, b in zip(char_starts, char_ends)],
                 "features": [{"example_index": int(row[w]), "window_start": int(start[w]),
                               "window_length": int(length_np[w]), "doc_offset": doc_offset,
                               "max_context": "".join("1" if f else "0" for f in flags[w, :length_np[w]].numpy())}
                              for w in range(n_windows)]}
        for use_answer_class in (True, False):
            answers = make_predictions(beams, index, contexts, n_best_size=1, max_answer_length=3,
                                       conditional_end=conditional, use_answer_class=use_answer_class)
            served = [x.decode() for x in text.numpy()]
            assert served == [answers.predictions[str(q)] for q in range(n_questions)], conditional
            cls = tf.math.unsorted_segment_min(beams["cls_logits"], row, n_questions).numpy().astype(np.float64)
            odds = cls if use_answer_class else cls - log_prob.numpy()
            np.testing.assert_allclose(odds, [answers.null_odds[str(q)] for q in range(n_questions)], atol=1e-9)
        assert [c[b:f] for c, b, f in zip(contexts, begin.numpy(), finish.numpy())] == served
        assert "" in served and len(set(served)) > 10 and max(count.numpy()) >= 5  # every case occurs
        second_start = {q: int(start[np.flatnonzero(row.numpy() == q)[1]]) for q in range(n_questions) if count[q] > 1}
        assert any(served[q] and int(first[q]) >= at for q, at in second_start.items())  # a later window wins


# ------------------------------------------------------------------------------------------------ end to end
SQUAD_FRESH_PROCESS = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the tokenizer ops)
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
rows = json.load(open(sys.argv[2]))
out = serve(question=tf.constant([r["question"] for r in rows]), context=tf.constant([r["context"] for r in rows]))
print(json.dumps({"answer": [x.decode() for x in out["answer"].numpy()],
                  **{name: out[name].numpy().tolist() for name in ("answer_start", "answer_end", "null_odds",
                     "no_answer_probability", "windows", "truncated")},
                  "project_modules": [m for m in sys.modules if m.startswith("funnel_tfm")]}))
"""


def typographic(text: str, k: int) -> str:
    """The same real sentences as a typesetter writes them: curly or TeX quotes, dashes, non-breaking and
    doubled spaces, line breaks."""
    text = text.replace(" -- ", " — ").replace("--", "—").replace("'", "’")
    text = re.sub(r'"([^"]*)"', r"“\1”" if k % 2 else r"``\1''", text)
    return text.replace(". ", [".\u00a0 ", ".\n  ", ".  "][k % 3])


@pytest.fixture(scope="module")
def long_context_squad(tmp_path_factory) -> dict:
    """Training: synthetic questions on State of the Union paragraphs. Evaluation: the real SQuAD and QuAC
    fixtures' questions (paragraphs of up to 2,400 characters) and typeset State of the Union paragraphs."""
    from test_squad import real_squad_file, synthetic_squad, write_json
    root = tmp_path_factory.mktemp("squad_windows")
    data = synthetic_squad(str(root), n_train=48, n_dev=30)
    real = json.load(open(real_squad_file(root)))["data"]
    dev = json.load(open(data["dev"]["path"]))["data"]
    for k, paragraph in enumerate(dev[0]["paragraphs"]):
        paragraph["context"] = typographic(paragraph["context"], k)
    path = write_json(root / "dev.json", {"version": "v2.0", "data": real + dev})
    rows = [{"id": qa["id"], "question": qa["question"], "context": p["context"]}
            for article in real + dev for p in article["paragraphs"] for qa in p["qas"]]
    return {"root": root, "train": data["train"]["path"], "dev": path, "rows": rows}


@pytest.mark.slow  # per vocabulary: a SQuAD run, an export and a fresh TensorFlow process (~2 min)
@pytest.mark.parametrize("kind", ["wordpiece", "sentencepiece"])
def test_saved_model_answers_long_contexts_as_do_predict(long_context_squad, sentencepiece_model, tmp_path, kind):
    """max_seq_length 64, doc_stride 16 (WordPiece) / 24 (SentencePiece): 3 to 60 windows a question. The served
    answers are the job's `predictions.json` exactly, their offsets spell them in the raw context, the null odds
    are `null_odds.json`'s, and the windows are the job's features."""
    from funnel_tfm.config import ModelConfig
    from funnel_tfm.data import squad_records
    from test_classifier import TINY, run_entry_point
    vocab = data_fetch.bert_uncased_vocab() if kind == "wordpiece" else sentencepiece_model
    stride = 16 if kind == "wordpiece" else 24
    config = tmp_path / "tiny.json"
    ModelConfig(**{**TINY, "vocab_size": Tokenizer.from_file(vocab).vocab_size}).to_json(str(config))
    model_dir = tmp_path / "exp"
    run_entry_point("squad", f"--train_file={long_context_squad['train']}",
                    f"--predict_file={long_context_squad['dev']}", f"--output_dir={tmp_path / 'proc'}",
                    f"--tokenizer_path={vocab}", "--uncased=True", "--max_seq_length=64", "--max_query_length=24",
                    f"--doc_stride={stride}", f"--model_dir={model_dir}", f"--model_config_path={config}",
                    "--do_train=True", "--do_predict=True", "--train_batch_size=8", "--predict_batch_size=32",
                    "--train_steps=4", "--save_steps=4", "--learning_rate=3e-3", "--jit_compile=False",
                    "--use_tpu=False")
    predictions = json.load(open(model_dir / "predict" / "4.predictions.json"))
    null_odds = json.load(open(model_dir / "predict" / "4.null_odds.json"))
    index = squad_records.read_feature_index(squad_records.eval_record_path(str(tmp_path / "proc"), vocab, 64, 24,
                                                                            "v2"))
    out = tmp_path / "serving" / "1"
    run_entry_point("export", f"--model_dir={model_dir}", "--format=saved_model", f"--export_dir={out}")
    rows = long_context_squad["rows"]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    result = subprocess.run([sys.executable, "-c", SQUAD_FRESH_PROCESS, str(out), str(tmp_path / "rows.json")],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["project_modules"] == []
    ids = [row["id"] for row in rows]
    assert [q["id"] for q in index["questions"]] == ids
    job_windows = np.bincount([f["example_index"] for f in index["features"]], minlength=len(rows))
    assert served["windows"] == job_windows.tolist() and not any(served["truncated"])
    assert served["answer"] == [predictions[i] for i in ids]
    for row, answer, begin, end in zip(rows, served["answer"], served["answer_start"], served["answer_end"]):
        assert row["context"][begin:end] == answer
    np.testing.assert_allclose(served["null_odds"], [null_odds[i] for i in ids], atol=1e-5)
    np.testing.assert_allclose(served["no_answer_probability"], 1 / (1 + np.exp(-np.array(served["null_odds"]))),
                               rtol=1e-5)
    # the comparison can fail: long contexts, different answers, answers beyond the first window, typeset text
    assert sum(n >= 3 for n in served["windows"]) >= len(rows) / 2 and max(served["windows"]) >= 10
    assert len(set(served["answer"])) > 10
    assert sum(begin > 300 for begin in served["answer_start"]) >= 3  # past the first window
    # characters, not bytes: answers after typeset (multi-byte) characters still spell themselves
    assert sum(not row["context"][:begin].isascii() for row, begin in zip(rows, served["answer_start"])) >= 10
