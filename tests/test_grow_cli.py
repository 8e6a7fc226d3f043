"""CLI tests of `ws grow seeds|region|crf` on toy data (CAMs written from blurred GT)."""

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import assert_bad_input, run_ws
from eval_stores import write_gt_cams, write_labels
from wstools.io.dataset import load_manifest
from wstools.io.labels import read_labels_group
from wstools.io.store import open_store

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def cams(toy_dir, tmp_path_factory):
    m = load_manifest(toy_dir / "train.json")
    out = tmp_path_factory.mktemp("growcams")
    gts = write_gt_cams(out / "cams.h5", m)
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


# per-image stage conventions: --shard + ws merge, --workers, --resume -------------------------

@pytest.fixture(scope="module")
def gt_seeds(cams, tmp_path_factory):
    """A seeds store: GT on a random 5 % of the pixels, else 255 (no `ws` call)."""
    d, m, gts = cams
    rng = np.random.default_rng(0)
    seeds = {i: np.where(rng.random(g.shape) < 0.05, g, 255).astype(np.uint8) for i, g in gts.items()}
    path = tmp_path_factory.mktemp("growseeds") / "seeds.h5"
    write_labels(path, m, seeds)
    return path


def _stage_args(stage, d, man, seeds):
    if stage == "seeds":      # CPU-bound per image: saliency + Felzenszwalb snapping
        return ["seeds", d / "cams.h5", "--fg", "rel:0.3", "--bg", "saliency:0.06", "--snap", "felzenszwalb",
                "--manifest", man]
    if stage == "region":
        return ["region", seeds, "--probs", d / "cams.h5", "--theta-fg", "0.5", "--theta-bg", "0.5", "--crf",
                "--manifest", man]
    return ["crf", d / "cams.h5", "--manifest", man, "--iterations", "3"]


def _same_maps(a, b):
    assert sorted(a) == sorted(b)
    for i in a:
        assert a[i].dtype == b[i].dtype == np.uint8 and a[i].shape == b[i].shape, i
        assert a[i].tobytes() == b[i].tobytes(), i


@pytest.mark.parametrize("stage", ["seeds", "region", "crf"])
def test_shard_merge_and_workers_equal_plain_run(cams, gt_seeds, tmp_path, toy_dir, stage):
    d, m, gts = cams
    args = ["grow", *_stage_args(stage, d, toy_dir / "train.json", gt_seeds), "-q"]
    r = run_ws(*args, "-o", tmp_path / "ref.h5")
    assert r.json["images"] == 24 and r.json["skipped"] == 0
    ref = labels_of(tmp_path / "ref.h5")
    assert len(ref) == 24 and any((x != 255).any() for x in ref.values())
    # --shard 0/2 (with --workers 2) + 1/2 (in the main process), joined by ws merge
    parts = []
    for i, workers in ((0, 2), (1, 0)):
        parts.append(tmp_path / f"part{i}.h5")
        assert run_ws(*args, "--shard", f"{i}/2", "--workers", workers, "-o", parts[-1]).json["images"] == 12
    a, b = labels_of(parts[0]), labels_of(parts[1])
    assert list(a) == list(ref)[0::2] and list(b) == list(ref)[1::2]   # image order kept with workers
    _same_maps({i: ref[i] for i in a}, a)                              # --workers 2 == --workers 0
    r = run_ws("merge", tmp_path / "merged.h5", *parts, "-q")
    assert r.json["kind"] == "labels" and r.json["images"] == 24
    _same_maps(ref, labels_of(tmp_path / "merged.h5"))


def test_resume_of_finished_output_skips_its_images(cams, tmp_path, toy_dir):
    """--resume on a finished shard with the same parameters skips its images; other parameters are refused."""
    d, m, gts = cams
    args = ["grow", "crf", d / "cams.h5", "--manifest", toy_dir / "train.json", "--iterations", "2", "-q"]
    out = tmp_path / "c.h5"
    run_ws(*args, "-o", out)
    r = run_ws(*args, "-o", out, "--resume")
    assert r.json["skipped"] == 24 and r.json["images"] == 0
    assert len(labels_of(out)) == 24
    r = run_ws("grow", "crf", d / "cams.h5", "--manifest", toy_dir / "train.json", "--iterations", "3",
               "-o", out, "--resume", expect=2)
    assert_bad_input(r, "cannot resume")


def test_bad_shard(cams, tmp_path):
    d, m, gts = cams
    r = run_ws("grow", "seeds", d / "cams.h5", "--shard", "2/2", "-o", tmp_path / "x.h5", expect=2)
    assert_bad_input(r, "--shard")
    assert not (tmp_path / "x.h5").exists()


def _fail_on_b(job):
    from wstools.errors import InputError
    if job == "b":
        raise InputError("bad map", path="in.h5", image_id=job)
    return job * 2


def _check_worker_map(workers):
    from wstools.parallel import worker_map
    from wstools.errors import InputError

    consumed = []

    def jobs(items):
        for x in items:
            consumed.append(x)
            yield x

    with worker_map(_fail_on_b, jobs(list("acdefghij")), workers) as results:
        first = next(results)
        assert first == "aa"
        assert len(consumed) <= 1 + 2 * max(workers, 1)   # jobs are read lazily, a bounded number ahead
        assert [first, *results] == [x * 2 for x in "acdefghij"]
    with pytest.raises(InputError) as e:
        with worker_map(_fail_on_b, jobs("abc"), workers) as results:
            list(results)
    assert e.value.path == "in.h5" and e.value.image_id == "b" and "bad map" in str(e.value)


