"""The ``ws toy`` generator.

Target classes are shape families (disc, square, triangle, ring, cross, ...),
each with its own texture pattern; colours come from one palette shared by all
classes and backgrounds, so colour alone never identifies a class. Each image
holds 1-4 instances of 1-3 classes, 10-50 % of the image side, partly
overlapping, plus 0-2 distractors: shapes of families outside the class list
that are not tagged (the "noisy instances" of Fan et al. and LIID). The
background mixes a colour gradient, low-frequency noise and random lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FAMILIES = ("disc", "square", "triangle", "ring", "cross", "star", "hexagon", "crescent", "bar", "ell")
MAX_CLASSES = len(FAMILIES) - 2  # keep at least two families for distractors

# One palette for every object and background: colour carries no class information.
PALETTE = np.array([
    [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40],
    [128, 0, 0], [128, 128, 0], [0, 0, 128], [128, 128, 128], [255, 255, 255], [20, 20, 20],
], dtype=np.float32)


@dataclass
class ToyImage:
    image: np.ndarray        # (H, W, 3) uint8
    semantic: np.ndarray     # (H, W) uint8, 0 background, 1..K classes, 255 ignore border
    instances: np.ndarray    # (H, W) uint8, 0 background, 1..n target instances, 255 ignore border
    objects: np.ndarray      # (H, W) uint8, 0 background, 1..m every object (targets and distractors)
    instance_labels: list    # label (1..K) of each target instance
    object_families: list    # family name of each object in ``objects``
    tags: list               # class names present


def _shape(family: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean mask of a family in local coordinates x, y in [-1, 1]."""
    r = np.hypot(x, y)
    if family == "disc":
        return r < 0.95
    if family == "square":
        return np.maximum(np.abs(x), np.abs(y)) < 0.72
    if family == "triangle":
        return (y < 0.6) & (np.sqrt(3) * x - y < 0.95) & (-np.sqrt(3) * x - y < 0.95)
    if family == "ring":
        return (r < 0.95) & (r > 0.55)
    if family == "cross":
        return ((np.abs(x) < 0.3) & (np.abs(y) < 0.95)) | ((np.abs(y) < 0.3) & (np.abs(x) < 0.95))
    if family == "star":
        theta = np.arctan2(y, x)
        return r < 0.42 + 0.53 * (0.5 + 0.5 * np.cos(5 * theta)) ** 2
    if family == "hexagon":
        angles = np.arange(6) * np.pi / 3
        proj = x[..., None] * np.cos(angles) + y[..., None] * np.sin(angles)
        return proj.max(-1) < 0.82
    if family == "crescent":
        return (r < 0.95) & (np.hypot(x - 0.45, y) > 0.7)
    if family == "bar":
        return (np.abs(x) < 0.95) & (np.abs(y) < 0.22)
    if family == "ell":
        return ((x > -0.95) & (x < -0.35) & (np.abs(y) < 0.95)) | ((y > 0.35) & (y < 0.95) & (np.abs(x) < 0.95))
    raise ValueError(family)


