"""Salient instances without a trained detector (after Fan et al., ECCV 2018, Sec. 3.1).

Fan et al. take salient instances from S4Net, a trained network. Here the
saliency map is classical: the background-connectivity saliency of Zhu, Liang,
Wei and Sun ("Saliency optimization from robust background detection", CVPR
2014), computed on Felzenszwalb superpixels:

* boundary connectivity BndCon(p) = Len_bnd(p) / sqrt(Area(p)) (Zhu et al.
  Eq. 1-3) from geodesic colour distances on the superpixel graph, sigma_clr = 10;
* background probability w_bg = 1 - exp(-BndCon^2 / (2 sigma_bndcon^2)), sigma_bndcon = 1 (Eq. 5);
* background-weighted contrast wCtr(p) = sum_i d_app(p, p_i) w_spa(p, p_i) w_bg(p_i)
  with sigma_spa = 0.25 of the image (Eq. 6-7);
* the saliency optimisation of Eq. 9: min sum w_bg s^2 + sum wCtr (s - 1)^2 +
  sum w_ij (s_i - s_j)^2, w_ij = exp(-d_app^2 / (2 sigma_clr^2)) + mu, mu = 0.1,
  a sparse linear system.

The map, normalised to [0, 1], is thresholded; the salient superpixels are
split into instances by connected components of the superpixel graph, and each
component again along its strong superpixel boundaries (mean Lab colour
difference above ``split``). Every component and every split part is a
proposal scored by its mean saliency.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from .. import masks as mask_io
from .hierarchy import region_adjacency, scaled_min_size, superpixels


def background_connectivity_saliency(image: np.ndarray, labels: np.ndarray, *, sigma_clr: float = 10.0,
                                     sigma_bndcon: float = 1.0, sigma_spa: float = 0.25,
                                     mu: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Per-superpixel saliency in [0, 1] (Zhu et al. CVPR 2014, Eq. 1-9).

    image (H, W, 3) uint8 RGB; labels (H, W) int superpixels 0..n-1. Returns
    ``saliency`` (n,) float64 and the superpixels' mean Lab colours (n, 3).
    """
    n = int(labels.max()) + 1
    h, w = labels.shape
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB).reshape(-1, 3)
    flat = labels.ravel()
    count = np.bincount(flat, minlength=n).astype(np.float64)
    colour = np.stack([np.bincount(flat, lab[:, c], minlength=n) for c in range(3)], 1) / count[:, None]
    yy, xx = np.mgrid[0:h, 0:w]
    pos = np.stack([np.bincount(flat, (yy / h).ravel(), minlength=n),
                    np.bincount(flat, (xx / w).ravel(), minlength=n)], 1) / count[:, None]
    if n == 1:
        return np.zeros(1), colour
    adj = region_adjacency(labels)
    d_app_adj = np.linalg.norm(colour[adj[:, 0]] - colour[adj[:, 1]], axis=1)
    # boundary superpixels are connected to each other too (Zhu et al. Sec. 3.2)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    bi, bj = np.meshgrid(border, border)
    sel = bi < bj
    pairs = np.concatenate([adj, np.stack([bi[sel], bj[sel]], 1)])
    weights = np.concatenate([d_app_adj, np.linalg.norm(colour[bi[sel]] - colour[bj[sel]], axis=1)])
    weights = np.maximum(weights, 1e-6)     # csgraph treats 0 as "no edge"
    graph = sparse.coo_matrix((weights, (pairs[:, 0], pairs[:, 1])), shape=(n, n)).tocsr()
    geo = csgraph.dijkstra(graph, directed=False)
    geo[~np.isfinite(geo)] = geo[np.isfinite(geo)].max(initial=0) * 2 + 1
    span = np.exp(-geo ** 2 / (2 * sigma_clr ** 2))
    area = span.sum(1)
    is_border = np.zeros(n, dtype=bool)
    is_border[border] = True
    len_bnd = span[:, is_border].sum(1)
    bndcon = len_bnd / np.sqrt(area)
    w_bg = 1.0 - np.exp(-bndcon ** 2 / (2 * sigma_bndcon ** 2))
    d_app = np.linalg.norm(colour[:, None] - colour[None], axis=2)
    d_spa = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    w_spa = np.exp(-d_spa ** 2 / (2 * sigma_spa ** 2))
    wctr = (d_app * w_spa * w_bg[None]).sum(1)
    wctr = wctr / max(wctr.max(), 1e-12)
    wij = np.exp(-d_app_adj ** 2 / (2 * sigma_clr ** 2)) + mu
    L = sparse.coo_matrix((np.concatenate([wij, wij]), (np.concatenate([adj[:, 0], adj[:, 1]]),
                                                        np.concatenate([adj[:, 1], adj[:, 0]]))), shape=(n, n))
    lap = sparse.diags(np.asarray(L.sum(1)).ravel()) - L
    A = (sparse.diags(w_bg + wctr) + lap).tocsc()
    s = sparse.linalg.spsolve(A, wctr)
    s = np.clip(s, 0, None)
    rng = s.max() - s.min()
    return (s - s.min()) / rng if rng > 0 else np.zeros(n), colour


