"""Semantic segmentation on `ws toy` data with the tiny network on the CPU: the fully supervised
upper bound (ground-truth labels) against training on pseudo labels, and an ablation with one
row per option of DSRG / Sun et al. (the direction of DSRG Table 2 and Sun et al. Table 1).

Pipeline (every step a `ws` command): `ws toy` -> `ws cam train` (tiny colour classifier)
-> `ws cam infer --background features` on the training set -> cues (Sun et al. Sect. 3.3:
foreground = CAM above 30 % of its maximum, background = normalised top-layer features below
0.2, conflicts unlabelled; written by this script as a `labels` store; --fg sets the
foreground fraction) and dense CAM labels (argmax of the CAMs against a flat background score) -> `ws train-seg` -> `ws predict`
on the val set -> `ws eval semantic`. The ratio column is each row's val mIoU over the
upper bound's, measured in the same run.

Rows that need `wstools.grow` (seeded region growing) or the dense CRF (the `[crf]` extra,
pydensecrf2) are reported as "n/a" where those are not installed.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/seg_toy.py
    PYTHONPATH=$PWD python benchmarks/seg_toy.py --train 200 --epochs 5     # quicker

The segmentation network is SEG_FLAGS below (the toy setting proposed for examples.sh).
``--tradeoff`` prints, before the main table, the supervised upper bound (ground-truth labels)
of each ``ARCH:EPOCHS[:IMAGES]`` with its training seconds, trained on the first IMAGES training
images: the cost / quality trade-off behind that choice, and how much the ceiling owes to the
size of the training set. ``--init cls.pt`` takes a `ws cam train` classifier instead of training one (the
examples.sh setting: a tiny classifier from its own 4000-image toy set, ``--recipe toy``), and
initialises every segmentation network from it; ``--only-tradeoff`` stops after that table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


# the toy segmentation setting proposed for examples.sh (SEG=...), chosen with --tradeoff
SEG_FLAGS = ["--arch", "tiny", "--optimizer", "adam", "--lr", "0.001", "--head-lr-mult", "3",
             "--scales", "0.75,1.25", "--loss-at", "input", "--batch-size", "8"]


def ws(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t = time.perf_counter()
    p = subprocess.run(["ws", *map(str, args), "-q"], capture_output=True, text=True, env=env)
    if p.returncode:
        raise RuntimeError(f"ws {' '.join(map(str, args))} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1]), time.perf_counter() - t


def child_cpu_seconds():
    """CPU seconds (user + system) of the finished `ws` processes so far: on a shared machine a
    fairer cost than wall time."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def write_cues(cams_path, manifest_path, seeds_path, dense_path, fg=0.3, bg=0.8, dense_bg=0.3):
    """Sun et al.'s cues (foreground > 30 % of max, background where the feature-based
    background map > 0.8, i.e. normalised features < 0.2) and dense CAM labels."""
    from wstools.io.cams import read_cam_group
    from wstools.io.dataset import load_manifest
    from wstools.io.labels import write_labels_group
    from wstools.io.store import create_store, open_store

    m = load_manifest(manifest_path)
    stats = {"seed_fraction": 0.0}
    with open_store(cams_path, "cams") as cams, \
            create_store(seeds_path, "labels", classes=m.classes, params={"fg": fg, "bg": bg}, dataset=m,
                         force=True) as seeds, \
            create_store(dense_path, "labels", classes=m.classes, params={"bg": dense_bg}, dataset=m,
                         force=True) as dense:
        for rec in m.images:
            g = read_cam_group(cams.image(rec.id))
            c, labels, bgm = g["cams"], np.asarray(g["labels"], np.int64), g["background"]
            h, w = rec.height, rec.width
            s = np.full((h, w), 255, np.uint8)
            if len(labels):
                best = c.argmax(0)
                top = c.max(0)
                s[top > fg] = labels[best][top > fg]
                d = np.where(top > dense_bg, labels[best], 0).astype(np.uint8)
            else:
                top = np.zeros((h, w), np.float32)
                d = np.zeros((h, w), np.uint8)
            isbg = bgm > bg if bgm is not None else np.zeros((h, w), bool)
            s[isbg & (top > fg)] = 255
            s[isbg & ~(top > fg)] = 0
            stats["seed_fraction"] += float((s != 255).mean()) / len(m.images)
            with seeds.write_image(rec.id) as grp:
                write_labels_group(grp, s)
            with dense.write_image(rec.id) as grp:
                write_labels_group(grp, d)
    return stats


