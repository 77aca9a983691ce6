"""SQuAD scoring with the numbers of the official evaluation scripts (v2.0, and v1.1), and the file checks.

    dataset = load_dataset("dev-v2.0.json")                  # the file's "data" list
    evaluate(dataset, {"56ddde6b9a695914005b9628": "France", ...})
    # {"exact": 71.2, "f1": 74.5, "total": 11873, "HasAns_exact": ..., "NoAns_total": 5945}
    evaluate(dataset, predictions, na_probs)                 # + best_exact, best_exact_thresh, best_f1, best_f1_thresh
    evaluate_v1_1(dataset, predictions)                      # {"exact_match": 81.2, "f1": 88.5}

The command line is `python -m funnel_tfm.squad_eval` (its docstring says where the scripts differ and how this
was checked against them); the SQuAD job scores every checkpoint with these functions.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import re
import string
import sys
from typing import Callable, Iterator, Mapping, Sequence

from funnel_tfm import file_io

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)  # ASCII only, as the scripts: "¿" or "—" stay


class SquadFormatError(ValueError):
    """A file that is not JSON or not in the SQuAD layout, or predictions that do not fit the data."""


# ------------------------------------------------------------------------------------------- one answer
def normalize_answer(text: str) -> str:
    """The scripts' normal form: lower case, no punctuation, no articles, single spaces.

        normalize_answer("The  Eiffel-Tower!")      # "eiffeltower"

    Punctuation goes before the articles, so "a-b" is the word "ab", not the article "a".
    """
    text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_score(gold: str, prediction: str) -> int:
    """1 if the normalised strings are equal, else 0.

        exact_score("the Rhine", "Rhine.")          # 1
    """
    return int(normalize_answer(gold) == normalize_answer(prediction))


def f1_score(gold: str, prediction: str) -> float:
    """Token-bag F1 of the normalised strings, as SQuAD v2.0 defines it (1 when both are empty).

        f1_score("the Rhine river", "Rhine")        # 0.666...
        f1_score("", "")                            # 1   ("no answer" agrees with "no answer")
    """
    gold_tokens = normalize_answer(gold).split()
    predicted_tokens = normalize_answer(prediction).split()
    if not gold_tokens or not predicted_tokens:
        return int(gold_tokens == predicted_tokens)
    return _token_f1(gold_tokens, predicted_tokens)


def f1_score_v1_1(gold: str, prediction: str) -> float:
    """Token-bag F1 as SQuAD v1.1 defines it: 0 whenever no token is shared, even when both are empty.

        f1_score_v1_1(".", "")                      # 0   (f1_score gives 1)
    """
    return _token_f1(normalize_answer(gold).split(), normalize_answer(prediction).split())


def _token_f1(gold_tokens: list[str], predicted_tokens: list[str]) -> float:
    shared = sum((collections.Counter(gold_tokens) & collections.Counter(predicted_tokens)).values())
    if shared == 0:
        return 0
    precision = shared / len(predicted_tokens)
    recall = shared / len(gold_tokens)
    # This grouping, not the equal 2 * shared / (len + len), so the bits match the scripts'.
    return (2 * precision * recall) / (precision + recall)


# ------------------------------------------------------------------------------------------ the data set
@dataclasses.dataclass(frozen=True)
class Question:
    """A question's gold answers as v2.0 scores them (never empty: [""] for an unanswerable question)."""

    gold: tuple[str, ...]
    has_answer: bool


def _question_entries(dataset: Sequence[Mapping]) -> Iterator[Mapping]:
    for article in dataset:
        for paragraph in article["paragraphs"]:
            yield from paragraph["qas"]


def questions_by_id(dataset: Sequence[Mapping]) -> dict[str, Question]:
    """Every question of a SQuAD `data` list, by id, in file order.

        questions_by_id(dataset)["5733be28..."]     # Question(gold=("Saint Bernadette Soubirous",), has_answer=True)

    Like the v2.0 script: a repeated id keeps its first place and its last copy's answers; gold answers that
    normalise to "" are dropped unless nothing else is left.
    """
    questions = {}
    for entry in _question_entries(dataset):
        texts = [answer["text"] for answer in entry["answers"]]
        gold = tuple(text for text in texts if normalize_answer(text)) or ("",)
        questions[entry["id"]] = Question(gold, bool(entry["answers"]))
    return questions


