"""`ws eval semantic` and wstools.eval.semantic: confusion matrix and the VOC protocol."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conftest import assert_bad_input, run_ws
from eval_stores import load_manifest, write_labels
from wstools.eval.semantic import confusion, scores
from wstools.io.dataset import load_semantic
from wstools.io.images import write_label_png

pytestmark = pytest.mark.cli


def test_hand_computed_confusion_and_scores():
    gt = np.array([[0, 0, 1], [1, 2, 255]], np.uint8)
    pred = np.array([[0, 1, 1], [255, 2, 2]], np.uint8)
    c = confusion(gt, pred, 2)                     # 255 in pred -> background
    assert c.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    c_ign = confusion(gt, pred, 2, unlabeled="ignore")
    assert c_ign.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    s = scores(c, ["a", "b"])
    assert s["protocol"] == "voc"
    iou = [r["iou"] for r in s["per_class"]]
    assert iou == pytest.approx([1 / 3, 1 / 3, 1.0])
    assert s["miou"] == pytest.approx((1 / 3 + 1 / 3 + 1) / 3)
    assert s["pixel_accuracy"] == pytest.approx(3 / 5)
    assert s["per_class"][1]["precision"] == pytest.approx(0.5)
    assert s["per_class"][1]["recall"] == pytest.approx(0.5)


def test_absent_class_left_out_and_empty_prediction_has_no_nan():
    gt = np.array([[0, 1], [1, 1]], np.uint8)
    s = scores(confusion(gt, np.zeros_like(gt), 3), ["a", "b", "c"])
    assert s["absent_classes"] == ["b", "c"]
    assert s["per_class"][2]["iou"] is None
    assert s["miou"] == pytest.approx((0.25 + 0.0) / 2)
    assert s["per_class"][1]["precision"] is None      # nothing predicted as a
    perfect = scores(confusion(gt, gt, 3), ["a", "b", "c"])
    assert perfect["miou"] == 1.0 and perfect["pixel_accuracy"] == 1.0 and perfect["mean_class_accuracy"] == 1.0


def test_label_above_k_is_refused():
    with pytest.raises(ValueError, match="label 7"):
        confusion(np.zeros((2, 2), np.uint8), np.full((2, 2), 7, np.uint8), 3)


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint8, (5, 6), elements=st.sampled_from([0, 1, 2, 3, 255])),
       arrays(np.uint8, (5, 6), elements=st.sampled_from([0, 1, 2, 3, 255])),
       st.sampled_from(["background", "ignore"]))
def test_confusion_matches_brute_force(gt, pred, unlabeled):
    c = confusion(gt, pred, 3, unlabeled=unlabeled)
    ref = np.zeros((4, 4), np.int64)
    for g, p in zip(gt.ravel(), pred.ravel()):
        if g == 255:
            continue
        if p == 255:
            if unlabeled == "ignore":
                continue
            p = 0
        ref[g, p] += 1
    assert (c == ref).all()


def _gt(m):
    return {rec.id: load_semantic(m, rec) for rec in m.images}


def test_cli_store_and_png_folder(toy_dir, tmp_path):
    val = toy_dir / "val.json"
    m = load_manifest(val)
    gts = _gt(m)
    perfect = tmp_path / "perfect.h5"
    write_labels(perfect, m, gts)
    r = run_ws("eval", "semantic", perfect, "--gt", val, "--csv", tmp_path / "s.csv")
    assert r.json["miou"] == 1.0 and r.json["protocol"] == "voc"
    assert "mIoU" in r.stderr
    assert len((tmp_path / "s.csv").read_text().splitlines()) == m.num_classes + 2
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, lab in gts.items():
        write_label_png(folder / f"{i}.png", lab)
    assert run_ws("eval", "semantic", folder, "--gt", val).json["miou"] == 1.0
    # degraded: shift the maps more and more -> mIoU falls monotonically
    prev = 1.0
    for shift in (1, 3, 6):
        p = tmp_path / f"shift{shift}.h5"
        write_labels(p, m, {i: np.roll(g, shift, axis=1) for i, g in gts.items()})
        miou = run_ws("eval", "semantic", p, "--gt", val).json["miou"]
        assert miou < prev
        prev = miou
    # empty prediction: only background, 0 IoU for every class, no NaN in the JSON
    empty = tmp_path / "empty.h5"
    write_labels(empty, m, {i: np.zeros_like(g) for i, g in gts.items()})
    r = run_ws("eval", "semantic", empty, "--gt", val)
    assert "NaN" not in r.stdout
    fg = [c["iou"] for c in r.json["per_class"][1:] if c["iou"] is not None]
    assert fg and all(v == 0.0 for v in fg)
    # seeds: unlabeled pixels as background vs ignored
    seeds = tmp_path / "seeds.h5"
    write_labels(seeds, m, {i: np.where(np.arange(g.shape[1])[None, :] % 2 == 0, g, 255).astype(np.uint8)
                            for i, g in gts.items()})
    bg = run_ws("eval", "semantic", seeds, "--gt", val).json
    ign = run_ws("eval", "semantic", seeds, "--gt", val, "--unlabeled", "ignore").json
    assert ign["miou"] == 1.0 and bg["miou"] < 1.0
    # every other column labelled: half of the scored pixels (GT 255 pixels are not counted)
    valid = sum(int((g != 255).sum()) for g in gts.values())
    kept = sum(int(((g != 255) & (np.arange(g.shape[1])[None, :] % 2 == 0)).sum()) for g in gts.values())
    assert ign["labeled_fraction"] == bg["labeled_fraction"] == pytest.approx(kept / valid)
    assert run_ws("eval", "semantic", empty, "--gt", val).json["labeled_fraction"] == 1.0


def test_cli_bad_inputs(toy_dir, tmp_path):
    val = toy_dir / "val.json"
    m = load_manifest(val)
    gts = _gt(m)
    part = tmp_path / "part.h5"
    write_labels(part, m, gts, ids=m.ids()[:-1])
    assert_bad_input(run_ws("eval", "semantic", part, "--gt", val, expect=2), str(part), m.ids()[-1])
    small = tmp_path / "small.h5"
    write_labels(small, m, {i: g[:-2] for i, g in gts.items()})
    assert_bad_input(run_ws("eval", "semantic", small, "--gt", val, expect=2), m.ids()[0], "64x62")
    high = tmp_path / "high.h5"
    write_labels(high, m, {i: np.full_like(g, 9) for i, g in gts.items()})
    assert_bad_input(run_ws("eval", "semantic", high, "--gt", val, expect=2), "label 9")
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, lab in gts.items():
        write_label_png(folder / f"{i}.png", lab)
    write_label_png(folder / "stranger.png", lab)
    assert_bad_input(run_ws("eval", "semantic", folder, "--gt", val, expect=2), "stranger")
    (folder / "stranger.png").unlink()
    (folder / f"{m.ids()[2]}.png").unlink()
    assert_bad_input(run_ws("eval", "semantic", folder, "--gt", val, expect=2), m.ids()[2])
    data = json.loads(val.read_text())
    for rec in data["images"]:
        rec.pop("semantic")
        rec["image"] = str(toy_dir / rec["image"])
    nogt = tmp_path / "nogt.json"
    nogt.write_text(json.dumps(data))
    assert_bad_input(run_ws("eval", "semantic", part, "--gt", nogt, expect=2), "semantic ground truth")
    assert_bad_input(run_ws("eval", "semantic", tmp_path / "none.h5", "--gt", val, expect=2), "does not exist")


def test_cli_pred_that_is_not_labels_says_what_pred_may_be(toy_dir, tmp_path):
    """Issue 14: `ws eval semantic MANIFEST.json` named only 'not an HDF5 file'; the error now says
    what PRED may be (a `labels` store or a folder of PNGs), for a non-HDF5 file and a wrong store."""
    val = toy_dir / "val.json"
    r = run_ws("eval", "semantic", val, "--gt", val, expect=2)
    assert_bad_input(r, str(val), "not an HDF5 file", "`labels` store", "folder of <id>.png")
    assert len([line for line in r.stderr.splitlines() if line.strip()]) == 1, r.stderr
    m = load_manifest(val)
    cams = tmp_path / "cams.h5"
    from wstools.io.cams import write_cam_group
    from wstools.io.store import create_store
    with create_store(cams, "cams", classes=m.classes, params={}, dataset=m) as store:
        for rec in m.images:
            labels = m.tag_labels(rec)
            with store.write_image(rec.id) as g:
                write_cam_group(g, np.zeros((len(labels), rec.height, rec.width), np.float32), labels,
                                m.tag_vector(rec))
    assert_bad_input(run_ws("eval", "semantic", cams, "--gt", val, expect=2), "'cams' store", "`labels` store")
