"""Oracle inputs for the tag-assignment methods, and how much correct evidence a labelling keeps.

How a method is proven (DESIGN.md): fed probabilities derived from the ground truth, the cut
must keep (nearly) every proposal that the probabilities alone label correctly. ``truth`` is
what ``ws features`` stores per proposal: the class of the ground-truth instance it overlaps
with mask IoU >= 0.5, else 0 (noise).
"""

from __future__ import annotations

import numpy as np


def oracle_probabilities(truth: np.ndarray, allowed: np.ndarray, p_true: float = 0.6) -> np.ndarray:
    """(M, K+1) float32 probabilities: ``p_true`` on each proposal's true label (0 = noise), the
    rest spread evenly over its other allowed labels (0 elsewhere; a proposal whose only allowed
    label is its truth gets 1). ``truth`` (M,) int in 0..K, ``allowed`` (M, K+1) bool (tags + 0).
    A true label outside ``allowed`` (a GT instance of an untagged class) is an error."""
    truth = np.asarray(truth, dtype=np.int64)
    allowed = np.asarray(allowed, dtype=bool)
    M, L = allowed.shape
    rows = np.arange(M)
    if not allowed[rows, truth].all():
        raise ValueError("a true label is not allowed by its image's tags")
    others = allowed.copy()
    others[rows, truth] = False
    n_other = others.sum(axis=1)
    rest = np.where(n_other > 0, (1.0 - p_true) / np.maximum(n_other, 1), 0.0)
    prob = others * rest[:, None]
    prob[rows, truth] = np.where(n_other > 0, p_true, 1.0)
    return prob.astype(np.float32)


def kept_instances(labels: np.ndarray, truth: np.ndarray, reference: np.ndarray | None = None) -> tuple[int, int]:
    """(kept, total): of the true instances (proposals with truth > 0) that ``reference`` labels
    correctly (default: all of them, as the oracle's argmax does), how many ``labels`` label
    correctly too. Shapes (M,) int."""
    labels, truth = np.asarray(labels), np.asarray(truth)
    ok = truth > 0
    if reference is not None:
        ok &= np.asarray(reference) == truth
    return int((labels[ok] == truth[ok]).sum()), int(ok.sum())