def print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


# ------------------------------------------------------------------------------------------ v2.0 numbers
def raw_scores(questions: Mapping[str, Question], predictions: Mapping[str, str],
               warn: Callable[[str], None] = print_to_stderr) -> tuple[dict[str, float], dict[str, float]]:
    """(exact, f1) of each answered question, best over its gold answers; missing ones are reported and left out.

        raw_scores(questions_by_id(dataset), {"q1": "Rhine"})     # ({"q1": 1}, {"q1": 1.0})
    """
    exact, f1 = {}, {}
    for qid, question in questions.items():
        if qid not in predictions:
            warn(f"Missing prediction for {qid}")
            continue
        exact[qid] = max(exact_score(gold, predictions[qid]) for gold in question.gold)
        f1[qid] = max(f1_score(gold, predictions[qid]) for gold in question.gold)
    return exact, f1


def apply_na_threshold(scores: Mapping[str, float], na_probs: Mapping[str, float],
                       questions: Mapping[str, Question], na_prob_thresh: float) -> dict[str, float]:
    """Scores after abstaining where the no-answer probability exceeds the threshold (abstaining is right
    exactly for an unanswerable question).

        apply_na_threshold({"q1": 0.5}, {"q1": 0.9}, questions, 0.8)    # {"q1": 0.0} if q1 has an answer
    """
    return {qid: float(not questions[qid].has_answer) if na_probs[qid] > na_prob_thresh else score
            for qid, score in scores.items()}


def _summary(exact: Mapping[str, float], f1: Mapping[str, float], qids: Sequence[str]) -> dict:
    # A missing prediction adds 0; adding 0 leaves a float sum unchanged, so the sum is the script's.
    total = len(qids)
    return {"exact": 100.0 * sum(exact.get(qid, 0) for qid in qids) / total,
            "f1": 100.0 * sum(f1.get(qid, 0) for qid in qids) / total,
            "total": total}


def best_threshold(scores: Mapping[str, float], na_probs: Mapping[str, float], questions: Mapping[str, Question],
                   predictions: Mapping[str, str]) -> tuple[float, float]:
    """(best score in %, its threshold) over the thresholds at the given no-answer probabilities, as the v2.0
    script's `find_best_thresh`.

        best_threshold(exact, na_probs, questions, predictions)     # (73.4, 0.62)

    The sweep starts from abstaining everywhere (every answered unanswerable question right, threshold 0.0)
    and answers the questions in order of rising probability; a threshold is kept only when it beats the best
    so far strictly. Like the script it moves inside a run of equal probabilities, and it counts any non-empty
    prediction string (even " ") as an answer to an unanswerable question.
    """
    current = sum(1 for qid, question in questions.items() if not question.has_answer and qid in scores)
    best, best_thresh = current, 0.0
    for qid, probability in sorted(na_probs.items(), key=lambda item: item[1]):
        if qid not in scores:  # no prediction, or not a question of this data set
            continue
        if questions[qid].has_answer:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, best_thresh = current, probability
    return 100.0 * best / len(questions), best_thresh


@dataclasses.dataclass(frozen=True)
class PrecisionRecall:
    """A precision-recall curve over the no-answer probability, with its average precision in %."""

    average_precision: float
    precisions: tuple[float, ...]
    recalls: tuple[float, ...]


def precision_recall(scores: Mapping[str, float], na_probs: Mapping[str, float],
                     questions: Mapping[str, Question]) -> PrecisionRecall:
    """The v2.0 script's precision-recall analysis: answer in order of rising no-answer probability; a point
    after each run of equal probabilities; a true positive is an answerable question's score. Probabilities of
    ids outside the data set are left out (the script stops with a KeyError on them).

        precision_recall(exact, na_probs, questions).average_precision     # 81.3
    """
    ranked = [(qid, p) for qid, p in sorted(na_probs.items(), key=lambda item: item[1]) if qid in questions]
    num_answerable = sum(1 for question in questions.values() if question.has_answer)
    true_positives, average = 0.0, 0.0
    precisions, recalls = [1.0], [0.0]
    for index, (qid, probability) in enumerate(ranked):
        if questions[qid].has_answer:
            true_positives += scores.get(qid, 0)
        precision, recall = true_positives / (index + 1), true_positives / num_answerable
        if index == len(ranked) - 1 or probability != ranked[index + 1][1]:
            average += precision * (recall - recalls[-1])
            precisions.append(precision)
            recalls.append(recall)
    return PrecisionRecall(100.0 * average, tuple(precisions), tuple(recalls))


