"""End to end: ws train-seg (semantic and instance) and ws predict on toy data, scored by ws eval;
bad inputs (one test each)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import assert_bad_input, run_ws

pytestmark = pytest.mark.cli

TINY = ["--arch", "tiny", "--optimizer", "adam", "--lr", "0.003", "--crop", "64", "--scales", "1,1",
        "--loss-at", "input", "--batch-size", "8", "--device", "cpu", "--threads", "1"]
MRCNN = ["--task", "instance", "--arch", "maskrcnn_tiny", "--min-size", "64", "--max-size", "64", "--optimizer",
         "adam", "--lr", "0.001", "--batch-size", "4", "--device", "cpu", "--threads", "1"]


def coco_from_gt(manifest_path, out, category_ids=None):
    """A COCO instances JSON of a toy manifest's ground-truth instances (stand-in for ws export-coco)."""
    from wstools.io.dataset import load_instances, load_manifest

    m = load_manifest(manifest_path)
    cats = category_ids or m.category_ids()
    images, anns = [], []
    for rec in m.images:
        images.append({"id": rec.id, "file_name": rec.image, "height": rec.height, "width": rec.width})
        inst = load_instances(m, rec)
        for c, label, crowd in zip(inst.counts, inst.labels, inst.iscrowd):
            anns.append({"id": len(anns) + 1, "image_id": rec.id, "category_id": int(cats[int(label) - 1]),
                         "segmentation": {"size": [rec.height, rec.width], "counts": c.decode()},
                         "iscrowd": int(crowd)})
    out.write_text(json.dumps({"images": images, "annotations": anns,
                               "categories": [{"id": int(c), "name": n} for c, n in zip(cats, m.classes)]}))
    return out


@pytest.fixture(scope="module")
def cls_pt(toy_dir, tmp_path_factory):
    """A tiny colour classifier (1 epoch) for --init and amended testing."""
    out = tmp_path_factory.mktemp("cls") / "cls.pt"
    run_ws("cam", "train", toy_dir / "train.json", "--arch", "tiny", "--optimizer", "adam", "--lr", "0.002",
           "--crop", "64", "--scales", "1,1", "--batch-size", "8", "--epochs", "1", "--device", "cpu",
           "--threads", "1", "-o", out)
    return out


@pytest.fixture(scope="module")
def seg_run(toy_dir, tmp_path_factory):
    """A tiny semantic network trained 2 epochs on the ground-truth PNGs, with --val."""
    out = tmp_path_factory.mktemp("seg")
    r = run_ws("train-seg", toy_dir / "train.json", "--labels", toy_dir / "semantic", "--val", toy_dir / "val.json",
               *TINY, "--epochs", "2", "-o", out / "seg.pt")
    return out, r.json


