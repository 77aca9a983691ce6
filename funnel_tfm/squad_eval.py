"""SQuAD scoring with the numbers of the official evaluation scripts (the rules of the data file's version).

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
import json
import os
import sys
from typing import Mapping, Sequence

from funnel_tfm import file_io
from funnel_tfm.tasks.squad_metrics import (PrecisionRecall, SquadFormatError, precision_recall_curves, print_to_stderr,
                                            check_na_probs, dataset_version, evaluate, evaluate_v1_1, exact_score,
                                            f1_score,
                                            f1_score_v1_1, load_dataset, load_na_probs, load_predictions,
                                            normalize_answer, questions_by_id, raw_scores)

__all__ = ["evaluate", "evaluate_v1_1", "exact_score", "f1_score", "f1_score_v1_1", "load_dataset", "main",
           "normalize_answer", "write_images"]


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
        print_to_stderr(f"matplotlib is not installed: no images written to {out_dir}")
        return
    file_io.makedirs(out_dir)
    questions = questions_by_id(dataset)
    titles = {"exact": "Precision-Recall curve for Exact Match score", "f1": "Precision-Recall curve for F1 score",
              "oracle": "Oracle Precision-Recall curve (binary task of HasAns vs. NoAns)"}
    if any(question.has_answer for question in questions.values()):
        exact, f1 = raw_scores(questions, predictions, warn=lambda message: None)  # reported once, by evaluate
        for name, curve in precision_recall_curves(exact, f1, na_probs, questions).items():
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
                        help='Score with the official v1.1 script\'s rules and print its {"exact_match", "f1"} '
                             '(default: the rules of the data file\'s "version").')
    parser.add_argument("--v2.0", dest="v2_0", action="store_true",
                        help="Score with the official v2.0 script's rules, whatever the data file's version.")
    return parser


def rules_for(args: argparse.Namespace) -> tuple[str, str]:
    """("v1.1" or "v2.0", why): --v1.1 / --v2.0, else the v2.0-only options, else the data file's "version"
    (1.1: v1.1; anything else or none: v2.0, what the official v2.0 script applies to every file)."""
    if args.v1_1:
        return "v1.1", "--v1.1"
    if args.v2_0:
        return "v2.0", "--v2.0"
    if args.na_prob_file or args.out_image_dir:
        return "v2.0", "--na-prob-file / --out-image-dir are v2.0 options"
    version = dataset_version(args.data_file)
    if version is not None and version.lower().lstrip("v") == "1.1":
        return "v1.1", f'the data file\'s "version" is {version!r}; --v2.0 for the v2.0 rules'
    shown = f'"version" {version!r}' if version is not None else 'no "version"'
    return "v2.0", f"the data file has {shown}; --v1.1 for the v1.1 rules"


def _run(args: argparse.Namespace, rules: str) -> dict:
    dataset = load_dataset(args.data_file)
    predictions = load_predictions(args.pred_file)
    if rules == "v1.1":
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
    if args.v1_1 and args.v2_0:
        parser.error("--v1.1 and --v2.0: give one of them")
    if args.out_file and os.path.isdir(args.out_file):
        parser.error(f"--out-file={args.out_file} is a directory; name the JSON file to write")
    try:
        rules, why = rules_for(args)
        result = _run(args, rules)
    except SquadFormatError as error:
        print_to_stderr(f"error: {error}")
        return 1
    print_to_stderr(f"squad_eval: the official {rules} script's rules ({why})")
    if args.out_file:
        # The scripts' own layouts: compact JSON in the file, indented on stdout (v1.1 prints it compact).
        file_io.atomic_write_text(args.out_file, json.dumps(result))
    else:
        print(json.dumps(result) if "exact_match" in result else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
