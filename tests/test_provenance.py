"""Provenance is checked, not only recorded: an assignment given another proposals store than
the one its inputs chain records is refused (issue 22)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from conftest import assert_bad_input, run_ws_inproc
from eval_stores import gt_instance_masks, load_manifest, write_assignment, write_proposals
from wstools.io.store import create_store, image_key, open_store

pytestmark = pytest.mark.cli


def _set_inputs(path, stores):
    with h5py.File(path, "r+") as f:
        f.attrs["inputs"] = json.dumps([{"path": str(p), "kind": kind, "uid": uid} for p, kind, uid in stores])


def _record(path):
    with open_store(path) as s:
        return s.path, s.kind, s.uid


def _stage(path, kind, inputs, manifest=None):
    """A dataset-level store that records ``inputs`` (a graph, features) and holds nothing else."""
    opened = [open_store(p) for p in inputs]
    try:
        with create_store(path, kind, classes=opened[0].classes, params={"test": True}, dataset=manifest,
                          inputs=opened, command="test"):
            pass
    finally:
        for s in opened:
            s.close()


@pytest.fixture(scope="module")
def chain(toy_dir, tmp_path_factory):
    """props.h5 (GT instances + noise), other.h5 (the same images, shifted masks: what a
    second `ws propose` with other flags gives) and a.h5, an assignment of props.h5."""
    d = tmp_path_factory.mktemp("prov")
    val = toy_dir / "val.json"
    m = load_manifest(val)
    masks, shifted, entries = {}, {}, []
    for rec in m.images:
        gm, gl = gt_instance_masks(m, rec)
        noise = np.zeros((1, rec.height, rec.width), bool)
        noise[0, :4, :4] = True
        masks[rec.id] = np.concatenate([gm, noise])
        shifted[rec.id] = np.roll(masks[rec.id], 17, axis=2)
        entries += [(rec.id, j, int(lab)) for j, lab in enumerate(gl)] + [(rec.id, len(gl), 0)]
    write_proposals(d / "props.h5", m, masks)
    write_proposals(d / "other.h5", m, shifted)
    write_assignment(d / "a.h5", m, entries)
    return d, val


def test_an_assignment_recording_its_proposals_refuses_others(chain, tmp_path):
    d, val = chain
    asg = tmp_path / "a.h5"
    asg.write_bytes((d / "a.h5").read_bytes())
    _set_inputs(asg, [_record(d / "props.h5")])      # as `ws oracle assignment` records it
    out = tmp_path / "x.json"
    r = run_ws_inproc("export-coco", asg, "--proposals", d / "other.h5", "--manifest", val, "-o", out, expect=2)
    assert_bad_input(r, "other.h5", str(asg), "props.h5", "--force-mismatch")
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()
    r = run_ws_inproc("eval", "assignment", asg, "--proposals", d / "other.h5", "--gt", val, expect=2)
    assert_bad_input(r, "other.h5", str(asg), "props.h5")
    good = run_ws_inproc("eval", "assignment", asg, "--proposals", d / "props.h5", "--gt", val).json
    assert good["provenance"] == "uid" and good["accuracy"] == 1.0
    forced = run_ws_inproc("eval", "assignment", asg, "--proposals", d / "other.h5", "--gt", val,
                           "--force-mismatch")
    assert forced.json["provenance"] == "forced" and forced.json["accuracy"] < 0.9
    assert "--force-mismatch: used anyway" in forced.stderr
    r = run_ws_inproc("export-coco", asg, "--proposals", d / "props.h5", "--manifest", val, "-o", out)
    assert r.json["provenance"] == "uid" and out.exists()


def test_the_chain_is_walked_through_graph_and_features(chain, tmp_path):
    d, val = chain
    feats, graph = tmp_path / "feats.h5", tmp_path / "graph.h5"
    _stage(feats, "features", [d / "props.h5"], manifest=load_manifest(val))
    _stage(graph, "graph", [feats])
    asg = tmp_path / "a.h5"
    asg.write_bytes((d / "a.h5").read_bytes())
    _set_inputs(asg, [_record(graph)])
    r = run_ws_inproc("eval", "assignment", asg, "--proposals", d / "other.h5", "--gt", val, expect=2)
    assert_bad_input(r, "other.h5", "was made from the proposals store", "props.h5")
    assert run_ws_inproc("eval", "assignment", asg, "--proposals", d / "props.h5", "--gt", val).json[
        "provenance"] == "uid"
    # features moved away: the chain cannot be followed; warned, not refused
    feats.rename(tmp_path / "elsewhere.h5")
    r = run_ws_inproc("eval", "assignment", asg, "--proposals", d / "other.h5", "--gt", val)
    assert r.json["provenance"] == "unverified"
    assert "cannot check that" in r.stderr and "feats.h5 not found" in r.stderr


def test_a_store_on_the_chain_from_another_manifest_is_refused(chain, toy_dir, tmp_path):
    d, val = chain
    feats = tmp_path / "feats.h5"
    _stage(feats, "features", [d / "props.h5"], manifest=load_manifest(toy_dir / "train.json"))
    with h5py.File(feats, "r+") as f:       # its proposals record gone: only the manifest can be compared
        f.attrs["inputs"] = "[]"
    asg = tmp_path / "a.h5"
    asg.write_bytes((d / "a.h5").read_bytes())
    with h5py.File(asg, "r+") as f:
        f.attrs["dataset"] = "null"
    _set_inputs(asg, [_record(feats)])
    r = run_ws_inproc("eval", "assignment", asg, "--proposals", d / "other.h5", "--gt", val, expect=2)
    assert_bad_input(r, "other.h5", "made from another manifest than", "feats.h5")


def test_shards_merged_before_or_after_the_features_are_the_same_proposals(chain, toy_dir, tmp_path):
    """Features computed per proposals shard and merged, checked against the merged proposals."""
    from wstools.io.store import merge_stores

    d, val = chain
    m = load_manifest(val)
    parts = []
    for i in range(2):
        part = tmp_path / f"p{i}.h5"
        with open_store(d / "props.h5") as src, create_store(part, "proposals", classes=src.classes,
                                                               params={"test": True, "shard": f"{i}/2"},
                                                               dataset=m) as dst:
            for image_id in src.image_ids()[i::2]:
                src.h5.copy(src.h5["images"][image_key(image_id)], dst.h5.require_group("images"),
                            name=image_key(image_id))
                dst.h5["images"][image_key(image_id)].attrs["complete"] = 1
        parts.append(part)
    merged = tmp_path / "merged.h5"
    merge_stores(merged, parts)
    feats = []
    for i, part in enumerate(parts):
        feats.append(tmp_path / f"f{i}.h5")
        _stage(feats[-1], "features", [part], manifest=m)
    joined = tmp_path / "features.h5"
    _stage(joined, "features", feats, manifest=m)       # as ws merge of features records its parts
    asg = tmp_path / "a.h5"
    asg.write_bytes((d / "a.h5").read_bytes())
    _set_inputs(asg, [_record(joined)])
    r = run_ws_inproc("eval", "assignment", asg, "--proposals", merged, "--gt", val).json
    assert r["provenance"] == "uid"
    assert_bad_input(run_ws_inproc("eval", "assignment", asg, "--proposals", d / "other.h5", "--gt", val,
                                   expect=2), "other.h5", "p0.h5")


def test_stores_of_two_manifests_are_refused_together(chain, toy_dir, tmp_path):
    from wstools.errors import InputError
    from wstools.io.store import check_same_manifest

    d, val = chain
    other = tmp_path / "train_feats.h5"
    _stage(other, "features", [d / "props.h5"], manifest=load_manifest(toy_dir / "train.json"))
    same = tmp_path / "val_feats.h5"
    _stage(same, "features", [d / "props.h5"], manifest=load_manifest(val))
    with open_store(d / "props.h5") as p, open_store(other) as o, open_store(same) as s:
        assert check_same_manifest(p, s) is None
        with pytest.raises(InputError, match=r"train_feats.h5: made from another manifest than .*props.h5"):
            check_same_manifest(p, s, o)
        assert "train_feats.h5" in check_same_manifest(p, o, force=True)
