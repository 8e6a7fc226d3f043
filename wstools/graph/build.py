"""The dataset-level similarity graph: kNN edges, weights, terminal weights.

Fan et al. ECCV 2018 Eq. 5: W_ij = cos(f_i, f_j) + 1 for i != j, sparsified to
the k = 3 strongest edges per vertex (Sec. 4.1). LIID (Liu et al., TPAMI) Eq. 10:
proposal-proposal weight delta * |cos(f_i, f_j)| (delta = 5) and proposal-terminal
weight p_k; Sect. 5.3: "we connect each node ... to at most three other nodes with
three largest edge weights", so that "the overall large knowledge graph will be
automatically divided into many small disconnected components".

Edge rules (``edges``), from the per-node kNN lists:

* ``bounded`` (LIID Sect. 5.3): every node keeps at most k edges in the final graph. The
  candidate pairs (i-j with j among i's k nearest or i among j's) are taken strongest first
  and a pair is kept while both ends have fewer than k edges (greedy b-matching). A union of
  k-lists gives hubs of many more than k edges, which chain the proposals of a dataset into
  one giant component;
* ``union``: i-j whenever j is among i's k nearest or i among j's;
* ``mutual``: only when both hold.

Weightings (``weighting``), all multiplied by ``delta``:

* ``liid``: cos - min (LIID's released code, ``multiway_cut.py``: the cosine minus the
  smallest cosine among all kNN candidates; pairs at that minimum get no edge). Pooled
  features after a ReLU are non-negative, so neighbour cosines lie near 1 (0.79-1.0 on toy
  data): shifted by the minimum the weights span [0, 1 - min], the scale of the terminal
  weights (probabilities <= 1);
* ``eq10``: |cos| (LIID Eq. 10 as printed, delta = 5 in the paper): with cosines near 1 every
  edge weighs about delta, five times any terminal weight;
* ``fan``: cos + 1 (Fan et al. Eq. 5).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

WEIGHTINGS = ("liid", "eq10", "fan")
EDGE_RULES = ("bounded", "union", "mutual")
# delta of each weighting: LIID Table 6: 5 for Eq. 10; liid: 0.5, measured (README `ws graph`: with oracle
# probabilities the cut keeps more correct instances than at the released code's 1); fan: Eq. 5 has none
DEFAULT_DELTA = {"liid": 0.5, "eq10": 5.0, "fan": 1.0}


def edge_weights(cos: np.ndarray, weighting: str = "fan", delta: float | None = None,
                 floor: float | None = None) -> np.ndarray:
    """Edge weights (float32) from cosine similarities (module docstring). ``floor``: the
    minimum subtracted by ``liid`` (default: the minimum of ``cos``); ``delta`` defaults to
    :data:`DEFAULT_DELTA` of the weighting."""
    cos = np.clip(np.asarray(cos, dtype=np.float64), -1.0, 1.0)
    d = DEFAULT_DELTA[weighting] if weighting in DEFAULT_DELTA and delta is None else delta
    if weighting == "fan":
        w = cos + 1.0
    elif weighting == "eq10":
        w = np.abs(cos)
    elif weighting == "liid":
        lo = (float(cos.min()) if cos.size else 0.0) if floor is None else float(floor)
        w = np.maximum(cos - lo, 0.0)
    else:
        raise ValueError(f"unknown weighting {weighting!r}")
    return (d * w).astype(np.float32)


def _bounded(lo: np.ndarray, hi: np.ndarray, w: np.ndarray, M: int, k: int) -> np.ndarray:
    """Mask of the pairs kept when each node may have at most k edges, strongest pairs first
    (ties: lower node ids first)."""
    order = np.lexsort((hi, lo, -w))
    deg = np.zeros(M, dtype=np.int64)
    keep = np.zeros(w.size, dtype=bool)
    lo_l, hi_l = lo.tolist(), hi.tolist()
    deg_l = deg.tolist()
    for e in order.tolist():
        a, b = lo_l[e], hi_l[e]
        if deg_l[a] < k and deg_l[b] < k:
            deg_l[a] += 1
            deg_l[b] += 1
            keep[e] = True
    return keep


def knn_graph(indices: np.ndarray, sims: np.ndarray, *, weighting: str = "fan", delta: float | None = None,
              edges: str = "union", k: int | None = None, mutual: bool = False) -> sp.csr_matrix:
    """Symmetric sparse graph (M, M) from kNN lists ``indices``/``sims`` (M, k; -1 = none).

    ``edges``: ``bounded``, ``union`` or ``mutual`` (module docstring; ``mutual=True`` is
    ``edges="mutual"``); ``k``: the degree bound of ``bounded`` (default: the lists' length).
    No self loops; pairs of zero weight are dropped. Weights by :func:`edge_weights` (the
    ``liid`` floor is the minimum over all finite kNN similarities). Returns a canonical CSR
    matrix (sorted indices) whose weights are float32.
    """
    if mutual:
        edges = "mutual"
    if edges not in EDGE_RULES:
        raise ValueError(f"unknown edge rule {edges!r}")
    M, kk = indices.shape
    rows = np.repeat(np.arange(M, dtype=np.int64), kk)
    cols = indices.ravel().astype(np.int64)
    s = sims.ravel()
    ok = (cols >= 0) & (cols != rows) & np.isfinite(s)
    rows, cols, s = rows[ok], cols[ok], s[ok]
    floor = float(s.min()) if s.size else 0.0
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    key = lo * M + hi
    key, first, count = np.unique(key, return_index=True, return_counts=True)
    s = s[first]
    if edges == "mutual":
        keep = count >= 2
        key, s = key[keep], s[keep]
    lo, hi = key // M, key % M
    w = edge_weights(s, weighting, delta, floor=floor)
    keep = w > 0
    lo, hi, w = lo[keep], hi[keep], w[keep]
    if edges == "bounded":
        keep = _bounded(lo, hi, w, M, kk if k is None else int(k))
        lo, hi, w = lo[keep], hi[keep], w[keep]
    W = sp.coo_matrix((np.concatenate([w, w]), (np.concatenate([lo, hi]), np.concatenate([hi, lo]))),
                      shape=(M, M)).tocsr()
    W.sort_indices()
    return W


def unary_weights(prob: np.ndarray) -> np.ndarray:
    """Terminal weights (M, K+1): the proposals' probabilities (LIID Eq. 10 p_k; Fan Eq. 7 p_i), float32."""
    return np.asarray(prob, dtype=np.float32)
