"""`ws eval proposals` and wstools.eval.proposals: ABO / MABO / recall against N."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays

from conftest import assert_bad_input, run_ws
from eval_stores import gt_instance_masks, load_manifest, rect_mask, write_proposals
from wstools.eval.proposals import best_overlaps, evaluate_proposals, summarize_overlaps

pytestmark = pytest.mark.cli


def test_hand_computed_abo_and_recall():
    h = w = 10
    g1 = rect_mask(h, w, 0, 4, 0, 4)       # 16 px
    g2 = rect_mask(h, w, 5, 10, 5, 10)     # 25 px
    p1 = rect_mask(h, w, 0, 4, 0, 2)       # IoU with g1 = 8/16 = 0.5
    p2 = rect_mask(h, w, 5, 10, 5, 9)      # IoU with g2 = 20/25 = 0.8
    p3 = rect_mask(h, w, 0, 4, 0, 4)       # IoU with g1 = 1
    r = evaluate_proposals([np.stack([g1, g2])], [np.stack([p1, p2, p3])], gt_labels_per_image=[["a", "b"]],
                           ns=(1, 2, None))
    by = r["mask"]["by_n"]
    assert by["1"]["abo"] == pytest.approx((0.5 + 0.0) / 2)
    assert by["2"]["abo"] == pytest.approx((0.5 + 0.8) / 2)
    assert by["all"]["abo"] == pytest.approx((1.0 + 0.8) / 2)
    assert by["1"]["recall@0.5"] == 0.5 and by["1"]["recall@0.7"] == 0.0
    assert by["2"]["recall@0.7"] == 0.5
    assert by["all"]["recall@0.7"] == 1.0
    # boxes of these rectangles equal the masks, so box IoU = mask IoU
    assert r["box"]["by_n"]["2"]["abo"] == pytest.approx(by["2"]["abo"])
    assert r["mask"]["per_class"]["a"]["abo@all"] == 1.0


def test_mabo_is_mean_of_class_abo():
    best = np.array([[1.0], [0.0], [0.0], [0.6]])
    s = summarize_overlaps(best, np.array(["a", "a", "a", "b"]), ns=(None,))
    assert s["by_n"]["all"]["abo"] == pytest.approx(1.6 / 4)
    assert s["by_n"]["all"]["mabo"] == pytest.approx((1 / 3 + 0.6) / 2)
    agnostic = summarize_overlaps(best, None, ns=(None,))
    assert agnostic["by_n"]["all"]["mabo"] == agnostic["by_n"]["all"]["abo"]


def test_no_proposals_and_no_objects_give_zero_not_nan():
    g = np.stack([rect_mask(8, 8, 0, 3, 0, 3)])
    r = evaluate_proposals([g], [np.zeros((0, 8, 8), bool)])
    assert r["mask"]["by_n"]["all"]["abo"] == 0.0
    r = evaluate_proposals([np.zeros((0, 8, 8), bool)], [g])
    assert r["mask"]["objects"] == 0 and r["mask"]["by_n"]["1"]["recall@0.5"] == 0.0


def test_box_iou_uses_given_boxes():
    g = np.stack([rect_mask(10, 10, 0, 4, 0, 4)])
    p = np.stack([rect_mask(10, 10, 0, 4, 0, 4)])
    r = best_overlaps(g, p, proposal_boxes=[[0, 0, 2, 4]], ns=(None,))
    assert r["mask"][0, 0] == 1.0
    assert r["box"][0, 0] == pytest.approx(0.5)


@settings(max_examples=25, deadline=None)
@given(arrays(bool, (3, 6, 7)), arrays(bool, (4, 6, 7)))
def test_best_overlap_matches_brute_force(gt, props):
    r = best_overlaps(gt, props, ns=(1, 2, None))
    for gi in range(3):
        ious = []
        for pi in range(4):
            inter = (gt[gi] & props[pi]).sum()
            union = (gt[gi] | props[pi]).sum()
            ious.append(inter / union if union else 0.0)
        assert r["mask"][gi, 0] == pytest.approx(ious[0])
        assert r["mask"][gi, 1] == pytest.approx(max(ious[:2]))
        assert r["mask"][gi, 2] == pytest.approx(max(ious))


def _gt_props(manifest, objects=False, erode=0):
    out = {}
    for rec in manifest.images:
        m, _ = gt_instance_masks(manifest, rec, objects=objects)
        if erode:
            m = m.copy()
            m[:, :erode] = False
            m[:, -erode:] = False
            m[:, :, :erode] = False
            m[:, :, -erode:] = False
            m = np.stack([_erode(x, erode) for x in m]) if len(m) else m
        out[rec.id] = m
    return out


def _erode(mask, k):
    import cv2

    return cv2.erode(mask.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)).astype(bool)


def test_cli_gt_proposals_score_one_degraded_lower(toy_dir, tmp_path):
    val = toy_dir / "val.json"
    m = load_manifest(val)
    perfect = tmp_path / "perfect.h5"
    write_proposals(perfect, m, _gt_props(m))
    r = run_ws("eval", "proposals", perfect, "--gt", val, "--csv", tmp_path / "p.csv",
               "--plot", tmp_path / "p.png").json
    assert r["mask"]["by_n"]["all"]["abo"] == pytest.approx(1.0)
    assert r["mask"]["by_n"]["all"]["mabo"] == pytest.approx(1.0)
    assert r["box"]["by_n"]["all"]["recall@0.7"] == 1.0
    assert r["class_agnostic"] is False
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert "class" in (tmp_path / "p.csv").read_text().splitlines()[0]
    # distractors count as objects: the target-only proposals miss them unless the toy has none
    allr = run_ws("eval", "proposals", perfect, "--gt", val, "--objects", "all").json
    n_objects = sum(len(rec.extra["object_families"]) for rec in m.images)
    assert allr["num_objects"] == n_objects
    assert allr["num_objects"] > r["num_objects"]
    assert allr["mask"]["by_n"]["all"]["recall@0.5"] < 1.0
    # every object as a proposal: perfect again
    objs = tmp_path / "objects.h5"
    write_proposals(objs, m, _gt_props(m, objects=True))
    allr = run_ws("eval", "proposals", objs, "--gt", val, "--objects", "all").json
    assert allr["mask"]["by_n"]["all"]["abo"] == pytest.approx(1.0)
    # monotone degradation
    prev = 1.0
    for k in (1, 2, 4):
        p = tmp_path / f"eroded{k}.h5"
        write_proposals(p, m, _gt_props(m, erode=k))
        abo = run_ws("eval", "proposals", p, "--gt", val).json["mask"]["by_n"]["all"]["abo"]
        assert abo < prev
        prev = abo


def test_cli_bad_inputs(toy_dir, tmp_path):
    val = toy_dir / "val.json"
    m = load_manifest(val)
    props = _gt_props(m)
    # store lacking an image
    part = tmp_path / "part.h5"
    m_part = load_manifest(val)
    m_part.images = m_part.images[:-1]
    write_proposals(part, m_part, props)
    assert_bad_input(run_ws("eval", "proposals", part, "--gt", val, expect=2), str(part), m.images[-1].id)
    # size mismatch
    big = tmp_path / "big.json"
    data = json.loads(val.read_text())
    data["images"][0]["width"] = 65
    for rec in data["images"]:
        for key in ("image", "semantic", "instances", "objects"):
            rec[key] = str(toy_dir / rec[key])
    big.write_text(json.dumps(data))

    bad = tmp_path / "bad.h5"
    write_proposals(bad, m, props)
    r = run_ws("eval", "proposals", bad, "--gt", big, expect=2)
    assert_bad_input(r, m.images[0].id)
    # manifest without instance GT
    for rec in data["images"]:
        rec.pop("instances")
    data["images"][0]["width"] = 64
    nogt = tmp_path / "nogt.json"
    nogt.write_text(json.dumps(data))
    assert_bad_input(run_ws("eval", "proposals", bad, "--gt", nogt, expect=2), "instance ground truth")
    # --objects all without objects maps
    for rec in data["images"]:
        rec.pop("objects")
    noobj = tmp_path / "noobj.json"
    noobj.write_text(json.dumps(data))
    assert_bad_input(run_ws("eval", "proposals", bad, "--gt", noobj, "--objects", "all", expect=2), "objects")
    assert_bad_input(run_ws("eval", "proposals", bad, "--gt", val, "--top", "0,5", expect=2), "--top")
    # wrong kind of store
    from eval_stores import write_labels

    lab = tmp_path / "labels.h5"
    write_labels(lab, m, {rec.id: np.zeros((64, 64), np.uint8) for rec in m.images})
    assert_bad_input(run_ws("eval", "proposals", lab, "--gt", val, expect=2), "labels")

