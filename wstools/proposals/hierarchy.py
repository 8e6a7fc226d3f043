"""Hierarchical grouping of superpixels with masks (selective search, Uijlings et al. IJCV 2013).

The pipeline of :func:`hierarchy_proposals`:

1. Felzenszwalb-Huttenlocher superpixels (OpenCV contrib's graph segmentation)
   at each scale ``k`` (Uijlings et al. Sec. 3.2: sigma 0.8, ``min_size = k``;
   here min_size is k scaled by the image area relative to 500x375, at least 20).
2. Per superpixel, in each colour space, a colour histogram (25 bins per
   channel) and a texture histogram (Gaussian derivatives, sigma 1, in 8
   orientations per channel, 10 bins each), both L1-normalised (Sec. 3.2).
3. Greedy grouping (Algorithm 1): the most similar adjacent pair is merged,
   the merged region's features are the size-weighted means of its parts
   (O(1) per merge), and its histogram intersections with its neighbours are
   computed in one numpy step (the rest of the loop on Python scalars). Similarity is the sum of the strategy's terms of
   Sec. 3.2: s_colour and s_texture (histogram intersection), s_size
   = 1 - (r_i + r_j)/|im| and s_fill = 1 - (|BB_ij| - r_i - r_j)/|im|.
4. Every region of every hierarchy (superpixels included) is a proposal; a
   region's rank is its position j in its hierarchy (1 = the whole image, the
   last merge) times a random number in [0, 1] (Sec. 4.1, "combining
   locations"); duplicates (pixel-identical masks, found through a 64-bit
   hash summed over the atoms of the overlay of all superpixel maps) keep
   their best rank.

Masks are produced only for the kept proposals, from each region's set of
superpixels, and encoded with pycocotools.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from .. import masks as mask_io

COLOUR_SPACES = ("hsv", "lab", "rgb", "rgi", "gray")
#: similarity terms of each strategy letter: C colour, T texture, S size, F fill
STRATEGY_TERMS = "ctsf"
COLOUR_BINS = 25
TEXTURE_BINS = 10
TEXTURE_ORIENTATIONS = 8
#: from this many neighbours on, a merged region's size and fill similarities are computed with numpy
VECTOR_DEGREE = 30


def superpixels(image: np.ndarray, k: float, sigma: float = 0.8, min_size: int | None = None, *,
                per_area: bool = False) -> np.ndarray:
    """Felzenszwalb-Huttenlocher graph-based segmentation (IJCV 2004) through OpenCV contrib.

    image: (H, W, 3) uint8. ``k`` is the scale of the threshold function
    tau(C) = k / |C| (Eq. 5 there); ``min_size`` defaults to ``k`` as in selective
    search. With ``per_area`` both are given for a :data:`REFERENCE_AREA` image
    (PASCAL VOC's 500x375) and scaled by this image's area: k' = k x H x W / area
    (tau compares a component's internal difference with k / |C|, and |C| grows with
    the area, so this keeps the number of superpixels of an image independent of its
    size) and the default min_size is :func:`scaled_min_size` with a floor of
    :data:`PER_AREA_MIN_SIZE_FLOOR` pixels.
    Without it, ``k = 100`` gives about 11 segments on a 96 px image.
    Returns (H, W) int32 labels 0..n-1 (every label present).
    """
    if per_area:
        h, w = image.shape[:2]
        if min_size is None:
            min_size = scaled_min_size(k, h, w, floor=PER_AREA_MIN_SIZE_FLOOR)
        k = float(k) * h * w / REFERENCE_AREA
    min_size = int(k) if min_size is None else int(min_size)
    seg = cv2.ximgproc.segmentation.createGraphSegmentation(sigma=float(sigma), k=float(k), min_size=min_size)
    labels = seg.processImage(np.ascontiguousarray(image))
    return labels.astype(np.int32, copy=False)


#: image area (pixels) at which selective search's min_size = k applies: PASCAL VOC's 500x375
REFERENCE_AREA = 500 * 375
#: the smallest min_size of :func:`scaled_min_size` (keeps the small objects of small images)
MIN_SIZE_FLOOR = 20
#: the smallest default min_size of ``superpixels(..., per_area=True)`` (Sun et al.'s snapping): with 20,
#: 64 px toy images keep about 60 superpixels and snapping blurred-GT cues loses 0.06 mIoU; with 10 it
#: gains (tests/test_oracle_grow.py)
PER_AREA_MIN_SIZE_FLOOR = 10


def scaled_min_size(k: float, height: int, width: int, floor: int = MIN_SIZE_FLOOR) -> int:
    """Smallest superpixel (pixels) for scale ``k`` on a ``height`` x ``width`` image.

    Selective search sets min_size = k (Uijlings et al. 2013 Sec. 3.2) on PASCAL
    images (about 500x375); here k is scaled by the image's area relative to
    that, and never below ``floor`` (our choice, by experiment on ``ws toy``).
    """
    return max(int(floor), int(round(float(k) * height * width / REFERENCE_AREA)))


def convert_colour(image: np.ndarray, space: str) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 RGB -> (H, W, C) uint8 in ``space`` and each channel's value range (C,).

    Spaces of Uijlings et al. Table 1: ``hsv``, ``lab``, ``rgb``, ``rgi``
    (normalised r, g and intensity) and ``gray``.
    """
    if space == "hsv":
        return cv2.cvtColor(image, cv2.COLOR_RGB2HSV), np.array([180, 256, 256])
    if space == "lab":
        return cv2.cvtColor(image, cv2.COLOR_RGB2LAB), np.array([256, 256, 256])
    if space == "rgb":
        return np.ascontiguousarray(image), np.array([256, 256, 256])
    if space == "rgi":
        f = image.astype(np.float32)
        s = f.sum(2, keepdims=True) + 1e-6
        out = np.concatenate([f[..., :2] / s * 255.0, s / 3.0], axis=2)
        return np.clip(out, 0, 255).astype(np.uint8), np.array([256, 256, 256])
    if space == "gray":
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], np.array([256])
    raise ValueError(f"unknown colour space {space!r}; known: {', '.join(COLOUR_SPACES)}")


