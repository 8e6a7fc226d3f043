"""k-nearest-neighbour search over cosine similarity, exact or approximate.

Every search normalises the rows, so inner product = cosine similarity, and
excludes the query itself. Methods (``method``):

* ``exact``: blockwise float32 matrix products (torch; on the GPU when
  ``device`` is ``cuda``), memory bounded by the block.
* ``ivf``: faiss inverted file (``IndexIVFFlat``, inner product): ``nlist``
  k-means cells, ``nprobe`` visited per query. Needs faiss (``pip install
  wstools[knn]``); distances are exact inner products of the candidates found.
* ``hnsw``: faiss HNSW graph (``IndexHNSWFlat``, M=32, ``ef_search``).

``pca_dim > 0`` first searches ``candidates`` neighbours in a PCA projection to
``pca_dim`` dimensions (with the chosen method), then re-ranks them with the
exact full-dimensional cosine.

``groups``: a boolean (M, G) membership matrix (e.g. the image tags); a pair is
a candidate only when both rows share a group (LIID's released code keeps only
edges between proposals whose images share a tag). Rows in no group get no
neighbours (index -1, similarity -inf).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

METHODS = ("exact", "ivf", "hnsw")


def normalize(feat: np.ndarray, inplace: bool = False, block: int = 65536) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32.

    ``inplace=True`` overwrites a float32 ``feat`` instead of copying it (a
    200,000 x 2048 feature matrix is 1.6 GB); the work is done in row blocks.
    """
    feat = np.asarray(feat, dtype=np.float32)
    out = feat if inplace else np.empty_like(feat)
    for a in range(0, feat.shape[0], block):
        x = feat[a:a + block]
        norm = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
        np.divide(x, np.maximum(norm, np.float32(1e-12)), out=out[a:a + block])
    return out


def _faiss():
    try:
        import faiss  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        raise InputError("this kNN method needs faiss: pip install 'wstools[knn]' (or faiss-cpu), "
                         "or use --knn-method exact") from None
    return faiss


