"""Importers that turn common dataset layouts into manifests.

* PASCAL VOC 2012 (``JPEGImages``, ``Annotations``, ``SegmentationClass``,
  ``SegmentationObject``, ``ImageSets``; SBD's ``train_aug`` list and
  ``SegmentationClassAug`` when present).
* COCO instances JSON (tags = categories annotated in the image).
* A folder of images plus a CSV of tags (``image,tag1;tag2``).
"""

from __future__ import annotations

import csv
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from .dataset import ImageRecord, Manifest
from .images import read_label_png

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()


def _image_size(path: Path, image_id: str):
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise InputError("image file does not exist", path=path, image_id=image_id) from None
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"not an image ({e})", path=path, image_id=image_id) from None


def _voc_list(root: Path, split: str) -> tuple[list[str], Path]:
    candidates = [root / "ImageSets" / "Segmentation" / f"{split}.txt"]
    if split == "train_aug":
        candidates = [root / "ImageSets" / "SegmentationAug" / "train_aug.txt",
                      root / "ImageSets" / "Segmentation" / "train_aug.txt", root / "train_aug.txt"]
    for c in candidates:
        if c.exists():
            ids = []
            for line in c.read_text().splitlines():
                line = line.strip()
                if not line:
                    continue
                first = line.split()[0]
                ids.append(Path(first).stem)   # "/JPEGImages/x.jpg /SegmentationClassAug/x.png" or "x"
            return ids, c
    raise InputError(f"no image list for split {split!r} (looked for "
                     f"{', '.join(str(c.relative_to(root)) for c in candidates)})", path=root)


def _voc_tags_from_xml(xml_path: Path, image_id: str):
    try:
        tree = ET.parse(xml_path)
    except ET.ParseError as e:
        raise InputError(f"malformed annotation XML ({e})", path=xml_path, image_id=image_id) from None
    names = []
    for obj in tree.getroot().iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in VOC_CLASSES:
            raise InputError(f"object class {name!r} is not a VOC class", path=xml_path, image_id=image_id)
        if name not in names:
            names.append(name)
    size = tree.getroot().find("size")
    wh = None
    if size is not None and size.findtext("width") and size.findtext("height"):
        wh = (int(size.findtext("width")), int(size.findtext("height")))
    return sorted(names, key=VOC_CLASSES.index), wh


def _voc_root(root: Path) -> Path:
    """The folder holding ``JPEGImages/``: ``root`` itself, or the single ``VOC20xx/`` inside a
    ``VOCdevkit/`` (how the archives unpack)."""
    if (root / "JPEGImages").is_dir():
        return root
    inner = sorted(p for p in root.glob("VOC20*") if (p / "JPEGImages").is_dir()) if root.is_dir() else []
    if len(inner) == 1:
        return inner[0]
    if inner:
        raise InputError(f"holds {len(inner)} VOC folders ({', '.join(p.name for p in inner)}); pass one of "
                         "them, e.g. " + str(inner[-1]), path=root)
    raise InputError("not a VOC folder (no JPEGImages/): pass VOCdevkit/VOC2012 (or the VOCdevkit folder "
                     "holding it)", path=root)