def test_semantic_train_predict_eval(seg_run, toy_dir):
    out, summary = seg_run
    assert summary["task"] == "semantic" and summary["epochs"] == 2
    assert 0.0 <= summary["metrics"]["val_miou"] <= 1.0
    lines = (out / "seg.log.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    assert not (out / "seg.last.pt").exists()
    ck = torch.load(out / "seg.pt", weights_only=True)
    assert ck["ws_kind"] == "segmentation" and ck["task"] == "semantic" and ck["arch"] == "tiny"

    r = run_ws("predict", toy_dir / "val.json", "--model", out / "seg.pt", "-o", out / "pred.h5",
               "--probs", out / "probs.h5", "--scales", "1,0.75", "--flip", "--threads", "1")
    assert r.json["images"] == 8
    ev = run_ws("eval", "semantic", out / "pred.h5", "--gt", toy_dir / "val.json").json
    assert ev["images"] == 8 and 0 <= ev["miou"] <= 1
    from wstools.io.labels import read_labels_group, read_probs_group
    from wstools.io.store import open_store

    with open_store(out / "pred.h5", "labels") as s, open_store(out / "probs.h5", "probs") as p:
        rid = s.image_ids()[0]
        lab = read_labels_group(s.image(rid))
        probs, labels = read_probs_group(p.image(rid))
        assert labels.tolist() == list(range(6)) and probs.shape == (6, 64, 64)
        np.testing.assert_allclose(probs.sum(0), 1, atol=1e-2)
        assert (probs.argmax(0) == lab).mean() > 0.99


def test_predict_shards_resume_and_amended(seg_run, cls_pt, toy_dir, tmp_path):
    out, _ = seg_run
    r = run_ws("predict", toy_dir / "val.json", "--model", out / "seg.pt", "-o", tmp_path / "p1.h5",
               "--shard", "1/2", "--threads", "1")
    assert r.json["images"] == 4
    # resume of a finished store adds nothing
    r = run_ws("predict", toy_dir / "val.json", "--model", out / "seg.pt", "-o", tmp_path / "p1.h5", "--resume",
               "--shard", "1/2", "--threads", "1")
    assert r.json["images"] == 0 and r.json["skipped_existing"] == 4
    # amended testing with a classifier that rejects every class
    r = run_ws("predict", toy_dir / "val.json", "--model", out / "seg.pt", "-o", tmp_path / "amended.h5",
               "--classifier", cls_pt, "--score-threshold", "1.0", "--threads", "1")
    assert r.json["amended"] and r.json["classes_suppressed"] == 8 * 5
    from wstools.io.store import open_store

    with open_store(tmp_path / "amended.h5", "labels") as s:       # every class rejected: all background
        assert all((s.image(i)["labels"][()] == 0).all() for i in s.image_ids())


def test_train_from_labels_store_and_init(seg_run, cls_pt, toy_dir, tmp_path):
    out, _ = seg_run
    run_ws("predict", toy_dir / "train.json", "--model", out / "seg.pt", "-o", tmp_path / "pseudo.h5",
           "--threads", "1")
    r = run_ws("train-seg", toy_dir / "train.json", "--labels", tmp_path / "pseudo.h5", *TINY, "--epochs", "1",
               "--init", cls_pt, "--loss", "balanced-seed", "--loss-at", "output",
               "-o", tmp_path / "seg2.pt")
    assert r.json["images"] == 24 and np.isfinite(r.json["metrics"]["loss"])
    # a segmentation checkpoint starts only a network of its own kind (here: another stride)
    bad = run_ws("train-seg", toy_dir / "train.json", "--labels", tmp_path / "pseudo.h5", *TINY, "--epochs", "1",
                 "--stride", "16", "--init", out / "seg.pt", "-o", tmp_path / "seg3.pt", expect=None)
    assert_bad_input(bad, "seg.pt", "--stride 8, this network has --stride 16")
    assert not (tmp_path / "seg3.pt").exists()
    # neither a classifier nor a segmentation checkpoint
    bad = run_ws("train-seg", toy_dir / "train.json", "--labels", tmp_path / "pseudo.h5", *TINY, "--epochs", "1",
                 "--init", tmp_path / "pseudo.h5", "-o", tmp_path / "seg3.pt", expect=None)
    assert_bad_input(bad, "pseudo.h5")
    assert not (tmp_path / "seg3.pt").exists()


def test_init_copies_the_classifier_backbone(toy_dir, tmp_path):
    from wstools.cam.model import CamNet
    from wstools.cli.train_seg import _initialise
    from wstools.io.checkpoint import save_checkpoint
    from wstools.nn.backbones import build_backbone
    from wstools.seg.models import build_semantic

    cls = CamNet(build_backbone("tiny", 16), 5)
    save_checkpoint(tmp_path / "c.pt", {"arch": "tiny", "stride": 16, "classes": list("abcde"), "gray": False,
                                        "state_dict": cls.state_dict()}, kind="classifier")
    seg = build_semantic("tiny", 6)
    _initialise(seg, "semantic", "tiny", tmp_path / "c.pt", "none")
    for k, v in seg.backbone.state_dict().items():
        assert torch.equal(v, cls.backbone.state_dict()[k]), k


def test_resume_with_other_hyper_parameters_is_refused(toy_dir, tmp_path):
    args = ["train-seg", toy_dir / "train.json", "--labels", toy_dir / "semantic", *TINY, "--epochs", "2",
            "-o", tmp_path / "s.pt"]
    r = run_ws(*args, "--stop-after", "1")
    assert r.json["output"] is None and (tmp_path / "s.last.pt").exists()
    bad = run_ws(*[a if a != "0.003" else "0.01" for a in args], "--resume", expect=None)
    assert_bad_input(bad, "--lr")
    assert not (tmp_path / "s.pt").exists()
    r = run_ws(*args, "--resume")
    assert r.json["resumed_from_epoch"] == 1 and (tmp_path / "s.pt").exists()


def test_augment_is_recorded_and_refused_for_instances(toy_dir, tmp_path):
    from wstools.cli.train_seg import train_seg
    from wstools.seg.data import AUGMENTATIONS

    assert tuple(next(p for p in train_seg.params if p.name == "augment").type.choices) == AUGMENTATIONS
    r = run_ws("train-seg", toy_dir / "train.json", "--labels", toy_dir / "semantic", *TINY, "--epochs", "1",
               "--augment", "rot90", "--augment", "channels", "-o", tmp_path / "s.pt")
    ck = torch.load(tmp_path / "s.pt", weights_only=True)
    assert ck["args"]["augment"] == ["channels", "rot90"] and r.json["epochs"] == 1
    bad = run_ws("train-seg", toy_dir / "train.json", "--labels", toy_dir / "semantic", *TINY, "--augment", "rot45",
                 "-o", tmp_path / "t.pt", expect=None)
    assert_bad_input(bad, "rot45")
    coco = coco_from_gt(toy_dir / "train.json", tmp_path / "c.json")
    bad = run_ws("train-seg", toy_dir / "train.json", "--coco", coco, *MRCNN, "--augment", "rot90",
                 "-o", tmp_path / "m.pt", expect=None)
    assert_bad_input(bad, "--augment")
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "t.pt").exists()


