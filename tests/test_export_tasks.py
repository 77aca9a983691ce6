"""Exports of the tasks beyond classification, from tiny finetuning runs on real text: the raw-text RACE SavedModel
in a fresh process (TensorFlow + tensorflow-text only) and the ONNX export through the CLI, each against the
job's own `--do_predict` predictions."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from funnel_tfm.data import data_fetch
from test_classifier import run_entry_point

RACE_FRESH_PROCESS = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the tokenizer ops)
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
rows = json.load(open(sys.argv[2]))
out = serve(article=tf.constant([r["article"] for r in rows]), question=tf.constant([r["question"] for r in rows]),
            options=tf.constant([r["options"] for r in rows]))
print(json.dumps({"prediction": [x.decode() for x in out["prediction"].numpy()],
                  "probabilities": out["probabilities"].numpy().tolist(),
                  "project_modules": [m for m in sys.modules if m.startswith("funnel_tfm")]}))
"""


@pytest.mark.slow  # a RACE run, an export and a fresh TensorFlow process (~1.5 min)
def test_race_saved_model_in_a_fresh_process_equals_do_predict(race_run, race_saved_model, tmp_path):
    """The tiny RACE run of task_runs.py (real review sentences as articles), exported by the CLI."""
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"article": e.article, "question": e.question, "options": list(e.options)}
                                for e in race_run["examples"]]))
    result = subprocess.run([sys.executable, "-c", RACE_FRESH_PROCESS, race_saved_model, str(rows)],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["project_modules"] == []
    expected = race_run["predictions"]
    assert served["prediction"] == [p["prediction"] for p in expected]
    reference = np.array([[p["probabilities"][k] for k in "ABCD"] for p in expected])
    np.testing.assert_allclose(served["probabilities"], reference, atol=1e-6)
    assert np.ptp(reference[:, 0]) > 0  # the questions get different answers: the comparison can fail
    assert any("_" in e.question for e in race_run["examples"])  # the blank-filling rule is exercised


@pytest.mark.slow  # a RACE run and a torch.export trace (~1.5 min)
def test_race_onnx_export_equals_do_predict(race_run, tmp_path):
    """The CLI's ONNX file, fed by the Python packing of the training records (tokenizer outside the graph)."""
    import onnxruntime
    from funnel_tfm.data.race_data import pack_race, qa_texts
    from funnel_tfm.data.tokenization import Tokenizer
    out = tmp_path / "onnx"
    run_entry_point("export", f"--model_dir={race_run['model_dir']}", "--format=onnx", f"--export_dir={out}")
    metadata = json.load(open(out / "funnel_export.json"))
    assert metadata["format"] == "onnx" and max(metadata["max_abs_diff"].values()) <= 1e-4
    assert metadata["inputs"][0] == {"name": "token_ids", "shape": ["batch", 4, 48], "dtype": "int32"}
    tokenizer = Tokenizer.from_file(str(out / metadata["tokenizer_file"]))
    packed = [pack_race(tokenizer.encode(e.article), tokenizer.encode_batch(qa_texts(e)), tokenizer, 48, 9)
              for e in race_run["examples"]]
    feed = {name: np.stack([p[name] for p in packed]) for name in ("token_ids", "segment_ids", "padding_mask")}
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], feed)[0]
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    reference = np.array([[p["probabilities"][k] for k in "ABCD"] for p in race_run["predictions"]])
    np.testing.assert_allclose(probabilities, reference, atol=1e-4)


# ------------------------------------------------------------------------------------------------ in-graph packing
def test_race_in_graph_packing_equals_the_records():
    """`race_signature.pack_choices` (serving) against `race_data.pack_race` (training records), with cut qa and
    articles, a blank to fill, an option with a backslash and one with a regex group reference."""
    import tensorflow as tf
    from funnel_tfm.data.race_data import RaceExample, pack_race, qa_texts
    from funnel_tfm.data.tokenization import Tokenizer
    from funnel_tfm.serving.race_signature import pack_choices, qa_strings
    tokenizer = Tokenizer.from_file(data_fetch.bert_uncased_vocab())
    examples = [RaceExample("m/1", "The storm closed the northern passes for a week, and supplies came by air. " * 3,
                            "The passes were closed by _ and _ .", ("a storm", r"snow \1 ice", "$1 war", "a strike"),
                            0, "middle"),
                RaceExample("h/2", "Short text.", "What is the text?", ("short", "long", "none of the above", "x"),
                            1, "high")]
    qa = tf.function(qa_strings)(tf.constant([e.question for e in examples]),
                                 tf.constant([list(e.options) for e in examples]))  # in a graph, as served
    assert [[x.decode() for x in row] for row in qa.numpy()] == [qa_texts(e) for e in examples]
    served = tf.function(lambda article, qa: pack_choices(tokenizer, article, qa, seq_len=24, max_qa=7))(
        tf.constant([e.article for e in examples]), qa)
    for i, example in enumerate(examples):
        expected = pack_race(tokenizer.encode(example.article), tokenizer.encode_batch(qa_texts(example)), tokenizer,
                             24, 7)
        for name, value in expected.items():
            np.testing.assert_array_equal(served[name][i].numpy(), value, err_msg=f"{example.guid} {name}")


