"""`ws export-coco`: assignment + proposals -> COCO JSON (pycocotools, one Mask R-CNN step), PNGs."""

import json

import numpy as np
import pytest

from conftest import assert_bad_input, run_ws
from eval_stores import gt_instance_masks, load_manifest, write_assignment, write_labels, write_proposals
from wstools.io.images import read_label_png

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def setup(toy_dir, tmp_path_factory):
    man = toy_dir / "val.json"
    m = load_manifest(man)
    d = tmp_path_factory.mktemp("coco")
    masks, entries, expect = {}, [], {}
    for n, rec in enumerate(m.images):
        gm, gl = gt_instance_masks(m, rec)
        noise = np.zeros((1, rec.height, rec.width), bool)
        noise[0, :4, :4] = True
        allm = np.concatenate([gm, gm, noise]) if n else noise  # image 0: only noise
        masks[rec.id] = allm
        g = len(gm)
        if n:
            entries += [(rec.id, i, int(gl[i])) for i in range(g)]           # originals
            entries += [(rec.id, g + i, int(gl[i])) for i in range(g)]       # duplicates: removed by NMS
            entries.append((rec.id, 2 * g, 0))                              # noise
            expect[rec.id] = g
        else:
            entries.append((rec.id, 0, 0))
            expect[rec.id] = 0
    write_proposals(d / "p.h5", m, masks)
    write_assignment(d / "a.h5", m, entries)
    return d, man, m, expect


def test_export_pycocotools_and_maskrcnn(setup, tmp_path):
    import torch
    from pycocotools.coco import COCO
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    d, man, m, expect = setup
    r = run_ws("export-coco", d / "a.h5", "--proposals", d / "p.h5", "--manifest", man, "-o", tmp_path / "x.json",
               "--semantic", tmp_path / "png", "-q")
    assert r.json["annotations"] == sum(expect.values())
    coco = COCO(str(tmp_path / "x.json"))
    assert len(coco.getImgIds()) == len(m.images)
    by_ws = {im["ws_id"]: im["id"] for im in coco.dataset["images"]}
    for rid, n in expect.items():
        assert len(coco.getAnnIds(imgIds=[by_ws[rid]])) == n
    assert sorted(coco.getCatIds()) == list(m.category_ids())
    rec = m.images[1]
    gm, gl = gt_instance_masks(m, rec)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[by_ws[rec.id]]))
    got = sorted((a["category_id"], int(coco.annToMask(a).sum())) for a in anns)
    assert got == sorted((int(l), int(x.sum())) for x, l in zip(gm, gl))
    png = read_label_png(tmp_path / "png" / f"{rec.id}.png")
    assert set(np.unique(png)) <= {0} | set(int(x) for x in gl)
    assert (read_label_png(tmp_path / "png" / f"{m.images[0].id}.png") == 0).all()
    # one Mask R-CNN training step on the exported file
    torch.manual_seed(0)
    k = len(m.classes)
    net = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=k + 1, min_size=64, max_size=128)
    net.train()
    cat_to_label = {c: i + 1 for i, c in enumerate(m.category_ids())}
    images, targets = [], []
    for im in coco.dataset["images"][1:3]:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[im["id"]]))
        rec = m.by_id()[im["ws_id"]]
        images.append(torch.from_numpy(m.read_image(rec)).permute(2, 0, 1).float() / 255)
        b = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in anns], dtype=torch.float32)
        targets.append({"boxes": b, "labels": torch.tensor([cat_to_label[a["category_id"]] for a in anns]),
                        "masks": torch.from_numpy(np.stack([coco.annToMask(a) for a in anns]))})
    opt = torch.optim.SGD(net.parameters(), lr=0.001)
    losses = net(images, targets)
    loss = sum(losses.values())
    assert torch.isfinite(loss) and "loss_mask" in losses
    loss.backward()
    opt.step()


def test_labels_to_png(setup, tmp_path):
    d, man, m, _ = setup
    labs = {rec.id: np.full((rec.height, rec.width), 255, np.uint8) for rec in m.images}
    labs[m.images[0].id][:5, :5] = 2
    write_labels(tmp_path / "l.h5", m, labs)
    r = run_ws("export-coco", tmp_path / "l.h5", "--manifest", man, "--semantic", tmp_path / "png", "-q")
    assert r.json["pngs"] == len(m.images)
    assert np.array_equal(read_label_png(tmp_path / "png" / f"{m.images[0].id}.png"), labs[m.images[0].id])


