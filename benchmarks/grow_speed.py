"""Speed of DSRG seeded region growing (vectorised vs per-pixel BFS) and of the dense CRF.

Run: OMP_NUM_THREADS=1 python benchmarks/grow_speed.py [--repeats 5]
Prints a markdown table; the BFS baseline is measured in the same run.
"""

import argparse
import time
from collections import deque

import numpy as np

from wstools.grow import seeded_region_growing
from wstools.grow.crf import dense_crf


def bfs_grow(probs, seeds, present, theta_fg=0.85, theta_bg=0.99):
    """Plain per-pixel breadth-first DSRG growth (baseline): class c's mask holds the pixels confidently
    c (argmax above its threshold) and the seeds of c that are not confidently another class."""
    c_, h, w = probs.shape
    classes = np.flatnonzero(present)
    best = classes[np.argmax(probs[classes], axis=0)]
    p_best = probs[classes].max(0)
    confident = p_best > np.where(best == 0, theta_bg, theta_fg)
    out = seeds.copy()

    def in_mask(c, y, x):
        return best[y, x] == c if confident[y, x] else seeds[y, x] == c

    for c in classes:
        seen = np.zeros((h, w), bool)
        q = deque()
        for y, x in zip(*np.nonzero(seeds == c)):
            if in_mask(c, y, x):
                seen[y, x] = True
                q.append((y, x))
        while q:
            y, x = q.popleft()
            if seeds[y, x] == 255:
                out[y, x] = c
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w and not seen[yy, xx] and in_mask(c, yy, xx):
                        seen[yy, xx] = True
                        q.append((yy, xx))
    return out


def case(rng, c=21, h=321, w=321, present_n=4):
    from scipy import ndimage
    logits = ndimage.gaussian_filter(rng.normal(size=(c, h, w)), (0, 8, 8)) * 60
    present = np.zeros(c, bool)
    present[0] = True
    present[rng.choice(np.arange(1, c), present_n - 1, replace=False)] = True
    logits[~present] -= 5
    p = np.exp(logits - logits.max(0))
    p /= p.sum(0)
    best = np.flatnonzero(present)[p[present].argmax(0)]
    seeds = np.where((p.max(0) > 0.99) & (rng.random((h, w)) < 0.3), best, 255).astype(np.uint8)
    return p.astype(np.float32), seeds, present


def timeit(f, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        r = f()
        ts.append(time.perf_counter() - t)
    return min(ts), r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    p, s, pr = case(rng)
    tv, out = timeit(lambda: seeded_region_growing(p, s, pr), a.repeats)
    tb, ref = timeit(lambda: bfs_grow(p, s, pr), 1)
    assert np.array_equal(out, ref)
    img = (rng.random((375, 500, 3)) * 255).astype(np.uint8)
    q = rng.random((21, 375, 500)).astype(np.float32)
    q /= q.sum(0)
    tc, _ = timeit(lambda: dense_crf(img, q, 10), 2)
    print("| measurement | value |\n|---|---|")
    print(f"| region growing 321x321, 21 classes (4 present), vectorised | {tv * 1000:.1f} ms |")
    print(f"| same, per-pixel BFS baseline (same run, identical output) | {tb * 1000:.0f} ms |")
    print(f"| speed-up | {tb / tv:.0f}x |")
    print(f"| labelled pixels after growing | {(out != 255).mean():.3f} (seeds {(s != 255).mean():.3f}) |")
    p2, s2, pr2 = case(np.random.default_rng(1), present_n=21)
    tv2, out2 = timeit(lambda: seeded_region_growing(p2, s2, pr2), a.repeats)
    tb2, ref2 = timeit(lambda: bfs_grow(p2, s2, pr2), 1)
    assert np.array_equal(out2, ref2)
    print(f"| all 21 classes present: vectorised / BFS | {tv2 * 1000:.1f} ms / {tb2 * 1000:.0f} ms "
          f"({tb2 / tv2:.0f}x; labelled {(out2 != 255).mean():.3f}) |")
    print(f"| dense CRF 500x375, 21 classes, 10 iterations | {tc:.2f} s/image |")


if __name__ == "__main__":
    main()
