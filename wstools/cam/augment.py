"""Training augmentation and input normalisation of the classifier (IRN style)."""

from __future__ import annotations

import cv2
import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# ITU-R BT.601 luma, as PIL's convert("L")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 3) uint8 gray (luma replicated to three channels), for the
    gray-image classifier of Sun et al. (Sect. 3.3); three channels keep ImageNet weights usable."""
    y = np.clip(np.rint(image.astype(np.float32) @ _LUMA), 0, 255).astype(np.uint8)
    return np.repeat(y[..., None], 3, axis=2)


def normalize(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, H, W) float32, ImageNet mean/std normalised."""
    x = (image.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def random_scale_flip_crop(image: np.ndarray, rng: np.random.Generator, crop: int,
                           scales=(0.5, 1.5)) -> np.ndarray:
    """IRN's classifier augmentation: rescale by a factor drawn uniformly from ``scales``
    (bilinear), flip left-right with probability 1/2, normalise, and take a random
    ``crop`` x ``crop`` window; a side shorter than ``crop`` is zero-padded (zero =
    the mean colour after normalisation) at a random offset.

    ``image``: (H, W, 3) uint8. Returns (3, crop, crop) float32.
    """
    s = float(rng.uniform(scales[0], scales[1]))
    h, w = image.shape[:2]
    nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
    img = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    x = normalize(img)
    out = np.zeros((3, crop, crop), dtype=np.float32)
    # source window and destination offset per axis
    def window(n):
        if n >= crop:
            start = int(rng.integers(0, n - crop + 1))
            return start, 0, crop
        off = int(rng.integers(0, crop - n + 1))
        return 0, off, n

    sy, dy, ly = window(nh)
    sx, dx, lx = window(nw)
    out[:, dy:dy + ly, dx:dx + lx] = x[:, sy:sy + ly, sx:sx + lx]
    return out
