"""Training data of the segmentation networks: joint augmentation of an image and its label
map, a torch ``Dataset`` over caller-supplied loaders, and label-map checks.

No file access here: the caller (``ws train-seg``) passes ``load(index) -> (image, labels)``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..cam.augment import normalize
from ..errors import InputError
from ..labels import IGNORE
from ..train.batches import LoadedItems

# training augmentations beyond the papers' scale, flip and crop (``augment`` below)
AUGMENTATIONS = ("rot90", "channels")


def check_label_map(labels: np.ndarray, image_shape, num_classes: int, *, path=None, image_id=None) -> np.ndarray:
    """Refuse a label map whose size differs from the image's or with values outside 0..K and 255
    (InputError naming the file and image). Returns it as uint8."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputError(f"label map has shape {labels.shape}, expected (H, W)", path=path, image_id=image_id)
    if tuple(labels.shape) != tuple(image_shape[:2]):
        raise InputError(f"label map is {labels.shape[1]}x{labels.shape[0]} px, the image is "
                         f"{image_shape[1]}x{image_shape[0]}", path=path, image_id=image_id)
    bad = (labels > num_classes) & (labels != IGNORE)
    if labels.dtype.kind in "iu" and labels.size and (bad.any() or labels.min() < 0):
        v = int(labels[bad][0]) if bad.any() else int(labels.min())
        raise InputError(f"label {v} outside 0..{num_classes} and 255", path=path, image_id=image_id)
    return labels.astype(np.uint8)


def joint_scale_flip_crop(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, crop: int,
                          scales=(0.5, 1.5), flip: bool = True, augment=()):
    """Random rescale (image bilinear, labels nearest), left-right flip, and a ``crop`` x ``crop``
    window padded with 0 (image, after normalisation: the mean colour) and 255 (labels) — DSRG's
    and Sun et al.'s augmentation (DeepLab's).

    ``augment`` adds any of :data:`AUGMENTATIONS`, for data the papers' photographs are not like:
    ``"rot90"`` turns image and labels by a random multiple of 90 degrees (data without an up
    direction, such as ``ws toy``'s randomly rotated shapes), ``"channels"`` permutes the RGB
    channels at random (data where colour does not identify a class, as in ``ws toy``).

    ``image`` (H, W, 3) uint8, ``labels`` (H, W) uint8. Returns ``(x (3, crop, crop) float32
    normalised, y (crop, crop) uint8, raw (crop, crop, 3) uint8)`` where ``raw`` is the crop of the
    unnormalised image (padding 0) for the dense CRF.
    """
    s = float(rng.uniform(scales[0], scales[1]))
    h, w = image.shape[:2]
    nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
    if (nh, nw) != (h, w):
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        labels = cv2.resize(labels, (nw, nh), interpolation=cv2.INTER_NEAREST)
    if flip and rng.random() < 0.5:
        image, labels = image[:, ::-1], labels[:, ::-1]
    unknown = set(augment) - set(AUGMENTATIONS)
    if unknown:
        raise ValueError(f"unknown augmentation {sorted(unknown)[0]!r} (choose from {', '.join(AUGMENTATIONS)})")
    if "rot90" in augment:
        k = int(rng.integers(4))
        image, labels = np.rot90(image, k), np.rot90(labels, k)
        nh, nw = labels.shape
    if "channels" in augment:
        image = image[..., rng.permutation(3)]

    def window(n):
        if n >= crop:
            start = int(rng.integers(0, n - crop + 1))
            return start, 0, crop
        return 0, int(rng.integers(0, crop - n + 1)), n

    sy, dy, ly = window(nh)
    sx, dx, lx = window(nw)
    x = np.zeros((3, crop, crop), np.float32)
    y = np.full((crop, crop), IGNORE, np.uint8)
    raw = np.zeros((crop, crop, 3), np.uint8)
    x[:, dy:dy + ly, dx:dx + lx] = normalize(np.ascontiguousarray(image[sy:sy + ly, sx:sx + lx]))
    y[dy:dy + ly, dx:dx + lx] = labels[sy:sy + ly, sx:sx + lx]
    raw[dy:dy + ly, dx:dx + lx] = image[sy:sy + ly, sx:sx + lx]
    return x, y, raw


class SegCrops(LoadedItems):
    """Item ``i``: ``{"index", "image" (3, crop, crop) float32, "labels" (crop, crop) int64 (255 =
    ignore), "raw" (crop, crop, 3) uint8, "target" (K,) float32 tags, "error"}``.

    ``load(i) -> (image (H, W, 3) uint8, labels (H, W) uint8, tags (K,) float32)`` reads item i
    (raising :class:`~wstools.errors.InputError` for bad files); ``rng_of(i)`` gives its generator;
    ``crop``, ``scales``, ``flip`` and ``augment`` are :func:`joint_scale_flip_crop`'s.
    """

    def __init__(self, n: int, load, rng_of, crop: int, scales=(0.5, 1.5), flip: bool = True, augment=()):
        super().__init__(n, load, rng_of)
        self.crop, self.scales, self.flip, self.augment = crop, scales, flip, tuple(augment)

    def item(self, i, image, labels, tags):
        x, y, raw = joint_scale_flip_crop(image, labels, self.rng_of(i), self.crop, self.scales, self.flip,
                                         self.augment)
        return {"image": torch.from_numpy(x), "labels": torch.from_numpy(y).long(), "raw": torch.from_numpy(raw),
                "target": torch.as_tensor(tags, dtype=torch.float32)}


def collate_crops(items):
    """Stack equally sized crops; errors are kept in ``errors`` (re-raised by the loop)."""
    errors = [it["error"] for it in items if it["error"] is not None]
    if errors:
        return {"errors": errors}
    out = {"errors": [], "index": torch.tensor([it["index"] for it in items])}
    for k in ("image", "labels", "raw", "target"):
        out[k] = torch.stack([it[k] for it in items])
    return out
