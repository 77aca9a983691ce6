"""`python -m funnel_tfm.squad`: reading and its errors, offset-exact windows in the original's layout, the
original's loss and post-processing, and a tiny model trained end to end on a SQuAD-format set built from real
text (labelled synthetic below), every checkpoint scored with the official numbers.

Real data: the allennlp 0.9.0 wheel's SQuAD fixture (Notre Dame) and QuAC sample (test_squad_eval's fixtures).
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from funnel_tfm.config import ModelConfig
from funnel_tfm import squad_eval
from funnel_tfm.data import data_fetch
from funnel_tfm.data.squad_data import (SquadDataError, SquadExample, SquadFile, answer_token_span,
                                        build_features, doc_windows, max_context_flags, read_squad,
                                        tokenize_contexts)
from funnel_tfm.data.tokenization import Tokenizer
from funnel_tfm.tasks import squad_metrics
from funnel_tfm.tasks.squad_postprocess import make_predictions
from test_classifier import TINY, run_entry_point
from test_squad_eval import allennlp_fixture


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_file(data_fetch.bert_uncased_vocab())


def write_json(path, data) -> str:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False)
    return str(path)


def real_squad_file(tmp_path) -> str:
    """The real SQuAD fixture plus the QuAC sample's span questions (first answer each), v1.1 layout."""
    quac = allennlp_fixture("quac_sample.json")
    for article in quac["data"]:
        for paragraph in article["paragraphs"]:
            paragraph["qas"] = [{"id": qa["id"], "question": qa["question"], "answers": qa["answers"][:1]}
                                for qa in paragraph["qas"] if qa["answers"]]
    data = allennlp_fixture("squad.json")["data"] + quac["data"]
    return write_json(tmp_path / "real.json", {"version": "1.1", "data": data})


# ------------------------------------------------------------------------------------------- windows
def original_doc_spans(length: int, max_tokens: int, stride: int) -> list[tuple[int, int]]:
    """The original's loop, as written there."""
    spans, start = [], 0
    while start < length:
        span = min(length - start, max_tokens)
        spans.append((start, span))
        if start + span == length:
            break
        start += min(span, stride)
    return spans


def test_windows_and_max_context_follow_the_original():
    for length in range(1, 60):
        for max_tokens in (1, 5, 16, 64):
            for stride in (1, 3, 8, 128):
                assert doc_windows(length, max_tokens, stride) == original_doc_spans(length, max_tokens, stride)
    windows = doc_windows(10, 6, 2)  # (0,6) (2,6) (4,6)
    assert windows == [(0, 6), (2, 6), (4, 6)]
    # token 3: window 0 -> min(3, 2) = 2, window 1 -> min(1, 4) = 1: window 0; token 4: min(4, 1) = 1,
    # min(2, 3) = 2, min(0, 5) = 0: window 1; token 6: min(4, 1) = 1, min(2, 3) = 2: window 2
    assert [max_context_flags(windows, w) for w in range(3)] == [
        [True, True, True, True, False, False], [False, False, True, True, False, False],
        [False, False, True, True, True, True]]


def test_offsets_equal_the_fast_tokenizers_on_accents_punctuation_space_and_cjk(tmp_path, tokenizer):
    from transformers import BertTokenizerFast
    reference = BertTokenizerFast(data_fetch.bert_uncased_vocab(), do_lower_case=True)
    texts = ["Café Müller — naïve “quotes”, état-major; Ångström's 1,000.5 km²!",
             "  spaced \t out\n\nlines   end ", "東京タワーは 1958年に完成した。 Seoul 서울",
             "Æsir œuvre ﬁle Straße İstanbul ΣΊΣΥΦΟΣ", "x\u200by\u00adz e\u0301 \ufeffbom"]
    texts += read_squad(real_squad_file(tmp_path), is_training=False).contexts  # real paragraphs
    for text in texts:
        ids, starts, ends = tokenizer.encode_with_offsets(text)
        expected = reference(text, add_special_tokens=False, return_offsets_mapping=True)
        assert ids == expected["input_ids"], text
        assert list(zip(starts, ends)) == [tuple(o) for o in expected["offset_mapping"]], text


