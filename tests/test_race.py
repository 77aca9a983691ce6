"""`python -m funnel_tfm.race`: the original's input building, the official layout and its errors, and a tiny
model learning a RACE-format task built from real text (labelled synthetic below), scored per level."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from funnel_tfm.config import ModelConfig
from funnel_tfm.data import data_fetch
from funnel_tfm.data.race_data import (RaceDataError, RaceExample, pack_race, qa_texts, read_race,
                                       write_race_records)
from funnel_tfm.data.tokenization import Tokenizer
from test_classifier import TINY, run_entry_point  # the same tiny config and CLI runner


def run_race(*args: str, check: bool = True):
    return run_entry_point("race", *args, check=check)


def test_qa_text_and_packing_follow_the_original():
    example = RaceExample("m/1.txt/0", "the article", "The cat sat on the _ .", ("mat", "hat", "bat", "cat"), 0,
                          "middle")
    assert qa_texts(example)[1] == "The cat sat on the hat ."
    plain = RaceExample("m/1.txt/1", "a", "What is it?", ("a", "b", "c", "d"), 2, "high")
    assert qa_texts(plain)[3] == "What is it? d"
    tok = Tokenizer.from_file(data_fetch.bert_uncased_vocab())
    article = list(range(1000, 1020))
    qa = [list(range(2000, 2000 + n)) for n in (3, 9, 1, 12)]
    packed = pack_race(article, qa, tok, max_seq_length=16, max_qa_length=8)
    row = packed["token_ids"][1].tolist()  # 9 qa ids: the last 8 are kept; the article gets 16 - 3 - 8 = 5
    assert row == [tok.cls_id] + list(range(2001, 2009)) + [tok.sep_id] + list(range(1000, 1005)) + [tok.sep_id]
    assert packed["segment_ids"][1].tolist() == [2] + [0] * 9 + [1] * 6
    short = packed["token_ids"][2].tolist()  # 1 qa id: the article fills the rest; no padding needed
    assert short[:3] == [tok.cls_id, 2000, tok.sep_id] and short[-1] == tok.sep_id and len(short) == 16
    assert packed["padding_mask"].sum(1).tolist() == [16, 16, 16, 16]
    tiny = pack_race([1000], [[2000]] * 4, tok, max_seq_length=8, max_qa_length=8)
    assert tiny["token_ids"][0].tolist() == [tok.cls_id, 2000, tok.sep_id, 1000, tok.sep_id, 0, 0, 0]  # id 0 (Q25)


def test_a_question_longer_than_the_sequence_is_an_error_not_a_longer_row(tmp_path):
    """--max_qa_length >= --max_seq_length - 2 with a long question: a clear error naming the question, no
    records (the rows were longer than max_seq_length: the records did not parse back)."""
    tok = Tokenizer.from_file(data_fetch.bert_uncased_vocab())
    with pytest.raises(ValueError, match=r"question \+ option of 14 tokens.*max_qa_length <= max_seq_length - 3 = 13"):
        pack_race([1000, 1001], [list(range(2000, 2020))] * 4, tok, max_seq_length=16, max_qa_length=14)
    assert pack_race([1000], [list(range(2000, 2020))] * 4, tok, 16, 13)["token_ids"].shape == (4, 16)
    long = RaceExample("high/7.txt/2", "An article.", "why " * 30 + "?", ("a", "b", "c", "d"), 0, "high")
    path = str(tmp_path / "race.tfrecord")
    with pytest.raises(RaceDataError, match=r"question high/7.txt/2: a question \+ option of \d+ tokens"):
        write_race_records([long], tok, path, max_seq_length=16, max_qa_length=16, settings={}, log=lambda _: None)
    assert os.listdir(tmp_path) == []


def _write_race(root, split: str, level: str, name: str, record: dict) -> None:
    directory = os.path.join(root, split, level)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
        json.dump(record, handle)


def test_bad_files_name_file_and_question(tmp_path):
    good = {"article": "a", "questions": ["q?"], "options": [["a", "b", "c", "d"]], "answers": ["A"]}
    _write_race(tmp_path, "dev", "middle", "1.txt", good)
    _write_race(tmp_path, "dev", "high", "2.txt", {**good, "answers": ["E"]})
    with pytest.raises(RaceDataError, match=r"high/2.txt: question 0: answer 'E', expected one of A, B, C, D"):
        read_race(str(tmp_path), "dev")
    _write_race(tmp_path, "dev", "high", "2.txt", {**good, "options": [["a", "b", "c"]]})
    with pytest.raises(RaceDataError, match=r"2.txt: question 0: 3 options, expected 4"):
        read_race(str(tmp_path), "dev")
    with pytest.raises(RaceDataError, match=r"train/middle: no such directory"):
        read_race(str(tmp_path), "train")


def test_records_of_edited_files_are_refused_not_reused(tmp_path):
    from funnel_tfm.training.race_job import RaceRun, prepare_race_records
    record = {"article": "An apple.", "questions": ["It is _ ."], "options": [["an apple", "b", "c", "d"]],
              "answers": ["A"]}
    for level in ("middle", "high"):
        _write_race(tmp_path / "RACE", "dev", level, "1.txt", record)
    run = RaceRun(data_dir=str(tmp_path / "RACE"), output_dir=str(tmp_path / "proc"), model_dir=str(tmp_path / "m"),
                  tokenizer_path=data_fetch.bert_uncased_vocab(), max_seq_length=16, max_qa_length=8)
    tok, lines = Tokenizer.from_file(run.tokenizer_path), []
    for _ in range(2):
        prepare_race_records(run, tok, "dev", lines.append)
    assert lines[-1].startswith("reusing 2 dev questions")
    _write_race(tmp_path / "RACE", "dev", "high", "1.txt", {**record, "answers": ["B"]})  # an answer corrected
    with pytest.raises(ValueError, match=r"written with other settings \(data_sha256\)"):
        prepare_race_records(run, tok, "dev", lines.append)


def test_evaluating_questions_without_answers_is_an_error(tmp_path):
    """A split without "answers" was scored against answer A, silently, after the training; now an error before
    it. Predicting such a split stays possible."""
    from funnel_tfm.training.race_job import RaceRun, prepare_race_records, run_race
    record = {"article": "An apple.", "questions": ["It is _ ."], "options": [["an apple", "b", "c", "d"]]}
    for split, answers in (("train", {"answers": ["A"]}), ("test", {})):
        for level in ("middle", "high"):
            _write_race(tmp_path / "RACE", split, level, "1.txt", {**record, **answers})
    run = RaceRun(data_dir=str(tmp_path / "RACE"), output_dir=str(tmp_path / "proc"), model_dir=str(tmp_path / "m"),
                  tokenizer_path=data_fetch.bert_uncased_vocab(), max_seq_length=16, max_qa_length=8,
                  model_config=ModelConfig(**TINY), do_train=True, train_steps=1, train_batch_size=2, do_eval=True,
                  eval_split="test", jit_compile=False)
    with pytest.raises(RaceDataError, match=r"test/middle: question middle/1.txt/0 has no answer"):
        run_race(run, log=lambda _: None)
    assert not os.path.exists(tmp_path / "m" / "checkpoint") and not os.path.exists(tmp_path / "proc")
    tok = Tokenizer.from_file(run.tokenizer_path)
    assert prepare_race_records(run, tok, "test", lambda _: None)[1]["num_examples"] == 2


def synthetic_race(root: str, seed: int = 0, limit: int = 2400) -> dict[str, int]:
    """SYNTHETIC questions on REAL text: each article is one Rotten Tomatoes sentence (VADER's snippets) and the
    question asks whether the reviewer liked the film; the answer follows the human score, the two other options
    are never right. Articles of more than 20 words are 'high', the rest 'middle'."""
    rng = np.random.default_rng(seed)
    reviews = [(t, s) for t, s in data_fetch.movie_review_snippets() if abs(s) > 1.0]
    order = rng.permutation(len(reviews))
    counts = {}
    dev = min(300, max(1, limit // 8))
    for split, chunk in (("train", order[:limit]), ("dev", order[limit:limit + dev])):
        for level in ("middle", "high"):
            records = [reviews[i] for i in chunk if (len(reviews[i][0].split()) > 20) == (level == "high")]
            questions, options, answers = [], [], []
            for text, score in records:
                choices = ["good", "bad", "long", "french"]
                rng.shuffle(choices)
                questions.append("The reviewer thinks the film is _ .")
                options.append(choices)
                answers.append("ABCD"[choices.index("good" if score > 0 else "bad")])
            for index, (text, _) in enumerate(records):  # one article (a sentence) and one question per file
                _write_race(root, split, level, f"{index}.txt",
                            {"article": text, "questions": questions[index:index + 1],
                             "options": options[index:index + 1], "answers": answers[index:index + 1],
                             "id": f"{level}{index}"})
            counts[f"{split}/{level}"] = len(records)
    return counts


def test_tiny_model_learns_a_race_format_task_scored_per_level(tmp_path):
    counts = synthetic_race(str(tmp_path / "RACE"))
    config = str(tmp_path / "tiny.json")
    ModelConfig(**{**TINY, "d_model": 64, "d_embed": 64, "n_head": 4, "d_inner": 128}).to_json(config)
    model_dir = str(tmp_path / "exp")
    run_race(f"--data_dir={tmp_path / 'RACE'}", f"--output_dir={tmp_path / 'proc'}", f"--model_dir={model_dir}",
             "--uncased=True", "--tokenizer_type=word_piece", f"--tokenizer_path={data_fetch.bert_uncased_vocab()}",
             f"--model_config_path={config}", "--max_seq_length=64", "--max_qa_length=16", "--do_train=True",
             "--do_eval=True", "--do_predict=True", "--train_batch_size=16", "--eval_batch_size=24",
             "--train_steps=150", "--save_steps=150", "--warmup_steps=15", "--learning_rate=1e-3", "--iterations=50",
             "--jit_compile=False", "--use_tpu=False", "--use_bfloat16=False")
    best = json.load(open(os.path.join(model_dir, "best_result.json")))
    assert best["num_middle"] == counts["dev/middle"] and best["num_high"] == counts["dev/high"]
    assert best["num_examples"] == counts["dev/middle"] + counts["dev/high"]
    assert best["accuracy"] > 0.45, best  # chance is 0.25 (0.5 once the two never-right options are learnt)
    predictions = [json.loads(line) for line in open(os.path.join(model_dir, "predict", "dev.jsonl"))]
    assert len(predictions) == best["num_examples"] and {p["level"] for p in predictions} == {"middle", "high"}
