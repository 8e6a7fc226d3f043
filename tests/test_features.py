"""ws features: CAM probabilities, ROI features, LIID's MIL losses (hand-computed values), the
extract / train-mil commands end to end on toy images, shards + merge, and bad inputs."""

from __future__ import annotations

import math
import shutil

import h5py
import numpy as np
import pytest
import torch

from wstools.features.mil import MilNet, cam_loss, center_loss, lse_pool, mil_loss, mil_total_loss, update_centers
from wstools.features.probabilities import cam_scores, normalise_rows, proposal_probabilities, pseudo_labels
from wstools.features.roi import roi_features

from conftest import assert_bad_input, run_ws_inproc as run_ws

pytestmark = pytest.mark.cli

T = ("--threads", "1")


# --- probabilities -------------------------------------------------------------------------

def _cams():
    a = np.zeros((2, 4, 4), np.float32)
    a[0, :2, :2] = [[1.0, 0.5], [0.5, 0.0]]      # class of labels[0]: top-left corner
    a[1, 2:, 2:] = 0.4                            # class of labels[1]: bottom-right, weak
    return a


def test_cam_scores_by_hand():
    boxes = np.array([[0, 0, 2, 2], [2, 2, 4, 4], [0, 0, 4, 4]], np.float32)
    a = _cams()
    mean = cam_scores(a, boxes, "box-mean")
    np.testing.assert_allclose(mean, [[0.5, 0.0], [0.0, 0.4], [2.0 / 16, 1.6 / 16]], atol=1e-6)
    mm = cam_scores(a, boxes, "mean+max")
    np.testing.assert_allclose(mm, [[1.5, 0.0], [0.0, 0.8], [2.0 / 16 + 1, 1.6 / 16 + 0.4]], atol=1e-6)
    masks = np.zeros((1, 4, 4), bool)
    masks[0, 0, :2] = True                         # values 1.0, 0.5
    np.testing.assert_allclose(cam_scores(a, boxes[:1], "mask-mean", masks), [[0.75, 0.0]], atol=1e-6)


def test_proposal_probabilities_threshold_reproduces_eq3():
    boxes = np.array([[0, 0, 2, 2], [2, 2, 4, 4]], np.float32)
    p = proposal_probabilities(_cams(), [2, 4], boxes, 5, method="mean+max", noise="threshold", eta=0.75)
    # row 0: s = [0.375, 0, 0.75, 0, 0, 0] / 1.125; row 1: [0.375, 0, 0, 0, 0.4, 0] / 0.775
    np.testing.assert_allclose(p[0], np.array([0.375, 0, 0.75, 0, 0, 0]) / 1.125, atol=1e-6)
    np.testing.assert_allclose(p[1], np.array([0.375, 0, 0, 0, 0.4, 0]) / 0.775, atol=1e-6)
    R = cam_scores(_cams(), boxes, "mean+max")
    np.testing.assert_array_equal(pseudo_labels(R, [2, 4], 0.75), [2, 4])
    np.testing.assert_array_equal(pseudo_labels(R, [2, 4], 0.9), [2, 0])     # 0.8 < 0.9: noise
    np.testing.assert_array_equal(p.argmax(1), [2, 4])
    q = proposal_probabilities(_cams(), [2, 4], boxes, 5, method="box-mean", noise="1-max")
    np.testing.assert_allclose(q[1], np.array([0.6, 0, 0, 0, 0.4, 0]), atol=1e-6)


def test_box_mean_noise_none_is_fan_eq2():
    """Fan et al. Eq. 2: p_i = the mean of A_i in the box, no noise column, no row division."""
    boxes = np.array([[0, 0, 2, 2], [0, 0, 4, 4]], np.float32)
    p = proposal_probabilities(_cams(), [2, 4], boxes, 5, method="box-mean", noise="none")
    np.testing.assert_allclose(p, [[0, 0, 0.5, 0, 0, 0], [0, 0, 2.0 / 16, 0, 1.6 / 16, 0]], atol=1e-6)


