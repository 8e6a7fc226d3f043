"""Seeded region growing (DSRG, Huang et al. 2018, Sect. 3.2).

From seed cues, every unlabelled pixel whose highest-probability *present* class
``c`` has probability ``> theta_c`` (``theta_f = 0.85`` for foreground classes,
``theta_b = 0.99`` for background) joins class ``c`` when it lies in an
8-connected component of such pixels that touches a seed of ``c``.  Seeds are
never overwritten.  As in DSRG's released ``generate_seed_step``, a pixel that
holds another class's seed is excluded from the growth of ``c`` but does not
split a component of ``c`` (it stays part of the connectivity mask).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

IGNORE = 255
_EIGHT = np.ones((3, 3), dtype=bool)


def grow_masks(probs: np.ndarray, seeds: np.ndarray, present: np.ndarray,
               theta_fg: float = 0.85, theta_bg: float = 0.99) -> list:
    """Per present class ``c`` the connectivity mask of DSRG: ``(argmax == c & p_c > theta_c) | seed == c``.

    Returns a list of ``(c, mask (H, W) bool)``.
    """
    probs = np.asarray(probs)
    present = np.asarray(present, dtype=bool)
    classes = np.flatnonzero(present)
    if classes.size == 0:
        return []
    best = classes[np.argmax(probs[classes], axis=0)]
    out = []
    for c in classes:
        theta = theta_bg if c == 0 else theta_fg
        mask = ((best == c) & (probs[c] > theta)) | (seeds == c)
        out.append((int(c), mask))
    return out


def seeded_region_growing(probs: np.ndarray, seeds: np.ndarray, present: np.ndarray,
                          theta_fg: float = 0.85, theta_bg: float = 0.99) -> np.ndarray:
    """Grow seed cues with class probabilities (DSRG Sect. 3.2, the region-growing criterion).

    probs: (C, H, W) float, probabilities over labels 0..K (C = K + 1, 0 = background).
    seeds: (H, W) uint8, 0..K or 255 (no seed).
    present: (C,) bool, classes allowed in the image (background normally True).
    theta_fg / theta_bg: probability thresholds theta_f = 0.85 and theta_b = 0.99 (DSRG).
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
        seed_c = seeds == c
        if not seed_c.any():
            continue
        lab, n = ndimage.label(mask, structure=_EIGHT)
        touched = np.zeros(n + 1, dtype=bool)
        touched[lab[seed_c]] = True
        touched[0] = False
        grow = touched[lab] & free
        out[grow] = c
    return out
