"""SQuAD scoring against the official evaluation scripts themselves, on real SQuAD-format data and random predictions.

The oracles are run, not re-implemented. They come from two pinned wheels, fetched by URL and sha256
(`data_fetch.fetch`, cached) and imported from the wheel's bytes; neither package is installed:
- SQuAD v2.0: tf-models-official 2.20.0, `official/nlp/tools/squad_evaluate_v2_0.py`. Its helpers are the
  official script's functions verbatim (with a leading "_" and absl logging), but its `evaluate()` is modified
  (it drops questions without a prediction, always sweeps thresholds, names the results "final_*"), so
  `official_v2` below puts the helpers together exactly as the official script's `main()` does; the modified
  `evaluate()` is checked too where it agrees with `main()`.
- SQuAD v1.1: allennlp 0.9.0, `allennlp/tools/squad_eval.py`, the official v1.1 script verbatim (run as a
  command too), and tf-models-official's `squad_evaluate_v1_1.py` (fractions, not percentages).
tf-models-official is not a test dependency because installing it normally would pull tensorflow~=2.20.0 (against
our 2.21), tensorflow-text~=2.20.0, tf-keras, opencv, tensorflow-datasets, pycocotools, kaggle and more.

Data: the allennlp 0.9.0 wheel's real SQuAD fixture (5 questions on 2 Notre Dame paragraphs) and its QuAC sample (a
hip-hop paragraph, 6 span questions, shipped twice under the same ids), and a v2.0-style file made from them by
asking each paragraph the other topic's questions (17 synthetic unanswerable questions, 28 in all).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import random
import subprocess
import sys
import types
import zipfile

import pytest

from funnel_tfm import squad_eval
from funnel_tfm.data import data_fetch
from funnel_tfm.squad_eval import evaluate, evaluate_v1_1

pytestmark = pytest.mark.smoke

ALLENNLP_WHEEL = data_fetch.Artifact("wheel", "allennlp", "0.9.0",
                                     "353752e7b78e48c450e27889d80a3000c4a9af34f70ff9091b3031ad01320940")
TF_MODELS_WHEEL = data_fetch.Artifact("wheel", "tf-models-official", "2.20.0",
                                      "0bf173f9ea83e1a83f983b35fe515e9d9bfd294b27538f6e8806afeb5a069150")
OFFICIAL_V1_1 = "allennlp/tools/squad_eval.py"
SEQUENTIAL_FLOAT_SUM = sys.version_info < (3, 12)  # 3.12's sum() compensates float rounding; += does not


# ------------------------------------------------------------------------------------------- fetched files
def wheel_member(artifact: data_fetch.Artifact, member: str) -> bytes:
    """One file of a pinned wheel, e.g. wheel_member(ALLENNLP_WHEEL, "allennlp/tests/fixtures/data/squad.json")."""
    with zipfile.ZipFile(io.BytesIO(data_fetch.fetch(artifact))) as archive:
        return archive.read(member)


def module_from_wheel(artifact: data_fetch.Artifact, member: str, name: str) -> types.ModuleType:
    """A Python file of a wheel imported as module `name`, without installing the wheel."""
    module = types.ModuleType(name)
    exec(compile(wheel_member(artifact, member).decode("utf-8"), member, "exec"), module.__dict__)
    return module


@pytest.fixture(scope="module")
def oracle_v2() -> types.ModuleType:
    return module_from_wheel(TF_MODELS_WHEEL, "official/nlp/tools/squad_evaluate_v2_0.py", "official_squad_v2")


@pytest.fixture(scope="module")
def oracle_v1() -> types.ModuleType:
    return module_from_wheel(ALLENNLP_WHEEL, OFFICIAL_V1_1, "official_squad_v1_1")


@pytest.fixture(scope="module")
def oracle_v1_tf() -> types.ModuleType:
    return module_from_wheel(TF_MODELS_WHEEL, "official/nlp/tools/squad_evaluate_v1_1.py", "tf_squad_v1_1")


def allennlp_fixture(name: str) -> dict:
    return json.loads(wheel_member(ALLENNLP_WHEEL, f"allennlp/tests/fixtures/data/{name}"))


@pytest.fixture(scope="module")
def quac() -> dict:
    return allennlp_fixture("quac_sample.json")


@pytest.fixture(scope="module")
def v1_data(quac) -> list:
    """SQuAD v1.1 layout: the real SQuAD fixture's article and the first QuAC dialog (its span answers kept)."""
    article = copy.deepcopy(quac["data"][0])
    for paragraph in article["paragraphs"]:
        paragraph["qas"] = [{"id": qa["id"], "question": qa["question"], "answers": qa["answers"]}
                            for qa in paragraph["qas"]]
    return allennlp_fixture("squad.json")["data"] + [article]


