"""COCO JSON: writing instances (ws export-coco) and reading instances and results files."""

from __future__ import annotations

import math

from ..errors import InputError
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


def read_json(path, problem: str = "not a readable JSON file"):
    """A JSON file, or a one-line InputError naming it: ``problem`` and the parser's complaint."""
    import json

    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError("file does not exist", path=path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{problem} ({e.__class__.__name__}: {e})", path=path) from None


def read_results(path, manifest) -> dict:
    """A COCO results JSON -> ``{image id: [(label, rle dict, score), ...]}``, checked against the manifest.

    The file is a list of ``{image_id, category_id, segmentation (RLE or polygons), score}``;
    image_id is the manifest's image id (what ``ws match`` and ``ws predict`` with an instance checkpoint
    write), category ids follow the manifest, labels are 1..K. A COCO instances JSON (``ws
    export-coco`` pseudo labels: ``images`` + ``annotations``) is read by :func:`read_instances`,
    an annotation without a score scoring 1, so pseudo instances are scored like predictions.
    """
    data = read_json(path)
    if isinstance(data, dict) and isinstance(data.get("images"), list) and isinstance(data.get("annotations"), list):
        return {i: [(label, rle, 1.0 if score is None else score) for label, rle, score in dets]
                for i, dets in read_instances(path, manifest, data).items() if dets}
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        data = data["annotations"]
    if not isinstance(data, list):
        raise InputError("a COCO results file is a JSON list of {image_id, category_id, segmentation, score}",
                         path=path)
    cat_to_label = {int(c): i + 1 for i, c in enumerate(manifest.category_ids())}
    records = manifest.by_id()
    out = {}
    for j, r in enumerate(data):
        if not isinstance(r, dict) or not {"image_id", "category_id", "segmentation", "score"} <= set(r):
            raise InputError(f"result {j} needs image_id, category_id, segmentation and score", path=path)
        image_id = str(r["image_id"])
        rec = records.get(image_id)
        if rec is None:
            raise InputError(f"result {j}: image id not in {manifest.path}", path=path, image_id=image_id)
        try:
            label = cat_to_label[int(r["category_id"])]
        except (KeyError, TypeError, ValueError):
            raise InputError(f"result {j}: category_id {r['category_id']!r} is not a category of {manifest.path} "
                             f"({sorted(cat_to_label)})", path=path, image_id=image_id) from None
        seg = r["segmentation"]
        try:
            score = float(r["score"])
        except (TypeError, ValueError):
            raise InputError(f"result {j}: score {r['score']!r} is not a number", path=path, image_id=image_id) \
                from None
        if not math.isfinite(score):
            raise InputError(f"result {j}: score {r['score']!r} is not a finite number", path=path,
                             image_id=image_id)
        rle = _rle_of(seg, rec.height, rec.width, f"result {j}", path, image_id)
        out.setdefault(image_id, []).append((label, rle, score))
    return out



def _rle_of(seg, height: int, width: int, where: str, path, image_id) -> dict:
    """A COCO segmentation (compressed or uncompressed RLE, or polygons) -> compressed RLE dict."""
    from ..masks import from_polygons, from_uncompressed

    try:
        if isinstance(seg, dict) and "counts" in seg and "size" in seg:
            if [int(v) for v in seg["size"]] != [height, width]:
                raise InputError(f"{where}: mask size {seg['size']} differs from the image ({height}, {width})",
                                 path=path, image_id=image_id)
            c = seg["counts"]
            c = from_uncompressed(seg) if isinstance(c, list) else c.encode("ascii") if isinstance(c, str) else bytes(c)
        elif isinstance(seg, list):
            c = from_polygons(seg, height, width)
        else:
            raise InputError(f"{where}: segmentation is neither RLE nor polygons", path=path, image_id=image_id)
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"{where}: bad segmentation ({e.__class__.__name__}: {e})", path=path,
                         image_id=image_id) from None
    return {"size": [height, width], "counts": c}


def read_instances(path, manifest, data=None, crowd: bool = True) -> dict:
    """A COCO instances JSON (``ws export-coco``) -> ``{manifest image id: [(label, rle dict, score), ...]}``.

    Each ``images`` entry is matched to a manifest record by its ``ws_id`` (what ``ws export-coco``
    writes next to ``id = manifest index + 1``), else by ``str(id)`` (the manifest ids of ``ws dataset
    coco``), else by the file name; category ids follow the manifest; ``score`` is None where an
    annotation has none. Every listed image is a key, with or without annotations. ``data`` is the
    parsed file when the caller has read it already; ``crowd=False`` leaves out ``iscrowd`` annotations.
    """
    from pathlib import Path

    if data is None:
        data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise InputError("a COCO instances file is a JSON object with images, annotations and categories", path=path)
    records = manifest.by_id()
    by_file = {Path(r.image).name: r.id for r in manifest.images}
    coco_to_id = {}
    for j, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "id" not in im:
            raise InputError(f"images entry {j} has no id", path=path)
        if im.get("ws_id") is not None:
            image_id = str(im["ws_id"])
        elif str(im["id"]) in records:
            image_id = str(im["id"])
        else:
            image_id = by_file.get(Path(str(im.get("file_name", ""))).name, str(im["id"]))
        if image_id not in records:
            raise InputError(f"image {im['id']} ({im.get('file_name')}) is not in {manifest.path}", path=path,
                             image_id=image_id)
        coco_to_id[im["id"]] = image_id
    cat_to_label = {int(c): i + 1 for i, c in enumerate(manifest.category_ids())}
    out = {i: [] for i in coco_to_id.values()}
    for j, a in enumerate(data["annotations"]):
        if not isinstance(a, dict) or a.get("image_id") not in coco_to_id:
            raise InputError(f"annotation {j}: image_id {a.get('image_id') if isinstance(a, dict) else a!r} is not "
                             "among the file's images", path=path)
        if not crowd and a.get("iscrowd", 0):
            continue
        image_id = coco_to_id[a["image_id"]]
        rec = records[image_id]
        try:
            label = cat_to_label[int(a["category_id"])]
        except (KeyError, TypeError, ValueError):
            raise InputError(f"annotation {j}: category_id {a.get('category_id')!r} is not a category of "
                             f"{manifest.path} ({sorted(cat_to_label)})", path=path, image_id=image_id) from None
        score = a.get("score")
        try:
            score = None if score is None else float(score)
        except (TypeError, ValueError):
            raise InputError(f"annotation {j}: score {score!r} is not a number", path=path, image_id=image_id) \
                from None
        if score is not None and not math.isfinite(score):
            raise InputError(f"annotation {j}: score {a.get('score')!r} is not a finite number", path=path,
                             image_id=image_id)
        rle = _rle_of(a.get("segmentation"), rec.height, rec.width, f"annotation {j}", path, image_id)
        out[image_id].append((label, rle, score))
    return out


__all__ = ["image_entry", "annotation", "write_instances", "read_json", "read_results", "read_instances"]
