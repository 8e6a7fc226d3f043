"""Binary masks as COCO run-length encodings, through pycocotools (a pure array helper:
algorithm packages and the file layer both use it; it reads and writes no files).

Masks travel through the toolkit as compressed RLE strings (``counts`` bytes of
pycocotools) plus the image size, so a proposal store costs a few hundred
bytes per mask rather than H x W.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from .errors import InputError


class InvalidRLE(InputError):
    """A compressed RLE string that does not describe a mask of the image size: pycocotools
    would read it as runs of up to 2^32 pixels (a hang) or write past its buffer."""


def rle_runs(counts: bytes) -> np.ndarray | None:
    """The run lengths (int64) of one compressed RLE string, as pycocotools' ``rleFrString``
    reads them (5-bit groups from chars 48..111, bit 0x20 = more groups follow, bit 0x10 of
    the last group = negative, runs from the third on relative to the run two before);
    ``None`` for a string that is not well formed (other chars, cut in a number, a number of
    more than 7 groups)."""
    c = np.frombuffer(bytes(counts), dtype=np.uint8).astype(np.int64) - 48
    if len(c) == 0:
        return np.zeros(0, np.int64)
    if c.min() < 0 or c.max() > 63 or c[-1] & 0x20:
        return None
    last = (c & 0x20) == 0                              # the last group of each number
    number = np.concatenate([[0], np.cumsum(last)[:-1]])
    starts = np.flatnonzero(np.concatenate([[True], last[:-1]]))
    k = np.arange(len(c)) - starts[number]               # group index within its number
    if k.max() > 6:
        return None
    values = np.zeros(int(last.sum()), np.int64)
    np.add.at(values, number, (c & 0x1F) << (5 * k))
    ends = np.flatnonzero(last)
    negative = (c[ends] & 0x10) != 0
    values[negative] -= np.int64(1) << (5 * (k[ends][negative] + 1))
    runs = values.copy()
    runs[3::2] = np.cumsum(values[1::2])[1:] if len(values) > 3 else runs[3::2]
    runs[4::2] = np.cumsum(values[2::2])[1:] if len(values) > 4 else runs[4::2]
    return runs


def rle_problem(counts, height: int, width: int) -> str | None:
    """Why ``counts`` is not an RLE of an ``height`` x ``width`` mask, or ``None`` if it is."""
    if not isinstance(counts, (bytes, bytearray, memoryview, np.ndarray)):
        return f"RLE counts of type {type(counts).__name__}, not bytes"
    runs = rle_runs(counts)
    if runs is None:
        return "malformed RLE string"
    if len(runs) and runs.min() < 0:
        return "RLE with a negative run"
    total = int(runs.sum())
    if total != int(height) * int(width):
        return f"RLE covers {total} pixels, the image {int(height)} x {int(width)} = {int(height) * int(width)}"
    return None


def check_rles(counts, height: int, width: int) -> None:
    """Raise :class:`InvalidRLE` ("mask I: problem") for the first string of ``counts`` that is
    not an RLE of an ``height`` x ``width`` mask (all strings of an image checked at once)."""
    counts = list(counts)
    if not counts:
        return
    if not all(isinstance(c, (bytes, bytearray, memoryview, np.ndarray)) for c in counts):
        i = next(i for i, c in enumerate(counts) if not isinstance(c, (bytes, bytearray, memoryview, np.ndarray)))
        raise InvalidRLE(f"mask {i}: {rle_problem(counts[i], height, width)}")
    raw = [bytes(c) for c in counts]
    n = len(raw)
    lengths = np.array([len(r) for r in raw], np.int64)
    c = np.frombuffer(b"".join(raw), dtype=np.uint8).astype(np.int64) - 48
    totals = np.zeros(n, np.int64)
    bad = np.zeros(n, bool)
    if len(c):
        string = np.repeat(np.arange(n), lengths)
        bad |= np.bincount(string, weights=(c < 0) | (c > 63), minlength=n) > 0
        ends_of_strings = np.cumsum(lengths)[lengths > 0] - 1
        bad[lengths > 0] |= (c[ends_of_strings] & 0x20) != 0
        c = np.clip(c, 0, 63)
        last = (c & 0x20) == 0
        last[ends_of_strings] = True                    # a number never runs into the next string
        number = np.concatenate([[0], np.cumsum(last)[:-1]])
        starts = np.flatnonzero(np.concatenate([[True], last[:-1]]))
        k = np.arange(len(c)) - starts[number]
        bad |= np.bincount(string, weights=k > 6, minlength=n) > 0
        k = np.minimum(k, 6)
        values = np.bincount(number, weights=(c & 0x1F) << (5 * k)).astype(np.int64)   # exact: < 2^53
        ends = np.flatnonzero(last)
        negative = (c[ends] & 0x10) != 0
        values[negative] -= np.int64(1) << (5 * (k[ends][negative] + 1))
        owner = string[ends]                             # the string of each number
        first = np.searchsorted(owner, owner)            # index of its string's first number
        m = np.arange(len(values)) - first               # position of the number in its string
        # runs from the third on are relative to the run two before: cumulative sums over the
        # odd positions and over the even positions >= 2, within each string
        runs = values.copy()
        for part in ((m % 2 == 1), (m % 2 == 0) & (m >= 2)):
            csum = np.cumsum(np.where(part, values, 0))
            before = np.where(first > 0, csum[np.maximum(first - 1, 0)], 0)
            runs = np.where(part, csum - before, runs)
        bad |= np.bincount(owner, weights=runs < 0, minlength=n) > 0
        totals = np.bincount(owner, weights=runs, minlength=n).astype(np.int64)
    bad |= totals != int(height) * int(width)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidRLE(f"mask {i}: {rle_problem(raw[i], height, width) or 'invalid RLE'}")


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
        return to_rles(encode(masks.astype(bool)), h, w)
    out = _rle_dicts(masks, height, width)
    # pycocotools reads an invalid string as runs of up to 2^32 pixels: a hang
    by_size: dict = {}
    for i, r in enumerate(out):
        by_size.setdefault(tuple(r["size"]), []).append(i)
    for (h, w), idx in by_size.items():
        try:
            check_rles([out[i]["counts"] for i in idx], h, w)
        except InvalidRLE as e:
            j = int(e.problem.split(":")[0].split()[1])
            raise InvalidRLE(f"mask {idx[j]}: {e.problem.split(': ', 1)[1]}") from None
    return out


def _rle_dicts(masks, height, width) -> list[dict]:
    out = []
    for m in masks:
        if isinstance(m, dict):
            c = m["counts"]
            if isinstance(c, list):
                c = from_uncompressed(m)
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
