"""Label-map conventions shared by every package: 0 is the background, 1..K the manifest's
classes in order, and ``IGNORE`` marks a pixel that is unlabelled (a seed map's undecided
pixels, a crop's padding, VOC's object borders): no loss is taken and no score counted there.
"""

IGNORE = 255   # the PASCAL VOC convention


def label_of_best(scores, labels, threshold: float):
    """(N,) int64: for each row of ``scores`` (N, C), ``labels[c]`` of its largest score c when that
    score is at least ``threshold``, else 0 (background / noise). ``labels`` (C,) gives the label
    of each column; an empty ``scores`` gives all zeros."""
    import numpy as np

    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    out = np.zeros(scores.shape[0], dtype=np.int64)
    if scores.shape[0] == 0 or scores.shape[1] == 0:
        return out
    best = scores.argmax(axis=1)
    keep = scores[np.arange(scores.shape[0]), best] >= threshold
    out[keep] = labels[best[keep]]
    return out
