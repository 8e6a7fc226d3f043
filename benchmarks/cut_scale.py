"""Benchmarks of ws graph / ws cut on synthetic features (wstools.toy.features).

    python benchmarks/cut_scale.py knn --images 1000 --dim 2048
    python benchmarks/cut_scale.py scale --images 125,1250,5000,25000
    python benchmarks/cut_scale.py accuracy --images 2000
    python benchmarks/cut_scale.py retention --images 2000

Every table has its baseline in the same run (exact kNN; the attention method).
Timings on a shared machine are noisy: compare ratios. Peak RSS is measured in a
fresh child process per row.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import numpy as np


def _features(images, dim, seed=0):
    from wstools.toy.features import make_features

    return make_features(images, 20, dim, seed=seed)


def _graph(f, k=3, weighting="fan"):
    from wstools.graph import knn, knn_graph

    i, s = knn(f.feat, k)
    return knn_graph(i, s, weighting=weighting)


def bench_knn(args):
    from wstools.graph import knn, recall_at_k

    f = _features(args.images, args.dim)
    rows = []
    base = None
    for name, kw in [("exact (baseline)", {}), ("faiss ivf nprobe 16", {"method": "ivf", "nprobe": 16}),
                     ("faiss ivf nprobe 4", {"method": "ivf", "nprobe": 4}),
                     ("faiss hnsw ef 64", {"method": "hnsw"}),
                     ("pca 128 + exact + rerank 16", {"pca_dim": 128, "candidates": 16}),
                     ("pca 128 + ivf + rerank 16", {"pca_dim": 128, "candidates": 16, "method": "ivf"}),
                     ("same-tag exact", {"groups": f.allowed[:, 1:]})]:
        t = time.perf_counter()
        idx, _ = knn(f.feat, 3, **kw)
        sec = time.perf_counter() - t
        base = base or sec
        rec = recall_at_k(f.feat, idx, 3, sample=1000, groups=kw.get("groups"))
        rows.append((name, sec, base / sec, rec))
    print(f"kNN k=3, {len(f)} proposals x {args.dim} dims, 2 shared cores\n")
    print("| method | seconds | speed-up vs exact | recall@3 |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.2f} | {r[2]:.1f}x | {r[3]:.4f} |")


def _scale_child(q, images, method, k, weighting):
    from wstools.cut import fan_partition, multiway_cut

    f = _features(images, 32)
    W = _graph(f, k, weighting)
    t = time.perf_counter()
    if method == "multiway":
        r = multiway_cut(W.indptr, W.indices, W.data, f.prob, f.allowed, time_limit=30)
    else:
        r = fan_partition(W.indptr, W.indices, W.data, f.prob, f.allowed, beta=30, retention=0.9, time_limit=30)
    sec = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    q.put((len(f), sec, rss, r.gap, int(r.component_exact.sum()), len(r.component_sizes),
           int(r.component_sizes.max()), float((r.labels == f.truth).mean())))


def bench_scale(args):
    ctx = mp.get_context("spawn")
    print("| method | k | proposals | cut seconds | peak RSS MB | gap | exact components | largest component | accuracy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for images in [int(x) for x in args.images.split(",")]:
        for method, k, weighting in [("multiway", 3, "liid"), ("multiway", 2, "liid"), ("fan", 3, "fan")]:
            if method not in args.methods:
                continue
            q = ctx.Queue()
            p = ctx.Process(target=_scale_child, args=(q, images, method, k, weighting))
            p.start()
            try:
                n, sec, rss, gap, ex, nc, big, acc = q.get(timeout=args.timeout)
            except Exception:
                p.kill()
                print(f"| {method} | {k} | ~{images * 8} | > {args.timeout} s (stopped) | | | | | |")
                continue
            p.join()
            print(f"| {method} | {k} | {n} | {sec:.2f} | {rss:.0f} | {gap:.1e} | {ex}/{nc} | {big} | {acc:.3f} |",
                  flush=True)


def bench_accuracy(args):
    from wstools.cut import attention_labels, fan_partition, multiway_cut

    f = _features(args.images, 64)
    print(f"{len(f)} proposals, 20 classes, {np.mean(f.truth == 0):.0%} noise proposals\n")
    print("| method | graph | seconds | accuracy (all, 0 = noise) | precision of kept | kept |\n|---|---|---|---|---|---|")

    def row(name, graph, labels, sec):
        kept = labels > 0
        print(f"| {name} | {graph} | {sec:.2f} | {np.mean(labels == f.truth):.3f} | "
              f"{np.mean(labels[kept] == f.truth[kept]):.3f} | {kept.sum()} |")

    t = time.perf_counter()
    row("attention (baseline, with background)", "-", attention_labels(f.prob, f.allowed), time.perf_counter() - t)
    row("attention (baseline, objects only)", "-", attention_labels(f.prob, f.allowed, background=False), 0.0)
    for k in (3, 2):
        W = _graph(f, k, "liid")
        t = time.perf_counter()
        r = multiway_cut(W.indptr, W.indices, W.data, f.prob, f.allowed)
        row(f"multiway (gap {r.gap:.0e})", f"liid k={k}", r.labels, time.perf_counter() - t)
    W = _graph(f, 3, "fan")
    for ret in (1.0, 0.9, 0.7):
        t = time.perf_counter()
        r = fan_partition(W.indptr, W.indices, W.data, f.prob, f.allowed, retention=ret)
        row(f"fan r={ret} (gap {r.gap:.0e})", "fan k=3", r.labels, time.perf_counter() - t)


def bench_retention(args):
    from wstools.cut import fan_partition

    f = _features(args.images, 64)
    W = _graph(f, 3, "fan")
    print(f"{len(f)} proposals, true object fraction {np.mean(f.truth > 0):.3f}\n")
    print("| r | seconds | gap | accuracy (0 = noise) | precision of kept | recall of objects |\n|---|---|---|---|---|---|")
    for r in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.3):
        t = time.perf_counter()
        res = fan_partition(W.indptr, W.indices, W.data, f.prob, f.allowed, retention=r)
        sec = time.perf_counter() - t
        kept = res.labels > 0
        obj = f.truth > 0
        print(f"| {r} | {sec:.2f} | {res.gap:.1e} | {np.mean(res.labels == f.truth):.3f} | "
              f"{np.mean(res.labels[kept] == f.truth[kept]):.3f} | {np.mean(res.labels[obj] == f.truth[obj]):.3f} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["knn", "scale", "accuracy", "retention"])
    ap.add_argument("--images", default="1000")
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--methods", default="multiway,fan")
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args()
    if a.what != "scale":
        a.images = int(a.images)
    {"knn": bench_knn, "scale": bench_scale, "accuracy": bench_accuracy, "retention": bench_retention}[a.what](a)
