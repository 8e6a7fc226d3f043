"""Per-image layouts of the ``labels`` and ``probs`` stores.

``labels`` (seeds, grown labels, semantic predictions), per image group:

=============  ==========================================================================
``labels``     (H, W) uint8: 0 = background, 1..K = class, 255 = unlabeled / ignore
attrs          ``height``, ``width``
=============  ==========================================================================

``probs`` (per-class probability maps: a segmentation network's softmax from
``ws predict --probs``, the input of ``ws grow region`` and ``ws grow crf``), per image group:

=============  ==========================================================================
``probs``      (C, H, W) float16 in [0, 1], one map per label in ``labels``; over the
               stored labels they sum to 1 at every pixel (up to float16 rounding)
``labels``     (C,) int64 in 0..K, increasing (0 = background; classes not stored have
               probability 0)
attrs          ``height``, ``width``
=============  ==========================================================================
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

_GZIP = {"compression": "gzip", "compression_opts": 1, "shuffle": True}


def write_labels_group(group, labels: np.ndarray) -> None:
    """Fill one image's group of a ``labels`` store with an (H, W) uint8 map."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), not {labels.shape}")
    group.attrs["height"], group.attrs["width"] = int(labels.shape[0]), int(labels.shape[1])
    group.create_dataset("labels", data=labels.astype(np.uint8), **_GZIP)


def read_labels_group(group, num_classes: int | None = None) -> np.ndarray:
    """(H, W) uint8 label map of one image of a ``labels`` store; with ``num_classes`` a label
    outside 0..K and 255 is an InputError naming the file and image; so is a map that is not
    (H, W) of the image's size (e.g. a store of another kind whose ``ws_kind`` was edited)."""
    from .values import _where, check_labels, check_map_size

    raw = group["labels"]
    if raw.ndim != 2:
        raise InputError(f"'labels' has shape {raw.shape}, not an (H, W) label map", **_where(group))
    labels = check_map_size(np.asarray(raw[()], dtype=np.uint8), "labels", group)
    if num_classes is not None:
        check_labels(labels, "labels", group, num_classes)
    return labels


def write_probs_group(group, probs: np.ndarray, labels) -> None:
    """Fill one image's group of a ``probs`` store: ``probs`` (C, H, W) float in [0, 1] for
    ``labels`` (C,) increasing in 0..K."""
    probs = np.asarray(probs)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 3 or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"probs {probs.shape} do not match labels {labels.shape}")
    if labels.size > 1 and (np.diff(labels) <= 0).any():
        raise ValueError(f"labels {labels.tolist()} must increase")
    h, w = probs.shape[1:]
    group.attrs["height"], group.attrs["width"] = int(h), int(w)
    group.create_dataset("probs", data=np.clip(probs, 0, 1).astype(np.float16),
                         chunks=(1, h, w) if probs.shape[0] else None, **_GZIP)
    group.create_dataset("labels", data=labels)


def read_probs_group(group) -> tuple[np.ndarray, np.ndarray]:
    """``(probs (C, H, W) float32, labels (C,) int64)`` of one image of a ``probs`` store; maps that
    are NaN, infinite or outside [0, 1] are an InputError naming the file and image."""
    from .values import check_map_size, check_maps

    probs = check_map_size(check_maps(np.asarray(group["probs"][()], dtype=np.float32), "probs", group), "probs",
                           group)
    return probs, np.asarray(group["labels"][()], dtype=np.int64)


def dense_probs(probs: np.ndarray, labels, num_classes: int) -> np.ndarray:
    """Scatter stored maps into a dense (K+1, H, W) array over all labels 0..K (zeros elsewhere)."""
    probs = np.asarray(probs, dtype=np.float32)
    out = np.zeros((num_classes + 1,) + probs.shape[1:], dtype=np.float32)
    out[np.asarray(labels, dtype=np.int64)] = probs
    return out