def colour_bins(cimg: np.ndarray, ranges: np.ndarray, bins: int = COLOUR_BINS) -> np.ndarray:
    """Per-pixel histogram bin of each channel, offset per channel: (H, W, C) int32 in [0, C*bins)."""
    b = (cimg.astype(np.int32) * bins) // ranges.astype(np.int32)
    return b + (np.arange(cimg.shape[2], dtype=np.int32) * bins)


def texture_bins(cimg: np.ndarray, bins: int = TEXTURE_BINS, sigma: float = 1.0, stride: int = 1) -> np.ndarray:
    """Per-pixel texture bins (Uijlings et al. Sec. 3.2): (H', W', C*8) int32 in [0, C*8*bins).

    Gaussian derivatives (scale ``sigma``) in 4 directions (0, 45, 90, 135
    degrees), split into their positive and negative halves = 8 orientations per
    channel; each response is quantised into ``bins`` bins over [0, its maximum].
    With ``stride`` s > 1 only the pixels ``[::s, ::s]`` are computed (H' =
    ceil(H / s)): the derivatives are central differences of the smoothed image
    there (OpenCV's Sobel with ksize 1), s**2 times cheaper.
    """
    f = cv2.GaussianBlur(cimg.astype(np.float32), (0, 0), sigma)
    if f.ndim == 2:
        f = f[..., None]
    h, w = f.shape[:2]
    fp = cv2.copyMakeBorder(f, 1, 1, 1, 1, cv2.BORDER_REFLECT_101)
    if fp.ndim == 2:
        fp = fp[..., None]
    s = int(stride)
    gx = fp[1:h + 1:s, 2:w + 2:s] - fp[1:h + 1:s, 0:w:s]
    gy = fp[2:h + 2:s, 1:w + 1:s] - fp[0:h:s, 1:w + 1:s]
    c = np.float32(np.sqrt(0.5))
    dirs = (gx, (gx + gy) * c, gy, (gy - gx) * c)
    maps = []
    for d in dirs:
        maps.append(np.maximum(d, 0))
        maps.append(np.maximum(-d, 0))
    resp = np.stack(maps, axis=3)                     # (H', W', C, 8)
    top = resp.max(axis=(0, 1), keepdims=True) + 1e-6
    q = np.minimum((resp * (bins / top)).astype(np.int32), bins - 1)
    hh, ww, nc, no = q.shape
    q = q + (np.arange(nc * no, dtype=np.int32).reshape(1, 1, nc, no) * bins)
    return q.reshape(hh, ww, nc * no)