@pytest.fixture(scope="module")
def v2_data(v1_data) -> list:
    """v2.0 layout: each paragraph is also asked the other topic's questions, as unanswerable ones."""
    data = copy.deepcopy(v1_data)
    squad_paragraphs, quac_paragraphs = data[0]["paragraphs"], data[1]["paragraphs"]
    for targets, sources in ((squad_paragraphs, quac_paragraphs), (quac_paragraphs, squad_paragraphs)):
        for t, target in enumerate(targets):
            target["qas"] += [{"id": f"{qa['id']}-impossible-{t}", "question": qa["question"], "answers": [],
                               "plausible_answers": qa["answers"], "is_impossible": True}
                              for source in sources for qa in list(source["qas"]) if not qa.get("is_impossible")]
    return data


def entries(dataset: list) -> list[tuple[str, dict]]:
    """(context, question entry) pairs."""
    return [(paragraph["context"], qa) for article in dataset for paragraph in article["paragraphs"]
            for qa in paragraph["qas"]]


# ------------------------------------------------------------------------------------------- the oracles
def official_v2(oracle, dataset, predictions, na_probs=None, thresh=1.0, pr=False, missing_as_zero=False) -> dict:
    """The official v2.0 script's main(), put together from the official helpers as main() does.

    missing_as_zero: our rule for missing predictions in the script's own terms: each missing one is answered
    with a wrong string it never abstains from (probability -inf), and the threshold sweep counts it as an
    answerable question answered wrongly (the script itself stops with a KeyError).
    """
    probs = dict(na_probs) if na_probs is not None else {qid: 0.0 for qid in predictions}
    has_ans = oracle._make_qid_to_has_ans(dataset)
    has_ans_for_sweep = has_ans
    if missing_as_zero:
        missing = [qid for qid in has_ans if qid not in predictions]
        predictions = {**predictions, **{qid: "zzz-missing" for qid in missing}}
        probs.update({qid: -math.inf for qid in missing})
        has_ans_for_sweep = {qid: value or qid in missing for qid, value in has_ans.items()}
    exact_raw, f1_raw = oracle._get_raw_scores(dataset, predictions)
    exact = oracle._apply_no_ans_threshold(exact_raw, probs, has_ans, thresh)
    f1 = oracle._apply_no_ans_threshold(f1_raw, probs, has_ans, thresh)
    out = oracle._make_eval_dict(exact, f1)
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, value in has_ans.items() if value == wanted]
        if qids:
            oracle._merge_eval(out, oracle._make_eval_dict(exact, f1, qid_list=qids), prefix)
    if na_probs is not None:
        oracle._find_all_best_thresh(out, predictions, exact_raw, f1_raw, probs, has_ans_for_sweep)
        out = {key.replace("final_", "best_"): value for key, value in out.items()}
    if na_probs is not None and pr:
        oracle._run_precision_recall_analysis(out, exact_raw, f1_raw, probs, has_ans)
    return dict(out)


# ------------------------------------------------------------------------------------- random predictions
VARIANTS = (
    lambda text, rng: text.upper(),
    lambda text, rng: text.lower(),
    lambda text, rng: text.title(),
    lambda text, rng: f"  {text}.  ",
    lambda text, rng: f'"{text}",',
    lambda text, rng: f"The {text}",
    lambda text, rng: f"a {text}!",
    lambda text, rng: text.replace(" ", "  \t"),
    lambda text, rng: " ".join(word for word in text.split() if word.lower() not in ("a", "an", "the")),
    lambda text, rng: text.replace(" ", "-", 1),
    lambda text, rng: f"¿{text}?",  # not ASCII punctuation: stays a token
)
JUNK = ("", " ", "the", "A", "an", "...", "?!", "The.", "\u3000", "an the a", "Zahm Zahm Zahm")


