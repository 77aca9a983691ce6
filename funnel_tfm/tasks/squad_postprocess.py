"""The model's beams -> answer text, n-best lists and null scores, as the original's `make_predictions` (§6.3.5).

    answers = make_predictions(outputs, index, contexts, n_best_size=5, max_answer_length=64)
    answers.predictions["56be4db0acb8001400a502ec"]    # "Denver Broncos"
    answers.nbest[...][0]                               # {"text", "probability", "start_log_prob", "end_log_prob"}
    answers.null_odds[...]                              # min over windows of the answer-class logit (> 0: "no answer")

`outputs` are the model's inference outputs for every evaluation feature in record order (`start_top_index`,
`start_top_log_probs`, `end_top_index`, `end_top_log_probs`, `cls_logits`); `index` is the records' feature index
(`squad_data.feature_index`), `contexts` the paragraphs. For each question every (start, end) beam of every window
is a candidate unless the end is before the start, the answer is longer than `max_answer_length` tokens, the
start is not at its best-context window, or either end is outside the window's paragraph tokens. Candidates are
ranked by `start_log_prob + end_log_prob` (a stable sort), the first `n_best_size` distinct texts are kept, and the
prediction is the best text (never empty); whether to answer at all is the null score's business.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Any, Mapping, Sequence

import numpy as np

from funnel_tfm import file_io

_NO_CANDIDATE_LOG_PROB = -1e6


@dataclasses.dataclass
class SquadAnswers:
    predictions: dict[str, str]
    nbest: dict[str, list[dict[str, Any]]]
    null_odds: dict[str, float]


def _candidates(outputs: Mapping[str, np.ndarray], f: int, feature: Mapping[str, Any], conditional_end: bool,
                max_answer_length: int) -> list[tuple[float, int, int, float, float]]:
    """(total, start token, end token (paragraph tokens), start_lp, end_lp) of feature `f`'s legal beams."""
    starts, ends = outputs["start_top_index"][f], outputs["end_top_index"][f]
    start_lps, end_lps = outputs["start_top_log_probs"][f], outputs["end_top_log_probs"][f]
    offset, length = feature["doc_offset"], feature["window_length"]
    max_context = feature["max_context"]
    end_n_top = len(ends) // len(starts) if conditional_end else len(ends)
    found = []
    for i, start in enumerate(starts):
        for j in range(end_n_top):
            j_index = i * end_n_top + j if conditional_end else j
            end = ends[j_index]
            s, e = int(start) - offset, int(end) - offset
            if not (0 <= s < length and 0 <= e < length) or e < s or e - s + 1 > max_answer_length:
                continue
            if max_context[s] != "1":
                continue
            found.append((float(start_lps[i]) + float(end_lps[j_index]), feature["window_start"] + s,
                          feature["window_start"] + e, float(start_lps[i]), float(end_lps[j_index])))
    return found


def make_predictions(outputs: Mapping[str, np.ndarray], index: Mapping[str, Any], contexts: Sequence[str],
                     n_best_size: int = 5, max_answer_length: int = 64, conditional_end: bool = True,
                     use_answer_class: bool = True) -> SquadAnswers:
    """Predictions, n-best lists and null scores of every question in `index` (see the module docstring)."""
    by_question: dict[int, list[int]] = collections.defaultdict(list)
    for f, feature in enumerate(index["features"]):
        by_question[feature["example_index"]].append(f)
    answers = SquadAnswers({}, {}, {})
    for q, question in enumerate(index["questions"]):
        context = contexts[question["context"]]
        spans = index["contexts"][question["context"]]
        score_null = float("inf")
        candidates = []
        for f in by_question.get(q, []):
            score_null = min(score_null, float(outputs["cls_logits"][f]))
            candidates += _candidates(outputs, f, index["features"][f], conditional_end, max_answer_length)
        candidates.sort(key=lambda c: c[0], reverse=True)  # stable: ties keep window and beam order
        nbest, seen = [], set()
        for total, s, e, start_lp, end_lp in candidates:
            text = context[spans["starts"][s]:spans["ends"][e]].strip()
            if text in seen:
                continue
            seen.add(text)
            nbest.append({"text": text, "start_log_prob": start_lp, "end_log_prob": end_lp})
            if len(nbest) >= n_best_size:
                break
        if not nbest:
            nbest.append({"text": "", "start_log_prob": _NO_CANDIDATE_LOG_PROB,
                          "end_log_prob": _NO_CANDIDATE_LOG_PROB})
        totals = np.array([n["start_log_prob"] + n["end_log_prob"] for n in nbest])
        probabilities = np.exp(totals - totals.max())
        probabilities /= probabilities.sum()
        answers.nbest[question["id"]] = [{"text": n["text"], "probability": float(p),
                                          "start_log_prob": n["start_log_prob"], "end_log_prob": n["end_log_prob"]}
                                         for n, p in zip(nbest, probabilities)]
        best = nbest[0]
        answers.predictions[question["id"]] = best["text"]
        answers.null_odds[question["id"]] = (score_null if use_answer_class
                                             else score_null - (best["start_log_prob"] + best["end_log_prob"]))
    return answers


def write_answers(answers: SquadAnswers, predict_dir: str, prefix: str) -> dict[str, str]:
    """`{prefix}.predictions.json`, `.nbest_predictions.json`, `.null_odds.json` in `predict_dir` (indent 4, as
    the original), each written whole or not at all; returns their paths."""
    paths = {}
    for name, value in (("predictions", answers.predictions), ("nbest_predictions", answers.nbest),
                        ("null_odds", answers.null_odds)):
        paths[name] = os.path.join(predict_dir, f"{prefix}.{name}.json")
        file_io.atomic_write_text(paths[name], json.dumps(value, indent=4, ensure_ascii=False) + "\n")
    return paths
