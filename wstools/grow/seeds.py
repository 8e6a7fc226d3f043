"""Seed cues from class activation maps (Sun et al. Sect. 3.2-3.3; DSRG Sect. 3.1, 4.1).

Label maps are (H, W) uint8: 0 = background, 1..K = class, 255 = unlabelled.

Foreground rules. DSRG Sect. 4.1 keeps "those pixels belonging to top 20% of the largest
value (a fraction suggested by [14, 33])"; [33] is SEC, whose cues are the CAM values above
0.2 x the map's maximum: ``("rel", 0.2)``, the default. Read as "the top 20 % of the
pixels", ``("top", 0.2)`` marks a fifth of every image as foreground whatever the object's
size (foreground precision 0.68 from ground truth with a 0.5 px blur on 96 px toy images,
0.997 for the 0.2 x max rule; README, ws grow; tests/test_oracle_grow.py). Sun et al. Sect. 3.2: above 0.3 x max, ``("rel", 0.3)``.
"""

from __future__ import annotations

import numpy as np

from ..labels import IGNORE


#: DSRG's foreground rule (SEC's 20 % of the maximum, see the module docstring)
DSRG_FOREGROUND = ("rel", 0.2)


def foreground_masks(cams: np.ndarray, fg=DSRG_FOREGROUND) -> np.ndarray:
    """Per-CAM foreground masks, (C', H, W) bool.

    ``("rel", r)``: values above r x the map's maximum (DSRG / SEC: 0.2; Sun et al.: 0.3).
    ``("top", f)``: the top fraction f of each map's pixels (the other reading of DSRG's text).
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


def cam_seeds(cams: np.ndarray, labels, fg=DSRG_FOREGROUND, bg_mask=None) -> np.ndarray:
    """Seed map from CAMs of the present classes.

    cams: (C', H, W) float, one map per present label; labels: (C',) ints in 1..K.
    fg: ("rel", 0.2) (DSRG / SEC), ("rel", 0.3) (Sun et al.) or ("top", F); bg_mask: (H, W) bool or None
    (see :func:`background_mask`). Returns (H, W) uint8; conflicts are 255.
    """
    cams = np.asarray(cams, dtype=np.float32)
    if cams.ndim != 3:
        raise ValueError(f"cams must be (C, H, W), got {cams.shape}")
    return masks_to_seeds(foreground_masks(cams, fg), labels, bg_mask)


def background_mask(source: np.ndarray, threshold: float) -> np.ndarray:
    """Background where the score map is below ``threshold``.

    For ``cams:T`` pass the max over CAMs; for ``features:0.2`` (Sun et al.) pass the
    normalised top-layer feature map (1 - stored ``background``); for ``saliency:T`` pass
    the saliency map.  Returns (H, W) bool.
    """
    return np.asarray(source, dtype=np.float32) < float(threshold)


#: background rules of :func:`cue_map` (``none`` = no background cue)
BACKGROUND_RULES = ("cams", "features", "saliency", "none")
#: DSRG's background rule for the toolkit's saliency detector: DSRG Sect. 4.1 keeps normalised DRFI
#: saliency below 0.06; the classical detector of wstools.proposals.saliency is below 0.06 on only 4 %
#: of a 96 px toy image and keeps a background precision of 0.98 up to 0.3, where it marks a third
#: of the image (benchmarks/grow_quality.py --oracle-only)
DSRG_SALIENCY_THRESHOLD = 0.3


def cue_map(cams: np.ndarray, labels, *, fg=DSRG_FOREGROUND, bg=("saliency", DSRG_SALIENCY_THRESHOLD),
            background: np.ndarray | None = None, image: np.ndarray | None = None, snap_k: float | None = None,
            snap_ratio: float = 0.3, num_labels: int | None = None, cache: dict | None = None) -> np.ndarray:
    """The seed cues of one CAM input: foreground rule, background rule, optional snapping.

    cams: (C', H, W) float CAMs of the present ``labels`` (ints in 1..K).
    fg: ``(mode, value)`` of :func:`foreground_masks`.
    bg: ``("cams", T)`` every CAM below T; ``("features", T)`` the normalised top-layer
        features below T, i.e. ``1 - background < T`` (Sun et al. Sect. 3.2: 0.2);
        ``("saliency", T)`` the saliency of ``image`` below T (DSRG Sect. 4.1); ``("none", 0)``.
    background: (H, W) float, the stored `background` map (needed by ``features``).
    image: (H, W, 3) uint8 (needed by ``saliency`` and snapping).
    snap_k: None = no snapping; else Felzenszwalb's k for a PASCAL-sized image, scaled by
        the image's area (:func:`wstools.proposals.hierarchy.superpixels` ``per_area``), and
        each label's mask snapped with ``snap_ratio`` (Sun et al. Sect. 3.2: 0.3).
    num_labels: K + 1 (needed by snapping). cache: dict reused across the inputs of one
        image (the saliency map and the superpixels are computed once).
    Returns (H, W) uint8 seeds (conflicts 255).
    """
    cache = {} if cache is None else cache
    cams = np.asarray(cams, dtype=np.float32)
    mode, threshold = bg
    if mode not in BACKGROUND_RULES:
        raise ValueError(f"unknown background rule {mode!r} ({', '.join(BACKGROUND_RULES)})")
    if mode in ("saliency",) or snap_k is not None:
        if image is None:
            raise ValueError("the saliency background and snapping need the image")
    bg_mask = None
    if mode == "cams":
        bg_mask = background_mask(cams.max(0), threshold)
    elif mode == "features":
        if background is None:
            raise ValueError("the features background rule needs the stored background map")
        bg_mask = background_mask(1.0 - np.asarray(background, dtype=np.float32), threshold)
    elif mode == "saliency":
        if "saliency" not in cache:
            from ..proposals.saliency import saliency_map
            cache["saliency"] = saliency_map(image)
        bg_mask = background_mask(cache["saliency"], threshold)
    seeds = cam_seeds(cams, labels, fg, bg_mask)
    if snap_k is not None:
        from ..proposals.hierarchy import superpixels
        from .snap import snap_seeds
        if num_labels is None:
            raise ValueError("snapping needs num_labels")
        key = ("superpixels", float(snap_k))
        if key not in cache:
            cache[key] = superpixels(image, snap_k, per_area=True)
        seeds = snap_seeds(seeds, cache[key], num_labels, snap_ratio)
    return seeds


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