def precision_recall_curves(exact: Mapping[str, float], f1: Mapping[str, float], na_probs: Mapping[str, float],
                             questions: Mapping[str, Question]) -> dict[str, PrecisionRecall]:
    oracle = {qid: float(question.has_answer) for qid, question in questions.items()}
    return {name: precision_recall(scores, na_probs, questions)
            for name, scores in (("exact", exact), ("f1", f1), ("oracle", oracle))}


def check_na_probs(na_probs: Mapping[str, float], questions: Mapping[str, Question],
                   predictions: Mapping[str, str]) -> None:
    """Raises SquadFormatError unless every answered question has a no-answer probability (the script would
    stop with a KeyError).

        check_na_probs({"q1": 0.2}, questions, {"q1": "Rhine"})     # None
    """
    for qid in questions:
        if qid in predictions and qid not in na_probs:
            raise SquadFormatError(f"no no-answer probability for question {qid!r}, which has a prediction")


def evaluate(dataset: Sequence[Mapping], predictions: Mapping[str, str], na_probs: Mapping[str, float] | None = None,
             na_prob_thresh: float = 1.0, precision_recall_ap: bool = False,
             warn: Callable[[str], None] = print_to_stderr) -> dict:
    """The official SQuAD v2.0 script's result for a `data` list, answers by question id and (optionally)
    no-answer probabilities by question id.

        evaluate(dataset, predictions)
        # {"exact": 66.7, "f1": 70.1, "total": 3, "HasAns_exact": 50.0, "HasAns_f1": 55.2, "HasAns_total": 2,
        #  "NoAns_exact": 100.0, "NoAns_f1": 100.0, "NoAns_total": 1}
        evaluate(dataset, predictions, na_probs, na_prob_thresh=0.5, precision_recall_ap=True)
        # ... + "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh",
        #       "pr_exact_ap", "pr_f1_ap", "pr_oracle_ap"

    HasAns_* / NoAns_* only when the data has such questions; best_* only with `na_probs` (the script's
    --na-prob-file); pr_*_ap only with `na_probs` and `precision_recall_ap` (the script's --out-image-dir) when
    some question has an answer. Without `na_probs` every prediction's probability is 0.0.
    """
    questions = questions_by_id(dataset)
    if not questions:
        raise SquadFormatError("the data set has no questions")
    given_na_probs = na_probs is not None
    na_probs = na_probs if given_na_probs else {qid: 0.0 for qid in predictions}
    check_na_probs(na_probs, questions, predictions)
    exact_raw, f1_raw = raw_scores(questions, predictions, warn)
    exact = apply_na_threshold(exact_raw, na_probs, questions, na_prob_thresh)
    f1 = apply_na_threshold(f1_raw, na_probs, questions, na_prob_thresh)
    result = _summary(exact, f1, list(questions))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, question in questions.items() if question.has_answer == wanted]
        if qids:
            result.update({f"{prefix}_{key}": value for key, value in _summary(exact, f1, qids).items()})
    if given_na_probs:
        result["best_exact"], result["best_exact_thresh"] = best_threshold(exact_raw, na_probs, questions, predictions)
        result["best_f1"], result["best_f1_thresh"] = best_threshold(f1_raw, na_probs, questions, predictions)
        if precision_recall_ap and any(question.has_answer for question in questions.values()):
            curves = precision_recall_curves(exact_raw, f1_raw, na_probs, questions)
            result.update({f"pr_{name}_ap": curve.average_precision for name, curve in curves.items()})
    return result


