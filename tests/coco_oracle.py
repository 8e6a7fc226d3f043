"""pycocotools' COCOeval run on in-memory data: the oracle of the instance tests and benchmark."""

from __future__ import annotations

import contextlib
import io

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def random_case(rng, n_images=6, size=(96, 128), n_cats=3, crowd=True, max_gt=5, max_dt=12):
    """Random GT and detections: per image dict(gt_masks, gt_labels, gt_crowd, dt_masks, dt_labels, dt_scores)."""
    h, w = size
    images = []
    for _ in range(n_images):
        n_gt = int(rng.integers(0, max_gt + 1))
        gt, gl, gc = [], [], []
        for _ in range(n_gt):
            m = np.zeros((h, w), bool)
            y0, x0 = rng.integers(0, h - 4), rng.integers(0, w - 4)
            y1, x1 = rng.integers(y0 + 2, h + 1), rng.integers(x0 + 2, w + 1)
            m[y0:y1, x0:x1] = True
            if rng.random() < 0.5:
                m &= rng.random((h, w)) < 0.9
            gt.append(m)
            gl.append(int(rng.integers(1, n_cats + 1)))
            gc.append(bool(crowd and rng.random() < 0.15))
        dt, dl, ds = [], [], []
        for _ in range(int(rng.integers(0, max_dt + 1))):
            if gt and rng.random() < 0.7:
                j = int(rng.integers(len(gt)))
                m = gt[j].copy()
                dy, dx = rng.integers(-6, 7, 2)
                m = np.roll(m, (int(dy), int(dx)), axis=(0, 1))
                lab = gl[j] if rng.random() < 0.8 else int(rng.integers(1, n_cats + 1))
            else:
                m = np.zeros((h, w), bool)
                y0, x0 = rng.integers(0, h - 4), rng.integers(0, w - 4)
                m[y0:y0 + int(rng.integers(2, 40)), x0:x0 + int(rng.integers(2, 40))] = True
                lab = int(rng.integers(1, n_cats + 1))
            dt.append(m)
            dl.append(lab)
            ds.append(float(np.round(rng.random(), 2)))   # rounded: ties happen
        z = np.zeros((0, h, w), bool)
        images.append({"gt_masks": np.stack(gt) if gt else z, "gt_labels": np.array(gl, np.int64),
                       "gt_crowd": np.array(gc, bool), "dt_masks": np.stack(dt) if dt else z,
                       "dt_labels": np.array(dl, np.int64), "dt_scores": np.array(ds)})
    return images


def _rle(m):
    r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return r


def coco_eval(images, categories):
    """Run COCOeval (segm) on ``images`` (image i gets id i+1); returns the COCOeval object."""
    gt_json = {"images": [], "annotations": [], "categories": [{"id": int(c), "name": str(c)} for c in categories]}
    results = []
    ann_id = 1
    for i, im in enumerate(images):
        h, w = im["gt_masks"].shape[1:] if len(im["gt_masks"]) else im["dt_masks"].shape[1:]
        gt_json["images"].append({"id": i + 1, "height": int(h), "width": int(w)})
        for m, lab, cr in zip(im["gt_masks"], im["gt_labels"], im["gt_crowd"]):
            r = _rle(m)
            bbox = mask_utils.toBbox(r).tolist()
            gt_json["annotations"].append({"id": ann_id, "image_id": i + 1, "category_id": int(lab),
                                           "segmentation": r, "area": float(mask_utils.area(r)),
                                           "bbox": bbox, "iscrowd": int(cr)})
            ann_id += 1
        for m, lab, s in zip(im["dt_masks"], im["dt_labels"], im["dt_scores"]):
            results.append({"image_id": i + 1, "category_id": int(lab), "segmentation": _rle(m), "score": float(s)})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = gt_json
        gt.createIndex()
        if results:
            dt = gt.loadRes(results)
        else:   # loadRes cannot take an empty list
            dt = COCO()
            dt.dataset = {"images": gt_json["images"], "annotations": [], "categories": gt_json["categories"]}
            dt.createIndex()
        ev = COCOeval(gt, dt, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev
