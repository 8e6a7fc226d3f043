"""Proposal matching (Huang et al., Neurocomputing 2021, Sect. 3.2-3.3, Eq. 5, Algorithm 1) and
the plain score of Zhou et al. (CVPR 2018) for the ablation.

Every function takes one instance map ``V`` (H, W) float in [0, 1] (a naive or enhanced peak
response map) and proposal masks ``masks`` (P, H, W) bool of the same image.

Rebalanced score (Eq. 5), one value per proposal P:

    S = alpha * sum(V * P) / sum(P) + beta * sum(E(V) * P) + gamma * sum(B(V) * P)

with alpha, beta, gamma = 0.95, 0.1, 0.8 (the paper's). Sect. 4.6 sets "the final enhanced PRM
as a binary image"; the paper names a contour extractor E and a background extractor B without
defining them. Our reading (each alternative a parameter):

- V_b = V >= ``threshold`` (0.35 by default, V being min-max normalised); with ``binary``
  (default, Sect. 4.6) the first term uses V_b, else the soft V;
- E(V) = the contour of V_b: with ``contour_mode="inner"`` (default) its inner boundary,
  V_b AND NOT erosion(V_b) by a ``contour_width`` x ``contour_width`` square (3); with
  ``"band"`` the morphological gradient (dilation AND NOT erosion), whose outer half rewards a
  proposal for spilling one pixel past the map's outline: with GT-shaped maps the band makes
  a 1-pixel-dilated GT proposal win over the GT proposal itself, the inner boundary does not
  (tests/test_oracle_prm.py; on toy proposals the matched IoU rises 0.65 -> 0.70);
- B(V) = -(1 - dilation of V_b by a ``bg_dilation`` x ``bg_dilation`` square, 11): -1 on the
  background far from the instance, 0 near it — negative, so that with the paper's positive
  gamma the third term is the penalty the text describes ("takes background as a template to
  suppress irrelevant regions"); gamma = -0.8 with B = 1 - dilation is the same score.

The second and third terms are sums over pixels (not normalised, as Eq. 5 writes them); only
the first term carries the "multi-scale rebalance factor" 1 / sum(P) (Sect. 3.3: "of the
first term").

Plain score (Zhou et al. 2018, Sect. 3.3; their released ``instance_seg``), without
rebalancing:

    S = alpha * sum(V * P) + sum(V * C(P)) - beta * sum(Q * P)

with C(P) the proposal's contour (morphological gradient, ``contour_width``) and Q the same
background mask as above (1 - dilated binary map; Zhou et al. derive Q from the class response
map, Q = M_c < factor x mean(M_c), which the responses store does not keep). Their alpha and
beta are flags here (defaults 1.0 and 1.0: the values are not given in Huang et al.).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

ALPHA, BETA, GAMMA = 0.95, 0.1, 0.8


def binarize(v: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(H, W) float -> (H, W) bool ``v >= threshold``."""
    return np.asarray(v) >= threshold


def _square(n: int) -> np.ndarray:
    return np.ones((max(1, int(n)), max(1, int(n))), dtype=bool)


def contour(mask: np.ndarray, width: int = 3) -> np.ndarray:
    """Morphological gradient (dilation AND NOT erosion, ``width`` x ``width`` square) of a
    (H, W) bool mask: its outline band, (H, W) bool. ``width`` 1 gives an empty band."""
    mask = np.asarray(mask, dtype=bool)
    if width <= 1:
        return np.zeros_like(mask)
    s = _square(width)
    return ndimage.binary_dilation(mask, s) & ~ndimage.binary_erosion(mask, s, border_value=0)


def inner_contour(mask: np.ndarray, width: int = 3) -> np.ndarray:
    """Inner boundary (mask AND NOT erosion by a ``width`` x ``width`` square, the image border
    counting as outside) of a (H, W) bool mask, (H, W) bool. ``width`` 1 gives an empty band."""
    mask = np.asarray(mask, dtype=bool)
    if width <= 1:
        return np.zeros_like(mask)
    return mask & ~ndimage.binary_erosion(mask, _square(width), border_value=0)


CONTOUR_MODES = ("inner", "band")


def map_contour(mask: np.ndarray, width: int = 3, mode: str = "inner") -> np.ndarray:
    """E(V) of Eq. 5 on the binarised map: :func:`inner_contour` (``inner``) or
    :func:`contour` (``band``), (H, W) bool."""
    if mode == "inner":
        return inner_contour(mask, width)
    if mode == "band":
        return contour(mask, width)
    raise ValueError(f"unknown contour mode {mode!r} (one of {CONTOUR_MODES})")


