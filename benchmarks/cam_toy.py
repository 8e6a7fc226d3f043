"""CAM quality on `ws toy` data (64 px images) with `ws cam train --recipe toy` on the CPU.

Trains the tiny residual classifier through `ws cam train`, extracts CAMs of the held-out
val images with `ws cam infer`, and scores them with `ws eval cams`: training time (wall
clock and CPU seconds of the training process), val classification mAP, and the CAM mIoU
(background + K classes) at the best background threshold (IRN's sweep), against two trivial
baselines written as `cams` stores and scored the same way: everything background, and the
whole image labelled with the image's tag (the first tag for multi-tag images).

    OMP_NUM_THREADS=1 python benchmarks/cam_toy.py                 # --recipe toy, 6000 images, 5 epochs
    OMP_NUM_THREADS=1 python benchmarks/cam_toy.py --train 3000 --epochs 3 \
        --train-args "--recipe toy --batch-size 32 --threads 1"

On a machine shared with other jobs the wall clock overstates the cost: the CPU time of the
training process (user + system) is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wstools.io.cams import write_cam_group  # noqa: E402
from wstools.io.dataset import load_manifest  # noqa: E402
from wstools.io.store import create_store  # noqa: E402


def ws(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run(["ws", *map(str, args), "-q"], capture_output=True, text=True, env=env)
    if p.returncode:
        sys.exit(f"ws {' '.join(map(str, args))} failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=6000, help="training images")
    ap.add_argument("--val", type=int, default=50)
    ap.add_argument("--size", type=int, default=64, help="image side of the toy data (px)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--train-args", default="--recipe toy --threads 1")
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="cam_toy_"))
    out.mkdir(parents=True, exist_ok=True)
    ws("toy", out / "toy", "--train", a.train, "--val", a.val, "--size", a.size, "--seed", 1, "--force")
    t0, c0 = time.perf_counter(), _child_cpu()
    epochs = ["--epochs", a.epochs] if a.epochs else []
    s = ws("cam", "train", out / "toy/train.json", "--val", out / "toy/val.json", *epochs,
           "--device", "cpu", *a.train_args.split(), "-o", out / "cls.pt", "--force")
    train_s, train_cpu = time.perf_counter() - t0, _child_cpu() - c0
    ws("cam", "infer", out / "toy/val.json", "--model", out / "cls.pt", "--device", "cpu", "-o", out / "cams.h5",
       "--force")
    write_baselines(out / "toy/val.json", out)
    ev = {name: ws("eval", "cams", out / f"{name}.h5", "--gt", out / "toy/val.json")
          for name in ("cams", "all_background", "whole_image")}
    print(f"toy: {a.train} train / {a.val} val images of {a.size} px, 5 classes; "
          f"`ws cam train {a.train_args}{' --epochs %d' % a.epochs if a.epochs else ''}` on the CPU ({os.cpu_count()} cores, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}); "
          "CAMs of the val images, `ws cam infer` defaults (4 scales + flip), scored by `ws eval cams`\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| training time: wall clock | {train_s:.0f} s |")
    print(f"| training time: CPU (user + system) | {train_cpu:.0f} s |")
    print(f"| epochs x images | {s['epochs']} x {s['images']} |")
    print(f"| val classification mAP (training log, last epoch) | {s['metrics']['val_map']:.3f} |")
    print(f"| val classification mAP (`ws eval cams`, 4 scales + flip) | {ev['cams']['classification_map']:.3f} |")
    print(f"| CAM mIoU at the best background threshold ({ev['cams']['best_threshold']:.2f}) | "
          f"{ev['cams']['best_miou']:.3f} |")
    print(f"| baseline: all background | {ev['all_background']['best_miou']:.3f} |")
    print(f"| baseline: whole image = tagged class | {ev['whole_image']['best_miou']:.3f} |")
    print("\nmIoU by threshold: " + ", ".join(f"{r['threshold']:.2f}: {r['miou']:.3f}" for r in ev["cams"]["sweep"]))


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def write_baselines(manifest_path, out):
    """Two trivial `cams` stores: zero maps (every pixel background at any threshold) and maps of
    ones for every tag (the whole image labelled with its first tag)."""
    m = load_manifest(manifest_path)
    for name, value in (("all_background", 0.0), ("whole_image", 1.0)):
        with create_store(out / f"{name}.h5", "cams", classes=m.classes, params={"baseline": name}, dataset=m,
                          force=True) as store:
            for rec in m.images:
                labels = m.tag_labels(rec)
                with store.write_image(rec.id) as g:
                    write_cam_group(g, np.full((len(labels), rec.height, rec.width), value, np.float32), labels,
                                    m.tag_vector(rec))


if __name__ == "__main__":
    main()
