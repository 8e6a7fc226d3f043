"""Benchmarks of ws graph / ws cut on synthetic features (wstools.toy.features).

    python benchmarks/cut_scale.py knn --images 1000 --dim 2048
    python benchmarks/cut_scale.py scale --images 125,1250,5000,21800 --methods multiway --ks 3
    python benchmarks/cut_scale.py scale --images 1250,2060 --methods fan
    python benchmarks/cut_scale.py accuracy --images 2000
    python benchmarks/cut_scale.py retention --images 2000
    python benchmarks/cut_scale.py knn-large --images 21800 --dim 2048   # ~200k proposals
    python benchmarks/cut_scale.py graph-cli --images 21800 --dim 2048   # the `ws graph` command: time, peak RSS
    python benchmarks/cut_scale.py hard --images 1500 --time-limit 10     # weak evidence, one giant component
    python benchmarks/cut_scale.py hard-rows --graphs g3_0.3.npz --limits 10,60   # graphs kept by hard --keep-graphs

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
    """The kNN graph the cut rows solve: exact kNN, or faiss IVF above 250,000 proposals (exact search
    of 1M x 1M pairs alone takes over 40 minutes on 2 cores; the rows time the cut, not the search).
    ``eq10``: delta |cos| (delta 5) on the union of k-lists (the LIID graph before issue 18);
    ``liid``: `ws graph --weights liid` (degree-bounded, same tag, 0.5 (cos - min)); ``fan``: union, cos + 1."""
    from wstools.graph import knn, knn_graph

    groups = f.allowed[:, 1:] if weighting == "liid" else None
    i, s = knn(f.feat, k, method="ivf" if len(f) > 250_000 else "exact", groups=groups)
    return knn_graph(i, s, weighting=weighting, edges="bounded" if weighting == "liid" else "union")


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


def bench_knn_large(args):
    """kNN at LIID scale. The exact baseline is timed on ``--exact-queries`` queries against all rows and
    extrapolated linearly (exact search cost is linear in the number of queries); recall@3 of every
    method is measured against exact search on 1000 sampled queries."""
    from wstools.graph import knn, recall_at_k
    from wstools.graph.knn import _exact, normalize

    t = time.perf_counter()
    f = _features(args.images, args.dim)
    print(f"kNN k=3, {len(f)} proposals x {args.dim} dims (features made in {time.perf_counter() - t:.0f} s), "
          "2 shared cores\n", flush=True)
    M = len(f)
    X = normalize(f.feat)
    q = np.arange(min(args.exact_queries, M))
    t = time.perf_counter()
    _exact(X, X[q], 3, q)
    base = (time.perf_counter() - t) * M / q.size
    del X
    print("| method | seconds | speed-up vs exact | recall@3 | peak RSS MB |\n|---|---|---|---|---|")
    print(f"| exact (baseline, {q.size} queries timed, extrapolated) | {base:.1f} | 1.0x | 1.0000 | "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} |", flush=True)
    settings = {
        "ivf": ("faiss ivf nprobe 16", {"method": "ivf", "nprobe": 16}),
        "ivf8": ("faiss ivf nprobe 8", {"method": "ivf", "nprobe": 8}),
        "pca256ivf": ("pca 256 + ivf nprobe 16 + rerank 16", {"pca_dim": 256, "candidates": 16, "method": "ivf"}),
        "pca128ivf": ("pca 128 + ivf nprobe 16 + rerank 32", {"pca_dim": 128, "candidates": 32, "method": "ivf"}),
        "hnsw": ("faiss hnsw ef 64", {"method": "hnsw"}),
        "sametag": ("same-tag exact", {"groups": f.allowed[:, 1:]}),
        "sametagpca": ("same-tag pca 256 + exact + rerank 16", {"groups": f.allowed[:, 1:], "pca_dim": 256,
                                                                 "candidates": 16}),
    }
    for key in args.knn_methods.split(","):
        name, kw = settings[key]
        t = time.perf_counter()
        idx, _ = knn(f.feat, 3, **kw)
        sec = time.perf_counter() - t
        rec = recall_at_k(f.feat, idx, 3, sample=1000, groups=kw.get("groups"))
        print(f"| {name} | {sec:.1f} | {base / sec:.1f}x | {rec:.4f} | "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} |", flush=True)


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
    print("| method | graph | k | proposals | cut seconds | peak RSS MB | gap | exact components | largest component "
          "| accuracy |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for images in [int(x) for x in args.images.split(",")]:
        for method, k, weighting in [("multiway", 3, "eq10"), ("multiway", 2, "eq10"), ("multiway", 2, "liid"),
                                     ("fan", 3, "fan")]:
            if method not in args.methods or str(k) not in args.ks.split(",") or weighting not in args.weights:
                continue
            q = ctx.Queue()
            p = ctx.Process(target=_scale_child, args=(q, images, method, k, weighting))
            p.start()
            try:
                n, sec, rss, gap, ex, nc, big, acc = q.get(timeout=args.timeout)
            except Exception:
                p.kill()
                print(f"| {method} | {weighting} | {k} | ~{images * 8} | > {args.timeout} s (stopped) | | | | | |")
                continue
            p.join()
            print(f"| {method} | {weighting} | {k} | {n} | {sec:.2f} | {rss:.0f} | {gap:.1e} | {ex}/{nc} | {big} | "
                  f"{acc:.3f} |", flush=True)


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
    for k, weighting in ((3, "eq10"), (2, "eq10"), (2, "liid")):
        W = _graph(f, k, weighting)
        t = time.perf_counter()
        r = multiway_cut(W.indptr, W.indices, W.data, f.prob, f.allowed)
        row(f"multiway (gap {r.gap:.0e})", f"{weighting} k={k}", r.labels, time.perf_counter() - t)
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


HARD = dict(tag_mix=(0.0, 0.5, 0.5), confidence=0.3, sharpness=1.0, spread=1.5, ambiguous=0.5)


def _hard_child(q, path, mode, time_limit):
    from wstools.cut import multiway_cut

    d = np.load(path)
    t = time.perf_counter()
    if mode == "current":       # the engine before anytime: LP/MIP on every component, no overall deadline
        r = multiway_cut(d["indptr"], d["indices"], d["weights"], d["prob"], d["allowed"], time_limit=30,
                         anytime_nodes=1 << 62)
    else:
        deadline = time.monotonic() + time_limit - min(2.0, 0.1 * time_limit)    # as `ws cut --time-limit`
        r = multiway_cut(d["indptr"], d["indices"], d["weights"], d["prob"], d["allowed"], time_limit=30,
                         deadline=deadline)
    sec = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    st, M = r.stats, len(r.labels)
    fixed = "/".join(f"{100 * st.get(k, 0) / M:.0f}" for k in ("fixed_by_dominance", "fixed_by_kovtun",
                                                                 "solved_trivially", "solved_by_lp",
                                                                 "solved_by_anytime"))
    q.put((sec, rss, r.gap, fixed, int(r.component_exact.sum()), len(r.component_sizes),
           float(np.mean(r.labels == 0)), float(np.mean(r.labels == d["truth"]))))


def bench_hard(args):
    """Weak evidence: probabilities near-uniform over each image's 2-3 tags (confidence 0.3, sharpness 1 in
    wstools.toy.features), wide overlapping clusters (spread 1.5, half the objects ambiguous), LIID weights
    delta |cos| on a union kNN graph. Kovtun's reduction fixes few nodes and one component holds almost
    every proposal. Each row runs in a fresh process on a graph saved beforehand (peak RSS = the cut plus
    loading the arrays); "current" = the engine without the anytime path or deadline, in the same run."""
    import os
    import tempfile

    from wstools.cut.multiway import components, upper_edges

    from wstools.toy.features import make_features

    f = make_features(args.images, 20, 32, seed=0, **HARD)
    ctx = mp.get_context("spawn")
    M = len(f)
    print(f"hard mode: {M} proposals, 21 labels (20 classes + noise), 2 shared cores, `--time-limit "
          f"{args.time_limit:g}` rows stop at the limit minus the CLI's margin\n")
    print("| k | delta | engine | seconds | peak RSS MB | gap | % settled by dominance/kovtun/trivial/lp/anytime "
          "| exact components | largest component | noise fraction | accuracy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    from wstools.graph import knn, knn_graph

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        if args.keep_graphs:
            os.makedirs(args.keep_graphs, exist_ok=True)
            tmp = args.keep_graphs
        for k in [int(x) for x in args.ks.split(",")]:
            idx, sims = knn(f.feat, k, method="ivf" if M > 250_000 else "exact")
            for delta in [float(x) for x in args.deltas.split(",")]:
                W = knn_graph(idx, sims, weighting="eq10", delta=delta, edges="union")
                eu, ev, _ = upper_edges(W.indptr, W.indices, W.data)
                n_comp, comp = components(M, eu, ev)
                big = int(np.bincount(comp).max())
                path = os.path.join(tmp, f"g{k}_{delta}.npz")
                np.savez(path, indptr=W.indptr, indices=W.indices, weights=W.data, prob=f.prob, allowed=f.allowed,
                         truth=f.truth)
                for mode, tl in [("current", None), ("anytime", args.time_limit), ("anytime", args.long_limit)]:
                    if mode not in args.engines or tl == 0:
                        continue
                    q = ctx.Queue()
                    p = ctx.Process(target=_hard_child, args=(q, path, mode, tl))
                    p.start()
                    name = "current (LP/MIP per component)" if mode == "current" else f"anytime, --time-limit {tl:g}"
                    try:
                        sec, rss, gap, fixed, ex, nc, noise, acc = q.get(timeout=args.timeout)
                    except Exception:
                        p.kill()
                        print(f"| {k} | {delta:g} | {name} | > {args.timeout:g} (stopped) | | | | | {big} | | |",
                              flush=True)
                        continue
                    p.join()
                    print(f"| {k} | {delta:g} | {name} | {sec:.2f} | {rss:.0f} | {gap:.1e} | {fixed} | {ex}/{nc} | "
                          f"{big} | {noise:.3f} | {acc:.3f} |", flush=True)


def bench_hard_rows(args):
    """Rows of the hard table on graphs saved by ``hard --keep-graphs DIR`` (no kNN again):
    ``hard-rows --graphs DIR/g3_0.3.npz,DIR/g3_5.0.npz --limits 10,60``."""
    ctx = mp.get_context("spawn")
    print("| graph | engine | seconds | peak RSS MB | gap | % settled by dominance/kovtun/trivial/lp/anytime "
          "| exact components | noise fraction | accuracy |\n|---|---|---|---|---|---|---|---|---|")
    for path in args.graphs.split(","):
        for tl in [float(x) for x in args.limits.split(",")]:
            q = ctx.Queue()
            p = ctx.Process(target=_hard_child, args=(q, path, "anytime", tl))
            p.start()
            sec, rss, gap, fixed, ex, nc, noise, acc = q.get(timeout=args.timeout)
            p.join()
            print(f"| {path.rsplit('/', 1)[-1]} | anytime, --time-limit {tl:g} | {sec:.2f} | {rss:.0f} | {gap:.1e} | "
                  f"{fixed} | {ex}/{nc} | {noise:.3f} | {acc:.3f} |", flush=True)


def _write_feature_store(path, images, dim):
    from wstools.io.flat import write_features
    from wstools.io.store import create_store

    f = _features(images, dim)
    classes = [f"c{i}" for i in range(f.prob.shape[1] - 1)]
    with create_store(path, "features", classes=classes, params={"synthetic": True}, force=True) as s:
        write_features(s, image_ids=[str(i) for i in range(int(f.image.max()) + 1)], image=f.image,
                       proposal=np.zeros(len(f), dtype=np.int64), box=np.zeros((len(f), 4), np.float32),
                       feat=f.feat, prob=f.prob, allowed=f.allowed, truth=f.truth)
    return len(f)


def bench_graph_cli(args):
    """`ws graph` as a user runs it, in its own process: wall time and the command's own peak RSS
    (GNU time), on a features store written beforehand by another process."""
    import os
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        store = os.path.join(tmp, "features.h5")
        ctx = mp.get_context("spawn")
        with ctx.Pool(1) as pool:
            M = pool.apply(_write_feature_store, (store, args.images, args.dim))
        print(f"`ws graph` on {M} proposals x {args.dim} dims, k = 3, 2 cores\n")
        print("| options | wall seconds | kNN seconds | recall@3 | peak RSS MB |\n|---|---|---|---|---|")
        for opts in args.graph_options.split(";"):
            cmd = ["/usr/bin/time", "-f", "%M %e", "ws", "graph", store, "-o", os.path.join(tmp, "g.h5"),
                   "--force", "--quiet", "--recall-sample", "1000", *opts.split()]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"| {opts} | failed: {r.stderr.strip().splitlines()[-1]} | | | |")
                continue
            rss_kb, wall = r.stderr.strip().splitlines()[-1].split()
            import json

            out = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"| `{opts}` | {float(wall):.1f} | {out['knn_seconds']:.1f} | {out['recall@3']:.4f} | "
                  f"{int(rss_kb) / 1024:.0f} |", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["knn", "knn-large", "graph-cli", "scale", "accuracy", "retention", "hard",
                                     "hard-rows"])
    ap.add_argument("--keep-graphs", default=None, help="hard: save the graphs (npz) in this folder")
    ap.add_argument("--graphs", default="", help="hard-rows: comma-separated npz graphs from --keep-graphs")
    ap.add_argument("--limits", default="10,60", help="hard-rows: --time-limit values")
    ap.add_argument("--time-limit", type=float, default=10.0, help="hard: the --time-limit of the anytime rows")
    ap.add_argument("--long-limit", type=float, default=120.0, help="hard: a second, generous limit (0 = skip)")
    ap.add_argument("--deltas", default="0.3,5")
    ap.add_argument("--engines", default="current,anytime")
    ap.add_argument("--graph-options", default="--knn-method ivf --pca-dim 256 --candidates 16")
    ap.add_argument("--exact-queries", type=int, default=10000)
    ap.add_argument("--knn-methods", default="ivf8,pca256ivf,pca128ivf,sametagpca")
    ap.add_argument("--images", default="1000")
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--methods", default="multiway,fan")
    ap.add_argument("--weights", default="eq10,liid,fan", help="scale: graphs of the multiway rows (see _graph)")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--ks", default=None, help="default 3,2 (scale), 3,5 (hard)")
    a = ap.parse_args()
    a.ks = a.ks or ("3,5" if a.what == "hard" else "3,2")
    if a.what != "scale":
        a.images = int(a.images)
    {"knn": bench_knn, "knn-large": bench_knn_large, "graph-cli": bench_graph_cli, "scale": bench_scale, "accuracy": bench_accuracy, "retention": bench_retention, "hard": bench_hard,
     "hard-rows": bench_hard_rows}[a.what](a)
