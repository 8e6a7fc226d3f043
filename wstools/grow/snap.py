"""Superpixel snapping of cues (Sun et al. Sect. 3.2)."""

from __future__ import annotations

import numpy as np

from ..labels import IGNORE


def snap_to_superpixels(cues: np.ndarray, segments: np.ndarray, ratio: float = 0.3) -> np.ndarray:
    """Average each cue map over superpixels and keep superpixels whose mean > ratio x max.

    cues: (C', H, W) float maps (e.g. CAMs or 0/1 masks); segments: (H, W) int superpixel ids
    (Felzenszwalb). Returns (C', H, W) bool snapped masks.
    """
    cues = np.asarray(cues, dtype=np.float64)
    segments = np.asarray(segments)
    if segments.shape != cues.shape[1:]:
        raise ValueError(f"segments {segments.shape} differ from cues {cues.shape[1:]}")
    _, inv = np.unique(segments.ravel(), return_inverse=True)
    n = int(inv.max()) + 1
    size = np.bincount(inv, minlength=n).astype(np.float64)
    out = np.zeros(cues.shape, dtype=bool)
    for i, cue in enumerate(cues):
        mean = np.bincount(inv, weights=cue.ravel(), minlength=n) / size
        m = mean.max()
        if m > 0:
            out[i] = (mean > ratio * m)[inv].reshape(segments.shape)
    return out


def snap_seeds(seeds: np.ndarray, segments: np.ndarray, num_labels: int, ratio: float = 0.3) -> np.ndarray:
    """Snap a seed map (H, W) uint8 to superpixels: each label's 0/1 mask is snapped with
    :func:`snap_to_superpixels`; conflicts become 255."""
    from .seeds import masks_to_seeds
    labels = [c for c in range(num_labels) if (seeds == c).any()]
    if not labels:
        return np.full(seeds.shape, IGNORE, dtype=np.uint8)
    masks = snap_to_superpixels(np.stack([(seeds == c) for c in labels]).astype(np.float32), segments, ratio)
    fg = [(m, c) for m, c in zip(masks, labels) if c != 0]
    bg = masks[labels.index(0)] if 0 in labels else None
    return masks_to_seeds(np.array([m for m, _ in fg]).reshape(-1, *seeds.shape), [c for _, c in fg], bg)
