"""CAM quality as IRN measures it (Ahn et al., CVPR 2019, ``eval_cam.py``).

Background threshold sweep: for a threshold t the label map of an image is
``argmax`` over ``[t, cam_1, ..., cam_C]`` (a constant background score t in front
of the image's C class maps, each in [0, 1]); a pixel is foreground only where
the best CAM exceeds t strictly (ties go to background, as numpy's argmax picks
the first maximum). Each t gets its own VOC confusion matrix over the set (GT
255 ignored); the reported curve is mIoU(t) and the best threshold its argmax.
IRN sweeps 0.05 ... 0.95 and reports the best (0.16 for its CAMs on VOC).

Classification mAP: per class the non-interpolated average precision of the
classifier scores over images (the area under the precision-recall step
function, ties grouped; scikit-learn's ``average_precision_score``), then the
mean over classes that have positive images.
"""

from __future__ import annotations

import numpy as np

from .semantic import confusion

DEFAULT_THRESHOLDS = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2))


def threshold_confusions(cams: np.ndarray, labels: np.ndarray, gt: np.ndarray, num_classes: int,
                         thresholds=DEFAULT_THRESHOLDS) -> np.ndarray:
    """(T, K+1, K+1) confusion matrices of one image, one per background threshold.

    Parameters
    ----------
    cams : (C, H, W) float in [0, 1], the maps of classes ``labels``
    labels : (C,) int in 1..K
    gt : (H, W) uint8 in 0..K, 255 = ignore
    """
    cams = np.asarray(cams, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    n = num_classes + 1
    out = np.zeros((len(thresholds), n, n), dtype=np.int64)
    if cams.shape[0] == 0:
        best = np.zeros(gt.shape, dtype=np.float32)
        arg = np.zeros(gt.shape, dtype=np.uint8)
    else:
        best = cams.max(axis=0)
        arg = labels.astype(np.uint8)[cams.argmax(axis=0)]
    for i, t in enumerate(thresholds):
        pred = np.where(best > t, arg, np.uint8(0)).astype(np.uint8)
        out[i] = confusion(gt, pred, num_classes)
    return out


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float | None:
    """Non-interpolated AP of one class: ``sum_k (R_k - R_{k-1}) P_k`` over distinct score
    thresholds (scikit-learn's definition). None when there is no positive."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    targets = np.asarray(targets).astype(bool).reshape(-1)
    n_pos = int(targets.sum())
    if n_pos == 0:
        return None
    order = np.argsort(-scores, kind="mergesort")
    s, t = scores[order], targets[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]   # end of each run of tied scores
    tps = np.cumsum(t)[last].astype(np.float64)
    fps = (last + 1) - tps
    precision = tps / (tps + fps)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def classification_map(scores: np.ndarray, targets: np.ndarray) -> dict:
    """(N, K) scores and (N, K) multi-hot targets -> ``{"map", "per_class": [AP or None]}``."""
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets)
    per = [average_precision(scores[:, k], targets[:, k]) for k in range(scores.shape[1])]
    valid = [v for v in per if v is not None]
    return {"map": float(np.mean(valid)) if valid else None, "per_class": per}