def test_interrupted_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    from wstools.io import checkpoint

    path = tmp_path / "x.last.pt"
    checkpoint.save_resume(path, {"arch": "tiny", "classes": [], "state_dict": {}, "task": "semantic", "epoch": 1},
                           kind="segmentation")
    real_save = torch.save

    def broken(obj, f, *a, **k):
        real_save({"half": 1}, f)
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.torch, "save", broken)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_resume(path, {"arch": "tiny", "classes": [], "state_dict": {}, "task": "semantic",
                                      "epoch": 2}, kind="segmentation")
    monkeypatch.setattr(checkpoint.torch, "save", real_save)
    assert checkpoint.load_checkpoint(path, "segmentation")["epoch"] == 1


@pytest.fixture
def label_copy(toy_dir, tmp_path):
    dst = tmp_path / "labels"
    shutil.copytree(toy_dir / "semantic", dst)
    return dst


def test_label_map_of_another_size(toy_dir, label_copy, tmp_path):
    from wstools.io.images import read_label_png, write_label_png

    p = sorted(label_copy.glob("*.png"))[3]
    write_label_png(p, read_label_png(p)[:40, :50])
    r = run_ws("train-seg", toy_dir / "train.json", "--labels", label_copy, *TINY, "--epochs", "1",
               "-o", tmp_path / "s.pt", expect=None)
    assert_bad_input(r, p.stem, "50x40 px, the image is 64x64")
    assert not (tmp_path / "s.pt").exists() and not (tmp_path / "s.last.pt").exists()


def test_label_outside_range(toy_dir, label_copy, tmp_path):
    from wstools.io.images import read_label_png, write_label_png

    p = sorted(label_copy.glob("*.png"))[5]
    lab = read_label_png(p).copy()
    lab[0, 0] = 9
    write_label_png(p, lab)
    r = run_ws("train-seg", toy_dir / "train.json", "--labels", label_copy, *TINY, "--epochs", "1",
               "-o", tmp_path / "s.pt", expect=None)
    assert_bad_input(r, p.stem, "label 9 outside 0..5 and 255")
    assert not (tmp_path / "s.pt").exists()


def test_missing_label_maps_and_missing_labels_flag(toy_dir, label_copy, tmp_path):
    sorted(label_copy.glob("*.png"))[0].unlink()
    r = run_ws("train-seg", toy_dir / "train.json", "--labels", label_copy, *TINY, "-o", tmp_path / "s.pt",
               expect=None)
    assert_bad_input(r, "lacks 1 label maps")
    r = run_ws("train-seg", toy_dir / "train.json", *TINY, "-o", tmp_path / "s.pt", expect=None)
    assert_bad_input(r, "needs --labels")


def test_coco_with_unknown_category(toy_dir, tmp_path):
    coco = coco_from_gt(toy_dir / "train.json", tmp_path / "c.json", category_ids=[1, 2, 3, 4, 99])
    r = run_ws("train-seg", toy_dir / "train.json", "--coco", coco, *MRCNN, "-o", tmp_path / "m.pt", expect=None)
    assert_bad_input(r, "category 99", "unknown to")
    assert not (tmp_path / "m.pt").exists()


