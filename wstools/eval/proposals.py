"""Class-agnostic object-proposal quality: ABO, MABO and recall against the number kept.

Conventions (Uijlings et al., IJCV 2013, "Selective Search"; used by LIID to
choose its segment-based proposals and by Fan et al. for salient instances):

* For a ground-truth object g and a set of proposals P, the *best overlap* is
  ``max_{p in P} IoU(g, p)`` (0 when P is empty).
* ABO (average best overlap) of a class is the mean best overlap over that
  class's objects; MABO is the mean of the class ABOs. When the objects have
  no class, MABO is the ABO of all objects (class-agnostic).
* Recall at IoU t is the fraction of objects whose best overlap is >= t.
* Proposals are taken in their stored order (stores keep them ranked by score):
  "N proposals" means the first N; ``None`` means all of them.

Both mask IoU (pycocotools RLE) and box IoU (tight boxes of the ground-truth
masks against the proposals' boxes) are reported.

Use :func:`best_overlaps` per image (streaming, memory bounded by one image)
and :func:`summarize_overlaps` at the end, or :func:`evaluate_proposals` on
lists when everything fits in memory.
"""

from __future__ import annotations

import numpy as np

from ..masks import as_rles, box_iou, rle_boxes, rle_iou as mask_iou

DEFAULT_NS = (1, 10, 20, 50, 100, None)
DEFAULT_THRESHOLDS = (0.5, 0.7)


def _best_by_n(iou: np.ndarray, ns) -> np.ndarray:
    """(G, P) IoU -> (G, len(ns)) best IoU among the first n proposals."""
    g, p = iou.shape
    out = np.zeros((g, len(ns)), dtype=np.float64)
    if g == 0 or p == 0:
        return out
    running = np.maximum.accumulate(iou, axis=1)   # best among the first j+1
    for k, n in enumerate(ns):
        n_eff = p if n is None else min(int(n), p)
        if n_eff > 0:
            out[:, k] = running[:, n_eff - 1]
    return out


def best_overlaps(gt_masks, proposal_masks, *, proposal_boxes=None, height=None, width=None,
                  ns=DEFAULT_NS) -> dict:
    """Best overlap of every ground-truth object of one image with the first n proposals.

    Parameters
    ----------
    gt_masks : (G, H, W) bool array, or list of RLE dicts / RLE ``counts`` bytes
    proposal_masks : (P, H, W) bool array, or list of RLE dicts / ``counts`` bytes,
        in ranked order
    proposal_boxes : (P, 4) ``x0 y0 x1 y1`` pixels, or None for the masks' tight boxes
    height, width : image size, needed only for bare ``counts`` bytes
    ns : numbers of proposals kept; ``None`` = all

    Returns
    -------
    ``{"mask": (G, len(ns)) float64, "box": (G, len(ns)) float64}`` best IoUs.
    """
    gt = as_rles(gt_masks, height, width)
    props = as_rles(proposal_masks, height, width)
    if gt and props and tuple(gt[0]["size"]) != tuple(props[0]["size"]):
        raise ValueError(f"ground truth is {gt[0]['size']} but proposals are {props[0]['size']}")
    m_iou = mask_iou(gt, props)
    gt_boxes = rle_boxes(gt)
    if proposal_boxes is None:
        proposal_boxes = rle_boxes(props)
    proposal_boxes = np.asarray(proposal_boxes, dtype=np.float64).reshape(-1, 4)
    if len(proposal_boxes) != len(props):
        raise ValueError(f"{len(proposal_boxes)} boxes for {len(props)} masks")
    b_iou = box_iou(gt_boxes, proposal_boxes)
    return {"mask": _best_by_n(m_iou, ns), "box": _best_by_n(b_iou, ns)}


def _n_name(n) -> str:
    return "all" if n is None else str(int(n))