def import_voc(root, split: str, out_path, list_file=None) -> Manifest:
    """Manifest of a PASCAL VOC 2012 split (``train``, ``val``, ``trainval`` or ``train_aug``).

    ``root`` is ``VOCdevkit/VOC2012`` or the ``VOCdevkit`` folder holding a single ``VOC20xx/``.
    Images are ``JPEGImages/<id>.jpg`` (or another image suffix, for hand-made folders).
    Tags come from ``Annotations/<id>.xml`` (every object, difficult ones too),
    or from the class PNG when there is no XML. Semantic GT is
    ``SegmentationClassAug/<id>.png`` for ``train_aug`` when present, else
    ``SegmentationClass/<id>.png``; instance GT is ``SegmentationObject/<id>.png``.
    """
    root = _voc_root(Path(root))
    if list_file is not None:
        ids = [Path(line.split()[0]).stem for line in Path(list_file).read_text().splitlines() if line.strip()]
    else:
        ids, list_file = _voc_list(root, split)
    base = Path(out_path).parent
    records = []
    for image_id in ids:
        img = root / "JPEGImages" / f"{image_id}.jpg"
        if not img.exists():   # a hand-made VOC-style folder may hold PNGs or .jpeg files
            img = next((p for p in (root / "JPEGImages" / f"{image_id}{suf}" for suf in IMAGE_SUFFIXES)
                        if p.exists()), img)
        if not img.exists():
            raise InputError("image listed in the split is missing", path=img, image_id=image_id)
        sem = None
        for folder in (("SegmentationClassAug", "SegmentationClass") if split == "train_aug"
                       else ("SegmentationClass", "SegmentationClassAug")):
            p = root / folder / f"{image_id}.png"
            if p.exists():
                sem = p
                break
        inst = root / "SegmentationObject" / f"{image_id}.png"
        xml = root / "Annotations" / f"{image_id}.xml"
        wh = None
        if xml.exists():
            tags, wh = _voc_tags_from_xml(xml, image_id)
        elif sem is not None:
            lab = read_label_png(sem, image_id)
            tags = [VOC_CLASSES[i - 1] for i in np.unique(lab) if 0 < i <= len(VOC_CLASSES)]
        else:
            raise InputError("neither annotation XML nor class PNG gives tags", path=root, image_id=image_id)
        if wh is None:
            wh = _image_size(img, image_id)
        records.append(ImageRecord(id=image_id, image=_rel(img, base), width=wh[0], height=wh[1], tags=tags,
                                   semantic=None if sem is None else _rel(sem, base),
                                   instances=_rel(inst, base) if (inst.exists() and sem is not None) else None))
    return Manifest(classes=list(VOC_CLASSES), images=records, name=f"voc-{split}", path=Path(out_path),
                    extra={"source": {"format": "voc", "root": str(root), "list": str(list_file)}})


def import_coco(instances_json, images_dir, out_path, keep_empty: bool = False) -> tuple[Manifest, int]:
    """Manifest of a COCO instances file; returns ``(manifest, images_skipped_for_no_annotations)``.

    Classes are the categories in id order; ``category_ids`` in the manifest maps
    label i+1 back to the COCO id. Tags are the categories annotated in an
    image (crowd regions too); the annotations are kept as instance GT.
    """
    instances_json = Path(instances_json)
    try:
        data = json.loads(instances_json.read_text())
    except FileNotFoundError:
        raise InputError("file does not exist", path=instances_json) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"not valid JSON ({e})", path=instances_json) from None
    if not isinstance(data, dict) or not all(k in data for k in ("images", "annotations", "categories")):
        raise InputError("not a COCO instances file (needs images, annotations, categories)", path=instances_json)
    cats = sorted(data["categories"], key=lambda c: c["id"])
    names = [c["name"] for c in cats]
    if len(set(names)) != len(names):
        raise InputError("duplicate category names", path=instances_json)
    name_of = {c["id"]: c["name"] for c in cats}
    per_image = {}
    for ann in data["annotations"]:
        if ann.get("category_id") not in name_of:
            raise InputError(f"annotation {ann.get('id')} has unknown category_id {ann.get('category_id')}",
                             path=instances_json, image_id=ann.get("image_id"))
        per_image.setdefault(ann["image_id"], []).append(ann)
    images_dir = Path(images_dir)
    base = Path(out_path).parent
    records, skipped = [], 0
    for im in data["images"]:
        anns = per_image.get(im["id"], [])
        if not anns and not keep_empty:
            skipped += 1
            continue
        present = {name_of[a["category_id"]] for a in anns}
        tags = [n for n in names if n in present]
        instances = [{"label": name_of[a["category_id"]], "segmentation": a["segmentation"],
                      "iscrowd": int(a.get("iscrowd", 0))} for a in anns if "segmentation" in a]
        path = images_dir / im["file_name"]
        records.append(ImageRecord(id=str(im["id"]), image=_rel(path, base), width=int(im["width"]),
                                   height=int(im["height"]), tags=tags, instances=instances))
    m = Manifest(classes=names, images=records, name=instances_json.stem, path=Path(out_path),
                 extra={"category_ids": [c["id"] for c in cats],
                        "source": {"format": "coco", "file": str(instances_json)}})
    return m, skipped


