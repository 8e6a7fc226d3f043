"""Library tests for wstools.grow (seeds, snapping, region growing, CRF)."""

from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from wstools.grow import (cam_seeds, fuse_seeds, seeded_region_growing, snap_to_superpixels, background_mask)
from wstools.grow.crf import dense_crf, require_crf

pytestmark = pytest.mark.unit


def bfs_reference(probs, seeds, present, theta_fg=0.85, theta_bg=0.99):
    """Per-pixel breadth-first DSRG growth (the reference), written from the released layer's
    behaviour: a pixel belongs to class c's mask when its most probable present class is c
    above c's threshold, or, when no class is that confident, when it is a seed of c."""
    c_, h, w = probs.shape
    classes = [c for c in range(c_) if present[c]]
    out = seeds.copy()

    def in_mask(c, y, x):
        best = max(classes, key=lambda k: (probs[k, y, x], -k))
        if probs[best, y, x] > (theta_bg if best == 0 else theta_fg):
            return best == c
        return seeds[y, x] == c

    for c in classes:
        seen = np.zeros((h, w), bool)
        q = deque((y, x) for y, x in zip(*np.nonzero(seeds == c)) if in_mask(c, y, x))
        for y, x in q:
            seen[y, x] = True
        while q:
            y, x = q.popleft()
            if seeds[y, x] == 255:
                out[y, x] = c
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w and not seen[yy, xx] and in_mask(c, yy, xx):
                        seen[yy, xx] = True
                        q.append((yy, xx))
    return out


def test_region_hand_case():
    probs = np.zeros((3, 3, 4), np.float32)
    probs[1] = [[0.9, 0.9, 0.1, 0.9], [0.1, 0.9, 0.1, 0.9], [0.1, 0.1, 0.1, 0.9]]
    probs[0] = 1 - probs[1]
    seeds = np.full((3, 4), 255, np.uint8)
    seeds[0, 0] = 1
    out = seeded_region_growing(probs, seeds, np.array([True, True, False]))
    # right column is 0.9 but not connected to the seed; background 0.9 < 0.99 never grows
    assert out.tolist() == [[1, 1, 255, 255], [255, 1, 255, 255], [255, 255, 255, 255]]


def test_other_seed_does_not_split_component():
    probs = np.zeros((2, 1, 5), np.float32)
    probs[1] = 0.95
    probs[0] = 0.05
    # pixel 2 holds a background seed but its class-1 probability passes theta_f:
    # it is not overwritten, yet it still connects the seed to the pixels beyond it
    seeds = np.array([[1, 255, 0, 255, 255]], np.uint8)
    out = seeded_region_growing(probs, seeds, np.array([True, True]))
    assert out.tolist() == [[1, 1, 0, 1, 1]]


def test_seed_confidently_of_another_class_does_not_bridge():
    # DSRG's released generate_seed_step: seed pixel 2 (class 1) is background with p = 0.995 > theta_b,
    # so it leaves class 1's mask: the class-1 component beyond it is not reached, the seed itself is kept
    probs = np.zeros((2, 1, 5), np.float32)
    probs[1] = 0.95
    probs[0] = 0.05
    probs[:, 0, 2] = [0.995, 0.005]
    seeds = np.array([[1, 255, 1, 255, 255]], np.uint8)
    seeds[0, 0] = 255
    out = seeded_region_growing(probs, seeds, np.array([True, True]))
    assert out.tolist() == [[255, 255, 1, 255, 255]]  # the only seed of class 1 is not in its mask: no growth
    seeds[0, 0] = 1
    out = seeded_region_growing(probs, seeds, np.array([True, True]))
    assert out.tolist() == [[1, 1, 1, 255, 255]]
    # a seed below every threshold keeps its class: it bridges as before
    probs[:, 0, 2] = [0.5, 0.5]
    assert seeded_region_growing(probs, seeds, np.array([True, True])).tolist() == [[1, 1, 1, 1, 1]]


def random_growing_case(rng, c, h, w, confident_seeds: bool):
    """Softmax maps, seeds and present classes; with ``confident_seeds`` many seed pixels are made
    confidently another class (the case where the released layer drops them from their mask)."""
    logits = rng.normal(size=(c, h, w)) * 4
    probs = np.exp(logits) / np.exp(logits).sum(0)
    present = rng.random(c) < 0.7
    present[0] = True
    seeds = np.full((h, w), 255, np.uint8)
    pick = rng.random((h, w)) < 0.2
    seeds[pick] = rng.choice(np.flatnonzero(present), size=int(pick.sum()))
    if confident_seeds:
        other = pick & (rng.random((h, w)) < 0.5)
        for y, x in zip(*np.nonzero(other)):
            k = int(rng.choice(np.flatnonzero(present)))
            probs[:, y, x] = 0.001 / max(c - 1, 1)
            probs[k, y, x] = 0.999
    return probs, seeds, present


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 5), st.integers(3, 11), st.integers(3, 11), st.booleans(),
       st.booleans())
def test_region_matches_bfs(seed, c, h, w, confident_seeds, paper_thresholds):
    rng = np.random.default_rng(seed)
    probs, seeds, present = random_growing_case(rng, c, h, w, confident_seeds)
    th = (0.85, 0.99) if paper_thresholds else (float(rng.uniform(0.3, 0.9)), float(rng.uniform(0.3, 0.99)))
    got = seeded_region_growing(probs, seeds, present, *th)
    assert np.array_equal(got, bfs_reference(probs, seeds, present, *th))
    assert np.all(got[seeds != 255] == seeds[seeds != 255])


def test_region_bad_shape():
    with pytest.raises(ValueError):
        seeded_region_growing(np.zeros((2, 4, 4)), np.zeros((3, 3), np.uint8), np.ones(2, bool))


