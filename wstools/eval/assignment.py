"""How well a tag assignment labelled the proposals (LIID, Liu et al. TPAMI, Table 7 style).

Each proposal's *true* label is the class of the ground-truth instance it
overlaps best when that IoU is >= 0.5, else 0 (noise: background, a distractor,
or a poor fragment). Against it the assignment is scored as a (K+1)-way
classification: accuracy, per-class precision / recall, noisy proposals kept
(true 0, assigned > 0) and good ones rejected (true > 0, assigned 0).

Instance coverage measures what the labelled proposals offer a downstream
Mask R-CNN: the fraction of ground-truth instances with at least one proposal
of IoU >= 0.5 that carries the instance's class. The *oracle* labels every
proposal with its true label; its coverage (any proposal of IoU >= 0.5) is the
upper bound any assignment of these proposals can reach.
"""

from __future__ import annotations

import numpy as np

from ..labels import label_of_best


def true_labels(iou: np.ndarray, gt_labels: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(P,) true label of each proposal from its (P, G) IoU with the ground truth (0 = noise)."""
    return label_of_best(np.asarray(iou, dtype=np.float64), gt_labels, threshold)


def coverage(iou: np.ndarray, gt_labels: np.ndarray, assigned: np.ndarray, threshold: float = 0.5):
    """Per ground-truth instance: (covered by a proposal assigned its class, covered by any proposal)."""
    iou = np.asarray(iou, dtype=np.float64)
    gt_labels = np.asarray(gt_labels, dtype=np.int64).reshape(-1)
    if iou.shape[0] == 0:
        z = np.zeros(len(gt_labels), dtype=bool)
        return z, z.copy()
    good = iou >= threshold                                       # (P, G)
    same = np.asarray(assigned).reshape(-1, 1) == gt_labels[None, :]
    return (good & same).any(axis=0), good.any(axis=0)


def assignment_scores(assigned: np.ndarray, true: np.ndarray, num_classes: int) -> dict:
    """Scores of assigned labels against true labels, both (M,) in 0..K.

    Returns accuracy, the (K+1, K+1) confusion (rows = true), per-class precision
    and recall (None for 0/0), ``noisy_kept`` and ``good_rejected`` counts, and
    ``wrong_class`` (true > 0, assigned another class > 0).
    """
    assigned = np.asarray(assigned, dtype=np.int64).reshape(-1)
    true = np.asarray(true, dtype=np.int64).reshape(-1)
    n = num_classes + 1
    conf = np.bincount(true * n + assigned, minlength=n * n).reshape(n, n)
    tp = np.diag(conf).astype(np.float64)
    pred_count = conf.sum(0)
    true_count = conf.sum(1)
    return {
        "proposals": int(len(true)),
        "accuracy": float((assigned == true).mean()) if len(true) else 0.0,
        "confusion": conf,
        "precision": [float(tp[i] / pred_count[i]) if pred_count[i] else None for i in range(n)],
        "recall": [float(tp[i] / true_count[i]) if true_count[i] else None for i in range(n)],
        "true_counts": true_count, "assigned_counts": pred_count,
        "noisy_kept": int(((true == 0) & (assigned > 0)).sum()),
        "good_rejected": int(((true > 0) & (assigned == 0)).sum()),
        "wrong_class": int(((true > 0) & (assigned > 0) & (assigned != true)).sum()),
    }


def assignment_report(assigned, true, num_classes: int, covered, oracle_covered, instance_labels,
                      class_names) -> tuple[dict, list]:
    """What ``ws eval assignment`` reports, from arrays over the whole dataset.

    assigned, true: (M,) labels in 0..K of every proposal; covered,
    oracle_covered: (G,) bool per ground-truth instance (see :func:`coverage`);
    instance_labels: (G,) their classes in 1..K; class_names: the K names.
    Returns ``(summary, per_class)``: the summary has accuracy, counts of noisy
    proposals kept, good ones rejected and wrong classes, and the instance
    coverage with its oracle bound; ``per_class`` one row per label 0..K (0 = noise).
    """
    res = assignment_scores(assigned, true, num_classes)
    covered = np.asarray(covered, dtype=bool)
    oracle_covered = np.asarray(oracle_covered, dtype=bool)
    instance_labels = np.asarray(instance_labels, dtype=np.int64)
    names = ["noise", *class_names]
    per_class = []
    for lab in range(num_classes + 1):
        row = {"label": lab, "class": names[lab], "true": int(res["true_counts"][lab]),
               "assigned": int(res["assigned_counts"][lab]), "precision": res["precision"][lab],
               "recall": res["recall"][lab]}
        if lab > 0:
            sel = instance_labels == lab
            row["instances"] = int(sel.sum())
            row["coverage"] = float(covered[sel].mean()) if sel.any() else None
            row["oracle_coverage"] = float(oracle_covered[sel].mean()) if sel.any() else None
        per_class.append(row)
    summary = {"accuracy": res["accuracy"], "proposals": res["proposals"],
               "noisy_kept": res["noisy_kept"], "good_rejected": res["good_rejected"],
               "wrong_class": res["wrong_class"], "true_noise": int(res["true_counts"][0]),
               "instances": int(len(covered)), "coverage": float(covered.mean()) if len(covered) else 0.0,
               "oracle_coverage": float(oracle_covered.mean()) if len(oracle_covered) else 0.0,
               "confusion": res["confusion"]}
    return summary, per_class