def import_folder(folder, tags_csv, out_path, classes=None) -> Manifest:
    """Manifest of a folder of images and a CSV ``image,tag1;tag2`` (header optional; UTF-8 with
    or without a byte-order mark; tab-separated when the first line has tabs and no comma).

    ``image`` is a path relative to ``folder``; the id is that path without its
    suffix. Classes are ``classes`` if given, else the sorted set of all tags.
    """
    folder, tags_csv = Path(folder), Path(tags_csv)
    if not folder.is_dir():
        raise InputError("not a folder", path=folder)
    try:
        # utf-8-sig: spreadsheets' "CSV UTF-8" starts with a byte-order mark
        text = tags_csv.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError("tags CSV does not exist", path=tags_csv) from None
    except UnicodeDecodeError:
        raise InputError("tags CSV is not UTF-8 text (save it as 'CSV UTF-8')", path=tags_csv) from None
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    # a tab-separated file (a spreadsheet's "Text (tab delimited)") is read as such
    delimiter = "\t" if "\t" in first and "," not in first else ","
    rows = list(csv.reader(lines, delimiter=delimiter))
    if rows and [c.strip().lower() for c in rows[0][:2]] in (["image", "tags"], ["image", "tag"], ["image"]):
        rows = rows[1:]
    entries = []
    for n, row in enumerate(rows, start=1):
        if not row or not row[0].strip():
            continue
        if len(row) > 2:
            sep = "tab" if delimiter == "\t" else "comma"
            raise InputError(f"line {n}: {len(row)} {sep}-separated fields, expected 2: 'image,tag1;tag2' "
                             "(separate the tags with ';')", path=tags_csv)
        if delimiter == "," and "\t" in row[0]:
            raise InputError(f"line {n}: mixes tabs and commas; expected 'image,tag1;tag2'", path=tags_csv)
        tags = [t.strip() for t in (row[1] if len(row) > 1 else "").split(";") if t.strip()]
        entries.append((row[0].strip(), tags))
    all_tags = sorted({t for _, ts in entries for t in ts})
    classes = list(classes) if classes else all_tags
    unknown = [t for t in all_tags if t not in classes]
    if unknown:
        bad = next(name for name, ts in entries if unknown[0] in ts)
        raise InputError(f"tag {unknown[0]!r} is not in --classes", path=tags_csv, image_id=bad)
    base = Path(out_path).parent
    records, seen = [], {}
    for name, tags in entries:
        path = folder / name
        image_id = Path(name).with_suffix("").as_posix()
        if image_id in seen:
            if seen[image_id] == Path(name).as_posix():
                raise InputError(f"{name} is listed twice", path=tags_csv, image_id=image_id)
            raise InputError(f"two files give the same id: {seen[image_id]} and {name} (the id is the path "
                             "without its suffix; rename one)", path=tags_csv, image_id=image_id)
        seen[image_id] = Path(name).as_posix()
        w, h = _image_size(path, image_id)
        records.append(ImageRecord(id=image_id, image=_rel(path, base), width=w, height=h,
                                   tags=sorted(set(tags), key=classes.index)))
    if not records:
        raise InputError("lists no images", path=tags_csv)
    return Manifest(classes=classes, images=records, name=folder.name, path=Path(out_path),
                    extra={"source": {"format": "folder", "folder": str(folder), "tags": str(tags_csv)}})
