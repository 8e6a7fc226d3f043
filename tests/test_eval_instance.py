"""`ws eval instance` and wstools.eval.instance: COCO AP == pycocotools, mAP^r, ABO."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from coco_oracle import coco_eval, random_case
from conftest import assert_bad_input, run_ws
from eval_stores import gt_instance_masks, load_manifest, rect_mask
from wstools.eval.instance import InstanceEvaluator, voc_ap

pytestmark = pytest.mark.cli

warnings.filterwarnings("ignore", category=DeprecationWarning)


def _ours(images, categories, **kw):
    ev = InstanceEvaluator(categories, **kw)
    for im in images:
        ev.add(im["gt_masks"], im["gt_labels"], im["dt_masks"], im["dt_labels"], im["dt_scores"],
               gt_crowd=im["gt_crowd"])
    return ev


def _assert_same_as_pycocotools(images, categories):
    ref = coco_eval(images, categories)
    ev = _ours(images, categories)
    precision, recall = ev.coco_arrays()
    assert np.allclose(precision, ref.eval["precision"], atol=1e-9, rtol=0)
    assert np.allclose(recall, ref.eval["recall"], atol=1e-9, rtol=0)
    stats, _ = ev.coco_stats()
    assert np.allclose(list(stats.values()), ref.stats, atol=1e-9, rtol=0)
    return stats


@pytest.mark.parametrize("seed", range(6))
def test_coco_ap_equals_pycocotools_random(seed):
    rng = np.random.default_rng(seed)
    images = random_case(rng, n_images=5, crowd=seed % 2 == 0)
    _assert_same_as_pycocotools(images, [1, 2, 3])


def test_coco_ap_many_detections_class_without_gt_and_empty_predictions():
    rng = np.random.default_rng(100)
    images = random_case(rng, n_images=2, n_cats=1, crowd=False, max_gt=3, max_dt=0)
    for im in images:     # > 100 detections of one class in an image: maxDets cuts
        n = 130
        h, w = im["gt_masks"].shape[1:]
        masks = np.zeros((n, h, w), bool)
        for i in range(n):
            y, x = rng.integers(0, h - 10), rng.integers(0, w - 10)
            masks[i, y:y + 10, x:x + 10] = True
        if len(im["gt_masks"]):
            masks[:len(im["gt_masks"])] = im["gt_masks"]
        im.update(dt_masks=masks, dt_labels=np.ones(n, np.int64), dt_scores=rng.random(n))
    stats = _assert_same_as_pycocotools(images, [1, 2])     # category 2 has no GT: left out
    assert stats["AP"] > 0
    for im in images:
        im.update(dt_masks=im["dt_masks"][:0], dt_labels=im["dt_labels"][:0], dt_scores=im["dt_scores"][:0])
    stats = _assert_same_as_pycocotools(images, [1, 2])
    assert stats["AP"] == 0.0


def test_perfect_prediction_scores_one():
    rng = np.random.default_rng(3)
    images = random_case(rng, n_images=4, crowd=False)
    for im in images:
        im.update(dt_masks=im["gt_masks"], dt_labels=im["gt_labels"], dt_scores=np.ones(len(im["gt_labels"])))
    ev = _ours(images, [1, 2, 3])
    r = ev.result()
    assert r["coco"]["AP"] == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in r["map_r"].values())
    assert r["abo"] == pytest.approx(1.0)


def test_hand_computed_map_r_and_abo():
    h = w = 20
    g1, g2 = rect_mask(h, w, 0, 5, 0, 5), rect_mask(h, w, 10, 20, 10, 20)
    d_far = rect_mask(h, w, 0, 5, 12, 20)
    d_half = rect_mask(h, w, 10, 20, 10, 15)       # IoU 0.5 with g2
    ev = InstanceEvaluator([1], mapr_thresholds=(0.25, 0.5, 0.75))
    ev.add(np.stack([g1, g2]), [1, 1], np.stack([g1, d_far, d_half]), [1, 1, 1], [0.9, 0.8, 0.7])
    r = ev.result()
    # ranked TP, FP, TP at 0.5: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> AP = 0.5 + 0.5 * 2/3
    assert r["map_r"]["0.5"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert r["map_r"]["0.25"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert r["map_r"]["0.75"] == pytest.approx(0.5)          # d_half is a FP at 0.75
    assert r["abo"] == pytest.approx((1.0 + 0.5) / 2)
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(0.5 + 1 / 3)


def _results(manifest, erode=0, drop=False):
    import cv2

    out = []
    for rec in manifest.images:
        masks, labels = gt_instance_masks(manifest, rec)
        for m, lab in zip(masks, labels):
            if erode:
                m = cv2.erode(m.astype(np.uint8), np.ones((2 * erode + 1,) * 2, np.uint8)).astype(bool)
            r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            r["counts"] = r["counts"].decode()
            out.append({"image_id": rec.id, "category_id": int(lab), "segmentation": r, "score": 0.9})
    return [] if drop else out


def test_cli_gt_scores_one_degraded_lower_empty_zero(toy_dir, tmp_path):
    val = toy_dir / "val.json"
    m = load_manifest(val)
    perfect = tmp_path / "perfect.json"
    perfect.write_text(json.dumps(_results(m)))
    r = run_ws("eval", "instance", perfect, "--gt", val, "--csv", tmp_path / "i.csv", "--plot", tmp_path / "pr.png")
    j = r.json
    assert j["coco"]["AP"] == pytest.approx(1.0) and j["abo"] == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in j["map_r"].values() if v is not None)
    assert "AP50" in r.stderr and (tmp_path / "pr.png").stat().st_size > 1000
    assert "ap^r@0.5" in (tmp_path / "i.csv").read_text()
    prev = 1.0
    for k in (1, 2, 3):
        p = tmp_path / f"e{k}.json"
        p.write_text(json.dumps(_results(m, erode=k)))
        ap = run_ws("eval", "instance", p, "--gt", val).json["coco"]["AP"]
        assert ap < prev
        prev = ap
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    r = run_ws("eval", "instance", empty, "--gt", val)
    assert "NaN" not in r.stdout and r.json["coco"]["AP"] == 0.0 and r.json["abo"] == 0.0


def test_cli_bad_inputs(toy_dir, tmp_path):
    val = toy_dir / "val.json"
    m = load_manifest(val)
    res = _results(m)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(res + [dict(res[0], image_id="nope")]))
    assert_bad_input(run_ws("eval", "instance", bad, "--gt", val, expect=2), "nope", str(bad))
    bad.write_text(json.dumps(res + [dict(res[0], category_id=77)]))
    assert_bad_input(run_ws("eval", "instance", bad, "--gt", val, expect=2), "77")
    seg = dict(res[0]["segmentation"], size=[32, 32])
    bad.write_text(json.dumps([dict(res[0], segmentation=seg)]))
    assert_bad_input(run_ws("eval", "instance", bad, "--gt", val, expect=2), "size", res[0]["image_id"])
    bad.write_text(json.dumps({"not": "results"}))
    assert_bad_input(run_ws("eval", "instance", bad, "--gt", val, expect=2), "results")
    data = json.loads(val.read_text())
    for rec in data["images"]:
        rec.pop("instances")
    nogt = tmp_path / "nogt.json"
    nogt.write_text(json.dumps(data))
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps(res))
    assert_bad_input(run_ws("eval", "instance", ok, "--gt", nogt, expect=2), "instance ground truth")
