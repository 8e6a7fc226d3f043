"""The ``proposals`` store's per-image layout: its one writer and one reader.

Per image group (``/images/<key>``):

==========  ======================================================================
``boxes``   (P, 4) float32 ``x0 y0 x1 y1`` in pixels, the proposals' boxes
``scores``  (P,) float32, best first (stores are ranked)
``masks``   optional: P COCO compressed RLE strings (variable-length uint8) of
            (height, width) masks; box-only proposals omit it
attrs       ``height``, ``width``: the image size the masks and boxes are for
==========  ======================================================================

One rule for every reader: the group must record its image size, and it must be the
manifest's (a store of another image size, or one that does not say, is refused naming the
file and the image); boxes and scores finite, as many as the masks; every RLE string is
checked against the size before it is decoded (:func:`wstools.io.store.read_rles`).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def write_proposals_group(group, height: int, width: int, boxes, scores, counts) -> None:
    """Fill one image's group of a ``proposals`` store (layout above); ``counts`` may be None."""
    from .store import write_rles

    group.attrs["height"], group.attrs["width"] = int(height), int(width)
    group.create_dataset("boxes", data=np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
    group.create_dataset("scores", data=np.asarray(scores, dtype=np.float32).reshape(-1))
    if counts is not None:
        write_rles(group, "masks", list(counts))


def read_proposals_group(group, height: int, width: int, *, need_masks: bool = True, path=None,
                         image_id=None) -> dict:
    """``{boxes (P, 4) float32, scores (P,) float32, counts: list of P RLE bytes or None}`` of one
    image, checked as the module docstring says; ``height`` / ``width`` are the manifest's."""
    from ..masks import boxes as rle_boxes
    from .store import read_rles

    where = {"path": path or group.file.filename, "image_id": image_id}
    if "height" not in group.attrs or "width" not in group.attrs:
        raise InputError("proposals record no image size (attributes 'height', 'width')", **where)
    h, w = int(group.attrs["height"]), int(group.attrs["width"])
    if (h, w) != (int(height), int(width)):
        raise InputError(f"proposals are for a {w}x{h} image, the manifest says {width}x{height}", **where)
    counts = read_rles(group["masks"], h, w) if "masks" in group else None
    if counts is None and need_masks:
        raise InputError("proposals have no masks (segment proposals are needed here, e.g. `ws propose`)", **where)
    if "boxes" in group:
        boxes = np.asarray(group["boxes"][()], dtype=np.float32).reshape(-1, 4)
    elif counts is not None:
        boxes = rle_boxes(counts, h, w).astype(np.float32).reshape(-1, 4)
    else:
        raise InputError("proposals have neither boxes nor masks", **where)
    if counts is not None and len(counts) != len(boxes):
        raise InputError(f"{len(boxes)} boxes but {len(counts)} masks", **where)
    scores = np.asarray(group["scores"][()], dtype=np.float32).reshape(-1) if "scores" in group \
        else np.ones(len(boxes), np.float32)
    if len(scores) != len(boxes):
        raise InputError(f"{len(scores)} scores but {len(boxes)} proposals", **where)
    if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
        raise InputError("boxes or scores hold NaN or infinite values", **where)
    return {"boxes": boxes, "scores": scores, "counts": counts}
