"""`ws eval cams` (IRN threshold sweep, classification mAP) and `ws eval assignment` (LIID Table 7)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_bad_input, run_ws
from eval_stores import gt_instance_masks, load_manifest, write_assignment, write_cams, write_proposals
from wstools.eval.assignment import assignment_scores, coverage, true_labels
from wstools.eval.cams import average_precision, threshold_confusions
from wstools.io.dataset import load_semantic

pytestmark = pytest.mark.cli


def test_threshold_sweep_hand_case():
    gt = np.array([[0, 1, 1, 2]], np.uint8)
    cams = np.array([[[0.1, 0.9, 0.3, 0.0]], [[0.0, 0.2, 0.2, 0.6]]], np.float32)
    c = threshold_confusions(cams, [1, 2], gt, 2, thresholds=(0.25, 0.5))
    # t=0.25: pred 0,1,1,2 (perfect); t=0.5: pred 0,1,0,2
    assert np.trace(c[0]) == 4
    assert c[1].tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    # no CAM at all: everything background
    empty = threshold_confusions(np.zeros((0, 1, 4)), [], gt, 2, thresholds=(0.5,))
    assert empty[0][:, 0].tolist() == [1, 2, 1]


def test_average_precision_hand_case_and_ties():
    # ranked: pos, neg, pos -> precision 1, 2/3 at recall 1/2, 1 -> AP = 0.5 + 0.5 * 2/3
    assert average_precision([0.9, 0.8, 0.7], [1, 0, 1]) == pytest.approx(0.5 + 1 / 3)
    # a tie of a positive and a negative at the top counts as one step of precision 1/2
    assert average_precision([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    assert average_precision([0.1, 0.2], [0, 0]) is None


def test_assignment_hand_case():
    iou = np.array([[0.9, 0.1], [0.3, 0.4], [0.2, 0.6], [0.0, 0.0]])
    true = true_labels(iou, [1, 2], 0.5)
    assert true.tolist() == [1, 0, 2, 0]
    s = assignment_scores(np.array([1, 2, 0, 0]), true, 2)
    assert s["accuracy"] == pytest.approx(0.5)
    assert s["noisy_kept"] == 1 and s["good_rejected"] == 1 and s["wrong_class"] == 0
    assert s["precision"][2] == 0.0 and s["recall"][1] == 1.0
    a, o = coverage(iou, [1, 2], np.array([1, 2, 0, 0]), 0.5)
    assert a.tolist() == [True, False] and o.tolist() == [True, True]


def _cams_from_gt(m, blur=0.0, rng=None):
    cams, scores = {}, {}
    for rec in m.images:
        g = load_semantic(m, rec)
        labels = m.tag_labels(rec)
        c = np.stack([(g == lab).astype(np.float32) * 0.8 for lab in labels])
        if blur:
            c = (1 - blur) * c + blur * rng.random(c.shape).astype(np.float32)
        cams[rec.id] = (labels, c)
        scores[rec.id] = m.tag_vector(rec) * 0.9 + 0.05
    return cams, scores


def test_cli_cams(toy_dir, tmp_path):
    train = toy_dir / "val.json"
    m = load_manifest(train)
    cams, scores = _cams_from_gt(m)
    p = tmp_path / "cams.h5"
    write_cams(p, m, cams, scores)
    r = run_ws("eval", "cams", p, "--gt", train, "--plot", tmp_path / "sweep.png", "--csv", tmp_path / "c.csv")
    j = r.json
    assert j["best_miou"] == 1.0 and j["classification_map"] == 1.0
    assert len(j["sweep"]) == 19 and j["sweep"][0]["threshold"] == 0.05
    # maps at 0.8: thresholds at or above 0.8 lose everything
    assert j["sweep"][-1]["miou"] < 0.5
    assert (tmp_path / "sweep.png").stat().st_size > 1000
    noisy_prev = 1.0
    rng = np.random.default_rng(0)
    for blur in (0.5, 0.8):
        cams, scores = _cams_from_gt(m, blur, rng)
        q = tmp_path / f"noisy{blur}.h5"
        write_cams(q, m, cams, scores)
        best = run_ws("eval", "cams", q, "--gt", train).json["best_miou"]
        assert best < noisy_prev
        noisy_prev = best
    # bad: wrong size
    bad = {i: (lab, c[:, :-1]) for i, (lab, c) in _cams_from_gt(m)[0].items()}
    b = tmp_path / "bad.h5"
    write_cams(b, m, bad, scores)
    assert_bad_input(run_ws("eval", "cams", b, "--gt", train, expect=2), m.ids()[0], "shape")
    assert_bad_input(run_ws("eval", "cams", p, "--gt", train, "--thresholds", "0.5:0.1:0.1", expect=2),
                     "--thresholds")


def test_cli_assignment(toy_dir, tmp_path):
    val = toy_dir / "val.json"
    m = load_manifest(val)
    masks, entries = {}, []
    rng = np.random.default_rng(0)
    for rec in m.images:
        gm, gl = gt_instance_masks(m, rec, objects=False)
        noise = np.zeros((1, rec.height, rec.width), bool)
        noise[0, :4, :4] = True
        masks[rec.id] = np.concatenate([gm, noise])
        entries += [(rec.id, j, int(lab)) for j, lab in enumerate(gl)] + [(rec.id, len(gl), 0)]
    props = tmp_path / "props.h5"
    write_proposals(props, m, masks)
    perfect = tmp_path / "perfect.h5"
    write_assignment(perfect, m, entries)
    r = run_ws("eval", "assignment", perfect, "--proposals", props, "--gt", val, "--csv", tmp_path / "a.csv").json
    assert r["accuracy"] == 1.0 and r["coverage"] == 1.0 and r["oracle_coverage"] == 1.0
    assert r["noisy_kept"] == 0 and r["good_rejected"] == 0
    # keep the noise and reject every second object: lower accuracy, coverage below the oracle
    worse = [(i, p, (1 if lab == 0 else (0 if k % 2 else lab))) for k, (i, p, lab) in enumerate(entries)]
    w = tmp_path / "worse.h5"
    write_assignment(w, m, worse)
    r = run_ws("eval", "assignment", w, "--proposals", props, "--gt", val).json
    assert r["accuracy"] < 1.0 and r["noisy_kept"] == len(m.images) and r["good_rejected"] > 0
    assert r["coverage"] < r["oracle_coverage"] == 1.0
    # bad: proposal index out of range, image unknown to the manifest
    bad = tmp_path / "bad.h5"
    write_assignment(bad, m, entries + [(m.ids()[0], 99, 1)])
    assert_bad_input(run_ws("eval", "assignment", bad, "--proposals", props, "--gt", val, expect=2), "99",
                     m.ids()[0])
    data = json.loads(val.read_text())
    data["images"] = data["images"][1:]
    for rec in data["images"]:
        for key in ("image", "semantic", "instances", "objects"):
            rec[key] = str(toy_dir / rec[key])
    fewer = tmp_path / "fewer.json"
    fewer.write_text(json.dumps(data))
    assert_bad_input(run_ws("eval", "assignment", perfect, "--proposals", props, "--gt", fewer, expect=2),
                     m.ids()[0])



@pytest.mark.parametrize("poison, fragment", [(float("nan"), "cams hold NaN or inf"), (float("inf"), "NaN or inf"),
                                              (-0.5, "outside [0, 1]"), (5.0, "values in [0, 5]")])
def test_cli_cams_refuses_maps_outside_the_unit_range(toy_dir, tmp_path, poison, fragment):
    from conftest import run_ws_inproc

    val = toy_dir / "val.json"
    m = load_manifest(val)
    cams, scores = _cams_from_gt(m)
    victim = m.ids()[2]
    labels, c = cams[victim]
    c = c.copy()
    c[0, 3, 3] = poison
    cams[victim] = (labels, c)
    p = tmp_path / "cams.h5"
    write_cams(p, m, cams, scores)
    assert_bad_input(run_ws_inproc("eval", "cams", p, "--gt", val, expect=2), "cams.h5", f"image {victim}", fragment)
