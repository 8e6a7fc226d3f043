"""What ``ws info`` reports about a manifest or a store, as plain data."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError
from .dataset import load_manifest
from .store import open_store

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise InputError("file does not exist", path=path) from None
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror})", path=path) from None
    return head == HDF5_SIGNATURE


def describe_manifest(path) -> dict:
    m = load_manifest(path)
    tag_counts = Counter(t for r in m.images for t in r.tags)
    n_tags = [len(r.tags) for r in m.images]
    sizes = Counter((r.width, r.height) for r in m.images)
    return {
        "file": str(path), "kind": "dataset", "schema": 1, "name": m.name,
        "counts": {"images": len(m.images), "classes": m.num_classes,
                   "untagged_images": sum(1 for n in n_tags if n == 0),
                   "tags_per_image": round(float(np.mean(n_tags)), 3) if n_tags else 0.0},
        "classes": m.classes,
        "images_per_class": {c: tag_counts.get(c, 0) for c in m.classes},
        "ground_truth": {"semantic": sum(r.semantic is not None for r in m.images),
                         "instances": sum(r.instances is not None for r in m.images)},
        "image_sizes": {f"{w}x{h}": n for (w, h), n in sizes.most_common(5)},
        "extra": {k: v for k, v in m.extra.items()},
    }


_IMAGE_PATH = re.compile(r"^images/[^/]+")


class _Summary:
    def __init__(self):
        self.count = 0
        self.shapes = Counter()
        self.dtype = None
        self.elements = 0
        self.min = np.inf
        self.max = -np.inf
        self.total = 0.0
        self.finite = 0
        self.nonfinite = 0

    def add(self, ds: h5py.Dataset, stats: bool, max_elements: int):
        self.count += 1
        self.shapes[tuple(ds.shape)] += 1
        self.elements += int(np.prod(ds.shape)) if ds.shape else 1
        if h5py.check_vlen_dtype(ds.dtype) is not None:
            self.dtype = "vlen " + str(h5py.check_vlen_dtype(ds.dtype))
            return
        self.dtype = str(ds.dtype)
        if not stats or ds.dtype.kind not in "biuf" or ds.size == 0:
            return
        rows = ds.shape[0] if ds.shape else 1
        step = max(1, int(np.prod(ds.shape[1:])) if ds.ndim > 1 else 1)
        chunk = max(1, max_elements // step)
        for start in range(0, rows, chunk):
            x = np.asarray(ds[start:start + chunk] if ds.shape else ds[()], dtype=np.float64)
            ok = np.isfinite(x)
            self.nonfinite += int((~ok).sum())
            x = x[ok]
            if x.size:
                self.min = min(self.min, float(x.min()))
                self.max = max(self.max, float(x.max()))
                self.total += float(x.sum())
                self.finite += x.size
            if not ds.shape:
                break

    def to_json(self):
        shapes = [list(s) for s, _ in self.shapes.most_common(3)]
        d = {"count": self.count, "dtype": self.dtype, "elements": self.elements,
             "shape" if self.count == 1 else "common_shapes": shapes[0] if self.count == 1 else shapes}
        if self.finite:
            d.update(min=self.min, max=self.max, mean=self.total / self.finite)
        if self.nonfinite:
            d["nonfinite"] = self.nonfinite
        return d


def describe_store(path, stats: bool = True, sample_images: int = 200, max_elements: int = 1 << 22) -> dict:
    """Kind, provenance, counts and a summary of every dataset (per-image datasets
    are aggregated as ``images/*/NAME``; value statistics use the first
    ``sample_images`` images)."""
    with open_store(path) as s:
        info = {"file": str(path), **s.provenance()}
        datasets = {}
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in s.h5.attrs.items()
                 if k not in ("ws_kind", "ws_schema", "ws_version", "ws_uid", "command", "params", "classes",
                              "dataset", "inputs", "complete")}
        seen_images = set()

        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset):
                return
            m = _IMAGE_PATH.match(name)
            key = name
            use_stats = stats
            if m:
                image = m.group(0)
                key = "images/*" + name[len(image):]
                if image not in seen_images:
                    seen_images.add(image)
                use_stats = stats and len(seen_images) <= sample_images
            datasets.setdefault(key, _Summary()).add(obj, use_stats, max_elements)

        s.h5.visititems(visit)
        images = s.image_ids() if "images" in s.h5 else []
        counts = {"classes": len(s.classes)}
        if "images" in s.h5:
            counts["images"] = len(images)
        if s.kind == "proposals" and "images/*/boxes" in datasets:
            counts["proposals"] = int(sum(sh[0] * n for sh, n in datasets["images/*/boxes"].shapes.items()))
        for name in ("feat", "labels", "image", "unary"):
            if name in s.h5 and isinstance(s.h5[name], h5py.Dataset) and s.h5[name].ndim >= 1:
                counts.setdefault("rows", int(s.h5[name].shape[0]))
        if s.kind in ("features", "assignment") and "rows" in counts:
            counts["proposals"] = counts.pop("rows")
        if s.kind == "graph" and "rows" in counts:
            counts["nodes"] = counts.pop("rows")
        info["counts"] = counts
        if s.kind == "assignment":
            info["assignment"] = _assignment_report(s, attrs)
        info["attrs"] = attrs
        info["datasets"] = {k: v.to_json() for k, v in sorted(datasets.items())}
        return info


def _assignment_report(s, attrs) -> dict:
    """The cut's report (label distribution, reductions, seconds, warnings) of an assignment store;
    for stores written before reports existed, the label distribution from ``labels``."""
    text = attrs.pop("report", None)
    if text:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    if "labels" not in s.h5:
        return {}
    counts = np.bincount(s.h5["labels"][()].astype(np.int64), minlength=len(s.classes) + 1)
    return {"labels": {"noise": int(counts[0]), **{str(c): {"kept": int(counts[i + 1])} for i, c in
                                                      enumerate(s.classes)}}}


def describe(path, **kw) -> dict:
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder; give a manifest (.json) or a store (.h5)", path=path)
    if is_hdf5(path):
        return describe_store(path, **kw)
    kw.clear()
    from .checkpoint import describe_checkpoint, is_torch_file

    if is_torch_file(path):
        return describe_checkpoint(path)
    if path.suffix in (".h5", ".hdf5"):
        try:
            h5py.File(path, "r").close()
        except OSError:
            raise InputError("not an HDF5 file, or truncated", path=path) from None
    try:
        head = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError("neither a ws store (HDF5), a checkpoint (torch) nor a manifest (JSON)",
                         path=path) from None
    if isinstance(head, dict) and head.get("ws_kind", "dataset") == "dataset" and "images" in head \
            and "annotations" not in head:
        return describe_manifest(path)
    if isinstance(head, (list, dict)):
        return describe_json(path, head)
    raise InputError("not a ws file", path=path)


def describe_json(path, data) -> dict:
    """COCO instances / results JSON (the toolkit's exports)."""
    if isinstance(data, list):
        cats = Counter(d.get("category_id") for d in data if isinstance(d, dict))
        return {"file": str(path), "kind": "coco-results", "counts": {"detections": len(data),
                "categories": len(cats)}}
    if "annotations" in data and "images" in data:
        return {"file": str(path), "kind": "coco-instances",
                "counts": {"images": len(data["images"]), "annotations": len(data["annotations"]),
                           "categories": len(data.get("categories", []))},
                "categories": [c.get("name") for c in data.get("categories", [])]}
    raise InputError("JSON file is neither a manifest nor a COCO file", path=path)


def format_text(info: dict) -> str:
    """Readable form of :func:`describe`'s result."""
    lines = [f"{info['file']}: {info['kind']}" + (f" (schema {info['schema']})" if "schema" in info else "")]
    for key in ("name", "ws_version", "uid", "command", "written_by", "arch", "stride", "gray", "task", "epochs"):
        if info.get(key) is not None and info.get(key) != "":
            lines.append(f"  {key}: {info[key]}")
    if info.get("metrics"):
        lines.append("  metrics: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                               for k, v in info["metrics"].items()))
    if info.get("params"):
        lines.append("  params: " + json.dumps(info["params"], sort_keys=True))
    if info.get("dataset"):
        d = info["dataset"]
        lines.append(f"  dataset: {d.get('path')} ({d.get('images')} images, sha256 {str(d.get('sha256'))[:12]})")
    for inp in info.get("inputs", []) or []:
        lines.append(f"  input: {inp.get('path')} ({inp.get('kind')}, uid {str(inp.get('uid'))[:12]})")
    if "counts" in info:
        lines.append("  counts: " + ", ".join(f"{k} {v}" for k, v in info["counts"].items()))
    if info.get("classes"):
        lines.append("  classes: " + ", ".join(info["classes"]))
    if info.get("images_per_class"):
        lines.append("  images per class: " + ", ".join(f"{k} {v}" for k, v in info["images_per_class"].items()))
    if info.get("ground_truth"):
        lines.append("  ground truth: " + ", ".join(f"{k} {v}" for k, v in info["ground_truth"].items()))
    rep = info.get("assignment") or {}
    if rep.get("labels"):
        dist = rep["labels"]
        parts = [f"noise {dist.get('noise', 0)}"]
        for name, d in dist.items():
            if name != "noise" and isinstance(d, dict) and (d.get("kept") or d.get("noise")):
                parts.append(f"{name} {d.get('kept', 0)} kept" + (f" / {d['noise']} noise" if "noise" in d else ""))
        lines.append("  labels: " + ", ".join(parts))
    if rep.get("fixed"):
        lines.append("  settled by: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in rep["fixed"].items()))
    if rep.get("seconds"):
        lines.append("  seconds: " + ", ".join(f"{k} {v}" for k, v in rep["seconds"].items()))
    if rep.get("inexact_components"):
        lines.append(f"  inexact components: {rep['inexact_components']}")
    for w in rep.get("warnings", []):
        lines.append(f"  WARNING: {w}")
    for k, v in (info.get("attrs") or {}).items():
        lines.append(f"  {k}: {v}")
    if info.get("datasets"):
        lines.append("  datasets:")
        width = max(len(k) for k in info["datasets"])
        for name, d in info["datasets"].items():
            shape = d.get("shape", d.get("common_shapes"))
            text = f"    {name:<{width}}  {d['dtype']:<14} x{d['count']:<6} shape {shape}"
            if "min" in d:
                text += f"  min {d['min']:.4g} max {d['max']:.4g} mean {d['mean']:.4g}"
            if d.get("nonfinite"):
                text += f"  NON-FINITE {d['nonfinite']}"
            lines.append(text)
    return "\n".join(lines)
