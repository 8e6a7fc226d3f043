"""The bad-input matrix of issue 22, item 8: every ``ws`` command x every kind of bad input that
applies to it. Each cell: exit 2, stderr exactly one line naming the file (and the image where there
is one) and the problem, no traceback, nothing left in the output folder.

Valid stores are built once per module (tiny ``ws`` runs on the 8 toy val images); each cell
corrupts a copy of one input. The commands run in this process (``run_ws_inproc``). A kind left
out of a command's spec does not apply to it (no such input: no pickle without a checkpoint, no
byte-corrupt HDF5 where only JSON is read). After the matrix: values out of range and maps of the
wrong shape inside valid stores, named cases of the issue, and a truncated image file."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import run_ws_inproc

pytestmark = pytest.mark.cli

T = ["--threads", "1", "--device", "cpu"]
TRAIN_CAM = ["--arch", "tiny", "--stride", "8", "--crop", "64", "--epochs", "1", "--batch-size", "8", *T]
TRAIN_ICN = ["--encoder", "tiny", "--size", "32", "--epochs", "1", "--batch-size", "8", *T]
TRAIN_SEG = ["--arch", "tiny", "--crop", "64", "--epochs", "1", "--batch-size", "8", "--loss-at", "input", *T]
TRAIN_MIL = ["--arch", "tiny", "--epochs", "1", "--min-steps", "1", "--batch-size", "8", *T]

MARKER = "pickle_ran.marker"


class _RunsCode:
    """Unpickling this calls ``open(marker, "w")``: a file that must never appear."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# --- the valid inputs, built once --------------------------------------------------------------

def _coco_of_gt(manifest_path, out):
    from wstools.io.dataset import load_instances, load_manifest

    m = load_manifest(manifest_path)
    cats = m.category_ids()
    images, anns = [], []
    for rec in m.images:
        images.append({"id": len(images) + 1, "file_name": rec.image, "height": rec.height, "width": rec.width})
        inst = load_instances(m, rec)
        for c, label in zip(inst.counts, inst.labels):
            anns.append({"id": len(anns) + 1, "image_id": len(images), "category_id": int(cats[int(label) - 1]),
                         "segmentation": {"size": [rec.height, rec.width], "counts": c.decode()}, "iscrowd": 0,
                         "area": 1.0, "bbox": [0, 0, 1, 1]})
    out.write_text(json.dumps({"images": images, "annotations": anns,
                               "categories": [{"id": int(c), "name": n} for c, n in zip(cats, m.classes)]}))


def _irn_dir(manifest_path, d):
    manifest = json.loads(manifest_path.read_text())
    d.mkdir()
    rng = np.random.default_rng(0)
    for rec in manifest["images"]:
        keys = np.array(sorted(manifest["classes"].index(t) for t in rec["tags"]))
        hr = rng.random((len(keys), rec["height"], rec["width"])).astype(np.float32)
        np.save(d / f"{rec['id']}.npy", {"keys": keys, "high_res": hr})


