"""Seed cues from class activation maps (Sun et al. Sect. 3.1-3.3; DSRG Sect. 3.1).

Label maps are (H, W) uint8: 0 = background, 1..K = class, 255 = unlabelled.
"""

from __future__ import annotations

import numpy as np

IGNORE = 255


def foreground_masks(cams: np.ndarray, fg=("top", 0.2)) -> np.ndarray:
    """Per-CAM foreground masks, (C', H, W) bool.

    ``("top", f)``: the top fraction f of each map's values (DSRG: 20 %).
    ``("rel", r)``: values above r x the map's maximum (Sun et al.: 0.3).
    """
    cams = np.asarray(cams, dtype=np.float32)
    mode, value = fg
    out = np.zeros(cams.shape, dtype=bool)
    for i, cam in enumerate(cams):
        if mode == "top":
            thr = np.quantile(cam, 1.0 - float(value))
            out[i] = (cam >= thr) & (cam > 0)
        elif mode == "rel":
            m = float(cam.max())
            out[i] = (cam > float(value) * m) if m > 0 else False
        else:
            raise ValueError(f"unknown foreground rule {mode!r} (top or rel)")
    return out


def masks_to_seeds(fg_masks: np.ndarray, labels, bg_mask=None) -> np.ndarray:
    """Combine per-class masks (C', H, W) for ``labels`` (C',) 1..K and an optional
    background mask (H, W) into a seed map; pixels claimed by two labels become 255."""
    fg_masks = np.asarray(fg_masks, dtype=bool)
    labels = np.asarray(labels, dtype=np.int64)
    shape = fg_masks.shape[1:] if fg_masks.ndim == 3 else np.asarray(bg_mask).shape
    count = np.zeros(shape, dtype=np.int32)
    out = np.full(shape, IGNORE, dtype=np.uint8)
    for m, lab in zip(fg_masks, labels):
        count += m
        out[m] = lab
    if bg_mask is not None:
        bg_mask = np.asarray(bg_mask, dtype=bool)
        count += bg_mask
        out[bg_mask] = 0
    out[count > 1] = IGNORE
    return out


def cam_seeds(cams: np.ndarray, labels, fg=("top", 0.2), bg_mask=None) -> np.ndarray:
    """Seed map from CAMs of the present classes.

    cams: (C', H, W) float, one map per present label; labels: (C',) ints in 1..K.
    fg: ("top", 0.2) (DSRG) or ("rel", 0.3) (Sun et al.); bg_mask: (H, W) bool or None
    (see :func:`background_mask`). Returns (H, W) uint8; conflicts are 255.
    """
    cams = np.asarray(cams, dtype=np.float32)
    if cams.ndim != 3:
        raise ValueError(f"cams must be (C, H, W), got {cams.shape}")
    return masks_to_seeds(foreground_masks(cams, fg), labels, bg_mask)


def background_mask(source: np.ndarray, threshold: float) -> np.ndarray:
    """Background where the score map is below ``threshold``.

    For ``cams:T`` pass the max over CAMs; for ``features:0.2`` (Sun et al.) pass the
    normalised top-layer feature map (1 - stored ``background``); for ``saliency:0.06``
    pass the saliency map.  Returns (H, W) bool.
    """
    return np.asarray(source, dtype=np.float32) < float(threshold)


def fuse_seeds(maps) -> np.ndarray:
    """Logical OR of several seed maps (Sun et al. colour + gray cues); where two maps
    give different labels the pixel becomes 255. maps: sequence of (H, W) uint8."""
    maps = [np.asarray(m, dtype=np.uint8) for m in maps]
    if not maps:
        raise ValueError("fuse_seeds needs at least one map")
    out = maps[0].copy()
    for m in maps[1:]:
        if m.shape != out.shape:
            raise ValueError(f"seed maps differ in size: {m.shape} vs {out.shape}")
        take = (out == IGNORE) & (m != IGNORE)
        clash = (out != IGNORE) & (m != IGNORE) & (out != m)
        out[take] = m[take]
        out[clash] = IGNORE
    return out