def _contours(masks: np.ndarray, width: int) -> np.ndarray:
    """:func:`contour` of every mask of a (P, H, W) stack at once."""
    if width <= 1:
        return np.zeros_like(masks)
    s = np.ones((1, int(width), int(width)), dtype=bool)
    return ndimage.binary_dilation(masks, s) & ~ndimage.binary_erosion(masks, s, border_value=0)


def background(v: np.ndarray, threshold: float = 0.5, dilation: int = 5) -> np.ndarray:
    """1 - dilation of the binarised map: (H, W) float32, 1 on pixels far from the instance."""
    b = binarize(v, threshold)
    if dilation > 1:
        b = ndimage.binary_dilation(b, _square(dilation))
    return (~b).astype(np.float32)


def _flat(masks: np.ndarray) -> np.ndarray:
    masks = np.asarray(masks, dtype=bool)
    return masks.reshape(masks.shape[0], -1).astype(np.float32)


def rebalanced_scores(v: np.ndarray, masks: np.ndarray, alpha: float = ALPHA, beta: float = BETA,
                      gamma: float = GAMMA, threshold: float = 0.35, contour_width: int = 3,
                      bg_dilation: int = 11, contour_mode: str = "inner", binary: bool = True) -> np.ndarray:
    """Eq. 5 for every proposal: (P,) float64 (see the module docstring for V_b, E and B).

    ``v`` (H, W) float in [0, 1]; ``masks`` (P, H, W) bool."""
    v = np.asarray(v, dtype=np.float32)
    if len(masks) == 0:
        return np.zeros(0)
    flat = _flat(masks)
    area = np.maximum(flat.sum(1), 1.0)
    vb = binarize(v, threshold)
    first = vb.astype(np.float32) if binary else v
    e = map_contour(vb, contour_width, contour_mode).astype(np.float32)
    b = -background(v, threshold, bg_dilation)
    return (alpha * (flat @ first.ravel()) / area + beta * (flat @ e.ravel()) + gamma * (flat @ b.ravel())) \
        .astype(np.float64)


def plain_scores(v: np.ndarray, masks: np.ndarray, alpha: float = 1.0, beta: float = 1.0,
                 threshold: float = 0.35, contour_width: int = 3, bg_dilation: int = 11,
                 proposal_contours: np.ndarray | None = None) -> np.ndarray:
    """Zhou et al.'s score for every proposal: (P,) float64 (module docstring).
    ``proposal_contours`` (P, H, W) bool: the proposals' contours when already computed
    (they do not depend on ``v``: :func:`match_image` computes them once per image)."""
    v = np.asarray(v, dtype=np.float32)
    masks = np.asarray(masks, dtype=bool)
    if len(masks) == 0:
        return np.zeros(0)
    flat = _flat(masks)
    q = background(v, threshold, bg_dilation)
    if proposal_contours is None:
        proposal_contours = _contours(masks, contour_width)
    edge = proposal_contours.reshape(len(masks), -1).astype(np.float32) @ v.ravel()
    return (alpha * (flat @ v.ravel()) + edge - beta * (flat @ q.ravel())).astype(np.float64)


def score_proposals(v, masks, method: str = "rebalanced", **kw) -> np.ndarray:
    """``rebalanced`` (Eq. 5) or ``plain`` (Zhou et al.) scores, (P,)."""
    if method == "rebalanced":
        return rebalanced_scores(v, masks, **kw)
    if method == "plain":
        return plain_scores(v, masks, **kw)
    raise ValueError(f"unknown matching score {method!r}")


def score_parameters(method: str, alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA,
                     threshold: float = 0.35, contour_width: int = 3, bg_dilation: int = 11,
                     contour_mode: str = "inner", binary: bool = True, plain_alpha: float = 1.0,
                     plain_beta: float = 1.0) -> dict:
    """The keyword arguments of :func:`score_proposals` for ``method`` (``rebalanced`` takes
    alpha, beta, gamma, the contour mode and ``binary``; ``plain`` its own alpha and beta)."""
    common = {"threshold": threshold, "contour_width": contour_width, "bg_dilation": bg_dilation}
    if method == "plain":
        return {"alpha": plain_alpha, "beta": plain_beta, **common}
    return {"alpha": alpha, "beta": beta, "gamma": gamma, "contour_mode": contour_mode, "binary": binary, **common}


def topk_union(scores: np.ndarray, masks: np.ndarray, k: int = 3) -> np.ndarray:
    """The ICN's pseudo label (Huang et al. Sect. 3.2): walk the proposals by descending
    score and pick one only if it is not fully contained in the union of those picked
    before, until ``k`` are picked; return the union of the picks, (H, W) bool (all False
    when there are no proposals)."""
    masks = np.asarray(masks, dtype=bool)
    if len(masks) == 0:
        return np.zeros(masks.shape[1:], dtype=bool)
    union = np.zeros(masks.shape[1:], dtype=bool)
    picked = 0
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        if not (masks[i] & ~union).any():
            continue
        union |= masks[i]
        picked += 1
        if picked >= k:
            break
    return union