def test_real_answers_map_to_tokens_that_spell_them(tmp_path, tokenizer):
    squad = read_squad(real_squad_file(tmp_path), is_training=True, version="v1")
    assert squad.counts["questions"] == len(squad.examples) > 10
    contexts = tokenize_contexts(squad.contexts, tokenizer)
    for example in squad.examples:
        tokens = contexts[example.context_index]
        first, last = answer_token_span(tokens, example.answer_start, example.answer_start + len(example.answer_text))
        spelled = squad.contexts[example.context_index][tokens.starts[first]:tokens.ends[last]]
        assert squad_metrics.normalize_answer(spelled) == squad_metrics.normalize_answer(example.answer_text)


def test_features_follow_the_original_layout(tokenizer):
    context = "Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu."
    answer = "iota kappa"
    squad = SquadFile([SquadExample("q1", "Which two letters?", 0, answer, context.index(answer))], [context], {})
    contexts = tokenize_contexts(squad.contexts, tokenizer)
    features, counts = build_features(squad, contexts, tokenizer, max_seq_length=16, max_query_length=64,
                                      doc_stride=4, is_training=True)
    query = tokenizer.encode("Which two letters?")
    n_doc = 16 - len(query) - 3
    assert len(features) == len(doc_windows(len(contexts[0].ids), n_doc, 4)) == counts["features"]
    first = features[0]
    assert first.input_ids[:len(query) + 2] == [tokenizer.cls_id] + query + [tokenizer.sep_id]
    assert first.segment_ids[:len(query) + 2 + n_doc + 1] == [2] + [1] * (len(query) + 1) + [0] * (n_doc + 1)
    assert first.p_mask[:len(query) + 2 + n_doc + 1] == [0.0] + [1.0] * (len(query) + 1) + [0.0] * n_doc + [1.0]
    assert first.unique_id == 1000000000 and features[1].unique_id == 1000000001
    answer_tokens = tokenizer.encode(answer)
    for feature in features:
        if feature.is_impossible:
            assert feature.start_position == feature.end_position == 0
        else:
            assert feature.input_ids[feature.start_position:feature.end_position + 1] == answer_tokens
    assert any(not f.is_impossible for f in features) and any(f.is_impossible for f in features)


# ------------------------------------------------------------------------------------------- bad input
def test_bad_squad_files_name_the_file_and_question(tmp_path):
    context = "The Rhine flows north."
    good = {"id": "q1", "question": "Where?", "answers": [{"text": "north", "answer_start": 16}]}
    absent = {**good, "answers": [{"text": "south", "answer_start": 16}]}
    path = write_json(tmp_path / "bad.json", {"data": [{"paragraphs": [{"context": context, "qas": [absent]}]}]})
    with pytest.raises(SquadDataError, match=r"bad.json: question q1: answer_start 16 points at 'north', expected "
                                             r"the answer text 'south' \(which the context does not hold\)"):
        read_squad(path, is_training=True, version="v1")
    read_squad(path, is_training=False)  # evaluation does not read answers
    empty = {"id": "q2", "question": "Why?", "answers": []}
    path = write_json(tmp_path / "v2q.json", {"data": [{"paragraphs": [{"context": context, "qas": [good, empty]}]}]})
    with pytest.raises(SquadDataError, match=r"v2q.json: question q2: no answers \(a v1 training question needs one"):
        read_squad(path, is_training=True, version="v1")
    with pytest.raises(SquadDataError, match=r"question q2: no answers"):  # v2 without is_impossible
        read_squad(path, is_training=True, version="v2")
    assert read_squad(write_json(tmp_path / "ok.json", {"data": [{"paragraphs": [{"context": context, "qas": [
        good, {**empty, "is_impossible": True}, {**good, "id": "q3", "answers": good["answers"] * 2}]}]}]}),
        is_training=True, version="v2").counts == {"questions": 3, "unanswerable": 1, "several_answers_first_used": 1}
    with pytest.raises(SquadDataError, match=r"nolist.json: expected an object with a \"data\" list"):
        read_squad(write_json(tmp_path / "nolist.json", [1, 2]), is_training=False)


