"""Classification metrics of the multi-label classifier."""

from __future__ import annotations

import numpy as np

from ..eval.cams import average_precision as eval_average_precision


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Average precision of one class, ``scores``, ``targets``: (N,): the one definition of
    :func:`wstools.eval.cams.average_precision` (scikit-learn's, ties grouped) that ``ws eval
    cams`` reports, as a float for the training log; NaN when there is no positive."""
    ap = eval_average_precision(scores, targets)
    return float("nan") if ap is None else ap


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes (with at least one positive) of :func:`average_precision`;
    ``scores``, ``targets``: (N, K). NaN when no class has a positive."""
    scores = np.asarray(scores)
    targets = np.asarray(targets)
    aps = [average_precision(scores[:, k], targets[:, k]) for k in range(scores.shape[1])]
    aps = [a for a in aps if not np.isnan(a)]
    return float(np.mean(aps)) if aps else float("nan")
