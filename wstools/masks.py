"""Binary masks as COCO run-length encodings, through pycocotools (a pure array helper:
algorithm packages and the file layer both use it; it reads and writes no files).

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


def rle_boxes(rles: list) -> np.ndarray:
    """Tight boxes of RLE dicts as (N, 4) float64 ``x0, y0, x1, y1`` in pixels (x1, y1 exclusive)."""
    if len(rles) == 0:
        return np.zeros((0, 4), dtype=np.float64)
    xywh = mask_utils.toBbox(rles).astype(np.float64).reshape(-1, 4)
    xywh[:, 2:] += xywh[:, :2]
    return xywh


def boxes(counts, height: int, width: int) -> np.ndarray:
    """Tight boxes of RLE ``counts`` as (N, 4) float32 ``x0, y0, x1, y1`` in pixels (x1, y1 exclusive)."""
    return rle_boxes(to_rles(counts, height, width) if len(counts) else []).astype(np.float32)


def rle_iou(a: list, b: list, crowd=None) -> np.ndarray:
    """(len(a), len(b)) IoU of RLE dicts (pycocotools; ``crowd[j]`` makes b[j] a crowd region)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    crowd = [0] * len(b) if crowd is None else [int(c) for c in crowd]
    return np.asarray(mask_utils.iou(a, b, crowd), dtype=np.float64).reshape(len(a), len(b))


def iou(counts_a, counts_b, height: int, width: int) -> np.ndarray:
    """(Na, Nb) mask IoU between two lists of RLE ``counts`` of the same image."""
    return rle_iou(to_rles(counts_a, height, width), to_rles(counts_b, height, width))


def from_polygons(polygons, height: int, width: int) -> bytes:
    """Rasterise COCO polygons (list of flat xy lists) into one RLE ``counts``."""
    rles = mask_utils.frPyObjects(polygons, height, width)
    return mask_utils.merge(rles)["counts"]


def from_uncompressed(rle: dict) -> bytes:
    """Compress an uncompressed COCO RLE (``counts`` a list of ints)."""
    h, w = rle["size"]
    return mask_utils.frPyObjects(rle, h, w)["counts"]
