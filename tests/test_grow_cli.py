"""CLI tests of `ws grow seeds|region|crf` on toy data (CAMs written from blurred GT)."""

import h5py
import numpy as np
import pytest
from scipy import ndimage

from conftest import assert_bad_input, run_ws
from eval_stores import write_cams, write_labels
from wstools.io.dataset import load_manifest, load_semantic
from wstools.io.labels import read_labels_group
from wstools.io.store import open_store


@pytest.fixture(scope="module")
def cams(toy_dir, tmp_path_factory):
    m = load_manifest(toy_dir / "train.json")
    out = tmp_path_factory.mktemp("growcams")
    cams, scores, gts = {}, {}, {}
    for rec in m.images:
        gt = load_semantic(m, rec)
        gts[rec.id] = gt
        labels = [c for c in range(1, len(m.classes) + 1) if (gt == c).any()]
        maps = [ndimage.gaussian_filter((gt == c).astype(np.float32), 3) for c in labels]
        maps = [x / max(x.max(), 1e-6) for x in maps]
        cams[rec.id] = (np.array(labels, np.int64), np.array(maps, np.float32).reshape(-1, *gt.shape))
        scores[rec.id] = np.zeros(len(m.classes), np.float32)
    write_cams(out / "cams.h5", m, cams, scores)
    return out, m, gts


def labels_of(path):
    s = open_store(path, "labels")
    return {i: read_labels_group(s.image(i)) for i in s.image_ids()}


def precision(lab, gts):
    ok = tot = 0
    for i, x in lab.items():
        v = (x != 255) & (gts[i] != 255)
        ok += int((x[v] == gts[i][v]).sum())
        tot += int(v.sum())
    return ok / max(tot, 1), tot


def test_seeds_region_crf(cams, tmp_path, toy_dir):
    d, m, gts = cams
    r = run_ws("grow", "seeds", d / "cams.h5", "--fg", "top:0.2", "--bg", "cams:0.05", "-o", tmp_path / "s.h5",
               "-q")
    assert r.json["images"] == 24 and 0 < r.json["coverage"] < 1
    seeds = labels_of(tmp_path / "s.h5")
    p_seed, n_seed = precision(seeds, gts)
    assert p_seed > 0.8
    r = run_ws("grow", "region", tmp_path / "s.h5", "--probs", d / "cams.h5", "--theta-fg", "0.5",
               "--theta-bg", "0.5", "-o", tmp_path / "g.h5", "-q")
    grown = labels_of(tmp_path / "g.h5")
    p_grown, n_grown = precision(grown, gts)
    assert n_grown > n_seed and p_grown > 0.75
    for i in seeds:  # seeds never overwritten
        s = seeds[i] != 255
        assert np.array_equal(grown[i][s], seeds[i][s])
    r = run_ws("grow", "crf", d / "cams.h5", "--manifest", toy_dir / "train.json", "--iterations", "3",
               "-o", tmp_path / "c.h5", "-q")
    crf = labels_of(tmp_path / "c.h5")
    assert precision(crf, gts)[0] > 0.7 and all((x != 255).all() for x in crf.values())


def test_seeds_snap_fuse_crf(cams, tmp_path, toy_dir):
    d, m, gts = cams
    man = toy_dir / "train.json"
    run_ws("grow", "seeds", d / "cams.h5", "--fg", "rel:0.3", "--snap", "felzenszwalb", "--manifest", man,
           "-o", tmp_path / "snap.h5", "-q")
    run_ws("grow", "seeds", d / "cams.h5", "--fg", "rel:0.3", "--bg", "saliency:0.06", "--manifest", man,
           "-o", tmp_path / "sal.h5", "-q")
    r = run_ws("grow", "seeds", tmp_path / "snap.h5", tmp_path / "sal.h5", "-o", tmp_path / "fused.h5", "-q")
    a, b, f = labels_of(tmp_path / "snap.h5"), labels_of(tmp_path / "sal.h5"), labels_of(tmp_path / "fused.h5")
    for i in f:
        both = (a[i] != 255) & (b[i] != 255) & (a[i] == b[i])
        assert (f[i][both] == a[i][both]).all()
        assert ((f[i] != 255) <= ((a[i] != 255) | (b[i] != 255))).all()
    run_ws("grow", "seeds", d / "cams.h5", "--crf", "--manifest", man, "-o", tmp_path / "sc.h5", "-q")
    assert precision(labels_of(tmp_path / "sc.h5"), gts)[0] > 0.8


def test_bad_features_background(cams, tmp_path):
    d, m, gts = cams
    r = run_ws("grow", "seeds", d / "cams.h5", "--bg", "features:0.2", "-o", tmp_path / "x.h5", expect=2)
    assert_bad_input(r, "background")
    assert not (tmp_path / "x.h5").exists()


def test_bad_size_mismatch(cams, tmp_path):
    d, m, gts = cams
    small = {rec.id: np.zeros((8, 8), np.uint8) for rec in m.images}
    write_labels(tmp_path / "small.h5", m, small)
    r = run_ws("grow", "region", tmp_path / "small.h5", "--probs", d / "cams.h5", "-o", tmp_path / "x.h5", expect=2)
    assert_bad_input(r, "differ")
    assert not (tmp_path / "x.h5").exists()


def test_bad_empty_store(cams, tmp_path):
    d, m, gts = cams
    write_labels(tmp_path / "empty.h5", m, {}, ids=[])
    r = run_ws("grow", "region", tmp_path / "empty.h5", "--probs", d / "cams.h5", "-o", tmp_path / "x.h5", expect=2)
    assert_bad_input(r, "no images")
    assert not (tmp_path / "x.h5").exists()


def test_features_background(cams, tmp_path):
    from wstools.io.cams import read_cam_group, write_cam_group
    from wstools.io.store import create_store
    d, m, gts = cams
    src = open_store(d / "cams.h5", "cams")
    with create_store(tmp_path / "bg.h5", "cams", classes=m.classes, params={"test": True}, dataset=m) as st:
        for i in src.image_ids():
            g = read_cam_group(src.image(i))
            bg = 1.0 - (g["cams"].max(0) if len(g["cams"]) else np.zeros(gts[i].shape))
            with st.write_image(i) as w:
                write_cam_group(w, g["cams"], g["labels"], g["scores"], bg)
    r = run_ws("grow", "seeds", tmp_path / "bg.h5", "--fg", "rel:0.3", "--bg", "features:0.2",
               "-o", tmp_path / "s.h5", "-q")
    lab = labels_of(tmp_path / "s.h5")
    assert any((x == 0).any() for x in lab.values())
    assert precision(lab, gts)[0] > 0.8