def test_answer_start_off_by_a_few_characters_moves_to_the_nearest_occurrence(tmp_path, tokenizer):
    # Real SQuAD offsets can be off by one per emoji before the answer (counted in UTF-16 code units).
    context = "Fans 🎉🎉 cheered: the Rhine flows north, then the Rhine turns west."
    utf16_start = len(context[:context.index("Rhine")].encode("utf-16-le")) // 2
    qas = [{"id": "q1", "question": "Which river?", "answers": [{"text": "Rhine", "answer_start": utf16_start}]},
           {"id": "q2", "question": "Where?", "answers": [{"text": "north", "answer_start": 35}]},  # two off
           {"id": "q3", "question": "Which way?", "answers": [{"text": "west", "answer_start": 61}]}]
    path = write_json(tmp_path / "shifted.json", {"data": [{"paragraphs": [{"context": context, "qas": qas}]}]})
    squad = read_squad(path, is_training=True, version="v1")
    assert [context[e.answer_start:e.answer_start + len(e.answer_text)] for e in squad.examples] == [
        "Rhine", "north", "west"]
    assert squad.examples[0].answer_start == context.index("Rhine") == utf16_start - 2  # the nearer Rhine
    assert squad.counts["answer_start_corrected"] == 2
    features, _ = build_features(squad, tokenize_contexts(squad.contexts, tokenizer), tokenizer, 64, 16, 32, True)
    spelled = [tokenizer.decode(f.input_ids[f.start_position:f.end_position + 1]) for f in features]
    assert spelled == ["rhine", "north", "west"]


def test_cli_bad_answer_is_one_error_line_and_writes_nothing(tmp_path):
    context = "The Rhine flows north."
    bad = {"id": "q9", "question": "Where?", "answers": [{"text": "south", "answer_start": 16}]}
    train = write_json(tmp_path / "train.json", {"data": [{"paragraphs": [{"context": context, "qas": [bad]}]}]})
    out = tmp_path / "proc"
    result = run_entry_point("squad", "--prepro_split=train", f"--train_file={train}", f"--output_dir={out}",
                             f"--tokenizer_path={data_fetch.bert_uncased_vocab()}", "--max_seq_length=32",
                             "--max_query_length=8", check=False)
    assert result.returncode == 1
    assert re.search(r"squad: error: .*train.json: question q9: answer_start 16 points at 'north'", result.stderr)
    assert not out.exists() or not any(out.iterdir())


def test_training_reads_the_records_of_a_parallel_preprocessing(tmp_path, tokenizer):
    # The seed README: --prepro_split=train --num_proc=N --proc_id=i, then --do_train without --num_proc.
    import dataclasses
    from funnel_tfm.training.squad_job import SquadRun, run_squad
    train = real_squad_file(tmp_path)
    common = dict(train_file=train, output_dir=str(tmp_path / "proc"), model_dir=str(tmp_path / "exp"),
                  data_dir="", tokenizer_path=data_fetch.bert_uncased_vocab(), max_seq_length=64,
                  max_query_length=16, doc_stride=32, model_config=ModelConfig(**TINY), jit_compile=False)
    for proc_id in range(2):
        run_squad(SquadRun(prepro_split="train", num_proc=2, proc_id=proc_id, **common), log=lambda line: None)
    lines = []
    run = SquadRun(do_train=True, train_steps=1, train_batch_size=4, **common)
    run_squad(run, log=lines.append)
    assert "training on 2 record file(s)" in "\n".join(lines), lines
    files = sorted(os.listdir(tmp_path / "proc"))
    assert [name for name in files if ".train.tfrecord" in name] == [
        "vocab.txt.0.slen-64.qlen-16.train.tfrecord", "vocab.txt.1.slen-64.qlen-16.train.tfrecord"]
    os.remove(tmp_path / "proc" / files[files.index("vocab.txt.1.slen-64.qlen-16.train.tfrecord")])
    with pytest.raises(ValueError, match=r"records of a --num_proc=2 preprocessing are incomplete \(no --proc_id 1"):
        run_squad(dataclasses.replace(run, train_steps=2), log=lambda line: None)