def random_span(rng: random.Random, context: str) -> str:
    words = context.split(" ")
    start = rng.randrange(len(words))
    return " ".join(words[start:start + rng.randint(1, 15)])


def random_prediction(rng: random.Random, context: str, gold: list[str]) -> str:
    """An answer a model might give: a gold answer, a variant of one, a near miss, any span, or junk."""
    roll = rng.random()
    if gold and roll < 0.25:
        return rng.choice(gold)
    if gold and roll < 0.5:
        return rng.choice(VARIANTS)(rng.choice(gold), rng)
    if gold and roll < 0.6:  # a part of a gold answer, or one widened into the context
        words = rng.choice(gold).split()
        start = rng.randrange(len(words))
        part = " ".join(words[start:start + rng.randint(1, len(words))])
        return part if rng.random() < 0.5 else f"{part} {random_span(rng, context)}"
    if roll < 0.85:
        return random_span(rng, context)
    return rng.choice(JUNK)


def random_na_prob(rng: random.Random) -> float:
    """Often on a coarse grid (ties matter to the threshold sweep), sometimes an int or outside [0, 1]."""
    return rng.choice([round(rng.random(), 1), round(rng.random(), 2), rng.random(), rng.randint(0, 1),
                       rng.uniform(-1.0, 2.0)])


def random_case(rng: random.Random, dataset: list, allow_missing: bool) -> tuple[dict, dict | None, float]:
    """(predictions, na_probs or None, threshold) for the questions of `dataset`."""
    predictions = {}
    for context, qa in entries(dataset):
        if allow_missing and rng.random() < 0.15:
            continue
        gold = [answer["text"] for answer in qa["answers"] or qa.get("plausible_answers", [])]
        predictions[qa["id"]] = random_prediction(rng, context, gold)
    if rng.random() < 0.3:
        predictions["not-a-question-of-this-set"] = "Notre Dame"
    na_probs = None
    if rng.random() < 0.7:
        na_probs = {qid: random_na_prob(rng) for qid in predictions}
        items = list(na_probs.items())
        rng.shuffle(items)  # the file's order decides the order within ties
        na_probs = dict(items)
    threshold = rng.choice([1.0, 0.0, 0.5, rng.random(), -0.5])
    return predictions, na_probs, threshold


def silent(message: str) -> None:
    """A `warn` that drops the missing-prediction lines the random cases produce by the hundred."""


def without_missing_lines(oracle) -> None:
    """Quiets a tf-models script's absl logging (its "Missing prediction" lines)."""
    oracle.logging.set_verbosity(oracle.logging.FATAL)


# ------------------------------------------------------------------------------------------ unit checks
@pytest.mark.parametrize("text, normal", [
    ("The Eiffel  Tower!", "eiffel tower"), ("a-b", "ab"), ("an apple, the pear", "apple pear"),
    ("Theory of A", "theory of"), ("¿Qué?", "¿qué"), ("", ""), ("\tThe\u3000", ""), ("it's", "its"),
])
def test_normalize_answer_equals_the_official_one(oracle_v2, oracle_v1, text, normal):
    assert squad_eval.normalize_answer(text) == normal
    assert oracle_v2._normalize_answer(text) == normal == oracle_v1.normalize_answer(text)


def test_scores_of_single_answers_equal_the_official_ones(oracle_v2, oracle_v1):
    rng = random.Random(0)
    words = ["the", "a", "Rhine", "river", "rhine", "River.", "in", "1858", "France", "", "an", ","]
    for _ in range(3000):
        gold = " ".join(rng.choice(words) for _ in range(rng.randint(0, 5)))
        prediction = " ".join(rng.choice(words) for _ in range(rng.randint(0, 5)))
        assert squad_eval.exact_score(gold, prediction) == oracle_v2._compute_exact(gold, prediction)
        assert squad_eval.f1_score(gold, prediction) == oracle_v2._compute_f1(gold, prediction)
        assert squad_eval.f1_score_v1_1(gold, prediction) == oracle_v1.f1_score(prediction, gold)
        assert bool(squad_eval.exact_score(gold, prediction)) == oracle_v1.exact_match_score(prediction, gold)