def test_instance_train_predict_eval(toy_dir, tmp_path):
    coco = coco_from_gt(toy_dir / "train.json", tmp_path / "c.json")
    r = run_ws("train-seg", toy_dir / "train.json", "--coco", coco, *MRCNN, "--epochs", "1", "--val",
               toy_dir / "val.json", "-o", tmp_path / "m.pt")
    assert r.json["task"] == "instance" and np.isfinite(r.json["metrics"]["loss_mask"])
    assert 0 <= r.json["metrics"]["val_ap50"] <= 1 and "val_map_r50" in r.json["metrics"]
    r = run_ws("predict", toy_dir / "val.json", "--model", tmp_path / "m.pt", "-o", tmp_path / "res.json",
               "--threads", "1")
    res = json.loads((tmp_path / "res.json").read_text())
    assert r.json["detections"] == len(res)
    assert all(isinstance(d["segmentation"]["counts"], str) and d["category_id"] in range(1, 6) for d in res)
    ev = run_ws("eval", "instance", tmp_path / "res.json", "--gt", toy_dir / "val.json").json
    assert ev["mode"] == "instance" and ev["coco"]["AP"] >= 0
    bad = run_ws("predict", toy_dir / "val.json", "--model", tmp_path / "m.pt", "-o", tmp_path / "r2.json", "--crf",
                 expect=None)
    assert_bad_input(bad, "apply to semantic checkpoints")


def test_retrain_second_stage_on_tag_restricted_labels(toy_dir, tmp_path):
    r = run_ws("train-seg", toy_dir / "train.json", "--labels", toy_dir / "semantic", *TINY, "--epochs", "1",
               "--retrain", "-o", tmp_path / "d.pt")
    assert r.json["stage"] == 2 and (tmp_path / "d.pt").exists() and (tmp_path / "d.stage1.pt").exists()
    from wstools.io.dataset import load_manifest
    from wstools.io.store import open_store

    m = load_manifest(toy_dir / "train.json")
    with open_store(tmp_path / "d.stage1_labels.h5", "labels") as s:
        assert len(s.image_ids()) == 24
        for rec in m.images:
            allowed = {0, *m.tag_labels(rec).tolist()}
            assert set(np.unique(s.image(rec.id)["labels"][()]).tolist()) <= allowed


@pytest.mark.parametrize("retrain_loss", [None, "balanced-seed"])
def test_retrain_second_stage_is_plain_supervision(toy_dir, tmp_path, monkeypatch, retrain_loss):
    # DSRG's "+Retrain" trains "in a fully-supervised way": stage 1's loss, boundary loss (and its
    # CRF) and growing must not reach stage 2's training step, whose loss is --retrain-loss (ce by default)
    from click.testing import CliRunner

    import wstools.seg.semantic as semantic
    from wstools.cli.main import cli
    from wstools.io.checkpoint import load_checkpoint

    calls = []
    real_step = semantic.semantic_step

    def recording_step(device, **kw):
        calls.append(kw)
        return real_step(device, **{**kw, "boundary_weight": 0.0, "crf": None})   # no CRF cost in the test

    monkeypatch.setattr(semantic, "semantic_step", recording_step)
    monkeypatch.setattr("wstools.grow.crf.require_crf", lambda: None)
    r = CliRunner().invoke(cli, [str(a) for a in ("train-seg", toy_dir / "train.json", "--labels",
                                                  toy_dir / "semantic", *TINY, "--epochs", "1", "--loss",
                                                  "balanced-seed", "--boundary-weight", "1", "--grow", "--retrain",
                                                  *(["--retrain-loss", retrain_loss] if retrain_loss else []),
                                                  "-o", tmp_path / "d.pt", "-q")])
    assert r.exit_code == 0, (r.output, r.exception)
    assert len(calls) == 2
    first, second = calls
    assert first["loss"] == "balanced-seed" and first["boundary_weight"] == 1 and first["crf"] is not None
    assert first["grow"] is not None
    stage2_loss = retrain_loss or "ce"
    assert second["loss"] == stage2_loss and second["boundary_weight"] == 0 and second["crf"] is None
    assert second["grow"] is None and not second["grow_crf"]
    args = load_checkpoint(tmp_path / "d.pt", "segmentation")["args"]
    assert args["loss"] == stage2_loss and args["boundary_weight"] == 0 and args["grow"] is False
    stage1 = load_checkpoint(tmp_path / "d.stage1.pt", "segmentation")["args"]
    assert stage1["boundary_weight"] == 1 and stage1["loss"] == "balanced-seed"


