"""Dataset manifests: the list of images, their tags and (optionally) ground truth.

A manifest is a JSON file of kind ``dataset``::

    {"ws_kind": "dataset", "ws_schema": 1, "name": "toy-train",
     "classes": ["disc", "square", ...],          # label 0 is background, classes[i] is label i+1
     "images": [{"id": "000001", "image": "images/000001.png",
                 "width": 128, "height": 128, "tags": ["disc"],
                 "semantic": "semantic/000001.png",     # optional: palette PNG, 0..K, 255 ignore
                 "instances": "instances/000001.png"}]}  # optional: instance-id PNG, or a list

``instances`` is either the path of an instance-id PNG (0 background, 255 ignore,
1..n instances; each instance's class is the majority of the semantic PNG inside
it, as in VOC's SegmentationObject/SegmentationClass pair) or a list of
``{"label": NAME, "segmentation": RLE-or-polygons, "iscrowd": 0|1}``.
All paths are relative to the manifest's folder. Unknown keys are kept.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .. import masks as mask_io
from .atomic import write_json_atomic
from .images import read_image, read_label_png

KIND = "dataset"
SCHEMA = 1
_RECORD_KEYS = ("id", "image", "width", "height", "tags")


@dataclass
class ImageRecord:
    id: str
    image: str
    width: int
    height: int
    tags: list
    semantic: str | None = None
    instances: object = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = {"id": self.id, "image": self.image, "width": self.width, "height": self.height,
             "tags": list(self.tags)}
        if self.semantic is not None:
            d["semantic"] = self.semantic
        if self.instances is not None:
            d["instances"] = self.instances
        d.update(self.extra)
        return d


@dataclass
class Manifest:
    classes: list
    images: list
    name: str = ""
    path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return Path(".") if self.path is None else self.path.parent

    @property
    def num_classes(self) -> int:
        """K, the number of foreground classes (labels are 0..K)."""
        return len(self.classes)

    def label_of(self, name: str) -> int:
        return self._index()[name]

    def _index(self):
        if not hasattr(self, "_label_index"):
            self._label_index = {c: i + 1 for i, c in enumerate(self.classes)}
        return self._label_index

    def category_ids(self) -> list:
        """COCO category id of each class (label i+1 -> ids[i]); 1..K unless the manifest says."""
        return list(self.extra.get("category_ids") or range(1, self.num_classes + 1))

    def tag_labels(self, rec: ImageRecord) -> np.ndarray:
        """The image's tags as sorted labels in 1..K."""
        idx = self._index()
        return np.array(sorted(idx[t] for t in rec.tags), dtype=np.int64)

    def tag_vector(self, rec: ImageRecord) -> np.ndarray:
        """(K,) float32 multi-hot vector of the image's tags."""
        v = np.zeros(self.num_classes, dtype=np.float32)
        labels = self.tag_labels(rec)
        v[labels - 1] = 1.0
        return v

    def resolve(self, relative: str) -> Path:
        return self.root / relative

    def image_path(self, rec: ImageRecord) -> Path:
        return self.resolve(rec.image)

    def read_image(self, rec: ImageRecord) -> np.ndarray:
        """(H, W, 3) uint8; refuses a file whose size differs from the manifest's."""
        img = read_image(self.image_path(rec), image_id=rec.id)
        if img.shape[:2] != (rec.height, rec.width):
            raise InputError(f"image is {img.shape[1]}x{img.shape[0]} px but the manifest says "
                             f"{rec.width}x{rec.height}", path=self.image_path(rec), image_id=rec.id)
        return img

    def by_id(self) -> dict:
        if not hasattr(self, "_by_id"):
            self._by_id = {r.id: r for r in self.images}
        return self._by_id

    def ids(self) -> list:
        return [r.id for r in self.images]

    def has_semantic_gt(self) -> bool:
        return bool(self.images) and all(r.semantic is not None for r in self.images)

    def has_instance_gt(self) -> bool:
        return bool(self.images) and all(r.instances is not None for r in self.images)

    def to_json(self) -> dict:
        d = {"ws_kind": KIND, "ws_schema": SCHEMA, "name": self.name, "classes": list(self.classes),
             "images": [r.to_json() for r in self.images]}
        d.update(self.extra)
        return d

    def sha256(self) -> str:
        """Hash of the manifest's content (not its formatting)."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def tags_sha256(self) -> str:
        """Hash of what weak supervision sees: classes, image ids, sizes and tags (not the ground
        truth, the image paths or unknown keys), so adding GT keeps it."""
        d = {"classes": list(self.classes),
             "images": [[r.id, r.width, r.height, list(r.tags)] for r in self.images]}
        return hashlib.sha256(json.dumps(d, separators=(",", ":")).encode()).hexdigest()

    def provenance(self) -> dict:
        """What a store records of the manifest it was made from: the path as given, the absolute
        path (to find it from another folder), both hashes, the name and the image count."""
        return {"path": None if self.path is None else str(self.path),
                "abspath": None if self.path is None else str(Path(self.path).resolve()),
                "sha256": self.sha256(), "tags_sha256": self.tags_sha256(),
                "name": self.name, "images": len(self.images)}


def _fail(path, problem, image_id=None):
    raise InputError(problem, path=path, image_id=image_id)


def manifest_from_json(data, path=None) -> Manifest:
    """Build a Manifest from parsed JSON, checking its structure (not the files it names)."""
    if not isinstance(data, dict):
        _fail(path, "not a dataset manifest (top level is not an object)")
    kind = data.get("ws_kind", KIND)
    if kind != KIND:
        _fail(path, f"is a {kind!r} file, not a dataset manifest")
    schema = data.get("ws_schema", SCHEMA)
    if not isinstance(schema, int) or schema > SCHEMA:
        _fail(path, f"manifest schema {schema} is newer than this ws understands ({SCHEMA}); upgrade ws")
    classes = data.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes):
        _fail(path, "'classes' must be a non-empty list of class names")
    if len(set(classes)) != len(classes):
        _fail(path, "'classes' has duplicate names")
    if any(c.lower() == "background" for c in classes):
        _fail(path, "'classes' lists 'background'; label 0 is background implicitly")
    if len(classes) > 254:
        _fail(path, "more than 254 classes do not fit uint8 label maps")
    images = data.get("images")
    if not isinstance(images, list):
        _fail(path, "'images' must be a list")
    known = set(classes)
    seen = set()
    records = []
    for i, item in enumerate(images):
        if not isinstance(item, dict):
            _fail(path, f"images[{i}] is not an object")
        missing = [k for k in _RECORD_KEYS if k not in item]
        image_id = item.get("id", f"#{i}")
        if missing:
            _fail(path, f"missing {', '.join(missing)}", image_id)
        if not isinstance(item["id"], str) or not item["id"]:
            _fail(path, f"images[{i}]: 'id' must be a non-empty string")
        if image_id in seen:
            _fail(path, "duplicate image id", image_id)
        seen.add(image_id)
        w, h = item["width"], item["height"]
        if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
            _fail(path, "'width' and 'height' must be positive integers", image_id)
        tags = item["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            _fail(path, "'tags' must be a list of class names", image_id)
        unknown = [t for t in tags if t not in known]
        if unknown:
            _fail(path, f"tag {unknown[0]!r} is not in classes", image_id)
        if len(set(tags)) != len(tags):
            _fail(path, "duplicate tags", image_id)
        extra = {k: v for k, v in item.items() if k not in _RECORD_KEYS + ("semantic", "instances")}
        records.append(ImageRecord(id=item["id"], image=item["image"], width=w, height=h, tags=list(tags),
                                   semantic=item.get("semantic"), instances=item.get("instances"),
                                   extra=extra))
    extra = {k: v for k, v in data.items() if k not in ("ws_kind", "ws_schema", "name", "classes", "images")}
    return Manifest(classes=list(classes), images=records, name=str(data.get("name", "")),
                    path=None if path is None else Path(path), extra=extra)


_BINARY_KINDS = ((b"\x89HDF\r\n\x1a\n", "an HDF5 file (a ws store?)"), (b"PK\x03\x04", "a zip or torch file"),
                 (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"))


def load_manifest(path, require_images: bool = False) -> Manifest:
    """Read and structurally validate a manifest; ``InputError`` (exit 2) on any problem.
    ``require_images``: a manifest listing no images is refused too (a stage that reads images)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        _fail(path, "manifest does not exist")
    except OSError as e:
        _fail(path, f"cannot read manifest ({e.__class__.__name__})")
    for magic, what in _BINARY_KINDS:
        if raw.startswith(magic):
            _fail(path, f"is {what}, not a dataset manifest (JSON, written by `ws dataset` or `ws toy`)")
    try:
        text = raw.decode()
    except UnicodeDecodeError as e:
        _fail(path, f"cannot read manifest ({e.__class__.__name__})")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        _fail(path, f"not valid JSON (line {e.lineno}: {e.msg})")
    m = manifest_from_json(data, path)
    if require_images and not m.images:
        _fail(path, "the manifest lists no images")
    return m


