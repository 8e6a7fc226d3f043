"""Proposals made by other programs (MCG, SAM, S4Net, ...): COCO-style JSON or instance-id PNGs.

Two forms are read:

- **COCO-style JSON**: a list of ``{image_id, segmentation, score?}`` (the COCO
  results format) or an object with ``annotations`` (same records) and
  optionally ``images`` (``{id, file_name}``). ``image_id`` is matched against
  the manifest's image ids; when ``images`` is given, its ``file_name`` is
  matched against the manifest's image paths (or their file names). A
  ``segmentation`` is a COCO RLE (compressed or not; its ``size`` must be the
  image's ``[height, width]``) or a list of polygons. ``score`` defaults to 1.
- **A folder of instance-id PNGs**, one per image, named ``<image id>.png`` or
  after the image file's stem: 0 is background, every other value one proposal,
  except 255 in an 8-bit PNG, which is "void" (VOC's ``SegmentationObject``
  border and don't-care regions) and no proposal; in a 16-bit PNG 255 is an id
  like any other. Scores are 1.

Anything that cannot be matched to an image of the manifest, or a mask of
another size than its image, is an ``InputError`` naming the file and image.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from .. import masks as mask_io


def _image_keys(manifest):
    """Names a proposal file may use for an image: its id, its relative path, its file name, its stem."""
    keys = {}
    for rec in manifest.images:
        p = PurePosixPath(rec.image)
        for k in (rec.id, rec.image, p.name, p.stem):
            keys.setdefault(k, rec.id)
    return keys


def _segmentation_counts(seg, height, width, path, image_id, where):
    if isinstance(seg, dict) and "counts" in seg:
        size = seg.get("size")
        if not isinstance(size, (list, tuple)) or [int(v) for v in size] != [height, width]:
            raise InputError(f"{where}: mask size {size} differs from the image's [{height}, {width}]",
                             path=path, image_id=image_id)
        c = seg["counts"]
        if isinstance(c, list):
            try:
                return mask_io.from_uncompressed({"size": [height, width], "counts": c})
            except Exception as e:  # pycocotools raises plain Exceptions on malformed data
                raise InputError(f"{where}: malformed uncompressed RLE ({e})", path=path, image_id=image_id) from None
        if isinstance(c, str):
            c = c.encode()
        if not isinstance(c, bytes):
            raise InputError(f"{where}: RLE counts must be a string or a list", path=path, image_id=image_id)
        total = int(mask_io.area([c], height, width)[0]) if c else 0
        if total > height * width or total < 0:
            raise InputError(f"{where}: RLE covers more pixels than the image", path=path, image_id=image_id)
        return c
    if isinstance(seg, list) and seg and all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
                                             and all(isinstance(v, (int, float)) for v in p) for p in seg):
        return mask_io.from_polygons(seg, height, width)
    raise InputError(f"{where}: segmentation is neither a COCO RLE nor a list of polygons (x, y, ... >= 3 points)",
                     path=path, image_id=image_id)


def load_proposal_json(path, manifest) -> dict:
    """Read a COCO-style JSON of masks: ``{image id: [(counts, score), ...]}`` for every image of
    ``manifest`` (empty lists where the file has none). Every record is checked here, before any
    output is written."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("proposal file does not exist", path=path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"not a readable JSON file ({e.__class__.__name__}: {e})", path=path) from None
    keys = _image_keys(manifest)
    file_ids = {}
    if isinstance(data, dict):
        anns = data.get("annotations")
        if not isinstance(anns, list):
            raise InputError("a JSON object needs an 'annotations' list", path=path)
        for im in data.get("images") or []:
            if not isinstance(im, dict) or "id" not in im:
                raise InputError("'images' entries need an 'id'", path=path)
            name = im.get("file_name")
            if name is not None:
                rid = keys.get(str(name)) or keys.get(PurePosixPath(str(name)).name)
                if rid is None:
                    raise InputError(f"image file {name!r} is not in {manifest.path}", path=path, image_id=im["id"])
                file_ids[str(im["id"])] = rid
    elif isinstance(data, list):
        anns = data
    else:
        raise InputError("must be a list of annotations or an object with 'annotations'", path=path)
    by_id = manifest.by_id()
    out = {rec.id: [] for rec in manifest.images}
    for j, ann in enumerate(anns):
        if not isinstance(ann, dict) or "image_id" not in ann or "segmentation" not in ann:
            raise InputError(f"annotation {j} needs 'image_id' and 'segmentation'", path=path)
        raw = str(ann["image_id"])
        rid = file_ids.get(raw) or (raw if raw in by_id else keys.get(raw))
        if rid is None:
            raise InputError(f"annotation {j}: unknown image id (not in {manifest.path})", path=path, image_id=raw)
        rec = by_id[rid]
        score = ann.get("score", 1.0)
        if not isinstance(score, (int, float)) or not np.isfinite(score):
            raise InputError(f"annotation {j}: score must be a finite number", path=path, image_id=rid)
        counts = _segmentation_counts(ann["segmentation"], rec.height, rec.width, path, rid, f"annotation {j}")
        out[rid].append((counts, float(score)))
    return out


def find_instance_pngs(folder, manifest) -> dict:
    """``{image id: PNG path}`` for a folder of instance-id PNGs; a PNG that matches no image of
    the manifest, or an image without a PNG, is an ``InputError``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("proposal folder does not exist", path=folder)
    keys = _image_keys(manifest)
    found = {}
    for p in sorted(folder.glob("*.png")):
        rid = keys.get(p.stem) or keys.get(p.name)
        if rid is None:
            raise InputError(f"matches no image of {manifest.path}", path=p, image_id=p.stem)
        found[rid] = p
    missing = [r.id for r in manifest.images if r.id not in found]
    if missing:
        raise InputError(f"has no PNG for {len(missing)} images of {manifest.path}", path=folder,
                         image_id=missing[0])
    return found


def read_instance_png(path, height: int, width: int, image_id=None) -> list:
    """Masks of an instance-id PNG (8 or 16 bit; 0 = background; 255 = void in an 8-bit PNG) as
    RLE ``counts``, by increasing id."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                raise InputError(f"instance PNG must be 8- or 16-bit single channel, not mode {im.mode}",
                                 path=path, image_id=image_id)
            arr = np.asarray(im).astype(np.int64)
            eight_bit = im.mode in ("L", "P")
    except FileNotFoundError:
        raise InputError("instance PNG does not exist", path=path, image_id=image_id) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(f"cannot read instance PNG ({e.__class__.__name__})", path=path, image_id=image_id) from None
    if arr.shape != (height, width):
        raise InputError(f"instance PNG is {arr.shape[1]}x{arr.shape[0]}, the image is {width}x{height}",
                         path=path, image_id=image_id)
    ids = np.unique(arr)
    ids = ids[(ids != 0) & ~((ids == 255) & eight_bit)]
    return mask_io.encode(arr[None] == ids[:, None, None]) if len(ids) else []