def test_tagger_in_graph_packing_equals_the_records():
    """`tagger_signature.pack_words` against `tagging_records.pack_sentence`: multi-piece words, a word with no
    piece, and words cut by the length (including one that would fit after the first cut)."""
    import tensorflow as tf
    from funnel_tfm.data.conll import Sentence
    from funnel_tfm.data.tagging_records import pack_sentence
    from funnel_tfm.data.tokenization import Tokenizer
    from funnel_tfm.serving.tagger_signature import pack_words
    tokenizer = Tokenizer.from_file(data_fetch.bert_uncased_vocab())
    sentences = [("Johanson", "lives", "in", "Reykjavik", "\u200b", "today", "."),
                 ("Yes",), ("Electroencephalography", "unquestionably", "a", "b")]
    pack = tf.function(lambda text: pack_words(tokenizer, tf.strings.split(text), 10))  # in a graph, as served
    features, position = pack(tf.constant([" ".join(s) for s in sentences]))
    for i, words in enumerate(sentences):
        table = {word: tokenizer.encode(word) for word in words}
        expected, _ = pack_sentence(Sentence(words, None, 1), table, tokenizer, {"O": 0}, 10)
        for name in ("token_ids", "segment_ids", "padding_mask"):
            np.testing.assert_array_equal(features[name][i].numpy(), expected[name], err_msg=f"{i} {name}")
        first = [int(np.flatnonzero(expected["word_index"] == w)[0]) if w in expected["word_index"] else -1
                 for w in range(len(words))]
        assert position[i].numpy().tolist() == first, (i, words)
    assert -1 in position[0].numpy().tolist() and -1 in position[2].numpy().tolist()  # both rules exercised


