"""``ws cam peaks``, ``ws icn train|infer`` and ``ws match`` through the command line (conftest.run_ws),
on tiny toy data, down to ``ws eval instance``; one test per listed bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from conftest import assert_bad_input, run_ws

pytestmark = pytest.mark.cli

T = ["--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def route(toy_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("prm")
    run_ws("cam", "train", toy_dir / "train.json", "--arch", "tiny", "--stride", "8", "--crop", "64", "--epochs", "1",
           "--batch-size", "8", "--optimizer", "adam", "--lr", "0.002", *T, "-o", out / "cls.pt")
    for split in ("train", "val"):
        run_ws("propose", toy_dir / f"{split}.json", "--top", "40", "-o", out / f"props_{split}.h5")
        run_ws("cam", "peaks", toy_dir / f"{split}.json", "--model", out / "cls.pt", *T, "-o", out / f"prm_{split}.h5")
    return out


def test_peaks_layout(route, toy_dir):
    manifest = json.loads((toy_dir / "val.json").read_text())
    classes = manifest["classes"]
    with h5py.File(route / "prm_val.h5", "r") as f:
        assert f.attrs["ws_kind"] == "responses"
        total = 0
        for rec in manifest["images"]:
            g = f["images"][rec["id"]]
            pk, maps = g["peaks"][()], g["maps"]
            assert pk.dtype == np.float32 and pk.shape[1] == 4 and maps.dtype == np.float16
            assert maps.shape == (len(pk), rec["height"], rec["width"])
            assert set(pk[:, 0].astype(int)) <= {classes.index(t) + 1 for t in rec["tags"]}
            assert ((pk[:, 1] >= 0) & (pk[:, 1] < rec["height"]) & (pk[:, 2] < rec["width"])).all()
            if len(pk):
                m = maps[()].astype(np.float32)
                assert m.min() >= 0 and m.max() <= 1 and np.allclose(m.max(axis=(1, 2)), 1, atol=1e-3)
            # --at-least-one: every tagged class has a peak
            assert {int(x) for x in pk[:, 0]} == {classes.index(t) + 1 for t in rec["tags"]}
            total += len(pk)
    assert total > 0


def test_match_then_eval(route, toy_dir):
    for score in ("rebalanced", "plain"):
        res = route / f"res_{score}.json"
        r = run_ws("match", toy_dir / "val.json", "--responses", route / "prm_val.h5", "--proposals",
                   route / "props_val.h5", "--score", score, "-o", res)
        assert r.json["detections"] > 0 and r.json["detections"] <= r.json["instances"]
        dets = json.loads(res.read_text())
        assert {"image_id", "category_id", "segmentation", "score"} <= set(dets[0])
        assert all(d["category_id"] in range(1, 6) and d["segmentation"]["size"] == [64, 64] for d in dets)
    ev = run_ws("eval", "instance", route / "res_rebalanced.json", "--gt", toy_dir / "val.json").json
    assert set(ev["map_r"]) == {"0.25", "0.5", "0.75"} and 0 <= ev["abo"] <= 1


def test_icn_train_infer_match(route, toy_dir):
    r = run_ws("icn", "train", toy_dir / "train.json", "--responses", route / "prm_train.h5", "--proposals",
               route / "props_train.h5", "--encoder", "tiny", "--size", "32", "--epochs", "1", "--batch-size", "8",
               *T, "-o", route / "icn.pt")
    assert r.json["instances"] > 0 and np.isfinite(r.json["metrics"]["loss"])
    assert (route / "icn.log.jsonl").exists() and not (route / "icn.last.pt").exists()
    r = run_ws("icn", "infer", toy_dir / "val.json", "--responses", route / "prm_val.h5", "--model", route / "icn.pt",
               "--steps", "2", *T, "-o", route / "enh_val.h5")
    assert r.json["images"] == 8 and r.json["steps"] == 2
    with h5py.File(route / "prm_val.h5", "r") as a, h5py.File(route / "enh_val.h5", "r") as b:
        assert b.attrs["ws_kind"] == "responses"
        for k in a["images"]:
            np.testing.assert_array_equal(a["images"][k]["peaks"][()], b["images"][k]["peaks"][()])
            assert a["images"][k]["maps"].shape == b["images"][k]["maps"].shape
    r = run_ws("match", toy_dir / "val.json", "--responses", route / "enh_val.h5", "--proposals",
               route / "props_val.h5", "-o", route / "res_icn.json")
    run_ws("eval", "instance", route / "res_icn.json", "--gt", toy_dir / "val.json")


def _responses(path, toy_dir, peaks_of):
    from wstools.io.dataset import load_manifest
    from wstools.io.responses import write_response_group
    from wstools.io.store import create_store

    m = load_manifest(toy_dir / "val.json")
    with create_store(path, "responses", classes=m.classes, params={}, dataset=m) as s:
        for rec in m.images:
            pk = np.asarray(peaks_of(rec), np.float32).reshape(-1, 4)
            with s.write_image(rec.id) as g:
                write_response_group(g, pk, np.ones((len(pk), rec.height, rec.width), np.float32))


def test_image_without_peaks_is_not_an_error(route, toy_dir, tmp_path):
    _responses(tmp_path / "empty.h5", toy_dir, lambda rec: [])
    r = run_ws("match", toy_dir / "val.json", "--responses", tmp_path / "empty.h5", "--proposals",
               route / "props_val.h5", "-o", tmp_path / "res.json")
    assert r.json["detections"] == 0 and json.loads((tmp_path / "res.json").read_text()) == []


def test_bad_peak_class(route, toy_dir, tmp_path):
    _responses(tmp_path / "bad.h5", toy_dir, lambda rec: [[9, 3, 3, 1.0]])
    r = run_ws("match", toy_dir / "val.json", "--responses", tmp_path / "bad.h5", "--proposals",
               route / "props_val.h5", "-o", tmp_path / "res.json", expect=2)
    assert_bad_input(r, "class label 9", "bad.h5")
    assert not (tmp_path / "res.json").exists()


def test_bad_proposals_without_masks(route, toy_dir, tmp_path):
    from wstools.io.dataset import load_manifest
    from wstools.io.store import create_store

    m = load_manifest(toy_dir / "val.json")
    with create_store(tmp_path / "nomask.h5", "proposals", classes=m.classes, params={}, dataset=m) as s:
        for rec in m.images:
            with s.write_image(rec.id) as g:
                g.attrs["height"], g.attrs["width"] = rec.height, rec.width
                g.create_dataset("boxes", data=np.zeros((1, 4), np.float32))
                g.create_dataset("scores", data=np.ones(1, np.float32))
    for cmd in (["match"], ["icn", "train"]):
        extra = ["--encoder", "tiny"] if cmd[0] == "icn" else []
        r = run_ws(*cmd, toy_dir / "val.json", "--responses", route / "prm_val.h5", "--proposals",
                   tmp_path / "nomask.h5", *extra, "-o", tmp_path / "out.x", expect=2)
        assert_bad_input(r, "no masks", "nomask.h5")
        assert not (tmp_path / "out.x").exists()


def test_bad_icn_checkpoint_kind(route, toy_dir, tmp_path):
    r = run_ws("icn", "infer", toy_dir / "val.json", "--responses", route / "prm_val.h5", "--model",
               route / "cls.pt", *T, "-o", tmp_path / "e.h5", expect=2)
    assert_bad_input(r, "classifier checkpoint", "cls.pt")
    assert not (tmp_path / "e.h5").exists()


def test_peaks_refuses_other_checkpoint_and_wrong_store(route, toy_dir, tmp_path):
    if (route / "icn.pt").exists():
        r = run_ws("cam", "peaks", toy_dir / "val.json", "--model", route / "icn.pt", *T, "-o", tmp_path / "p.h5",
                   expect=2)
        assert_bad_input(r, "icn checkpoint")
    r = run_ws("match", toy_dir / "val.json", "--responses", route / "props_val.h5", "--proposals",
               route / "props_val.h5", "-o", tmp_path / "r.json", expect=2)
    assert_bad_input(r, "expected 'responses'")
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "p.h5").exists()


def test_flag_alternatives_run(route, toy_dir, tmp_path):
    """The paper-ambiguity alternatives (`ws cam peaks --peak-map raw --gradient positive`, `ws
    match --contour band --soft --nms-on mask-all --det-score peak`) run and are recorded."""
    from conftest import run_ws_inproc

    r = run_ws_inproc("cam", "peaks", toy_dir / "val.json", "--model", route / "cls.pt", "--peak-map", "raw",
                      "--gradient", "positive", "--max-peaks", "2", *T, "-o", tmp_path / "p.h5")
    assert 0 < r.json["peaks"] <= 2 * 5 * 8
    with h5py.File(tmp_path / "p.h5", "r") as f:
        params = json.loads(f.attrs["params"])
        assert params["peak_map"] == "raw" and params["gradient"] == "positive"
    a = run_ws_inproc("match", toy_dir / "val.json", "--responses", route / "prm_val.h5", "--proposals",
                      route / "props_val.h5", "--det-score", "peak", "-o", tmp_path / "a.json").json
    b = run_ws_inproc("match", toy_dir / "val.json", "--responses", route / "prm_val.h5", "--proposals",
                      route / "props_val.h5", "--contour", "band", "--soft", "--nms-on", "mask-all", "--nms", "0.3",
                      "--det-score", "peak", "-o", tmp_path / "b.json").json
    assert 0 < b["detections"] <= a["detections"]         # NMS across classes drops at least as many


def test_icn_pairs_random_crop(route, toy_dir):
    """`ws icn train --crop-scale`: crops keep the sample's shapes and a binary target; scale 1
    is the flip-only sample; the same (seed, epoch, index) gives the same crop."""
    from wstools.io.dataset import load_manifest
    from wstools.io.responses import read_response_group
    from wstools.io.store import open_store
    from wstools.cli.icn.data import IcnPairs
    from wstools.masks import encode

    m = load_manifest(toy_dir / "train.json")
    samples = []
    with open_store(route / "prm_train.h5", "responses") as resp:
        for rec in m.images[:4]:
            r = read_response_group(resp.image(rec.id), m.num_classes)
            for k, v in enumerate(r["maps"]):
                samples.append((rec, k, encode(v >= 0.5)[0]))
    assert samples
    plain = IcnPairs(m, samples, route / "prm_train.h5", 32, 0, [0])
    same = IcnPairs(m, samples, route / "prm_train.h5", 32, 0, [0], crop_scale=1.0)
    crop = IcnPairs(m, samples, route / "prm_train.h5", 32, 0, [0], crop_scale=0.5)
    differs = 0
    for i in range(len(samples)):
        a, b, c = plain[i], same[i], crop[i]
        for key in ("image", "map", "target"):
            assert torch_equal(a[key], b[key]) and c[key].shape == a[key].shape
        assert set(np.unique(c["target"].numpy())) <= {0.0, 1.0}
        assert torch_equal(c["image"], crop[i]["image"])
        differs += not torch_equal(a["image"], c["image"])
    assert differs > 0


def torch_equal(a, b):
    import torch

    return torch.equal(a, b)
