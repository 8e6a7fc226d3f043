"""Proposal quality and speed: `ws propose --method hierarchy` against OpenCV contrib's selective search.

Baseline, measured in the same run on the same images: OpenCV contrib's
``createSelectiveSearchSegmentation`` in fast mode (boxes only, its own ranking).
Ground truth: the toy manifest's ``objects`` PNGs (every object, distractors
included: proposals are class-agnostic). Metrics: box recall at IoU 0.5 / 0.7 and
box ABO (average best overlap, Uijlings et al. 2013) with the first N proposals;
mask ABO of our masks, and of selective search's boxes taken as filled
rectangles (what a box-only method can offer as a mask).

Timing: one core (OpenCV threads off), per image at 500x375 on scikit-image's
photographs (astronaut, coffee, chelsea, rocket, immunohistochemistry) and on
the toy images.

    python benchmarks/proposals.py --images 50 --size 128 --no-speed
    python benchmarks/proposals.py --images 20 --size 375

Both methods rank at random (Uijlings et al. Sec. 4.1; OpenCV's generator cannot be seeded from
Python), so the quality table averages ``--runs`` runs of each per image.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wstools import masks as mask_io  # noqa: E402
from wstools.io.dataset import load_manifest  # noqa: E402
from wstools.io.images import read_label_png  # noqa: E402
from wstools.proposals.hierarchy import hierarchy_proposals  # noqa: E402
from wstools.io.toy import write_dataset  # noqa: E402

NS = (10, 20, 50, 100, 500)


def selective_search_boxes(image: np.ndarray) -> np.ndarray:
    """OpenCV contrib selective search, fast mode: (N, 4) float xyxy (x1, y1 exclusive), its ranking."""
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(np.ascontiguousarray(image[..., ::-1]))
    ss.switchToSelectiveSearchFast()
    xywh = ss.process().astype(np.float64).reshape(-1, 4)
    xywh[:, 2:] += xywh[:, :2]
    return xywh


def box_masks(boxes: np.ndarray, height: int, width: int) -> list:
    """Filled rectangles of boxes as RLE counts (a box-only method's best mask)."""
    from pycocotools import mask as mu

    if len(boxes) == 0:
        return []
    xywh = np.asarray(boxes, dtype=np.float64).copy()
    xywh[:, 2:] -= xywh[:, :2]
    return [r["counts"] for r in mu.frPyObjects(xywh, height, width)]


def best_overlaps(gt_counts, prop_counts, prop_boxes, h, w):
    """(G, len(NS)) best mask and box IoU with the first n proposals."""
    try:
        from wstools.eval.proposals import best_overlaps as lib  # `ws eval proposals`' library
    except ImportError:
        lib = None
    if lib is not None:
        r = lib(gt_counts, prop_counts, proposal_boxes=prop_boxes, height=h, width=w, ns=NS)
        return r["mask"], r["box"]
    import torch
    from torchvision.ops import box_iou

    m = mask_io.iou(gt_counts, prop_counts, h, w)
    gb = mask_io.boxes(gt_counts, h, w)
    b = box_iou(torch.as_tensor(gb, dtype=torch.float64),
                torch.as_tensor(np.asarray(prop_boxes, np.float64).reshape(-1, 4))).numpy()

    def by_n(iou):
        out = np.zeros((iou.shape[0], len(NS)))
        if iou.shape[1]:
            run = np.maximum.accumulate(iou, axis=1)
            for k, n in enumerate(NS):
                out[:, k] = run[:, min(n, iou.shape[1]) - 1]
        return out
    return by_n(m), by_n(b)


def quality(manifest_path, limit, repeats=1, **options):
    """Box/mask overlaps of both methods on the first ``limit`` images. Both rank at random (selective
    search's OpenCV ranking draws from an unseeded generator), so each is run ``repeats`` times per
    image (hierarchy with ``--seed`` 0..repeats-1) and the metrics are averaged over the runs."""
    man = load_manifest(manifest_path)
    names = ("hierarchy", "selective search (fast)")
    rows = {name: [[] for _ in range(repeats)] for name in names}
    times = {name: [] for name in names}
    counts_n = {name: [] for name in names}
    n_obj = 0
    for rec in man.images[:limit]:
        img = man.read_image(rec)
        h, w = img.shape[:2]
        obj = read_label_png(man.resolve(rec.extra["objects"]))
        ids = [i for i in np.unique(obj) if i not in (0, 255)]
        gt = mask_io.encode(np.stack([obj == i for i in ids])) if ids else []
        n_obj += len(ids)
        for r in range(repeats):
            t = time.perf_counter()
            boxes, _, counts = hierarchy_proposals(img, max_proposals=max(NS), seed=r, **options)
            times["hierarchy"].append(time.perf_counter() - t)
            t = time.perf_counter()
            ssb = selective_search_boxes(img)[:max(NS)]
            times["selective search (fast)"].append(time.perf_counter() - t)
            for name, (pc, pb) in (("hierarchy", (counts, boxes)),
                                   ("selective search (fast)", (box_masks(ssb, h, w), ssb))):
                rows[name][r].append(best_overlaps(gt, pc, pb, h, w))
                counts_n[name].append(len(pb))
    table = ["| method | N | box recall@0.5 | box recall@0.7 | box ABO | mask ABO |", "|---|---|---|---|---|---|"]
    for name in names:
        stats = []
        for run in rows[name]:
            mm, bb = np.concatenate([x[0] for x in run]), np.concatenate([x[1] for x in run])
            stats.append(np.stack([(bb >= 0.5).mean(0), (bb >= 0.7).mean(0), bb.mean(0), mm.mean(0)]))
        stats = np.mean(stats, axis=0)      # (4, len(NS)), averaged over the runs
        for k, n in enumerate(NS):
            mask_note = "" if name == "hierarchy" else " (boxes as masks)"
            table.append(f"| {name} | {n} | {stats[0, k]:.3f} | {stats[1, k]:.3f} | {stats[2, k]:.3f} | "
                         f"{stats[3, k]:.3f}{mask_note} |")
    info = (f"{min(limit, len(man.images))} images, {n_obj} objects, {repeats} runs of each method's random "
            f"ranking averaged; proposals per image: hierarchy {np.mean(counts_n['hierarchy']):.0f}, selective search "
            f"{np.mean(counts_n['selective search (fast)']):.0f} (both cut at {max(NS)}); seconds per image: "
            f"hierarchy {statistics.median(times['hierarchy']):.3f}, selective search "
            f"{statistics.median(times['selective search (fast)']):.3f} (medians)")
    return table, info


def saliency_quality(manifest_path, limit):
    """`--method saliency` on toy val: instance recall over every object (distractors included) and
    precision against the target-class instances, both at mask IoU >= 0.5."""
    from wstools.proposals.saliency import saliency_proposals

    man = load_manifest(manifest_path)
    hit_obj = n_obj = hit_prop = n_prop = 0
    for rec in man.images[:limit]:
        img = man.read_image(rec)
        h, w = img.shape[:2]
        _, _, counts = saliency_proposals(img)
        obj = read_label_png(man.resolve(rec.extra["objects"]))
        inst = read_label_png(man.resolve(rec.instances))
        objs = [obj == i for i in np.unique(obj) if i not in (0, 255)]
        tgts = [inst == i for i in np.unique(inst) if i not in (0, 255)]
        n_obj += len(objs)
        n_prop += len(counts)
        if counts and objs:
            hit_obj += int((mask_io.iou(mask_io.encode(np.stack(objs)), counts, h, w).max(1) >= 0.5).sum())
        if counts and tgts:
            hit_prop += int((mask_io.iou(mask_io.encode(np.stack(tgts)), counts, h, w).max(0) >= 0.5).sum())
    return (f"| saliency | {min(limit, len(man.images))} | {n_obj} | {n_prop / max(min(limit, len(man.images)), 1):.1f} | "
            f"{hit_obj / max(n_obj, 1):.3f} | {hit_prop / max(n_prop, 1):.3f} |")


def speed(repeats):
    from skimage import data

    table = ["| image (500x375) | hierarchy with 500 masks, s | selective search fast, s | ratio |", "|---|---|---|---|"]
    ratios = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"):
        img = getattr(data, name)()
        if img.ndim == 2:
            img = np.stack([img] * 3, -1)
        img = cv2.resize(img[..., :3], (500, 375), interpolation=cv2.INTER_AREA)
        th, ts = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            hierarchy_proposals(img, max_proposals=500)
            th.append(time.perf_counter() - t)
            t = time.perf_counter()
            selective_search_boxes(img)
            ts.append(time.perf_counter() - t)
        a, b = min(th), min(ts)
        ratios.append(a / b)
        table.append(f"| {name} | {a:.3f} | {b:.3f} | {a / b:.2f} |")
    table.append(f"| geometric mean ratio | | | {float(np.exp(np.mean(np.log(ratios)))):.2f} |")
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=50, help="toy val images")
    ap.add_argument("--size", type=int, default=128, help="toy image side")
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats per photograph (min is reported)")
    ap.add_argument("--runs", type=int, default=5,
                    help="quality: runs of each method's random ranking per image, averaged (hierarchy seeds 0..runs-1)")
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as d:
        write_dataset(d, "val", args.images, size=args.size, seed=0)
        table, info = quality(Path(d) / "val.json", args.images, repeats=args.runs)
        sal = saliency_quality(Path(d) / "val.json", args.images)
    print(f"### Quality on `ws toy` val, {args.size} px\n")
    print("\n".join(table))
    print(f"\n{info}\n")
    print("### Salient instances (mask IoU >= 0.5)\n")
    print("| method | images | objects | proposals per image | recall (all objects) | precision (target instances) |")
    print("|---|---|---|---|---|---|")
    print(sal + "\n")
    if not args.no_speed:
        print("### Speed on one core, scikit-image photographs resized to 500x375\n")
        print("\n".join(speed(args.repeats)))


if __name__ == "__main__":
    main()