# ------------------------------------------------------------------------------------------------ tagger
TAGGER_FRESH_PROCESS = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the tokenizer ops)
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(text=tf.constant(json.load(open(sys.argv[2]))))
tags = [[t.decode() for t in row[:n]] for row, n in zip(out["tags"].numpy(), out["num_words"].numpy())]
print(json.dumps({"tags": tags, "project_modules": [m for m in sys.modules if m.startswith("funnel_tfm")]}))
"""


@pytest.mark.slow  # a tagger run, an export and a fresh TensorFlow process (~1.5 min)
def test_tagger_saved_model_in_a_fresh_process_equals_do_predict(tagger_run, tagger_saved_model, tmp_path):
    """Real CoNLL-2000 sentences (25 words on average) at max_seq_length 24: the cut words' "O" is served too."""
    predicted = tagger_run["predicted"]
    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps([" ".join(sentence.words) for sentence in predicted]))
    result = subprocess.run([sys.executable, "-c", TAGGER_FRESH_PROCESS, tagger_saved_model, str(texts)],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["project_modules"] == []
    assert served["tags"] == [list(sentence.tags) for sentence in predicted]
    assert len({tag for sentence in predicted for tag in sentence.tags}) >= 2  # the comparison can fail


# ------------------------------------------------------------------------------------------------ SQuAD
def test_squad_in_graph_character_offsets_equal_the_jobs():
    """`squad_signature.tokenize_with_char_offsets` (per-character normalisation in a graph) against
    `Tokenizer.encode_batch_with_offsets` (the job's): accents, punctuation, CJK, a control character, emoji."""
    import tensorflow as tf
    from funnel_tfm.data.tokenization import Tokenizer
    from funnel_tfm.serving.squad_signature import tokenize_with_char_offsets
    tokenizer = Tokenizer.from_file(data_fetch.bert_uncased_vocab())
    texts = ["The Broncos' defense (ranked 1st) won Super Bowl 50, 24–10.",
             "Café Müller, naïve\u200b façade — Ångström: 東京は大きい!", "tab\there\x07 and 🙂 emoji.", ""]
    ids, first, end = tf.function(lambda t: tokenize_with_char_offsets(tokenizer, t))(tf.constant(texts))
    for row, text in enumerate(texts):
        want_ids, want_first, want_end = tokenizer.encode_with_offsets(text) if text else ([], [], [])
        assert ids[row].numpy().tolist() == want_ids
        assert first[row].numpy().tolist() == want_first, text
        assert end[row].numpy().tolist() == want_end, text


def test_squad_in_graph_answer_rule_equals_make_predictions():
    """`best_span` + the character slice on random beams of one window against the job's `make_predictions`
    (legal spans, max_answer_length, the first of equal scores), conditional and unconditional ends."""
    import tensorflow as tf
    from funnel_tfm.serving.squad_signature import best_span
    from funnel_tfm.tasks.squad_postprocess import make_predictions
    rng = np.random.default_rng(0)
    context = " ".join(f"w{i}" for i in range(12))
    starts, ends = [], []
    for i in range(12):
        starts.append(context.index(f"w{i}" + (" " if i < 11 else "")))
        ends.append(starts[-1] + len(f"w{i}"))
    spans = {"starts": starts, "ends": ends}
    for conditional in (True, False):
        n_rows, k = 40, 3
        j = k * k if conditional else k
        beams = {"start_top_index": rng.integers(0, 20, (n_rows, k)), "end_top_index": rng.integers(0, 20, (n_rows, j)),
                 "start_top_log_probs": np.round(rng.normal(size=(n_rows, k)), 1),
                 "end_top_log_probs": np.round(rng.normal(size=(n_rows, j)), 1),  # rounded: ties happen
                 "cls_logits": rng.normal(size=n_rows)}
        offset, length = 4, 12
        start, end, _ = best_span({key: tf.constant(value) for key, value in beams.items()},
                                  tf.fill([n_rows], offset), tf.fill([n_rows], length), 3, conditional)
        index = {"questions": [{"id": str(r), "context": 0} for r in range(n_rows)], "contexts": [spans],
                 "features": [{"example_index": r, "window_start": 0, "window_length": length, "doc_offset": offset,
                               "max_context": "1" * length} for r in range(n_rows)]}
        answers = make_predictions(beams, index, [context], n_best_size=1, max_answer_length=3,
                                   conditional_end=conditional)
        served = [context[starts[s]:ends[e]] if s >= 0 else "" for s, e in zip(start.numpy(), end.numpy())]
        assert served == [answers.predictions[str(r)] for r in range(n_rows)], conditional
        assert "" in served and len(set(served)) > 5  # both outcomes occur


SQUAD_FRESH_PROCESS = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the tokenizer ops)
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
rows = json.load(open(sys.argv[2]))
out = serve(question=tf.constant([r["question"] for r in rows]), context=tf.constant([r["context"] for r in rows]))
print(json.dumps({"answer": [x.decode() for x in out["answer"].numpy()],
                  "answer_start": out["answer_start"].numpy().tolist(), "null_odds": out["null_odds"].numpy().tolist(),
                  "no_answer_probability": out["no_answer_probability"].numpy().tolist(),
                  "truncated": out["truncated"].numpy().tolist(),
                  "project_modules": [m for m in sys.modules if m.startswith("funnel_tfm")]}))
"""


@pytest.mark.slow  # a SQuAD run, an export and a fresh TensorFlow process (~2 min)
def test_squad_saved_model_in_a_fresh_process_equals_do_predict(squad_run, squad_saved_model, tmp_path):
    """Real State of the Union paragraphs (synthetic questions), one window each at length 160: the served answer,
    its offsets and the no-answer odds are the job's `predictions.json` / `null_odds.json`."""
    rows, predictions, null_odds = squad_run["rows"], squad_run["predictions"], squad_run["null_odds"]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    result = subprocess.run([sys.executable, "-c", SQUAD_FRESH_PROCESS, squad_saved_model,
                             str(tmp_path / "rows.json")],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["project_modules"] == []
    whole = [i for i, truncated in enumerate(served["truncated"]) if not truncated]
    assert len(whole) >= 0.9 * len(rows)  # the comparison covers nearly every question
    assert [served["answer"][i] for i in whole] == [predictions[rows[i]["id"]] for i in whole]
    for i in whole:
        start = served["answer_start"][i]
        assert rows[i]["context"][start:start + len(served["answer"][i])] == served["answer"][i]
    np.testing.assert_allclose([served["null_odds"][i] for i in whole], [null_odds[rows[i]["id"]] for i in whole],
                               atol=1e-5)
    np.testing.assert_allclose(served["no_answer_probability"], 1 / (1 + np.exp(-np.array(served["null_odds"]))),
                               rtol=1e-5)
    assert len({served["answer"][i] for i in whole}) > 3  # different answers: the comparison can fail
