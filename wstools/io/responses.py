"""The ``responses`` store's per-image layout: peak response maps (PRMs), one per instance.

Written by ``ws cam peaks`` (naive PRMs, Huang et al. 2021 Eq. 1-2) and by ``ws icn infer``
(ICN-enhanced maps, Eq. 3-4); read by ``ws icn train|infer`` and ``ws match``.

Per image group (``/images/<key>``):

=========  =============================================================================
``peaks``  (N, 4) float32 rows ``[label, y, x, score]``: class label in 1..K, peak position
           in full-image pixels (row, column; centre of the score-map cell), and the raw class
           score M_c at the peak cell (``ws cam peaks``; the peak is found on Eq. 1's map P^c)
``maps``   (N, H, W) float16 in [0, 1]: the response map of each peak (instance), min-max
           normalised; N = 0 for an image with no peaks (not an error)
attrs      ``height``, ``width`` (full image resolution)
=========  =============================================================================
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def write_response_group(group, peaks: np.ndarray, maps: np.ndarray) -> None:
    """Fill one image's group (shapes in the module docstring); ``maps`` (N, H, W) are clipped
    to [0, 1] and stored as float16."""
    peaks = np.asarray(peaks, dtype=np.float32).reshape(-1, 4)
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[0] != peaks.shape[0]:
        raise ValueError(f"maps {maps.shape} do not match peaks {peaks.shape}")
    h, w = maps.shape[1:]
    group.attrs["height"] = int(h)
    group.attrs["width"] = int(w)
    group.create_dataset("peaks", data=peaks)
    group.create_dataset("maps", data=np.clip(maps, 0, 1).astype(np.float16),
                         chunks=(1, h, w) if peaks.shape[0] else None, compression="gzip", compression_opts=1,
                         shuffle=True)


def read_response_group(group, num_classes: int | None = None, path=None, image_id=None) -> dict:
    """``{peaks (N, 4) float32, labels (N,) int64, maps (N, H, W) float32}``; with ``num_classes``
    a label outside 1..K, NaN / inf values, maps outside [0, 1] or not of the image's size
    (attributes ``height``, ``width``) are an InputError naming the file and image."""
    if "peaks" not in group or "maps" not in group:
        raise InputError("image group lacks 'peaks' or 'maps' (not a responses store?)", path=path,
                         image_id=image_id)
    peaks = group["peaks"][()].astype(np.float32).reshape(-1, 4)
    maps = group["maps"][()].astype(np.float32)
    labels = np.rint(peaks[:, 0]).astype(np.int64)
    if num_classes is not None and len(labels) and (labels.min() < 1 or labels.max() > num_classes):
        bad = int(labels[(labels < 1) | (labels > num_classes)][0])
        raise InputError(f"has a peak of class label {bad}, not a class of the manifest (1..{num_classes})",
                         path=path, image_id=image_id)
    if not (np.isfinite(maps).all() and np.isfinite(peaks).all()):
        raise InputError("peaks or maps hold NaN or infinite values", path=path, image_id=image_id)
    if maps.shape[0] != peaks.shape[0]:
        raise InputError(f"maps {maps.shape} do not match peaks {peaks.shape}", path=path, image_id=image_id)
    if maps.size and (maps.min() < -1e-3 or maps.max() > 1 + 1e-3):     # float16 rounding of the bounds allowed
        raise InputError(f"maps have values in [{float(maps.min()):.4g}, {float(maps.max()):.4g}], outside [0, 1]",
                         path=path, image_id=image_id)
    h, w = group.attrs.get("height"), group.attrs.get("width")
    if h is not None and w is not None and maps.ndim == 3 and maps.shape[1:] != (int(h), int(w)):
        raise InputError(f"maps have shape {maps.shape}, not of the image's size {int(h)} x {int(w)}", path=path,
                         image_id=image_id)
    return {"peaks": peaks, "labels": labels, "maps": maps}