def test_retrain_loss_without_retrain_is_refused(toy_dir, tmp_path):
    r = run_ws("train-seg", toy_dir / "train.json", "--labels", toy_dir / "semantic", *TINY, "--epochs", "1",
               "--retrain-loss", "balanced-seed", "-o", tmp_path / "d.pt", expect=None)
    assert_bad_input(r, "--retrain-loss", "--retrain")
    assert not (tmp_path / "d.pt").exists()


def _crf_available():
    try:
        from wstools.grow.crf import require_crf

        require_crf()
        return True
    except Exception:
        return False


def test_grow_dynamic_supervision_end_to_end(toy_dir, tmp_path):
    pytest.importorskip("wstools.grow")
    from wstools.io.images import read_label_png, write_label_png

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for p in (toy_dir / "semantic").glob("train_*.png"):
        lab = read_label_png(p).copy()
        lab[::2] = 255                                     # half the rows unlabelled: sparse seeds
        write_label_png(seeds / p.name, lab)
    r = run_ws("train-seg", toy_dir / "train.json", "--labels", seeds, *TINY, "--epochs", "1", "--loss",
               "balanced-seed", "--grow", "-o", tmp_path / "g.pt")
    assert r.json["metrics"]["labelled_fraction"] >= 0.4


@pytest.mark.skipif(not _crf_available(), reason="the dense CRF ([crf] extra) is not installed")
def test_crf_boundary_loss_and_predict(seg_run, toy_dir, tmp_path):
    out, _ = seg_run
    r = run_ws("train-seg", toy_dir / "train.json", "--labels", toy_dir / "semantic", *TINY, "--epochs", "1",
               "--boundary-weight", "1", "-o", tmp_path / "b.pt")
    assert np.isfinite(r.json["metrics"]["loss"])
    run_ws("predict", toy_dir / "val.json", "--model", out / "seg.pt", "--crf", "-o", tmp_path / "c.h5",
           "--threads", "1")
    assert run_ws("eval", "semantic", tmp_path / "c.h5", "--gt", toy_dir / "val.json").json["images"] == 8


def test_crf_missing_is_one_line(seg_run, toy_dir, tmp_path):
    if _crf_available():
        pytest.skip("the dense CRF is installed")
    out, _ = seg_run
    r = run_ws("predict", toy_dir / "val.json", "--model", out / "seg.pt", "--crf", "-o", tmp_path / "c.h5",
               expect=None)
    assert r.returncode in (1, 2) and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c.h5").exists()


def test_coco_images_are_matched_by_ws_id_before_numeric_ids(toy_dir, tmp_path):
    # a manifest whose ids are numbers in another order than its records (as from ws dataset coco):
    # export-coco's id = index + 1 would name the wrong image; its ws_id names the right one
    from wstools.cli.train_seg import read_coco_training
    from wstools.io.dataset import load_manifest

    data = json.loads((toy_dir / "train.json").read_text())
    data["images"] = data["images"][:3]
    for rec, new_id in zip(data["images"], ["3", "1", "2"]):
        rec["id"] = new_id
        for key in ("image", "semantic", "instances", "objects"):
            if rec.get(key):
                rec[key] = str(toy_dir / rec[key])
    (tmp_path / "m.json").write_text(json.dumps(data))
    m = load_manifest(tmp_path / "m.json")
    coco = {"images": [{"id": i + 1, "ws_id": rec.id, "file_name": "x.png"} for i, rec in enumerate(m.images)],
            "annotations": [{"id": 1, "image_id": 1, "category_id": int(m.category_ids()[0]),
                             "segmentation": [[0, 0, 4, 0, 4, 4]], "iscrowd": 0}],
            "categories": [{"id": int(c), "name": n} for c, n in zip(m.category_ids(), m.classes)]}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    anns = read_coco_training(tmp_path / "c.json", m)
    assert len(anns[0]) == 1 and anns[1] == [] and anns[2] == []   # record 0 (id "3"), not id "1"


@pytest.mark.parametrize("flag", [["--retrain-loss", "ce"], ["--retrain-init", "stage1"], ["--retrain-init", "init"]])
def test_retrain_options_without_retrain_are_refused(toy_dir, tmp_path, flag):
    # the default value given explicitly is refused too: it would read as a second stage that never runs
    r = run_ws("train-seg", toy_dir / "train.json", "--labels", toy_dir / "semantic", *TINY, "--epochs", "1",
               *flag, "-o", tmp_path / "d.pt", expect=None)
    assert_bad_input(r, flag[0], "--retrain")
    assert not (tmp_path / "d.pt").exists()