def _recorded_candidates(recorded: dict, store_path) -> list[Path]:
    """Where a store's recorded manifest may be: the path as given (relative to the folder the
    store was made in, when that was the working folder), the absolute path recorded, the path
    relative to the store's folder, and the manifest's file name next to the store."""
    out = []
    path = recorded.get("path")
    if path:
        out.append(Path(path))
    if recorded.get("abspath"):
        out.append(Path(recorded["abspath"]))
    if path and store_path is not None:
        here = Path(store_path).parent
        if not Path(path).is_absolute():
            out.append(here / path)
        out.append(here / Path(path).name)
    unique = []
    for p in out:
        if p not in unique:
            unique.append(p)
    return unique


def _input_candidates(path: str, store_path) -> list[Path]:
    out = [Path(path)]
    if store_path is not None:
        here = Path(store_path).parent
        if not Path(path).is_absolute():
            out.append(here / path)
        out.append(here / Path(path).name)
    return out


def recorded_dataset(store, depth: int = 4):
    """``(dataset provenance, path of the store that records it)`` of a store, or of the first of
    its input stores (recursively, ``depth`` levels) that records one: a ``ws grow seeds`` store
    made without ``--manifest`` finds the manifest of its CAMs. ``(None, store.path)`` if none."""
    if store.dataset:
        return store.dataset, store.path
    if depth > 0:
        from .store import open_store

        for inp in store.inputs or []:
            for p in _input_candidates(str(inp.get("path", "")), store.path) if inp.get("path") else []:
                if not p.is_file():
                    continue
                try:
                    with open_store(p) as s:
                        found = recorded_dataset(s, depth - 1)
                except InputError:
                    continue
                if found[0]:
                    return found
                break
    return None, store.path