def _texture(index: int, x: np.ndarray, y: np.ndarray, phase: float) -> np.ndarray:
    """Texture pattern of family ``index`` in [0, 1] (local coordinates)."""
    k = index % 8
    if k == 0:    # horizontal stripes
        t = np.sin(9 * y + phase)
    elif k == 1:  # checkerboard
        t = np.sign(np.sin(7 * x + phase) * np.sin(7 * y + phase))
    elif k == 2:  # dots
        t = np.sin(10 * x + phase) * np.sin(10 * y + phase) * 2 - 0.6
    elif k == 3:  # diagonal stripes
        t = np.sin(8 * (x + y) + phase)
    elif k == 4:  # concentric rings
        t = np.sin(14 * np.hypot(x, y) + phase)
    elif k == 5:  # vertical stripes
        t = np.sin(9 * x + phase)
    elif k == 6:  # waves
        t = np.sin(8 * y + 3 * np.sin(5 * x) + phase)
    else:         # flat with a shading gradient
        t = 0.6 * x - 0.3 * y
    return np.clip(0.5 + 0.5 * t, 0.0, 1.0)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    c = PALETTE[rng.choice(len(PALETTE), 2, replace=False)]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy)
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    img = c[0] * (1 - ramp[..., None]) + c[1] * ramp[..., None]
    img = 0.55 * img + 0.45 * 128.0
    grid = rng.normal(0, 1, (5, 5, 3)).astype(np.float32)
    noise = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    img += 22.0 * noise
    for _ in range(rng.integers(2, 6)):
        p0 = tuple(int(v) for v in rng.integers(0, size, 2))
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        colour = tuple(float(v) * 0.7 + 40 for v in PALETTE[rng.integers(len(PALETTE))])
        cv2.line(img, p0, p1, colour, int(rng.integers(1, max(2, size // 48) + 1)))
    img += rng.normal(0, 4.0, img.shape).astype(np.float32)
    return img


def make_image(rng: np.random.Generator, size: int = 128, num_classes: int = 5, border: int = 0,
               max_tries: int = 50) -> ToyImage:
    """Draw one toy image and its ground truth.

    Parameters
    ----------
    rng : numpy Generator (the only source of randomness)
    size : image side in pixels
    num_classes : K, the first K of ``FAMILIES`` are the target classes
    border : width in pixels of the 255 "ignore" band around each object in the
        semantic and instance maps (PASCAL VOC style); 0 for none
    """
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes must be in 1..{MAX_CLASSES}")
    img = _background(rng, size)
    n_classes = int(rng.integers(1, min(3, num_classes) + 1))
    classes = rng.choice(num_classes, n_classes, replace=False)
    n_inst = int(rng.integers(max(1, n_classes), 5))
    inst_classes = list(classes) + list(rng.choice(classes, n_inst - n_classes))
    n_distract = int(rng.integers(0, 3))
    distract = list(rng.integers(num_classes, len(FAMILIES), n_distract))
    families = [int(c) for c in inst_classes] + [int(d) for d in distract]
    is_target = [True] * n_inst + [False] * n_distract
    order = rng.permutation(len(families))
    families = [families[i] for i in order]
    is_target = [is_target[i] for i in order]

    owner = np.full((size, size), -1, dtype=np.int32)   # painter's algorithm: last drawn wins
    full_masks = []
    for idx, fam in enumerate(families):
        for _ in range(max_tries):
            side = int(round(rng.uniform(0.10, 0.50) * size))
            side = max(side, 6)
            cx, cy = rng.uniform(side * 0.3, size - side * 0.3, 2)
            angle = rng.uniform(0, 2 * np.pi) if FAMILIES[fam] not in ("disc", "ring") else 0.0
            yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
            u, v = (xx - cx) / (side / 2), (yy - cy) / (side / 2)
            cu, su = np.cos(angle), np.sin(angle)
            x, y = cu * u + su * v, -su * u + cu * v
            mask = _shape(FAMILIES[fam], x, y)
            if mask.sum() < 0.5 * (0.1 * size) ** 2 * 0.5:
                continue
            trial = owner.copy()
            trial[mask] = idx
            # every earlier object must keep at least 40 % of its area visible
            if all((trial == j).sum() >= 0.4 * full_masks[j].sum() for j in range(idx)):
                break
        owner = trial
        full_masks.append(mask)
        c = PALETTE[rng.choice(len(PALETTE), 2, replace=False)]
        t = _texture(fam, x, y, rng.uniform(0, 2 * np.pi))[..., None]
        shade = 1.0 + 0.12 * (x - y)[..., None]
        colour = (c[0] * t + c[1] * (1 - t)) * shade
        img[mask] = colour[mask]

    image = np.clip(img, 0, 255).astype(np.uint8)
    semantic = np.zeros((size, size), np.uint8)
    instances = np.zeros((size, size), np.uint8)
    objects = np.zeros((size, size), np.uint8)
    labels, tags, fams = [], set(), []
    obj_id = 0
    for idx, fam in enumerate(families):
        vis = owner == idx
        if not vis.any():
            continue
        obj_id += 1
        objects[vis] = obj_id
        fams.append(FAMILIES[fam])
        if is_target[idx]:
            labels.append(fam + 1)
            instances[vis] = len(labels)
            semantic[vis] = fam + 1
            tags.add(FAMILIES[fam])
    if border > 0:
        kernel = np.ones((2 * border + 1, 2 * border + 1), np.uint8)
        edges = np.zeros((size, size), bool)
        for lab_map in (objects,):
            grown = cv2.dilate(lab_map, kernel)
            shrunk = cv2.erode(lab_map, kernel)
            edges |= grown != shrunk
        inner = (semantic > 0) | (instances > 0)
        band = edges & (inner | cv2.dilate(inner.astype(np.uint8), kernel).astype(bool))
        semantic[band] = 255
        instances[band] = 255
    return ToyImage(image=image, semantic=semantic, instances=instances, objects=objects,
                    instance_labels=labels, object_families=fams,
                    tags=[FAMILIES[i] for i in range(num_classes) if FAMILIES[i] in tags])


def split_image(split: str, index: int, *, size: int = 128, num_classes: int = 5, seed: int = 0,
                border: int = 0) -> ToyImage:
    """Image ``index`` of toy split ``split``: it depends only on (seed, split, index), so a larger
    split extends a smaller one without changing its first images."""
    split_code = sum(ord(ch) * 31 ** k for k, ch in enumerate(split)) % (2 ** 31)
    rng = np.random.default_rng([seed, split_code, index])
    return make_image(rng, size=size, num_classes=num_classes, border=border)
