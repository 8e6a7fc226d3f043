"""Seeded region growing (DSRG, Huang et al. 2018, Sect. 3.3, Eq. 3).

Every pixel first gets a *confident label*: its most probable present class ``b`` when
``p_b > theta_b`` (``theta_f = 0.85`` for foreground classes, ``theta_b = 0.99`` for
background), else its seed label (255 where it has none).  Class ``c`` then grows over
the 8-connected components of ``{confident label == c}`` that hold a seed of ``c``;
seeds are never overwritten.  This is the behaviour of DSRG's released layer
(``generate_seed_step``): a seed pixel whose confident argmax is another class counts as
that other class's pixel, so it leaves its own class's connectivity mask (it can neither
start nor bridge that class's growth), and a pixel seeded with another class that is
confidently ``c`` stays in ``c``'s mask (it connects, but keeps its seed).

The released code tests the background against ``max(theta_f, theta_b)`` (it checks
``theta_f`` first); the paper's Eq. 3 uses ``theta_b`` alone.  Both agree for the paper's
values (theta_b = 0.99 > theta_f = 0.85); here the paper's rule applies.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..labels import IGNORE

_EIGHT = np.ones((3, 3), dtype=bool)


def confident_labels(probs: np.ndarray, seeds: np.ndarray, present: np.ndarray,
                     theta_fg: float = 0.85, theta_bg: float = 0.99) -> np.ndarray:
    """(H, W) int label of DSRG's connectivity masks: the argmax present class where its
    probability exceeds its threshold (theta_bg for class 0, theta_fg otherwise), else the
    seed (255 = none).  ``confident_labels(...) == c`` is class c's mask."""
    probs = np.asarray(probs)
    classes = np.flatnonzero(np.asarray(present, dtype=bool))
    out = np.asarray(seeds).astype(np.int64).copy()
    if classes.size == 0:
        return out
    pick = np.argmax(probs[classes], axis=0)
    best = classes[pick]
    p = np.take_along_axis(probs[classes], pick[None], axis=0)[0]
    confident = p > np.where(best == 0, theta_bg, theta_fg)
    out[confident] = best[confident]
    return out


def grow_masks(probs: np.ndarray, seeds: np.ndarray, present: np.ndarray,
               theta_fg: float = 0.85, theta_bg: float = 0.99) -> list:
    """Per present class ``c`` its connectivity mask ``confident_labels == c``.

    Returns a list of ``(c, mask (H, W) bool)``.
    """
    lab = confident_labels(probs, seeds, present, theta_fg, theta_bg)
    return [(int(c), lab == c) for c in np.flatnonzero(np.asarray(present, dtype=bool))]


def seeded_region_growing(probs: np.ndarray, seeds: np.ndarray, present: np.ndarray,
                          theta_fg: float = 0.85, theta_bg: float = 0.99) -> np.ndarray:
    """Grow seed cues with class probabilities (DSRG Sect. 3.3, the region-growing criterion Eq. 3).

    probs: (C, H, W) float, probabilities over labels 0..K (C = K + 1, 0 = background);
        DSRG grows on the CRF-refined softmax of the segmentation network.
    seeds: (H, W) uint8, 0..K or 255 (no seed): always the *original* cues (DSRG restarts
        the growth from them at every training iteration).
    present: (C,) bool, classes allowed in the image (background normally True).
    theta_fg / theta_bg: probability thresholds theta_f = 0.85 and theta_b = 0.99 (DSRG Sect. 4.1).
    Returns (H, W) uint8 grown labels (255 where nothing reached).
    Vectorised: one ``scipy.ndimage.label`` (8-connectivity) per present class.
    """
    probs = np.asarray(probs)
    seeds = np.asarray(seeds)
    if probs.ndim != 3:
        raise ValueError(f"probs must be (C, H, W), got {probs.shape}")
    if seeds.shape != probs.shape[1:]:
        raise ValueError(f"seeds {seeds.shape} differ from probs {probs.shape[1:]}")
    present = np.asarray(present, dtype=bool)
    if present.shape != (probs.shape[0],):
        raise ValueError(f"present {present.shape} is not ({probs.shape[0]},)")
    out = seeds.astype(np.uint8).copy()
    free = seeds == IGNORE
    for c, mask in grow_masks(probs, seeds, present, theta_fg, theta_bg):
        start = mask & (seeds == c)
        if not start.any():
            continue
        lab, n = ndimage.label(mask, structure=_EIGHT)
        touched = np.zeros(n + 1, dtype=bool)
        touched[lab[start]] = True
        touched[0] = False
        out[touched[lab] & free] = c
    return out