def _voc_root(root):
    from PIL import Image

    for i, image_id in enumerate(("2007_000001", "2007_000002")):
        (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)).save(root / "JPEGImages" / f"{image_id}.jpg")
        (root / "Annotations").mkdir(exist_ok=True)
        (root / "Annotations" / f"{image_id}.xml").write_text(
            "<annotation><size><width>32</width><height>24</height><depth>3</depth></size>"
            "<object><name>cat</name><difficult>0</difficult></object></annotation>")
    sets = root / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("2007_000001\n2007_000002\n")


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Every input kind a command reads, valid, in one folder that any user may read (the
    read-only-output cells run as an unprivileged user when the tests run as root)."""
    import torch

    from wstools.io.toy import write_dataset

    d = Path(tempfile.mkdtemp(prefix="ws-bad-input-"))
    toy = d / "toy"
    toy.mkdir()
    write_dataset(toy, "train", 24, size=64, seed=0)
    write_dataset(toy, "val", 8, size=64, seed=0)
    val, train = toy / "val.json", toy / "train.json"

    def ws(*args):
        run_ws_inproc(*args, "-q")

    ws("propose", val, "--top", "10", "-o", d / "props.h5")
    ws("propose", train, "--top", "10", "-o", d / "props_train.h5")
    ws("propose", val, "--top", "10", "--shard", "0/2", "-o", d / "part0.h5")
    ws("propose", val, "--top", "10", "--shard", "1/2", "-o", d / "part1.h5")
    ws("propose", train, "--top", "10", "--shard", "1/2", "-o", d / "part1_train.h5")
    ws("oracle", "cams", val, "-o", d / "cams.h5")
    ws("oracle", "cams", train, "-o", d / "cams_train.h5")
    ws("cam", "train", val, *TRAIN_CAM, "-o", d / "cls.pt")
    ws("cam", "peaks", val, "--model", d / "cls.pt", *T, "-o", d / "resp.h5")
    ws("features", "extract", val, "--proposals", d / "props.h5", "--cams", d / "cams.h5", "--model", d / "cls.pt",
       "--threads", "1", "-o", d / "feat.h5")
    ws("graph", d / "feat.h5", "-o", d / "graph.h5")
    ws("cut", d / "graph.h5", "-o", d / "assign.h5")
    ws("grow", "seeds", d / "cams.h5", "-o", d / "labels.h5")
    ws("grow", "seeds", d / "cams_train.h5", "-o", d / "labels_train.h5")
    ws("icn", "train", val, "--responses", d / "resp.h5", "--proposals", d / "props.h5", *TRAIN_ICN,
       "-o", d / "icn.pt")
    ws("train-seg", val, "--labels", d / "labels.h5", *TRAIN_SEG, "-o", d / "seg.pt")
    ws("match", val, "--responses", d / "resp.h5", "--proposals", d / "props.h5", "-o", d / "res.json")
    for model in ("cls", "seg"):           # the same network, trained (it says) for other classes
        ck = torch.load(d / f"{model}.pt", weights_only=True)
        ck["classes"] = [f"other_{c}" for c in ck["classes"]]
        torch.save(ck, d / f"{model}_other.pt")
    manifest = json.loads(val.read_text())                 # its first image cut short
    first_image = toy / manifest["images"][0]["image"]
    truncated_image = first_image.with_name("truncated_" + first_image.name)
    truncated_image.write_bytes(first_image.read_bytes()[: first_image.stat().st_size // 2])
    manifest["images"][0]["image"] = str(truncated_image.relative_to(toy))
    (toy / "truncated_image.json").write_text(json.dumps(manifest))
    _coco_of_gt(val, d / "coco.json")
    _irn_dir(val, d / "irn")
    _voc_root(d / "voc")
    pics = d / "pics"
    pics.mkdir()
    shutil.copy(toy / "images" / "val_000000.png", pics / "a.png")
    (d / "tags.csv").write_text("image,tags\na.png,cat\n")
    paths = {p.stem: p for p in d.iterdir()}
    paths.update(man=val, other_man=train, toy=toy, truncated_image_man=toy / "truncated_image.json", first_id=json.loads(val.read_text())["images"][0]["id"])
    for p in [d, *d.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    yield paths
    shutil.rmtree(d, ignore_errors=True)


# --- the bad versions -------------------------------------------------------------------------

def _truncated(src, dst):
    if src.is_dir():                                # a VOC root: an annotation cut short
        shutil.copytree(src, dst)
        src = dst = sorted((dst / "Annotations").glob("*.xml"))[0]
    data = src.read_bytes()
    dst.write_bytes(data[:max(1, len(data) // 2)])


def _byte_corrupted(src, dst):
    """Overwrite the compressed chunk of a per-image dataset (inflate fails) or, in a store
    without one, the signatures of its group nodes (HDF5 refuses to open the objects)."""
    shutil.copy(src, dst)
    found = []
    with h5py.File(dst, "r") as f:
        def find(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.compression and obj.id.get_num_chunks():
                found.append((name.rsplit("/", 1)[-1] not in ("cams", "maps", "labels"), obj.id.get_chunk_info(0)))
        f.visititems(find)
    target = min(found, key=lambda t: t[0])[1] if found else None     # a map every reader reads
    data = bytearray(dst.read_bytes())
    if target is not None:
        data[target.byte_offset:target.byte_offset + target.size] = b"\xff" * target.size
    else:
        for sig in (b"SNOD", b"TREE"):
            at = data.find(sig, 64)
            while at >= 0:
                data[at:at + 4] = b"XXXX"
                at = data.find(sig, at + 4)
    dst.write_bytes(bytes(data))


def _edit_h5(src, dst, edit):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        kind = f.attrs["ws_kind"]
        if "images" in f:
            g = f["images"][sorted(f["images"], key=lambda k: f["images"][k].attrs.get("order", 0))[0]]
            edit(kind, g)
        else:
            edit(kind, f)


def _set(ds, index, value):
    arr = ds[()]
    arr[index] = value
    ds[...] = arr


_NAN_EDITS = {
    "cams": lambda g: _set(g["cams"], (0, 0, 0), np.nan),
    "responses": lambda g: _set(g["maps"], (0, 0, 0), np.nan),
    "proposals": lambda g: _set(g["scores"], 0, np.nan),
    "labels": lambda g: _set(g["labels"], (0, 0), 99),         # a label the manifest's classes lack
    "features": lambda f: _set(f["feat"], (0, 0), np.nan),
    "graph": lambda f: _set(f["weights"], 0, np.nan),
    "assignment": lambda f: _set(f["labels"], 0, 99),
}


def _nan_inside(src, dst):
    if src.is_dir():                               # cam import: a NaN in an .npy map
        shutil.copytree(src, dst)
        first = sorted(dst.glob("*.npy"))[0]
        data = np.load(first, allow_pickle=True).item()
        data["high_res"][0, 0, 0] = np.nan
        np.save(first, data)
        return
    if src.suffix == ".json":                      # instance predictions
        dets = json.loads(src.read_text())
        dets[0]["score"] = float("nan")
        dst.write_text(json.dumps(dets))
        return
    if src.suffix == ".pt":
        import torch

        ck = torch.load(src, weights_only=True)
        first = next(k for k, v in ck["state_dict"].items() if v.is_floating_point())
        ck["state_dict"][first].view(-1)[0] = float("nan")
        torch.save(ck, dst)
        return
    _edit_h5(src, dst, lambda kind, g: _NAN_EDITS[kind](g))


def _malicious_pickle(src, dst):
    marker = dst.parent / MARKER
    if src.is_dir():                                # cam import: a folder of .npy dicts
        shutil.copytree(src, dst)
        first = sorted(dst.glob("*.npy"))[0]
        np.save(first, {"keys": np.array([0]), "high_res": _RunsCode(marker)}, allow_pickle=True)
        return
    import torch

    torch.save({"arch": "tiny", "classes": [], "state_dict": _RunsCode(marker)}, dst)


def _empty_manifest(src, dst):
    if src.suffix == ".csv":                        # a tags CSV: the header only
        dst.write_text("image,tags\n")
        return
    if src.is_dir():                                # a VOC root: an empty image list
        shutil.copytree(src, dst)
        (dst / "ImageSets" / "Segmentation" / "train.txt").write_text("")
        return
    m = json.loads(src.read_text())
    if "annotations" in m:                          # a COCO instances file
        m["images"], m["annotations"] = [], []
        dst.write_text(json.dumps(m))
        return
    m["images"] = []
    m["root"] = str(src.parent)
    dst.write_text(json.dumps(m))


# --- the commands ----------------------------------------------------------------------------
# argv: {name} is an input of `stores`, {out} the output; cells: kind -> the input it spoils
# (mismatch: (input, its replacement from another manifest)); flag: an absurd flag value.

SPECS = {
    "cam import": dict(argv=["cam", "import", "{irn}", "--manifest", "{man}", "-o", "{out}"], out="c.h5",
                       missing="irn", wrong_kind="man", truncated="man", empty="man", pickle="irn",
                       nan="irn", mismatch=("man", "other_man"), mismatch_names=["irn/"]),
    "cam infer": dict(argv=["cam", "infer", "{man}", "--model", "{cls}", "-o", "{out}", *T], out="c.h5",
                      missing="cls", wrong_kind="cls", truncated="cls", nan="cls", pickle="cls", empty="man",
                      mismatch=("cls", "cls_other"), flag=["--scales", "-1"]),
    "cam peaks": dict(argv=["cam", "peaks", "{man}", "--model", "{cls}", "-o", "{out}", *T], out="r.h5",
                      missing="cls", wrong_kind="cls", truncated="cls", nan="cls", pickle="cls", empty="man",
                      mismatch=("cls", "cls_other"), flag=["--eta", "inf"]),
    "cam train": dict(argv=["cam", "train", "{man}", "-o", "{out}", *TRAIN_CAM], out="c.pt",
                      missing="man", wrong_kind="man", truncated="man", empty="man",
                      pickle=("--weights", "cls"), flag=["--lr", "-1"]),
    "cut": dict(argv=["cut", "{graph}", "-o", "{out}"], out="a.h5", missing="graph", wrong_kind="graph",
                truncated="graph", corrupted="graph", nan="graph", flag=["--retention", "2"]),
    "dataset check": dict(argv=["dataset", "check", "{man}"], out=None, missing="man", wrong_kind="man",
                          truncated="man", empty="man"),
    "dataset coco": dict(argv=["dataset", "coco", "{coco}", "--images", "{toy}", "-o", "{out}"], out="m.json",
                         missing="coco", wrong_kind="coco", truncated="coco", empty="coco"),
    "dataset folder": dict(argv=["dataset", "folder", "{pics}", "--tags", "{tags}", "-o", "{out}"], out="m.json",
                           missing="tags", wrong_kind="tags", empty="tags", flag=["--classes", "cat,cat"]),
    "dataset voc": dict(argv=["dataset", "voc", "{voc}", "-o", "{out}"], out="m.json", missing="voc",
                        wrong_kind="voc", wrong_with="tags", truncated="voc", empty="voc"),
    "eval assignment": dict(argv=["eval", "assignment", "{assign}", "--proposals", "{props}", "--gt", "{man}",
                                  "--csv", "{out}"], out="e.csv", missing="assign", wrong_kind="assign",
                            truncated="assign", corrupted="props", nan="assign", empty="man",
                            mismatch=("props", "props_train"), flag=["--iou", "2"]),
    "eval cams": dict(argv=["eval", "cams", "{cams}", "--gt", "{man}", "--csv", "{out}"], out="e.csv",
                      missing="cams", wrong_kind="cams", truncated="cams", corrupted="cams", nan="cams",
                      empty="man", mismatch=("man", "other_man"), flag=["--thresholds", "-1:2:0.5"]),
    "eval instance": dict(argv=["eval", "instance", "{res}", "--gt", "{man}", "--csv", "{out}"], out="e.csv",
                          missing="res", wrong_kind="res", truncated="res", nan="res", empty="man",
                          mismatch=("man", "other_man"), flag=["--iou-r", "0.5,2"]),
    "eval proposals": dict(argv=["eval", "proposals", "{props}", "--gt", "{man}", "--csv", "{out}"], out="e.csv",
                           missing="props", wrong_kind="props", truncated="props", corrupted="props",
                           nan="props", empty="man", mismatch=("man", "other_man"), flag=["--iou", "2"]),
    "eval semantic": dict(argv=["eval", "semantic", "{labels}", "--gt", "{man}", "--csv", "{out}"], out="e.csv",
                          missing="labels", wrong_kind="labels", truncated="labels", corrupted="labels",
                          nan="labels", empty="man", mismatch=("man", "other_man")),
    "export-coco": dict(argv=["export-coco", "{assign}", "--proposals", "{props}", "--manifest", "{man}",
                              "-o", "{out}"], out="coco.json", missing="assign", wrong_kind="assign",
                        truncated="assign", corrupted="props", nan="assign", empty="man",
                        mismatch=("props", "props_train"), flag=["--nms-iou", "2"]),
    "features extract": dict(argv=["features", "extract", "{man}", "--proposals", "{props}", "--cams", "{cams}",
                                   "--model", "{cls}", "-o", "{out}", *T], out="f.h5", missing="props",
                             wrong_kind="props", truncated="props", corrupted="cams", nan="cams", pickle="cls",
                             empty="man", mismatch=("props", "props_train"), flag=["--eta", "3"]),
    "features train-mil": dict(argv=["features", "train-mil", "{man}", "--proposals", "{props}", "--cams",
                                     "{cams}", "-o", "{out}", *TRAIN_MIL], out="mil.pt", missing="cams",
                               wrong_kind="cams", truncated="cams", corrupted="cams", nan="cams",
                               pickle=("--init", "cls"), empty="man", mismatch=("props", "props_train"),
                               flag=["--lr", "-1"]),
    "graph": dict(argv=["graph", "{feat}", "-o", "{out}"], out="g.h5", missing="feat", wrong_kind="feat",
                  truncated="feat", corrupted="feat", nan="feat", flag=["--delta", "-1"]),
    "grow crf": dict(argv=["grow", "crf", "{cams}", "--manifest", "{man}", "-o", "{out}"], out="l.h5",
                     missing="cams", wrong_kind="cams", truncated="cams", corrupted="cams", nan="cams",
                     empty="man", mismatch=("man", "other_man"), flag=["--iterations", "-1"]),
    "grow region": dict(argv=["grow", "region", "{labels}", "--probs", "{cams}", "-o", "{out}"], out="l.h5",
                        missing="labels", wrong_kind="labels", truncated="labels", corrupted="cams", nan="cams",
                        mismatch=("labels", "labels_train"), flag=["--theta-fg", "2"]),
    "grow seeds": dict(argv=["grow", "seeds", "{cams}", "--snap", "felzenszwalb", "--manifest", "{man}", "-o", "{out}"],
                       out="l.h5", missing="cams", wrong_kind="cams", truncated="cams", corrupted="cams", nan="cams",
                       empty="man", mismatch=("man", "other_man"), flag=["--fg", "top:2"]),
    "icn infer": dict(argv=["icn", "infer", "{man}", "--responses", "{resp}", "--model", "{icn}", "-o", "{out}",
                            *T], out="r.h5", missing="resp", wrong_kind="resp", truncated="resp", corrupted="resp",
                      nan="resp", pickle="icn", empty="man", mismatch=("man", "other_man"), flag=["--steps", "-1"]),
    "icn train": dict(argv=["icn", "train", "{man}", "--responses", "{resp}", "--proposals", "{props}",
                            "-o", "{out}", *TRAIN_ICN], out="icn.pt", missing="resp", wrong_kind="resp",
                      truncated="resp", corrupted="resp", nan="resp", empty="man",
                      mismatch=("props", "props_train"), flag=["--lr", "-1"]),
    "info": dict(argv=["info", "{props}"], out=None, missing="props", wrong_kind="props", wrong_with="tags",
                 truncated="props", corrupted="props", pickle="props", flag=["--sample", "-1"]),
    "match": dict(argv=["match", "{man}", "--responses", "{resp}", "--proposals", "{props}", "-o", "{out}"],
                  out="res.json", missing="resp", wrong_kind="resp", truncated="resp", corrupted="resp",
                  nan="resp", empty="man", mismatch=("props", "props_train"), flag=["--nms", "2"]),
    "merge": dict(argv=["merge", "{out}", "{part0}", "{part1}"], out="p.h5", missing="part1", wrong_kind="part1",
                  truncated="part1", corrupted="part1", mismatch=("part1", "part1_train")),
    "oracle assignment": dict(argv=["oracle", "assignment", "{props}", "--gt", "{man}", "-o", "{out}"],
                              out="a.h5", missing="props", wrong_kind="props", truncated="props",
                              corrupted="props", nan="props", empty="man", mismatch=("man", "other_man"),
                              flag=["--iou", "2"]),
    "oracle cams": dict(argv=["oracle", "cams", "{man}", "-o", "{out}"], out="c.h5", missing="man",
                        wrong_kind="man", truncated="man", empty="man", flag=["--sigma", "-1"]),
    "oracle instances": dict(argv=["oracle", "instances", "{man}", "-o", "{out}"], out="i.json", missing="man",
                             wrong_kind="man", truncated="man", empty="man"),
    "predict": dict(argv=["predict", "{man}", "--model", "{seg}", "-o", "{out}", *T], out="p.h5", missing="seg",
                    wrong_kind="seg", truncated="seg", nan="seg", pickle="seg", empty="man",
                    mismatch=("seg", "seg_other"), flag=["--mask-threshold", "2"]),
    "propose": dict(argv=["propose", "{man}", "-o", "{out}", "--top", "10"], out="p.h5", missing="man",
                    wrong_kind="man", truncated="man", empty="man", flag=["--sigma", "-1"]),
    "toy": dict(argv=["toy", "{out}", "--train", "2", "--val", "1", "--size", "32"], out="toy", out_is_dir=True,
                flag=["--size", "0"]),
    "train-seg": dict(argv=["train-seg", "{man}", "--labels", "{labels}", "-o", "{out}", *TRAIN_SEG], out="s.pt",
                      missing="labels", wrong_kind="labels", truncated="labels", corrupted="labels",
                      nan="labels", pickle=("--init", "cls"), empty="man", mismatch=("labels", "labels_train"),
                      flag=["--lr", "-1"]),
    "viz": dict(argv=["viz", "{cams}", "--dataset", "{man}", "-o", "{out}"], out="v.png", missing="cams",
                wrong_kind="man", truncated="cams", corrupted="cams", nan="cams", mismatch=("man", "other_man"),
                empty="man", flag=["--scale", "-1"]),
}

# what a wrong kind of file is, for each input
_WRONG = {"man": "props", "coco": "props", "tags": "props", "res": "props", "cls": "cams", "icn": "cams",
          "seg": "cams", "props": "cams", "part1": "cams", "assign": "props", "graph": "feat", "feat": "graph",
          "labels": "props", "resp": "props", "cams": "props", "irn": "man"}

KINDS = ("missing", "wrong_kind", "truncated", "corrupted", "nan", "mismatch", "flag", "readonly", "exists",
         "pickle", "empty")

# words of the problem each kind's message must name (any one of them)
_PROBLEM = {
    "missing": ("does not exist", "not a VOC folder"),
    "wrong_kind": ("expected", "not a", "is a", "must be", "store kind", "not valid JSON", "not UTF-8"),
    "truncated": ("truncated", "not valid JSON", "not a readable JSON", "cannot read"),
    "corrupted": ("corrupt",),
    "nan": ("NaN", "non-finite", "not a finite", "outside", "> K"),
    "mismatch": ("not in", "another", "lacks", "not from", "differ", "none of the images", "no IRN CAM file"),
    "readonly": ("cannot write in the output folder",),
    "exists": ("output exists",),
    "pickle": ("weights_only", "refusing to load"),
    "empty": ("no images", "nothing to train on"),
}

# cells expected to fail (strict xfail, with the reason); none now
XFAIL: dict = {}   # every cell passes (the trainers decode their images before training: cli.training.check_images)


def _cells():
    for cmd, spec in SPECS.items():
        for kind in KINDS:
            if kind in ("readonly", "exists"):
                applies = spec["out"] is not None
            else:
                applies = kind in spec
            if applies:
                marks = [pytest.mark.xfail(strict=True, reason=XFAIL[cmd, kind])] if (cmd, kind) in XFAIL else []
                yield pytest.param(cmd, kind, id=f"{cmd.replace(' ', '-')}-{kind}", marks=marks)


@contextlib.contextmanager
def _unprivileged():
    """Root writes into read-only folders: the read-only cells run as ``nobody`` then."""
    if os.geteuid() != 0:
        yield
        return
    # the commands run in this process and import their modules when run; `nobody` may not read
    # a checkout inside a private folder (a fresh CI clone), so import them all as root first
    import importlib
    import pkgutil

    import wstools.cli
    for module in pkgutil.walk_packages(wstools.cli.__path__, "wstools.cli."):
        importlib.import_module(module.name)
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


@pytest.mark.parametrize("cmd, kind", list(_cells()))
def test_bad_input_cell(stores, cmd, kind):
    spec = SPECS[cmd]
    cell = Path(tempfile.mkdtemp(prefix="cell-", dir=stores["man"].parent.parent))
    cell.chmod(0o755)
    try:
        _run_cell(stores, spec, cmd, kind, cell)
    finally:
        shutil.rmtree(cell, ignore_errors=True)


def _run_cell(stores, spec, cmd, kind, cell):
    values = {k: v for k, v in stores.items()}
    out_dir = cell / "out"
    out_dir.mkdir()
    out_dir.chmod(0o755)
    out = out_dir / spec["out"] if spec["out"] else None
    extra, names, image_id = [], [], None
    if kind in ("missing", "wrong_kind", "truncated", "corrupted", "nan", "pickle", "empty"):
        target = spec[kind]
        if isinstance(target, tuple):                 # an optional flag: added with the bad file
            flag, target = target
            extra = [flag, "{%s}" % target]
        src = stores[target]
        bad = cell / f"{kind}_{src.name}"
        if kind == "pickle" and src.is_file():
            bad = bad.with_suffix(".pt")
        if kind == "missing":
            pass
        elif kind == "wrong_kind":
            shutil.copy(stores[spec["wrong_with"] if "wrong_with" in spec else _WRONG[target]], bad)
        elif kind == "truncated":
            _truncated(src, bad)
        elif kind == "corrupted":
            _byte_corrupted(src, bad)
        elif kind == "nan":
            _nan_inside(src, bad)
            image_id = stores["first_id"] if src.suffix == ".h5" and _has_images(src) else None
        elif kind == "pickle":
            _malicious_pickle(src, bad)
        elif kind == "empty":
            _empty_manifest(src, bad)
        values[target] = bad
        names = [bad.name]
    elif kind == "mismatch":
        target, other = spec["mismatch"]
        values[target] = stores[other]
        names = [stores[target].name, stores[other].name, *spec.get("mismatch_names", ())]
    elif kind == "flag":
        extra = list(spec["flag"])
        names = [spec["flag"][0]]
    elif kind == "exists":
        if spec.get("out_is_dir"):
            out.mkdir()
            (out / "train.json").write_text("{}")
        else:
            out.write_text("a previous result\n")
        names = [out.name]
    argv = [a.format(out=out, **values) if "{" in a else a for a in [*spec["argv"], *extra]]
    before = _snapshot(out_dir)
    if kind == "readonly":
        out_dir.chmod(0o555)
        names = [out_dir.name]
        with _unprivileged():
            r = run_ws_inproc(*argv, expect=None)
        out_dir.chmod(0o755)
    else:
        r = run_ws_inproc(*argv, expect=None)
    assert not (cell / MARKER).exists(), "the pickle ran"
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, r
    assert "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert line.startswith(f"ws {cmd}: error: "), line
    assert any(n in line for n in names), (names, line)
    if image_id is not None:
        assert image_id in line, (image_id, line)
    if kind in _PROBLEM:
        assert any(word in line for word in _PROBLEM[kind]), (kind, line)
    assert _snapshot(out_dir) == before, "left behind: " + ", ".join(sorted(set(_snapshot(out_dir)) - set(before)))


def _has_images(path):
    with h5py.File(path, "r") as f:
        return "images" in f


# --- values out of their range inside a valid store, and maps of the wrong shape ---------------
# (the NaN cells above, with inf, negative and > 1 values where a map must lie in [0, 1])

_MAP = {"cams": "cams", "responses": "maps", "labels": "labels", "proposals": "scores", "features": "feat",
        "graph": "weights"}
_BOUNDED = ("cams", "responses")       # maps in [0, 1]


def _value_cells():
    for cmd, spec in SPECS.items():
        target = spec.get("nan")
        if not isinstance(target, str) or target in ("cls", "seg", "irn", "res"):
            continue
        kind = {"cams": "cams", "resp": "responses", "labels": "labels", "props": "proposals", "feat": "features",
                "graph": "graph", "assign": "assignment"}[target]
        variants = ["inf", "negative", "above_one"] if kind in _BOUNDED else ["inf"] if kind != "labels" else []
        if kind in ("cams", "responses", "labels"):
            variants.append("wrong_shape")
        if kind == "assignment":
            variants = ["negative"]
        for v in variants:
            marks = [pytest.mark.xfail(strict=True, reason=XFAIL[cmd, v])] if (cmd, v) in XFAIL else []
            yield pytest.param(cmd, v, id=f"{cmd.replace(' ', '-')}-{v}", marks=marks)


_VALUES = {"inf": np.inf, "negative": -0.5, "above_one": 1.5}


def _spoil_values(src, dst, variant):
    def edit(kind, g):
        name = _MAP.get(kind, "labels")
        if variant == "wrong_shape":
            data = g[name][()]
            small = data[..., : data.shape[-2] // 2, : data.shape[-1] // 2].copy()
            del g[name]
            g.create_dataset(name, data=small)
        elif kind == "assignment":
            _set(g[name], 0, -1)                   # labels are integers: -1 is the negative one
        else:
            _set(g[name], (0,) * g[name].ndim, _VALUES[variant])
    _edit_h5(src, dst, edit)


_VALUE_WORDS = ("NaN", "inf", "finite", "outside", "range", "[0, 1]", "negative", "> 1", "shape", "size", "differs")


@pytest.mark.parametrize("cmd, variant", list(_value_cells()))
def test_bad_value_cell(stores, cmd, variant):
    spec = SPECS[cmd]
    target = spec["nan"]
    cell = Path(tempfile.mkdtemp(prefix="cell-", dir=stores["man"].parent.parent))
    try:
        out_dir = cell / "out"
        out_dir.mkdir()
        bad = cell / f"{variant}_{stores[target].name}"
        _spoil_values(stores[target], bad, variant)
        values = {**stores, target: bad}
        out = out_dir / spec["out"] if spec["out"] else None
        argv = [a.format(out=out, **values) if "{" in a else a for a in spec["argv"]]
        r = run_ws_inproc(*argv, expect=None)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode == 2, r
        assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr
        assert lines[0].startswith(f"ws {cmd}: error: ") and bad.name in lines[0], lines[0]
        if _has_images(bad):
            assert stores["first_id"] in lines[0], lines[0]
        assert any(w in lines[0] for w in _VALUE_WORDS), lines[0]
        assert not list(out_dir.iterdir()), list(out_dir.iterdir())
    finally:
        shutil.rmtree(cell, ignore_errors=True)


# --- named cases of issue 22 that fit no column above ---------------------------------------------

def _kind_edited(stores, cell):
    bad = cell / "kind_edited_cams.h5"
    shutil.copy(stores["cams"], bad)
    with h5py.File(bad, "r+") as f:
        f.attrs["ws_kind"] = "labels"
    return ["grow", "region", bad, "--probs", stores["cams"], "-o", cell / "out" / "l.h5"], [bad.name]


def _probs_is_output(stores, cell):
    out = cell / "out" / "l.h5"
    return ["grow", "region", stores["labels"], "--probs", out, "-o", out], [out.name]


def _merge_missing_shard(stores, cell):
    return ["merge", cell / "out" / "p.h5", stores["part0"]], [stores["part0"].name, "shard"]


def _fused_label_out_of_range(stores, cell):
    bad = cell / "label99_labels.h5"
    _nan_inside(stores["labels"], bad)
    return ["grow", "seeds", stores["cams"], bad, "-o", cell / "out" / "l.h5"], [bad.name, stores["first_id"]]


@pytest.mark.parametrize("case", [_kind_edited, _probs_is_output, _merge_missing_shard, _fused_label_out_of_range],
                         ids=lambda f: f.__name__.strip("_"))
def test_named_bad_input(stores, case):
    cell = Path(tempfile.mkdtemp(prefix="cell-", dir=stores["man"].parent.parent))
    try:
        (cell / "out").mkdir()
        argv, names = case(stores, cell)
        r = run_ws_inproc(*argv, expect=None)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode == 2, r
        assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr
        assert all(n in lines[0] for n in names), (names, lines[0])
        assert not list((cell / "out").iterdir()), list((cell / "out").iterdir())
    finally:
        shutil.rmtree(cell, ignore_errors=True)


_READ_IMAGES = ("propose", "cam infer", "cam peaks", "cam train", "predict", "features extract", "features train-mil",
                "dataset check", "grow crf", "icn infer", "icn train", "train-seg", "viz")


@pytest.mark.parametrize("cmd", [pytest.param(c, marks=[pytest.mark.xfail(strict=True, reason=XFAIL[c, "image"])]
                                              if (c, "image") in XFAIL else []) for c in _READ_IMAGES])
def test_a_truncated_image_is_named(stores, cmd):
    """A manifest whose first image file is cut short: one line naming the image, nothing written."""
    spec = SPECS[cmd]
    cell = Path(tempfile.mkdtemp(prefix="cell-", dir=stores["man"].parent.parent))
    try:
        out_dir = cell / "out"
        out_dir.mkdir()
        values = {**stores, "man": stores["truncated_image_man"]}
        out = out_dir / spec["out"] if spec["out"] else None
        argv = [a.format(out=out, **values) if "{" in a else a for a in spec["argv"]]
        r = run_ws_inproc(*argv, expect=None)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode == 2, r
        assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr
        assert stores["first_id"] in lines[0] or "truncated_" in lines[0], lines[0]
        assert not list(out_dir.iterdir()), list(out_dir.iterdir())
    finally:
        shutil.rmtree(cell, ignore_errors=True)
