"""Unit tests of wstools.seg: losses against hand-computed values, amended testing, inference,
the training step (with stand-ins for the CRF and region growing), Mask R-CNN helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wstools.errors import InputError
from wstools.seg.data import check_label_map, collate_crops, joint_scale_flip_crop, SegCrops
from wstools.seg.instance import detections_to_results, instance_target
from wstools.seg.losses import balanced_seeding_loss, boundary_loss, cross_entropy, seeding_loss
from wstools.seg.models import build_instance, build_semantic, load_backbone
from wstools.seg.semantic import (amend, match_resolution, predict_probs, present_labels, refine, restrict_to_present,
                                  semantic_confusion, semantic_step)

pytestmark = pytest.mark.unit

LN3 = math.log(3.0)


def _logits(pixels):
    """(1, C, 1, N) logits from a list of per-pixel logit vectors."""
    return torch.tensor(pixels, dtype=torch.float64).T[None, :, None, :].contiguous()


def test_cross_entropy_ignores_255():
    logits = _logits([[0.0, 0.0], [0.0, LN3], [5.0, -5.0]])
    labels = torch.tensor([[[0, 1, 255]]])
    expected = (math.log(2) + math.log(4 / 3)) / 2
    assert float(cross_entropy(logits, labels)) == pytest.approx(expected, abs=1e-9)


def test_cross_entropy_all_ignored_is_zero_with_gradient():
    logits = _logits([[1.0, 2.0]]).requires_grad_()
    loss = cross_entropy(logits, torch.tensor([[[255]]]))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert logits.grad is not None


def test_balanced_seeding_loss_normalises_fg_and_bg_separately():
    # H_1 = 3/4 and 1/2 at the two foreground seeds, H_0 = 3/4 at the background seed, one unlabelled
    logits = _logits([[0.0, LN3], [0.0, 0.0], [LN3, 0.0], [9.0, -9.0]])
    seeds = torch.tensor([[[1, 1, 0, 255]]])
    expected = -(math.log(3 / 4) + math.log(1 / 2)) / 2 - math.log(3 / 4)
    assert float(balanced_seeding_loss(logits, seeds)) == pytest.approx(expected, abs=1e-9)
    # SEC (Sun et al. Eq. 3) divides by all three seeds at once
    sec = -(math.log(3 / 4) + math.log(1 / 2) + math.log(3 / 4)) / 3
    assert float(seeding_loss(logits, seeds)) == pytest.approx(sec, abs=1e-9)


def test_balanced_seeding_loss_without_background_seeds_and_batch_mean():
    a = _logits([[0.0, LN3], [0.0, 0.0]])
    b = _logits([[LN3, 0.0], [0.0, 0.0]])
    seeds_a = torch.tensor([[[1, 255]]])           # only foreground: bg term is 0
    seeds_b = torch.tensor([[[0, 0]]])             # only background
    la = -math.log(3 / 4)
    lb = -(math.log(3 / 4) + math.log(1 / 2)) / 2
    got = balanced_seeding_loss(torch.cat([a, b]), torch.cat([seeds_a, seeds_b]))
    assert float(got) == pytest.approx((la + lb) / 2, abs=1e-9)


def test_boundary_loss_is_kl_to_the_crf_output():
    logits = _logits([[0.0, 0.0], [0.0, LN3]])     # F = (1/2, 1/2) and (1/4, 3/4)
    q = torch.tensor([[0.75, 0.25], [0.25, 0.75]], dtype=torch.float64).T[None, :, None, :]
    kl0 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert float(boundary_loss(logits, q)) == pytest.approx(kl0 / 2, abs=1e-9)
    logits.requires_grad_()
    boundary_loss(logits, q).backward()
    assert float(logits.grad.abs()[..., 1].sum()) == pytest.approx(0.0, abs=1e-12)   # Q = F there


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_boundary_loss_nonnegative_and_zero_at_q_equal_f(seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 4, 3, 3, generator=g, dtype=torch.float64)
    f = torch.softmax(logits, 1)
    assert float(boundary_loss(logits, f)) == pytest.approx(0.0, abs=1e-10)
    q = torch.softmax(torch.randn(2, 4, 3, 3, generator=g, dtype=torch.float64), 1)
    assert float(boundary_loss(logits, q)) >= -1e-12


def test_amend_pushes_rejected_classes_below_the_ceiling():
    probs = np.array([[0.2, 0.1], [0.5, 0.3], [0.3, 0.6]], np.float32)[:, None, :]   # (3 labels, 1, 2)
    present = np.array([True, True, False])
    out = amend(probs, present, 1e-4)
    # pixel 0: class 2 (0.3) is already below the ceiling 0.5: unchanged
    np.testing.assert_allclose(out[:, 0, 0], [0.2, 0.5, 0.3], atol=1e-6)
    # pixel 1: ceiling max(0.1, 0.3) = 0.3, class 2 -> 0.2999, renormalised
    s = 0.1 + 0.3 + 0.2999
    np.testing.assert_allclose(out[:, 0, 1], [0.1 / s, 0.3 / s, 0.2999 / s], atol=1e-6)
    assert out[:, 0, 1].argmax() == 1
    # background counts as present even when marked absent
    np.testing.assert_allclose(amend(probs, np.array([False, True, True])), probs / probs.sum(0), atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_amend_argmax_is_a_present_class(seed):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(5), size=(4, 4)).transpose(2, 0, 1).astype(np.float32)
    present = rng.random(5) < 0.5
    present[0] = True
    out = amend(probs, present)
    assert present[out.argmax(0)].all()
    np.testing.assert_allclose(out.sum(0), 1, atol=1e-5)


class _Fixed(torch.nn.Module):
    """A 'network' whose logits are a fixed (1, C, h, w) tensor plus 0 * x (so gradients flow)."""

    def __init__(self, logits):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.logits = logits

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1, -1, -1) + self.w * x.mean()


def test_predict_probs_averages_scales_and_flips():
    net = build_semantic("tiny", 3).eval()
    x = torch.randn(2, 3, 32, 32)
    p = predict_probs(net, x, (1.0, 0.5), flip=True)
    assert p.shape == (2, 3, 32, 32)
    np.testing.assert_allclose(p.sum(1).numpy(), 1, atol=1e-5)
    single = predict_probs(net, x, (1.0,), flip=False)
    flipped = predict_probs(net, x.flip(-1), (1.0,), flip=False).flip(-1)
    np.testing.assert_allclose(predict_probs(net, x, (1.0,), flip=True).numpy(),
                               ((single + flipped) / 2).numpy(), atol=1e-5)


def test_match_resolution_output_and_input():
    logits = torch.zeros(1, 2, 2, 2)
    labels = torch.tensor([[[1, 1, 0, 0], [1, 1, 0, 0], [255, 255, 0, 0], [255, 255, 0, 0]]])
    raw = torch.zeros(1, 4, 4, 3, dtype=torch.uint8)
    lo, lab, r = match_resolution(logits, labels, raw, "output")
    assert lab.tolist() == [[[1, 0], [255, 0]]] and r.shape == (1, 2, 2, 3)
    up, lab2, _ = match_resolution(logits, labels, raw, "input")
    assert up.shape == (1, 2, 4, 4) and lab2 is labels


def _batch(labels, target):
    h, w = labels.shape[-2:]
    return {"image": torch.zeros(1, 3, h, w), "labels": torch.as_tensor(labels)[None].long(),
            "raw": torch.zeros(1, h, w, 3, dtype=torch.uint8), "target": torch.tensor([target], dtype=torch.float32)}


def test_semantic_step_grows_the_seeds_and_adds_the_boundary_term():
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]], [[0.0, 0.0]]]])      # (1, 3, 1, 2)
    seeds = np.array([[1, 255]], np.uint8)
    calls = {}

    def grow(probs, s, present):
        calls["present"] = present.tolist()
        calls["probs"] = probs
        out = s.copy()
        out[out == 255] = 2
        return out

    q = np.full((3, 1, 2), 1 / 3, np.float32)

    def crf(image, probs):
        calls["crf_shape"] = (image.shape, probs.shape)
        return q

    step = semantic_step("cpu", loss="balanced-seed", boundary_weight=0.5, crf=crf, grow=grow, at="output")
    loss, aux = step(_Fixed(logits), _batch(seeds, [1.0, 1.0]))
    grown = torch.tensor([[[1, 2]]])
    expected = balanced_seeding_loss(logits, grown) + 0.5 * boundary_loss(logits, torch.from_numpy(q)[None])
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    assert aux == (2, 2)
    assert calls["present"] == [True, True, True]
    assert calls["crf_shape"] == ((1, 2, 3), (3, 1, 2))
    np.testing.assert_allclose(calls["probs"].sum(0), 1, atol=1e-6)     # grown on the softmax, not the CRF


def test_semantic_step_boundary_loss_on_pooled_logits():
    # --boundary-stride 2: the CRF sees the 2x2-average-pooled softmax and the area-resized image
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 4, 6, dtype=torch.float64)
    labels = np.zeros((4, 6), np.uint8)
    q = np.full((3, 2, 3), 1 / 3)
    seen = {}

    def crf(image, probs):
        seen["shapes"] = (image.shape, probs.shape)
        seen["probs"] = probs
        return q

    step = semantic_step("cpu", loss="ce", boundary_weight=2.0, crf=crf, at="output", boundary_stride=2)
    batch = _batch(labels, [1.0, 1.0])
    batch["raw"][:] = 90
    loss, _ = step(_Fixed(logits), batch)
    pooled = torch.nn.functional.avg_pool2d(logits, 2, 2)
    expected = cross_entropy(logits, torch.zeros(1, 4, 6, dtype=torch.long)) + 2.0 * boundary_loss(
        pooled, torch.from_numpy(q)[None])
    assert loss.item() == pytest.approx(expected.item(), abs=1e-9)
    assert seen["shapes"] == ((2, 3, 3), (3, 2, 3))
    np.testing.assert_allclose(seen["probs"], torch.softmax(pooled, 1)[0].numpy(), atol=1e-6)


def test_semantic_step_ce_and_unknown_loss():
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])
    loss, aux = semantic_step("cpu")(_Fixed(logits), _batch(np.array([[0, 255]]), [1.0]))
    assert loss.item() == pytest.approx(float(cross_entropy(logits, torch.tensor([[[0, 255]]]))), abs=1e-6)
    assert aux == (1, 2)
    with pytest.raises(ValueError):
        semantic_step("cpu", loss="nope")(_Fixed(logits), _batch(np.array([[0, 255]]), [1.0]))
    assert present_labels(np.array([0.0, 1.0])).tolist() == [True, False, True]


def test_check_label_map_refuses_size_and_values():
    ok = np.array([[0, 2], [255, 1]], np.uint8)
    assert check_label_map(ok, (2, 2, 3), 2).dtype == np.uint8
    with pytest.raises(InputError, match="3x2 px, the image is 2x2"):
        check_label_map(np.zeros((2, 3), np.uint8), (2, 2, 3), 2, image_id="a")
    with pytest.raises(InputError, match="label 7 outside 0..2"):
        check_label_map(np.array([[7]], np.uint8), (1, 1, 3), 2)


def test_joint_crop_keeps_image_and_labels_aligned():
    rng = np.random.default_rng(0)
    img = np.zeros((20, 30, 3), np.uint8)
    img[:, 15:] = 255
    lab = np.zeros((20, 30), np.uint8)
    lab[:, 15:] = 1
    for _ in range(10):
        x, y, raw = joint_scale_flip_crop(img, lab, rng, 24, (0.5, 1.5))
        assert x.shape == (3, 24, 24) and y.shape == (24, 24) and raw.shape == (24, 24, 3)
        valid = y != 255
        assert ((raw[..., 0] == 255) == (y == 1))[valid].mean() > 0.95
        assert (raw[~valid] == 0).all()
    ds = SegCrops(2, lambda i: (img, lab, np.ones(2, np.float32)), lambda i: np.random.default_rng(i), 16)
    b = collate_crops([ds[0], ds[1]])
    assert b["image"].shape == (2, 3, 16, 16) and b["labels"].dtype == torch.int64


def test_rot90_and_channel_augmentation_keep_labels_on_their_pixels():
    from wstools.seg.data import AUGMENTATIONS

    # an asymmetric object: label 1 exactly where the red channel is 200, in the top-left corner
    img = np.zeros((20, 30, 3), np.uint8)
    img[..., 1] = 50
    img[2:6, 3:12, 0] = 200
    lab = (img[..., 0] == 200).astype(np.uint8)
    corners, channels = set(), set()
    for seed in range(40):
        x, y, raw = joint_scale_flip_crop(img, lab, np.random.default_rng(seed), 32, (1.0, 1.0), flip=False,
                                          augment=AUGMENTATIONS)
        valid = y != 255
        bright = raw.max(-1) == 200                       # the object, whichever channel it moved to
        assert (bright == (y == 1))[valid].all()
        assert int((y == 1).sum()) == int(lab.sum())      # rotated by multiples of 90 degrees: no pixel lost
        ys, xs = np.nonzero(y == 1)
        oy, ox = np.nonzero(valid)
        corners.add((ys.mean() < oy.mean(), xs.mean() < ox.mean()))
        channels.add(int(np.argmax(raw[ys[0], xs[0]])))
    assert len(corners) == 4 and len(channels) == 3       # all four turns and every channel seen
    with pytest.raises(ValueError, match="unknown augmentation 'rot45'"):
        joint_scale_flip_crop(img, lab, np.random.default_rng(0), 32, augment=("rot45",))
    x0, y0, _ = joint_scale_flip_crop(img, lab, np.random.default_rng(3), 32)
    x1, y1, _ = joint_scale_flip_crop(img, lab, np.random.default_rng(3), 32, augment=())
    assert np.array_equal(x0, x1) and np.array_equal(y0, y1)   # no augment: the papers' crops, unchanged


def test_load_backbone_from_classifier_names():
    from wstools.cam.model import CamNet
    from wstools.nn.backbones import build_backbone

    cls = CamNet(build_backbone("tiny", 16), 3)
    state = {k[len("backbone."):]: v for k, v in cls.state_dict().items() if k.startswith("backbone.")}
    seg = build_semantic("tiny", 4)
    n = load_backbone(seg, state)
    assert n == len(seg.backbone.state_dict())
    for k, v in seg.backbone.state_dict().items():
        assert torch.equal(v, state[k])
    with pytest.raises(InputError, match="lacks"):
        load_backbone(seg, {k: v for k, v in list(state.items())[1:]})


def test_tiny_unet_takes_the_tiny_classifier_backbone_and_predicts_at_full_resolution():
    from wstools.cam.model import CamNet
    from wstools.nn.backbones import build_backbone

    for stride in (8, 16):
        cls = CamNet(build_backbone("tiny", stride), 3)
        state = {k[len("backbone."):]: v for k, v in cls.state_dict().items() if k.startswith("backbone.")}
        seg = build_semantic("tiny_unet", 4, stride)
        assert load_backbone(seg, state) == len(state) == len(seg.backbone.state_dict())
        assert seg.stride == stride
        # odd sizes: every skip is upsampled to the size of the finer one
        assert seg.eval()(torch.zeros(2, 3, 37, 50)).shape == (2, 4, 37, 50)
    # the decoder is the head (its own learning rate), the backbone keeps the classifier's names only
    groups = seg.param_groups(1e-3, 10)
    assert len(groups[0]["params"]) == len(list(seg.backbone.parameters())) and groups[1]["lr"] == 1e-2
    assert not any(n.startswith("backbone.") for n, _ in seg.head.named_parameters())


def test_tiny_unet_fits_one_image():
    # a sanity check of the decoder: a few Adam steps on one image drive the pixel error down
    torch.manual_seed(0)
    seg = build_semantic("tiny_unet", 3)
    x = torch.randn(1, 3, 32, 32)
    y = torch.zeros(1, 32, 32, dtype=torch.long)
    y[:, 8:20, 5:15] = 1
    y[:, 22:30, 20:30] = 2
    opt = torch.optim.Adam(seg.parameters(), 0.01)
    for _ in range(60):
        loss = cross_entropy(seg(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (seg(x).argmax(1) == y).float().mean() > 0.97


def test_restrict_to_present_and_refine():
    p = np.array([[[0.2]], [[0.5]], [[0.3]]], np.float32)          # (3, 1, 1)
    r = restrict_to_present(p, np.array([True, False, True]))
    np.testing.assert_allclose(r[:, 0, 0], [0.4, 0.0, 0.6], rtol=1e-6)
    # refine: amend (the rejected class 1 below the ceiling 0.3), then the CRF stand-in
    seen = {}

    def crf(image, probs, iterations):
        seen.update(shape=image.shape, iterations=iterations, argmax=int(probs[:, 0, 0].argmax()))
        return probs[::-1].copy()

    out = refine(p, np.zeros((1, 1, 3), np.uint8), present=np.array([True, False, True]), crf=crf, crf_iterations=4)
    assert seen == {"shape": (1, 1, 3), "iterations": 4, "argmax": 2}
    np.testing.assert_allclose(out[:, 0, 0], amend(p, np.array([True, False, True]))[::-1, 0, 0])
    np.testing.assert_array_equal(refine(p, None), p)


def test_semantic_confusion_of_an_oracle_and_a_constant_model():
    gt = np.zeros((6, 7), np.uint8)
    gt[1:4, 2:5] = 2
    gt[5, :] = 255

    class Constant(torch.nn.Module):
        def __init__(self, label):
            super().__init__()
            self.label = label

        def forward(self, x):
            out = torch.zeros(x.shape[0], 3, *x.shape[-2:])
            out[:, self.label] = 5.0
            return out

    conf = semantic_confusion(Constant(0), [(np.zeros((6, 7, 3), np.uint8), gt)] * 2, 2)
    assert conf.shape == (3, 3) and conf[0, 0] == 2 * 26 and conf[2, 0] == 2 * 9 and conf.sum() == 2 * 35


def test_deeplab_backbone_takes_resnet_classifier_names():
    seg = build_semantic("deeplabv3_resnet50", 3)
    from wstools.nn.backbones import build_backbone

    bb = build_backbone("resnet50", 16).state_dict()
    assert set(seg.backbone.state_dict()) <= set(bb)
    assert seg.eval()(torch.zeros(1, 3, 33, 33)).shape[1] == 3


def test_instance_target_and_results():
    masks = np.zeros((3, 8, 10), bool)
    masks[0, 2:4, 3:6] = True
    masks[2, 0:8, 9] = True
    t = instance_target(masks, np.array([1, 2, 3]))
    assert t["boxes"].tolist() == [[3, 2, 6, 4], [9, 0, 10, 8]]
    assert t["labels"].tolist() == [1, 3] and t["masks"].shape == (2, 8, 10)
    out = {"scores": torch.tensor([0.9, 0.01]), "labels": torch.tensor([2, 1]),
           "masks": torch.from_numpy(masks[:2, None].astype(np.float32))}
    res = detections_to_results(out, "img", [10, 20, 30], 0.5, 0.05)
    assert len(res) == 1 and res[0]["category_id"] == 20 and res[0]["image_id"] == "img"
    from wstools import masks as codec

    dec = codec.decode([res[0]["segmentation"]["counts"].encode()], 8, 10)[0]
    assert (dec == masks[0]).all() and res[0]["segmentation"]["size"] == [8, 10]


def test_tiny_mask_rcnn_trains_one_step():
    from wstools.seg.instance import instance_step

    torch.manual_seed(0)
    model = build_instance("maskrcnn_tiny", 3, 48, 48)
    masks = np.zeros((1, 48, 48), bool)
    masks[0, 10:30, 12:34] = True
    batch = {"images": [torch.rand(3, 48, 48)], "targets": [instance_target(masks, np.array([2]))]}
    loss, aux = instance_step("cpu")(model.train(), batch)
    assert torch.isfinite(loss) and {"loss_mask", "loss_classifier"} <= set(aux)
    loss.backward()


def test_contour_targets_paint_small_instances_last_and_mark_inner_boundaries():
    from wstools.seg.instance import contour_targets

    masks = torch.zeros(2, 8, 10, dtype=torch.uint8)
    masks[0, 1:7, 1:9] = 1          # large, label 2
    masks[1, 3:5, 3:5] = 1          # small, inside it, label 4
    sem, con = contour_targets(masks, torch.tensor([2, 4]), 9, 12)
    assert sem.shape == (9, 12) and (sem[8] == 255).all() and (sem[:, 10:] == 255).all()
    assert sem[3, 3] == 4 and sem[1, 1] == 2 and sem[0, 0] == 0
    assert con[1, 4] == 1 and con[2, 2] == 0                 # the large one's border / its interior
    assert con[3:5, 3:5].sum() == 4                          # a 2x2 instance is all boundary
    assert con[7:].sum() == 0 and con[:, 9:].sum() == 0


def test_instances_from_contours_oracle_splits_touching_objects():
    # two touching discs of class 1 and a square of class 2; with the GT contours the decoding
    # returns exactly the three objects
    from wstools.seg.instance import contour_targets, instances_from_contours

    yy, xx = np.mgrid[:32, :48]
    a = (yy - 16) ** 2 + (xx - 12) ** 2 <= 81
    b = ((yy - 16) ** 2 + (xx - 29) ** 2 <= 81) & ~a
    c = np.zeros((32, 48), bool)
    c[2:10, 38:46] = True
    masks = np.stack([a, b, c])
    sem, con = contour_targets(torch.from_numpy(masks.astype(np.uint8)), torch.tensor([1, 1, 2]), 32, 48)
    probs = np.eye(3, dtype=np.float32)[sem.numpy()].transpose(2, 0, 1) * 0.9 + 0.1 / 3
    # the semantic argmax alone merges the discs: one component of class 1
    m0, l0, _ = instances_from_contours(probs, np.zeros((32, 48), np.float32))
    assert sorted(l0.tolist()) == [1, 2]
    m, l, sc = instances_from_contours(probs, con.numpy())
    assert sorted(l.tolist()) == [1, 1, 2] and np.allclose(sc, 0.9 + 0.1 / 3)
    for gt in masks:
        ious = [(gt & p).sum() / (gt | p).sum() for p in m]
        assert max(ious) == 1.0
    assert instances_from_contours(np.eye(3, dtype=np.float32)[np.zeros((4, 4), int)].transpose(2, 0, 1),
                                   np.zeros((4, 4)))[0].shape == (0, 4, 4)


def test_contour_network_trains_and_detects_like_mask_rcnn():
    torch.manual_seed(0)
    net = build_instance("contour_tiny", 3)
    images = [torch.rand(3, 32, 40), torch.rand(3, 30, 36)]
    masks = torch.zeros(1, 32, 40, dtype=torch.uint8)
    masks[0, 4:14, 6:20] = 1
    targets = [{"boxes": torch.tensor([[6.0, 4, 20, 14]]), "labels": torch.tensor([2]), "masks": masks},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
                "masks": torch.zeros(0, 30, 36, dtype=torch.uint8)}]
    losses = net.train()(images, targets)
    assert set(losses) == {"loss_semantic", "loss_contour"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert net.backbone.stem[0].weight.grad is not None
    with torch.no_grad():
        out = net.eval()(images)
    assert len(out) == 2 and out[1]["masks"].shape[-2:] == (30, 36)
    for o in out:
        assert o["masks"].shape[0] == len(o["labels"]) == len(o["scores"]) == len(o["boxes"])
