"""Unit tests of wstools.cam and wstools.nn: metrics, loss, CAM post-processing,
augmentation, backbones and weights, the safe IRN reader."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wstools.cam import (CamNet, average_precision, background_from_features, finalize_cams, forward_cams,
                         mean_average_precision, multilabel_loss, random_scale_flip_crop, select_classes, to_gray)
from wstools.cam.train import poly_lr
from wstools.errors import InputError
from wstools.io.cams import read_irn_npy
from wstools.nn import build_backbone, load_weights
from wstools.io.checkpoint import read_state_dict

pytestmark = pytest.mark.unit


def _ap_brute(scores, targets):
    precisions = []
    for i in np.flatnonzero(targets):
        above = scores >= scores[i]
        precisions.append(targets[above].sum() / above.sum())
    return float(np.mean(precisions)) if precisions else float("nan")


def test_average_precision_hand_case():
    # ranking: pos(0.9) neg(0.8) pos(0.7) neg(0.1): AP = (1/1 + 2/3) / 2
    assert average_precision([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)
    assert math.isnan(average_precision([0.3, 0.2], [0, 0]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=30))
def test_average_precision_matches_brute_force(pairs):
    scores = np.array([p[0] for p in pairs], float) / 5   # few levels: many ties
    targets = np.array([p[1] for p in pairs], int)
    a, b = average_precision(scores, targets), _ap_brute(scores, targets)
    assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=30))
def test_average_precision_matches_ws_eval(pairs):
    """The training log's AP is `ws eval cams`'s (scikit-learn's definition, ties grouped)."""
    from wstools.eval.cams import average_precision as eval_ap

    scores = np.array([p[0] for p in pairs], float) / 5
    targets = np.array([p[1] for p in pairs], int)
    a, b = average_precision(scores, targets), eval_ap(scores, targets)
    assert (math.isnan(a) and b is None) or a == pytest.approx(b)


def test_mean_average_precision_skips_classes_without_positives():
    s = np.array([[0.9, 0.1, 0.5], [0.1, 0.9, 0.5]])
    t = np.array([[1, 0, 0], [0, 0, 0]])
    assert mean_average_precision(s, t) == pytest.approx(1.0)


def test_loss_is_fan_eq1():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    t = torch.tensor([[1.0, 0.0, 1.0]])
    y = torch.sigmoid(logits)[0]
    expected = -(math.log(y[0]) + math.log(1 - y[1]) + math.log(y[2])) / 3
    assert float(multilabel_loss(logits, t)) == pytest.approx(expected, rel=1e-6)


def test_poly_lr():
    assert poly_lr(0.1, 0, 10) == pytest.approx(0.1)
    assert poly_lr(0.1, 5, 10) == pytest.approx(0.1 * 0.5 ** 0.9)
    assert poly_lr(0.1, 10, 10) == 0.0


def test_finalize_cams_normalises_and_selects():
    maps = torch.zeros(3, 2, 2)
    maps[0] = torch.tensor([[0.0, 2.0], [1.0, 4.0]])
    maps[2] = torch.tensor([[3.0, 0.0], [0.0, 0.0]])
    out = finalize_cams(maps, np.array([1, 3]))
    assert out.shape == (2, 2, 2)
    np.testing.assert_allclose(out[0].numpy(), [[0, 0.5], [0.25, 1]], atol=1e-4)
    np.testing.assert_allclose(out[1].numpy(), [[1, 0], [0, 0]], atol=1e-4)
    # all-zero map stays zero (no division by zero)
    assert float(finalize_cams(maps, np.array([2])).abs().max()) == 0.0


def test_finalize_cams_subtract_others_hand_case():
    maps = torch.tensor([[[1.0, 0.5, 0.0]], [[0.0, 1.0, 0.5]]])   # (2, 1, 3)
    out = finalize_cams(maps, np.array([1, 2]), subtract_others=True).numpy()
    # class 1: [1, .5, 0] - [0, 1, .5] -> [1, 0, 0]; class 2: [0, 1, .5] - [1, .5, 0] -> [0, .5, .5] / .5
    np.testing.assert_allclose(out[0, 0], [1, 0, 0], atol=1e-4)
    np.testing.assert_allclose(out[1, 0], [0, 1, 1], atol=1e-4)
    single = finalize_cams(maps[:1], np.array([1]), subtract_others=True).numpy()
    np.testing.assert_allclose(single[0, 0], [1, 0.5, 0], atol=1e-4)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(0, 10_000), st.booleans())
def test_finalize_cams_range_property(c, seed, sub):
    g = torch.Generator().manual_seed(seed)
    maps = torch.rand(5, 6, 7, generator=g) * 10
    labels = np.sort(np.random.default_rng(seed).choice(np.arange(1, 6), c, replace=False))
    out = finalize_cams(maps, labels, sub)
    assert out.shape == (c, 6, 7)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    peaks = out.amax(dim=(1, 2))
    if sub:   # a map the others (nearly) cover stays (nearly) 0; any other peaks at 1
        m = maps[torch.as_tensor(labels - 1)]
        m = m / m.amax(dim=(1, 2), keepdim=True)
        residual = (m - (m.sum(0, keepdim=True) - m)).clamp_min(0).amax(dim=(1, 2))
        for p, r in zip(peaks.tolist(), residual.tolist()):
            assert abs(p - 1) < 0.01 if r > 1e-3 else p < 0.1
    else:
        assert torch.allclose(peaks, torch.ones(c), atol=1e-3)