def salient_instances(labels: np.ndarray, saliency: np.ndarray, colour: np.ndarray, *, threshold=(0.3, 0.5, 0.7),
                      split: float = 40.0) -> list[tuple[np.ndarray, float]]:
    """Instances from superpixel saliency: [(superpixel membership (n,) bool, mean saliency), ...].

    Superpixels with saliency >= ``threshold`` are grouped by connected components
    of the superpixel adjacency graph; each component is also cut along edges
    whose mean Lab colour difference exceeds ``split`` (strong boundaries), and
    every part that differs from its component is an instance too.
    """
    n = len(saliency)
    all_adj = region_adjacency(labels) if n > 1 else np.zeros((0, 2), dtype=np.int64)
    out = []
    seen = set()
    for t in np.atleast_1d(threshold):
        on = saliency >= t
        if on.any():
            adj = all_adj[on[all_adj[:, 0]] & on[all_adj[:, 1]]]
            d = np.linalg.norm(colour[adj[:, 0]] - colour[adj[:, 1]], axis=1)
            out += _components(on, adj, d, split, seen, saliency)
    return out


def _components(on, adj, d, split, seen, saliency):
    """Connected components of the ``on`` superpixels, whole and cut at edges with d > split."""
    n = len(on)
    out = []
    for edges in (adj, adj[d <= split]):
        g = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
        _, comp = csgraph.connected_components(g, directed=False)
        for c in np.unique(comp[on]):
            members = on & (comp == c)
            key = members.tobytes()
            if key in seen:
                continue
            seen.add(key)
            out.append((members, float(saliency[members].mean())))
    return out


def saliency_proposals(image: np.ndarray, *, threshold=(0.3, 0.5, 0.7), k: float = 100.0, sigma: float = 0.8,
                       min_size: int | None = 20, split: float = 40.0, min_area: float = 0.0,
                       max_proposals: int = 0):
    """Salient-instance proposals of one image (see the module docstring).

    image (H, W, 3) uint8 RGB. ``min_size`` None = :func:`scaled_min_size`. Returns ``boxes`` (N, 4) float32 xyxy,
    ``scores`` (N,) float32 mean saliency and ``counts`` N COCO RLE masks, best first.
    """
    if min_size is None:
        min_size = scaled_min_size(k, *image.shape[:2])
    labels = superpixels(image, k, sigma, min_size)
    sal, colour = background_connectivity_saliency(image, labels)
    inst = salient_instances(labels, sal, colour, threshold=threshold, split=split)
    h, w = labels.shape
    area = np.bincount(labels.ravel(), minlength=len(sal))
    inst = [(m, s) for m, s in inst if area[m].sum() >= max(min_area, 1)]
    inst.sort(key=lambda x: -x[1])
    if max_proposals and max_proposals > 0:
        inst = inst[:max_proposals]
    if not inst:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), []
    masks = np.stack([m[labels] for m, _ in inst])
    counts = mask_io.encode(masks)
    return mask_io.boxes(counts, h, w), np.array([s for _, s in inst], dtype=np.float32), counts


def saliency_map(image: np.ndarray, *, k: float = 100.0, sigma: float = 0.8, min_size: int = 20) -> np.ndarray:
    """(H, W) float32 saliency in [0, 1] (for display)."""
    labels = superpixels(image, k, sigma, min_size)
    sal, _ = background_connectivity_saliency(image, labels)
    return sal[labels].astype(np.float32)
