"""Synthetic proposal features with known true labels: the input of ``ws graph`` / ``ws cut``.

A stand-in for what a proposal network (Fan et al.'s attention module, LIID's
MIL network) writes per proposal: a feature vector, K+1 probabilities and the
labels the image tags allow. The truth is known, so the tag-assignment methods
can be scored.

Model (all vectorised; ``num_images`` up to millions of proposals):

* every image carries 1-3 tags (probabilities ``tag_mix``) and, per tag, 1-2
  objects of that class (true label = tag) plus 0-``max_noise`` noise objects
  (true label 0: background, distractors, parts); every object has 1-4
  overlapping proposals, as top-N segment proposals do;
* features live near a ``latent``-dimensional subspace, as CNN features do:
  each class has ``modes`` sub-cluster centres (unit vectors); an object is its
  centre plus Gaussian spread of norm about ``spread`` (a fraction ``ambiguous``
  of the objects moved half-way to a noise cluster), a proposal its object plus
  ``jitter``, mapped to ``dim`` dimensions by a random orthonormal basis, plus
  isotropic noise ``ambient`` in all ``dim`` dimensions. Noise proposals come
  from ``noise_clusters`` clusters of their own;
* probabilities are a softmax over K+1 of ``sharpness * (confidence *
  onehot(truth) + noise * N(0, 1))`` — an attention module that is right most of the time but
  not always, and that confuses noise with the tagged classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SyntheticFeatures:
    """Flat per-proposal arrays (M proposals, K classes, D dims), as in a ``features`` store."""

    image_ids: list            # (images,) str
    image: np.ndarray          # (M,) int64 index into image_ids
    proposal: np.ndarray       # (M,) int64 index of the proposal within its image
    box: np.ndarray            # (M, 4) float32 x0 y0 x1 y1 pixels
    feat: np.ndarray           # (M, D) float32
    prob: np.ndarray           # (M, K+1) float32, column 0 = background / noise
    allowed: np.ndarray        # (M, K+1) bool, image tags + 0
    truth: np.ndarray          # (M,) int64 true label, 0 = noise
    classes: list = field(default_factory=list)

    def __len__(self):
        return len(self.image)


def make_features(num_images: int, num_classes: int = 20, dim: int = 2048, *, seed: int = 0,
                  tag_mix=(0.6, 0.3, 0.1), max_noise: int = 3, latent: int = 64, modes: int = 4,
                  spread: float = 0.9, jitter: float = 0.3, ambiguous: float = 0.15, ambient: float = 0.02, noise_clusters: int = 40,
                  confidence: float = 1.5, noise: float = 1.0, sharpness: float = 4.0, size: int = 500) -> SyntheticFeatures:
    """Make ``num_images`` images' worth of synthetic proposals (about 8 per image by default).

    Returns a :class:`SyntheticFeatures`; deterministic for ``seed``. ``classes``
    are named ``c01``, ``c02``, ...; image ids ``img_000000``, ...
    """
    if num_images < 1 or num_classes < 1 or dim < 2:
        raise ValueError("need num_images >= 1, num_classes >= 1, dim >= 2")
    rng = np.random.default_rng(seed)
    K = num_classes
    latent = min(latent, dim)
    # tags: 1..3 distinct classes per image
    mix = np.asarray(tag_mix, dtype=float)[: K]
    mix = mix / mix.sum()
    ntags = rng.choice(np.arange(1, len(mix) + 1), size=num_images, p=mix)
    keys = rng.random((num_images, K))
    order = np.argsort(keys, axis=1)                      # a random permutation of classes per image
    tag_mask = np.zeros((num_images, K), dtype=bool)
    rows = np.repeat(np.arange(num_images), ntags)
    cols = order[rows, np.concatenate([np.arange(t) for t in ntags]) if num_images else []]
    tag_mask[rows, cols] = True
    # objects: 1..2 per tag plus 0..max_noise noise objects; proposals: 1..4 overlapping per object
    per_tag = rng.integers(1, 3, size=rows.size)
    n_noise = rng.integers(0, max_noise + 1, size=num_images)
    obj_image = np.concatenate([np.repeat(rows, per_tag), np.repeat(np.arange(num_images), n_noise)])
    obj_truth = np.concatenate([np.repeat(cols + 1, per_tag), np.zeros(int(n_noise.sum()), dtype=np.int64)])
    per_obj = rng.integers(1, 5, size=obj_image.size)
    obj = np.repeat(np.arange(obj_image.size), per_obj)
    image = obj_image[obj].astype(np.int64)
    truth = obj_truth[obj].astype(np.int64)
    srt = np.argsort(image, kind="stable")
    image, truth, obj = image[srt], truth[srt], obj[srt]
    M = image.size
    starts = np.searchsorted(image, np.arange(num_images))
    proposal = np.arange(M, dtype=np.int64) - starts[image]
    # features: class sub-clusters in a latent subspace, noise clusters of their own
    centres = rng.standard_normal((K * modes + noise_clusters, latent))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    n_obj = obj_image.size
    mode = rng.integers(0, modes, size=n_obj)
    centre_of = np.where(obj_truth > 0, (obj_truth - 1) * modes + mode,
                         K * modes + rng.integers(0, noise_clusters, size=n_obj))
    zo = centres[centre_of] + spread * rng.standard_normal((n_obj, latent)) / np.sqrt(latent)
    # ambiguous objects (parts, objects with clutter): half-way to a noise cluster
    amb = (obj_truth > 0) & (rng.random(n_obj) < ambiguous)
    zo[amb] = 0.5 * zo[amb] + 0.5 * centres[K * modes + rng.integers(0, noise_clusters, size=int(amb.sum()))]
    z = zo[obj] + jitter * rng.standard_normal((M, latent)) / np.sqrt(latent)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, latent)))
    feat = np.empty((M, dim), dtype=np.float32)
    step = 65536
    for a in range(0, M, step):
        b = min(M, a + step)
        block = z[a:b] @ basis.T
        block += ambient * rng.standard_normal((b - a, dim))
        feat[a:b] = block
    # attention probabilities: right most of the time, confused by noise proposals
    logits = noise * rng.standard_normal((M, K + 1))
    logits[np.arange(M), truth] += confidence
    logits *= sharpness
    logits -= logits.max(axis=1, keepdims=True)
    prob = np.exp(logits)
    prob /= prob.sum(axis=1, keepdims=True)
    allowed = np.zeros((M, K + 1), dtype=bool)
    allowed[:, 0] = True
    allowed[:, 1:] = tag_mask[image]
    xy = rng.uniform(0, size * 0.7, size=(M, 2))
    wh = rng.uniform(size * 0.1, size * 0.3, size=(M, 2))
    box = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    return SyntheticFeatures(image_ids=[f"img_{i:06d}" for i in range(num_images)], image=image,
                             proposal=proposal, box=box, feat=feat, prob=prob.astype(np.float32),
                             allowed=allowed, truth=truth, classes=[f"c{i + 1:02d}" for i in range(K)])