@pytest.mark.parametrize("workers", [0, 2])
def test_worker_map_order_and_errors(workers):
    if workers == 0:
        _check_worker_map(0)
        return
    # forked workers in a fresh process, as a `ws` command forks them: forking the test session,
    # which holds the threads of earlier in-process tests (torch, h5py), can deadlock the child
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_grow_cli as t; " \
           "t._check_worker_map(2)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_region_grow_crf(cams, tmp_path, toy_dir):
    """--grow-crf grows on the CRF-refined probabilities (DSRG's layer): seeds kept, precise growth."""
    d, m, gts = cams
    man = toy_dir / "train.json"
    run_ws("grow", "seeds", d / "cams.h5", "--bg", "cams:0.05", "-o", tmp_path / "s.h5", "-q")
    r = run_ws("grow", "region", tmp_path / "s.h5", "--probs", d / "cams.h5", "--grow-crf", "--manifest", man,
               "--theta-fg", "0.7", "--theta-bg", "0.9", "-o", tmp_path / "g.h5", "-q")
    assert r.json["grow_crf"] is True
    seeds, grown = labels_of(tmp_path / "s.h5"), labels_of(tmp_path / "g.h5")
    for i in seeds:
        s = seeds[i] != 255
        assert np.array_equal(grown[i][s], seeds[i][s])
    p_grown, n_grown = precision(grown, gts)
    assert n_grown > precision(seeds, gts)[1] and p_grown > 0.8
    # without --manifest: the images of the manifest the seeds store records, the same growth
    run_ws("grow", "region", tmp_path / "s.h5", "--probs", d / "cams.h5", "--grow-crf", "--theta-fg", "0.7",
           "--theta-bg", "0.9", "-o", tmp_path / "x.h5", "-q")
    again = labels_of(tmp_path / "x.h5")
    assert all(np.array_equal(again[i], grown[i]) for i in grown)


def test_seeds_snap_finds_the_recorded_manifest_from_another_folder(toy_dir, tmp_path, monkeypatch):
    """Issue 23: --snap reads the images of the manifest the CAM store records; no --manifest needed."""
    import h5py

    from conftest import run_ws_inproc

    train = toy_dir / "train.json"
    run_ws_inproc("oracle", "cams", train, "-o", tmp_path / "c.h5")
    run_ws_inproc("grow", "seeds", tmp_path / "c.h5", "--fg", "rel:0.3", "--snap", "felzenszwalb", "--manifest", train,
                  "-o", tmp_path / "with.h5", "-q")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run_ws_inproc("grow", "seeds", tmp_path / "c.h5", "--fg", "rel:0.3", "--snap", "felzenszwalb",
                  "-o", tmp_path / "without.h5", "-q")
    with h5py.File(tmp_path / "with.h5") as a, h5py.File(tmp_path / "without.h5") as b:
        ids = list(a["images"])
        assert ids and ids == list(b["images"])
        for i in ids:
            assert (a["images"][i]["labels"][()] == b["images"][i]["labels"][()]).all()


def test_maps_and_labels_out_of_range_are_refused(toy_dir, tmp_path):
    """Issue 22: NaN / > 1 CAMs and labels outside 0..K in an input store: exit 2 naming file and image."""
    import shutil

    import h5py

    from conftest import run_ws_inproc

    train = toy_dir / "train.json"
    run_ws_inproc("oracle", "cams", train, "-o", tmp_path / "c.h5")
    run_ws_inproc("grow", "seeds", tmp_path / "c.h5", "--fg", "rel:0.3", "-o", tmp_path / "s.h5", "-q")
    for name, value in (("nan", np.nan), ("big", 3.0)):
        bad = tmp_path / f"{name}.h5"
        shutil.copy(tmp_path / "c.h5", bad)
        with h5py.File(bad, "r+") as h:
            key = sorted(h["images"])[1]
            cams = h["images"][key]["cams"]
            arr = cams[()]
            arr[0, 0, 0] = value
            cams[...] = arr
        r = run_ws_inproc("grow", "seeds", bad, "--fg", "rel:0.3", "-o", tmp_path / f"out_{name}.h5", expect=None)
        assert_bad_input(r, str(bad), "'cams'")
        assert not (tmp_path / f"out_{name}.h5").exists()
    labels = tmp_path / "l99.h5"
    shutil.copy(tmp_path / "s.h5", labels)
    with h5py.File(labels, "r+") as h:
        key = sorted(h["images"])[0]
        lab = h["images"][key]["labels"]
        arr = lab[()]
        arr[0, 0] = 99
        lab[...] = arr
    r = run_ws_inproc("grow", "seeds", labels, tmp_path / "s.h5", "-o", tmp_path / "fused.h5", expect=None)
    assert_bad_input(r, str(labels), "label 99")


def test_region_refuses_probabilities_of_another_manifest(toy_dir, tmp_path):
    """Issue 22: seeds and probabilities made from different manifests: exit 2 naming both; --force-mismatch warns."""
    from conftest import run_ws_inproc

    run_ws_inproc("oracle", "cams", toy_dir / "train.json", "-o", tmp_path / "c.h5")
    run_ws_inproc("oracle", "cams", toy_dir / "val.json", "-o", tmp_path / "v.h5")
    run_ws_inproc("grow", "seeds", tmp_path / "c.h5", "--fg", "rel:0.3", "-o", tmp_path / "s.h5", "-q")
    r = run_ws_inproc("grow", "region", tmp_path / "s.h5", "--probs", tmp_path / "v.h5", "-o", tmp_path / "g.h5",
                      expect=None)
    assert_bad_input(r, str(tmp_path / "v.h5"), "another manifest", str(tmp_path / "s.h5"))
    assert not (tmp_path / "g.h5").exists()
