"""`ws propose --method sam` and `ws cam clip`: foundation models from local checkpoints.

Tiny randomly initialised SAM and CLIP models are built here and saved as the checkpoint
folders the loaders read (tests/tiny_foundation.py); nothing is downloaded. The stores they
write must validate with `ws info` and flow unchanged into the stages that read proposals and
CAMs, and a recipe must run end to end on each of them. Skipped with a reason when the
`[sam]`/`[clip]` extra (transformers) is not installed, unless WS_REQUIRE_EXTRAS=1 (CI).
"""

from __future__ import annotations

import json
import sys

import h5py
import numpy as np
import pytest

from conftest import assert_bad_input, run_ws_inproc as ws
from tiny_foundation import need_transformers, write_pickle_bomb, write_tiny_clip, write_tiny_sam

pytestmark = pytest.mark.cli

T = ["--threads", "1", "--device", "cpu"]
TRAIN_CAM = ["--arch", "tiny", "--stride", "8", "--crop", "64", "--epochs", "1", "--batch-size", "8", *T]
SAM_FAST = ["--points-per-side", "8", "--box-nms", "1", "--top", "12", "--device", "cpu"]


@pytest.fixture(scope="module")
def sam_ckpt(tmp_path_factory):
    need_transformers()
    return write_tiny_sam(tmp_path_factory.mktemp("sam") / "tiny-sam")


