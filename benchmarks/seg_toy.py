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


def ws(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t = time.perf_counter()
    p = subprocess.run(["ws", *map(str, args), "-q"], capture_output=True, text=True, env=env)
    if p.returncode:
        raise RuntimeError(f"ws {' '.join(map(str, args))} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1]), time.perf_counter() - t


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
    ap.add_argument("--out", default=None, help="working folder (default: a temporary one)")
    a = ap.parse_args()
    tmp = Path(a.out or tempfile.mkdtemp(prefix="seg_toy_"))
    tmp.mkdir(parents=True, exist_ok=True)
    th = ["--threads", a.threads, "--device", "cpu"]
    ws("toy", tmp / "toy", "--train", a.train, "--val", a.val, "--size", a.size, "--seed", "0", "--force")
    train, val = tmp / "toy" / "train.json", tmp / "toy" / "val.json"
    cls, t_cls = ws("cam", "train", train, "--arch", "tiny", "--optimizer", "adam", "--lr", "0.002",
                    "--head-lr-mult", "1", "--weight-decay", "0", "--crop", a.size, "--scales", "1,1",
                    "--batch-size", "16", "--epochs", a.cls_epochs, "-o", tmp / "cls.pt", "--force", *th)
    ws("cam", "infer", train, "--model", tmp / "cls.pt", "--scales", "1.0", "--background", "features",
       "-o", tmp / "cams.h5", "--force", *th)
    stats = write_cues(tmp / "cams.h5", train, tmp / "seeds.h5", tmp / "dense.h5", a.fg, a.bg, a.dense_bg)
    cues_miou = ws("eval", "semantic", tmp / "seeds.h5", "--gt", train, "--unlabeled", "ignore")[0]["miou"]
    dense_miou = ws("eval", "semantic", tmp / "dense.h5", "--gt", train)[0]["miou"]

    seg = ["--arch", "tiny", "--optimizer", "adam", "--lr", "0.003", "--crop", a.size, "--scales", "0.75,1.25",
           "--loss-at", "input", "--batch-size", "16", "--epochs", a.epochs, "--force", *th]
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
        predict_extra=["--classifier", tmp / "cls.pt"])
    row("balanced seeding + CRF at test time", None, model=bsl, predict_extra=["--crf"], needs=crf_ok)
    row("balanced seeding + multi-scale + flip", None, model=bsl, predict_extra=["--scales", "0.75,1,1.25", "--flip"])

    up = rows[0]["miou"]
    print(f"`ws toy` {a.train} train / {a.val} val images of {a.size} px; tiny classifier {a.cls_epochs} epochs "
          f"(val-free; {t_cls:.0f} s), tiny segmentation network {a.epochs} epochs, CPU {a.threads} threads")
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