def test_a_predict_file_that_cannot_be_scored_fails_before_training(tmp_path):
    # Scoring reads the gold answers: a file without them used to fail after the whole training run.
    from funnel_tfm.training.squad_job import SquadRun, run_squad
    train = real_squad_file(tmp_path)
    unlabelled = json.load(open(train))
    for article in unlabelled["data"]:
        for paragraph in article["paragraphs"]:
            paragraph["qas"] = [{"id": qa["id"], "question": qa["question"]} for qa in paragraph["qas"]]
    v2 = json.load(open(train))
    v2["data"][0]["paragraphs"][0]["qas"][0].update(answers=[], is_impossible=True)
    common = dict(train_file=train, output_dir=str(tmp_path / "proc"), model_dir=str(tmp_path / "exp"),
                  data_dir="", tokenizer_path=data_fetch.bert_uncased_vocab(), max_seq_length=64,
                  max_query_length=16, doc_stride=32, model_config=ModelConfig(**TINY), jit_compile=False,
                  do_train=True, do_predict=True, train_steps=1, train_batch_size=4)
    for name, data, version, message in (
            ("test.json", unlabelled, "v2", r"test.json: not a SQuAD data file: question '5733be28.*' has no "
                                            r"\"answers\" list"),
            ("dev-v2.0.json", v2, "v1", r"dev-v2.0.json: question '5733be28.*' has no answer: SQuAD v1.1 scoring "
                                        r"needs one \(a v2.0 file\? pass --eval_version=v2\)")):
        with pytest.raises(squad_metrics.SquadFormatError, match=message):
            run_squad(SquadRun(predict_file=write_json(tmp_path / name, data), eval_version=version, **common),
                      log=lambda line: None)
        assert not (tmp_path / "exp").exists() and not (tmp_path / "proc").exists()  # nothing trained or written
    with pytest.raises(ValueError, match="--do_predict needs --predict_file"):
        run_squad(SquadRun(**common), log=lambda line: None)
    assert not (tmp_path / "exp").exists()


# ------------------------------------------------------------------------------------------- loss, post-processing
def test_loss_is_the_originals(tokenizer):
    import tensorflow as tf
    from funnel_tfm.tasks.squad import SquadTask
    config = ModelConfig(**TINY)
    task = SquadTask.build(config, ans_loss_weight=0.3, cls_loss_weight=0.7)
    rng = np.random.default_rng(0)
    length = 16
    p_mask = np.zeros((3, length), np.float32)
    p_mask[:, 1:4] = 1.0
    batch = {"token_ids": rng.integers(1000, 2000, (3, length)).astype(np.int32),
             "segment_ids": np.zeros((3, length), np.int32), "padding_mask": np.ones((3, length), np.int32),
             "p_mask": p_mask, "cls_index": np.zeros(3, np.int32),
             "start_positions": np.array([5, 0, 7], np.int32), "end_positions": np.array([6, 0, 9], np.int32),
             "is_impossible": np.array([0.0, 1.0, 0.0], np.float32), "is_real_example": np.ones(3, np.int32)}
    loss, sums = task.loss({k: tf.constant(v) for k, v in batch.items()}, {}, global_batch_size=3, training=False)
    out = task.model({k: v for k, v in batch.items() if k != "start_positions"})  # inference: beams
    train_out = task.model(batch, training=False)  # with start positions: the end is conditioned on them
    start_lp = np.asarray(train_out["start_log_probs"])
    end_lp = np.asarray(train_out["end_log_probs"])
    cls = np.asarray(train_out["cls_logits"]).astype(np.float64)
    rows = np.arange(3)
    labels = batch["is_impossible"]
    bce = np.maximum(cls, 0) - cls * labels + np.log1p(np.exp(-np.abs(cls)))
    expected = np.mean(0.3 * (-start_lp[rows, batch["start_positions"]] - end_lp[rows, batch["end_positions"]])
                       + 0.7 * bce)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    assert float(sums["loss"][1]) == 3.0
    assert np.all(start_lp[:, 1:4] < -1e20)  # the query positions are masked
    assert set(out) >= {"start_top_index", "end_top_index", "cls_logits"}


def _feature(example_index, window_start, window_length, doc_offset=3, max_context=None):
    return {"example_index": example_index, "window_start": window_start, "window_length": window_length,
            "doc_offset": doc_offset, "max_context": max_context or "1" * window_length}