def first_images(manifest_path, n):
    """``manifest_path`` itself, or a manifest of its first ``n`` images written beside it (so the
    images' relative paths still resolve): the same images, fewer of them."""
    m = json.loads(Path(manifest_path).read_text())
    if n >= len(m["images"]):
        return manifest_path
    m["images"], m["name"] = m["images"][:n], f"{m.get('name', 'train')}-first{n}"
    out = Path(manifest_path).with_name(f"{Path(manifest_path).stem}_first{n}.json")
    out.write_text(json.dumps(m, indent=1))
    return out


def available(module):
    try:
        __import__(module)
    except Exception:
        return False
    return True


def crf_available():
    try:
        from wstools.grow.crf import require_crf

        require_crf()
        return True
    except Exception:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--val", type=int, default=100)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--cls-epochs", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--fg", type=float, default=0.7, help="foreground cue: CAM above this fraction of its max "
                    "(Sun et al.: 0.3 for their other-class-subtracted CAMs; ~ the best CAM threshold of ws eval cams)")
    ap.add_argument("--bg", type=float, default=0.8, help="background cue: feature-based background map above this "
                    "(Sun et al.: normalised features below 0.2)")
    ap.add_argument("--dense-bg", type=float, default=0.65, help="flat background score of the dense CAM labels "
                    "(the best threshold of benchmarks/cam_toy.py)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the other core is shared)")
    ap.add_argument("--init", default=None, help="a `ws cam train` classifier: used for the CAMs and --init of "
                    "every segmentation network instead of training one on the train set")
    ap.add_argument("--tradeoff", default="", help="comma-separated ARCH:EPOCHS[:IMAGES[:AUGMENT]] whose upper "
                    "bound (ground-truth labels, trained on the first IMAGES training images, default all; AUGMENT: "
                    "train-seg --augment values joined by +) is measured first, with its mIoU on those training "
                    "images, e.g. tiny:27:120,tiny:8:2000,tiny:100:120:rot90+channels")
    ap.add_argument("--only-tradeoff", action="store_true", help="stop after the trade-off table")
    ap.add_argument("--out", default=None, help="working folder (default: a temporary one)")
    a = ap.parse_args()
    tmp = Path(a.out or tempfile.mkdtemp(prefix="seg_toy_"))
    tmp.mkdir(parents=True, exist_ok=True)
    th = ["--threads", a.threads, "--device", "cpu"]
    ws("toy", tmp / "toy", "--train", a.train, "--val", a.val, "--size", a.size, "--seed", "0", "--force")
    train, val = tmp / "toy" / "train.json", tmp / "toy" / "val.json"
    if a.init:
        cls_pt, t_cls = Path(a.init), 0.0
    else:
        cls_pt = tmp / "cls.pt"
        _, t_cls = ws("cam", "train", train, "--arch", "tiny", "--optimizer", "adam", "--lr", "0.002",
                      "--head-lr-mult", "1", "--weight-decay", "0", "--crop", a.size, "--scales", "1,1",
                      "--batch-size", "16", "--epochs", a.cls_epochs, "-o", cls_pt, "--force", *th)
    init = ["--init", cls_pt]      # as examples.sh: every segmentation network starts from the classifier
    tradeoff = []
    for spec in filter(None, a.tradeoff.split(",")):
        arch, epochs, *rest = spec.split(":")
        images = int(rest[0]) if rest and rest[0] else a.train
        augment = [x for x in (rest[1] if len(rest) > 1 else "").split("+") if x]
        subset = first_images(train, images)
        flags = list(SEG_FLAGS) + [f for x in augment for f in ("--augment", x)]
        flags[flags.index("--arch") + 1] = arch
        ckpt = tmp / f"tradeoff_{arch}_{epochs}_{images}_{'+'.join(augment) or 'none'}.pt"
        cpu0 = child_cpu_seconds()
        _, t_train = ws("train-seg", subset, "--labels", train.parent / "semantic", *flags, "--crop", a.size,
                        "--epochs", epochs, *init, "--force", *th, "-o", ckpt)
        cpu_train = child_cpu_seconds() - cpu0
        scores = []
        for manifest in (subset, val):
            ws("predict", manifest, "--model", ckpt, "-o", tmp / "tradeoff.h5", "--force", *th)
            scores.append(ws("eval", "semantic", tmp / "tradeoff.h5", "--gt", manifest)[0]["miou"])
        tradeoff.append((arch, "+".join(augment) or "-", int(epochs), images, *scores, t_train, cpu_train))
    if tradeoff:
        print(f"supervised upper bound (ground-truth labels) by network, epochs and training images: `ws toy` "
              f"{a.val} val images of {a.size} px, {' '.join(map(str, SEG_FLAGS[2:]))} --crop {a.size}"
              f" --init {cls_pt}, CPU {a.threads} threads\n")
        print("| network | --augment | training images | epochs | optimizer steps | train mIoU (those images) "
              "| val mIoU | train-seg seconds (wall) | CPU seconds |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        batch = int(SEG_FLAGS[SEG_FLAGS.index("--batch-size") + 1])
        for arch, augment, epochs, images, train_miou, miou, t_train, cpu_train in tradeoff:
            steps = -(-images // batch) * epochs
            print(f"| {arch} | {augment} | {images} | {epochs} | {steps} | {train_miou:.3f} | {miou:.3f} "
                  f"| {t_train:.0f} | {cpu_train:.0f} |")
        print()
    if a.only_tradeoff:
        return
    ws("cam", "infer", train, "--model", cls_pt, "--scales", "1.0", "--background", "features",
       "-o", tmp / "cams.h5", "--force", *th)
    stats = write_cues(tmp / "cams.h5", train, tmp / "seeds.h5", tmp / "dense.h5", a.fg, a.bg, a.dense_bg)
    cues_miou = ws("eval", "semantic", tmp / "seeds.h5", "--gt", train, "--unlabeled", "ignore")[0]["miou"]
    dense_miou = ws("eval", "semantic", tmp / "dense.h5", "--gt", train)[0]["miou"]

    seg = [*SEG_FLAGS, "--crop", a.size, "--epochs", a.epochs, *init, "--force", *th]
    rows = []

    def row(name, labels, extra=(), predict_extra=(), model=None, needs=None):
        if needs is not None and not needs:
            rows.append({"row": name, "miou": None, "seconds": None})
            return None
        t0 = time.perf_counter()
        ckpt = model or tmp / f"{len(rows)}.pt"
        if model is None:
            ws("train-seg", train, "--labels", labels, *seg, *extra, "-o", ckpt)
        ws("predict", val, "--model", ckpt, "-o", tmp / f"pred{len(rows)}.h5", "--force", *th, *predict_extra)
        ev = ws("eval", "semantic", tmp / f"pred{len(rows)}.h5", "--gt", val)[0]
        rows.append({"row": name, "miou": ev["miou"], "seconds": time.perf_counter() - t0})
        return ckpt

    row("ground-truth labels, cross-entropy (upper bound)", toy_gt := train.parent / "semantic")
    row("dense CAM labels, cross-entropy", tmp / "dense.h5")
    row("cues, SEC seeding loss (baseline)", tmp / "seeds.h5", ["--loss", "seed"])
    bsl = row("cues, balanced seeding loss (DSRG Eq. 1)", tmp / "seeds.h5", ["--loss", "balanced-seed"])
    grow_ok = available("wstools.grow")
    row("+ --grow (DSRG dynamic supervision)", tmp / "seeds.h5", ["--loss", "balanced-seed", "--grow"],
        needs=grow_ok)
    crf_ok = crf_available()
    row("+ boundary loss (SEC / Sun et al. Eq. 4)", tmp / "seeds.h5",
        ["--loss", "balanced-seed", "--boundary-weight", "1"], needs=crf_ok)
    row("balanced seeding + amended testing (Sun et al. 3.5)", None, model=bsl,
        predict_extra=["--classifier", cls_pt])
    row("balanced seeding + CRF at test time", None, model=bsl, predict_extra=["--crf"], needs=crf_ok)
    row("balanced seeding + multi-scale + flip", None, model=bsl, predict_extra=["--scales", "0.75,1,1.25", "--flip"])

    up = rows[0]["miou"]
    print(f"`ws toy` {a.train} train / {a.val} val images of {a.size} px; "
          + (f"classifier {a.init}" if a.init else f"tiny classifier {a.cls_epochs} epochs (val-free; {t_cls:.0f} s)")
          + f", segmentation network {' '.join(map(str, SEG_FLAGS))} {a.epochs} epochs"
          + f" --init (the classifier), CPU {a.threads} threads")
    print(f"cues: fg CAM > {a.fg}, bg feature map > {a.bg}; dense labels: CAM argmax vs flat bg {a.dense_bg}")
    print(f"cues: {stats['seed_fraction']:.1%} of pixels labelled, cue mIoU (unlabelled ignored) {cues_miou:.3f}; "
          f"dense CAM labels mIoU {dense_miou:.3f} (training set)\n")
    print("| training | val mIoU | ratio to upper bound | seconds |")
    print("|---|---:|---:|---:|")
    for r in rows:
        if r["miou"] is None:
            print(f"| {r['row']} | n/a | n/a | n/a |")
        else:
            print(f"| {r['row']} | {r['miou']:.3f} | {r['miou'] / up:.3f} | {r['seconds']:.0f} |")
    print(f"\n(wstools.grow available: {grow_ok}; dense CRF available: {crf_ok})")
    del toy_gt


if __name__ == "__main__":
    main()