def summarize_overlaps(best: np.ndarray, labels=None, *, ns=DEFAULT_NS, thresholds=DEFAULT_THRESHOLDS) -> dict:
    """ABO, MABO, recall@t for each n, from the stacked best overlaps of all objects.

    Parameters
    ----------
    best : (G, len(ns)) best IoU of every object of the dataset
    labels : (G,) class of each object (any hashable values), or None (class-agnostic)

    Returns
    -------
    dict keyed by ``str(n)`` ("all" for None) of ``{"abo", "mabo", "recall@t"...}``
    and ``"per_class"``: ``{class: {"objects", "abo"@n...}}``. Numbers are floats
    (0.0 when there are no objects, never NaN).
    """
    best = np.asarray(best, dtype=np.float64).reshape(-1, len(ns))
    g = best.shape[0]
    if labels is None:
        labels = np.zeros(g, dtype=np.int64)
        agnostic = True
    else:
        labels = np.asarray(labels)
        agnostic = False
    classes = sorted(set(labels.tolist()), key=str)
    out = {"objects": int(g), "by_n": {}, "per_class": {}}
    for k, n in enumerate(ns):
        col = best[:, k]
        abo = float(col.mean()) if g else 0.0
        class_abo = [float(col[labels == c].mean()) for c in classes]
        row = {"abo": abo, "mabo": abo if agnostic or not classes else float(np.mean(class_abo))}
        for t in thresholds:
            row[f"recall@{t:g}"] = float((col >= t).mean()) if g else 0.0
        out["by_n"][_n_name(n)] = row
    if not agnostic:
        for c in classes:
            sel = labels == c
            out["per_class"][str(c)] = {"objects": int(sel.sum()),
                                        **{f"abo@{_n_name(n)}": float(best[sel, k].mean())
                                           for k, n in enumerate(ns)},
                                        **{f"recall@{t:g}@all": float((best[sel, -1] >= t).mean())
                                           for t in thresholds}}
    return out


def evaluate_proposals(gt_masks_per_image, proposal_masks_per_image, *, gt_labels_per_image=None,
                       proposal_boxes_per_image=None, sizes=None, ns=DEFAULT_NS,
                       thresholds=DEFAULT_THRESHOLDS) -> dict:
    """Proposal quality over a dataset given as per-image lists (see the module docstring).

    Parameters
    ----------
    gt_masks_per_image : list over images of (G_i, H, W) bool arrays or RLE lists
    proposal_masks_per_image : list over images of (P_i, H, W) bool arrays or RLE lists (ranked)
    gt_labels_per_image : list over images of (G_i,) class labels, or None (class-agnostic)
    proposal_boxes_per_image : list of (P_i, 4) ``x0 y0 x1 y1`` boxes, or None (tight boxes of the masks)
    sizes : list of (height, width), needed only for bare RLE ``counts``

    Returns
    -------
    ``{"mask": summary, "box": summary}`` with the summaries of :func:`summarize_overlaps`.
    """
    if len(gt_masks_per_image) != len(proposal_masks_per_image):
        raise ValueError("ground truth and proposals have different numbers of images")
    mask_best, box_best, labels = [], [], []
    for i, (g, p) in enumerate(zip(gt_masks_per_image, proposal_masks_per_image)):
        h, w = (None, None) if sizes is None else sizes[i]
        boxes = None if proposal_boxes_per_image is None else proposal_boxes_per_image[i]
        r = best_overlaps(g, p, proposal_boxes=boxes, height=h, width=w, ns=ns)
        mask_best.append(r["mask"])
        box_best.append(r["box"])
        if gt_labels_per_image is not None:
            labels.append(np.asarray(gt_labels_per_image[i]).reshape(-1))
    lab = np.concatenate(labels) if gt_labels_per_image is not None and labels else None
    mb = np.concatenate(mask_best) if mask_best else np.zeros((0, len(ns)))
    bb = np.concatenate(box_best) if box_best else np.zeros((0, len(ns)))
    return {"mask": summarize_overlaps(mb, lab, ns=ns, thresholds=thresholds),
            "box": summarize_overlaps(bb, lab, ns=ns, thresholds=thresholds)}