def test_make_predictions_follows_the_originals_rules():
    context = "aa bb cc dd ee"
    spans = {"starts": [0, 3, 6, 9, 12], "ends": [2, 5, 8, 11, 14]}
    index = {"questions": [{"id": "q", "context": 0}, {"id": "none", "context": 0}], "contexts": [spans],
             "features": [_feature(0, 0, 3), _feature(0, 2, 3, max_context="001"), _feature(1, 0, 5)]}
    # start_n_top = end_n_top = 2, conditional end: the ends of start i are end_top_*[:, 2 i : 2 i + 2]
    outputs = {
        # feature 0: start 3 (token 0), 4 (token 1); ends per start
        "start_top_index": np.array([[3, 4], [4, 5], [0, 0]]),
        "start_top_log_probs": np.array([[-0.1, -0.5], [-0.2, -0.3], [-1.0, -1.0]]),
        "end_top_index": np.array([[4, 2, 4, 5], [6, 4, 5, 6], [0, 0, 0, 0]]),
        "end_top_log_probs": np.array([[-0.2, -0.1, -0.3, -0.4], [-0.05, -0.1, -0.2, -0.3], [-1.0] * 4]),
        "cls_logits": np.array([0.5, -0.25, 2.0]),
    }
    answers = make_predictions(outputs, index, [context], n_best_size=3, max_answer_length=2)
    # Feature 0 (tokens 0-2 at positions 3-5): (3,4) "aa bb" -0.3; (3,2) ends before it starts; (4,4) "bb" -0.8;
    # (4,5) "bb cc" -0.9. Feature 1 (tokens 2-4, only token 4 at its best context): start 4 is token 3, not at
    # its best context; start 5 is token 4: (5,5) "ee" -0.5, (5,6) ends outside the window.
    assert [n["text"] for n in answers.nbest["q"]] == ["aa bb", "ee", "bb"]  # the first 3 by total log prob
    assert answers.predictions["q"] == "aa bb"
    assert sum(n["probability"] for n in answers.nbest["q"]) == pytest.approx(1.0)
    assert answers.nbest["q"][1]["probability"] == pytest.approx(np.exp(-0.5) / np.exp([-0.3, -0.5, -0.8]).sum())
    assert answers.null_odds["q"] == -0.25  # the minimum over the question's windows
    assert answers.predictions["none"] == "" and answers.nbest["none"][0]["start_log_prob"] == -1e6
    longer = make_predictions(outputs, index, [context], n_best_size=5, max_answer_length=1)
    assert [n["text"] for n in longer.nbest["q"]] == ["ee", "bb"]  # two-token answers are too long now
    no_class = make_predictions(outputs, index, [context], n_best_size=3, max_answer_length=2,
                                use_answer_class=False)
    assert no_class.null_odds["q"] == pytest.approx(-0.25 - (-0.1 - 0.2))


# ------------------------------------------------------------------------------------------- end to end
NUMBER = re.compile(r"(?<![\w,.$])\$?\d[\d,]*(?:\.\d+)?(?<![,.])")


def synthetic_squad(out_dir, seed: int = 0, n_train: int = 1500, n_dev: int = 200) -> dict[str, dict]:
    """SYNTHETIC questions on REAL text: paragraphs are three consecutive sentences of State of the Union
    addresses (NLTK's corpus); a paragraph with a number is asked its sentence with the number replaced by
    "what number" (answer: the number, at its real offset); one without is asked its opening words and is
    unanswerable (v2.0 layout). Returns the two files' paths and counts."""
    rng = np.random.default_rng(seed)
    paragraphs = []
    for document in data_fetch.sotu_documents():
        sentences = data_fetch.split_sentences(document)
        for i in range(0, len(sentences) - 2, 3):
            text = " ".join(sentences[i:i + 3])
            if 100 < len(text) < 500:
                paragraphs.append(text)
    rows = {"train": [], "dev": []}
    for k in rng.permutation(len(paragraphs)):
        split = "train" if len(rows["train"]) < n_train else "dev"
        if len(rows["dev"]) >= n_dev:
            break
        text = paragraphs[k]
        match = NUMBER.search(text)
        if match:
            begin = text.rfind(". ", 0, match.start())
            begin = 0 if begin < 0 else begin + 2
            end = text.find(". ", match.end())
            end = len(text) if end < 0 else end
            question = (text[begin:match.start()] + "what number" + text[match.end():end]).strip() + "?"
            qa = {"id": f"sotu-{k}", "question": question, "is_impossible": False,
                  "answers": [{"text": match.group(0), "answer_start": match.start()}]}
        elif rng.random() < 0.2:
            qa = {"id": f"sotu-{k}", "question": "what number: " + " ".join(text.split()[:10]) + "?",
                  "answers": [], "is_impossible": True}
        else:
            continue
        rows[split].append({"context": text, "qas": [qa]})
    out = {}
    for split, paragraphs_of_split in rows.items():
        path = write_json(os.path.join(out_dir, f"{split}.json"),
                          {"version": "v2.0", "data": [{"title": "sotu", "paragraphs": paragraphs_of_split}]})
        impossible = sum(p["qas"][0]["is_impossible"] for p in paragraphs_of_split)
        out[split] = {"path": path, "questions": len(paragraphs_of_split), "unanswerable": impossible}
    return out


