"""COCO instances JSON writing (pseudo labels for trainers outside the toolkit)."""

from __future__ import annotations

import numpy as np

from .atomic import write_json_atomic


def image_entry(index: int, rec) -> dict:
    """A COCO ``images`` entry for a manifest record (id = index + 1, file_name = the record's path)."""
    return {"id": int(index) + 1, "file_name": str(rec.image), "width": int(rec.width), "height": int(rec.height),
            "ws_id": str(rec.id)}


def annotation(ann_id: int, image_id: int, category_id: int, counts: bytes, height: int, width: int,
               box, area: float, score: float) -> dict:
    """A COCO annotation with compressed RLE (``counts`` as an ASCII string), XYWH bbox, area."""
    c = counts.decode("ascii") if isinstance(counts, (bytes, bytearray)) else str(counts)
    x0, y0, x1, y1 = (float(v) for v in box)
    return {"id": int(ann_id), "image_id": int(image_id), "category_id": int(category_id),
            "segmentation": {"size": [int(height), int(width)], "counts": c},
            "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float(area), "iscrowd": 0, "score": float(score)}


def write_instances(path, images: list, annotations: list, classes, category_ids, force: bool = False) -> None:
    """Write a COCO instances JSON atomically."""
    cats = [{"id": int(c), "name": str(n), "supercategory": "ws"} for c, n in zip(category_ids, classes)]
    write_json_atomic(path, {"info": {"description": "ws export-coco pseudo labels"}, "images": images,
                             "annotations": annotations, "categories": cats}, force=force)


__all__ = ["image_entry", "annotation", "write_instances", "np"]