def test_bad_ids_disagree(setup, tmp_path, toy_dir):
    d, man, m, _ = setup
    r = run_ws("export-coco", d / "a.h5", "--proposals", d / "p.h5", "--manifest", toy_dir / "train.json",
               "-o", tmp_path / "x.json", expect=2)
    assert_bad_input(r, "not in")
    assert not (tmp_path / "x.json").exists()


def test_bad_proposal_count(setup, tmp_path):
    d, man, m, _ = setup
    write_assignment(tmp_path / "a.h5", m, [(m.images[1].id, 999, 1)])
    r = run_ws("export-coco", tmp_path / "a.h5", "--proposals", d / "p.h5", "--manifest", man,
               "-o", tmp_path / "x.json", "--semantic", tmp_path / "png", expect=2)
    assert_bad_input(r, "proposal index")
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "png").exists()


def test_bad_empty_store(setup, tmp_path):
    d, man, m, _ = setup
    write_labels(tmp_path / "l.h5", m, {}, ids=[])
    r = run_ws("export-coco", tmp_path / "l.h5", "--manifest", man, "--semantic", tmp_path / "png", expect=2)
    assert_bad_input(r, "no images")
    assert not (tmp_path / "png").exists()


def test_results_json_to_png_higher_score_wins(setup, tmp_path):
    from wstools.masks import encode

    d, man, m, _ = setup
    rec = m.images[1]
    h, w = rec.height, rec.width
    a = np.zeros((h, w), bool)
    a[2:10, 2:10] = True
    b = np.zeros((h, w), bool)
    b[6:14, 6:14] = True
    cats = m.category_ids()

    def det(mask, label, score):
        return {"image_id": rec.id, "category_id": int(cats[label - 1]), "score": score,
                "segmentation": {"size": [h, w], "counts": encode(mask[None])[0].decode("ascii")}}

    (tmp_path / "r.json").write_text(json.dumps([det(a, 1, 0.9), det(b, 2, 0.5), det(b, 3, 0.05)]))
    r = run_ws("export-coco", tmp_path / "r.json", "--manifest", man, "--semantic", tmp_path / "png",
               "--min-score", 0.1, "-q")
    assert r.json["pngs"] == len(m.images) and r.json["instances"] == 2
    want = np.zeros((h, w), np.uint8)
    want[b] = 2
    want[a] = 1          # 0.9 beats 0.5 on the overlap; the 0.05 detection is below --min-score
    assert np.array_equal(read_label_png(tmp_path / "png" / f"{rec.id}.png"), want)
    assert (read_label_png(tmp_path / "png" / f"{m.images[0].id}.png") == 0).all()
    # a results file exports to PNGs only, and its image ids must be the manifest's
    r = run_ws("export-coco", tmp_path / "r.json", "--manifest", man, "-o", tmp_path / "x.json", expect=2)
    assert_bad_input(r, "--semantic")
    (tmp_path / "bad.json").write_text(json.dumps([dict(det(a, 1, 0.9), image_id="nope")]))
    r = run_ws("export-coco", tmp_path / "bad.json", "--manifest", man, "--semantic", tmp_path / "png2", expect=2)
    assert_bad_input(r, "nope")
    assert not (tmp_path / "png2").exists()


def test_exported_pseudo_labels_score_with_eval_instance(setup, tmp_path):
    d, man, m, expect = setup
    run_ws("export-coco", d / "a.h5", "--proposals", d / "p.h5", "--manifest", man, "-o", tmp_path / "x.json", "-q")
    r = run_ws("eval", "instance", tmp_path / "x.json", "--gt", man, "-q")
    # the kept proposals are exactly the GT instances of every image but the first (noise only):
    # the same scores as those GT masks written as a results list
    assert r.json["detections"] == sum(expect.values())
    from wstools.masks import encode
    cats = m.category_ids()
    results = []
    for rec in m.images[1:]:
        gm, gl = gt_instance_masks(m, rec)
        results += [{"image_id": rec.id, "category_id": int(cats[int(l) - 1]), "score": 1.0,
                     "segmentation": {"size": [rec.height, rec.width], "counts": c.decode("ascii")}}
                    for c, l in zip(encode(gm), gl)]
    (tmp_path / "gt_results.json").write_text(json.dumps(results))
    oracle = run_ws("eval", "instance", tmp_path / "gt_results.json", "--gt", man, "-q")
    assert 0 < r.json["map_r"]["0.5"] < 1
    assert r.json["map_r"] == oracle.json["map_r"] and r.json["abo"] == pytest.approx(oracle.json["abo"])