@pytest.mark.parametrize("retrain_init", [None, "stage1", "init"])
def test_retrain_second_stage_starts_where_asked(toy_dir, tmp_path, monkeypatch, retrain_init):
    # DSRG's released run-s.sh starts step 2 from the stage-1 model (the default); init = a fresh network
    from click.testing import CliRunner

    import wstools.cli.train_seg as cmd
    from wstools.cli.main import cli
    from wstools.io.checkpoint import load_checkpoint

    calls = []
    real = cmd._initialise

    def recording(model, task, arch, init_path, *a):   # the network each stage starts from
        calls.append(Path(init_path).name if init_path else "fresh")
        return real(model, task, arch, init_path, *a)

    monkeypatch.setattr(cmd, "_initialise", recording)
    r = CliRunner().invoke(cli, [str(a) for a in ("train-seg", toy_dir / "train.json", "--labels",
                                                  toy_dir / "semantic", *TINY, "--epochs", "1", "--retrain",
                                                  *(["--retrain-init", retrain_init] if retrain_init else []),
                                                  "-o", tmp_path / "d.pt", "-q")])
    assert r.exit_code == 0, (r.output, r.exception)
    from_stage1 = retrain_init in (None, "stage1")
    assert calls == (["fresh", "d.stage1.pt"] if from_stage1 else ["fresh", "fresh"])
    args = load_checkpoint(tmp_path / "d.pt", "segmentation")["args"]
    assert args["start"] == (str(tmp_path / "d.stage1.pt") if from_stage1 else None)
    assert load_checkpoint(tmp_path / "d.stage1.pt", "segmentation")["args"]["start"] is None


def test_initialise_from_segmentation_copies_every_weight(toy_dir, tmp_path):
    from wstools.errors import InputError
    from wstools.io.checkpoint import load_checkpoint
    from wstools.io.dataset import load_manifest
    from wstools.io.seg_training import initialise_from_segmentation
    from wstools.seg.training import build_network

    run_ws("train-seg", toy_dir / "train.json", "--labels", toy_dir / "semantic", *TINY, "--epochs", "1",
           "-o", tmp_path / "s.pt")
    m = load_manifest(toy_dir / "train.json")
    model, _ = build_network("semantic", "tiny", 8, m.classes, m.category_ids(), 96, 96)
    initialise_from_segmentation(model, tmp_path / "s.pt", m.classes)
    saved = load_checkpoint(tmp_path / "s.pt", "segmentation")["state_dict"]
    mine = model.state_dict()
    assert mine.keys() == saved.keys() and all(torch.equal(mine[k], saved[k]) for k in saved)
    with pytest.raises(InputError, match="differ from the manifest"):
        initialise_from_segmentation(model, tmp_path / "s.pt", m.classes[::-1])
    with pytest.raises(InputError, match="--stride 8, this network has --stride 16"):
        initialise_from_segmentation(model, tmp_path / "s.pt", m.classes, "semantic", "tiny", 16)
    with pytest.raises(InputError, match="a tiny_unet semantic network starts only from one of its own kind"):
        initialise_from_segmentation(model, tmp_path / "s.pt", m.classes, "semantic", "tiny_unet")


def test_init_from_a_segmentation_checkpoint_continues_it(toy_dir, tmp_path):
    # --init of a train-seg checkpoint: the whole network, so stage 2 can run apart from --retrain
    run_ws("train-seg", toy_dir / "train.json", "--labels", toy_dir / "semantic", *TINY, "--epochs", "2",
           "-o", tmp_path / "s.pt")
    r = run_ws("train-seg", toy_dir / "train.json", "--labels", toy_dir / "semantic", *TINY, "--epochs", "1",
               "--init", tmp_path / "s.pt", "-o", tmp_path / "c.pt")
    fresh = run_ws("train-seg", toy_dir / "train.json", "--labels", toy_dir / "semantic", *TINY, "--epochs", "1",
                   "-o", tmp_path / "f.pt")
    # one epoch on from two is further along than one epoch from scratch (same seed, same batches)
    assert r.json["metrics"]["loss"] < fresh.json["metrics"]["loss"]
    bad = run_ws("train-seg", toy_dir / "train.json", "--labels", toy_dir / "semantic", *TINY, "--epochs", "1",
                 "--arch", "tiny_unet", "--init", tmp_path / "s.pt", "-o", tmp_path / "u.pt", expect=None)
    assert_bad_input(bad, "s.pt", "tiny semantic network")
    assert not (tmp_path / "u.pt").exists()
