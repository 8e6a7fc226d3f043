"""Proposal probabilities from class activation maps.

CAMs ``A`` are (C, H, W) float in [0, 1] for the image's C tagged classes (``labels`` in 1..K),
as ``ws cam infer`` stores them. For proposal j with box b_j = (x0, y0, x1, y1) (pixels,
xyxy, x1/y1 exclusive after rounding) and mask S_j, the score of tagged class k is

* ``box-mean``: mean of A_k over the box (Fan et al. ECCV 2018 Eq. 2; the printed equation has
  a leading minus sign, a typo: with it the argmax would pick the *least* activated class);
* ``mean+max``: mean + max of A_k over the box (LIID Eq. 3, R in [0, 2]);
* ``mask-mean``: mean of A_k over the mask (LIID Table 4's mask-level pooling, mean only).

Normalisation (what ``ws features`` writes in ``prob``): each score is divided by its maximum
possible value (2 for mean+max, 1 otherwise) so s_k in [0, 1]; untagged classes get 0. The
noise column s_0 is either ``threshold`` = eta / max (LIID Eq. 3: a proposal is noise when all
R_k < eta, so argmax over [s_0, s_1..s_K] reproduces Eq. 3's pseudo label exactly) or
``1-max`` = 1 - max_k s_k; the row [s_0 .. s_K] is then divided by its sum (rows sum to 1;
an all-zero row becomes [1, 0, ..., 0]). Division by a positive row sum keeps the argmax.
``none``: s_0 = 0 and no division: the class columns are the scores themselves, as Fan et al.
Eq. 2 defines p_i (their attention module has no noise class; Eq. 8 rejects noise by the
retention ratio instead). A noise column of eta = 0.75 and the division would shrink every
p_i by 1 / (0.75 + sum_k s_k), i.e. rescale beta * p_i of Eq. 7-8 per proposal.
"""

from __future__ import annotations

import numpy as np

from ..labels import label_of_best

SCORE_MAX = {"box-mean": 1.0, "mean+max": 2.0, "mask-mean": 1.0}


def _box_slices(box, height: int, width: int):
    """Integer pixel ranges of an xyxy float box, clipped, at least one pixel."""
    x0, y0, x1, y1 = (float(v) for v in box)
    c0 = int(np.clip(np.floor(x0), 0, width - 1))
    r0 = int(np.clip(np.floor(y0), 0, height - 1))
    c1 = int(np.clip(np.ceil(x1), c0 + 1, width))
    r1 = int(np.clip(np.ceil(y1), r0 + 1, height))
    return slice(r0, r1), slice(c0, c1)


def cam_scores(cams: np.ndarray, boxes: np.ndarray, method: str = "mean+max", masks=None) -> np.ndarray:
    """Raw CAM score of every proposal for every CAM.

    cams: (C, H, W) float in [0, 1]; boxes: (P, 4) float xyxy pixels; masks: (P, H, W) bool
    (needed for ``mask-mean``). Returns (P, C) float32: box mean (Fan Eq. 2, sign typo fixed),
    box mean + max (LIID Eq. 3) or mask mean. An empty mask scores 0.
    """
    cams = np.asarray(cams, dtype=np.float32)
    C, H, W = cams.shape
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    P = boxes.shape[0]
    out = np.zeros((P, C), dtype=np.float32)
    if method not in SCORE_MAX:
        raise ValueError(f"unknown method {method!r}")
    if C == 0 or P == 0:
        return out
    if method == "mask-mean":
        if masks is None:
            raise ValueError("mask-mean needs masks")
        m = np.asarray(masks, dtype=np.float32).reshape(P, H * W)
        area = m.sum(axis=1)
        s = m @ cams.reshape(C, H * W).T
        return np.where(area[:, None] > 0, s / np.maximum(area[:, None], 1), 0).astype(np.float32)
    for j, b in enumerate(boxes):
        rs, cs = _box_slices(b, H, W)
        region = cams[:, rs, cs].reshape(C, -1)
        out[j] = region.mean(axis=1)
        if method == "mean+max":
            out[j] += region.max(axis=1)
    return out


def noise_column(scores: np.ndarray, method: str = "mean+max", noise: str = "threshold",
                 eta: float = 0.75) -> np.ndarray:
    """(P,) noise score s_0 from normalised class scores (P, K) in [0, 1]: ``threshold`` =
    eta / SCORE_MAX[method] (LIID Eq. 3), ``1-max`` = 1 - max_k s_k (0 columns: 1), ``none`` = 0
    (Fan et al. Eq. 2)."""
    scores = np.asarray(scores, dtype=np.float32)
    P = scores.shape[0]
    if noise == "threshold":
        return np.full(P, eta / SCORE_MAX[method], dtype=np.float32)
    if noise == "1-max":
        mx = scores.max(axis=1) if scores.shape[1] else np.zeros(P, np.float32)
        return np.clip(1.0 - mx, 0.0, 1.0).astype(np.float32)
    if noise == "none":
        return np.zeros(P, dtype=np.float32)
    raise ValueError(f"unknown noise {noise!r}")


def normalise_rows(s: np.ndarray) -> np.ndarray:
    """Rows divided by their sum; an all-zero row becomes [1, 0, ..., 0] (noise)."""
    s = np.asarray(s, dtype=np.float64)
    tot = s.sum(axis=1, keepdims=True)
    out = np.where(tot > 0, s / np.where(tot > 0, tot, 1), 0.0)
    zero = tot[:, 0] <= 0
    out[zero, 0] = 1.0
    return out.astype(np.float32)


def proposal_probabilities(cams, labels, boxes, num_classes: int, *, method: str = "mean+max",
                           noise: str = "threshold", eta: float = 0.75, masks=None) -> np.ndarray:
    """(P, K+1) float32 probabilities (column 0 = noise) of P proposals from an image's CAMs.

    cams (C, H, W) in [0, 1] of classes ``labels`` (C,) in 1..K; boxes (P, 4) xyxy; see the
    module docstring for the scores and the normalisation.
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    raw = cam_scores(cams, boxes, method, masks)
    P = raw.shape[0]
    s = np.zeros((P, num_classes + 1), dtype=np.float32)
    s[:, labels] = raw / SCORE_MAX[method]
    s[:, 0] = noise_column(s[:, 1:], method, noise, eta)
    if noise == "none":
        return s
    return normalise_rows(s)


def pseudo_labels(R: np.ndarray, labels, eta: float = 0.75) -> np.ndarray:
    """LIID Eq. 3: (P,) pseudo label of each proposal from R (P, C) (mean + max of the CAM of
    class ``labels[c]`` in its box): 0 when every R < eta, else the label of the largest R."""
    return label_of_best(np.asarray(R, dtype=np.float32), labels, eta)
