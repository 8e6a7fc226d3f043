import json

import numpy as np
import pytest
from PIL import Image

from wstools import masks as mask_io
from wstools.io.dataset import load_manifest
from wstools.io.store import create_store, write_rles
from wstools.viz import overlay_heatmap, overlay_labels, overlay_masks, tile

from conftest import assert_bad_input, run_ws, run_ws_inproc

pytestmark = pytest.mark.cli


def test_overlays_change_only_what_they_draw():
    image = np.full((20, 30, 3), 100, np.uint8)
    labels = np.zeros((20, 30), np.uint8)
    labels[5:10, 5:10] = 1
    out = overlay_labels(image, labels)
    assert (out[labels == 0] == 100).all() and (out[7, 7] != 100).any()
    masks = np.zeros((1, 20, 30), bool)
    masks[0, 2:4, 2:4] = True
    assert (overlay_masks(image, masks)[15:, 15:] == 100).all()
    heat = overlay_heatmap(image, np.linspace(0, 1, 600).reshape(20, 30))
    assert heat.shape == image.shape and not (heat[0, 0] == heat[-1, -1]).all()
    assert tile([[image, image], [image]], pad=2).shape == (2 * 22 + 2, 2 * 32 + 2, 3)


@pytest.fixture
def stores(toy_dir, tmp_path):
    m = load_manifest(toy_dir / "train.json")
    recs = m.images[:2]
    paths = {}
    for kind in ("proposals", "cams", "labels"):
        paths[kind] = tmp_path / f"{kind}.h5"
        with create_store(paths[kind], kind, classes=m.classes, params={}, dataset=m) as s:
            for rec in recs:
                with s.write_image(rec.id) as g:
                    h, w = rec.height, rec.width
                    if kind == "proposals":
                        mk = np.zeros((3, h, w), bool)
                        mk[0, :20, :20] = mk[1, 30:, 30:] = mk[2, 10:40, 5:25] = True
                        c = mask_io.encode(mk)
                        write_rles(g, "masks", c)
                        g["boxes"] = mask_io.boxes(c, h, w)
                        g["scores"] = np.array([3, 2, 1], np.float32)
                    elif kind == "cams":
                        g["labels"] = m.tag_labels(rec)
                        g["cams"] = np.random.rand(len(rec.tags), h, w).astype(np.float16)
                        g["scores"] = np.random.rand(m.num_classes).astype(np.float32)
                    else:
                        g["labels"] = np.full((h, w), 255, np.uint8)
    return m, paths


@pytest.mark.parametrize("kind", ["proposals", "cams", "labels", "dataset"])
def test_cli_viz(stores, toy_dir, tmp_path, kind):
    m, paths = stores
    src = toy_dir / "train.json" if kind == "dataset" else paths[kind]
    out = tmp_path / f"{kind}.png"
    s = run_ws("viz", src, "--first", 2, "-o", out).json
    assert s["kind"] == kind and s["images"] == m.ids()[:2]
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (s["width"], s["height"])
        assert im.size[1] > 2 * 64


def test_cli_viz_bad_input(stores, tmp_path):
    m, paths = stores
    assert_bad_input(run_ws("viz", paths["proposals"], "--images", "nope", "-o", tmp_path / "x.png", expect=2),
                     "proposals.h5", "image nope")
    graph = tmp_path / "g.h5"
    with create_store(graph, "graph", classes=m.classes, params={}):
        pass
    assert_bad_input(run_ws("viz", graph, "-o", tmp_path / "x.png", expect=2), "g.h5", "'graph'")
    orphan = tmp_path / "orphan.h5"
    with create_store(orphan, "labels", classes=m.classes, params={}):
        pass
    assert_bad_input(run_ws("viz", orphan, "-o", tmp_path / "x.png", expect=2), "orphan.h5", "--dataset")
    assert not (tmp_path / "x.png").exists()


# --- every per-image kind of the recipes, on `ws toy --size 48` -----------------------------------

PANEL_W, PAD = 48, 2   # a 48 px image (--scale 1) under its 14 px caption strip; tile() padding


