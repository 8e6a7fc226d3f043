"""Mask inputs shared by the metrics: boolean arrays or COCO RLE, IoU matrices."""

from __future__ import annotations

import numpy as np

from .. import masks as mask_io
from ..masks import rle_boxes, rle_iou as mask_iou  # noqa: F401  (re-exported for the metrics)


def as_rles(masks, height: int | None = None, width: int | None = None) -> list[dict]:
    """Masks of one image as pycocotools RLE dicts.

    ``masks`` is an (N, H, W) boolean array, a list of RLE dicts
    (``{"size": [h, w], "counts": ...}``), or a list of compressed ``counts``
    bytes (then ``height`` and ``width`` are needed).
    """
    if isinstance(masks, np.ndarray):
        if masks.ndim == 2:
            masks = masks[None]
        h, w = masks.shape[1:]
        return mask_io.to_rles(mask_io.encode(masks.astype(bool)), h, w)
    out = _rle_dicts(masks, height, width)
    # pycocotools reads an invalid string as runs of up to 2^32 pixels: a hang
    by_size: dict = {}
    for i, r in enumerate(out):
        by_size.setdefault(tuple(r["size"]), []).append(i)
    for (h, w), idx in by_size.items():
        try:
            mask_io.check_rles([out[i]["counts"] for i in idx], h, w)
        except mask_io.InvalidRLE as e:
            j = int(e.problem.split(":")[0].split()[1])
            raise mask_io.InvalidRLE(f"mask {idx[j]}: {e.problem.split(': ', 1)[1]}") from None
    return out


def _rle_dicts(masks, height, width) -> list[dict]:
    out = []
    for m in masks:
        if isinstance(m, dict):
            c = m["counts"]
            if isinstance(c, list):
                c = mask_io.from_uncompressed(m)
            elif isinstance(c, str):
                c = c.encode()
            out.append({"size": [int(m["size"][0]), int(m["size"][1])], "counts": bytes(c)})
        elif isinstance(m, np.ndarray) and m.ndim == 2:
            out.extend(as_rles(m[None]))
        else:
            if height is None or width is None:
                raise ValueError("RLE counts need height and width")
            out.append({"size": [int(height), int(width)], "counts": bytes(m)})
    return out


def box_iou(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """(Na, Nb) IoU of boxes given as ``x0 y0 x1 y1`` (continuous coordinates)."""
    a = np.asarray(a_xyxy, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_xyxy, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    return out
