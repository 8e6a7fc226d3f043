"""`ws propose` and wstools.proposals: grouping order, de-duplication, filtering, import, saliency, bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import assert_bad_input, run_ws
from wstools import masks as mask_io
from wstools.io.store import open_store, read_rles
from wstools.proposals.filtering import mask_nms, select, shape_filter, unique_masks
from wstools.proposals.hierarchy import (greedy_grouping, hierarchy_candidates, hierarchy_proposals,
                                         region_adjacency, region_boxes)
from wstools.proposals.saliency import saliency_proposals

pytestmark = pytest.mark.cli


# grouping ---------------------------------------------------------------------------------------

def _row_map(widths):
    """A 4-px-high label map of vertical stripes of the given widths."""
    return np.concatenate([np.full((4, w), i) for i, w in enumerate(widths)], axis=1)


def test_grouping_by_size_merges_smallest_pairs_first():
    lab = _row_map([10, 1, 1, 10])          # sizes 40, 4, 4, 40
    n = 4
    size = np.bincount(lab.ravel()).astype(float)
    hier = greedy_grouping(region_adjacency(lab), size, region_boxes(lab, n), None, None, lab.size,
                           (0, 0, 1, 0))
    # (1,2) is the smallest pair -> node 4; (0,4) and (3,4) tie, the smaller id goes first -> node 5; then (3,5)
    assert hier.merges.tolist() == [[1, 2], [0, 4], [3, 5]]
    assert hier.size.tolist() == [40, 4, 4, 40, 8, 48, 88]
    assert hier.box[-1].tolist() == [0, 0, 22, 4]
    assert hier.positions().tolist() == [4, 5, 6, 7, 3, 2, 1]
    assert hier.members()[5].tolist() == [True, True, True, False]


def test_grouping_by_colour_merges_similar_histograms_first():
    lab = _row_map([3, 3, 3, 3])
    colour = np.array([[1, 0], [1, 0], [0, 1], [0.1, 0.9]], dtype=np.float32)
    size = np.full(4, 12.0)
    hier = greedy_grouping(region_adjacency(lab), size, region_boxes(lab, 4), colour, None, lab.size,
                           (1, 0, 0, 0))
    assert hier.merges.tolist() == [[0, 1], [2, 3], [4, 5]]


def _brute_force(lab, feats, area, weights):
    """Greedy grouping recomputed from scratch at every step (the oracle)."""
    n = int(lab.max()) + 1
    size = np.bincount(lab.ravel(), minlength=n).astype(float)
    leaf_box = region_boxes(lab, n)
    adj = {tuple(p) for p in region_adjacency(lab).tolist()}
    regions = {i: frozenset([i]) for i in range(n)}
    merges = []
    while True:
        best = None
        keys = sorted(regions)
        for a in keys:
            for b in keys:
                if a >= b or not any((min(x, y), max(x, y)) in adj for x in regions[a] for y in regions[b]):
                    continue
                ra, rb = sorted(regions[a]), sorted(regions[b])
                sa, sb = size[ra].sum(), size[rb].sum()
                fa, fb = (size[ra, None] * feats[ra]).sum(0) / sa, (size[rb, None] * feats[rb]).sum(0) / sb
                box = np.concatenate([leaf_box[ra + rb, :2].min(0), leaf_box[ra + rb, 2:].max(0)])
                bb = (box[2] - box[0]) * (box[3] - box[1])
                s = weights[0] * np.minimum(fa, fb).sum() + weights[2] * (1 - (sa + sb) / area) + \
                    weights[3] * (1 - (bb - sa - sb) / area)
                if best is None or s > best[0] + 1e-9:
                    best = (s, a, b)
        if best is None:
            return merges
        _, a, b = best
        merges.append(regions[a] | regions[b])
        new = max(regions) + 1
        regions[new] = regions.pop(a) | regions.pop(b)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_grouping_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, 5, (3, 2)).repeat(3, 0).repeat(3, 1)
    _, lab = np.unique(lab, return_inverse=True)
    lab = lab.reshape(9, 6)
    from scipy import ndimage

    # make labels connected components so regions are contiguous
    comp = np.zeros_like(lab)
    nxt = 0
    for v in np.unique(lab):
        c, k = ndimage.label(lab == v)
        comp[c > 0] = c[c > 0] - 1 + nxt
        nxt += k
    n = nxt
    feats = rng.random((n, 4)).astype(np.float32)
    feats /= feats.sum(1, keepdims=True)
    weights = (1.0, 0.0, 1.0, 1.0)
    hier = greedy_grouping(region_adjacency(comp), np.bincount(comp.ravel()).astype(float), region_boxes(comp, n),
                           feats, None, comp.size, weights)
    members = hier.members()
    ours = [frozenset(np.flatnonzero(members[n + t]).tolist()) for t in range(len(hier.merges))]
    assert ours == _brute_force(comp, feats.astype(np.float64), comp.size, weights)


# candidates and de-duplication --------------------------------------------------------------------

@pytest.fixture(scope="module")
def toy_image():
    from wstools.toy import make_image

    return make_image(np.random.default_rng(3), size=64).image


def test_candidates_are_distinct_and_masks_match_boxes(toy_image):
    cand = hierarchy_candidates(toy_image, box_dedupe=False)
    masks = cand.masks(range(len(cand)))
    flat = {m.tobytes() for m in masks}
    assert len(flat) == len(cand)                      # no two identical masks
    assert np.all(np.diff(cand.priority) >= 0)         # ranked
    counts = cand.encode(range(len(cand)))
    assert np.array_equal(mask_io.decode(counts, 64, 64), masks)
    assert np.array_equal(mask_io.boxes(counts, 64, 64), cand.box.astype(np.float32))
    assert np.array_equal(mask_io.area(counts, 64, 64), cand.area.astype(np.int64))
    boxed = hierarchy_candidates(toy_image, box_dedupe=True)
    assert len({tuple(b) for b in boxed.box.tolist()}) == len(boxed) < len(cand)


def test_hierarchy_proposals_are_ranked_and_capped(toy_image):
    boxes, scores, counts = hierarchy_proposals(toy_image, max_proposals=30, min_area=20)
    assert len(counts) == len(scores) == len(boxes) == 30
    assert np.all(np.diff(scores) <= 0)
    assert mask_io.area(counts, 64, 64).min() >= 20
    again = hierarchy_proposals(toy_image, max_proposals=30, min_area=20)
    assert again[2] == counts                          # deterministic for a seed


def test_area_of_more_than_255_masks():
    m = np.zeros((300, 8, 8), bool)
    m[:, :2, :3] = True
    assert mask_io.area(mask_io.encode(m), 8, 8).tolist() == [6] * 300


# filtering -------------------------------------------------------------------------------------

def test_shape_filter_hand_computed():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 40, 5], [0, 0, 2, 2], [0, 0, 5, 20]], float)
    areas = np.array([100, 200, 4, 100])
    assert shape_filter(boxes, areas, min_area=5, max_aspect=4).tolist() == [0, 3]
    assert shape_filter(boxes, areas).tolist() == [0, 1, 2, 3]


def _square(x0, y0, x1, y1, size=20):
    m = np.zeros((size, size), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_unique_masks_and_nms_against_brute_force():
    masks = np.stack([_square(0, 0, 10, 10), _square(0, 0, 10, 10), _square(0, 0, 10, 9), _square(10, 10, 20, 20),
                      _square(0, 0, 5, 10)])
    counts = mask_io.encode(masks)
    assert unique_masks(counts).tolist() == [0, 2, 3, 4]
    inter = (masks[:, None] & masks[None]).sum((2, 3))
    union = (masks[:, None] | masks[None]).sum((2, 3))
    iou = inter / union
    for thr in (0.3, 0.6, 0.95):
        keep = []
        for i in range(len(masks)):
            if all(iou[i, j] <= thr for j in keep):
                keep.append(i)
        assert mask_nms(counts, 20, 20, thr).tolist() == keep
    assert mask_nms(counts, 20, 20, 0.6, limit=2).tolist() == [0, 3]
    boxes = mask_io.boxes(counts, 20, 20)
    assert select(boxes, counts, 20, 20, min_area=60, nms=0.95, top=2).tolist() == [0, 2]   # IoU(0, 2) = 0.9
    assert select(boxes, counts, 20, 20, min_area=60, nms=0.85, top=2).tolist() == [0, 3]


# saliency -------------------------------------------------------------------------------------

def test_saliency_finds_a_salient_square():
    rng = np.random.default_rng(0)
    img = np.full((48, 48, 3), 90, np.uint8) + rng.integers(0, 6, (48, 48, 3)).astype(np.uint8)
    img[12:36, 14:38] = (230, 40, 40)
    boxes, scores, counts = saliency_proposals(img)
    assert len(counts) >= 1 and np.all(np.diff(scores) <= 0)
    iou = mask_io.iou(mask_io.encode(_square(14, 12, 38, 36, 48)), counts, 48, 48)
    assert iou.max() > 0.8          # superpixels add the blurred edge band


# command line ------------------------------------------------------------------------------------

def _small_manifest(root, n=3):
    data = json.loads((root / "train.json").read_text())
    data["images"] = data["images"][:n]
    (root / "small.json").write_text(json.dumps(data))
    return root / "small.json", data["images"]


def _check_store(path, n_images):
    with open_store(path, "proposals") as s:
        assert len(s.image_ids()) == n_images
        for image_id in s.image_ids():
            g = s.image(image_id)
            h, w = int(g.attrs["height"]), int(g.attrs["width"])
            counts = read_rles(g["masks"])
            assert np.array_equal(g["boxes"][()], mask_io.boxes(counts, h, w))
            assert np.all(np.diff(g["scores"][()]) <= 0)
        return s.params


def test_cli_hierarchy_shards_merge_and_resume(toy_copy, tmp_path):
    man = toy_copy / "train.json"
    full = run_ws("propose", man, "-o", tmp_path / "all.h5", "--top", "20", "--nms", "0.9", "--workers", "2").json
    assert full["images"] == 24 and full["proposals"] <= 24 * 20
    params = _check_store(tmp_path / "all.h5", 24)
    assert params["method"] == "hierarchy" and params["k"] == [50.0, 100.0] and params["nms"] == 0.9
    for i in range(2):
        run_ws("propose", man, "-o", tmp_path / f"p{i}.h5", "--top", "20", "--nms", "0.9", "--shard", f"{i}/2")
    run_ws("merge", tmp_path / "m.h5", tmp_path / "p0.h5", tmp_path / "p1.h5")
    with open_store(tmp_path / "m.h5") as m, open_store(tmp_path / "all.h5") as a:
        assert sorted(m.image_ids()) == sorted(a.image_ids())
        i = a.image_ids()[5]
        assert read_rles(m.image(i)["masks"]) == read_rles(a.image(i)["masks"])
    again = run_ws("propose", man, "-o", tmp_path / "all.h5", "--top", "20", "--nms", "0.9", "--resume").json
    assert again["skipped"] == 24 and again["images"] == 0
    run_ws("propose", man, "-o", tmp_path / "all.h5", "--top", "5", "--resume", expect=2)   # other parameters


def test_cli_saliency_and_gray_rgba_inputs(toy_copy, tmp_path):
    man, recs = _small_manifest(toy_copy)
    img = Image.open(toy_copy / recs[0]["image"])
    img.convert("L").save(toy_copy / recs[0]["image"])
    Image.open(toy_copy / recs[1]["image"]).convert("RGBA").save(toy_copy / recs[1]["image"])
    out = run_ws("propose", man, "-o", tmp_path / "s.h5", "--method", "saliency").json
    assert out["images"] == 3 and out["proposals"] > 0
    assert _check_store(tmp_path / "s.h5", 3)["saliency_thresholds"] == [0.3, 0.5, 0.7]


@pytest.mark.parametrize("problem", ["corrupt", "16-bit", "tiny"])
def test_cli_bad_images(toy_copy, tmp_path, problem):
    man, recs = _small_manifest(toy_copy)
    path = toy_copy / recs[1]["image"]
    if problem == "corrupt":
        path.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
        msg = "cannot read image"
    elif problem == "16-bit":
        Image.fromarray(np.full((64, 64), 1000, np.uint16)).save(path)
        msg = "16-bit"
    else:
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)
        msg = "smaller than 8 px"
    out = tmp_path / "out"
    out.mkdir()
    r = run_ws("propose", man, "-o", out / "p.h5", expect=None)
    assert_bad_input(r, recs[1]["id"], msg)
    assert not list(out.iterdir())       # nothing written, not even a partial file


def test_cli_import_json_and_pngs(toy_copy, tmp_path):
    man, recs = _small_manifest(toy_copy)
    a, b = recs[0], recs[1]
    sq = mask_io.encode(_square(2, 3, 12, 20, 64))[0].decode()
    anns = [{"image_id": a["id"], "segmentation": {"size": [64, 64], "counts": sq}, "score": 0.2},
            {"image_id": a["id"], "segmentation": [[30, 30, 50, 30, 50, 50, 30, 50]], "score": 0.9},
            {"image_id": 7, "segmentation": {"size": [64, 64], "counts": sq}}]
    coco = {"images": [{"id": 7, "file_name": b["image"].split("/")[-1]}], "annotations": anns}
    (tmp_path / "props.json").write_text(json.dumps(coco))
    out = run_ws("propose", man, "-o", tmp_path / "j.h5", "--method", "import", "--from", tmp_path / "props.json").json
    assert out["proposals"] == 3
    with open_store(tmp_path / "j.h5") as s:
        g = s.image(a["id"])
        assert g["scores"][()].tolist() == pytest.approx([0.9, 0.2])      # ranked by score
        assert g["boxes"][1].tolist() == [2, 3, 12, 20]
        assert len(read_rles(s.image(b["id"])["masks"])) == 1 and len(read_rles(s.image(recs[2]["id"])["masks"])) == 0
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    for r in recs:
        inst = np.zeros((64, 64), np.uint16)
        inst[:10, :10] = 1
        inst[20:40, 20:30] = 300
        Image.fromarray(inst).save(pngs / f"{r['id']}.png")
    out = run_ws("propose", man, "-o", tmp_path / "p.h5", "--method", "import", "--from", pngs).json
    assert out["proposals"] == 6
    _check_store(tmp_path / "p.h5", 3)


def test_cli_import_bad_input(toy_copy, tmp_path):
    man, recs = _small_manifest(toy_copy)
    sq = mask_io.encode(_square(2, 3, 12, 20, 64))[0].decode()
    cases = {
        "unknown": ([{"image_id": "nope", "segmentation": {"size": [64, 64], "counts": sq}}], "unknown image id"),
        "size": ([{"image_id": recs[0]["id"], "segmentation": {"size": [32, 64], "counts": sq}}], "differs"),
        "garbage": ([{"image_id": recs[0]["id"], "segmentation": "x"}], "neither"),
    }
    for name, (anns, msg) in cases.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(anns))
        r = run_ws("propose", man, "-o", tmp_path / "out.h5", "--method", "import", "--from",
                   tmp_path / f"{name}.json", expect=None)
        assert_bad_input(r, f"{name}.json", msg)
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    for r in recs:
        Image.fromarray(np.ones((64, 64) if r is not recs[2] else (32, 64), np.uint8)).save(pngs / f"{r['id']}.png")
    r = run_ws("propose", man, "-o", tmp_path / "out.h5", "--method", "import", "--from", pngs, expect=None)
    assert_bad_input(r, recs[2]["id"], "the image is 64x64")
    (pngs / "stranger.png").write_bytes((pngs / f"{recs[0]['id']}.png").read_bytes())
    r = run_ws("propose", man, "-o", tmp_path / "out.h5", "--method", "import", "--from", pngs, expect=None)
    assert_bad_input(r, "stranger.png", "matches no image")
    r = run_ws("propose", man, "-o", tmp_path / "out.h5", "--method", "import", expect=None)
    assert_bad_input(r, "--from")
    assert not (tmp_path / "out.h5").exists() and not (tmp_path / ".out.h5.partial").exists()


def test_scaled_min_size_and_strided_texture():
    from wstools.proposals.hierarchy import scaled_min_size, texture_bins

    assert scaled_min_size(100, 375, 500) == 100          # selective search's min_size = k at 500x375
    assert scaled_min_size(100, 750, 1000) == 400         # k times the area ratio
    assert scaled_min_size(50, 64, 64) == 20              # never below the floor
    img = np.random.default_rng(0).integers(0, 256, (9, 12, 3)).astype(np.uint8)
    full, half = texture_bins(img), texture_bins(img, stride=2)
    assert full.shape == (9, 12, 24) and half.shape == (5, 6, 24)
    # same oriented responses at the sampled pixels: only the per-map quantisation maximum may differ
    assert (half // 10 == full[::2, ::2] // 10).all()     # the orientation index of every bin
    assert (full[::2, ::2] == half).mean() > 0.7