# ------------------------------------------------------------------------------------------ v1.1 numbers
def evaluate_v1_1(dataset: Sequence[Mapping], predictions: Mapping[str, str],
                  warn: Callable[[str], None] = print_to_stderr) -> dict:
    """The official SQuAD v1.1 script's result: every question entry counts (repeated ids too), a missing
    prediction scores 0, gold answers are kept as they are.

        evaluate_v1_1(dataset, predictions)         # {"exact_match": 81.2, "f1": 88.5}
    """
    exact = f1 = total = 0
    for entry in _question_entries(dataset):
        total += 1
        qid = entry["id"]
        if qid not in predictions:
            warn(f"Unanswered question {qid} will receive score 0.")
            continue
        gold = [answer["text"] for answer in entry["answers"]]
        if not gold:
            raise SquadFormatError(f"question {qid!r} has no answer: SQuAD v1.1 scoring needs one "
                                   "(score SQuAD v2.0 data without --v1.1)")
        exact += max(exact_score(text, predictions[qid]) for text in gold)
        f1 += max(f1_score_v1_1(text, predictions[qid]) for text in gold)
    if total == 0:
        raise SquadFormatError("the data set has no questions")
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}


# ------------------------------------------------------------------------------------------------ files
def _read_json(path: str, what: str) -> object:
    try:
        with file_io.open_file(path) as handle:
            return json.load(handle)
    except (OSError, UnicodeDecodeError) as error:
        raise SquadFormatError(f"{path}: cannot read the {what} ({error})") from None
    except ValueError as error:
        raise SquadFormatError(f"{path}: the {what} is not JSON ({error})") from None


def _require(condition: bool, path: str, message: str) -> None:
    if not condition:
        raise SquadFormatError(f"{path}: not a SQuAD {message}")


def _check_dataset(data: object, path: str) -> None:
    _require(isinstance(data, list), path, 'data file: no "data" list at the top')
    for article in data:
        _require(isinstance(article, dict) and isinstance(article.get("paragraphs"), list), path,
                 'data file: an article without a "paragraphs" list')
        for paragraph in article["paragraphs"]:
            _require(isinstance(paragraph, dict) and isinstance(paragraph.get("qas"), list), path,
                     'data file: a paragraph without a "qas" list')
            for entry in paragraph["qas"]:
                _require(isinstance(entry, dict) and isinstance(entry.get("id"), str), path,
                         'data file: a question without a string "id"')
                answers = entry.get("answers")
                _require(isinstance(answers, list) and all(
                    isinstance(answer, dict) and isinstance(answer.get("text"), str) for answer in answers), path,
                    f'data file: question {entry["id"]!r} has no "answers" list of {{"text": ...}}')


def load_dataset(path: str) -> list:
    """The `data` list of a SQuAD v1.1 / v2.0 file, checked for the fields scoring reads.

        load_dataset("dev-v2.0.json")[0]["title"]       # "Normans"
    """
    document = _read_json(path, "data file")
    _require(isinstance(document, dict), path, 'data file: no "data" list at the top')
    _check_dataset(document.get("data"), path)
    if next(_question_entries(document["data"]), None) is None:
        raise SquadFormatError(f"{path}: the data file has no questions")
    return document["data"]


def dataset_version(path: str) -> str | None:
    """The data file's top-level "version" ("1.1", "v2.0", ...), None where it has none.

        dataset_version("dev-v1.1.json")     # "1.1"
    """
    document = _read_json(path, "data file")
    version = document.get("version") if isinstance(document, dict) else None
    return str(version) if version is not None else None


def load_predictions(path: str) -> dict[str, str]:
    """{question id: answer text}, the official prediction file.

        load_predictions("predictions.json")            # {"56ddde6b9a695914005b9628": "France", ...}
    """
    predictions = _read_json(path, "prediction file")
    _require(isinstance(predictions, dict) and all(isinstance(text, str) for text in predictions.values()),
             path, "prediction file: expected an object mapping question ids to answer strings")
    return predictions


def load_na_probs(path: str) -> dict[str, float]:
    """{question id: probability that it has no answer}, the official --na-prob-file.

        load_na_probs("null_odds.json")                 # {"56ddde6b9a695914005b9628": 0.02, ...}
    """
    na_probs = _read_json(path, "no-answer probability file")
    _require(isinstance(na_probs, dict) and all(
        isinstance(p, (int, float)) and not isinstance(p, bool) and not math.isnan(p) for p in na_probs.values()),
        path, "no-answer probability file: expected an object mapping question ids to numbers")
    return na_probs
