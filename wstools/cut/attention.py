"""The attention-only baseline: each proposal takes its most probable allowed label.

Fan et al. ECCV 2018 Table 1a "attention" row (tags from the attention module
alone, no graph); LIID without the knowledge graph (Tables 1-5, first number of
each pair). Ties go to the lower label.
"""

from __future__ import annotations

import numpy as np


def attention_labels(prob: np.ndarray, allowed: np.ndarray, *, background: bool = True) -> np.ndarray:
    """argmax over allowed labels of ``prob`` (M, K+1) -> (M,) int64. ``background=False`` never
    picks label 0 while an object label is allowed (Fan et al.'s attention module has no background)."""
    p = np.where(allowed, np.asarray(prob, dtype=np.float64), -np.inf)
    if not background:
        fg = allowed[:, 1:].any(axis=1)
        p[fg, 0] = -np.inf
    return np.argmax(p, axis=1).astype(np.int64)


def attention_cut(indptr, indices, weights, prob, allowed):
    """:func:`attention_labels` as a :class:`~wstools.cut.multiway.CutResult`, the graph used only
    for its component sizes: ``objective`` = sum of the chosen probabilities, no bound (NaN), gap 0,
    every component exact. CSR (M+1,), (E,), (E,); prob, allowed (M, K+1)."""
    from .multiway import CutResult, components, upper_edges

    prob = np.asarray(prob)
    M = prob.shape[0]
    labels = attention_labels(prob, allowed)
    eu, ev, _ = upper_edges(indptr, indices, weights)
    n_comp, comp = components(M, eu, ev)
    sizes = np.bincount(comp, minlength=n_comp)
    return CutResult(labels=labels, objective=float(np.asarray(prob, dtype=np.float64)[np.arange(M), labels].sum()),
                     bound=float("nan"), gap=0.0, component_sizes=sizes,
                     component_exact=np.ones(n_comp, dtype=bool), stats={})
