"""``ws graph FEATURES -o graph.h5``: the dataset-level kNN similarity graph."""

from __future__ import annotations

import click
import numpy as np

from ..errors import InputError
from ..graph import DEFAULT_DELTA, EDGE_RULES, METHODS, WEIGHTINGS, knn, knn_graph, recall_at_k, unary_weights
from ..graph.knn import normalize
from ..io.flat import read_features, write_graph
from ..io.store import open_store
from .common import (Timer, command, device_option, emit, force_option, log, output_option, resolve_device,
                     seed_option, threads_option)
from .stage import output_store


@command("graph")
@click.argument("features", type=click.Path(dir_okay=False))
@output_option(help="Output graph store (.h5).")
@click.option("--knn", "k", type=click.IntRange(1), default=None,
              help="Neighbours per proposal, the query itself excluded. Default by --weights: liid 2 (LIID's "
                   "released code: its 3 nearest include the node itself; measured on toy data, k = 3 chains "
                   "most proposals into components of hundreds, k = 2 leaves components of at most a few dozen), "
                   "eq10 and fan 3 (LIID Sect. 5.3: 'at most three other nodes'; Fan et al. Sec. 4.1: k = 3).")
@click.option("--edges", "edge_rule", type=click.Choice(EDGE_RULES), default=None,
              help="bounded: every proposal keeps at most --knn edges, strongest first (LIID Sect. 5.3: 'at most "
                   "three other nodes ... with three largest edge weights'; the graph falls into small "
                   "components); union: an edge when either end is among the other's --knn nearest (a proposal "
                   "may get many more edges); mutual: when both are. Default: bounded for liid and eq10, union "
                   "for fan.")
@click.option("--same-tag/--any-tag", "same_tag", default=None,
              help="Only edges between proposals whose images share a tag (LIID's released code). Default: "
                   "--same-tag for liid, --any-tag for eq10 and fan (their papers say nothing of it).")
@click.option("--weights", "weighting", type=click.Choice(WEIGHTINGS), default="fan", show_default=True,
              help="Proposal-proposal weights, times --delta. liid: cos - min, the smallest cosine among the kNN "
                   "candidates subtracted (LIID's released code), so weights span [0, 1 - min], the scale of the "
                   "terminal weights (probabilities); eq10: |cos| (LIID Eq. 10 as printed; pooled ReLU features "
                   "have cosines near 1, so with delta = 5 every edge outweighs any terminal weight five times "
                   "and the cut sends whole components to noise); fan: cos + 1 (Fan et al. Eq. 5).")
@click.option("--delta", type=click.FloatRange(0, min_open=True), default=None,
              help="Balance factor scaling every proposal-proposal weight (LIID Eq. 10). Default by --weights: "
                   "eq10 5 (LIID Table 6); liid 0.5 (measured: with oracle probabilities the multi-way cut keeps "
                   "more of the correct instances at 0.5 than at the released code's unscaled 1, README 'ws "
                   "graph'); fan 1 (Fan et al. Eq. 5 has none: beta of `ws cut` balances it).")
@click.option("--knn-method", type=click.Choice(METHODS), default="exact", show_default=True,
              help="exact: blockwise matrix products (GPU with --device cuda); ivf / hnsw: faiss "
                   "(pip install 'wstools[knn]').")
@click.option("--pca-dim", type=click.IntRange(0), default=0, show_default=True,
              help="Search in a PCA projection to this many dimensions, then re-rank --candidates exactly "
                   "(0 = off).")
@click.option("--candidates", type=click.IntRange(1), default=16, show_default=True,
              help="Candidates per proposal re-ranked exactly after the PCA search.")
@click.option("--nprobe", type=click.IntRange(1), default=16, show_default=True, help="faiss IVF cells visited.")
@click.option("--nlist", type=click.IntRange(0), default=0, show_default=True,
              help="faiss IVF cells (0 = 4 sqrt(M)).")
@click.option("--recall-sample", type=click.IntRange(0), default=500, show_default=True,
              help="Queries on which recall@k against exact cosine kNN is measured and reported (0 = skip).")
