"""CAM quality on `ws toy` data (default 128 px images) with --arch tiny on the CPU.

Trains the tiny classifier through `ws cam train`, extracts CAMs of the held-out
val images with `ws cam infer`, and reports: training time, val classification
mAP, and the CAM mIoU (background + K classes) at the best background threshold
(a pixel is background when every tagged class's CAM is below the threshold,
else the argmax class), against two trivial baselines measured on the same
images: everything background, and the whole image labelled with the image's
tag (the first tag for multi-tag images).

`ws eval cams` was not on main when this was written, so the threshold sweep is
computed here with a small confusion-matrix helper (same definition: IoU per
class over the whole split, 255 ignored, mean over the K+1 classes).

    python benchmarks/cam_toy.py            # writes into a temporary folder
    python benchmarks/cam_toy.py --train 1000 --epochs 10
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

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wstools.io.dataset import load_manifest, load_semantic  # noqa: E402
from wstools.io.store import image_key  # noqa: E402


def ws(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run(["ws", *map(str, args), "-q"], capture_output=True, text=True, env=env)
    if p.returncode:
        sys.exit(f"ws {' '.join(map(str, args))} failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def confusion(pred, gt, n):
    ok = gt != 255
    return np.bincount(n * gt[ok].astype(np.int64) + pred[ok], minlength=n * n).reshape(n, n)


def miou(conf):
    inter = np.diag(conf).astype(float)
    union = conf.sum(0) + conf.sum(1) - inter
    return float(np.mean(inter[union > 0] / union[union > 0]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=1000, help="training images")
    ap.add_argument("--val", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--out", default=None)
    ap.add_argument("--train-args", default="--arch tiny --optimizer adam --lr 0.002 --head-lr-mult 1 "
                                            "--weight-decay 0 --batch-size 16 --crop 96 --scales 0.75,1.25")
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="cam_toy_"))
    out.mkdir(parents=True, exist_ok=True)
    ws("toy", out / "toy", "--train", a.train, "--val", a.val, "--force")
    t0 = time.perf_counter()
    s = ws("cam", "train", out / "toy/train.json", "--val", out / "toy/val.json", "--epochs", a.epochs,
           "--device", "cpu", *a.train_args.split(), "-o", out / "cls.pt", "--force")
    train_s = time.perf_counter() - t0
    ws("cam", "infer", out / "toy/val.json", "--model", out / "cls.pt", "--device", "cpu", "-o", out / "cams.h5",
       "--force")
    m = load_manifest(out / "toy/val.json")
    n = m.num_classes + 1
    thresholds = np.round(np.arange(0.05, 1.0, 0.05), 2)
    confs = np.zeros((len(thresholds), n, n), np.int64)
    conf_bg = np.zeros((n, n), np.int64)
    conf_whole = np.zeros((n, n), np.int64)
    with h5py.File(out / "cams.h5", "r") as f:
        for rec in m.images:
            gt = load_semantic(m, rec)
            g = f["images"][image_key(rec.id)]
            cams, labels = g["cams"][()].astype(np.float32), g["labels"][()]
            conf_bg += confusion(np.zeros_like(gt, dtype=np.int64), gt, n)
            whole = np.full(gt.shape, labels[0] if len(labels) else 0, np.int64)
            conf_whole += confusion(whole, gt, n)
            for i, t in enumerate(thresholds):
                stack = np.concatenate([np.full((1,) + gt.shape, t, np.float32), cams], 0)
                pred = np.concatenate([[0], labels])[stack.argmax(0)]
                confs[i] += confusion(pred, gt, n)
    scores = [miou(c) for c in confs]
    best = int(np.argmax(scores))
    print(f"toy: {a.train} train / {a.val} val images of 128 px, {m.num_classes} classes; "
          f"`ws cam train {a.train_args} --epochs {a.epochs}` on the CPU ({os.cpu_count()} cores)\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| training time | {train_s:.0f} s |")
    print(f"| val classification mAP | {s['metrics']['val_map']:.3f} |")
    print(f"| CAM mIoU, best background threshold ({thresholds[best]:.2f}) | {scores[best]:.3f} |")
    print(f"| baseline: all background | {miou(conf_bg):.3f} |")
    print(f"| baseline: whole image = tagged class | {miou(conf_whole):.3f} |")
    print("\nmIoU by threshold: " + ", ".join(f"{t:.2f}: {v:.3f}" for t, v in zip(thresholds, scores)))


if __name__ == "__main__":
    main()