def test_normalise_rows_zero_row_is_noise():
    np.testing.assert_allclose(normalise_rows(np.array([[0.0, 0, 0], [1, 1, 2]])), [[1, 0, 0], [0.25, 0.25, 0.5]])


# --- ROI features ----------------------------------------------------------------------------

def test_roi_features_constant_regions():
    fmap = torch.zeros(1, 2, 4, 4)
    fmap[0, 0, :2, :2] = 3.0       # channel 0: 3 in the top-left quarter
    fmap[0, 1] = 1.0
    # the image is 32 px (stride 8): box (0, 0, 12, 12) lies inside the top-left quarter's support
    f = roi_features(fmap, [torch.tensor([[2.0, 2.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])], (32, 32), 2)
    assert f.shape == (2, 2)
    assert f[0, 0] == pytest.approx(3.0, abs=1e-5) and f[1, 0] == pytest.approx(0.0, abs=1e-5)
    np.testing.assert_allclose(f[:, 1].numpy(), [1.0, 1.0], atol=1e-6)
    assert roi_features(fmap, [torch.zeros(0, 4)], (32, 32)).shape == (0, 2)


# --- LIID losses, by hand ------------------------------------------------------------------------

def test_cam_loss_eq4_by_hand():
    p = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    want0 = -(math.log(0.5) + (math.log(0.7) + math.log(0.8)) / 2)
    want1 = -(math.log(0.8) + (math.log(0.9) + math.log(0.9)) / 2)
    assert float(cam_loss(p, torch.tensor([0, 2]))) == pytest.approx((want0 + want1) / 2, rel=1e-5)
    assert want0 == pytest.approx(0.983056, abs=1e-5)


def test_lse_pool_eq5_by_hand():
    p = torch.tensor([[0.5, 0.2], [0.1, 0.2]])
    z = lse_pool(p, 5.0)
    assert float(z[0]) == pytest.approx(math.log((math.exp(2.5) + math.exp(0.5)) / 2) / 5, rel=1e-6)
    assert float(z[1]) == pytest.approx(0.2, rel=1e-6)        # equal values: Z = the value
    big = lse_pool(p, 500.0)
    assert float(big[0]) == pytest.approx(0.5, abs=2e-3)       # r -> inf: the maximum


def test_mil_loss_eq6_by_hand():
    p = torch.tensor([[0.6, 0.1, 0.3], [0.2, 0.3, 0.5]])
    z = [math.log((math.exp(5 * a) + math.exp(5 * b)) / 2) / 5 for a, b in zip(p[0].tolist(), p[1].tolist())]
    present = torch.tensor([False, False, True])                 # tag: class 2; background added
    want = -(math.log(z[0]) + math.log(z[2])) / 2 - math.log(1 - z[1])
    assert float(mil_loss(p, present, 5.0)) == pytest.approx(want, rel=1e-5)
    every = torch.tensor([True, True, True])                     # empty complement: only the first term
    assert float(mil_loss(p, every, 5.0)) == pytest.approx(-sum(math.log(v) for v in z) / 3, rel=1e-5)


def test_center_loss_eq7_and_update_eq8_by_hand():
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    centers = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    want = ((1 - 1 / math.sqrt(2)) + 0.0) / 2
    assert float(center_loss(f, p, centers)) == pytest.approx(want, rel=1e-6)
    c = torch.zeros(2, 2)
    update_centers(c, torch.tensor([[2.0, 0.0], [4.0, 0.0]]), torch.tensor([[0.9, 0.1], [0.6, 0.4]]), 0.5)
    np.testing.assert_allclose(c.numpy(), [[2.5, 0.0], [0.0, 0.0]])   # 0 -> 1 -> 1 + 0.5 (4 - 1)


def test_total_loss_eq9_weights_and_gradients():
    torch.manual_seed(0)
    a = torch.randn(4, 3, requires_grad=True)
    f = torch.randn(4, 5, requires_grad=True)
    pseudo, present, centers = torch.tensor([0, 1, 0, 2]), torch.tensor([True, True, False]), torch.randn(3, 5)
    total, parts = mil_total_loss(a, f, pseudo, present, centers, alpha=0.5, beta=0.5, gamma=0.1)
    assert float(total.detach()) == pytest.approx(0.5 * parts["loss_att"] + 0.5 * parts["loss_mil"] + 0.1 * parts["loss_cent"],
                                         rel=1e-5)
    total.backward()
    assert a.grad.abs().sum() > 0 and f.grad.abs().sum() > 0


def test_milnet_shapes():
    from wstools.nn.backbones import build_backbone

    net = MilNet(build_backbone("tiny", 16), 5)
    a, f = net(torch.randn(2, 3, 64, 64), [torch.tensor([[0.0, 0, 32, 32]]), torch.tensor([[0.0, 0, 64, 64], [8, 8, 20, 40]])])
    assert a.shape == (3, 6) and f.shape == (3, net.backbone.out_channels)
    assert "centers" in net.state_dict()


# --- CLI ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def staged(toy_dir, tmp_path_factory):
    """Proposals (top 10), a 1-epoch tiny classifier and its CAMs of the toy training set."""
    d = tmp_path_factory.mktemp("feat")
    train = toy_dir / "train.json"
    run_ws("propose", train, "--top", "10", "-o", d / "props.h5", "-q")
    run_ws("cam", "train", train, "--arch", "tiny", "--optimizer", "adam", "--lr", "0.002", "--head-lr-mult", "1",
           "--crop", "64", "--scales", "1,1", "--epochs", "1", *T, "-q", "-o", d / "cls.pt")
    run_ws("cam", "infer", train, "--model", d / "cls.pt", "--scales", "1.0", "--no-flip", *T, "-q",
           "-o", d / "cams.h5")
    return {"dir": d, "train": train, "props": d / "props.h5", "cams": d / "cams.h5", "cls": d / "cls.pt"}


def _props_counts(path, top):
    with h5py.File(path, "r") as h5:
        return {g.attrs["id"]: min(top, len(g["boxes"])) for g in h5["images"].values()}


def _read(path):
    from wstools.io.flat import read_features
    from wstools.io.store import open_store

    with open_store(path, "features") as s:
        return read_features(s, len(s.classes)), s.params


def test_route1_end_to_end_to_eval_assignment(staged, tmp_path):
    s = staged
    out = tmp_path / "feats.h5"
    r = run_ws("features", s["train"], "--proposals", s["props"], "--cams", s["cams"], "--model", s["cls"],
               *T, "-q", "-o", out)
    counts = _props_counts(s["props"], 20)
    assert r.json["proposals"] == sum(counts.values())
    data, params = _read(out)
    M = sum(counts.values())
    assert data["feat"].shape == (M, 128) and data["prob"].shape == (M, 6)
    np.testing.assert_allclose(data["prob"].sum(1), 1.0, atol=1e-5)
    assert data["allowed"][:, 0].all() and data["truth"] is not None and data["truth"].shape == (M,)
    assert params["prob"] == "mean+max" and params["noise"] == "threshold"
    # --prob box-mean defaults to Fan et al.'s Eq. 2 (no noise column)
    run_ws("features", s["train"], "--proposals", s["props"], "--cams", s["cams"], "--model", s["cls"],
           "--prob", "box-mean", *T, "-q", "-o", tmp_path / "fan.h5")
    fan, fan_params = _read(tmp_path / "fan.h5")
    assert fan_params["noise"] == "none" and (fan["prob"][:, 0] == 0).all() and fan["prob"].max() <= 1
    # each image's proposal indices run 0..n-1
    for i, image_id in enumerate(data["image_ids"]):
        np.testing.assert_array_equal(data["proposal"][data["image"] == i], np.arange(counts[image_id]))
    # untagged classes are never allowed and get probability 0
    assert (data["prob"][~data["allowed"]] == 0).all()
    run_ws("graph", out, "-o", tmp_path / "g.h5", *T, "-q")
    run_ws("cut", tmp_path / "g.h5", "-o", tmp_path / "a.h5", "--method", "attention", "-q")
    e = run_ws("eval", "assignment", tmp_path / "a.h5", "--proposals", s["props"], "--gt", s["train"], "-q")
    assert e.json["proposals"] == M and 0 <= e.json["accuracy"] <= 1


def test_route1_box_mean_mask_mean_top3_float16(staged, tmp_path):
    s = staged
    for method in ("box-mean", "mask-mean"):
        out = tmp_path / f"{method}.h5"
        run_ws("features", "extract", s["train"], "--proposals", s["props"], "--cams", s["cams"], "--model",
               s["cls"], "--prob", method, "--noise", "1-max", "--proposals-per-image", "3", "--feat-dtype",
               "float16", *T, "-q", "-o", out)
        data, _ = _read(out)
        assert len(data["image"]) == sum(_props_counts(s["props"], 3).values())
        with h5py.File(out, "r") as h5:
            assert h5["feat"].dtype == np.float16


def test_train_mil_then_extract_and_resume_refusal(staged, tmp_path):
    s = staged
    ck = tmp_path / "mil.pt"
    r = run_ws("features", "train-mil", s["train"], "--proposals", s["props"], "--cams", s["cams"], "--arch",
               "tiny", "--init", s["cls"], "--epochs", "1", "--proposals-per-image", "5", *T, "-q", "-o", ck)
    m = r.json["metrics"]
    assert {"loss", "loss_att", "loss_mil", "loss_cent"} <= set(m) and math.isfinite(m["loss"])
    assert len((tmp_path / "mil.log.jsonl").read_text().splitlines()) == 1
    from wstools.io.checkpoint import load_checkpoint

    ckpt = load_checkpoint(ck, "mil")
    assert ckpt["arch"] == "tiny" and "centers" in ckpt["state_dict"]
    out = tmp_path / "fm.h5"
    r = run_ws("features", s["train"], "--proposals", s["props"], "--model", ck, *T, "-q", "-o", out)
    data, params = _read(out)
    assert params["prob"] == "mil" and data["feat"].shape[1] == 128
    np.testing.assert_allclose(data["prob"].sum(1), 1.0, atol=1e-5)
    # a resumed run with other arguments is refused, naming the flag
    run_ws("features", "train-mil", s["train"], "--proposals", s["props"], "--cams", s["cams"], "--arch", "tiny",
           "--epochs", "2", "--stop-after", "1", *T, "-q", "-o", tmp_path / "m2.pt")
    bad = run_ws("features", "train-mil", s["train"], "--proposals", s["props"], "--cams", s["cams"], "--arch",
                 "tiny", "--epochs", "2", "--eta", "0.5", "--resume", *T, "-q", "-o", tmp_path / "m2.pt", expect=None)
    assert_bad_input(bad, "--eta")


def test_shards_merge_equal_whole_and_overlap_refused(staged, tmp_path):
    s = staged
    common = ["--proposals", s["props"], "--cams", s["cams"], "--model", s["cls"], *T, "-q"]
    run_ws("features", s["train"], *common, "-o", tmp_path / "all.h5")
    for i in (0, 1):
        run_ws("features", s["train"], *common, "--shard", f"{i}/2", "-o", tmp_path / f"p{i}.h5")
    r = run_ws("merge", tmp_path / "m.h5", tmp_path / "p0.h5", tmp_path / "p1.h5")
    whole, _ = _read(tmp_path / "all.h5")
    merged, _ = _read(tmp_path / "m.h5")
    assert r.json["proposals"] == len(whole["image"])

    def keyed(d):
        ids = np.array(d["image_ids"])[d["image"]]
        order = np.lexsort((d["proposal"], ids))
        return ids[order], d["feat"][order], d["prob"][order], d["truth"][order]

    for a, b in zip(keyed(whole), keyed(merged)):
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, atol=1e-5)
        else:
            np.testing.assert_array_equal(a, b)
    again = run_ws("features", s["train"], *common, "--shard", "0/2", "--resume", "-o", tmp_path / "p0.h5")
    assert again.json["resumed"] is True
    other = run_ws("features", s["train"], *common, "--shard", "0/2", "--resume", "--eta", "0.5", "-o",
                   tmp_path / "p0.h5", expect=None)
    assert_bad_input(other, "cannot resume")
    bad = run_ws("merge", tmp_path / "x.h5", tmp_path / "p0.h5", tmp_path / "p0.h5", expect=None)
    assert_bad_input(bad, "overlaps")
    assert not (tmp_path / "x.h5").exists()