@device_option
@threads_option
@seed_option
@force_option
def graph(features, output, k, edge_rule, same_tag, weighting, delta, knn_method, pca_dim, candidates, nprobe, nlist,
          recall_sample, device, seed, force):
    """Build the kNN similarity graph of all proposals of a dataset.

    Reads a `features` store (per proposal: feature vector, K+1 probabilities,
    allowed labels) and links every proposal to its --knn most cosine-similar
    proposals of the whole dataset (--edges: degree-bounded, union or mutual).
    Edge weights follow LIID's released code (cos - min), LIID Eq. 10
    (delta |cos|) or Fan et al. Eq. 5 (cos + 1); terminal weights are the
    probabilities (LIID Eq. 10, Fan Eq. 7). `--weights liid` alone builds
    LIID's knowledge graph: 2 neighbours, degree-bounded, same tag, 0.5 (cos -
    min). Writes a `graph` store (symmetric CSR, unary, allowed); the summary
    reports edges, the largest degree, the component sizes (count, largest,
    median, 90th / 99th percentile, isolated proposals) and the measured
    recall@k.

    \b
    Example:
      ws graph features.h5 -o graph.h5 --knn 3 --weights fan
      ws graph features.h5 -o graph.h5 --weights liid
      ws graph features.h5 -o graph.h5 --weights eq10 --delta 5 --knn-method ivf
    """
    dev = resolve_device(device)
    liid_like = weighting in ("liid", "eq10")
    k = (2 if weighting == "liid" else 3) if k is None else k
    edge_rule = ("bounded" if liid_like else "union") if edge_rule is None else edge_rule
    same_tag = (weighting == "liid") if same_tag is None else same_tag
    delta = DEFAULT_DELTA[weighting] if delta is None else delta
    with open_store(features, "features") as src:
        K = len(src.classes)
        data = read_features(src, K)
        groups = data["allowed"][:, 1:] if same_tag else None
        M = data["feat"].shape[0]
        if M < 2:
            raise InputError("needs at least 2 proposals", path=features)
        with Timer() as t_knn:
            # normalised in place: memory stays one copy of the features (1.6 GB at 200k x 2048)
            feat = normalize(data.pop("feat"), inplace=True)
            idx, sims = knn(feat, k, method=knn_method, groups=groups, pca_dim=pca_dim, normalized=True,
                            candidates=max(candidates, k), device=dev, nlist=nlist, nprobe=nprobe, seed=seed)
        log(f"kNN of {M} proposals in {t_knn.seconds:.1f} s")
        recall = None
        if recall_sample:
            recall = recall_at_k(feat, idx, k, groups=groups, sample=recall_sample, seed=seed, device=dev,
                                 normalized=True)
        del feat
        W = knn_graph(idx, sims, weighting=weighting, delta=delta, edges=edge_rule, k=k)
        from scipy.sparse.csgraph import connected_components

        n_comp, comp = connected_components(W, directed=False)
        params = {"knn": k, "edges": edge_rule, "same_tag": same_tag, "weights": weighting, "delta": delta,
                  "knn_method": knn_method, "pca_dim": pca_dim, "candidates": candidates, "nprobe": nprobe,
                  "nlist": nlist, "seed": seed, "recall": recall}
        with output_store(output, "graph", classes=src.classes, params=params, inputs=[src], force=force,
                          dataset_of=src) as dst:
            write_graph(dst, indptr=W.indptr, indices=W.indices, weights=W.data, unary=unary_weights(data["prob"]),
                        allowed=data["allowed"], image_ids=data["image_ids"], image=data["image"],
                        proposal=data["proposal"], truth=data["truth"])
    sizes = np.bincount(comp)
    emit({"output": output, "proposals": M, "edges": int(W.nnz // 2), "max_degree": int(np.diff(W.indptr).max()),
          "components": int(n_comp), "largest_component": int(sizes.max()),
          "component_sizes": component_size_summary(sizes), "weights": weighting, "knn": k, "edges_rule": edge_rule,
          "same_tag": same_tag, "delta": delta, f"recall@{k}": recall, "knn_seconds": round(t_knn.seconds, 3)})


def component_size_summary(sizes: np.ndarray) -> dict:
    """Component sizes in numbers: largest, median, 90th / 99th percentile, isolated nodes."""
    sizes = np.asarray(sizes)
    return {"largest": int(sizes.max()), "median": float(np.median(sizes)),
            "p90": float(np.percentile(sizes, 90)), "p99": float(np.percentile(sizes, 99)),
            "isolated": int((sizes == 1).sum())}
