"""Oracle-input tests of Huang et al.'s PRM route (issue 19 (d)): peaks of a synthetic class
map with known maxima are found at exactly those cells (Eq. 1), and matching with GT-shaped
response maps picks the GT proposal among distractors (Eq. 5, Algorithm 1) — through the
functions and through ``ws match`` in-process."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from conftest import run_ws_inproc
from wstools.masks import boxes as rle_boxes
from wstools.masks import encode
from wstools.prm.matching import match_image, plain_scores, rebalanced_scores
from wstools.prm.peaks import find_peaks

pytestmark = pytest.mark.cli


def _blobs(h, w, centres, amplitudes, s=1.0):
    yy, xx = np.mgrid[:h, :w]
    m = np.zeros((h, w))
    for (cy, cx), a in zip(centres, amplitudes):
        m += a * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return m.astype(np.float32)


def test_peaks_at_known_maxima():
    centres = [(3, 4), (10, 17), (15, 6), (4, 20)]
    amps = [2.0, 1.5, 1.0, 0.7]
    maps = np.stack([np.zeros((20, 24), np.float32), _blobs(20, 24, centres, amps, s=1.2)])
    pk = find_peaks(maps, [2], sigma=1.0)
    assert pk[:, 1:3].astype(int).tolist() == [list(c) for c in centres]     # exact cells, strongest first
    assert pk[:, 0].tolist() == [2] * 4
    np.testing.assert_allclose(pk[:, 3], amps, rtol=1e-3)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(2, 29), st.integers(2, 29)), min_size=1, max_size=4, unique=True),
       st.lists(st.floats(1.0, 3.0), min_size=4, max_size=4, unique=True), st.floats(0.8, 1.6))
def test_peaks_at_random_known_maxima(centres, amps, width):
    # centres at least 5 cells apart (Chebyshev), so each blob is its own local maximum; at
    # these amplitudes and widths a blob's M - G(M) at its centre (>= 0.28) stays above the
    # map's mean (<= 0.19), so Eq. 1 keeps every one
    kept = []
    for c in centres:
        if all(max(abs(c[0] - k[0]), abs(c[1] - k[1])) >= 5 for k in kept):
            kept.append(c)
    amps = amps[:len(kept)]
    pk = find_peaks(_blobs(32, 32, kept, amps, s=width)[None], [1], sigma=1.0)
    assert sorted((int(i), int(j)) for i, j in pk[:, 1:3]) == sorted(kept)
    order = np.argsort(-np.asarray(amps), kind="stable")
    assert [tuple(int(x) for x in r) for r in pk[:, 1:3]] == [kept[k] for k in order]   # strongest first


def test_eq1_mean_threshold_drops_a_weak_bump():
    # E_eta = mean(M_c): a bump whose M - G(M) is below the map's mean is noise, not a peak
    m = _blobs(20, 20, [(5, 5), (14, 14), (5, 15)], [2.0, 1.5, 0.05], s=1.2)
    pk = find_peaks(m[None], [1], sigma=1.0)
    assert pk[:, 1:3].astype(int).tolist() == [[5, 5], [14, 14]]


def _disc(h, w, cy, cx, r):
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _distractors(gt, other):
    """GT first, then proposals a matcher must not prefer: GT grown by 1 and 3 pixels, shrunk
    by 1, shifted by 3, its left half, GT + a neighbour, the neighbour, the whole image, a
    4-pixel piece of GT."""
    sq = np.ones((3, 3), bool)
    half = gt.copy()
    half[:, int(np.nonzero(gt.any(0))[0].mean()):] = False
    piece = np.zeros_like(gt)
    ys, xs = np.nonzero(gt)
    piece[ys[:4], xs[:4]] = True
    return np.stack([gt, ndimage.binary_dilation(gt, sq), ndimage.binary_dilation(gt, sq, iterations=3),
                     ndimage.binary_erosion(gt, sq), np.roll(gt, 3, axis=1), half, gt | other, other,
                     np.ones_like(gt), piece])


@pytest.mark.parametrize("blur", [0.0, 1.0])
def test_rebalanced_matching_selects_gt_proposal(blur):
    gt = _disc(64, 64, 30, 26, 11)
    other = _disc(64, 64, 30, 48, 7)
    masks = _distractors(gt, other)
    v = gt.astype(np.float32)
    if blur:                                             # a soft GT-shaped map, min-max normalised
        v = ndimage.gaussian_filter(v, blur)
        v = (v - v.min()) / (v.max() - v.min())
    s = rebalanced_scores(v, masks, threshold=0.5)       # Eq. 5 at the paper's alpha, beta, gamma
    assert int(np.argmax(s)) == 0, s
    assert int(np.argmax(plain_scores(v, masks, threshold=0.5))) == 0


def test_band_contour_prefers_a_grown_gt_the_inner_contour_does_not():
    # why E(V) is the inner boundary by default: the two-sided band pays beta per pixel of the
    # outer ring, more than the rebalanced first term loses, so GT grown by 1 pixel wins
    gt = _disc(64, 64, 30, 26, 11)
    masks = _distractors(gt, _disc(64, 64, 30, 48, 7))
    v = gt.astype(np.float32)
    assert int(np.argmax(rebalanced_scores(v, masks, contour_mode="band"))) == 1
    assert int(np.argmax(rebalanced_scores(v, masks, contour_mode="inner"))) == 0


@settings(max_examples=25, deadline=None)
@given(st.integers(14, 50), st.integers(14, 50), st.integers(5, 12), st.integers(4, 9), st.integers(0, 3))
def test_matching_selects_gt_among_distractors_random(cy, cx, r, r2, shape):
    h = w = 64
    gt = _disc(h, w, cy, cx, r)
    if shape == 1:                                       # a square
        gt = np.zeros((h, w), bool)
        gt[max(cy - r, 0):cy + r, max(cx - r, 0):cx + r] = True
    elif shape == 2:                                     # an L
        gt = np.zeros((h, w), bool)
        gt[max(cy - r, 0):cy + r, max(cx - r, 0):cx - r // 2] = True
        gt[cy + r // 2:cy + r, max(cx - r, 0):cx + r] = True
    elif shape == 3:                                     # a ring
        gt = gt & ~_disc(h, w, cy, cx, r // 2)
    ox = cx + r + r2 + 3 if cx < 32 else cx - r - r2 - 3
    other = _disc(h, w, cy, ox, r2) & ~gt
    masks = _distractors(gt, other)
    s = rebalanced_scores(gt.astype(np.float32), masks)
    assert int(np.argmax(s)) == 0, s


def test_match_image_one_gt_proposal_per_instance():
    gts = [_disc(64, 64, 18, 18, 9), _disc(64, 64, 44, 44, 10), _disc(64, 64, 16, 48, 6)]
    labels = [1, 1, 2]
    masks = []
    for k, g in enumerate(gts):
        masks += list(_distractors(g, gts[(k + 1) % 3]))
    masks = np.stack(masks)
    boxes = rle_boxes(encode(masks), 64, 64)
    maps = np.stack([g.astype(np.float32) for g in gts])
    peaks = np.array([[lab, *ndimage.center_of_mass(g), 1.0 - 0.1 * k] for k, (g, lab) in enumerate(zip(gts, labels))],
                     np.float32)
    kept = match_image(maps, peaks, masks, boxes)
    # a neighbour's distractor "the neighbour" is an identical copy of that GT: compare masks
    got = sorted((lab, masks[j].tobytes()) for lab, j, _, _ in kept)
    assert got == sorted((lab, g.tobytes()) for lab, g in zip(labels, gts))
    assert len(kept) == 3


def test_ws_match_with_gt_responses_selects_gt(toy_dir, tmp_path):
    """``ws match`` on GT-shaped responses (each GT instance's binary mask, peak at its
    centroid) and proposals = GT masks + distractors: every detection is exactly one GT mask of
    its class, one per GT instance."""
    from wstools.io.dataset import load_instances, load_manifest
    from wstools.io.responses import write_response_group
    from wstools.io.store import create_store, write_rles

    man = load_manifest(toy_dir / "val.json")
    gt_rles = {}
    with create_store(tmp_path / "resp.h5", "responses", classes=man.classes, params={"oracle": "gt"},
                      dataset=man) as resp, \
            create_store(tmp_path / "props.h5", "proposals", classes=man.classes, params={"oracle": "gt"},
                         dataset=man) as props:
        for rec in man.images:
            inst = load_instances(man, rec)
            gt = inst.masks()
            keep = [k for k in range(len(gt)) if gt[k].sum() >= 9]
            gt, labels = gt[keep], inst.labels[keep]
            gt_rles[rec.id] = {(int(lab), c.decode("ascii")) for lab, c in zip(labels, encode(gt))}
            cand = [gt] + [_distractors(g, gt[(k + 1) % len(gt)] if len(gt) > 1 else np.zeros_like(g))[1:]
                           for k, g in enumerate(gt)]
            cand = np.concatenate(cand) if len(gt) else np.zeros((1, rec.height, rec.width), bool)
            counts = encode(cand)
            with props.write_image(rec.id) as g:
                g.attrs["height"], g.attrs["width"] = rec.height, rec.width
                g.create_dataset("boxes", data=rle_boxes(counts, rec.height, rec.width).astype(np.float32))
                g.create_dataset("scores", data=np.ones(len(counts), np.float32))
                write_rles(g, "masks", counts)
            peaks = [[lab, *ndimage.center_of_mass(m), 1.0] for m, lab in zip(gt, labels)]
            with resp.write_image(rec.id) as g:
                write_response_group(g, np.array(peaks, np.float32).reshape(-1, 4), gt.astype(np.float32))
    out = tmp_path / "results.json"
    run_ws_inproc("match", toy_dir / "val.json", "--responses", tmp_path / "resp.h5", "--proposals",
                  tmp_path / "props.h5", "-o", out)
    results = json.loads(out.read_text())
    cats = man.category_ids()
    got = {}
    for r in results:
        got.setdefault(r["image_id"], set()).add((cats.index(r["category_id"]) + 1, r["segmentation"]["counts"]))
    assert sum(len(v) for v in gt_rles.values()) > 10
    for rec in man.images:
        assert got.get(rec.id, set()) == gt_rles[rec.id], rec.id
