"""Speed of `ws eval`'s metrics against baselines measured in the same run.

1. Semantic: the VOC confusion matrix of 1,449 label maps of 500x375 (the size of
   PASCAL VOC 2012 val), K=20, with wstools.eval.semantic.confusion (one bincount
   per image) against a per-class boolean-mask loop (the textbook implementation).
   Target: under 15 s on one core.
2. Instance: wstools.eval.instance.InstanceEvaluator against pycocotools' COCOeval
   (segm; evaluate + accumulate + summarize) on the same random masks, with the
   largest difference of the 12 summary numbers (must be 0 up to 1e-9).

    python benchmarks/eval_speed.py            # full sizes
    python benchmarks/eval_speed.py --quick    # small sizes, a smoke run
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
warnings.filterwarnings("ignore", category=DeprecationWarning)

from coco_oracle import coco_eval, random_case  # noqa: E402

from wstools.eval.instance import InstanceEvaluator  # noqa: E402
from wstools.eval.semantic import confusion  # noqa: E402


def _label_maps(rng, count, h, w, k):
    """Blocky random label maps (regions of 25x25 px) with a 255 band, like VOC's."""
    maps = []
    for _ in range(count):
        small = rng.integers(0, k + 1, (h // 25 + 1, w // 25 + 1)).astype(np.uint8)
        m = np.kron(small, np.ones((25, 25), np.uint8))[:h, :w].copy()
        m[::40] = 255
        maps.append(m)
    return maps


def naive_confusion(gt, pred, k):
    n = k + 1
    c = np.zeros((n, n), np.int64)
    valid = gt != 255
    for i in range(n):
        gi = (gt == i) & valid
        for j in range(n):
            c[i, j] = np.count_nonzero(gi & (pred == j))
    return c


def bench_semantic(n_images, naive_images, h=375, w=500, k=20):
    rng = np.random.default_rng(0)
    pool = 40
    gts = _label_maps(rng, pool, h, w, k)
    preds = _label_maps(rng, pool, h, w, k)
    t0 = time.perf_counter()
    total = np.zeros((k + 1, k + 1), np.int64)
    for i in range(n_images):
        total += confusion(gts[i % pool], preds[i % pool], k)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = np.zeros_like(total)
    for i in range(naive_images):
        ref += naive_confusion(gts[i % pool], preds[i % pool], k)
    naive = (time.perf_counter() - t0) * n_images / naive_images
    check = sum(confusion(gts[i % pool], preds[i % pool], k) for i in range(naive_images))
    assert (check == ref).all()
    return ours, naive


def bench_instance(n_images):
    rng = np.random.default_rng(0)
    images = random_case(rng, n_images=n_images, size=(240, 320), n_cats=5, max_gt=6, max_dt=30)
    t0 = time.perf_counter()
    ref = coco_eval(images, [1, 2, 3, 4, 5])
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    ev = InstanceEvaluator([1, 2, 3, 4, 5])
    for im in images:
        ev.add(im["gt_masks"], im["gt_labels"], im["dt_masks"], im["dt_labels"], im["dt_scores"],
               gt_crowd=im["gt_crowd"])
    stats, _ = ev.coco_stats()
    ev.mapr()
    t_ours = time.perf_counter() - t0
    diff = float(np.max(np.abs(np.array(list(stats.values())) - ref.stats)))
    n_dt = sum(len(im["dt_labels"]) for im in images)
    return t_ours, t_ref, diff, n_dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = ap.parse_args()
    n_sem, n_naive, n_inst = (100, 5, 30) if args.quick else (1449, 40, 300)
    ours, naive = bench_semantic(n_sem, n_naive)
    t_ours, t_ref, diff, n_dt = bench_instance(n_inst)
    print("| task | ws eval | baseline | baseline time | speed-up | check |")
    print("|---|---|---|---|---|---|")
    print(f"| semantic confusion, {n_sem} maps 500x375, K=20 | {ours:.2f} s | per-class boolean loop "
          f"(timed on {n_naive} maps, scaled) | {naive:.2f} s | {naive / ours:.1f}x | target < 15 s: "
          f"{'met' if ours < 15 else 'MISSED'} |")
    print(f"| COCO mask AP + mAP^r + ABO, {n_inst} images 320x240, {n_dt} detections | {t_ours:.2f} s | "
          f"pycocotools COCOeval (AP only) | {t_ref:.2f} s | {t_ref / t_ours:.2f}x | max |diff| of the 12 "
          f"stats = {diff:.1e} |")


if __name__ == "__main__":
    main()
