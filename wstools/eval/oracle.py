"""Oracle inputs derived from ground truth, to prove a stage before blaming its inputs.

A method stage is correct when, fed perfect input, its output is near perfect
(DESIGN.md, "How a method is proven"). These functions make that input from a
dataset's ground truth, so the same recipe can be run from it:

- :func:`oracle_cams`: class activation maps that are each tagged class's GT mask,
  blurred (what a perfect but smooth classifier would produce), plus a background
  map; for seeds, snapping and growing (Sun et al., DSRG).
- :func:`oracle_assignment`: every proposal labelled with the class of the GT
  instance it overlaps best (IoU >= threshold), else noise; the perfect assignment
  of a given set of proposals, for the cut and matching recipes (Fan et al., LIID,
  PRM). Its exported pseudo labels are the ceiling of the proposals themselves.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .assignment import true_labels


def oracle_cams(semantic: np.ndarray, labels, sigma: float = 2.0, ignore_index: int = 255):
    """CAMs of a perfect, smooth classifier from a GT label map.

    Parameters
    ----------
    semantic : (H, W) integer array
        GT label map: 0 background, 1..K classes, ``ignore_index`` unlabelled (a VOC
        border counts as neither class nor background: it stays 0 in every map).
    labels : sequence of int in 1..K
        The classes to draw a map for (an image's tags).
    sigma : float
        Gaussian blur in pixels; 0 gives the binary masks.

    Returns
    -------
    cams : (C, H, W) float32 in [0, 1], one map per entry of ``labels``, each scaled so
        its maximum is 1 (a class tagged but absent from the map gives zeros).
    background : (H, W) float32 in [0, 1]: the blurred GT background mask, larger =
        more likely background.
    """
    semantic = np.asarray(semantic)
    if semantic.ndim != 2:
        raise ValueError(f"semantic must be (H, W), got {semantic.shape}")
    if sigma < 0 or not np.isfinite(sigma):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma}")

    def smooth(mask):
        m = mask.astype(np.float32)
        if sigma > 0:
            m = ndimage.gaussian_filter(m, sigma, mode="nearest")
        top = float(m.max())
        return m / top if top > 0 else m

    labels = [int(c) for c in labels]
    cams = np.stack([smooth(semantic == c) for c in labels]) if labels else \
        np.zeros((0,) + semantic.shape, np.float32)
    background = smooth(semantic == 0)
    return np.clip(cams, 0, 1).astype(np.float32), np.clip(background, 0, 1).astype(np.float32)


def oracle_assignment(iou: np.ndarray, gt_labels: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The perfect assignment of P proposals of one image.

    ``iou``: (P, G) mask IoU of proposals with the image's non-crowd GT instances;
    ``gt_labels``: (G,) their classes 1..K. Returns (P,) int64: the class of the
    instance each proposal overlaps best when that IoU reaches ``threshold``, else 0
    (noise) -- the labels ``ws eval assignment`` scores against (LIID Table 7).
    """
    return true_labels(np.asarray(iou), np.asarray(gt_labels), threshold)