def test_documented_examples():
    assert squad_eval.normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert squad_eval.exact_score("the Rhine", "Rhine.") == 1
    assert squad_eval.f1_score("the Rhine river", "Rhine") == pytest.approx(2 / 3)
    assert squad_eval.f1_score("", "") == 1 and squad_eval.f1_score_v1_1(".", "") == 0


# ------------------------------------------------------------------------------------------- v2.0 numbers
def test_v2_data_is_what_the_docstring_says(v1_data, v2_data):
    assert len(entries(v1_data)) == 11
    assert len(entries(v2_data)) == 28 and sum(not qa["answers"] for _, qa in entries(v2_data)) == 17


@pytest.mark.parametrize("data_name", ["v1_data", "v2_data"])
def test_random_predictions_equal_the_official_v2_script(request, oracle_v2, data_name):
    """200 prediction files per data set, every key and every bit equal, with and without na-prob files."""
    without_missing_lines(oracle_v2)
    dataset = request.getfixturevalue(data_name)
    rng = random.Random(data_name)
    for _ in range(200):
        predictions, na_probs, threshold = random_case(rng, dataset, allow_missing=False)
        ours = evaluate(dataset, predictions, na_probs, threshold)
        expected = official_v2(oracle_v2, dataset, predictions, na_probs, threshold)
        assert list(ours.items()) == list(expected.items())  # the same keys, in the same order, to the bit


def test_precision_recall_average_precision_equals_the_official_v2_script(oracle_v2, v2_data):
    """The --out-image-dir keys; the script needs a probability for exactly the questions of the data."""
    rng = random.Random(1)
    for _ in range(100):
        predictions, _, threshold = random_case(rng, v2_data, allow_missing=False)
        na_probs = {qa["id"]: random_na_prob(rng) for _, qa in entries(v2_data)}
        ours = evaluate(v2_data, predictions, na_probs, threshold, precision_recall_ap=True)
        expected = official_v2(oracle_v2, v2_data, predictions, na_probs, threshold, pr=True)
        assert list(ours.items()) == list(expected.items())
        assert list(ours)[-3:] == ["pr_exact_ap", "pr_f1_ap", "pr_oracle_ap"]


def test_the_modified_evaluate_of_tf_models_agrees_where_it_should(oracle_v2, v2_data):
    """Its evaluate() (threshold 1.0, sweep and curves always, "final_*" names) on complete predictions."""
    rng = random.Random(2)
    for _ in range(50):
        predictions, _, _ = random_case(rng, v2_data, allow_missing=False)
        predictions.pop("not-a-question-of-this-set", None)
        na_probs = {qid: random_na_prob(rng) for qid in predictions}
        theirs = oracle_v2.evaluate(v2_data, predictions, na_probs)
        ours = evaluate(v2_data, predictions, na_probs, precision_recall_ap=True)
        assert {key.replace("final_", "best_"): value for key, value in theirs.items()} == ours


def test_missing_predictions_score_zero_and_count(oracle_v2, v2_data):
    """The official script prints the line, then stops with a KeyError; here they score 0 in every number."""
    without_missing_lines(oracle_v2)
    rng = random.Random(3)
    for _ in range(200):
        predictions, na_probs, threshold = random_case(rng, v2_data, allow_missing=True)
        if not any(qa["id"] not in predictions for _, qa in entries(v2_data)):
            continue
        ours = evaluate(v2_data, predictions, na_probs, threshold, warn=silent)
        assert ours["total"] == 28 and ours["HasAns_total"] == 11 and ours["NoAns_total"] == 17
        expected = official_v2(oracle_v2, v2_data, predictions, na_probs, threshold, missing_as_zero=True)
        assert list(ours.items()) == list(expected.items())
        with pytest.raises(KeyError):
            official_v2(oracle_v2, v2_data, predictions, na_probs, threshold)


def test_missing_predictions_are_reported(v1_data):
    qids = [qa["id"] for _, qa in entries(v1_data)]
    lines = []
    result = evaluate(v1_data, {qid: "x" for qid in qids[1:]}, warn=lines.append)
    assert lines == [f"Missing prediction for {qids[0]}"] and result["total"] == 11


