"""wstools.prm: peaks (Eq. 1), peak response maps (Eq. 2), matching scores (Eq. 5 and Zhou et
al.'s), top-k pseudo labels, NMS, the ICN (Eq. 3-4) — against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wstools.prm.icn import ICN, collate_icn, enhance, fit_icn, icn_loss, minmax
from wstools.prm.matching import (background, contour, inner_contour, map_contour, mask_nms, match_image,
                                  plain_scores, pseudo_label, rebalanced_scores, score_parameters, topk_union)
from wstools.prm.peaks import cells_to_pixels, find_peaks, peak_map
from wstools.prm.response import normalize_maps, peak_response_maps

pytestmark = pytest.mark.unit


def _blob(h, w, cy, cx, s=1.0, a=1.0):
    yy, xx = np.mgrid[:h, :w]
    return a * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))


def test_peaks_on_hand_made_map():
    m = _blob(16, 16, 4, 4) + _blob(16, 16, 11, 12, a=0.6)
    maps = np.stack([np.zeros((16, 16)), m]).astype(np.float32)    # K = 2, class 2 present
    pk = find_peaks(maps, [2], sigma=1.0)
    assert pk.shape == (2, 4)
    assert pk[:, 0].tolist() == [2, 2]
    assert pk[:, 1:3].tolist() == [[4, 4], [11, 12]]                  # strongest first
    assert pk[0, 3] == pytest.approx(1.0, abs=1e-5) and pk[1, 3] == pytest.approx(0.6, abs=1e-5)
    # Eq. 1 by hand at the first peak: M - G(M) - mean(M) > 0, and 0 far away
    p = peak_map(m, 1.0)
    assert p[4, 4] > 0 and p[0, 15] == 0 and (p >= 0).all()


def test_peaks_constant_map_and_at_least_one():
    maps = np.full((1, 8, 8), 0.5, dtype=np.float32)
    assert np.all(peak_map(maps[0], 1.0) == 0)            # M - G(M) = 0, minus the mean: no peak
    assert find_peaks(maps, [1], at_least_one=False).shape == (0, 4)
    one = find_peaks(maps, [1], at_least_one=True)
    assert one.shape == (1, 4) and one[0, 0] == 1
    assert find_peaks(maps, []).shape == (0, 4)


def test_peaks_max_peaks_and_negative_scores_ignored():
    m = _blob(16, 16, 3, 3) + _blob(16, 16, 12, 12, a=0.5) - 2.0 * _blob(16, 16, 3, 12)
    pk = find_peaks(m[None].astype(np.float32), [1], max_peaks=1)
    assert pk[:, 1:3].tolist() == [[3, 3]]


def test_cells_to_pixels():
    px = cells_to_pixels(np.array([[1, 0, 0, 2.0], [3, 3, 1, 1.0]]), (4, 4), (64, 32))
    assert px.tolist() == [[1, 7.5, 3.5, 2.0], [3, 55.5, 11.5, 1.0]]


def test_contour_and_background_by_hand():
    mask = np.zeros((9, 9), bool)
    mask[2:7, 2:7] = True
    band = contour(mask, 3)
    assert band.sum() == 7 * 7 - 3 * 3                    # dilation 7x7 minus erosion 3x3
    assert not band[4, 4] and band[2, 2] and band[1, 1]
    assert contour(mask, 1).sum() == 0
    v = mask.astype(np.float32)
    assert background(v, 0.5, 1).sum() == 81 - 25
    assert background(v, 0.5, 3).sum() == 81 - 49


def _square_case():
    v = np.zeros((8, 8), np.float32)
    v[2:5, 2:5] = 1.0
    exact = v > 0
    full = np.ones((8, 8), bool)
    centre = np.zeros((8, 8), bool)
    centre[3, 3] = True
    return v, np.stack([exact, full, centre])


def test_rebalanced_score_by_hand():
    v, masks = _square_case()
    s = rebalanced_scores(v, masks, 0.95, 0.1, 0.8, threshold=0.5, contour_width=3, bg_dilation=1,
                          contour_mode="band", binary=False)
    # contour band of the 3x3 square: 5x5 - 1 = 24 pixels; the exact proposal covers 8 of them
    assert s[0] == pytest.approx(0.95 * 1 + 0.1 * 8)
    assert s[1] == pytest.approx(0.95 * 9 / 64 + 0.1 * 24 - 0.8 * 55)
    assert s[2] == pytest.approx(0.95)
    assert int(np.argmax(s)) == 0
    # without the rebalance factor the full image would win the overlap term
    assert rebalanced_scores(v, masks[:0]).shape == (0,)


def test_rebalanced_score_defaults_by_hand():
    # defaults: E(V) = inner boundary of the binarised map (the 3x3 square's ring of 8), the
    # first term on the binarised map
    v, masks = _square_case()
    v = v * 0.8                                            # soft map: >= 0.35 everywhere on the square
    s = rebalanced_scores(v, masks, 0.95, 0.1, 0.8, threshold=0.35, contour_width=3, bg_dilation=1)
    assert s[0] == pytest.approx(0.95 * 1 + 0.1 * 8)
    assert s[1] == pytest.approx(0.95 * 9 / 64 + 0.1 * 8 - 0.8 * 55)
    assert s[2] == pytest.approx(0.95)                     # the centre pixel is not on the inner boundary
    soft = rebalanced_scores(v, masks, 0.95, 0.1, 0.8, threshold=0.35, contour_width=3, bg_dilation=1,
                             binary=False)
    assert soft[0] == pytest.approx(0.95 * 0.8 + 0.1 * 8)
    inner = inner_contour(masks[0], 3)
    assert inner.sum() == 8 and not inner[3, 3] and not inner[1, 1]
    assert (map_contour(masks[0], 3, "band") == contour(masks[0], 3)).all()
    with pytest.raises(ValueError):
        map_contour(masks[0], 3, "outer")


def test_score_parameters_and_pseudo_label():
    assert score_parameters("plain", plain_alpha=2.0) == {"alpha": 2.0, "beta": 1.0, "threshold": 0.35,
                                                          "contour_width": 3, "bg_dilation": 11}
    kw = score_parameters("rebalanced")
    assert kw["alpha"] == 0.95 and kw["beta"] == 0.1 and kw["gamma"] == 0.8 and kw["contour_mode"] == "inner"
    v, masks = _square_case()
    # the map is min-max normalised first: a map scaled by 0.3 (all below --threshold 0.35
    # unnormalised) still picks the exact proposal first
    kw = score_parameters("rebalanced", threshold=0.5, bg_dilation=1)
    assert (pseudo_label(v * 0.3, masks, 1, **kw) == masks[0]).all()


def test_mask_nms():
    a = np.zeros((4, 6, 6), bool)
    a[0, :3, :3] = True
    a[1, :3, :2] = True                                    # IoU 6/9 with a[0]
    a[2, 3:, 3:] = True
    a[3, :3, :3] = True                                    # a[0] again, another class
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert mask_nms(a, scores, np.array([1, 1, 1, 2]), 0.5) == [0, 2, 3]
    assert mask_nms(a, scores, None, 0.5) == [0, 2]        # across classes (Zhou et al.'s)
    assert mask_nms(a, scores, None, 0.7) == [0, 1, 2]
    assert mask_nms(a[:0], scores[:0], None, 0.5) == []


def test_plain_score_by_hand():
    v, masks = _square_case()
    s = plain_scores(v, masks, alpha=1.0, beta=1.0, threshold=0.5, contour_width=3, bg_dilation=1)
    # exact: sum(V P) = 9, V on the proposal's contour band = its ring of 8, background 0
    assert s[0] == pytest.approx(9 + 8)
    # full image: 9 + (contour of the full mask touches the image border only: V = 0 there) - 55
    assert s[1] == pytest.approx(9 - 55)
    assert s[2] == pytest.approx(1 + 9)                   # centre pixel: erosion empty, its band is the 3x3 of ones


def test_topk_union_skips_contained():
    a = np.zeros((6, 6), bool)
    a[:3, :3] = True
    b = np.zeros((6, 6), bool)
    b[:2, :2] = True                                      # inside a
    c = np.zeros((6, 6), bool)
    c[4:, 4:] = True
    masks = np.stack([a, b, c])
    u = topk_union(np.array([3.0, 2.0, 1.0]), masks, k=2)
    assert (u == (a | c)).all()
    assert (topk_union(np.array([3.0, 2.0, 1.0]), masks, k=1) == a).all()
    assert not topk_union(np.zeros(0), np.zeros((0, 6, 6), bool), 3).any()


def test_match_image_nms_drops_duplicate():
    v, masks = _square_case()
    boxes = np.array([[2, 2, 5, 5], [0, 0, 8, 8], [3, 3, 4, 4]], np.float32)
    maps = np.stack([v, v * 0.5])                          # same instance twice (normalised alike)
    peaks = np.array([[1, 3, 3, 2.0], [1, 3, 3, 1.0]], np.float32)
    kept = match_image(maps, peaks, masks, boxes, "rebalanced", 0.5, "peak", threshold=0.5, contour_width=3,
                       bg_dilation=1, contour_mode="band", binary=False)
    assert kept == [(1, 0, 2.0, pytest.approx(1.75))]
    for nms in ("mask", "mask-all"):
        assert match_image(maps, peaks, masks, boxes, nms=nms, score="peak") == [(1, 0, 2.0, pytest.approx(1.75))]
    with pytest.raises(ValueError):
        match_image(maps, peaks, masks, boxes, nms="circle")
    other = match_image(maps, np.array([[1, 3, 3, 2.0], [2, 3, 3, 1.0]], np.float32), masks, boxes)
    assert len(other) == 2                                # NMS is per class
    assert match_image(maps[:0], peaks[:0], masks, boxes) == []
    assert len(match_image(maps, np.array([[1, 3, 3, 2.0], [2, 3, 3, 1.0]], np.float32), masks, boxes,
                           nms="mask-all")) == 1          # across classes


def test_normalize_maps():
    m = normalize_maps(np.array([[[1.0, 3.0]], [[2.0, 2.0]]]))
    assert m.tolist() == [[[0.0, 1.0]], [[0.0, 0.0]]]


def _camnet():
    from wstools.cam.model import CamNet
    from wstools.nn.backbones import build_backbone

    torch.manual_seed(0)
    return CamNet(build_backbone("tiny", 8), 3).eval()


def test_peak_response_maps_batch_invariant():
    net = _camnet()
    x = torch.randn(3, 32, 32)
    cells = np.array([[1, 0, 0], [2, 3, 3], [3, 1, 2]])
    a = peak_response_maps(net, x, cells, batch=1, smooth_sigma=1.0)
    b = peak_response_maps(net, x, cells, batch=3, smooth_sigma=1.0)
    assert a.shape == (3, 32, 32) and a.min() >= 0 and a.max() <= 1
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert not np.allclose(a[0], a[1])                    # each peak its own map
    assert peak_response_maps(net, x, np.zeros((0, 3)), 4).shape == (0, 32, 32)


def test_peak_response_maps_reductions_by_hand():
    # a one-convolution "classifier" whose score is a fixed linear function of the input: the
    # gradient is its kernel, so each reduction is checked against the kernel by hand
    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 1, 3, padding=1, bias=False)
            with torch.no_grad():
                self.conv.weight.zero_()
                self.conv.weight[0, 0, 1, 1] = 1.0            # red, centre: +1
                self.conv.weight[0, 1, 1, 1] = -3.0           # green, centre: -3
                self.conv.weight[0, 2, 0, 1] = 2.0            # blue, the pixel above: +2

        def score_maps(self, x):
            return self.conv(x), None

    net = Linear().eval()
    x = torch.zeros(3, 5, 5)
    cells = np.array([[1, 2, 2]])
    a = peak_response_maps(net, x, cells, smooth_sigma=0, reduce="abs")[0]
    p = peak_response_maps(net, x, cells, smooth_sigma=0, reduce="positive")[0]
    # abs: |1| + |-3| = 4 at (2, 2), 2 at (1, 2): normalised 1 and 0.5; positive: 1 - 3 < 0 -> 0
    # at (2, 2), 2 at (1, 2) -> 1
    assert a[2, 2] == pytest.approx(1.0) and a[1, 2] == pytest.approx(0.5) and a.sum() == pytest.approx(1.5)
    assert p[2, 2] == 0 and p[1, 2] == pytest.approx(1.0) and p.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        peak_response_maps(net, x, cells, reduce="square")


def test_peaks_raw_map_option():
    # why Eq. 1 runs on the CAM (ReLU) by default: on a raw score map with a negative
    # background the mean is negative, so -mean(M_c) > 0 lifts every flat background cell
    # (where M - G(M) = 0) above zero and Eq. 1 fires all over the background
    m = (_blob(16, 16, 4, 4, a=1.0) - 0.3)[None].astype(np.float32)
    assert find_peaks(m, [1], sigma=1.0)[:, 1:3].tolist() == [[4, 4]]
    raw = find_peaks(m, [1], sigma=1.0, relu=False)
    assert raw[0, 1:3].tolist() == [4, 4] and len(raw) > 20


@pytest.mark.parametrize("encoder,size", [("tiny", (37, 50)), ("vgg16", (32, 32))])
def test_icn_forward_shapes(encoder, size):
    net = ICN(encoder).eval()
    with torch.no_grad():
        y = net(torch.zeros(2, 3, *size), torch.rand(2, 1, *size))
    assert y.shape == (2, 1, *size)


def test_icn_minmax_loss_enhance():
    v = torch.tensor([[[[1.0, 3.0]]], [[[2.0, 2.0]]]])
    assert minmax(v).flatten().tolist() == [0.0, 1.0, 0.0, 0.0]
    logits = torch.zeros(1, 1, 2, 2)
    assert float(icn_loss(logits, torch.ones(1, 1, 2, 2))) == pytest.approx(np.log(2), abs=1e-6)
    net = ICN("tiny")
    out = enhance(net, torch.zeros(3, 24, 24), np.random.rand(3, 24, 24).astype(np.float32), steps=2, batch=2)
    assert out.shape == (2, 3, 24, 24) and out.min() >= 0 and out.max() <= 1


def test_icn_one_training_step():
    torch.manual_seed(0)
    net = ICN("tiny")
    items = []
    for i in range(4):
        t = torch.zeros(1, 16, 16)
        t[:, 4:12, 4:12] = 1
        items.append({"error": None, "image": torch.randn(3, 16, 16), "map": t * 0.7, "target": t})
    before = [p.detach().clone() for p in net.parameters()]
    rec = fit_icn(net, items, epochs=1, batch_size=4, lr=1e-3)
    assert rec["epoch"] == 1 and np.isfinite(rec["loss"]) and rec["loss"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert collate_icn([{"error": ("x", None, None)}]) == {"errors": [("x", None, None)]}