def test_background_from_features_hand_case():
    feats = torch.tensor([[[0.0, 1.0, 2.0]], [[0.0, 10.0, 20.0]]])   # both layers rise left to right
    bg = background_from_features(feats).numpy()
    np.testing.assert_allclose(bg[0], [1.0, 0.5, 0.0], atol=1e-3)   # strong features = foreground


def test_select_classes():
    probs = np.array([0.2, 0.7, 0.9, 0.1])
    assert select_classes(probs, tags=np.array([4, 1])).tolist() == [1, 4]
    assert select_classes(probs, threshold=0.5).tolist() == [2, 3]
    assert select_classes(np.array([0.1, 0.3]), threshold=0.5).tolist() == [2]   # at least the best


@pytest.mark.parametrize("arch,stride", [("tiny", 16), ("tiny", 8), ("resnet18", 16), ("resnet18", 8),
                                         ("vgg16", 8)])
def test_backbone_output_stride(arch, stride):
    net = build_backbone(arch, stride).eval()
    with torch.no_grad():
        f_second, f_top = net(torch.zeros(1, 3, 64, 64))
    assert f_top.shape == (1, net.out_channels, 64 // stride, 64 // stride)
    assert f_second.ndim == 4


def test_bad_arch_and_stride():
    with pytest.raises(InputError):
        build_backbone("alexnet")
    with pytest.raises(InputError):
        build_backbone("tiny", 32)


def test_weights_roundtrip_and_wrong_architecture(tmp_path):
    import torchvision

    tv = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(tv.state_dict(), path)        # what torchvision downloads: includes fc.*
    net = build_backbone("resnet18", 8)
    load_weights(net, read_state_dict(path), path)
    assert torch.equal(net.layer4[1].conv2.weight, tv.layer4[1].conv2.weight)
    with pytest.raises(InputError, match="do not fit --arch tiny"):
        load_weights(build_backbone("tiny"), read_state_dict(path), path)
    # same names, other shapes: resnet34's layers hold more blocks; resnet18 into resnet50 differs
    with pytest.raises(InputError, match="resnet50"):
        load_weights(build_backbone("resnet50"), read_state_dict(path), path)


def test_weights_file_is_never_unpickled(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"x": Evil()}, f)
    with pytest.raises(InputError, match="weights_only"):
        read_state_dict(path)


def test_to_gray_and_augmentation_shapes():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    g = to_gray(img)
    assert g.shape == img.shape and (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    from PIL import Image
    np.testing.assert_allclose(g[..., 0], np.asarray(Image.fromarray(img).convert("L")), atol=1)
    for seed in range(5):
        out = random_scale_flip_crop(img, np.random.default_rng(seed), 64, (0.5, 1.5))
        assert out.shape == (3, 64, 64) and out.dtype == np.float32


def test_forward_cams_shapes_and_flip_equivariance():
    torch.manual_seed(0)
    net = CamNet(build_backbone("tiny", 16), 3).eval()
    x = torch.randn(2, 3, 48, 40)
    maps, probs, feats = forward_cams(net, x, (1.0, 0.5), flip=True, features=True)
    assert maps.shape == (2, 3, 48, 40) and probs.shape == (2, 3) and feats.shape == (2, 2, 48, 40)
    assert float(maps.min()) >= 0 and ((probs > 0) & (probs < 1)).all()
    # with flips summed, the CAMs of a flipped image are the flipped CAMs
    maps_f, probs_f, _ = forward_cams(net, x.flip(-1), (1.0, 0.5), flip=True)
    torch.testing.assert_close(maps_f, maps.flip(-1), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(probs_f, probs, atol=1e-5, rtol=1e-5)
    # the logit is the mean of the (un-ReLU'd) score map: GAP commutes with the 1x1 conv
    sm, _ = net.score_maps(x)
    torch.testing.assert_close(net(x), sm.mean(dim=(2, 3)))


def _irn_file(path, keys, high_res):
    np.save(path, {"keys": torch.as_tensor(keys), "cam": torch.rand(len(keys), 4, 4), "high_res": high_res})


def test_read_irn_npy(tmp_path):
    hr = np.random.default_rng(0).random((2, 9, 11)).astype(np.float32)
    _irn_file(tmp_path / "a.npy", [3, 0], hr)
    keys, cams = read_irn_npy(tmp_path / "a.npy")
    assert keys.tolist() == [3, 0] and cams.dtype == np.float32
    np.testing.assert_array_equal(cams, hr)
    # numpy keys work too
    np.save(tmp_path / "b.npy", {"keys": np.array([1]), "high_res": hr[:1]})
    assert read_irn_npy(tmp_path / "b.npy")[0].tolist() == [1]


def test_read_irn_npy_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("open('/tmp/ws_pwned', 'w')",))

    np.save(tmp_path / "evil.npy", np.array({"keys": Evil(), "high_res": np.zeros((1, 2, 2))}, dtype=object),
            allow_pickle=True)
    with pytest.raises(InputError, match="refusing to load global builtins.exec"):
        read_irn_npy(tmp_path / "evil.npy")
    np.save(tmp_path / "plain.npy", np.zeros((2, 3, 3), np.float32))
    with pytest.raises(InputError, match="not IRN's dict"):
        read_irn_npy(tmp_path / "plain.npy")
    (tmp_path / "junk.npy").write_bytes(b"garbage")
    with pytest.raises(InputError, match="cannot read"):
        read_irn_npy(tmp_path / "junk.npy")
