"""``ws info`` and ``ws merge`` through the command line (conftest.run_ws), with their bad inputs."""

import json

import numpy as np
import pytest

from wstools import masks as mask_io
from wstools.io.dataset import load_manifest
from wstools.io.store import create_store, write_rles

from conftest import assert_bad_input, run_ws

pytestmark = pytest.mark.cli


def _proposal_shard(path, manifest, shard, classes=None, params=None):
    i, n = shard
    with create_store(path, "proposals", classes=classes or manifest.classes,
                      params=params or {"method": "test", "shard": f"{i}/{n}"}, dataset=manifest) as s:
        for rec in manifest.images[i::n]:
            with s.write_image(rec.id) as g:
                masks = np.zeros((2, rec.height, rec.width), bool)
                masks[0, :10, :10] = True
                masks[1, 5:, 5:] = True
                counts = mask_io.encode(masks)
                write_rles(g, "masks", counts)
                g["boxes"] = mask_io.boxes(counts, rec.height, rec.width)
                g["scores"] = np.array([0.9, 0.1], np.float32)
                g.attrs["height"], g.attrs["width"] = rec.height, rec.width


@pytest.fixture
def shards(toy_dir, tmp_path):
    m = load_manifest(toy_dir / "train.json")
    paths = [tmp_path / f"p{i}.h5" for i in range(3)]
    for i, p in enumerate(paths):
        _proposal_shard(p, m, (i, 3))
    return m, paths


def test_merge_and_info(shards, tmp_path):
    m, paths = shards
    out = tmp_path / "all.h5"
    assert run_ws("merge", out, *paths).json["images"] == 24
    info = run_ws("info", out, "--json").json
    assert info["kind"] == "proposals" and info["counts"] == {"classes": 5, "images": 24, "proposals": 48}
    assert info["datasets"]["images/*/scores"]["max"] == pytest.approx(0.9)
    assert info["datasets"]["images/*/boxes"]["common_shapes"] == [[2, 4]]
    assert info["dataset"]["sha256"] == m.sha256() and len(info["inputs"]) == 3
    text = run_ws("info", out).stdout
    assert "proposals (schema 1)" in text and "images/*/masks" in text and "ws merge" in text


def test_info_manifest(toy_dir):
    info = run_ws("info", toy_dir / "val.json", "--json").json
    assert info["kind"] == "dataset" and info["counts"]["images"] == 8
    assert info["ground_truth"] == {"semantic": 8, "instances": 8}


def test_merge_refuses_overlap_and_leaves_nothing(shards, tmp_path):
    _, paths = shards
    out = tmp_path / "all.h5"
    assert_bad_input(run_ws("merge", out, paths[0], paths[1], paths[0], expect=2), "p0.h5", "overlaps")
    assert not out.exists() and not list(tmp_path.glob(".all.h5*"))


def test_merge_refuses_other_classes(shards, toy_dir, tmp_path):
    m, paths = shards
    other = tmp_path / "other.h5"
    _proposal_shard(other, m, (1, 3), classes=list(reversed(m.classes)))
    assert_bad_input(run_ws("merge", tmp_path / "x.h5", paths[0], other, expect=2), "other.h5",
                     "class list differs")
    odd = tmp_path / "odd.h5"
    _proposal_shard(odd, m, (1, 3), params={"method": "other", "shard": "1/3"})
    assert_bad_input(run_ws("merge", tmp_path / "x.h5", paths[0], odd, expect=2), "odd.h5", "parameters differ")
    assert not (tmp_path / "x.h5").exists()


def test_merge_refuses_wrong_kind(shards, tmp_path):
    _, paths = shards
    labels = tmp_path / "labels.h5"
    with create_store(labels, "labels", classes=["disc"], params={}):
        pass
    assert_bad_input(run_ws("merge", tmp_path / "x.h5", paths[0], labels, expect=2), "labels.h5", "labels")
    graph = tmp_path / "graph.h5"
    with create_store(graph, "graph", classes=["disc"], params={}):
        pass
    assert_bad_input(run_ws("merge", tmp_path / "y.h5", graph, expect=2), "graph.h5", "cannot be merged")


def test_truncated_and_foreign_files(shards, tmp_path):
    _, paths = shards
    data = paths[0].read_bytes()
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(data[: len(data) // 3])
    text = tmp_path / "text.h5"
    text.write_text("hello")
    for p in (trunc, text):
        assert_bad_input(run_ws("info", p, expect=2), p.name, "not an HDF5 file")
        assert_bad_input(run_ws("merge", tmp_path / "m.h5", p, expect=2), p.name)
    import h5py
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    assert_bad_input(run_ws("info", foreign, expect=2), "not written by ws")
    assert not (tmp_path / "m.h5").exists()


def test_info_of_coco_json(tmp_path):
    p = tmp_path / "res.json"
    p.write_text(json.dumps([{"image_id": 1, "category_id": 2, "score": 0.5}]))
    assert run_ws("info", p, "--json").json["counts"] == {"detections": 1, "categories": 1}


def test_merge_refuses_parts_that_do_not_cover_the_input(shards, tmp_path):
    from conftest import run_ws_inproc

    _, paths = shards
    out = tmp_path / "two.h5"
    r = run_ws_inproc("merge", out, paths[0], paths[1], expect=2)
    assert_bad_input(r, "p0.h5", "do not cover the input", "shard 2/3 missing", "--partial")
    assert not out.exists() and not list(tmp_path.glob(".two.h5*"))
    summary = run_ws_inproc("merge", out, paths[0], paths[2], "--partial").json
    assert summary["images"] == 16 and summary["partial"] is True
    assert summary["shards"] == 3 and summary["missing_shards"] == ["1/3"]
    full = run_ws_inproc("merge", tmp_path / "all.h5", *paths).json
    assert full["partial"] is False and full["missing_shards"] == [] and full["images"] == 24


def test_merge_refuses_shards_of_different_counts_and_repeated_shards(shards, toy_dir, tmp_path):
    from conftest import run_ws_inproc

    m, paths = shards
    # the images of shard 1/3, recorded as other shards: images do not overlap, shard numbers do
    half = tmp_path / "half.h5"
    _proposal_shard(half, m, (1, 3), params={"method": "test", "shard": "1/2"})
    assert_bad_input(run_ws_inproc("merge", tmp_path / "x.h5", paths[0], half, expect=2), "half.h5",
                     "is shard 1/2", "a shard of 3")
    again = tmp_path / "again.h5"
    _proposal_shard(again, m, (1, 3), params={"method": "test", "shard": "0/3"})
    assert_bad_input(run_ws_inproc("merge", tmp_path / "x.h5", paths[0], again, expect=2), "again.h5",
                     "overlaps", "both are shard 0/3")
    assert not (tmp_path / "x.h5").exists()
