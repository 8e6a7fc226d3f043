"""Importers (VOC, COCO, folder) on generated fixtures, ``ws dataset check`` and bad manifests."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from wstools.io.dataset import load_instances, load_manifest, load_semantic
from wstools.io.images import write_label_png
from wstools.io.importers import VOC_CLASSES

from conftest import assert_bad_input, run_ws, run_ws_inproc

pytestmark = pytest.mark.cli


def _jpeg(path, w, h, seed=0):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path, quality=90)


def _xml(path, w, h, names):
    objs = "".join(f"<object><name>{n}</name><difficult>0</difficult></object>" for n in names)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth></size>"
                    f"{objs}</annotation>")


@pytest.fixture
def voc_root(tmp_path):
    """A 4-image VOC2012 layout: two seg images with XML, one XML-less SBD image, one val image."""
    root = tmp_path / "VOC2012"
    cat, dog, person = (VOC_CLASSES.index(n) + 1 for n in ("cat", "dog", "person"))
    specs = {"2007_000001": (40, 30, ["dog", "cat", "dog"]), "2007_000002": (32, 24, ["person"]),
             "2008_000003": (36, 28, None), "2007_000004": (30, 30, ["cat"])}
    for i, (image_id, (w, h, names)) in enumerate(specs.items()):
        _jpeg(root / "JPEGImages" / f"{image_id}.jpg", w, h, seed=i)
        if names is not None:
            _xml(root / "Annotations" / f"{image_id}.xml", w, h, names)
    sem = np.zeros((30, 40), np.uint8)
    inst = np.zeros((30, 40), np.uint8)
    sem[2:10, 2:12] = dog; inst[2:10, 2:12] = 1
    sem[15:25, 20:35] = cat; inst[15:25, 20:35] = 2
    sem[10, :] = 255; inst[10, :] = 255
    (root / "SegmentationClass").mkdir()
    (root / "SegmentationObject").mkdir()
    write_label_png(root / "SegmentationClass" / "2007_000001.png", sem)
    write_label_png(root / "SegmentationObject" / "2007_000001.png", inst)
    p = np.zeros((24, 32), np.uint8); p[5:20, 5:20] = person
    write_label_png(root / "SegmentationClass" / "2007_000002.png", p)
    write_label_png(root / "SegmentationObject" / "2007_000002.png", (p > 0).astype(np.uint8))
    aug = np.zeros((28, 36), np.uint8); aug[3:9, 3:9] = dog; aug[12:20, 12:30] = person
    (root / "SegmentationClassAug").mkdir()
    write_label_png(root / "SegmentationClassAug" / "2008_000003.png", aug)
    sets = root / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("2007_000001\n2007_000002\n")
    (sets / "val.txt").write_text("2007_000004\n")
    aug_dir = root / "ImageSets" / "SegmentationAug"
    aug_dir.mkdir(parents=True)
    (aug_dir / "train_aug.txt").write_text("/JPEGImages/2007_000001.jpg /SegmentationClassAug/2007_000001.png\n"
                                           "/JPEGImages/2008_000003.jpg /SegmentationClassAug/2008_000003.png\n")
    return root


def test_voc_import(voc_root, tmp_path):
    out = tmp_path / "train.json"
    s = run_ws("dataset", "voc", voc_root, "--split", "train", "-o", out).json
    assert s["images"] == 2 and s["classes"] == 20 and s["with_instance_gt"] == 2
    m = load_manifest(out)
    assert m.classes == list(VOC_CLASSES)
    a, b = m.images
    assert (a.id, a.tags, a.width, a.height) == ("2007_000001", ["cat", "dog"], 40, 30)
    assert b.tags == ["person"]
    gt = load_instances(m, a)
    assert sorted(gt.labels.tolist()) == sorted([VOC_CLASSES.index("dog") + 1, VOC_CLASSES.index("cat") + 1])
    assert gt.masks().sum() == 8 * 10 + 10 * 15
    assert load_semantic(m, a)[10, 0] == 255
    run_ws("dataset", "check", out)


def test_voc_train_aug_tags_from_png_without_xml(voc_root, tmp_path):
    out = tmp_path / "aug.json"
    run_ws("dataset", "voc", voc_root, "--split", "train_aug", "-o", out)
    m = load_manifest(out)
    rec = m.by_id()["2008_000003"]
    assert rec.tags == ["dog", "person"] and rec.semantic.endswith("SegmentationClassAug/2008_000003.png")
    assert (rec.width, rec.height) == (36, 28)


def test_voc_val_without_gt_and_missing_split(voc_root, tmp_path):
    run_ws("dataset", "voc", voc_root, "--split", "val", "-o", tmp_path / "val.json")
    m = load_manifest(tmp_path / "val.json")
    assert m.images[0].tags == ["cat"] and m.images[0].semantic is None
    (voc_root / "ImageSets" / "Segmentation" / "trainval.txt").unlink(missing_ok=True)
    assert_bad_input(run_ws("dataset", "voc", voc_root, "--split", "trainval", "-o", tmp_path / "x.json",
                            expect=2), "trainval")
    assert not (tmp_path / "x.json").exists()


def test_voc_missing_image_is_named(voc_root, tmp_path):
    (voc_root / "JPEGImages" / "2007_000002.jpg").unlink()
    assert_bad_input(run_ws("dataset", "voc", voc_root, "-o", tmp_path / "t.json", expect=2), "2007_000002")
    assert not (tmp_path / "t.json").exists()


def test_voc_style_folder_with_png_images(voc_root, tmp_path):
    """A hand-made VOC-style folder: JPEGImages may hold PNGs."""
    jpg = voc_root / "JPEGImages" / "2007_000002.jpg"
    Image.open(jpg).save(jpg.with_suffix(".png"))
    jpg.unlink()
    run_ws_inproc("dataset", "voc", voc_root, "-o", tmp_path / "t.json")
    m = load_manifest(tmp_path / "t.json")
    assert m.images[1].image.endswith("JPEGImages/2007_000002.png") and m.read_image(m.images[1]).shape == (24, 32, 3)


@pytest.fixture
def coco_files(tmp_path):
    images = tmp_path / "imgs"
    for i, (w, h) in enumerate([(40, 30), (20, 20), (16, 16)]):
        _jpeg(images / f"{i:03d}.jpg", w, h, seed=i)
    rle = coco_mask.encode(np.asfortranarray(np.pad(np.ones((5, 6), np.uint8), ((2, 23), (3, 31)))))
    rle["counts"] = rle["counts"].decode()
    data = {"images": [{"id": 10, "file_name": "000.jpg", "width": 40, "height": 30},
                       {"id": 11, "file_name": "001.jpg", "width": 20, "height": 20},
                       {"id": 12, "file_name": "002.jpg", "width": 16, "height": 16}],
            "categories": [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}],
            "annotations": [
                {"id": 1, "image_id": 10, "category_id": 1, "iscrowd": 0,
                 "segmentation": [[2, 2, 12, 2, 12, 10, 2, 10]], "bbox": [2, 2, 10, 8], "area": 80},
                {"id": 2, "image_id": 10, "category_id": 18, "iscrowd": 0,
                 "segmentation": {"size": [30, 40], "counts": rle["counts"]}, "bbox": [3, 2, 6, 5], "area": 30},
                {"id": 3, "image_id": 11, "category_id": 18, "iscrowd": 1,
                 "segmentation": {"size": [20, 20], "counts": [0, 40, 360]}, "bbox": [0, 0, 2, 20], "area": 40}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path, images, data


def test_coco_import_against_pycocotools(coco_files, tmp_path):
    path, images, data = coco_files
    out = tmp_path / "coco.json"
    s = run_ws("dataset", "coco", path, "--images", images, "-o", out).json
    assert s["images"] == 2 and s["skipped_without_annotations"] == 1
    m = load_manifest(out)
    assert m.classes == ["person", "dog"] and m.category_ids() == [1, 18]
    a = m.by_id()["10"]
    assert a.tags == ["person", "dog"]
    gt = load_instances(m, a)
    from pycocotools.coco import COCO
    import contextlib, io
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    for k, ann in enumerate(coco.loadAnns(coco.getAnnIds(imgIds=[10]))):
        assert (gt.masks()[k] == coco.annToMask(ann).astype(bool)).all()
    crowd = load_instances(m, m.by_id()["11"])
    assert crowd.iscrowd.tolist() == [True] and crowd.masks()[0].sum() == 40
    run_ws("dataset", "coco", path, "--images", images, "--keep-empty", "-o", out, "--force")
    assert load_manifest(out).by_id()["12"].tags == []


def test_coco_bad_category(coco_files, tmp_path):
    path, images, data = coco_files
    data["annotations"][0]["category_id"] = 99
    path.write_text(json.dumps(data))
    assert_bad_input(run_ws("dataset", "coco", path, "--images", images, "-o", tmp_path / "o.json", expect=2),
                     "category_id 99")


def test_folder_import(tmp_path):
    _jpeg(tmp_path / "pics" / "a.jpg", 20, 10)
    _jpeg(tmp_path / "pics" / "sub" / "b.png", 12, 12)
    (tmp_path / "tags.csv").write_text("image,tags\na.jpg,cat;dog\nsub/b.png,dog\n")
    out = tmp_path / "m.json"
    s = run_ws("dataset", "folder", tmp_path / "pics", "--tags", tmp_path / "tags.csv", "-o", out).json
    assert s["images"] == 2
    m = load_manifest(out)
    assert m.classes == ["cat", "dog"] and [r.id for r in m.images] == ["a", "sub/b"]
    assert m.images[0].tags == ["cat", "dog"] and (m.images[0].width, m.images[0].height) == (20, 10)
    assert m.read_image(m.images[1]).shape == (12, 12, 3)
    assert_bad_input(run_ws("dataset", "folder", tmp_path / "pics", "--tags", tmp_path / "tags.csv",
                            "--classes", "cat", "-o", tmp_path / "n.json", expect=2), "'dog'", "image a")


# --- bad manifests ------------------------------------------------------------------------------

def _edit(toy_copy, fn):
    path = toy_copy / "train.json"
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))
    return path


def test_check_ok(toy_dir):
    # through the installed entry point: exit 0 and the JSON summary on a process's stdout
    s = run_ws("dataset", "check", toy_dir / "train.json", subprocess=True).json
    assert s == {"manifest": str(toy_dir / "train.json"), "images": 24, "problems": 0, "ok": True}


def test_missing_manifest(tmp_path):
    # the entry point's exit 2 and one line on a process's stderr
    assert_bad_input(run_ws("dataset", "check", tmp_path / "nope.json", expect=2, subprocess=True), "nope.json",
                     "does not exist")
    assert_bad_input(run_ws("info", tmp_path / "nope.json", expect=2), "does not exist")


def test_unreadable_manifest(tmp_path):
    p = tmp_path / "m.json"
    p.write_text("{not json")
    assert_bad_input(run_ws("dataset", "check", p, expect=2), "m.json", "not valid JSON")
    p.write_bytes(b"\xff\xfe\x00garbage")
    assert_bad_input(run_ws("dataset", "check", p, expect=2), "m.json")


def test_missing_and_non_image_files(toy_copy):
    m = json.loads((toy_copy / "train.json").read_text())
    (toy_copy / m["images"][1]["image"]).unlink()
    (toy_copy / m["images"][2]["image"]).write_text("this is not a png")
    r = run_ws("dataset", "check", toy_copy / "train.json", expect=2)
    assert r.json["problems"] == 2
    lines = r.stderr.strip().splitlines()
    assert any(m["images"][1]["id"] in line and "does not exist" in line for line in lines)
    assert any(m["images"][2]["id"] in line and "cannot read image" in line for line in lines)
    assert "Traceback" not in r.stderr


def test_wrong_image_size_is_reported(toy_copy):
    path = _edit(toy_copy, lambda d: d["images"][0].update(width=100))
    r = run_ws("dataset", "check", path, expect=2)
    assert "train_000000" in r.stderr and "100x64" in r.stderr


@pytest.mark.parametrize("edit, fragments", [
    (lambda d: d["images"].append(dict(d["images"][0])), ["train_000000", "duplicate image id"]),
    (lambda d: d["images"][3]["tags"].append("unicorn"), ["train_000003", "'unicorn' is not in classes"]),
    (lambda d: d.update(classes=d["classes"] + ["disc"]), ["duplicate names"]),
    (lambda d: d["images"][0].pop("width"), ["train_000000", "missing width"]),
    (lambda d: d.update(ws_schema=7), ["newer"]),
])
def test_bad_manifest_structure(toy_copy, edit, fragments):
    path = _edit(toy_copy, edit)
    assert_bad_input(run_ws("dataset", "check", path, expect=2), "train.json", *fragments)
    assert_bad_input(run_ws("info", path, expect=2), *fragments)


def test_image_without_tags(toy_copy):
    path = _edit(toy_copy, lambda d: d["images"][5].update(tags=[]))
    r = run_ws("dataset", "check", path, expect=2)
    assert "train_000005: image has no tags" in r.stderr


def test_tags_that_contradict_the_ground_truth(toy_copy):
    def drop(d):
        d["images"][0]["tags"] = d["images"][0]["tags"][1:] or ["square" if d["images"][0]["tags"] != ["square"]
                                                                else "disc"]
    path = _edit(toy_copy, drop)
    r = run_ws("dataset", "check", path, expect=2)
    assert "train_000000" in r.stderr and "tags lack" in r.stderr


def test_importer_refuses_to_overwrite(voc_root, tmp_path):
    out = tmp_path / "t.json"
    out.write_text("keep me")
    assert_bad_input(run_ws("dataset", "voc", voc_root, "-o", out, expect=2), "--force")
    assert out.read_text() == "keep me"


def test_voc_import_accepts_vocdevkit(voc_root, tmp_path):
    """The folder the archive unpacks to (VOCdevkit/ holding VOC2012/) is accepted as well."""
    devkit = tmp_path / "VOCdevkit"
    devkit.mkdir()
    (devkit / "VOC2012").symlink_to(voc_root, target_is_directory=True)
    direct = run_ws("dataset", "voc", voc_root, "--split", "train", "-o", tmp_path / "a.json").json
    via = run_ws("dataset", "voc", devkit, "--split", "train", "-o", tmp_path / "b.json").json
    assert via["images"] == direct["images"] == 2
    a, b = load_manifest(tmp_path / "a.json"), load_manifest(tmp_path / "b.json")
    assert [(r.id, r.tags) for r in b.images] == [(r.id, r.tags) for r in a.images]


def test_voc_import_names_the_folder_to_pass(tmp_path):
    empty = tmp_path / "VOCdevkit"
    empty.mkdir()
    assert_bad_input(run_ws("dataset", "voc", empty, "-o", tmp_path / "x.json", expect=2), "VOCdevkit/VOC2012")
    assert not (tmp_path / "x.json").exists()
    for year in ("VOC2007", "VOC2012"):
        (empty / year / "JPEGImages").mkdir(parents=True)
    assert_bad_input(run_ws("dataset", "voc", empty, "-o", tmp_path / "x.json", expect=2), "VOC2007, VOC2012")
    assert not (tmp_path / "x.json").exists()


def test_importers_check_what_dataset_check_checks(tmp_path):
    """Issue 22: a folder import with a truncated image, a 'background' tag or duplicate --classes is
    refused (exit 2, every problem in one line, no manifest written); untagged images are warned."""
    photos = tmp_path / "p"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in "abcd":
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(photos / f"{name}.png")
    for name in "cd":
        with open(photos / f"{name}.png", "r+b") as f:
            f.truncate(60)
    out = tmp_path / "m.json"
    tags = tmp_path / "tags.csv"
    tags.write_text("a.png,cat\nb.png,dog\nc.png,cat\nd.png,dog\n")
    r = run_ws_inproc("dataset", "folder", photos, "--tags", tags, "-o", out, expect=None)
    assert_bad_input(r, str(out), "2 problems", "image c:", "image d:", "truncated")
    assert not out.exists()
    (photos / "c.png").unlink()
    (photos / "d.png").unlink()
    tags.write_text("a.png,cat\nb.png,dog;background\n")
    assert_bad_input(run_ws_inproc("dataset", "folder", photos, "--tags", tags, "-o", out, expect=None),
                     "background")
    tags.write_text("a.png,cat\nb.png,dog\n")
    assert_bad_input(run_ws_inproc("dataset", "folder", photos, "--tags", tags, "--classes", "cat,cat,dog",
                                   "-o", out, expect=None), "duplicate")
    assert not out.exists()
    tags.write_text("a.png,cat\nb.png,\n")
    r = run_ws_inproc("dataset", "folder", photos, "--tags", tags, "--classes", "cat,dog", "-o", out)
    assert "1 image has no tags" in r.stderr
    assert run_ws_inproc("dataset", "check", out, expect=None).returncode == 2   # check still lists it