# --- bad input ------------------------------------------------------------------------------------

def _extract(s, out, props=None, cams=None, model=None, expect=2):
    return run_ws("features", s["train"], "--proposals", props or s["props"], "--cams", cams or s["cams"],
                  "--model", model or s["cls"], *T, "-q", "-o", out, expect=expect)


def test_bad_cams_from_another_manifest(staged, toy_dir, tmp_path):
    s = staged
    cams_val = tmp_path / "cams_val.h5"
    run_ws("cam", "infer", toy_dir / "val.json", "--model", s["cls"], "--scales", "1.0", "--no-flip", *T, "-q",
           "-o", cams_val)
    out = tmp_path / "o.h5"
    assert_bad_input(_extract(s, out, cams=cams_val), str(cams_val))
    assert not out.exists()


def test_bad_proposals_with_another_class_list(staged, tmp_path):
    s = staged
    props = tmp_path / "props.h5"
    shutil.copy(s["props"], props)
    with h5py.File(props, "r+") as h5:
        h5.attrs["classes"] = '["a", "b"]'
    out = tmp_path / "o.h5"
    assert_bad_input(_extract(s, out, props=props), "class list")
    assert not out.exists()


def test_image_with_zero_proposals_gives_no_rows(staged, tmp_path):
    s = staged
    props = tmp_path / "props.h5"
    shutil.copy(s["props"], props)
    with h5py.File(props, "r+") as h5:
        g = next(iter(h5["images"].values()))
        empty_id = g.attrs["id"]
        for name in ("boxes", "scores", "masks"):
            dt = g[name].dtype
            shape = (0, *g[name].shape[1:])
            del g[name]
            g.create_dataset(name, shape=shape, dtype=dt)
    out = tmp_path / "o.h5"
    r = _extract(s, out, props=props, expect=0)
    assert r.json["images_without_proposals"] == 1
    data, _ = _read(out)
    i = data["image_ids"].index(empty_id)
    assert not (data["image"] == i).any() and len(data["image"]) == r.json["proposals"] > 0