def region_histograms(labels: np.ndarray, n: int, bins: np.ndarray, width: int, stride: int = 1) -> np.ndarray:
    """L1-normalised histogram of each region: (n, width) float32 from per-pixel ``bins`` (H, W, C).

    Each channel's histogram is normalised separately, then the whole vector
    sums to 1 (as in Uijlings et al.). ``stride`` > 1 samples every stride-th
    pixel in each direction (for the texture histograms).
    """
    lab = labels[::stride, ::stride]
    b = bins[::stride, ::stride]
    idx = (lab.astype(np.int64)[..., None] * width + b).ravel()
    hist = np.bincount(idx, minlength=n * width).astype(np.float32).reshape(n, width)
    s = hist.sum(1, keepdims=True)
    return hist / np.maximum(s, 1.0)


def region_adjacency(labels: np.ndarray) -> np.ndarray:
    """Pairs (a, b), a < b, of regions touching in 8-connectivity: (E, 2) int64, unique, sorted."""
    lab = labels.astype(np.int64)
    pairs = []
    for a, b in ((lab[:, :-1], lab[:, 1:]), (lab[:-1, :], lab[1:, :]),
                 (lab[:-1, :-1], lab[1:, 1:]), (lab[:-1, 1:], lab[1:, :-1])):
        d = a != b
        pairs.append(np.stack([a[d], b[d]], 1))
    p = np.concatenate(pairs)
    p.sort(axis=1)
    n = int(lab.max()) + 1
    code = np.unique(p[:, 0] * n + p[:, 1])
    return np.stack([code // n, code % n], 1)


def region_boxes(labels: np.ndarray, n: int) -> np.ndarray:
    """Tight boxes of regions 0..n-1 as (n, 4) float64 ``x0, y0, x1, y1`` (x1, y1 exclusive)."""
    out = np.zeros((n, 4), dtype=np.float64)
    for i, sl in enumerate(ndimage.find_objects(labels + 1, max_label=n)):
        if sl is not None:
            out[i] = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
    return out


@dataclass
class Hierarchy:
    """The result of greedy grouping of n regions.

    ``merges`` (m, 2) int64: the two nodes merged at step t create node n + t;
    ``size`` (n + m,) and ``box`` (n + m, 4): every node's area and box.
    m = n - 1 when the adjacency graph is connected.
    """

    n: int
    merges: np.ndarray
    size: np.ndarray
    box: np.ndarray

    def positions(self) -> np.ndarray:
        """Position j of every node (1 = last merge, i.e. the top; leaves last): (n + m,) int64."""
        m = len(self.merges)
        return np.concatenate([m + 1 + np.arange(self.n), m - np.arange(m)]).astype(np.int64)

    def members(self) -> np.ndarray:
        """(n + m, n) bool: the leaves (superpixels) under each node."""
        m = np.zeros((self.n + len(self.merges), self.n), dtype=bool)
        m[np.arange(self.n), np.arange(self.n)] = True
        for t, (i, j) in enumerate(self.merges):
            np.logical_or(m[i], m[j], out=m[self.n + t])
        return m


def greedy_grouping(adjacency: np.ndarray, size: np.ndarray, box: np.ndarray, colour: np.ndarray | None,
                    texture: np.ndarray | None, image_area: float, weights=(1.0, 1.0, 1.0, 1.0)) -> Hierarchy:
    """Hierarchical grouping, Algorithm 1 of Uijlings et al. (IJCV 2013).

    adjacency (E, 2) pairs of adjacent regions; size (n,) areas in pixels; box
    (n, 4) xyxy; colour (n, Dc) and texture (n, Dt) L1-normalised histograms
    (``None`` when the strategy does not use them); ``weights`` = (a_colour,
    a_texture, a_size, a_fill) of s(r_i, r_j) = sum_k a_k s_k (Eq. 1-5 of Sec. 3.2).

    Merged features are the size-weighted means of the parts, C_t = (size_i C_i
    + size_j C_j) / (size_i + size_j) (Sec. 3.2), so a merge costs O(degree).
    Ties are broken by the smaller node ids (deterministic).
    """
    n = len(size)
    total = 2 * n - 1
    wc, wt, ws, wf = (float(w) for w in weights)
    # colour and texture similarities are both histogram intersections: one weighted feature matrix
    parts = [wc * np.asarray(colour, np.float32)] if (wc and colour is not None) else []
    if wt and texture is not None:
        parts.append(wt * np.asarray(texture, np.float32))
    F = np.zeros((total, sum(p.shape[1] for p in parts)), dtype=np.float32) if parts else None
    if F is not None:
        F[:n] = np.concatenate(parts, axis=1)
    sz = np.zeros(total, dtype=np.float64)
    sz[:n] = size
    bx = np.zeros((total, 4), dtype=np.float64)
    bx[:n] = box
    inv_area = 1.0 / float(image_area)

    def similarity(i, j):
        """s(r_i, r_j) for index arrays i, j (Uijlings et al. Eq. 1-5)."""
        s = np.minimum(F[i], F[j]).sum(-1, dtype=np.float64) if F is not None else np.zeros(np.broadcast(i, j).shape)
        ssum = sz[i] + sz[j]
        if ws:
            s += ws * (1.0 - ssum * inv_area)
        if wf:
            bi, bj = bx[i], bx[j]
            bb = (np.maximum(bi[..., 2], bj[..., 2]) - np.minimum(bi[..., 0], bj[..., 0])) * \
                 (np.maximum(bi[..., 3], bj[..., 3]) - np.minimum(bi[..., 1], bj[..., 1]))
            s += wf * (1.0 - (bb - ssum) * inv_area)
        return s

    a, b = adjacency[:, 0], adjacency[:, 1]
    heap = list(zip((-similarity(a, b)).tolist(), a.tolist(), b.tolist())) if len(a) else []
    heapq.heapify(heap)
    neighbours = [set() for _ in range(total)]
    for i, j in zip(a.tolist(), b.tolist()):
        neighbours[i].add(j)
        neighbours[j].add(i)
    # the loop works on Python scalars; numpy only for the one histogram-intersection step per merge
    alive = [True] * n + [False] * (n - 1)
    sizes = sz.tolist()
    x0, y0, x1, y1 = (bx[:, c].tolist() for c in range(4))
    merges = []
    t = n
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        _, i, j = pop(heap)
        if not (alive[i] and alive[j]):
            continue
        alive[i] = alive[j] = False
        alive[t] = True
        si, sj = sizes[i], sizes[j]
        st = si + sj
        sizes[t] = st
        tx0, ty0 = min(x0[i], x0[j]), min(y0[i], y0[j])
        tx1, ty1 = max(x1[i], x1[j]), max(y1[i], y1[j])
        x0[t], y0[t], x1[t], y1[t] = tx0, ty0, tx1, ty1
        sz[t] = st
        bx[t] = (tx0, ty0, tx1, ty1)
        ni, nj = neighbours[i], neighbours[j]
        ni.discard(j)
        nj.discard(i)
        nb = ni | nj
        for k in ni:
            nk = neighbours[k]
            nk.discard(i)
            nk.add(t)
        for k in nj:
            nk = neighbours[k]
            nk.discard(j)
            nk.add(t)
        neighbours[t] = nb
        neighbours[i] = neighbours[j] = None
        merges.append((i, j))
        if nb:
            js = list(nb)
            if F is not None:
                Ft = F[t]
                np.multiply(F[i], np.float32(si / st), out=Ft)
                Ft += F[j] * np.float32(sj / st)
                hs = np.minimum(F.take(js, 0), Ft).sum(1, dtype=np.float64).tolist()
            else:
                hs = [0.0] * len(js)
            if len(js) >= VECTOR_DEGREE and (ws or wf):
                # many neighbours (a large region): the size and fill terms in one numpy step
                ja = np.array(js)
                ssum = st + sz[ja]
                hs = np.array(hs)
                if ws:
                    hs += ws * (1.0 - ssum * inv_area)
                if wf:
                    bk = bx[ja]
                    bb = (np.maximum(tx1, bk[:, 2]) - np.minimum(tx0, bk[:, 0])) * \
                         (np.maximum(ty1, bk[:, 3]) - np.minimum(ty0, bk[:, 1]))
                    hs += wf * (1.0 - (bb - ssum) * inv_area)
                for k, s in zip(js, hs.tolist()):
                    push(heap, (-s, k, t))
            else:
                for k, s in zip(js, hs):
                    ssum = st + sizes[k]
                    if ws:
                        s += ws * (1.0 - ssum * inv_area)
                    if wf:
                        bb = (max(tx1, x1[k]) - min(tx0, x0[k])) * (max(ty1, y1[k]) - min(ty0, y0[k]))
                        s += wf * (1.0 - (bb - ssum) * inv_area)
                    push(heap, (-s, k, t))
        elif F is not None:
            np.add(F[i] * np.float32(si / st), F[j] * np.float32(sj / st), out=F[t])
        t += 1
    m = len(merges)
    return Hierarchy(n=n, merges=np.asarray(merges, dtype=np.int64).reshape(m, 2), size=sz[:n + m].copy(),
                     box=bx[:n + m].copy())


#: Uijlings et al.'s "fast" diversification (Sec. 5.2): HSV and Lab, two strategies
DEFAULT_STRATEGIES = ("ctsf", "tsf")


def strategy_weights(strategy: str) -> tuple:
    """``"ctsf"`` -> (a_colour, a_texture, a_size, a_fill) with 1 for each letter present."""
    s = strategy.lower()
    if not s or any(ch not in STRATEGY_TERMS for ch in s) or len(set(s)) != len(s):
        raise ValueError(f"strategy {strategy!r} must be a combination of the letters c, t, s, f")
    return tuple(1.0 if ch in s else 0.0 for ch in STRATEGY_TERMS)


@dataclass
class Candidates:
    """Ranked, de-duplicated regions of all hierarchies of one image (before masks).

    ``segmentation`` (N,) index into ``label_maps``; ``members`` a list of (n_s,)
    bool arrays per candidate (its superpixels in that map); ``box`` (N, 4)
    xyxy; ``area`` (N,); ``priority`` (N,) ascending (best first).
    """

    label_maps: list
    segmentation: np.ndarray
    members: list
    box: np.ndarray
    area: np.ndarray
    priority: np.ndarray

    def __len__(self):
        return len(self.priority)

    def masks(self, index) -> np.ndarray:
        """(len(index), H, W) bool masks of the candidates ``index``."""
        out = []
        for i in index:
            lab = self.label_maps[self.segmentation[i]]
            out.append(self.members[i][lab])
        h, w = self.label_maps[0].shape
        return np.stack(out) if out else np.zeros((0, h, w), dtype=bool)

    def encode(self, index, chunk: int = 32) -> list[bytes]:
        """COCO RLE ``counts`` of the candidates ``index`` (pycocotools), in chunks of masks."""
        from pycocotools import mask as mask_utils

        index = list(index)
        transposed = [np.ascontiguousarray(lab.T) for lab in self.label_maps]
        h, w = self.label_maps[0].shape
        counts = []
        for s in range(0, len(index), chunk):
            part = index[s:s + chunk]
            # (B, W, H) in C order is (H, W, B) in Fortran order, what pycocotools encodes;
            # each mask is gathered only inside its box (it is empty outside)
            stack = np.zeros((len(part), w, h), dtype=np.uint8)
            for b, i in enumerate(part):
                x0, y0, x1, y1 = (int(v) for v in self.box[i])
                lut = self.members[i].view(np.uint8)
                stack[b, x0:x1, y0:y1] = lut[transposed[self.segmentation[i]][x0:x1, y0:y1]]
            counts += [r["counts"] for r in mask_utils.encode(stack.transpose(2, 1, 0))]
        return counts


def _atom_hashes(label_maps: list, rng: np.random.Generator) -> list:
    """A random 64-bit code per atom of the overlay of all label maps; per map, the sum
    (mod 2**64) of the codes of each superpixel's atoms: list of (n_s,) uint64."""
    code = np.zeros(label_maps[0].shape, dtype=np.int64)
    for lab in label_maps:
        code = code * (int(lab.max()) + 1) + lab
    atoms, inverse = np.unique(code.ravel(), return_inverse=True)
    values = rng.integers(0, 2 ** 63, size=len(atoms), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    first = np.zeros(len(atoms), dtype=np.int64)
    first[inverse[::-1]] = np.arange(code.size - 1, -1, -1)
    out = []
    for lab in label_maps:
        n = int(lab.max()) + 1
        h = np.zeros(n, dtype=np.uint64)
        np.add.at(h, lab.ravel()[first], values)
        out.append(h)
    return out


def hierarchy_candidates(image: np.ndarray, *, ks=(50.0, 100.0), sigma: float = 0.8,
                         colour_spaces=("hsv", "lab"), strategies=DEFAULT_STRATEGIES,
                         texture_stride: int = 2, seed: int = 0, superpixel_spaces=("rgb",),
                         min_size=None, box_dedupe=True) -> Candidates:
    """All regions of all hierarchies of one image, de-duplicated and ranked (Uijlings et al. 2013).

    image (H, W, 3) uint8 RGB. One Felzenszwalb superpixel map per scale in
    ``ks``; on each map one greedy grouping per (colour space, strategy). The
    rank of a region is (position j in its hierarchy) x U[0, 1] (Sec. 4.1);
    a mask found by several hierarchies keeps its best rank. ``seed`` fixes the
    random numbers (and the duplicate hashes). ``min_size`` is the smallest
    superpixel in pixels; None = :func:`scaled_min_size` (selective search's k at
    500x375, scaled by the image area, at least 20). ``box_dedupe`` also drops a region whose box equals a better
    ranked one's, so the first N proposals are spent on N distinct boxes.
    ``superpixel_spaces``: colour spaces the superpixels are computed in.
    """
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    area = float(h * w)
    label_maps = [superpixels(image if sp == "rgb" else convert_colour(image, sp)[0], k, sigma,
                              scaled_min_size(k, h, w) if min_size is None else min_size)
                  for sp in superpixel_spaces for k in ks]
    hashes = _atom_hashes(label_maps, rng)
    spaces = {}
    for cs in colour_spaces:
        cimg, ranges = convert_colour(image, cs)
        spaces[cs] = (colour_bins(cimg, ranges), len(ranges) * COLOUR_BINS,
                      texture_bins(cimg, stride=texture_stride), len(ranges) * TEXTURE_ORIENTATIONS * TEXTURE_BINS)
    weights = [strategy_weights(s) for s in strategies]
    trees, codes, prios, tree_of, node_of = [], [], [], [], []
    mask64 = (1 << 64) - 1
    for si, lab in enumerate(label_maps):
        n = int(lab.max()) + 1
        size = np.bincount(lab.ravel(), minlength=n).astype(np.float64)
        box = region_boxes(lab, n)
        adj = region_adjacency(lab) if n > 1 else np.zeros((0, 2), dtype=np.int64)
        for cs in colour_spaces:
            cb, cw, tb, tw = spaces[cs]
            colour = region_histograms(lab, n, cb, cw)
            texture = region_histograms(lab[::texture_stride, ::texture_stride], n, tb, tw)
            for wgt in weights:
                hier = greedy_grouping(adj, size, box, colour, texture, area, wgt)
                code = hashes[si].tolist()          # a node's hash: the sum of its two parts' (mod 2**64)
                for i, j in hier.merges.tolist():
                    code.append((code[i] + code[j]) & mask64)
                codes.append(np.asarray(code, dtype=np.uint64))
                prios.append(hier.positions() * rng.random(len(code)))
                tree_of.append(np.full(len(code), len(trees), dtype=np.int64))
                node_of.append(np.arange(len(code), dtype=np.int64))
                trees.append((si, hier))
    code, prio = np.concatenate(codes), np.concatenate(prios)
    tree_of, node_of = np.concatenate(tree_of), np.concatenate(node_of)
    # a mask found by several hierarchies keeps its best rank: the first of its hash in rank order
    order = np.argsort(prio, kind="stable")
    _, first = np.unique(code[order], return_index=True)
    keep = order[np.sort(first)]
    box_all = np.concatenate([h.box for _, h in trees])
    offsets = np.cumsum([0] + [len(h.box) for _, h in trees])
    flat = offsets[tree_of[keep]] + node_of[keep]
    if box_dedupe:
        _, first = np.unique(box_all[flat], axis=0, return_index=True)
        keep, flat = keep[np.sort(first)], flat[np.sort(first)]
    member_cache = {}
    members = []
    for hi, node in zip(tree_of[keep].tolist(), node_of[keep].tolist()):
        if hi not in member_cache:
            member_cache[hi] = trees[hi][1].members()
        members.append(member_cache[hi][node])
    size_all = np.concatenate([h.size for _, h in trees])
    seg = np.asarray([si for si, _ in trees], dtype=np.int64)[tree_of[keep]] if len(keep) else np.zeros(0, np.int64)
    return Candidates(label_maps=label_maps, segmentation=seg, members=members,
                      box=box_all[flat].reshape(-1, 4), area=size_all[flat].astype(np.float64),
                      priority=prio[keep].astype(np.float64))


def hierarchy_proposals(image: np.ndarray, *, ks=(50.0, 100.0), sigma: float = 0.8,
                        colour_spaces=("hsv", "lab"), strategies=DEFAULT_STRATEGIES, max_proposals: int = 500,
                        min_area: float = 0.0, max_aspect: float = 0.0, texture_stride: int = 2,
                        seed: int = 0, min_size: int | None = None, dedupe: str = "box"):
    """Ranked segment proposals of one image by hierarchical grouping (see the module docstring).

    image (H, W, 3) uint8 RGB. Candidates smaller than ``min_area`` pixels or
    with a box aspect ratio above ``max_aspect`` (0 = any) are skipped before
    the first ``max_proposals`` are turned into masks. ``dedupe``: ``"mask"``
    removes pixel-identical masks, ``"box"`` also masks whose box a better
    ranked one has.

    Returns ``boxes`` (N, 4) float32 xyxy (x1, y1 exclusive), ``scores`` (N,)
    float32 = 1 / (1 + j r) with j the hierarchy position and r ~ U[0, 1] (the
    selective-search rank, higher is better) and ``counts``: N COCO RLE masks,
    best first.
    """
    from .filtering import shape_filter

    cand = hierarchy_candidates(image, ks=ks, sigma=sigma, colour_spaces=colour_spaces, strategies=strategies,
                                texture_stride=texture_stride, seed=seed, min_size=min_size,
                                box_dedupe=dedupe == "box")
    idx = shape_filter(cand.box, cand.area, min_area, max_aspect)
    if max_proposals and max_proposals > 0:
        idx = idx[:max_proposals]
    counts = cand.encode(idx)
    h, w = image.shape[:2]
    boxes = mask_io.boxes(counts, h, w)
    scores = (1.0 / (1.0 + cand.priority[idx])).astype(np.float32)
    return boxes, scores, counts
