"""``ws oracle``: oracle CAMs and the oracle assignment, and what the stages make of them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_bad_input, run_ws_inproc as ws
from wstools.eval.oracle import oracle_assignment, oracle_cams

pytestmark = pytest.mark.cli


def test_oracle_cams_hand_computed():
    sem = np.zeros((5, 6), np.uint8)
    sem[1:3, 1:3] = 2
    sem[4, :] = 255                      # a void border: neither class nor background
    cams, bg = oracle_cams(sem, [2, 4], sigma=0)
    assert cams.shape == (2, 5, 6) and cams.dtype == np.float32
    np.testing.assert_array_equal(cams[0], (sem == 2).astype(np.float32))
    assert not cams[1].any()             # tagged, absent from the map
    np.testing.assert_array_equal(bg, (sem == 0).astype(np.float32))
    blurred, _ = oracle_cams(sem, [2], sigma=1.0)
    assert blurred.max() == pytest.approx(1.0) and blurred.min() >= 0
    assert 0 < blurred[0, 0, 0] < blurred[0, 1, 1]   # smooth, peaked inside the mask
    with pytest.raises(ValueError):
        oracle_cams(sem, [2], sigma=float("nan"))


def test_oracle_assignment_is_the_true_labels():
    iou = np.array([[0.9, 0.1], [0.4, 0.3], [0.2, 0.6]])
    np.testing.assert_array_equal(oracle_assignment(iou, np.array([3, 1])), [3, 0, 1])
    np.testing.assert_array_equal(oracle_assignment(np.zeros((2, 0)), np.zeros(0, int)), [0, 0])


def _last(result):
    return json.loads(result.stdout.splitlines()[-1])


def test_oracle_assignment_scores_perfectly(toy_dir, tmp_path):
    train = toy_dir / "train.json"
    ws("propose", train, "-o", tmp_path / "p.h5", "--quiet")
    ws("oracle", "assignment", tmp_path / "p.h5", "--gt", train, "-o", tmp_path / "o.h5")
    report = _last(ws("eval", "assignment", tmp_path / "o.h5", "--proposals", tmp_path / "p.h5", "--gt", train))
    assert report["accuracy"] == 1.0
    assert report["coverage"] == report["oracle_coverage"] > 0.5
    ws("export-coco", tmp_path / "o.h5", "--proposals", tmp_path / "p.h5", "--manifest", train,
       "--semantic", tmp_path / "png")
    assert _last(ws("eval", "semantic", tmp_path / "png", "--gt", train))["miou"] > 0.4


def test_oracle_cams_make_near_perfect_cues(toy_dir, tmp_path):
    train = toy_dir / "train.json"
    ws("oracle", "cams", train, "-o", tmp_path / "c.h5")
    ws("grow", "seeds", tmp_path / "c.h5", "--fg", "rel:0.3", "--bg", "features:0.2", "-o", tmp_path / "s.h5")
    assert _last(ws("eval", "semantic", tmp_path / "s.h5", "--gt", train))["miou"] > 0.75
    cams = _last(ws("eval", "cams", tmp_path / "c.h5", "--gt", train))
    assert cams["best_miou"] > 0.8


def test_oracle_bad_input(toy_dir, tmp_path):
    manifest = json.loads((toy_dir / "train.json").read_text())
    for rec in manifest["images"]:
        rec.pop("semantic", None)
        rec.pop("instances", None)
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(manifest))
    for name in ("images", "masks", "objects"):
        if (toy_dir / name).exists():
            (tmp_path / name).symlink_to(toy_dir / name)
    assert_bad_input(ws("oracle", "cams", bare, "-o", tmp_path / "c.h5", expect=None), "semantic ground truth")
    assert not (tmp_path / "c.h5").exists()
    assert_bad_input(ws("oracle", "assignment", tmp_path / "missing.h5", "--gt", toy_dir / "train.json",
                        "-o", tmp_path / "o.h5", expect=None), "missing.h5")


def test_oracle_instances_are_the_ground_truth(toy_dir, tmp_path):
    train = toy_dir / "train.json"
    out = tmp_path / "gt.json"
    summary = _last(ws("oracle", "instances", train, "-o", out))
    assert summary["annotations"] > summary["images"] > 0
    report = _last(ws("eval", "instance", out, "--gt", train))
    assert report["coco"]["AP"] == pytest.approx(1.0)
    assert_bad_input(ws("oracle", "instances", train, "-o", out, expect=None), "exists")