@pytest.mark.slow  # ~67 s: 200 training steps at length 128
def test_tiny_model_learns_to_find_answers_and_every_checkpoint_is_scored(tmp_path):
    data = synthetic_squad(str(tmp_path))
    config = str(tmp_path / "tiny.json")
    ModelConfig(**{**TINY, "d_model": 64, "d_embed": 64, "n_head": 4, "d_inner": 128}).to_json(config)
    vocab = data_fetch.bert_uncased_vocab()
    common = [f"--train_file={data['train']['path']}", f"--predict_file={data['dev']['path']}",
              f"--output_dir={tmp_path / 'proc'}", f"--tokenizer_path={vocab}", "--uncased=True",
              "--max_seq_length=128", "--max_query_length=48", "--doc_stride=32"]
    model_dir = tmp_path / "exp"  # (parallel preprocessing, --num_proc=2: tests/test_scripts.py)
    result = run_entry_point(
        "squad", *common, f"--model_dir={model_dir}", f"--model_config_path={config}",
        "--do_train=True", "--do_predict=True", "--train_batch_size=16", "--predict_batch_size=32",
        "--train_steps=200", "--save_steps=100", "--iterations=50", "--learning_rate=1e-3", "--warmup_steps=20",
        "--jit_compile=False", "--use_tpu=False", "--use_bfloat16=False")
    assert "training on 1 record file(s)" in result.stdout
    rows = [json.loads(line) for line in open(model_dir / "eval" / "dev" / "results.jsonl")]
    assert [r["step"] for r in rows] == [100, 200]
    best = json.load(open(model_dir / "best_result.json"))
    dev = data["dev"]
    assert best["total"] == dev["questions"] and best["NoAns_total"] == dev["unanswerable"]
    # Baseline: always "no answer" scores the unanswerable share; the tiny model must clearly beat it.
    baseline = 100.0 * dev["unanswerable"] / dev["questions"]
    assert best["best_f1"] > baseline + 20, (best, baseline)
    assert best["HasAns_exact"] > 40, best
    # The files of every step; the official CLI on them gives the numbers the job recorded.
    predict = model_dir / "predict"
    for row in rows:
        for name in ("predictions", "nbest_predictions", "null_odds"):
            assert (predict / f"{row['step']}.{name}.json").exists()
        out_file = tmp_path / f"scored-{row['step']}.json"
        assert squad_eval.main([dev["path"], str(predict / f"{row['step']}.predictions.json"), "--na-prob-file",
                                str(predict / f"{row['step']}.null_odds.json"), "--out-file", str(out_file)]) == 0
        scored = json.load(open(out_file))
        assert {k: row[k] for k in scored} == scored
    # Evaluation alone on two replicas: the same features, the same numbers.
    again = run_entry_point(
        "squad", *common, f"--model_dir={model_dir}", f"--eval_model_dir={model_dir}", "--do_predict=True",
        "--strategy=mirrored", "--num_cpu_devices=2", "--predict_batch_size=24", "--overwrite=True",
        "--eval_all_ckpt=False", f"--predict_dir={tmp_path / 'predict2'}", "--jit_compile=False")
    assert "eval dev step 200" in again.stdout
    last = [json.loads(line) for line in open(model_dir / "eval" / "dev" / "results.jsonl")][-1]
    assert last["step"] == 200 and last["num_examples"] == rows[-1]["num_examples"]
    assert abs(last["best_f1"] - rows[-1]["best_f1"]) < 1e-6
