"""Checks of the values read from a store's image group: a map that is NaN, infinite or outside its
range, or a label outside 0..K, is an ``InputError`` naming the file and the image (never a silently
wrong output downstream)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def _where(group) -> dict:
    from .store import image_id_of

    return {"path": group.file.filename, "image_id": image_id_of(group.name.rsplit("/", 1)[-1])}


def check_maps(values: np.ndarray, name: str, group, low: float | None = 0.0, high: float | None = 1.0) -> np.ndarray:
    """``values`` finite and, where given, within [low, high] (a float16 rounding of the bounds allowed)."""
    values = np.asarray(values)
    if values.size == 0:
        return values
    if not np.isfinite(values).all():
        raise InputError(f"'{name}' holds NaN or infinite values", **_where(group))
    tol = 1e-3
    if low is not None and values.min() < low - tol or high is not None and values.max() > high + tol:
        raise InputError(f"'{name}' has values in [{float(values.min()):.4g}, {float(values.max()):.4g}], outside "
                         f"[{low}, {high}]", **_where(group))
    return values


def check_map_size(values: np.ndarray, name: str, group) -> np.ndarray:
    """``values`` (..., H, W) of the size the image group records (attributes ``height``, ``width``)."""
    values = np.asarray(values)
    h, w = group.attrs.get("height"), group.attrs.get("width")
    if h is not None and w is not None and values.ndim >= 2 and values.shape[-2:] != (int(h), int(w)):
        raise InputError(f"'{name}' has shape {values.shape}, not of the image's size {int(h)} x {int(w)}",
                         **_where(group))
    return values


def check_labels(labels: np.ndarray, name: str, group, num_classes: int) -> np.ndarray:
    """Labels in 0..K or 255 (unlabelled)."""
    labels = np.asarray(labels)
    bad = (labels > num_classes) & (labels != 255)
    if bad.any():
        raise InputError(f"'{name}' has label {int(labels[bad].max())}, outside 0..K={num_classes} and 255",
                         **_where(group))
    return labels