def recorded_manifest(store, option: str = "--dataset") -> Manifest:
    """The manifest a store (or, failing that, its input stores) records in its provenance,
    found from any folder: see :func:`_recorded_candidates`; of several that exist, the one whose
    content matches the recorded sha256 is preferred. ``InputError`` naming every path tried, and
    ``option``, when none exists."""
    recorded, where = recorded_dataset(store)
    recorded = recorded or {}
    tried = _recorded_candidates(recorded, where)
    if not tried:
        raise InputError(f"records no dataset manifest (nor do its inputs); pass {option} MANIFEST",
                         path=store.path)
    found = [p for p in tried if p.is_file()]
    if not found:
        raise InputError(f"cannot find the dataset manifest it was made from (tried "
                         f"{', '.join(str(p) for p in tried)}); pass {option} MANIFEST", path=store.path)
    manifests = [load_manifest(p) for p in found]
    for m in manifests:
        if m.sha256() == recorded.get("sha256"):
            return m
    return manifests[0]


def manifest_difference(manifest: Manifest, recorded: dict | None, store_path=None) -> str | None:
    """Why ``manifest`` is not the one a store was made from (``recorded`` is the store's
    ``dataset`` provenance), or None when it is, or when it differs only in what weak
    supervision does not read (ground truth, image paths, unknown keys). The reason names the
    first difference: classes, images missing or added, an image's size or tags."""
    if not recorded or recorded.get("sha256") in (None, manifest.sha256()):
        return None
    if recorded.get("tags_sha256") == manifest.tags_sha256():
        return None
    other = None
    for p in _recorded_candidates(recorded, store_path):
        if p.is_file():
            try:
                m = load_manifest(p)
            except InputError:
                continue
            if m.sha256() == recorded.get("sha256"):
                other = m
                break
    if other is None:
        if recorded.get("tags_sha256") is None and recorded.get("images") == len(manifest.images):
            return None   # recorded before tags_sha256 existed: the hash cannot tell GT from tags
        n = recorded.get("images")
        return (f"was made from another manifest ({recorded.get('path')}, {n} images, sha256 "
                f"{str(recorded.get('sha256'))[:12]}) than {manifest.path} ({len(manifest.images)} images)")
    if other.tags_sha256() == manifest.tags_sha256():
        return None
    if other.classes != manifest.classes:
        return (f"classes differ: the store's manifest {other.path} has {other.classes}, "
                f"{manifest.path} has {manifest.classes}")
    mine, theirs = manifest.by_id(), other.by_id()
    added = [i for i in mine if i not in theirs]
    missing = [i for i in theirs if i not in mine]
    if missing:
        return f"{manifest.path} lacks {len(missing)} images of {other.path} (e.g. {missing[0]})"
    if added:
        return f"{manifest.path} has {len(added)} images that {other.path} lacks (e.g. {added[0]})"
    for i, rec in mine.items():
        o = theirs[i]
        if (rec.width, rec.height) != (o.width, o.height):
            return (f"image {i} is {rec.width}x{rec.height} in {manifest.path} but "
                    f"{o.width}x{o.height} in {other.path}")
        if list(rec.tags) != list(o.tags):
            return f"image {i} has tags {rec.tags} in {manifest.path} but {o.tags} in {other.path}"
    return f"{manifest.path} lists its images in another order than {other.path}"


