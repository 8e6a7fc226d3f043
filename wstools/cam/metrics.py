"""Classification metrics of the multi-label classifier."""

from __future__ import annotations

import numpy as np


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Average precision of one class: the mean, over the positive samples, of the
    precision among all samples scored at least as high as that positive (ties
    counted pessimistically: every tied sample is ranked before it). ``scores``,
    ``targets``: (N,); NaN when there is no positive."""
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets) > 0
    n_pos = int(targets.sum())
    if n_pos == 0:
        return float("nan")
    pos_scores = scores[targets]
    sorted_all = np.sort(scores)
    sorted_pos = np.sort(pos_scores)
    # for each positive: samples (and positives) with score >= its score
    ranked = len(scores) - np.searchsorted(sorted_all, pos_scores, side="left")
    hits = n_pos - np.searchsorted(sorted_pos, pos_scores, side="left")
    return float(np.mean(hits / ranked))


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes (with at least one positive) of :func:`average_precision`;
    ``scores``, ``targets``: (N, K). NaN when no class has a positive."""
    scores = np.asarray(scores)
    targets = np.asarray(targets)
    aps = [average_precision(scores[:, k], targets[:, k]) for k in range(scores.shape[1])]
    aps = [a for a in aps if not np.isnan(a)]
    return float(np.mean(aps)) if aps else float("nan")
