"""Fully connected CRF refinement (Kraehenbuehl & Koltun 2011) via pydensecrf2.

Defaults are the values of IRN's / AffinityNet's ``crf_inference`` (also used by
DSRG's released code): Gaussian kernel sxy=3, compat=3; bilateral kernel sxy=80,
srgb=13, compat=10; 10 mean-field iterations.
"""

from __future__ import annotations

import numpy as np

from wstools.errors import InputError

MISSING = "dense CRF needs pydensecrf2: pip install 'wstools[crf]'"


def require_crf():
    """Return the ``pydensecrf.densecrf`` module or raise InputError naming the extra."""
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise InputError(MISSING) from err
    return dcrf


def dense_crf(image: np.ndarray, probs: np.ndarray, iterations: int = 10, *, gauss_sxy: float = 3,
              gauss_compat: float = 3, bilateral_sxy: float = 80, bilateral_srgb: float = 13,
              bilateral_compat: float = 10, scale: float = 1.0) -> np.ndarray:
    """Refine class probabilities with a dense CRF.

    image: (H, W, 3) uint8 RGB. probs: (C, H, W) float32 normalised over C.
    scale: how many input pixels one pixel of ``probs`` stands for; the spatial kernel
    widths (``gauss_sxy``, ``bilateral_sxy``, in input pixels) are divided by it. DSRG's and
    SEC's layers run the CRF at the network's output resolution with ``scale_factor`` 12
    (41 x 41 outputs of 321 px crops); at full resolution it is 1.
    Returns (C, H, W) float32 refined probabilities (sum to 1 over C).
    Defaults: IRN / AffinityNet crf_inference (t=10, Gaussian 3/3, bilateral 80/13/10).
    """
    dcrf = require_crf()
    from pydensecrf.utils import unary_from_softmax

    image = np.array(image, dtype=np.uint8, order="C", copy=True)
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 3 or image.shape[:2] != probs.shape[1:] or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image {image.shape} and probs {probs.shape} do not match")
    c, h, w = probs.shape
    d = dcrf.DenseCRF2D(w, h, c)
    d.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(np.clip(probs, 1e-8, 1.0))))
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    d.addPairwiseGaussian(sxy=gauss_sxy / scale, compat=gauss_compat)
    d.addPairwiseBilateral(sxy=bilateral_sxy / scale, srgb=bilateral_srgb, rgbim=image, compat=bilateral_compat)
    q = d.inference(int(iterations))
    return np.asarray(q, dtype=np.float32).reshape(c, h, w)


def crf_probabilities(image: np.ndarray, probs: np.ndarray, present: np.ndarray, iterations: int = 10,
                      scale: float = 1.0) -> np.ndarray:
    """Dense CRF over the ``present`` labels only (absent ones stay 0).

    image: (H, W, 3) uint8; probs: (C, H, W) float; present: (C,) bool.
    Returns (C, H, W) float32, summing to 1 over the present labels (DSRG grows on this).
    """
    probs = np.asarray(probs, dtype=np.float32)
    idx = np.flatnonzero(np.asarray(present, dtype=bool))
    p = probs[idx]
    p = p / np.maximum(p.sum(0, keepdims=True), 1e-6)
    out = np.zeros_like(probs)
    out[idx] = dense_crf(image, p, iterations, scale=scale)
    return out


def crf_labels(image: np.ndarray, probs: np.ndarray, present: np.ndarray, iterations: int = 10) -> np.ndarray:
    """(H, W) uint8 argmax over the present labels of :func:`crf_probabilities`."""
    idx = np.flatnonzero(np.asarray(present, dtype=bool))
    q = crf_probabilities(image, probs, present, iterations)
    return idx[q[idx].argmax(0)].astype(np.uint8)
