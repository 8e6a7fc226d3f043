"""Class peaks (Huang et al., Neurocomputing 2021, Sect. 3.1, Eq. 1).

For each present class c with score map M_c (the c-th channel of the classifier's last
convolution, at the score-map resolution h x w):

    P^c = max(M_c - G(M_c) - E_eta, 0)                                      (Eq. 1)

with G a Gaussian filter and E_eta = mean(M_c) (the paper's choice). The peaks are the
local maxima of P^c: cells where P^c > 0 and P^c equals the maximum of its 3 x 3 (``window``)
neighbourhood (the paper says "local maximal responses"; the 3 x 3 window is Zhou et al.'s
released default, whose filter is a median threshold on the raw map instead of Eq. 1). On coarse maps Eq. 1 can leave a tagged class without any peak (a blob wider
than the Gaussian is flattened by G); with ``at_least_one`` the class's global maximum of M_c
is then its single peak, since a tag says at least one instance is present.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def peak_map(score_map: np.ndarray, sigma: float = 1.0, eta: float | None = None) -> np.ndarray:
    """Eq. 1 for one class. ``score_map`` (h, w) float; ``sigma`` of G in score-map cells;
    ``eta`` the threshold (None = mean of the map, the paper's E_eta). Returns (h, w) float32 >= 0."""
    m = np.asarray(score_map, dtype=np.float64)
    g = ndimage.gaussian_filter(m, sigma=sigma, mode="nearest") if sigma > 0 else m
    e = m.mean() if eta is None else float(eta)
    return np.maximum(m - g - e, 0.0).astype(np.float32)


def find_peaks(score_maps: np.ndarray, labels, sigma: float = 1.0, eta: float | None = None, window: int = 3,
               max_peaks: int = 0, at_least_one: bool = True, relu: bool = True) -> np.ndarray:
    """Peaks of the classes ``labels`` (1..K) of one image.

    Parameters
    ----------
    score_maps : (K, h, w) float, the classifier's score maps (all K classes); Eq. 1 runs on
        the CAM M_c = ReLU(score map) (as ``ws cam`` defines CAMs) or, with ``relu=False``,
        on the raw score map ("the c-th channel of the last convolutional layers", Sect. 3.1);
        the score is the raw value
    labels : labels (1..K) of the classes whose peaks to find (the tags, or predicted classes)
    sigma, eta : of :func:`peak_map` (Eq. 1)
    window : side of the square neighbourhood of a local maximum (cells)
    max_peaks : keep at most this many peaks per class, the strongest (0 = all)
    at_least_one : a class with no peak gets its global maximum of M_c as its peak
    relu : Eq. 1 on ReLU(score map) (True) or on the raw score map

    Returns
    -------
    (N, 4) float32 rows ``[label, i, j, score]``: score-map cell (row i, column j) and the
    raw class score there, sorted by label then descending score.
    """
    score_maps = np.asarray(score_maps, dtype=np.float32)
    rows = []
    for lab in sorted(int(x) for x in labels):
        raw = score_maps[lab - 1]
        m = np.maximum(raw, 0) if relu else raw
        p = peak_map(m, sigma, eta)
        local = ndimage.maximum_filter(p, size=window, mode="constant", cval=0.0)
        ii, jj = np.nonzero((p > 0) & (p >= local))
        if ii.size == 0 and at_least_one:
            ii, jj = np.unravel_index(np.argmax(raw), m.shape)
            ii, jj = np.array([ii]), np.array([jj])
        s = raw[ii, jj]
        order = np.argsort(-s, kind="stable")
        if max_peaks:
            order = order[:max_peaks]
        rows += [(lab, ii[o], jj[o], s[o]) for o in order]
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)


def cells_to_pixels(peaks: np.ndarray, map_hw, image_hw) -> np.ndarray:
    """Score-map cells ``[label, i, j, score]`` -> full-image pixel rows ``[label, y, x, score]``
    (the centre of the cell: y = (i + 0.5) * H / h - 0.5)."""
    out = np.array(peaks, dtype=np.float32).reshape(-1, 4)
    (h, w), (H, W) = map_hw, image_hw
    out[:, 1] = (out[:, 1] + 0.5) * H / h - 0.5
    out[:, 2] = (out[:, 2] + 0.5) * W / w - 0.5
    return out
