"""``ws graph FEATURES -o graph.h5``: the dataset-level kNN similarity graph."""

from __future__ import annotations

import click
import numpy as np

from ..errors import InputError
from ..graph import METHODS, WEIGHTINGS, knn, knn_graph, recall_at_k, unary_weights
from ..graph.knn import normalize
from ..io.flat import read_features, write_graph
from ..io.store import create_store, open_store
from .common import (Timer, command, device_option, emit, force_option, log, output_option, resolve_device,
                     seed_option, threads_option)


@command("graph")
@click.argument("features", type=click.Path(dir_okay=False))
@output_option(help="Output graph store (.h5).")
@click.option("--knn", "k", type=click.IntRange(1), default=3, show_default=True,
              help="Neighbours per proposal (Fan et al. Sec. 4.1 and LIID Sec. 5.3: 3). The query itself is "
                   "excluded; LIID's released code counts the node among its 3, which is --knn 2 here.")
@click.option("--mutual", is_flag=True, help="Keep an edge only when each end is among the other's k nearest "
                                            "(default: union, an edge when either is).")
@click.option("--same-tag", is_flag=True, help="Only edges between proposals whose images share a tag "
                                              "(as LIID's released code does).")
@click.option("--weights", "weighting", type=click.Choice(WEIGHTINGS), default="fan", show_default=True,
              help="fan: W = cos + 1 (Fan et al. Eq. 5); liid: delta * |cos| (LIID Eq. 10).")
@click.option("--delta", type=click.FloatRange(0, min_open=True), default=5.0, show_default=True,
              help="LIID's balance factor delta of Eq. 10 (with --weights liid).")
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
def graph(features, output, k, mutual, same_tag, weighting, delta, knn_method, pca_dim, candidates, nprobe, nlist,
          recall_sample, device, seed, force):
    """Build the kNN similarity graph of all proposals of a dataset.

    Reads a `features` store (per proposal: feature vector, K+1 probabilities,
    allowed labels) and links every proposal to its --knn most cosine-similar
    proposals of the whole dataset, symmetrised by union (or --mutual). Edge
    weights follow Fan et al. Eq. 5 (cos + 1) or LIID Eq. 10 (delta |cos|);
    terminal weights are the probabilities (LIID Eq. 10, Fan Eq. 7). Writes a
    `graph` store (symmetric CSR, unary, allowed); the summary reports edges,
    components and the measured recall@k.

    \b
    Example:
      ws graph features.h5 -o graph.h5 --knn 3 --weights fan
      ws graph features.h5 -o graph.h5 --weights liid --delta 5 --knn-method ivf
    """
    dev = resolve_device(device)
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
        W = knn_graph(idx, sims, weighting=weighting, delta=delta, mutual=mutual)
        from scipy.sparse.csgraph import connected_components

        n_comp, comp = connected_components(W, directed=False)
        params = {"knn": k, "mutual": mutual, "same_tag": same_tag, "weights": weighting, "delta": delta,
                  "knn_method": knn_method, "pca_dim": pca_dim, "candidates": candidates, "nprobe": nprobe,
                  "nlist": nlist, "seed": seed, "recall": recall}
        with create_store(output, "graph", classes=src.classes, params=params, inputs=[src], force=force) as dst:
            dst.h5.attrs["dataset"] = src.h5.attrs["dataset"]
            write_graph(dst, indptr=W.indptr, indices=W.indices, weights=W.data, unary=unary_weights(data["prob"]),
                        allowed=data["allowed"], image_ids=data["image_ids"], image=data["image"],
                        proposal=data["proposal"], truth=data["truth"])
    sizes = np.bincount(comp)
    emit({"output": output, "proposals": M, "edges": int(W.nnz // 2), "components": int(n_comp),
          "largest_component": int(sizes.max()), f"recall@{k}": recall, "knn_seconds": round(t_knn.seconds, 3)})
