"""What a cut did, in numbers a user can act on: label distribution, reductions, phases, warnings."""

from __future__ import annotations

import numpy as np

REDUCTIONS = (("dominance", "fixed_by_dominance"), ("kovtun", "fixed_by_kovtun"),
              ("trivial", "solved_trivially"), ("lp", "solved_by_lp"), ("anytime", "solved_by_anytime"))


def label_distribution(labels, allowed, classes) -> dict:
    """Per class: ``kept`` = proposals labelled with it, ``noise`` = proposals whose image has the tag
    (the label was allowed) that ended as noise (0). Shapes: labels (M,), allowed (M, K+1)."""
    labels = np.asarray(labels)
    allowed = np.asarray(allowed, dtype=bool)
    K = allowed.shape[1] - 1
    kept = np.bincount(labels, minlength=K + 1)
    noise = labels == 0
    out = {"noise": int(kept[0])}
    for k in range(1, K + 1):
        out[str(classes[k - 1])] = {"kept": int(kept[k]), "noise": int((noise & allowed[:, k]).sum())}
    return out


def reduction_fractions(stats: dict, n: int) -> dict:
    """Fraction of the proposals settled by each step (engine stats; absent steps are 0)."""
    n = max(int(n), 1)
    return {name: round(float(stats.get(key, 0)) / n, 6) for name, key in REDUCTIONS}


def phase_seconds(stats: dict) -> dict:
    return {k[len("seconds_"):]: round(float(v), 3) for k, v in stats.items() if k.startswith("seconds_")}


def warnings_for(labels, unary, allowed, weights, *, method: str) -> list[str]:
    """Warnings when every proposal ends as noise or with one label; names the likely cause.

    The ratio compared is median edge weight / median margin of the unaries (best minus second best
    allowed probability): when it is large, the pairwise terms dominate and the energy's optimum
    puts one label on whole clusters (LIID Eq. 10's delta, ``ws graph --delta``).
    """
    labels = np.asarray(labels)
    if labels.size < 2:
        return []
    u = np.where(allowed, np.asarray(unary, dtype=np.float64), -np.inf)
    part = -np.partition(-u, 1, axis=1)[:, :2] if u.shape[1] > 1 else np.zeros((u.shape[0], 2))
    margin = part[:, 0] - part[:, 1]
    margin = margin[np.isfinite(margin)]
    w = np.asarray(weights, dtype=np.float64)
    med_w = float(np.median(w)) if w.size else 0.0
    med_m = float(np.median(margin)) if margin.size else 0.0
    cause = (f"median edge weight {med_w:.3g} vs median unary margin {med_m:.3g} (ratio "
             f"{med_w / max(med_m, 1e-12):.3g}): the pairwise weights dominate; rebuild the graph with a smaller "
             "`ws graph --delta` (LIID Eq. 10) or fewer neighbours (--knn)")
    if (labels == 0).all():
        what = "every proposal is labelled noise (0)" if method != "fan" else "no proposal is kept"
        return [f"{what}; this is the energy's optimum, not a failure: {cause}"]
    uniq = np.unique(labels[labels > 0])
    if uniq.size == 1 and (labels > 0).all() and allowed[:, 1:].any(1).sum() > 1 and method != "attention":
        return [f"every proposal has the same label {int(uniq[0])}: {cause}"]
    return []
