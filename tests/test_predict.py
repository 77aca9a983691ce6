"""`python -m funnel_tfm.predict` on every raw-text export: input rows read by the signature's field names from
`.jsonl`, `.tsv` (header) and `.txt`, bad lines named; outputs shaped per task; and, on the tiny RACE, tagger and
SQuAD runs of task_runs.py, predictions equal to the jobs' own `--do_predict` output (slow: each needs a run).

The classifier's batch inference is tested in test_export.py."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from funnel_tfm.serving.inputs import Field, read_rows
from funnel_tfm.serving.results import json_value, result_rows
from test_classifier import run_entry_point

RACE_FIELDS = (Field("article"), Field("question"), Field("options", 4, ("A", "B", "C", "D")))
SQUAD_FIELDS = (Field("question"), Field("context"))
OPTIONS = ["good", "bad", "long", "french"]


def write_lines(path, lines: list) -> str:
    """Lines of str (written as UTF-8) or bytes (as they are), newline-terminated."""
    path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines))
    return str(path)


def rows_of(path: str, fields, max_chars: int = 200) -> list[tuple]:
    return [(row.line, row.values, row.error, row.id) for row in read_rows(path, fields, max_chars)]


# ------------------------------------------------------------------------------------------------ reading
def test_jsonl_rows_name_every_field_and_each_bad_line(tmp_path):
    good = {"id": "q1", "article": "The storm closed the passes.", "question": "Why _ ?", "options": OPTIONS}
    lines = [json.dumps(good), "", b"\xff\xfe not utf-8", '{"article": "a"', json.dumps(["not", "an", "object"]),
             json.dumps({**good, "question": None}), json.dumps({**good, "options": OPTIONS[:3]}),
             json.dumps({**good, "options": "good bad long french"}),
             json.dumps({**good, "options": ["a", " ", "c", "d"]}), json.dumps({**good, "article": "x" * 300}),
             json.dumps({**good, "extra": 1, "id": 7})]
    rows = rows_of(write_lines(tmp_path / "race.jsonl", lines), RACE_FIELDS)
    expected_values = (good["article"], good["question"], tuple(OPTIONS))
    assert rows[0] == (1, expected_values, None, "q1")
    assert [error for _, _, error, _ in rows[1:10]] == [
        "empty", "invalid UTF-8 (at byte 0)", "not JSON (Expecting ',' delimiter)",
        "not a JSON object (expected article, question, options (4 strings))", 'no "question" string',
        "wrong options count (3, the model takes 4)", 'no "options" list of strings', "empty",
        "too long (396 characters, --max_chars=200)"]
    assert all(values == () for _, values, error, _ in rows if error)
    assert rows[10] == (11, expected_values, None, 7)  # other keys ignored, any JSON id carried


def test_tsv_header_names_the_columns_in_any_order(tmp_path):
    lines = ["id\tD\tquestion\tC\tarticle\tgold\tB\tA", "q1\tfrench\tWhy _ ?\tlong\tThe storm.\tA\tbad\tgood",
             "q2\tfrench\tWhy?\tlong\tThe storm.\tA\tbad", "q3\t \tWhy?\tlong\tThe storm.\tA\tbad\tgood"]
    rows = rows_of(write_lines(tmp_path / "race.tsv", lines), RACE_FIELDS)
    assert rows == [(2, ("The storm.", "Why _ ?", tuple(OPTIONS)), None, "q1"),
                    (3, (), "wrong column count (7, the header has 8)", None), (4, (), "empty", "q3")]
    squad = write_lines(tmp_path / "squad.tsv", [b"\xef\xbb\xbfcontext\tquestion", "The Broncos won.\tWho won?"])
    assert rows_of(squad, SQUAD_FIELDS) == [(2, ("Who won?", "The Broncos won."), None, None)]
    no_header = write_lines(tmp_path / "no_header.tsv", ["The Broncos won.\tWho won?"])
    with pytest.raises(ValueError, match=r"no_header.tsv:1: expected a header line naming the columns question, "
                                         r"context \(tab-separated, in any order; an optional id column\)"):
        rows_of(no_header, SQUAD_FIELDS)


def test_single_string_fields_read_headerless_tsv_and_txt(tmp_path):
    """The classifier's layout (`text<TAB>text_pair`, no header) and the tagger's `.txt`; `.txt` is refused for a
    model of several fields before any row is read."""
    pair = (Field("text"), Field("text_pair"))
    tsv = write_lines(tmp_path / "pairs.tsv", ["a premise\ta hypothesis", "no pair", "text\ttext_pair"])
    assert rows_of(tsv, pair) == [(1, ("a premise", "a hypothesis"), None, None),
                                  (2, (), "wrong column count (1, the model takes 2)", None),
                                  (3, ("text", "text_pair"), None, None)]
    named = write_lines(tmp_path / "named.tsv", ["text_pair\ttext", "a hypothesis\ta premise"])
    assert rows_of(named, pair) == [(2, ("a premise", "a hypothesis"), None, None)]
    txt = write_lines(tmp_path / "words.txt", ["EU rejects German call", "  ", "Peter Blackburn"])
    assert rows_of(txt, (Field("text"),)) == [(1, ("EU rejects German call",), None, None), (2, (), "empty", None),
                                              (3, ("Peter Blackburn",), None, None)]
    with pytest.raises(ValueError, match=r"a \.txt file holds one text per line, and this model takes question, "
                                         r"context; write \.jsonl"):
        rows_of(txt, SQUAD_FIELDS)
    with pytest.raises(ValueError, match=r"unknown extension '\.csv'"):
        rows_of(str(tmp_path / "texts.csv"), SQUAD_FIELDS)


# ------------------------------------------------------------------------------------------------ results
def test_results_are_shaped_per_task_and_other_tasks_keep_every_output():
    race = {"prediction": np.array([b"B"]), "choice": np.array([1], np.int32),
            "probabilities": np.array([[0.1, 0.6, 0.2, 0.1]], np.float32), "logits": np.zeros((1, 4), np.float32),
            "option_names": np.array([[b"A", b"B", b"C", b"D"]])}
    [row] = result_rows("multiple_choice", race, {"labels": list("ABCD")})
    assert row["prediction"] == "B" and row["choice"] == 1 and row["probabilities"]["B"] == pytest.approx(0.6)
    tags = {"tags": np.array([[b"B-NP", b"O", b""], [b"B-VP", b"", b""]]), "num_words": np.array([2, 1], np.int32),
            "words": np.array([[b"Caf\xc3\xa9", b"!", b""], [b"Go", b"", b""]])}
    assert result_rows("tagging", tags, {}) == [{"words": ["Café", "!"], "tags": ["B-NP", "O"]},
                                                {"words": ["Go"], "tags": ["B-VP"]}]
    squad = {"answer": np.array([b"the Broncos", b""]), "answer_start": np.array([4, 0], np.int32),
             "truncated": np.array([False, True]), "no_answer_probability": np.array([0.25, 0.5], np.float32),
             "windows": np.array([1, 3], np.int32)}  # an output this module has never heard of
    assert result_rows("squad", squad, {}) == [
        {"answer": "the Broncos", "answer_start": 4, "no_answer_probability": 0.25, "truncated": False, "windows": 1},
        {"answer": "", "answer_start": 0, "no_answer_probability": 0.5, "truncated": True, "windows": 3}]
    assert json.dumps(result_rows("squad", squad, {}))  # plain Python: JSON-serialisable


# ------------------------------------------------------------------------------------------------ end to end
def predict_cli(*args: str, check: bool = True):
    return run_entry_point("predict", *args, check=check)


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.slow  # a RACE run, its export and two predict processes (~2 min with the run)
def test_race_predict_equals_do_predict_from_jsonl_and_tsv(race_run, race_saved_model, tmp_path):
    examples, expected = race_run["examples"], race_run["predictions"]
    rows = [{"id": e.guid, "article": e.article, "question": e.question, "options": list(e.options)}
            for e in examples]
    lines = [json.dumps(r) for r in rows]
    lines[2:2] = ["", json.dumps({**rows[0], "options": rows[0]["options"][:3]}), b"\xc3\x28"]
    source = write_lines(tmp_path / "race.jsonl", lines)
    result = predict_cli(f"--model={race_saved_model}", f"--input={source}", f"--output={tmp_path / 'out.jsonl'}",
                         "--batch_size=3")
    assert "bad lines: 1 empty, 1 invalid UTF-8, 1 wrong options count;" in result.stdout
    assert f"predict: {len(rows)} examples in" in result.stdout
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["line"] for r in out] == list(range(1, len(lines) + 1))
    assert out[2:5] == [{"line": 3, "error": "empty"},
                        {"line": 4, "error": "wrong options count (3, the model takes 4)"},
                        {"line": 5, "error": "invalid UTF-8 (at byte 0)"}]
    good = [r for r in out if "error" not in r]
    assert [r["id"] for r in good] == [e.guid for e in examples]
    assert [r["prediction"] for r in good] == [p["prediction"] for p in expected]
    np.testing.assert_allclose([[r["probabilities"][k] for k in "ABCD"] for r in good],
                               [[p["probabilities"][k] for k in "ABCD"] for p in expected], atol=1e-6)
    assert [r["choice"] for r in good] == ["ABCD".index(p["prediction"]) for p in expected]
    assert len({r["prediction"] for r in good}) > 1 or np.ptp([r["probabilities"]["A"] for r in good]) > 0
    # The same questions as a TSV with named columns in another order: the same answers.
    tsv = ["B\tarticle\tA\tD\tquestion\tC\tid"] + [
        "\t".join([r["options"][1], r["article"], r["options"][0], r["options"][3], r["question"], r["options"][2],
                   r["id"]]) for r in rows]
    predict_cli(f"--model={race_saved_model}", f"--input={write_lines(tmp_path / 'race.tsv', tsv)}",
                f"--output={tmp_path / 'tsv.jsonl'}")
    from_tsv = read_jsonl(tmp_path / "tsv.jsonl")
    assert [r["line"] for r in from_tsv] == list(range(2, len(rows) + 2))
    assert [(r["id"], r["prediction"], r["choice"]) for r in from_tsv] == [
        (r["id"], r["prediction"], r["choice"]) for r in good]
    np.testing.assert_allclose([list(r["probabilities"].values()) for r in from_tsv],
                               [list(r["probabilities"].values()) for r in good], atol=1e-6)
    # --bad_lines=fail: one error line naming the file and line, no output file.
    failed = predict_cli(f"--model={race_saved_model}", f"--input={source}", f"--output={tmp_path / 'failed.jsonl'}",
                         "--bad_lines=fail", check=False)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1] == f"predict: error: {source}:3: empty (--bad_lines=fail)"
    assert not os.path.exists(tmp_path / "failed.jsonl")
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]  # no temporary left behind
    txt = predict_cli(f"--model={race_saved_model}", f"--input={write_lines(tmp_path / 'race.txt', ['a'])}",
                      f"--output={tmp_path / 'txt.jsonl'}", check=False)
    assert txt.returncode == 1 and "this model takes article, question, options (4 strings)" in txt.stderr


@pytest.mark.slow  # a tagger run and its export (~1.5 min with the run)
def test_tagger_predict_equals_do_predict_from_txt(tagger_run, tagger_saved_model, tmp_path):
    """One sentence a line (words separated by spaces), words cut by max_seq_length included: the job's tags."""
    from funnel_tfm.serving.batch import predict_file
    predicted = tagger_run["predicted"]
    lines = [" ".join(sentence.words) for sentence in predicted]
    lines[1:1] = ["   ", b"caf\xe9 latte"]
    summary = predict_file(tagger_saved_model, write_lines(tmp_path / "sentences.txt", lines),
                           str(tmp_path / "tags.jsonl"), batch_size=4, progress=print)
    assert summary["task"] == "tagging" and summary["predicted"] == len(predicted)
    assert summary["bad"] == {"empty": 1, "invalid UTF-8": 1}
    out = read_jsonl(tmp_path / "tags.jsonl")
    assert out[1:3] == [{"line": 2, "error": "empty"}, {"line": 3, "error": "invalid UTF-8 (at byte 3)"}]
    good = [r for r in out if "error" not in r]
    assert [r["words"] for r in good] == [list(sentence.words) for sentence in predicted]
    assert [r["tags"] for r in good] == [list(sentence.tags) for sentence in predicted]
    assert len({tag for r in good for tag in r["tags"]}) >= 2  # the comparison can fail