def pseudo_label(v: np.ndarray, masks: np.ndarray, k: int = 3, **score_kw) -> np.ndarray:
    """The ICN's training target for one naive PRM ``v`` (H, W) (Huang et al. Sect. 3.2): the
    proposals ``masks`` (P, H, W) bool scored by Eq. 5 against the min-max-normalised map
    (as :func:`match_image` scores), then :func:`topk_union`; (H, W) bool."""
    from .response import normalize_maps

    v = normalize_maps(np.asarray(v, dtype=np.float32)[None])[0]
    return topk_union(rebalanced_scores(v, masks, **score_kw), masks, k)


def mask_nms(masks: np.ndarray, scores: np.ndarray, labels: np.ndarray | None, iou: float) -> list:
    """Greedy NMS on mask IoU (Zhou et al.'s released ``instance_nms``: a detection is dropped
    when its mask IoU with a kept, higher-scored one reaches ``iou``). ``masks`` (N, H, W)
    bool, ``scores`` (N,); with ``labels`` (N,) only detections of the same label suppress
    each other, with ``None`` every detection does (Zhou et al.'s). Returns kept indices by
    descending score (ties: the earlier index first)."""
    masks = np.asarray(masks, dtype=bool)
    n = len(masks)
    if n == 0:
        return []
    flat = masks.reshape(n, -1).astype(np.float32)
    inter = flat @ flat.T
    area = flat.sum(1)
    ious = inter / np.maximum(area[:, None] + area[None, :] - inter, 1e-10)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep, dropped = [], np.zeros(n, bool)
    for i in order:
        if dropped[i]:
            continue
        keep.append(int(i))
        hit = ious[i] >= iou
        if labels is not None:
            hit &= np.asarray(labels) == labels[i]
        dropped |= hit
    return keep


NMS_MODES = ("box", "mask", "mask-all")


def match_image(maps: np.ndarray, peaks: np.ndarray, masks: np.ndarray, boxes: np.ndarray,
                method: str = "rebalanced", nms_iou: float = 0.5, score: str = "match", nms: str = "box",
                **kw) -> list:
    """Algorithm 1, lines 6-14, for one image.

    Parameters
    ----------
    maps : (N, H, W) float, one (enhanced) response map per instance; each is min-max
        normalised before scoring
    peaks : (N, 4) rows ``[label, y, x, peak score]``
    masks : (P, H, W) bool proposals; ``boxes`` (P, 4) their ``x0, y0, x1, y1``
    method : ``rebalanced`` (Eq. 5) or ``plain`` (Zhou et al.); ``kw`` go to the score
    nms_iou : IoU above which a lower-scored instance is dropped (line 14; two peaks matched
        to the same proposal have IoU 1)
    score : the detection score: ``match`` (the matching score, by which Zhou et al.'s
        released code ranks instances) or ``peak`` (the class activation at the peak); NMS
        keeps the higher detection score
    nms : ``box`` (box IoU, per class: torchvision ``batched_nms``), ``mask`` (mask IoU, per
        class) or ``mask-all`` (mask IoU across classes, Zhou et al.'s released code)

    Returns
    -------
    list of ``(label, proposal index, detection score, matching score)`` kept after NMS,
    by descending detection score.
    """
    if nms not in NMS_MODES:
        raise ValueError(f"unknown NMS mode {nms!r} (one of {NMS_MODES})")
    if len(maps) == 0 or len(masks) == 0:
        return []
    from .response import normalize_maps

    if method == "plain" and "proposal_contours" not in kw:
        kw = {**kw, "proposal_contours": _contours(np.asarray(masks, dtype=bool), kw.get("contour_width", 5))}
    picks = []
    for v, p in zip(normalize_maps(maps), peaks):
        s = score_proposals(v, masks, method, **kw)
        j = int(np.argmax(s))
        picks.append((int(round(p[0])), j, float(p[3]) if score == "peak" else float(s[j]), float(s[j])))
    det = np.array([q[2] for q in picks], dtype=np.float64)
    labels = np.array([q[0] for q in picks])
    if nms == "box":
        import torch
        from torchvision.ops import batched_nms

        b = torch.as_tensor(np.asarray(boxes, dtype=np.float32)[[q[1] for q in picks]])
        keep = batched_nms(b, torch.tensor(det, dtype=torch.float32), torch.tensor(labels), float(nms_iou)).tolist()
    else:
        keep = mask_nms(np.asarray(masks, dtype=bool)[[q[1] for q in picks]], det,
                        labels if nms == "mask" else None, float(nms_iou))
    return [picks[i] for i in keep]
