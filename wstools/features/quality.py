"""How well per-proposal probabilities separate true instances from noise proposals.

LIID's cut can only keep a proposal whose probabilities favour its class over noise; the
ranking measured here (an AUC) says whether a MIL network or a CAM score does that at all.
``truth`` is what ``ws features`` stores: the class of the GT instance a proposal overlaps with
mask IoU >= 0.5, else 0.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` (M,) for the boolean labels ``positive`` (M,):
    the probability that a random positive scores above a random negative (ties count half;
    the Mann-Whitney U statistic). NaN when either class is empty."""
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(score, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def instance_score(prob: np.ndarray, allowed: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(M,) score of each proposal for the AUC of :func:`true_label_auc`: p(true label) for a
    true instance (truth > 0), the largest p over its image's tags for a noise proposal (the
    best object label the cut could give it). prob, allowed (M, K+1); truth (M,)."""
    prob = np.asarray(prob, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.int64)
    best_tag = np.where(np.asarray(allowed, dtype=bool)[:, 1:], prob[:, 1:], -np.inf).max(axis=1, initial=-np.inf)
    best_tag = np.where(np.isfinite(best_tag), best_tag, 0.0)
    return np.where(truth > 0, prob[np.arange(truth.size), truth], best_tag)


def class_pairs(prob: np.ndarray, allowed: np.ndarray, truth: np.ndarray):
    """(positive, score) over every (proposal, tag c of its image) pair whose proposal is a true
    instance of c (positive) or a noise proposal (truth 0, negative); score = p_c. Pairs of a
    true instance with another tag are left out."""
    prob = np.asarray(prob, dtype=np.float64)
    allowed = np.asarray(allowed, dtype=bool)
    truth = np.asarray(truth, dtype=np.int64)
    v, c = np.nonzero(allowed[:, 1:])
    c = c + 1
    keep = (truth[v] == c) | (truth[v] == 0)
    v, c = v[keep], c[keep]
    return truth[v] == c, prob[v, c]


def true_label_auc(prob: np.ndarray, allowed: np.ndarray, truth: np.ndarray) -> dict:
    """``auc_true_label``: AUC of p_c over :func:`class_pairs` (for each tag c: the true
    instances of c vs the noise proposals of images tagged c); ``auc_best_tag``: AUC of
    :func:`instance_score`; ``auc_objectness``: AUC of 1 - p_noise (true instances vs noise);
    mean p_noise of both groups."""
    prob = np.asarray(prob, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.int64)
    pos = truth > 0
    return {"auc_true_label": auc(*class_pairs(prob, allowed, truth)),
            "auc_best_tag": auc(pos, instance_score(prob, allowed, truth)),
            "auc_objectness": auc(pos, 1.0 - prob[:, 0]),
            "p_noise_true": float(prob[pos, 0].mean()) if pos.any() else float("nan"),
            "p_noise_noise": float(prob[~pos, 0].mean()) if (~pos).any() else float("nan")}