def _exact(X: np.ndarray, Q: np.ndarray, k: int, q_ids: np.ndarray | None, device: str = "cpu",
           block_bytes: int = 1 << 27):
    """Exact top-k inner products of the rows of Q against X, self (q_ids) excluded."""
    import torch

    M = X.shape[0]
    kk = min(k, M - 1) if q_ids is not None else min(k, M)
    out_i = np.full((Q.shape[0], k), -1, dtype=np.int64)
    out_s = np.full((Q.shape[0], k), -np.inf, dtype=np.float32)
    if kk <= 0 or Q.shape[0] == 0:
        return out_i, out_s
    Xt = torch.from_numpy(np.ascontiguousarray(X)).to(device)
    step = max(1, int(block_bytes // (4 * max(M, 1))))
    for a in range(0, Q.shape[0], step):
        b = min(Q.shape[0], a + step)
        S = torch.from_numpy(np.ascontiguousarray(Q[a:b])).to(device) @ Xt.T
        if q_ids is not None:
            S[torch.arange(b - a, device=device), torch.from_numpy(q_ids[a:b]).to(device)] = -float("inf")
        s, i = torch.topk(S, kk, dim=1)
        out_i[a:b, :kk] = i.cpu().numpy()
        out_s[a:b, :kk] = s.cpu().numpy()
    return out_i, out_s


def _faiss_search(X: np.ndarray, k: int, method: str, nlist: int, nprobe: int, ef_search: int, seed: int):
    faiss = _faiss()
    M, D = X.shape
    X = np.ascontiguousarray(X, dtype=np.float32)
    if method == "ivf":
        nl = int(max(1, min(nlist if nlist > 0 else 4 * np.sqrt(M), M // 39 if M >= 39 else 1)))
        quant = faiss.IndexFlatIP(D)
        index = faiss.IndexIVFFlat(quant, D, nl, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        train = X if M <= 64 * nl else X[np.sort(rng.choice(M, 64 * nl, replace=False))]
        index.cp.seed = seed
        index.train(train)
        index.add(X)
        index.nprobe = min(nprobe, nl)
    else:
        index = faiss.IndexHNSWFlat(D, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.add(X)
        index.hnsw.efSearch = max(ef_search, k + 1)
    s, i = index.search(X, min(k + 1, M))
    # drop self (normally the first hit, but not always with ties / approximations)
    own = i == np.arange(M)[:, None]
    s = np.where(own | (i < 0), -np.inf, s)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    i = np.take_along_axis(i, order, 1)
    s = np.take_along_axis(s, order, 1)
    i[~np.isfinite(s)] = -1
    out_i = np.full((M, k), -1, dtype=np.int64)
    out_s = np.full((M, k), -np.inf, dtype=np.float32)
    out_i[:, : i.shape[1]] = i
    out_s[:, : s.shape[1]] = s
    return out_i, out_s


def _search(X, k, method, device, nlist, nprobe, ef_search, seed):
    if method == "exact":
        return _exact(X, X, k, np.arange(X.shape[0]), device)
    if method in ("ivf", "hnsw"):
        return _faiss_search(X, k, method, nlist, nprobe, ef_search, seed)
    raise InputError(f"unknown kNN method {method!r} (choose from {', '.join(METHODS)})")


def pca_project(X: np.ndarray, dim: int, sample: int = 20000, seed: int = 0, block: int = 65536) -> np.ndarray:
    """Project rows onto the top ``dim`` principal directions (fit on a sample), float32."""
    rng = np.random.default_rng(seed)
    S = X if X.shape[0] <= sample else X[np.sort(rng.choice(X.shape[0], sample, replace=False))]
    mu = S.mean(axis=0, dtype=np.float64).astype(np.float32)
    C = np.zeros((X.shape[1], X.shape[1]), dtype=np.float64)
    for a in range(0, S.shape[0], 2048):    # covariance in blocks: no float64 copy of the sample
        B = (S[a:a + 2048] - mu).astype(np.float64)
        C += B.T @ B
    w, V = np.linalg.eigh(C)
    P = V[:, ::-1][:, :dim].astype(np.float32)
    out = np.empty((X.shape[0], P.shape[1]), dtype=np.float32)
    for a in range(0, X.shape[0], block):   # blockwise: no (M, D) temporary
        out[a:a + block] = (X[a:a + block] - mu) @ P
    return out


def _rerank(X: np.ndarray, cand: np.ndarray, k: int, block_bytes: int = 1 << 27):
    """Exact cosine of every query with its candidates, best k kept; the gathered
    (block, candidates, D) rows are bounded by ``block_bytes``."""
    M = X.shape[0]
    block = max(1, block_bytes // max(1, cand.shape[1] * X.shape[1] * X.itemsize))
    out_i = np.full((M, k), -1, dtype=np.int64)
    out_s = np.full((M, k), -np.inf, dtype=np.float32)
    for a in range(0, M, block):
        b = min(M, a + block)
        c = cand[a:b]
        valid = c >= 0
        s = np.einsum("qd,qcd->qc", X[a:b], X[np.where(valid, c, 0)])
        s[~valid] = -np.inf
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
        out_i[a:b, : order.shape[1]] = np.take_along_axis(c, order, 1)
        out_s[a:b, : order.shape[1]] = np.take_along_axis(s, order, 1)
    out_i[~np.isfinite(out_s)] = -1
    return out_i, out_s


def _merge_topk(q, nb, s, M, k):
    """Per query the k best distinct neighbours among candidate triples (q, nb, s)."""
    keep = nb >= 0
    q, nb, s = q[keep], nb[keep], s[keep]
    order = np.lexsort((-s, nb, q))
    q, nb, s = q[order], nb[order], s[order]
    first = np.ones(q.size, dtype=bool)
    first[1:] = (q[1:] != q[:-1]) | (nb[1:] != nb[:-1])
    q, nb, s = q[first], nb[first], s[first]
    order = np.lexsort((-s, q))
    q, nb, s = q[order], nb[order], s[order]
    start = np.searchsorted(q, np.arange(M))
    rank = np.arange(q.size) - start[q]
    sel = rank < k
    out_i = np.full((M, k), -1, dtype=np.int64)
    out_s = np.full((M, k), -np.inf, dtype=np.float32)
    out_i[q[sel], rank[sel]] = nb[sel]
    out_s[q[sel], rank[sel]] = s[sel]
    return out_i, out_s


def knn(feat: np.ndarray, k: int = 3, *, method: str = "exact", groups: np.ndarray | None = None,
        pca_dim: int = 0, candidates: int = 0, device: str = "cpu", nlist: int = 0, nprobe: int = 16,
        ef_search: int = 64, seed: int = 0, normalized: bool = False):
    """The k most cosine-similar other rows of ``feat`` (M, D).

    ``normalized=True`` says the rows already have unit norm (see
    :func:`normalize`), so no normalised copy is made.

    Returns ``(indices, similarities)``, both (M, k): int64 (-1 = none) and
    float32 cosine similarities in [-1, 1], best first. See the module
    docstring for ``method``, ``pca_dim``/``candidates`` and ``groups``.
    Fan et al. ECCV 2018 Sec. 4.1 and LIID Sec. 5.3 both use k = 3.
    """
    X = np.asarray(feat, dtype=np.float32) if normalized else normalize(feat)
    M = X.shape[0]
    if k < 1:
        raise InputError("--knn must be >= 1")
    if groups is None:
        parts = [np.arange(M)]
    else:
        groups = np.asarray(groups, dtype=bool)
        parts = [np.flatnonzero(groups[:, g]) for g in range(groups.shape[1])]
        parts = [p for p in parts if p.size > 1]
    Y = X
    n_cand = k
    if pca_dim > 0 and pca_dim < X.shape[1]:
        Y = pca_project(X, pca_dim, seed=seed)
        n_cand = max(candidates, k)
    qs, nbs, ss = [], [], []
    for p in parts:
        method_p = method if p.size > max(1000, 4 * n_cand) else "exact"   # faiss gains nothing on tiny sets
        whole = p.size == M          # no fancy-index copy of the (M, D) features when p is every row
        i, s = _search(Y if whole else np.ascontiguousarray(Y[p]), n_cand, method_p, device, nlist, nprobe,
                       ef_search, seed)
        if Y is not X:
            i, s = _rerank(X if whole else X[p], i, k)
        qs.append(np.repeat(p, k))
        nbs.append(np.where(i >= 0, p[np.maximum(i, 0)], -1).ravel())
        ss.append(s.ravel())
    if len(parts) == 1 and groups is None:
        return nbs[0].reshape(M, k), ss[0].reshape(M, k)
    if not qs:
        return np.full((M, k), -1, dtype=np.int64), np.full((M, k), -np.inf, dtype=np.float32)
    return _merge_topk(np.concatenate(qs), np.concatenate(nbs), np.concatenate(ss), M, k)


def recall_at_k(feat: np.ndarray, indices: np.ndarray, k: int, *, groups: np.ndarray | None = None,
                sample: int = 1000, seed: int = 0, device: str = "cpu", normalized: bool = False) -> float:
    """Recall@k of ``indices`` against exact cosine kNN on ``sample`` random queries.

    A found neighbour counts when its exact similarity reaches the exact k-th
    best (so ties do not count as misses). With ``groups`` the exact reference
    is restricted the same way.
    """
    X = np.asarray(feat, dtype=np.float32) if normalized else normalize(feat)
    M = X.shape[0]
    if M < 2:
        return 1.0
    rng = np.random.default_rng(seed)
    q = np.sort(rng.choice(M, min(sample, M), replace=False))
    import torch

    Xt = torch.from_numpy(X).to(device)
    g = None if groups is None else torch.from_numpy(np.asarray(groups, dtype=np.float32)).to(device)
    kk = min(k, M - 1)
    hit_total, want_total = 0, 0
    step = max(1, (1 << 25) // M)
    for a in range(0, q.size, step):
        qb = q[a:a + step]
        S = Xt[torch.from_numpy(qb).to(device)] @ Xt.T
        S[torch.arange(qb.size, device=device), torch.from_numpy(qb).to(device)] = -float("inf")
        if g is not None:
            S[(g[torch.from_numpy(qb).to(device)] @ g.T) <= 0] = -float("inf")
        S = S.cpu().numpy()
        kth = -np.partition(-S, kk - 1, axis=1)[:, kk - 1]
        idx = indices[qb, :k]
        found = np.where(idx >= 0, np.take_along_axis(S, np.maximum(idx, 0), 1), -np.inf)
        hits = (found >= kth[:, None] - 1e-5) & np.isfinite(found)
        want = np.minimum(np.isfinite(S).sum(axis=1), kk)
        hit_total += int(np.minimum(hits.sum(axis=1), want).sum())
        want_total += int(want.sum())
    if want_total == 0:
        return 1.0
    return hit_total / want_total
