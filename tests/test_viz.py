import numpy as np
import pytest
from PIL import Image

from wstools.io import masks as mask_io
from wstools.io.dataset import load_manifest
from wstools.io.store import create_store, write_rles
from wstools.viz import overlay_heatmap, overlay_labels, overlay_masks, tile

from conftest import assert_bad_input, run_ws


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