def test_cam_seeds_top_and_rel():
    cams = np.zeros((2, 1, 10), np.float32)
    cams[0, 0] = np.arange(10) / 9.0
    cams[1, 0, :2] = 1.0
    s = cam_seeds(cams, [3, 5], ("top", 0.2))
    assert s[0].tolist() == [5, 5, 255, 255, 255, 255, 255, 255, 3, 3]
    s = cam_seeds(cams, [3], ("rel", 0.5))[0]  # only first CAM (labels pairs)
    s = cam_seeds(cams[:1], [3], ("rel", 0.5), bg_mask=background_mask(cams[0], 0.15))[0]
    assert s.tolist() == [0, 0, 255, 255, 255, 3, 3, 3, 3, 3]


def test_cam_seeds_conflict_is_ignore():
    cams = np.ones((2, 2, 2), np.float32)
    s = cam_seeds(cams, [1, 2], ("rel", 0.5))
    assert (s == 255).all()


def test_fuse_seeds():
    a = np.array([[1, 255, 2, 0]], np.uint8)
    b = np.array([[1, 3, 1, 255]], np.uint8)
    assert fuse_seeds([a, b]).tolist() == [[1, 3, 255, 0]]


def test_snap():
    segs = np.array([[0, 0, 1, 1, 2, 2]])
    cue = np.array([[[1.0, 0.0, 0.2, 0.2, 0.0, 0.0]]])
    out = snap_to_superpixels(cue, segs, 0.3)
    # means 0.5, 0.2, 0 ; max 0.5 -> keep > 0.15: segments 0 and 1
    assert out[0].tolist() == [[True, True, True, True, False, False]]


def test_dense_crf_normalised_and_sharpens():
    require_crf()
    rng = np.random.default_rng(0)
    img = np.zeros((20, 20, 3), np.uint8)
    img[:, 10:] = 255
    probs = np.full((2, 20, 20), 0.5, np.float32)
    probs[1, :, 10:] = 0.6
    probs[0, :, 10:] = 0.4
    probs[1, :, :10] = 0.45
    probs[0, :, :10] = 0.55
    probs += rng.normal(0, 0.01, probs.shape).astype(np.float32)
    probs /= probs.sum(0)
    q = dense_crf(img, probs, 5)
    assert q.shape == probs.shape and q.dtype == np.float32
    assert np.allclose(q.sum(0), 1, atol=1e-4)
    assert (q.argmax(0)[:, 10:] == 1).all() and (q.argmax(0)[:, :10] == 0).all()


def test_cam_probabilities_hand_case():
    from wstools.grow import cam_probabilities
    cams = np.array([[[0.6, 0.0]], [[0.2, 0.0]]], np.float32)  # labels 2 and 3 of K = 3
    probs, present = cam_probabilities(cams, [2, 3], 3)
    assert present.tolist() == [True, False, True, True]
    # background = 1 - max CAM = 0.4 / 1.0; normalised over the present labels
    assert np.allclose(probs[:, 0, 0], [0.4 / 1.2, 0, 0.6 / 1.2, 0.2 / 1.2])
    assert np.allclose(probs[:, 0, 1], [1, 0, 0, 0])
    probs, _ = cam_probabilities(cams, [2, 3], 3, background=np.array([[0.2, 0.5]], np.float32))
    assert np.allclose(probs[:, 0, 0], [0.2, 0, 0.6, 0.2])


def test_cue_map_rules_and_errors():
    from wstools.grow import cue_map
    cams = np.zeros((1, 1, 6), np.float32)
    cams[0, 0] = [1.0, 0.5, 0.25, 0.15, 0.04, 0.0]
    assert cue_map(cams, [2], bg=("cams", 0.05)).tolist() == [[2, 2, 2, 255, 0, 0]]  # > 0.2 x max
    assert cue_map(cams, [2], fg=("rel", 0.3), bg=("none", 0)).tolist() == [[2, 2, 255, 255, 255, 255]]
    bgmap = np.array([[0.0, 0.0, 0.0, 0.0, 0.9, 0.7]], np.float32)
    assert cue_map(cams, [2], bg=("features", 0.2), background=bgmap).tolist() == [[2, 2, 2, 255, 0, 255]]
    with pytest.raises(ValueError, match="background map"):
        cue_map(cams, [2], bg=("features", 0.2))
    with pytest.raises(ValueError, match="image"):
        cue_map(cams, [2], bg=("saliency", 0.3))


def test_per_area_superpixels_follow_the_image_size():
    from wstools.proposals.hierarchy import superpixels
    rng = np.random.default_rng(0)
    small = np.kron(rng.integers(0, 255, (12, 12, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # 96 px blocks
    large = np.kron(small, np.ones((2, 2, 1))).astype(np.uint8)
    n_small = superpixels(small, 250, per_area=True).max() + 1
    n_large = superpixels(large, 250, per_area=True).max() + 1
    assert 0.5 < n_small / n_large < 2
    assert superpixels(small, 100).max() + 1 < n_small  # min_size = k: object-sized segments


def test_crf_probabilities_keep_absent_labels_at_zero():
    require_crf()
    from wstools.grow.crf import crf_labels, crf_probabilities
    img = np.zeros((8, 8, 3), np.uint8)
    probs = np.full((3, 8, 8), 1 / 3, np.float32)
    probs[2, :, 4:] = 0.6
    probs[0, :, 4:] = probs[1, :, 4:] = 0.2
    present = np.array([True, False, True])
    q = crf_probabilities(img, probs, present, 3)
    assert (q[1] == 0).all() and np.allclose(q.sum(0), 1, atol=1e-4)
    assert set(np.unique(crf_labels(img, probs, present, 3))) <= {0, 2}