def save_manifest(manifest: Manifest, path, force: bool = False) -> None:
    write_json_atomic(path, manifest.to_json(), force=force, indent=1)


def load_semantic(manifest: Manifest, rec: ImageRecord) -> np.ndarray:
    """Ground-truth semantic labels, (H, W) uint8 in 0..K with 255 = ignore."""
    if rec.semantic is None:
        _fail(manifest.path, "has no semantic ground truth", rec.id)
    path = manifest.resolve(rec.semantic)
    lab = read_label_png(path, rec.id)
    if lab.shape != (rec.height, rec.width):
        _fail(path, f"semantic map is {lab.shape[1]}x{lab.shape[0]}, image is {rec.width}x{rec.height}", rec.id)
    bad = (lab > manifest.num_classes) & (lab != 255)
    if bad.any():
        _fail(path, f"semantic map has label {int(lab[bad].max())} > K={manifest.num_classes}", rec.id)
    return lab


@dataclass
class InstanceGT:
    """Ground-truth instances of one image: RLE ``counts``, labels in 1..K, crowd flags."""

    counts: list
    labels: np.ndarray
    iscrowd: np.ndarray
    height: int
    width: int

    def masks(self) -> np.ndarray:
        return mask_io.decode(self.counts, self.height, self.width)


def _instances_from_png(manifest, rec) -> InstanceGT:
    path = manifest.resolve(rec.instances)
    inst = read_label_png(path, rec.id)
    if inst.shape != (rec.height, rec.width):
        _fail(path, f"instance map is {inst.shape[1]}x{inst.shape[0]}, image is {rec.width}x{rec.height}", rec.id)
    sem = load_semantic(manifest, rec) if rec.semantic is not None else None
    ids = [int(i) for i in np.unique(inst) if i not in (0, 255)]
    masks, labels = [], []
    for i in ids:
        m = inst == i
        if sem is not None:
            vals = sem[m]
            vals = vals[(vals != 0) & (vals != 255)]
            if vals.size == 0:
                continue
            label = int(np.bincount(vals).argmax())
        elif len(rec.tags) == 1:
            label = manifest.label_of(rec.tags[0])
        else:
            _fail(path, "instance PNG needs a semantic PNG to give instance classes", rec.id)
        masks.append(m)
        labels.append(label)
    arr = np.stack(masks) if masks else np.zeros((0, rec.height, rec.width), bool)
    return InstanceGT(mask_io.encode(arr), np.array(labels, dtype=np.int64),
                      np.zeros(len(labels), dtype=bool), rec.height, rec.width)


