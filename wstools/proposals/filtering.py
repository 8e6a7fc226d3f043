"""Selection of proposals: size and shape filters, de-duplication, mask NMS, top N.

LIID (Liu et al., TPAMI, Sec. 6 "Implementation details") keeps 20 (VOC) or 40
(COCO) of MCG's 500 proposals per image after a simple filter; these functions
are the pieces of such a filter. Every function takes proposals already ranked
best first and returns the indices it keeps, in that order.
"""

from __future__ import annotations

import numpy as np

from .. import masks as mask_io


def shape_filter(boxes: np.ndarray, areas: np.ndarray, min_area: float = 0.0, max_aspect: float = 0.0) -> np.ndarray:
    """Indices of proposals with mask area >= ``min_area`` pixels and box aspect ratio
    max(w/h, h/w) <= ``max_aspect`` (0 = no limit). boxes (N, 4) xyxy, areas (N,)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    keep = np.asarray(areas, dtype=np.float64) >= float(min_area)
    keep &= np.asarray(areas) > 0
    if max_aspect and max_aspect > 0:
        w = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-9)
        h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-9)
        keep &= np.maximum(w / h, h / w) <= float(max_aspect)
    return np.flatnonzero(keep)


def unique_masks(counts: list) -> np.ndarray:
    """Indices of the first occurrence of each distinct mask (COCO RLE is canonical, so equal
    masks have equal ``counts``): (M,) int64 in the input order."""
    seen = set()
    keep = []
    for i, c in enumerate(counts):
        c = bytes(c)
        if c not in seen:
            seen.add(c)
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def mask_nms(counts: list, height: int, width: int, iou_threshold: float, limit: int = 0) -> np.ndarray:
    """Greedy non-maximum suppression on mask IoU (pycocotools): a proposal is dropped when its
    IoU with an already kept (better ranked) one exceeds ``iou_threshold``. ``limit`` > 0 stops
    after that many are kept. Returns kept indices (ranked order)."""
    n = len(counts)
    if n == 0 or iou_threshold >= 1.0:
        idx = np.arange(n, dtype=np.int64)
        return idx[:limit] if limit > 0 else idx
    rles = mask_io.to_rles(counts, height, width)
    keep = []
    for i in range(n):
        if keep:
            # IoU with the kept ones only: O(N x kept) rather than O(N^2)
            iou = mask_io.rle_iou([rles[i]], [rles[j] for j in keep]).ravel()
            if iou.max() > iou_threshold:
                continue
        keep.append(i)
        if limit > 0 and len(keep) >= limit:
            break
    return np.asarray(keep, dtype=np.int64)


def select(boxes: np.ndarray, counts: list, height: int, width: int, *, min_area: float = 0.0,
           max_aspect: float = 0.0, nms: float = 1.0, top: int = 0) -> np.ndarray:
    """The whole filter on ranked proposals: de-duplicate, ``shape_filter``, ``mask_nms``, first
    ``top`` (0 = all). Returns the kept indices, best first."""
    idx = unique_masks(counts)
    areas = mask_io.area([counts[i] for i in idx], height, width)
    idx = idx[shape_filter(np.asarray(boxes).reshape(-1, 4)[idx], areas, min_area, max_aspect)]
    kept = mask_nms([counts[i] for i in idx], height, width, nms, limit=top)
    return idx[kept]