@pytest.fixture(scope="module")
def classifier(toy_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cls") / "cls.pt"
    ws("cam", "train", toy_dir / "val.json", *TRAIN_CAM, "-o", out, "-q")
    return out


@pytest.fixture(scope="module")
def sam_props(toy_dir, sam_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("samp") / "sam.h5"
    r = ws("propose", toy_dir / "val.json", "--method", "sam", "--checkpoint", sam_ckpt, *SAM_FAST, "-o", out, "-q")
    return out, r.json


# SAM ------------------------------------------------------------------------------------------

def test_sam_store_is_a_proposals_store(toy_dir, sam_props):
    out, summary = sam_props
    assert summary["method"] == "sam" and summary["images"] == 8 and summary["proposals"] > 8
    info = ws("info", out, "--json").json
    assert info["kind"] == "proposals"
    from wstools import masks as mask_io

    with h5py.File(out) as f:
        params = json.loads(f.attrs["params"])
        assert params["sam"]["pred_iou_thresh"] == 0.88 and params["sam"]["stability_thresh"] == 0.95
        for key in f["images"]:
            g = f["images"][key]
            h, w = int(g.attrs["height"]), int(g.attrs["width"])
            scores = g["scores"][()]
            assert np.all(np.diff(scores) <= 0) and np.all((scores > 0) & (scores <= 1))
            counts = [bytes(c) for c in g["masks"][()]]
            assert np.allclose(mask_io.boxes(counts, h, w), g["boxes"][()])


def test_sam_defaults_are_the_papers():
    from wstools.cli.propose import propose

    d = {p.name: p.default for p in propose.params}
    assert (d["points_per_side"], d["pred_iou_thresh"], d["stability_thresh"], d["crop_layers"],
            d["min_region_area"], d["box_nms"]) == (32, 0.88, 0.95, 0, 0, 0.7)


def test_sam_masks_function_on_arrays(sam_ckpt):
    from wstools.io.foundation import load_sam
    from wstools.proposals.sam import sam_masks

    model = load_sam(sam_ckpt, "cpu")
    img = (np.random.RandomState(0).rand(40, 56, 3) * 255).astype(np.uint8)
    masks, scores, boxes = sam_masks(img, model, points_per_side=4, box_nms=1.0, crop_layers=1,
                                     min_region_area=5)
    assert masks.shape[1:] == (40, 56) and masks.dtype == bool and len(masks) == len(scores) == len(boxes) > 0
    none, s, _ = sam_masks(img, model, points_per_side=4, pred_iou_thresh=1.0)
    assert len(none) == 0 and len(s) == 0


def test_sam_proposals_run_the_fan_and_prm_recipes(toy_dir, sam_props, classifier, tmp_path):
    """Fan et al.: features -> graph -> cut -> eval; PRM: peaks -> match -> eval, on SAM proposals."""
    props, _ = sam_props
    val = toy_dir / "val.json"
    ws("oracle", "cams", val, "-o", tmp_path / "cams.h5", "-q")
    ws("features", "extract", val, "--proposals", props, "--cams", tmp_path / "cams.h5", "--model", classifier,
       "--threads", "1", "-o", tmp_path / "feat.h5", "-q")
    ws("graph", tmp_path / "feat.h5", "--knn", 3, "--weights", "fan", "-o", tmp_path / "graph.h5", "-q")
    ws("cut", tmp_path / "graph.h5", "--method", "fan", "-o", tmp_path / "assign.h5", "-q")
    ev = ws("eval", "assignment", tmp_path / "assign.h5", "--proposals", props, "--gt", val).json
    assert ev
    ws("cam", "peaks", val, "--model", classifier, *T, "-o", tmp_path / "resp.h5", "-q")
    ws("match", val, "--responses", tmp_path / "resp.h5", "--proposals", props, "-o", tmp_path / "inst.json", "-q")
    assert isinstance(json.loads((tmp_path / "inst.json").read_text()), list)
    ws("eval", "instance", tmp_path / "inst.json", "--gt", val)


def test_sam_shards_and_resume(toy_dir, sam_ckpt, sam_props, tmp_path):
    val = toy_dir / "val.json"
    base = ["propose", val, "--method", "sam", "--checkpoint", sam_ckpt, *SAM_FAST, "-q"]
    for i in range(2):
        ws(*base, "--shard", f"{i}/2", "-o", tmp_path / f"p{i}.h5")
    ws("merge", tmp_path / "m.h5", tmp_path / "p0.h5", tmp_path / "p1.h5", "-q")
    with h5py.File(tmp_path / "m.h5") as a, h5py.File(sam_props[0]) as b:
        assert sorted(a["images"]) == sorted(b["images"])
        for k in a["images"]:
            assert np.array_equal(a["images"][k]["scores"][()], b["images"][k]["scores"][()])
    again = ws(*base, "--shard", "0/2", "--resume", "-o", tmp_path / "p0.h5").json
    assert again["images"] == 0 and again["skipped"] == 4


def test_sam_survives_sigterm_and_resumes(toy_dir, sam_ckpt, sam_props, tmp_path):
    """SIGTERM mid-run: exit 143 with one line, the finished images kept; --resume completes the
    store as one uninterrupted run writes it (the per-image runner every method shares)."""
    import signal

    from test_kill_resume import _dump, _kill_and_resume, _same

    out = tmp_path / "p.h5"
    slow = ["--points-per-side", "32", "--box-nms", "1", "--top", "12", "--device", "cpu"]
    args = ["propose", toy_dir / "val.json", "--method", "sam", "--checkpoint", sam_ckpt, *slow, "-o", out, "--quiet"]
    _kill_and_resume([str(a) for a in args], out, signal.SIGTERM, 8)
    ref = tmp_path / "ref.h5"
    ws(*args[:-3], "-o", ref, "-q")
    _same(_dump(ref), _dump(out))


def test_sam_pickle_checkpoints_are_refused_unread(toy_dir, tmp_path, sam_ckpt):
    marker = tmp_path / "PWNED"
    bomb = tmp_path / "sam_vit_h.pth"
    write_pickle_bomb(bomb, marker)
    r = ws("propose", toy_dir / "val.json", "--method", "sam", "--checkpoint", bomb, "-o", tmp_path / "p.h5",
           expect=None)
    assert_bad_input(r, "pickle", "refused")
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text((sam_ckpt / "config.json").read_text())
    write_pickle_bomb(folder / "pytorch_model.bin", marker)
    r = ws("propose", toy_dir / "val.json", "--method", "sam", "--checkpoint", folder, "-o", tmp_path / "p.h5",
           expect=None)
    assert_bad_input(r, "pytorch_model.bin", "refused")
    assert not marker.exists()
    assert not (tmp_path / "p.h5").exists()
    cut = tmp_path / "cut"             # a truncated download: exit 2 naming the folder, no traceback
    cut.mkdir()
    (cut / "config.json").write_text((sam_ckpt / "config.json").read_text())
    (cut / "model.safetensors").write_bytes((sam_ckpt / "model.safetensors").read_bytes()[:1000])
    r = ws("propose", toy_dir / "val.json", "--method", "sam", "--checkpoint", cut, "-o", tmp_path / "p.h5",
           expect=None)
    assert_bad_input(r, str(cut), "cannot load")


@pytest.mark.parametrize("args, words", [
    (["--method", "sam"], "--checkpoint"),
    (["--method", "sam", "--checkpoint", "{sam}", "--pred-iou-thresh", "2"], "--pred-iou-thresh"),
    (["--method", "sam", "--checkpoint", "{sam}", "--points-per-side", "0"], "--points-per-side"),
    (["--method", "sam", "--checkpoint", "{sam}", "--workers", "2"], "--workers"),
    (["--method", "sam", "--checkpoint", "{sam}", "--model-type", "vit_h"], "vit_h"),
    (["--method", "sam", "--checkpoint", "{nowhere}"], "not found"),
    (["--checkpoint", "{sam}"], "--checkpoint is only for --method sam"),
])
def test_sam_bad_flags_exit_2_with_one_line(toy_dir, sam_ckpt, tmp_path, args, words):
    args = [a.format(sam=sam_ckpt, nowhere=tmp_path / "nowhere") for a in args]
    r = ws("propose", toy_dir / "val.json", *args, "-o", tmp_path / "p.h5", expect=None)
    assert_bad_input(r, words)
    assert len([line for line in r.stderr.splitlines() if line.strip()]) == 1, r.stderr


def test_missing_extra_is_one_line_naming_it(toy_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)     # import transformers -> ImportError
    r = ws("propose", toy_dir / "val.json", "--method", "sam", "--checkpoint", tmp_path, "-o", tmp_path / "p.h5",
           expect=None)
    assert_bad_input(r, "wstools[sam]")


# CLIP -----------------------------------------------------------------------------------------

TRAIN_SEG = ["--arch", "tiny", "--crop", "64", "--epochs", "1", "--batch-size", "8", "--loss-at", "input", *T]


@pytest.fixture(scope="module")
def clip_ckpt(tmp_path_factory):
    need_transformers()
    return write_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


@pytest.fixture(scope="module")
def clip_cams(toy_dir, clip_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("clipc") / "cams.h5"
    r = ws("cam", "clip", toy_dir / "val.json", "--checkpoint", clip_ckpt, "--device", "cpu", "-o", out, "-q")
    return out, r.json


def test_clip_store_is_a_cams_store_of_the_tagged_classes(toy_dir, clip_cams):
    from wstools.io.dataset import load_manifest

    out, summary = clip_cams
    assert summary["images"] == 8 and summary["refine"] is True
    assert ws("info", out, "--json").json["kind"] == "cams"
    man = load_manifest(toy_dir / "val.json")
    with h5py.File(out) as f:
        params = json.loads(f.attrs["params"])
        assert params["template"] == "a clean origami {}." and params["box_threshold"] == 0.4
        assert params["class_names"] == man.classes and "sky" in params["background_words"]
        for rec in man.images:
            g = f["images"][rec.id]
            assert g["labels"][()].tolist() == man.tag_labels(rec).tolist()
            cams, scores = g["cams"][()].astype(np.float32), g["scores"][()]
            assert cams.shape == (len(g["labels"]), rec.height, rec.width)
            assert np.allclose(cams.reshape(len(cams), -1).max(1), 1, atol=1e-3)
            assert scores.shape == (len(man.classes),) and np.all((scores >= 0) & (scores <= 1))
            assert scores.sum() < 1          # the background prompts take the rest of the softmax


def test_clip_es_function_on_arrays(clip_ckpt):
    from wstools.cam.clip_es import BACKGROUND_WORDS, TEMPLATE, box_mask, clip_es_cams, text_embeddings
    from wstools.io.foundation import load_clip

    model, tok = load_clip(clip_ckpt, "cpu")
    names = ["disc", "square", "ring"]
    text = text_embeddings(model, tok, [TEMPLATE.format(n) for n in names + list(BACKGROUND_WORDS)])
    assert text.shape[0] == 3 + len(BACKGROUND_WORDS)
    img = (np.random.RandomState(1).rand(50, 70, 3) * 255).astype(np.uint8)
    plain, scores = clip_es_cams(img, model, text, [0, 2], n_classes=3)
    assert plain.shape == (2, 50, 70) and scores.shape == (3,)
    tags, _ = clip_es_cams(img, model, text, [0, 2], n_classes=3, softmax_over="tags")
    assert not np.allclose(plain, tags)
    refined, _ = clip_es_cams(img, model, text, [0, 2], n_classes=3, refine=True, scales=(1.0, 0.5))
    assert refined.shape == (2, 50, 70) and refined.max() <= 1
    none, s = clip_es_cams(img, model, text, [], n_classes=3)
    assert none.shape == (0, 50, 70) and np.allclose(s, scores)
    cam = np.zeros((6, 8))
    cam[1:3, 1:2] = 1
    cam[4, 5:7] = 0.5
    cam[2, 2] = 0.1
    assert box_mask(cam, 0.4).sum() == 2 + 2 and not box_mask(np.zeros((3, 3)), 0.4).any()


def test_clip_cams_run_the_dsrg_recipe_and_features(toy_dir, clip_cams, sam_props, classifier, tmp_path):
    """DSRG: seeds -> train-seg -> predict -> eval; Fan: features from SAM proposals and CLIP CAMs."""
    cams, _ = clip_cams
    val = toy_dir / "val.json"
    ws("grow", "seeds", cams, "--fg", "rel:0.2", "--bg", "saliency:0.3", "--manifest", val,
       "-o", tmp_path / "seeds.h5", "-q")
    assert ws("info", tmp_path / "seeds.h5", "--json").json["kind"] == "labels"
    ws("eval", "cams", cams, "--gt", val)
    ws("train-seg", val, "--labels", tmp_path / "seeds.h5", *TRAIN_SEG, "-o", tmp_path / "seg.pt", "-q")
    ws("predict", val, "--model", tmp_path / "seg.pt", *T, "-o", tmp_path / "pred.h5", "-q")
    assert "miou" in ws("eval", "semantic", tmp_path / "pred.h5", "--gt", val).json
    ws("features", "extract", val, "--proposals", sam_props[0], "--cams", cams, "--model", classifier,
       "--threads", "1", "-o", tmp_path / "feat.h5", "-q")
    assert ws("info", tmp_path / "feat.h5", "--json").json["kind"] == "features"


def test_clip_predicted_classes_shards_and_resume(toy_dir, clip_ckpt, tmp_path):
    val = toy_dir / "val.json"
    base = ["cam", "clip", val, "--checkpoint", clip_ckpt, "--device", "cpu", "--no-refine", "-q"]
    r = ws(*base, "--classes-from", "predicted", "--score-threshold", "1", "-o", tmp_path / "pred.h5").json
    assert r["images"] == 8
    with h5py.File(tmp_path / "pred.h5") as f:     # none reaches 1: the top class only
        assert all(len(f["images"][k]["labels"]) == 1 for k in f["images"])
    ws(*base, "--shard", "0/2", "-o", tmp_path / "c0.h5")
    again = ws(*base, "--shard", "0/2", "--resume", "-o", tmp_path / "c0.h5").json
    assert again["images"] == 0 and again["skipped_existing"] == 4


def test_clip_pickle_weights_are_refused_unread(toy_dir, clip_ckpt, tmp_path):
    marker = tmp_path / "PWNED"
    folder = tmp_path / "clip"
    folder.mkdir()
    for name in ("config.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
        (folder / name).write_bytes((clip_ckpt / name).read_bytes())
    write_pickle_bomb(folder / "pytorch_model.bin", marker)
    r = ws("cam", "clip", toy_dir / "val.json", "--checkpoint", folder, "-o", tmp_path / "c.h5", expect=None)
    assert_bad_input(r, "pytorch_model.bin", "refused")
    write_pickle_bomb(tmp_path / "ViT-B-16.pt", marker)
    r = ws("cam", "clip", toy_dir / "val.json", "--checkpoint", tmp_path / "ViT-B-16.pt", "-o", tmp_path / "c.h5",
           expect=None)
    assert_bad_input(r, "pickle", "refused")
    r = ws("cam", "clip", toy_dir / "val.json", "--checkpoint", write_tiny_sam(tmp_path / "sam"),
           "-o", tmp_path / "c.h5", expect=None)
    assert_bad_input(r, "model_type 'sam'")
    assert not marker.exists() and not (tmp_path / "c.h5").exists()


@pytest.mark.parametrize("args, words", [
    ([], "--checkpoint"),
    (["--checkpoint", "{clip}", "--template", "a photo"], "--template"),
    (["--checkpoint", "{clip}", "--class-names", "a,b"], "--class-names"),
    (["--checkpoint", "{clip}", "--background-words", " , "], "--background-words"),
    (["--checkpoint", "{clip}", "--scales", "0"], "--scales"),
    (["--checkpoint", "{clip}", "--box-threshold", "1.5"], "--box-threshold"),
    (["--checkpoint", "{clip}", "--softmax-over", "some"], "--softmax-over"),
])
def test_clip_bad_flags_exit_2_with_one_line(toy_dir, clip_ckpt, tmp_path, args, words):
    args = [a.format(clip=clip_ckpt) for a in args]
    r = ws("cam", "clip", toy_dir / "val.json", *args, "-o", tmp_path / "c.h5", expect=None)
    assert_bad_input(r, words)
    assert len([line for line in r.stderr.splitlines() if line.strip()]) == 1, r.stderr


def test_clip_missing_extra_is_one_line_naming_it(toy_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    r = ws("cam", "clip", toy_dir / "val.json", "--checkpoint", tmp_path, "-o", tmp_path / "c.h5", expect=None)
    assert_bad_input(r, "wstools[clip]")


def test_examples_sh_runs_recipes_on_sam_proposals_and_clip_cams(sam_ckpt, clip_ckpt, tmp_path):
    """`examples.sh --sam DIR --clip DIR`: PRM's recipe on SAM proposals and DSRG's on CLIP-ES CAMs,
    end to end at the smoke size, to their evaluations."""
    import os
    import subprocess

    from conftest import REPO

    env = dict(os.environ, OUT=str(tmp_path / "out"), OMP_NUM_THREADS="1")
    proc = subprocess.run(["bash", str(REPO / "examples.sh"), "--smoke", "--sam", str(sam_ckpt), "--clip",
                           str(clip_ckpt), "prm", "dsrg"], env=env, capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = tmp_path / "out"
    with h5py.File(out / "common" / "proposals.h5") as f:
        assert json.loads(f.attrs["params"])["method"] == "sam"
    with h5py.File(out / "common" / "cams.h5") as f:
        assert json.loads(f.attrs["params"])["method"] == "clip-es"
    for name in ("prm/eval_instance_val.json", "dsrg/eval_semantic_val.json", "dsrg/eval_cues_train.json"):
        assert json.loads((out / name).read_text().splitlines()[-1]), name


class _OracleSam:
    """A stand-in for ``transformers.SamModel`` that knows the objects: a point prompt (in the
    resized, padded model frame) gets the mask of the object under it as logits +-10, first of
    its three outputs with predicted IoU 0.99. Proves the frame arithmetic of sam_masks (points to
    the resized frame, masks back through the padding to the image) on a non-square image."""

    def __init__(self, objects, size=32):
        import torch
        from types import SimpleNamespace

        self.objects, self.size = objects, size
        self.config = SimpleNamespace(vision_config=SimpleNamespace(image_size=size))
        self._p = torch.nn.Parameter(torch.zeros(1))

    def parameters(self):
        return iter([self._p])

    def get_image_embeddings(self, x):
        return x

    def __call__(self, image_embeddings, input_points, input_labels, multimask_output):
        import torch
        import torch.nn.functional as F
        from types import SimpleNamespace

        h, w = self.objects.shape[1:]
        s = self.size / max(h, w)
        nh, nw = round(h * s), round(w * s)
        pts = input_points[0, :, 0].numpy()
        logits = torch.full((1, len(pts), 3, self.size, self.size), -10.0)
        for i, (x, y) in enumerate(pts):
            hit = [k for k, m in enumerate(self.objects) if m[min(int(y / s), h - 1), min(int(x / s), w - 1)]]
            if hit:
                m = torch.as_tensor(self.objects[hit[0]], dtype=torch.float32)[None, None]
                small = F.interpolate(m, size=(nh, nw), mode="nearest")[0, 0] > 0.5
                logits[0, i, 0, :nh, :nw] = torch.where(small, 10.0, -10.0)
        iou = torch.tensor([0.99, 0.5, 0.5]).repeat(1, len(pts), 1)
        return SimpleNamespace(pred_masks=logits, iou_scores=iou)


def test_sam_masks_on_an_oracle_model_return_the_objects():
    from wstools.proposals.sam import sam_masks

    h, w = 48, 64
    yy, xx = np.mgrid[:h, :w]
    objects = np.stack([(yy >= 4) & (yy < 20) & (xx >= 6) & (xx < 30),          # a box
                        (yy - 34) ** 2 + (xx - 46) ** 2 < 100])                 # a disc
    img = np.zeros((h, w, 3), np.uint8)
    for size, least in ((128, 0.99), (32, 0.85)):     # model frame larger / smaller than the image
        masks, scores, boxes = sam_masks(img, _OracleSam(objects, size), points_per_side=16)
        assert len(masks) == 2 and np.allclose(scores, 0.99)          # background points give nothing
        for obj in objects:
            iou = max((m & obj).sum() / (m | obj).sum() for m in masks)
            assert iou > least, (size, iou)
    assert sorted(boxes[:, 0].tolist()) == pytest.approx([6, 37], abs=1.01)


def test_clip_es_attention_affinity_is_symmetric_and_drops_the_class_token():
    import torch

    from wstools.cam.clip_es import attention_affinity

    torch.manual_seed(0)
    atts = [torch.rand(1, 2, 5, 5).softmax(-1) for _ in range(3)]
    aff = attention_affinity(atts, 2, 4)
    assert aff.shape == (4, 4) and torch.allclose(aff, aff.T) and (aff >= 0).all()
    mean = torch.stack([a[0].mean(0) for a in atts[-2:]]).mean(0)[1:, 1:]
    s = mean / mean.sum(0, keepdim=True)
    s = s / s.sum(1, keepdim=True)
    assert torch.allclose(aff, (s + s.T) / 2)
