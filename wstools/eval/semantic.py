"""Semantic segmentation scores: one (K+1) x (K+1) confusion matrix, PASCAL VOC protocol.

The PASCAL VOC 2012 segmentation protocol (Everingham et al., IJCV 2015), used by
every weakly supervised semantic paper in the toolkit (Sun et al., DSRG, LIID's
semantic results, IRN): accumulate one confusion matrix over the whole set
(pixels whose ground truth is 255 are ignored), then per class

    IoU_c = TP_c / (TP_c + FP_c + FN_c)

and mIoU = mean of IoU_c over the K+1 classes (background included). A class
absent from both the ground truth and the prediction has no IoU (0/0) and is left
out of the mean (and listed).
"""

from __future__ import annotations

import numpy as np

UNLABELED = 255


def confusion(gt: np.ndarray, pred: np.ndarray, num_classes: int, *, unlabeled: str = "background") -> np.ndarray:
    """(K+1, K+1) int64 confusion matrix of one image: rows = ground truth, columns = prediction.

    Parameters
    ----------
    gt : (H, W) uint8 in 0..K, 255 = ignore (not counted)
    pred : (H, W) uint8 in 0..K, 255 = unlabeled (partial labels, e.g. seed cues)
    num_classes : K (foreground classes); labels are 0..K
    unlabeled : how prediction pixels equal to 255 count: ``"background"`` (as 0; Sun et al.
        score their cues this way) or ``"ignore"`` (not counted)

    Values of ``pred`` above K other than 255 raise ``ValueError``. One ``np.bincount``
    over ``gt * (K+1) + pred`` with ignored pixels sent to an overflow bin.
    """
    n = num_classes + 1
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"prediction is {pred.shape}, ground truth is {gt.shape}")
    if pred.dtype != np.uint8:
        if pred.size and (pred.min() < 0 or pred.max() > 255):
            raise ValueError("prediction values outside 0..255")
        pred = pred.astype(np.uint8)
    if gt.dtype != np.uint8:
        gt = gt.astype(np.uint8)
    # lookup tables map uint8 values to row / column offsets. Valid pairs land in [0, n*n);
    # ignored ones in [n*n, 3*n*n); a prediction above K (other than 255) in [3*n*n, 4*n*n).
    nn = n * n
    row_lut = np.full(256, nn, dtype=np.int64)
    row_lut[:n] = np.arange(n) * n
    col_lut = np.full(256, 3 * nn, dtype=np.int64)
    col_lut[:n] = np.arange(n)
    if unlabeled == "background":
        col_lut[UNLABELED] = 0
    elif unlabeled == "ignore":
        col_lut[UNLABELED] = nn
    else:
        raise ValueError(f"unlabeled must be 'background' or 'ignore', not {unlabeled!r}")
    idx = row_lut[gt.ravel()] + col_lut[pred.ravel()]
    counts = np.bincount(idx, minlength=4 * nn)
    if counts[3 * nn:].any():
        bad = pred[(pred > num_classes) & (pred != UNLABELED)]
        raise ValueError(f"prediction has label {int(bad.max())} > K={num_classes}")
    return counts[:nn].reshape(n, n)


def scores(conf: np.ndarray, class_names=None) -> dict:
    """VOC scores of a (K+1, K+1) confusion matrix (rows = ground truth, columns = prediction).

    Returns ``{"protocol": "voc", "miou", "pixel_accuracy", "mean_class_accuracy",
    "per_class": [{"label", "class", "iou", "precision", "recall", "gt_pixels",
    "pred_pixels"}], "absent_classes": [...], "pixels"}``. mIoU averages the classes
    that have an IoU; mean class accuracy averages recall over classes with
    ground-truth pixels. An undefined ratio (0/0) is ``None``, never NaN.
    """
    conf = np.asarray(conf, dtype=np.float64)
    n = conf.shape[0]
    names = ["background", *class_names] if class_names is not None else [str(i) for i in range(n)]
    tp = np.diag(conf)
    gt_pix = conf.sum(1)
    pred_pix = conf.sum(0)
    union = gt_pix + pred_pix - tp
    total = conf.sum()

    def ratio(a, b):
        return [float(x / y) if y > 0 else None for x, y in zip(a, b)]

    iou = ratio(tp, union)
    prec = ratio(tp, pred_pix)
    rec = ratio(tp, gt_pix)
    present = [v for v in iou if v is not None]
    recalls = [v for v in rec if v is not None]
    return {
        "protocol": "voc",
        "miou": float(np.mean(present)) if present else 0.0,
        "pixel_accuracy": float(tp.sum() / total) if total > 0 else 0.0,
        "mean_class_accuracy": float(np.mean(recalls)) if recalls else 0.0,
        "per_class": [{"label": i, "class": names[i], "iou": iou[i], "precision": prec[i], "recall": rec[i],
                       "gt_pixels": int(gt_pix[i]), "pred_pixels": int(pred_pix[i])} for i in range(n)],
        "absent_classes": [names[i] for i in range(n) if iou[i] is None],
        "pixels": int(total),
    }
