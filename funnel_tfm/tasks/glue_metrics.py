"""GLUE's metrics from whole-set predictions, on the host (numpy; checked against scikit-learn and scipy).

    scores = glue_scores(("f1", "accuracy"), predictions=[1, 0, 1], labels=[1, 1, 1])
    scores == {"f1": 0.8, "accuracy": 0.6667}      # (rounded here)
    main_score(scores, "f1+accuracy")

F1 and Matthews correlation treat label index 1 as the positive class (GLUE's binary tasks); Matthews
correlation generalises to K classes (Gorodkin's R_K, as scikit-learn); Pearson and Spearman (average ranks
for ties) compare regression outputs with gold scores. A metric that is undefined (a constant input) is 0.0,
as the original's streaming F1 / correlation.
"""

from __future__ import annotations

import numpy as np

METRICS = ("accuracy", "f1", "mcc", "pearson", "spearman")


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.asarray(predictions) == np.asarray(labels))) if len(labels) else 0.0


def f1(predictions: np.ndarray, labels: np.ndarray, positive: int = 1) -> float:
    predicted, actual = np.asarray(predictions) == positive, np.asarray(labels) == positive
    tp = float(np.sum(predicted & actual))
    denominator = float(np.sum(predicted) + np.sum(actual))
    return 2.0 * tp / denominator if denominator else 0.0


def matthews(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Matthews correlation over K classes from the confusion matrix (K = 2: (tp·tn − fp·fn) / sqrt(...))."""
    predictions, labels = np.asarray(predictions, np.int64), np.asarray(labels, np.int64)
    n_class = int(max(predictions.max(initial=0), labels.max(initial=0))) + 1
    confusion = np.zeros((n_class, n_class), np.float64)
    np.add.at(confusion, (labels, predictions), 1.0)
    total, correct = confusion.sum(), np.trace(confusion)
    true_counts, predicted_counts = confusion.sum(1), confusion.sum(0)
    numerator = correct * total - true_counts @ predicted_counts
    denominator = np.sqrt((total ** 2 - predicted_counts @ predicted_counts) * (total ** 2 - true_counts @ true_counts))
    return float(numerator / denominator) if denominator else 0.0


def pearson(predictions: np.ndarray, labels: np.ndarray) -> float:
    x, y = np.asarray(predictions, np.float64), np.asarray(labels, np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denominator) if denominator else 0.0


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(values)]])
    ranks = np.empty(len(values), np.float64)
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return ranks


def spearman(predictions: np.ndarray, labels: np.ndarray) -> float:
    x, y = np.asarray(predictions, np.float64), np.asarray(labels, np.float64)
    return pearson(_average_ranks(x), _average_ranks(y)) if len(x) else 0.0


_FUNCTIONS = {"accuracy": accuracy, "f1": f1, "mcc": matthews, "pearson": pearson, "spearman": spearman}


def glue_scores(metrics: tuple[str, ...], predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The named metrics of `predictions` (class indices, or values for regression) against `labels`."""
    unknown = [m for m in metrics if m not in _FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; expected some of {', '.join(METRICS)}")
    return {name: _FUNCTIONS[name](predictions, labels) for name in metrics}


def main_score(scores: dict[str, float], main_metric: str) -> float:
    """The number the best checkpoint is chosen by: one metric, or a `+`-joined sum (MRPC, QQP: f1+accuracy)."""
    return float(sum(scores[name] for name in main_metric.split("+")))