def test_na_probs_must_cover_every_answered_question(v1_data):
    predictions = {qa["id"]: "x" for _, qa in entries(v1_data)}
    with pytest.raises(squad_eval.SquadFormatError, match="no no-answer probability"):
        evaluate(v1_data, predictions, {})


def test_threshold_sweep_on_a_small_case(v2_data):
    """By hand: 11 answerable, 17 unanswerable; all right, unanswerable ones answered "x" at probability 0.9."""
    predictions, na_probs = {}, {}
    for _, qa in entries(v2_data):
        predictions[qa["id"]] = qa["answers"][0]["text"] if qa["answers"] else "x"
        na_probs[qa["id"]] = 0.1 if qa["answers"] else 0.9
    result = evaluate(v2_data, predictions, na_probs)
    assert result["exact"] == pytest.approx(100 * 11 / 28) and result["NoAns_exact"] == 0.0
    assert (result["best_exact"], result["best_exact_thresh"]) == (100.0, 0.1)
    assert evaluate(v2_data, predictions, na_probs, na_prob_thresh=0.5)["exact"] == 100.0


# ------------------------------------------------------------------------------------------- v1.1 numbers
def test_random_predictions_equal_the_official_v1_1_script(oracle_v1, oracle_v1_tf, v1_data, quac):
    """With missing predictions, and on QuAC's two copies of one dialog (repeated ids count twice)."""
    oracle_v1_tf.logging.set_verbosity(oracle_v1_tf.logging.FATAL)
    rng = random.Random(4)
    for dataset in (v1_data, quac["data"]):
        for _ in range(200):
            predictions, _, _ = random_case(rng, dataset, allow_missing=True)
            ours = evaluate_v1_1(dataset, predictions, warn=silent)
            with contextlib.redirect_stderr(io.StringIO()):  # its "Unanswered question" lines
                assert ours == oracle_v1.evaluate(dataset, predictions)
            theirs = oracle_v1_tf.evaluate(dataset, predictions)
            assert ours["exact_match"] == pytest.approx(100 * theirs["exact_match"], rel=1e-12, abs=1e-12)
            assert ours["f1"] == pytest.approx(100 * theirs["final_f1"], rel=1e-12, abs=1e-12)


def test_v1_1_rejects_unanswerable_questions(v2_data):
    with pytest.raises(squad_eval.SquadFormatError, match="has no answer"):
        evaluate_v1_1(v2_data, {qa["id"]: "x" for _, qa in entries(v2_data)})


def test_v2_numbers_equal_v1_1_numbers_on_plain_v1_1_data(v1_data, oracle_v1, oracle_v2):
    """The claim, checked with the scripts: on v1.1 data with no repeated id and no gold answer that normalises
    to "", v2.0's exact / f1 are v1.1's exact_match / f1 (both in %); with missing predictions too, under our rule
    (the v2.0 script itself stops then)."""
    without_missing_lines(oracle_v2)
    rng = random.Random(5)
    for trial in range(300):
        predictions, _, _ = random_case(rng, v1_data, allow_missing=trial % 3 == 0)
        with contextlib.redirect_stderr(io.StringIO()):  # the v1.1 script's "Unanswered question" lines
            v1 = oracle_v1.evaluate(v1_data, predictions)
        v2 = evaluate(v1_data, predictions, warn=silent)
        assert evaluate_v1_1(v1_data, predictions, warn=silent) == v1
        if all(qa["id"] in predictions for _, qa in entries(v1_data)):
            assert v2 == official_v2(oracle_v2, v1_data, predictions)
        assert v2["exact"] == v1["exact_match"]
        if SEQUENTIAL_FLOAT_SUM:
            assert v2["f1"] == v1["f1"]
        else:  # v2.0 adds with sum(), v1.1 with +=: from 3.12 on the last bit may differ
            assert v2["f1"] == pytest.approx(v1["f1"], rel=1e-14)


def one_question(answers: list[str], qid: str = "q") -> list:
    return [{"paragraphs": [{"context": "c", "qas": [{"id": qid, "answers": [{"text": a} for a in answers]}]}]}]