def _width(cols):
    return cols * (PANEL_W + PAD) + PAD


def _row_height(s, rows):
    """Height of one row of the grid (its tallest panel: caption, image, tags or legend lines)."""
    assert (s["height"] - PAD) % rows == 0
    return (s["height"] - PAD) // rows - PAD


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """`ws toy --train 4 --val 2 --size 48` and one file of each COCO / responses / probs kind over val."""
    from wstools.io import coco
    from wstools.io.labels import write_probs_group
    from wstools.io.responses import write_response_group

    d = tmp_path_factory.mktemp("viz")
    run_ws("toy", d / "toy", "--train", 4, "--val", 2, "--size", 48, "-q")
    m = load_manifest(d / "toy" / "val.json")
    h = w = 48
    yy, xx = np.mgrid[:h, :w]
    disc = lambda cy, cx, r: (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r   # noqa: E731
    shapes = [disc(12, 12, 8), disc(30, 30, 10), disc(10, 36, 6)]
    paths = {"toy": d / "toy", "responses": d / "prm.h5", "probs": d / "probs.h5",
             "instances": d / "pseudo.json", "results": d / "results.json"}
    with create_store(paths["responses"], "responses", classes=m.classes, params={}, dataset=m) as s:
        for rec in m.images:   # 3 peaks on the first image, 1 on the second
            n = 3 if rec.id == m.ids()[0] else 1
            peaks = np.array([[k % 5 + 1, 12 + 9 * k, 12 + 9 * k, 0.5 + 0.1 * k] for k in range(n)], np.float32)
            maps = np.stack([np.exp(-((yy - p[1]) ** 2 + (xx - p[2]) ** 2) / 50.0) for p in peaks])
            with s.write_image(rec.id) as g:
                write_response_group(g, peaks, maps)
    with create_store(paths["probs"], "probs", classes=m.classes, params={}, dataset=m) as s:
        for rec in m.images:
            p = np.random.default_rng(0).random((3, h, w)).astype(np.float32)
            with s.write_image(rec.id) as g:
                write_probs_group(g, p / p.sum(0), [0, 2, 4])
    counts = mask_io.encode(np.stack(shapes))
    boxes = mask_io.boxes(counts, h, w)
    areas = mask_io.area(counts, h, w)
    images, anns = [], []
    for index, rec in enumerate(m.images):   # both images listed, annotations on the second only
        images.append(coco.image_entry(index, rec))
        if index == 1:
            anns += [coco.annotation(len(anns) + 1, index + 1, k + 1, counts[k], h, w, boxes[k], areas[k], 0.9 - k / 10)
                     for k in range(3)]
    coco.write_instances(paths["instances"], images, anns, m.classes, m.category_ids())
    results = [{"image_id": m.ids()[1], "category_id": k + 2, "score": s,
                "segmentation": {"size": [h, w], "counts": counts[k].decode()}} for k, s in enumerate([0.9, 0.6, 0.1])]
    paths["results"].write_text(json.dumps(results))
    return m, paths


def test_cli_viz_responses_one_panel_per_map(small, tmp_path):
    m, paths = small
    out = tmp_path / "prm.png"
    s = run_ws("viz", paths["responses"], "--top", 2, "--scale", 1, "-o", out).json
    assert s["kind"] == "responses" and s["images"] == m.ids() and s["columns"] == 1 + 2   # image + top 2 of 3
    with Image.open(out) as im:
        assert im.size == (_width(3), s["height"])
    s = run_ws("viz", paths["responses"], "--gt", "--scale", 1, "-o", out, "--force").json
    assert s["columns"] == 1 + 1 + 3
    with Image.open(out) as im:
        assert im.size == (_width(5), s["height"])
        pix = np.asarray(im.convert("RGB"))
    # the peak marker: a white cross centred on the first (best-scored: 0.7 at y = x = 30) map's peak
    x0, y0 = 2 * (PANEL_W + PAD) + PAD, PAD + 14
    assert (pix[y0 + 30, x0 + 30] == 255).all() and (pix[y0 + 30, x0 + 28] == 255).all()


def test_cli_viz_probs(small, tmp_path):
    m, paths = small
    s = run_ws("viz", paths["probs"], "--scale", 1, "-o", tmp_path / "p.png").json
    assert s["kind"] == "probs" and s["columns"] == 1 + 3
    with Image.open(tmp_path / "p.png") as im:
        assert im.size == (_width(4), s["height"])


def test_cli_viz_coco_instances_and_results(small, tmp_path):
    m, paths = small
    toy = paths["toy"]
    s = run_ws("viz", paths["instances"], "--dataset", toy / "val.json", "--gt", "--scale", 1,
               "-o", tmp_path / "i.png").json
    assert s["kind"] == "coco-instances" and s["images"] == m.ids() and s["columns"] == 3
    with Image.open(tmp_path / "i.png") as im:
        assert im.size == (_width(3), s["height"])
        pix = np.asarray(im.convert("RGB")).astype(int)
    # the first image has no annotation (its panel is the image), the second has three masks drawn
    y0, x0 = PAD + 14, 2 * (PANEL_W + PAD) + PAD
    row2 = y0 + _row_height(s, 2) + PAD
    assert (pix[y0:y0 + 48, x0:x0 + 48] == pix[y0:y0 + 48, PAD:PAD + 48]).all()
    assert (pix[row2 + 30, x0 + 30] != pix[row2 + 30, PAD + 30]).any()
    s = run_ws("viz", paths["results"], "--dataset", toy / "val.json", "--score-threshold", 0.5,
               "--scale", 1, "-o", tmp_path / "r.png").json
    # results: the images with detections above the threshold (only the second)
    assert s["kind"] == "coco-results" and s["images"] == [m.ids()[1]] and s["columns"] == 2
    with Image.open(tmp_path / "r.png") as im:
        assert im.size == (_width(2), s["height"])
        pix = np.asarray(im.convert("RGB")).astype(int)
    y0, x0 = PAD + 14, PANEL_W + 2 * PAD
    assert (pix[y0 + 30, x0 + 30] != pix[y0 + 30, PAD + 30]).any()     # score 0.6 drawn
    assert (pix[y0 + 16, x0 + 36] == pix[y0 + 16, PAD + 36]).all()     # score 0.1 not drawn (under the texts)


def test_cli_viz_bad_json(small, tmp_path):
    m, paths = small
    toy = paths["toy"]
    neither = tmp_path / "neither.json"
    neither.write_text(json.dumps({"hello": 1}))
    assert_bad_input(run_ws("viz", neither, "-o", tmp_path / "x.png", expect=2), "neither.json", "neither a manifest")
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{not json")
    assert_bad_input(run_ws("viz", garbled, "-o", tmp_path / "x.png", expect=2), "garbled.json",
                     "neither a ws store (HDF5) nor a JSON file (JSONDecodeError")
    stray = tmp_path / "stray.json"
    stray.write_text(json.dumps([{"image_id": "val_999", "category_id": 1, "score": 0.5,
                                  "segmentation": {"size": [48, 48], "counts": mask_io.encode(
                                      np.ones((48, 48), bool))[0].decode()}}]))
    assert_bad_input(run_ws("viz", stray, "--dataset", toy / "val.json", "-o", tmp_path / "x.png", expect=2),
                     "stray.json", "image val_999")
    assert_bad_input(run_ws("viz", paths["results"], "-o", tmp_path / "x.png", expect=2), "results.json", "--dataset")
    # a COCO instances file for another manifest: its images are not in train.json
    assert_bad_input(run_ws("viz", paths["instances"], "--dataset", toy / "train.json", "-o", tmp_path / "x.png",
                            expect=2), "pseudo.json", "val_000000")
    assert not (tmp_path / "x.png").exists()


# --- pictures a person can read (issue 23) --------------------------------------------------------

def _one_class_labels(m, tmp_path, label=2):
    """A labels store whose map is all ``label`` (with a 255 band) on the first image."""
    rec = m.images[0]
    path = tmp_path / "one.h5"
    with create_store(path, "labels", classes=m.classes, params={}, dataset=m) as s:
        with s.write_image(rec.id) as g:
            lab = np.full((rec.height, rec.width), label, np.uint8)
            lab[:4] = 255
            g["labels"] = lab
    return path


def test_label_panels_have_a_legend_of_the_classes_present(small, tmp_path):
    from wstools.io.images import voc_palette

    m, paths = small
    store = _one_class_labels(m, tmp_path, label=2)
    s = run_ws_inproc("viz", store, "--scale", 1, "-o", tmp_path / "l.png").json
    with Image.open(tmp_path / "l.png") as im:
        pix = np.asarray(im.convert("RGB"))
    x0 = PANEL_W + 2 * PAD
    below = pix[PAD + 14 + 48:, x0:x0 + PANEL_W]           # under the labels panel: its legend
    inside = pix[PAD + 14:PAD + 14 + 48, x0:x0 + PANEL_W]
    pal = voc_palette()
    swatch = lambda region, c: (region == c).all(-1).sum()   # noqa: E731
    assert swatch(below, pal[2]) >= 9                       # a filled swatch in class 2's colour
    assert swatch(below, pal[1]) == 0 and swatch(below, pal[3]) == 0
    assert swatch(inside, pal[2]) == 0                      # the panel blends, the legend names it
    assert s["height"] > PAD + 14 + 48 + 14                 # legend and tags lines under the panels


def test_scale_auto_enlarges_small_images_and_scale_1_keeps_their_pixels(small, tmp_path):
    m, paths = small
    auto = run_ws_inproc("viz", paths["toy"] / "val.json", "-o", tmp_path / "a.png").json
    one = run_ws_inproc("viz", paths["toy"] / "val.json", "--scale", 1, "-o", tmp_path / "b.png").json
    two = run_ws_inproc("viz", paths["toy"] / "val.json", "--scale", 2, "-o", tmp_path / "c.png").json
    assert auto["width"] == auto["columns"] * (256 + PAD) + PAD        # 48 px -> 256 px panels
    assert one["width"] == _width(one["columns"]) and two["width"] == two["columns"] * (96 + PAD) + PAD
    assert_bad_input(run_ws_inproc("viz", paths["toy"] / "val.json", "--scale", "big", "-o", tmp_path / "d.png",
                                   expect=2), "--scale 'big'")


def test_manifest_picture_shows_each_images_tags(small, tmp_path):
    from wstools.viz import footer

    m, paths = small
    blank = np.full((48, 48, 3), 255, np.uint8)
    assert footer(blank, [(None, "disc")], prefix="tags:").shape[0] > 48
    # two images with different tags draw different tag lines under their image
    s = run_ws_inproc("viz", paths["toy"] / "val.json", "--scale", 1, "-o", tmp_path / "t.png").json
    assert m.images[0].tags != m.images[1].tags
    with Image.open(tmp_path / "t.png") as im:
        pix = np.asarray(im.convert("L")).astype(int)
    row = _row_height(s, 2)
    tags1 = pix[PAD + 14 + 48:PAD + row, PAD:PAD + 48]
    tags2 = pix[2 * PAD + row + 14 + 48:2 * PAD + 2 * row, PAD:PAD + 48]
    assert (tags1 < 128).sum() > 20 and (tags2 < 128).sum() > 20 and (tags1 != tags2).any()


def test_proposal_panels_show_rank_and_score_and_counts_read_right(stores, tmp_path):
    from wstools.viz import overlay_masks, plural

    assert plural(1, "instance") == "1 instance" and plural(2, "instance") == "2 instances"
    image = np.full((64, 64, 3), 128, np.uint8)
    masks = np.zeros((1, 64, 64), bool)
    masks[0, 20:40, 20:40] = True
    plain = overlay_masks(image, masks, np.array([[20, 20, 40, 40]]))
    ranked = overlay_masks(image, masks, np.array([[20, 20, 40, 40]]), texts=["#1 0.93"])
    assert (plain != ranked).any(-1)[20:32, 20:40].sum() > 10          # the text at the box's corner
    m, paths = stores
    s = run_ws_inproc("viz", paths["proposals"], "--top", 2, "-o", tmp_path / "p.png").json
    assert s["columns"] == 2
