"""Class probabilities from CAMs, for seeded region growing and the dense CRF."""

from __future__ import annotations

import numpy as np


def cam_probabilities(cams: np.ndarray, labels, num_classes: int, background: np.ndarray | None = None):
    """Dense probabilities over labels 0..K from the CAMs of an image's present classes.

    cams: (C', H, W) float in [0, 1], one map per entry of ``labels`` (ints in 1..K);
    background: (H, W) float in [0, 1] (larger = more likely background, e.g. the stored
    `background` map of ``ws cam infer --background``) or None for 1 - max CAM (the
    background cue DSRG's and SEC's CAM pipelines use). Foreground channels are the CAMs;
    the maps are normalised to sum to 1 over the present labels.

    Returns ``(probs (K+1, H, W) float32, present (K+1,) bool)`` (background always present).
    """
    cams = np.asarray(cams, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    if cams.ndim != 3 or cams.shape[0] != labels.size:
        raise ValueError(f"cams {cams.shape} do not match labels {labels.shape}")
    h, w = cams.shape[1:]
    bg = 1.0 - cams.max(0) if background is None else np.asarray(background, dtype=np.float32)
    dense = np.zeros((num_classes + 1, h, w), np.float32)
    dense[0] = bg
    dense[labels] = cams
    present = np.zeros(num_classes + 1, bool)
    present[0] = True
    present[labels] = True
    dense /= np.maximum(dense.sum(0, keepdims=True), 1e-6)
    return dense, present