@pytest.mark.slow  # a SQuAD run and its export (~2 min with the run)
def test_squad_predict_equals_the_signature_and_do_predict(squad_run, squad_saved_model, tmp_path):
    """Every output of the signature comes through by name, equal to calling it directly; where the context fits
    (`truncated` false) the answer and null odds are the job's."""
    import tensorflow as tf
    from funnel_tfm.serving.batch import predict_file
    rows = squad_run["rows"]
    lines = [json.dumps(r) for r in rows]
    lines[3:3] = [json.dumps({"id": "x", "question": "Who?"}), json.dumps({"question": "Who?", "context": "y" * 9000})]
    summary = predict_file(squad_saved_model, write_lines(tmp_path / "questions.jsonl", lines),
                           str(tmp_path / "answers.jsonl"), batch_size=16, max_chars=8000, progress=print)
    assert summary["predicted"] == len(rows) and summary["bad"] == {'no "context" string': 1, "too long": 1}
    out = read_jsonl(tmp_path / "answers.jsonl")
    assert out[3:5] == [{"line": 4, "error": 'no "context" string'},
                        {"line": 5, "error": f"too long ({len(lines[4]):,} characters, --max_chars=8,000)"}]
    good = [r for r in out if "error" not in r]
    assert [r["id"] for r in good] == [r["id"] for r in rows]
    serve = tf.saved_model.load(squad_saved_model).signatures["serving_default"]
    direct = serve(question=tf.constant([r["question"] for r in rows]),
                   context=tf.constant([r["context"] for r in rows]))
    for name, value in direct.items():
        value, got = value.numpy(), [r[name] for r in good]
        if value.dtype.kind == "f":
            np.testing.assert_allclose(got, value, atol=1e-5, err_msg=name)
        else:
            assert got == json_value(value), name
    whole = [i for i, r in enumerate(good) if not r["truncated"]]
    assert len(whole) >= 0.9 * len(rows)
    assert [good[i]["answer"] for i in whole] == [squad_run["predictions"][rows[i]["id"]] for i in whole]
    np.testing.assert_allclose([good[i]["null_odds"] for i in whole],
                               [squad_run["null_odds"][rows[i]["id"]] for i in whole], atol=1e-5)
    assert len({good[i]["answer"] for i in whole}) > 3  # different answers: the comparison can fail