@pytest.mark.parametrize("dataset, predictions, v1_1, v2_0", [
    # A gold answer that normalises to "" is dropped by v2.0 when another one is left.
    (one_question(["The", "Notre Dame"]), {"q": ""}, (100.0, 0.0), (0.0, 0.0)),
    # Prediction and gold both normalise to "": F1 0 for v1.1, 1 for v2.0.
    (one_question(["."]), {"q": "the"}, (100.0, 0.0), (100.0, 100.0)),
    # A repeated id: v1.1 counts both copies, v2.0 one (the last copy's answers, at the first place).
    (one_question(["Rhine"]) + one_question(["Elbe"]), {"q": "Rhine"}, (50.0, 50.0), (0.0, 0.0)),
])
def test_where_v2_numbers_differ_from_v1_1_numbers(oracle_v1, oracle_v2, dataset, predictions, v1_1, v2_0):
    v1 = oracle_v1.evaluate(dataset, predictions)
    v2 = official_v2(oracle_v2, dataset, predictions)
    assert (v1["exact_match"], v1["f1"]) == v1_1 and (v2["exact"], v2["f1"]) == v2_0
    assert evaluate_v1_1(dataset, predictions) == v1 and evaluate(dataset, predictions) == v2


# ------------------------------------------------------------------------------------------------ CLI
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "funnel_tfm.squad_eval", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def files(tmp_path, v2_data):
    """A v2.0 data file, a complete prediction file and a no-answer probability file (paths and contents)."""
    rng = random.Random(6)
    predictions = {qa["id"]: random_prediction(rng, context, [a["text"] for a in qa["answers"]])
                   for context, qa in entries(v2_data)}
    na_probs = {qid: round(rng.random(), 1) for qid in predictions}
    paths = {"data": tmp_path / "dev-v2.0.json", "pred": tmp_path / "pred.json", "na": tmp_path / "na_prob.json"}
    paths["data"].write_text(json.dumps({"version": "v2.0", "data": v2_data}))
    paths["pred"].write_text(json.dumps(predictions))
    paths["na"].write_text(json.dumps(na_probs))
    return {name: str(path) for name, path in paths.items()} | {"predictions": predictions, "na_probs": na_probs}