def test_bad_checkpoint_kind_and_architecture(staged, tmp_path):
    from wstools.io.checkpoint import load_checkpoint, save_checkpoint

    s = staged
    ckpt = load_checkpoint(s["cls"], "classifier")
    icn = tmp_path / "icn.pt"
    save_checkpoint(icn, {"arch": "tiny", "state_dict": {}}, kind="icn")
    out = tmp_path / "o.h5"
    assert_bad_input(_extract(s, out, model=icn), "icn checkpoint")
    wrong = tmp_path / "wrong.pt"
    save_checkpoint(wrong, {**{k: v for k, v in ckpt.items() if k != "ws_kind"}, "arch": "resnet18"}, kind="classifier")
    assert_bad_input(_extract(s, out, model=wrong), "does not fit arch resnet18")
    assert not out.exists()


def test_bad_nan_in_cams_names_the_image(staged, tmp_path):
    s = staged
    cams = tmp_path / "cams.h5"
    shutil.copy(s["cams"], cams)
    with h5py.File(cams, "r+") as h5:
        g = next(g for g in h5["images"].values() if g["cams"].shape[0])
        bad_id = g.attrs["id"]
        a = g["cams"][()]
        a[0, 0, 0] = np.nan
        g["cams"][...] = a
    out = tmp_path / "o.h5"
    assert_bad_input(_extract(s, out, cams=cams), "NaN", bad_id)
    assert not out.exists()


def test_bad_proposal_mask_size(staged, tmp_path):
    s = staged
    props = tmp_path / "props.h5"
    shutil.copy(s["props"], props)
    with h5py.File(props, "r+") as h5:
        g = next(iter(h5["images"].values()))
        bad_id = g.attrs["id"]
        g.attrs["height"] = 32
    out = tmp_path / "o.h5"
    assert_bad_input(_extract(s, out, props=props), "a 64x32 image", bad_id)
    assert not out.exists()
