"""Instance networks (`ws train-seg --task instance --arch maskrcnn_tiny | contour_tiny`) on `ws toy`
data on the CPU: a few hundred iterations, then `ws predict` on the val set scored by `ws eval
instance`. `--arch contour_tiny` is the proposal-free stand-in (tiny U-Net + instance contours).

The training JSON is the toy training set's instance ground truth written in the COCO layout
`ws export-coco` writes (the fully supervised reference a pseudo-label export is compared with);
`--coco FILE` trains on another file instead (e.g. `ws export-coco` output of the same toy
manifest). The baseline in the same run is the network after a single epoch.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/seg_instance.py
    PYTHONPATH=$PWD python benchmarks/seg_instance.py --train 100 --epochs 3
    PYTHONPATH=$PWD python benchmarks/seg_instance.py --init cls.pt --lr 0.002   # backbone from a toy classifier
    PYTHONPATH=$PWD python benchmarks/seg_instance.py --arch contour_tiny --init cls.pt --size 96 --train 120 --val 40
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def ws(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t = time.perf_counter()
    p = subprocess.run(["ws", *map(str, args), "-q"], capture_output=True, text=True, env=env)
    if p.returncode:
        raise RuntimeError(f"ws {' '.join(map(str, args))} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1]), time.perf_counter() - t


def coco_from_gt(manifest_path, out):
    from wstools.io.dataset import load_instances, load_manifest

    m = load_manifest(manifest_path)
    images, anns = [], []
    for rec in m.images:
        images.append({"id": rec.id, "file_name": rec.image, "height": rec.height, "width": rec.width})
        inst = load_instances(m, rec)
        for c, label, crowd in zip(inst.counts, inst.labels, inst.iscrowd):
            anns.append({"id": len(anns) + 1, "image_id": rec.id, "category_id": int(m.category_ids()[int(label) - 1]),
                         "segmentation": {"size": [rec.height, rec.width], "counts": c.decode()},
                         "iscrowd": int(crowd)})
    Path(out).write_text(json.dumps({"images": images, "annotations": anns, "categories": [
        {"id": int(c), "name": n} for c, n in zip(m.category_ids(), m.classes)]}))


def oracle_decoding(manifest_path):
    """AP / AP50 of contour_tiny's decoding (wstools.seg.instance.instances_from_contours) fed
    the ground truth: the GT label map as the softmax, without contours (connected components
    alone) and with the GT instances' contours: the ceiling of the decoding itself."""
    import numpy as np
    import torch

    from wstools.eval.instance import InstanceEvaluator
    from wstools.io.dataset import load_instances, load_manifest, load_semantic
    from wstools import masks as codec
    from wstools.seg.instance import contour_targets, instances_from_contours

    m = load_manifest(manifest_path)
    out = {}
    for name in ("components", "contours"):
        ev = InstanceEvaluator(range(1, m.num_classes + 1))
        for rec in sorted(m.images, key=lambda r: r.id):
            inst = load_instances(m, rec)
            sem = load_semantic(m, rec).astype(np.int64)
            probs = np.eye(m.num_classes + 1, dtype=np.float32)[np.where(sem == 255, 0, sem)].transpose(2, 0, 1)
            contours = np.zeros(sem.shape, np.float32)
            if name == "contours" and len(inst.labels):
                masks = codec.decode(inst.counts, rec.height, rec.width)
                _, con = contour_targets(torch.from_numpy(masks.astype(np.uint8)), torch.as_tensor(inst.labels),
                                         rec.height, rec.width)
                contours = con.numpy()
            pm, pl, ps = instances_from_contours(probs, contours)
            ev.add(inst.counts, inst.labels, pm, pl, ps, gt_crowd=inst.iscrowd, height=rec.height, width=rec.width)
        r = ev.result()["coco"]
        out[name] = (r["AP"], r["AP50"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--val", type=int, default=50)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--coco", default=None)
    ap.add_argument("--lr", default="0.001")
    ap.add_argument("--arch", default="maskrcnn_tiny", choices=["maskrcnn_tiny", "contour_tiny"])
    ap.add_argument("--init", default=None, help="a tiny `ws cam train` classifier whose backbone initialises "
                    "Mask R-CNN's (--init of ws train-seg)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    tmp = Path(a.out or tempfile.mkdtemp(prefix="seg_instance_"))
    tmp.mkdir(parents=True, exist_ok=True)
    th = ["--threads", a.threads, "--device", "cpu"]
    ws("toy", tmp / "toy", "--train", a.train, "--val", a.val, "--size", a.size, "--seed", "0", "--force")
    train, val = tmp / "toy" / "train.json", tmp / "toy" / "val.json"
    coco = a.coco or tmp / "train_coco.json"
    if a.coco is None:
        coco_from_gt(train, coco)
    common = ["--task", "instance", "--coco", coco, "--arch", a.arch, "--min-size", a.size, "--max-size",
              a.size, "--optimizer", "adam", "--lr", a.lr, "--weight-decay", "0", "--batch-size", a.batch,
              "--force", *th] + (["--init", a.init] if a.init else [])
    rows = []
    for epochs in (1, a.epochs):
        s, t_train = ws("train-seg", train, *common, "--epochs", epochs, "-o", tmp / f"m{epochs}.pt")
        p, t_pred = ws("predict", val, "--model", tmp / f"m{epochs}.pt", "-o", tmp / f"r{epochs}.json", "--force", *th)
        ev = ws("eval", "instance", tmp / f"r{epochs}.json", "--gt", val)[0]
        iters = epochs * (a.train // a.batch)
        rows.append({"epochs": epochs, "iterations": iters, "AP": ev["coco"]["AP"], "AP50": ev["coco"]["AP50"],
                     "mAPr50": ev.get("map_r", {}).get("0.5") if isinstance(ev.get("map_r"), dict) else None,
                     "train_s": t_train, "predict_s": t_pred, "detections": p["detections"]})
    print(f"{a.arch} on `ws toy` {a.train} train / {a.val} val images of {a.size} px, batch "
          f"{a.batch}, Adam lr {a.lr}, backbone {'from ' + a.init if a.init else 'random'}, CPU {a.threads} threads; training JSON: {'ground-truth instances' if a.coco is None else a.coco}\n")
    if a.arch == "contour_tiny":
        o = oracle_decoding(val)
        print("contour_tiny's decoding fed the val ground truth (its ceiling): connected components of the GT "
              f"label map AP {o['components'][0]:.3f} / AP50 {o['components'][1]:.3f}; with the GT instance "
              f"contours AP {o['contours'][0]:.3f} / AP50 {o['contours'][1]:.3f}\n")
    print("| epochs | iterations | mask AP | mask AP50 | train s | predict s (val) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['epochs']} | {r['iterations']} | {r['AP']:.3f} | {r['AP50']:.3f} | {r['train_s']:.0f} "
              f"| {r['predict_s']:.0f} |")


if __name__ == "__main__":
    main()
