"""Binary masks as COCO run-length encodings, through pycocotools.

Masks travel through the toolkit as compressed RLE strings (``counts`` bytes of
pycocotools) plus the image size, so a proposal store costs a few hundred
bytes per mask rather than H x W.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils


def encode(masks: np.ndarray) -> list[bytes]:
    """Encode (N, H, W) (or (H, W)) boolean masks as a list of compressed RLE ``counts``."""
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.shape[0] == 0:
        return []
    fortran = np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8))
    return [r["counts"] for r in mask_utils.encode(fortran)]


def to_rles(counts, height: int, width: int) -> list[dict]:
    """RLE dicts (``{"size": [h, w], "counts": bytes}``) that pycocotools functions accept."""
    return [{"size": [int(height), int(width)], "counts": c if isinstance(c, bytes) else bytes(c)}
            for c in counts]


def decode(counts, height: int, width: int) -> np.ndarray:
    """Decode RLE ``counts`` into (N, H, W) bool masks."""
    counts = list(counts)
    if not counts:
        return np.zeros((0, height, width), dtype=bool)
    arr = mask_utils.decode(to_rles(counts, height, width))
    return arr.transpose(2, 0, 1).astype(bool)


def area(counts, height: int, width: int) -> np.ndarray:
    """Pixel area of each RLE mask, (N,) int64."""
    if len(counts) == 0:
        return np.zeros(0, dtype=np.int64)
    rles = to_rles(counts, height, width)
    # pycocotools' area() fails for more than 255 masks at once (it sizes a buffer with a uint8)
    return np.concatenate([mask_utils.area(rles[s:s + 255]).astype(np.int64) for s in range(0, len(rles), 255)])


def boxes(counts, height: int, width: int) -> np.ndarray:
    """Tight boxes of RLE masks as (N, 4) float32 ``x0, y0, x1, y1`` in pixels (x1, y1 exclusive)."""
    if len(counts) == 0:
        return np.zeros((0, 4), dtype=np.float32)
    xywh = mask_utils.toBbox(to_rles(counts, height, width)).astype(np.float32)
    xywh[:, 2:] += xywh[:, :2]
    return xywh


def iou(counts_a, counts_b, height: int, width: int) -> np.ndarray:
    """(Na, Nb) mask IoU between two lists of RLE masks of the same image."""
    if len(counts_a) == 0 or len(counts_b) == 0:
        return np.zeros((len(counts_a), len(counts_b)), dtype=np.float64)
    a = to_rles(counts_a, height, width)
    b = to_rles(counts_b, height, width)
    return np.asarray(mask_utils.iou(a, b, [0] * len(b)), dtype=np.float64).reshape(len(a), len(b))


def from_polygons(polygons, height: int, width: int) -> bytes:
    """Rasterise COCO polygons (list of flat xy lists) into one RLE ``counts``."""
    rles = mask_utils.frPyObjects(polygons, height, width)
    return mask_utils.merge(rles)["counts"]


def from_uncompressed(rle: dict) -> bytes:
    """Compress an uncompressed COCO RLE (``counts`` a list of ints)."""
    h, w = rle["size"]
    return mask_utils.frPyObjects(rle, h, w)["counts"]
