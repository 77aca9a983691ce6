"""SQuAD scoring with the numbers of the official evaluation scripts (v2.0, and v1.1 on request).

    python -m funnel_tfm.squad_eval dev-v2.0.json predictions.json --na-prob-file null_odds.json
    python -m funnel_tfm.squad_eval dev-v1.1.json predictions.json --v1.1       # {"exact_match": ..., "f1": ...}

    dataset = load_dataset("dev-v2.0.json")                  # the file's "data" list
    evaluate(dataset, {"56ddde6b9a695914005b9628": "France", ...})
    # {"exact": 71.2, "f1": 74.5, "total": 11873, "HasAns_exact": ..., "NoAns_total": 5945}
    evaluate(dataset, predictions, na_probs)                 # + best_exact, best_exact_thresh, best_f1, best_f1_thresh
    evaluate_v1_1(dataset, predictions)                      # {"exact_match": 81.2, "f1": 88.5}

Both are written from the scripts' semantics, not copied, and agree with them to the last bit on every input the
scripts accept, bar NaN probabilities, refused here (tests/test_squad_eval.py runs the scripts themselves, from
pinned wheels, on random predictions):
answers are normalised (lower case, ASCII punctuation dropped, the words a / an / the dropped, white space
collapsed); exact match compares normalised strings; F1 is the token-bag F1 of the normalised strings; a question
scores its best gold answer. The floats are added in the scripts' order with the same formulas, because the
last digits of a sum depend on both.

Where the two scripts differ (v2.0 numbers on v1.1 data are *not* always the v1.1 numbers):
- v2.0 drops gold answers that normalise to "" ("The", "."), unless all of them do; v1.1 keeps them, so an
  empty prediction matches such a gold answer only under v1.1.
- When a prediction and a gold answer both normalise to "", v2.0 gives F1 1 and v1.1 gives F1 0.
- v2.0 keys questions by id, so a repeated id counts once (the last copy's answers); v1.1 counts every copy.
- v1.1 fails on a question without answers (an unanswerable v2.0 question); `evaluate_v1_1` says so.
Otherwise v2.0's `exact` / `f1` equal v1.1's `exact_match` / `f1` (both in %; tf-models-official's v1.1 copy gives
fractions), missing predictions included under the rule below; to the bit up to Python 3.11, while from 3.12 on
sum() (v2.0) and += (v1.1) may round a float total differently in the last bit.

A missing prediction is reported ("Missing prediction for <id>", on stderr) and scores 0 in every number, and the
question still counts in every total (the v1.1 script's rule). The v2.0 script prints the line but then stops
with a KeyError; on every input it accepts (no prediction missing) the numbers here are its numbers.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math
import os
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


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


# ------------------------------------------------------------------------------------------ v2.0 numbers
def raw_scores(questions: Mapping[str, Question], predictions: Mapping[str, str],
               warn: Callable[[str], None] = _stderr) -> tuple[dict[str, float], dict[str, float]]:
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


def _precision_recall_curves(exact: Mapping[str, float], f1: Mapping[str, float], na_probs: Mapping[str, float],
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
             warn: Callable[[str], None] = _stderr) -> dict:
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
            curves = _precision_recall_curves(exact_raw, f1_raw, na_probs, questions)
            result.update({f"pr_{name}_ap": curve.average_precision for name, curve in curves.items()})
    return result


# ------------------------------------------------------------------------------------------ v1.1 numbers
def evaluate_v1_1(dataset: Sequence[Mapping], predictions: Mapping[str, str],
                  warn: Callable[[str], None] = _stderr) -> dict:
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


# ------------------------------------------------------------------------------------------------ images
def write_images(out_dir: str, dataset: Sequence[Mapping], predictions: Mapping[str, str],
                 na_probs: Mapping[str, float]) -> None:
    """The v2.0 script's plots (--out-image-dir): pr_exact.png, pr_f1.png, pr_oracle.png (when some question has an
    answer) and na_prob_hist_hasAns.png / na_prob_hist_noAns.png. Needs matplotlib, which is not a dependency:
    without it this says so on stderr and writes nothing.

        write_images("out/images", dataset, predictions, na_probs)
    """
    try:
        import matplotlib
        matplotlib.use("Agg")  # no display: files only
        import matplotlib.pyplot as plt
    except ImportError:
        _stderr(f"matplotlib is not installed: no images written to {out_dir}")
        return
    file_io.makedirs(out_dir)
    questions = questions_by_id(dataset)
    titles = {"exact": "Precision-Recall curve for Exact Match score", "f1": "Precision-Recall curve for F1 score",
              "oracle": "Oracle Precision-Recall curve (binary task of HasAns vs. NoAns)"}
    if any(question.has_answer for question in questions.values()):
        exact, f1 = raw_scores(questions, predictions, warn=lambda message: None)  # reported once, by evaluate
        for name, curve in _precision_recall_curves(exact, f1, na_probs, questions).items():
            _plot_curve(plt, curve, titles[name], os.path.join(out_dir, f"pr_{name}.png"))
    for name, wanted in (("hasAns", True), ("noAns", False)):
        values = [na_probs[qid] for qid, question in questions.items()
                  if question.has_answer == wanted and qid in na_probs]
        if values:
            plt.hist(values, weights=[1.0 / len(values)] * len(values), bins=20, range=(0.0, 1.0))
            plt.xlabel("Model probability of no-answer")
            plt.ylabel("Proportion of dataset")
            plt.title(f"Histogram of no-answer probability: {name}")
            plt.savefig(os.path.join(out_dir, f"na_prob_hist_{name}.png"))
            plt.clf()


def _plot_curve(plt, curve: PrecisionRecall, title: str, path: str) -> None:
    plt.step(curve.recalls, curve.precisions, color="b", alpha=0.2, where="post")
    plt.fill_between(curve.recalls, curve.precisions, step="post", alpha=0.2, color="b")
    plt.xlabel("Recall")
    plt.ylabel("Precision")
    plt.xlim([0.0, 1.05])
    plt.ylim([0.0, 1.05])
    plt.title(title)
    plt.savefig(path)
    plt.clf()


# ------------------------------------------------------------------------------------------------ CLI
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m funnel_tfm.squad_eval",
        description="SQuAD evaluation with the official v2.0 script's options and numbers (v1.1 with --v1.1).")
    parser.add_argument("data_file", metavar="data.json", help="Input data JSON file.")
    parser.add_argument("pred_file", metavar="pred.json", help="Model predictions.")
    parser.add_argument("--out-file", "-o", metavar="eval.json",
                        help="Write accuracy metrics to file (default is stdout).")
    parser.add_argument("--na-prob-file", "-n", metavar="na_prob.json",
                        help="Model estimates of probability of no answer.")
    parser.add_argument("--na-prob-thresh", "-t", type=float, default=1.0,
                        help='Predict "" if no-answer probability exceeds this (default = 1.0).')
    parser.add_argument("--out-image-dir", "-p", metavar="out_images", default=None,
                        help="Save precision-recall curves to directory (with --na-prob-file; needs matplotlib).")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="Accepted for compatibility; the official script does nothing with it either.")
    parser.add_argument("--v1.1", dest="v1_1", action="store_true",
                        help='Print the official v1.1 script\'s {"exact_match", "f1"} instead.')
    return parser


def _run(args: argparse.Namespace) -> dict:
    dataset = load_dataset(args.data_file)
    predictions = load_predictions(args.pred_file)
    if args.v1_1:
        return evaluate_v1_1(dataset, predictions)
    if not args.na_prob_file:  # as the script, which ignores --out-image-dir then
        return evaluate(dataset, predictions, na_prob_thresh=args.na_prob_thresh)
    na_probs = load_na_probs(args.na_prob_file)
    try:
        check_na_probs(na_probs, questions_by_id(dataset), predictions)
    except SquadFormatError as error:
        raise SquadFormatError(f"{args.na_prob_file}: {error}") from None
    images = bool(args.out_image_dir)
    result = evaluate(dataset, predictions, na_probs, args.na_prob_thresh, precision_recall_ap=images)
    if images:
        write_images(args.out_image_dir, dataset, predictions, na_probs)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (1 with one line on stderr for a bad file).

        main(["dev-v2.0.json", "predictions.json", "--na-prob-file", "null_odds.json"])    # prints the JSON
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    if not argv:  # as the official script: help, then status 1
        parser.print_help()
        return 1
    args = parser.parse_args(argv)
    if args.v1_1 and (args.na_prob_file or args.out_image_dir):
        parser.error("--na-prob-file and --out-image-dir are v2.0 options; leave them out with --v1.1")
    try:
        result = _run(args)
    except SquadFormatError as error:
        _stderr(f"error: {error}")
        return 1
    if args.out_file:
        # The scripts' own layouts: compact JSON in the file, indented on stdout (v1.1 prints it compact).
        file_io.atomic_write_text(args.out_file, json.dumps(result))
    else:
        print(json.dumps(result) if args.v1_1 else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