def test_cli_prints_the_official_json(files, oracle_v2, v2_data):
    result = run_cli(files["data"], files["pred"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == json.dumps(official_v2(oracle_v2, v2_data, files["predictions"]), indent=2) + "\n"


def test_cli_writes_the_out_file(files, oracle_v2, v2_data, tmp_path):
    out = tmp_path / "eval" / "eval.json"
    result = run_cli(files["data"], files["pred"], "--na-prob-file", files["na"], "--na-prob-thresh", "0.5",
                     "--out-file", str(out), "--verbose")
    assert result.returncode == 0 and result.stdout == "", result.stderr
    expected = official_v2(oracle_v2, v2_data, files["predictions"], files["na_probs"], 0.5)
    assert out.read_text() == json.dumps(expected)  # the script's json.dump layout
    assert list(json.loads(out.read_text()))[-4:] == ["best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"]


def test_cli_short_options_and_missing_prediction(files, oracle_v2, v2_data, tmp_path):
    predictions = dict(files["predictions"])
    gone = next(iter(predictions))
    del predictions[gone]
    (tmp_path / "partial.json").write_text(json.dumps(predictions))
    result = run_cli(files["data"], str(tmp_path / "partial.json"), "-n", files["na"], "-t", "0.3",
                     "-o", str(tmp_path / "e.json"))
    assert result.returncode == 0 and f"Missing prediction for {gone}" in result.stderr
    expected = official_v2(oracle_v2, v2_data, predictions, files["na_probs"], 0.3, missing_as_zero=True)
    assert json.loads((tmp_path / "e.json").read_text()) == expected


def test_cli_v1_1_prints_what_the_official_v1_1_script_prints(tmp_path, v1_data):
    rng = random.Random(7)
    predictions = {qa["id"]: random_prediction(rng, context, [a["text"] for a in qa["answers"]])
                   for context, qa in entries(v1_data)[1:]}
    data, pred = tmp_path / "dev-v1.1.json", tmp_path / "pred.json"
    data.write_text(json.dumps({"version": "1.1", "data": v1_data}))
    pred.write_text(json.dumps(predictions))
    script = tmp_path / "evaluate-v1.1.py"
    script.write_bytes(wheel_member(ALLENNLP_WHEEL, OFFICIAL_V1_1))
    official = subprocess.run([sys.executable, str(script), str(data), str(pred)], capture_output=True, text=True,
                              timeout=120)
    for flags in (["--v1.1"], []):  # told, or read from the file's "version": "1.1"
        ours = run_cli(str(data), str(pred), *flags)
        assert official.returncode == ours.returncode == 0
        *scored, rules = ours.stderr.splitlines(keepends=True)  # the rules line comes once the scores are made
        assert rules.startswith("squad_eval: the official v1.1 script's rules (")
        assert ours.stdout == official.stdout and "".join(scored) == official.stderr  # "Unanswered question" too
    assert "v2.0 script's rules (--v2.0)" in run_cli(str(data), str(pred), "--v2.0").stderr


def test_cli_precision_recall_keys_without_matplotlib(files, oracle_v2, v2_data, tmp_path):
    result = run_cli(files["data"], files["pred"], "-n", files["na"], "-p", str(tmp_path / "images"))
    assert result.returncode == 0, result.stderr
    expected = official_v2(oracle_v2, v2_data, files["predictions"], files["na_probs"], pr=True)
    assert json.loads(result.stdout) == expected
    if "matplotlib is not installed" not in result.stderr:
        assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [
            "na_prob_hist_hasAns.png", "na_prob_hist_noAns.png", "pr_exact.png", "pr_f1.png", "pr_oracle.png"]


def test_images_are_drawn_with_matplotlib(files, v2_data, tmp_path, monkeypatch):
    """A stand-in matplotlib records the files the script's five plots go to."""
    saved = []
    pyplot = types.SimpleNamespace(savefig=saved.append, **{name: lambda *a, **k: None for name in (
        "step", "fill_between", "xlabel", "ylabel", "xlim", "ylim", "title", "clf", "hist")})
    matplotlib = types.SimpleNamespace(use=lambda backend: None, pyplot=pyplot)
    monkeypatch.setitem(sys.modules, "matplotlib", matplotlib)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", pyplot)
    squad_eval.write_images(str(tmp_path / "img"), v2_data, files["predictions"], files["na_probs"])
    assert [p.rsplit("/", 1)[1] for p in saved] == [
        "pr_exact.png", "pr_f1.png", "pr_oracle.png", "na_prob_hist_hasAns.png", "na_prob_hist_noAns.png"]


@pytest.mark.parametrize("which, content, message", [
    ("data", "not json {", "the data file is not JSON"),
    ("data", json.dumps({"version": "1.1"}), 'no "data" list'),
    ("data", json.dumps({"data": [{"paragraphs": [{"qas": [{"id": "q"}]}]}]}), "no \"answers\" list"),
    ("data", json.dumps({"data": []}), "has no questions"),
    ("pred", json.dumps(["Rhine"]), "mapping question ids to answer strings"),
    ("pred", json.dumps({"q": None}), "mapping question ids to answer strings"),
    ("na", json.dumps({"q": "0.5"}), "mapping question ids to numbers"),
    ("na", json.dumps({}), "no no-answer probability for question"),
    ("data", b"\xff\xfe\x00 not utf-8", "cannot read the data file"),
])
def test_cli_bad_input_is_one_line_naming_the_file(files, which, content, message):
    path = files[which]
    with open(path, "wb") as handle:
        handle.write(content if isinstance(content, bytes) else content.encode())
    result = run_cli(files["data"], files["pred"], "--na-prob-file", files["na"])
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {path}: ") and message in result.stderr


def test_cli_missing_file_and_no_arguments(files, tmp_path):
    result = run_cli(str(tmp_path / "nowhere.json"), files["pred"])
    assert result.returncode == 1 and f"error: {tmp_path / 'nowhere.json'}: cannot read" in result.stderr
    result = run_cli()
    assert result.returncode == 1 and "usage:" in result.stdout  # the official script prints its help too