def test_semantic_pngs_of_image_ids_with_folders(toy_dir, tmp_path):
    """`ws dataset folder` gives images in subfolders ids such as `cats/a` (issue 23): their
    PNGs go to `DIR/cats/a.png`, from a labels store and from an assignment."""
    from conftest import run_ws_inproc

    data = json.loads((toy_dir / "val.json").read_text())
    for n, rec in enumerate(data["images"]):
        rec["id"] = f"{'cats' if n % 2 else 'dogs/big'}/{rec['id']}"
        for key in ("image", "semantic", "instances", "objects"):
            rec[key] = str(toy_dir / rec[key])
    man = tmp_path / "nested.json"
    man.write_text(json.dumps(data))
    m = load_manifest(man)
    labels = {rec.id: np.full((rec.height, rec.width), 1 + n % len(m.classes), np.uint8)
              for n, rec in enumerate(m.images)}
    write_labels(tmp_path / "l.h5", m, labels)
    r = run_ws_inproc("export-coco", tmp_path / "l.h5", "--manifest", man, "--semantic", tmp_path / "png")
    assert r.json["pngs"] == len(m.images)
    for rec in m.images:
        assert (read_label_png(tmp_path / "png" / f"{rec.id}.png") == labels[rec.id]).all()
    assert not list(tmp_path.glob(".png.partial*"))
    masks = {rec.id: gt_instance_masks(m, rec)[0] for rec in m.images}
    entries = [(rec.id, j, int(lab)) for rec in m.images for j, lab in enumerate(gt_instance_masks(m, rec)[1])]
    write_proposals(tmp_path / "p.h5", m, masks)
    write_assignment(tmp_path / "a.h5", m, entries)
    r = run_ws_inproc("export-coco", tmp_path / "a.h5", "--proposals", tmp_path / "p.h5", "--manifest", man,
                      "--semantic", tmp_path / "png2")
    assert r.json["pngs"] == len(m.images) and (tmp_path / "png2" / "dogs" / "big").is_dir()


def test_labels_outside_the_classes_are_refused(toy_dir, tmp_path):
    from conftest import run_ws_inproc

    man = toy_dir / "val.json"
    m = load_manifest(man)
    labels = {rec.id: np.zeros((rec.height, rec.width), np.uint8) for rec in m.images}
    labels[m.images[3].id][5, 5] = 77
    labels[m.images[1].id][:, :3] = 255          # ignore is a label value PNGs may hold
    write_labels(tmp_path / "l.h5", m, labels)
    r = run_ws_inproc("export-coco", tmp_path / "l.h5", "--manifest", man, "--semantic", tmp_path / "png", expect=2)
    assert_bad_input(r, "l.h5", f"image {m.images[3].id}", "label 77 outside 0..K=5")
    assert not (tmp_path / "png").exists() and not list(tmp_path.glob(".png*"))


def test_an_export_in_progress_is_not_overwritten(setup, tmp_path):
    from conftest import run_ws_inproc
    from wstools.io.store import output_lock

    d, man, m, expect = setup
    out = tmp_path / "x.json"
    with output_lock(tmp_path / "png"):      # another writer of the PNG folder (here: this process)
        r = run_ws_inproc("export-coco", d / "a.h5", "--proposals", d / "p.h5", "--manifest", man, "-o", out,
                          "--semantic", tmp_path / "png", "--force", expect=2)
    assert_bad_input(r, "png", "already an output")
    assert not out.exists() and not (tmp_path / "png").exists()
    r = run_ws_inproc("export-coco", d / "a.h5", "--proposals", d / "p.h5", "--manifest", man, "-o", out,
                      "--semantic", tmp_path / "png")
    assert r.json["annotations"] == sum(expect.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["png", "x.json"]
