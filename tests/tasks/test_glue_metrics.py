"""GLUE metrics against scikit-learn and scipy, on random and degenerate predictions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from sklearn import metrics as sk

from funnel_tfm.tasks.glue_metrics import glue_scores, main_score

pytestmark = pytest.mark.smoke


@pytest.mark.parametrize("n_class", [2, 3, 5])
def test_classification_metrics_equal_scikit_learn(n_class):
    rng = np.random.default_rng(n_class)
    for trial in range(20):
        n = int(rng.integers(1, 300))
        labels = rng.integers(0, n_class, n)
        # Mostly right predictions, some wrong, occasionally all one class (undefined F1 / MCC cases).
        predictions = np.where(rng.random(n) < 0.7, labels, rng.integers(0, n_class, n))
        if trial % 7 == 0:
            predictions = np.zeros(n, np.int64)
        ours = glue_scores(("accuracy", "f1", "mcc"), predictions, labels)
        assert ours["accuracy"] == pytest.approx(sk.accuracy_score(labels, predictions), abs=1e-12)
        assert ours["mcc"] == pytest.approx(sk.matthews_corrcoef(labels, predictions), abs=1e-12)
        if n_class == 2:
            expected_f1 = sk.f1_score(labels, predictions, pos_label=1, zero_division=0.0)
            assert ours["f1"] == pytest.approx(expected_f1, abs=1e-12)


def test_correlations_equal_scipy_with_ties():
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(3, 400))
        labels = np.round(rng.uniform(0, 5, n), 1)  # STS-B-like scores, many ties
        predictions = labels + rng.normal(0, 1.5, n)
        if trial % 4 == 0:
            predictions = np.round(predictions)  # ties on the prediction side too
        ours = glue_scores(("pearson", "spearman"), predictions, labels)
        assert ours["pearson"] == pytest.approx(scipy.stats.pearsonr(predictions, labels)[0], abs=1e-10)
        assert ours["spearman"] == pytest.approx(scipy.stats.spearmanr(predictions, labels)[0], abs=1e-10)


def test_undefined_correlation_is_zero_and_main_score_sums():
    assert glue_scores(("pearson", "spearman"), np.ones(5), np.arange(5.0)) == {"pearson": 0.0, "spearman": 0.0}
    scores = glue_scores(("f1", "accuracy"), np.array([1, 0, 1]), np.array([1, 1, 1]))
    assert scores["f1"] == pytest.approx(0.8) and scores["accuracy"] == pytest.approx(2 / 3)
    assert main_score(scores, "f1+accuracy") == pytest.approx(0.8 + 2 / 3)
    with pytest.raises(ValueError, match="unknown metric"):
        glue_scores(("bleu",), np.ones(2), np.ones(2))
