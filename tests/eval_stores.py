"""Write the stores `ws eval` reads, as a user bringing their own results would (tests only)."""

from __future__ import annotations

import h5py
import numpy as np

from wstools import masks as mask_io
from wstools.io.dataset import load_instances, load_manifest, load_objects
from wstools.io.store import create_store, write_rles


def gt_instance_masks(manifest, rec, objects=False):
    """(G, H, W) bool masks and labels of an image's ground truth (instances or all objects)."""
    inst = load_objects(manifest, rec) if objects else load_instances(manifest, rec)
    return inst.masks(), inst.labels


def write_proposals(path, manifest, masks_per_image: dict, scores_per_image: dict | None = None, boxes=None):
    """A `proposals` store: ``masks_per_image[id]`` is (N, H, W) bool, in ranked order."""
    with create_store(path, "proposals", classes=manifest.classes, params={"test": True}, dataset=manifest,
                      command="test") as st:
        for rec in manifest.images:
            m = np.asarray(masks_per_image[rec.id], dtype=bool).reshape(-1, rec.height, rec.width)
            counts = mask_io.encode(m)
            with st.write_image(rec.id) as g:
                b = mask_io.boxes(counts, rec.height, rec.width) if boxes is None else boxes[rec.id]
                g.create_dataset("boxes", data=np.asarray(b, np.float32).reshape(-1, 4))
                s = np.linspace(1, 0, len(m), dtype=np.float32) if scores_per_image is None \
                    else scores_per_image[rec.id]
                g.create_dataset("scores", data=np.asarray(s, np.float32))
                write_rles(g, "masks", counts)
                g.attrs["height"] = rec.height
                g.attrs["width"] = rec.width


def write_labels(path, manifest, labels_per_image: dict, ids=None):
    """A `labels` store: ``labels_per_image[id]`` is (H, W) uint8."""
    with create_store(path, "labels", classes=manifest.classes, params={"test": True}, dataset=manifest,
                      command="test") as st:
        for image_id in (ids if ids is not None else manifest.ids()):
            with st.write_image(image_id) as g:
                g.create_dataset("labels", data=np.asarray(labels_per_image[image_id], np.uint8))


def write_cams(path, manifest, cams_per_image: dict, scores_per_image: dict):
    """A `cams` store: ``cams_per_image[id] = (labels (C,), cams (C, H, W))``, scores (K,)."""
    with create_store(path, "cams", classes=manifest.classes, params={"test": True}, dataset=manifest,
                      command="test") as st:
        for rec in manifest.images:
            labels, cams = cams_per_image[rec.id]
            with st.write_image(rec.id) as g:
                g.create_dataset("labels", data=np.asarray(labels, np.int64))
                g.create_dataset("cams", data=np.asarray(cams, np.float16))
                g.create_dataset("scores", data=np.asarray(scores_per_image[rec.id], np.float32))


def write_assignment(path, manifest, entries: list, classes=None):
    """An `assignment` store from ``entries = [(image_id, proposal_index, label), ...]``."""
    ids = manifest.ids()
    used = sorted({e[0] for e in entries}, key=ids.index)
    index = {i: k for k, i in enumerate(used)}
    with create_store(path, "assignment", classes=classes or manifest.classes, params={"test": True},
                      dataset=manifest, command="test") as st:
        h5 = st.h5
        h5.create_dataset("labels", data=np.array([e[2] for e in entries], np.int64))
        h5.create_dataset("image_ids", data=np.array(used, dtype=object), dtype=h5py.string_dtype())
        h5.create_dataset("image", data=np.array([index[e[0]] for e in entries], np.int64))
        h5.create_dataset("proposal", data=np.array([e[1] for e in entries], np.int64))
        for k, v in (("objective", 0.0), ("bound", 0.0), ("gap", 0.0), ("method", "test")):
            h5.attrs[k] = v
        h5.create_dataset("component_sizes", data=np.array([len(entries)], np.int64))
        h5.create_dataset("component_exact", data=np.array([True]))


__all__ = ["load_manifest", "gt_instance_masks", "write_proposals", "write_labels", "write_cams",
           "write_assignment"]


def rect_mask(h, w, y0, y1, x0, x1):
    """An (h, w) boolean mask, True on rows y0:y1 and columns x0:x1 (for hand-computed cases)."""
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def write_gt_cams(path, manifest, sigma: float = 3.0):
    """A `cams` store of Gaussian-blurred ground truth (one map per present class, max 1); returns
    ``{image id: GT label map}``. Stands in for a classifier's CAMs in the `ws grow` tests."""
    from scipy import ndimage

    from wstools.io.dataset import load_semantic

    cams, scores, gts = {}, {}, {}
    for rec in manifest.images:
        gt = load_semantic(manifest, rec)
        gts[rec.id] = gt
        labels = [c for c in range(1, len(manifest.classes) + 1) if (gt == c).any()]
        maps = [ndimage.gaussian_filter((gt == c).astype(np.float32), sigma) for c in labels]
        maps = [x / max(x.max(), 1e-6) for x in maps]
        cams[rec.id] = (np.array(labels, np.int64), np.array(maps, np.float32).reshape(-1, *gt.shape))
        scores[rec.id] = np.zeros(len(manifest.classes), np.float32)
    write_cams(path, manifest, cams, scores)
    return gts