def _instances_from_list(manifest, rec) -> InstanceGT:
    counts, labels, crowd = [], [], []
    for j, ann in enumerate(rec.instances):
        if not isinstance(ann, dict) or "segmentation" not in ann or "label" not in ann:
            _fail(manifest.path, f"instances[{j}] needs 'label' and 'segmentation'", rec.id)
        name = ann["label"]
        if name not in manifest.classes:
            _fail(manifest.path, f"instances[{j}] has label {name!r} not in classes", rec.id)
        seg = ann["segmentation"]
        if isinstance(seg, list):
            c = mask_io.from_polygons(seg, rec.height, rec.width)
        elif isinstance(seg, dict) and "counts" in seg:
            if list(seg.get("size", [])) != [rec.height, rec.width]:
                _fail(manifest.path, f"instances[{j}] RLE size {seg.get('size')} differs from the image "
                      f"({rec.height}, {rec.width})", rec.id)
            c = seg["counts"]
            c = mask_io.from_uncompressed(seg) if isinstance(c, list) else (c.encode() if isinstance(c, str) else c)
        else:
            _fail(manifest.path, f"instances[{j}] segmentation is neither polygons nor RLE", rec.id)
        counts.append(c)
        labels.append(manifest.label_of(name))
        crowd.append(bool(ann.get("iscrowd", 0)))
    return InstanceGT(counts, np.array(labels, dtype=np.int64), np.array(crowd, dtype=bool), rec.height, rec.width)


def load_instances(manifest: Manifest, rec: ImageRecord) -> InstanceGT:
    """Ground-truth instances of one image (see the module docstring for the two forms)."""
    if rec.instances is None:
        _fail(manifest.path, "has no instance ground truth", rec.id)
    if isinstance(rec.instances, str):
        return _instances_from_png(manifest, rec)
    if isinstance(rec.instances, list):
        return _instances_from_list(manifest, rec)
    _fail(manifest.path, "'instances' must be a PNG path or a list", rec.id)


def check_manifest(manifest: Manifest, read_files: bool = True) -> list[dict]:
    """Every problem of a manifest: ``[{"image": id, "problem": text}, ...]``.

    Checks beyond the structure that ``load_manifest`` enforces: images with
    no tags, image files that are missing, unreadable or of the wrong size,
    ground-truth maps that are missing, of the wrong size or out of range.
    """
    problems = []

    def add(rec, text):
        problems.append({"image": rec.id, "problem": text})

    for rec in manifest.images:
        if not rec.tags:
            add(rec, "image has no tags")
        if read_files:
            for fn in (manifest.read_image,
                       (lambda r: load_semantic(manifest, r)) if rec.semantic is not None else None,
                       (lambda r: load_instances(manifest, r)) if rec.instances is not None else None):
                if fn is None:
                    continue
                try:
                    fn(rec)
                except InputError as e:
                    add(rec, f"{e.path}: {e.problem}" if e.path else e.problem)
        if rec.semantic is not None and read_files and not any(p["image"] == rec.id for p in problems):
            sem = load_semantic(manifest, rec)
            present = {manifest.classes[i - 1] for i in np.unique(sem) if 0 < i <= manifest.num_classes}
            missing = present - set(rec.tags)
            if missing:
                add(rec, f"semantic map shows {sorted(missing)} which the tags lack")
    return problems


def load_objects(manifest: Manifest, rec: ImageRecord) -> InstanceGT:
    """Every object of an image, distractors included, from the ``objects`` PNG of ``ws toy``
    manifests (0 background, 1..m objects); for class-agnostic proposal recall.

    The returned ``labels`` are the object ids of the PNG (1..m); :func:`object_families`
    names their shape families when the record lists them.
    """
    path_rel = rec.extra.get("objects")
    if not isinstance(path_rel, str):
        _fail(manifest.path, "has no 'objects' map (only `ws toy` manifests have one; use --objects targets)",
              rec.id)
    path = manifest.resolve(path_rel)
    obj = read_label_png(path, rec.id)
    if obj.shape != (rec.height, rec.width):
        _fail(path, f"objects map is {obj.shape[1]}x{obj.shape[0]}, image is {rec.width}x{rec.height}", rec.id)
    ids = [int(i) for i in np.unique(obj) if i not in (0, 255)]
    arr = np.stack([obj == i for i in ids]) if ids else np.zeros((0, rec.height, rec.width), bool)
    return InstanceGT(mask_io.encode(arr), np.array(ids, dtype=np.int64), np.zeros(len(ids), dtype=bool),
                      rec.height, rec.width)


def object_families(rec: ImageRecord, object_ids) -> list | None:
    """Family name of each object id (1-based) of a ``ws toy`` record, or None if unknown."""
    fams = rec.extra.get("object_families")
    if not isinstance(fams, list):
        return None
    try:
        return [str(fams[int(i) - 1]) for i in object_ids]
    except IndexError:
        return None
