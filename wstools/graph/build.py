"""The dataset-level similarity graph: kNN edges, weights, terminal weights.

Fan et al. ECCV 2018 Eq. 5: W_ij = cos(f_i, f_j) + 1 for i != j, sparsified to
the k = 3 strongest edges per vertex (Sec. 4.1). LIID Eq. 10: proposal-proposal
weight delta * |cos(f_i, f_j)| (delta = 5) and proposal-terminal weight p_k,
each proposal linked to its 3 strongest neighbours (Sec. 5.3).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

WEIGHTINGS = ("fan", "liid")


def edge_weights(cos: np.ndarray, weighting: str = "fan", delta: float = 5.0) -> np.ndarray:
    """Edge weights from cosine similarities: ``fan``: cos + 1 (Fan Eq. 5); ``liid``: delta*|cos| (LIID Eq. 10)."""
    cos = np.clip(np.asarray(cos, dtype=np.float64), -1.0, 1.0)
    if weighting == "fan":
        return (cos + 1.0).astype(np.float32)
    if weighting == "liid":
        return (delta * np.abs(cos)).astype(np.float32)
    raise ValueError(f"unknown weighting {weighting!r}")


def knn_graph(indices: np.ndarray, sims: np.ndarray, *, weighting: str = "fan", delta: float = 5.0,
              mutual: bool = False) -> sp.csr_matrix:
    """Symmetric sparse graph (M, M) from kNN lists ``indices``/``sims`` (M, k; -1 = none).

    Union symmetrisation (default): i-j is an edge when j is among i's k nearest
    or i among j's. ``mutual``: only when both hold. No self loops. Weights by
    :func:`edge_weights`. Returns a canonical CSR matrix (sorted indices) whose
    weights are float32.
    """
    M, k = indices.shape
    rows = np.repeat(np.arange(M, dtype=np.int64), k)
    cols = indices.ravel().astype(np.int64)
    s = sims.ravel()
    ok = (cols >= 0) & (cols != rows) & np.isfinite(s)
    rows, cols, s = rows[ok], cols[ok], s[ok]
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    key = lo * M + hi
    key, first, count = np.unique(key, return_index=True, return_counts=True)
    s = s[first]
    if mutual:
        keep = count >= 2
        key, s = key[keep], s[keep]
    lo, hi = key // M, key % M
    w = edge_weights(s, weighting, delta)
    W = sp.coo_matrix((np.concatenate([w, w]), (np.concatenate([lo, hi]), np.concatenate([hi, lo]))),
                      shape=(M, M)).tocsr()
    W.sort_indices()
    return W


def unary_weights(prob: np.ndarray) -> np.ndarray:
    """Terminal weights (M, K+1): the proposals' probabilities (LIID Eq. 10 p_k; Fan Eq. 7 p_i), float32."""
    return np.asarray(prob, dtype=np.float32)
