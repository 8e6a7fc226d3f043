"""Semantic segmentation on pseudo labels: the training step of the shared loop
(:func:`wstools.train.fit`), DSRG's dynamic supervision, multi-scale + flip inference and
Sun et al.'s prediction-amended testing.

The dense CRF and seeded region growing are passed in as functions (``crf(image (H, W, 3)
uint8, probs (C, H, W) float32) -> (C, H, W) float32``, ``grow(probs (C, H, W), seeds (H, W)
uint8, present (C,) bool) -> (H, W) uint8``; :func:`wstools.grow.crf.dense_crf` and
:func:`wstools.grow.seeded_region_growing` in the command), so this module is testable
without them.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .losses import IGNORE, balanced_seeding_loss, boundary_loss, cross_entropy, seeding_loss

LOSSES = ("ce", "balanced-seed", "seed")


def match_resolution(logits: torch.Tensor, labels: torch.Tensor, raw: torch.Tensor | None, at: str):
    """Bring logits (B, C, h, w) and labels (B, H, W) to one resolution.

    ``at="output"`` (DSRG, SEC: losses at the network's output resolution): labels are
    subsampled (nearest) and the raw images (B, H, W, 3) uint8 area-resized to (h, w);
    ``at="input"``: logits are bilinearly upsampled to (H, W). Returns ``(logits, labels, raw)``.
    """
    h, w = logits.shape[-2:]
    H, W = labels.shape[-2:]
    if (h, w) == (H, W):
        return logits, labels, raw
    if at == "input":
        return F.interpolate(logits, size=(H, W), mode="bilinear", align_corners=False), labels, raw
    lab = F.interpolate(labels[:, None].float(), size=(h, w), mode="nearest")[:, 0].long()
    if raw is not None:
        raw = torch.from_numpy(np.stack([cv2.resize(r, (w, h), interpolation=cv2.INTER_AREA)
                                         for r in raw.numpy()]))
    return logits, lab, raw


def present_labels(target: np.ndarray) -> np.ndarray:
    """(K,) tag vector -> (K+1,) bool: background and the tagged classes."""
    return np.concatenate([[True], np.asarray(target) > 0.5])


def _area_resize(raw: torch.Tensor, h: int, w: int) -> np.ndarray:
    """(B, H, W, 3) uint8 -> (B, h, w, 3) uint8, area interpolation (the CRF's image at a coarser grid)."""
    return np.stack([cv2.resize(np.ascontiguousarray(r), (w, h), interpolation=cv2.INTER_AREA) for r in raw.numpy()])


def semantic_step(device: str, *, loss: str = "ce", boundary_weight: float = 0.0, crf=None, grow=None,
                  grow_crf: bool = False, at: str = "output", boundary_stride: int = 1):
    """The loop's ``step`` for a :class:`~wstools.seg.models.SegNet`.

    loss : ``ce`` (cross-entropy on the labels, 255 ignored), ``balanced-seed`` (DSRG Eq. 1) or
        ``seed`` (SEC / Sun et al. Eq. 3) on the labels (seeds).
    boundary_weight : weight of the constrain-to-boundary loss (SEC; Sun et al. Eq. 4) against
        ``crf`` of the softmax; 0 = off.
    grow : DSRG dynamic supervision (Sect. 3.3): the labels of the batch are the *original*
        seeds, grown on the current softmax (``crf``-refined when ``grow_crf``) before the loss.
    at : resolution of the losses (see :func:`match_resolution`).
    boundary_stride : the boundary loss (and its CRF) on the logits average-pooled by this factor
        (the image area-resized to match): DeepLab's losses sit at stride 8, and a dense CRF per
        image and step at full resolution dominates a small network's step on the CPU. 1 = at
        the loss resolution.

    ``aux`` = (labelled pixels, pixels) of the supervision actually used.
    """
    def step(net, batch):
        x = batch["image"].to(device, non_blocking=True)
        logits = net(x)
        logits, y, raw = match_resolution(logits, batch["labels"], batch.get("raw"), at)
        probs = refined = None
        coarse = boundary_weight > 0 and boundary_stride > 1
        if grow is not None or (boundary_weight > 0 and not coarse):
            probs = torch.softmax(logits.detach().float(), 1).cpu().numpy()
            if crf is not None and ((boundary_weight > 0 and not coarse) or grow_crf):
                refined = np.stack([crf(np.ascontiguousarray(raw[b].numpy()), probs[b]) for b in range(len(probs))])
        if grow is not None:
            source = refined if grow_crf and refined is not None else probs
            seeds = y.numpy().astype(np.uint8)
            targets = batch["target"].numpy()
            y = torch.from_numpy(np.stack([grow(source[b], seeds[b], present_labels(targets[b]))
                                           for b in range(len(seeds))]).astype(np.int64))
        y = y.to(device, non_blocking=True)
        if loss == "ce":
            total = cross_entropy(logits, y)
        elif loss == "balanced-seed":
            total = balanced_seeding_loss(logits, y)
        elif loss == "seed":
            total = seeding_loss(logits, y)
        else:
            raise ValueError(f"unknown loss {loss!r}")
        if boundary_weight > 0:
            if crf is None:
                raise ValueError("the boundary loss needs a crf function")
            if coarse:
                small = F.avg_pool2d(logits, boundary_stride, boundary_stride, ceil_mode=True)
                p_small = torch.softmax(small.detach().float(), 1).cpu().numpy()
                raw_small = _area_resize(raw, *small.shape[-2:])
                q = np.stack([crf(raw_small[b], p_small[b]) for b in range(len(p_small))])
                total = total + boundary_weight * boundary_loss(small, torch.from_numpy(q).to(device))
            else:
                total = total + boundary_weight * boundary_loss(logits, torch.from_numpy(refined).to(device))
        labelled = int((y != IGNORE).sum())
        return total, (labelled, int(y.numel()))
    return step


def summarize_labelled(auxes) -> dict:
    """Fraction of supervised pixels over an epoch (grows with DSRG)."""
    n = sum(a[1] for a in auxes)
    return {"labelled_fraction": sum(a[0] for a in auxes) / n if n else float("nan")}


@torch.no_grad()
def predict_probs(model, x: torch.Tensor, scales=(1.0,), flip: bool = False) -> torch.Tensor:
    """Softmax (B, C, H, W) of images ``x`` (B, 3, H, W), averaged over the input ``scales`` and,
    with ``flip``, their left-right flips (DeepLab's multi-scale testing); every pass's logits are
    bilinearly upsampled to (H, W) before the softmax."""
    H, W = x.shape[-2:]
    total, n = None, 0
    for s in scales:
        xs = x if s == 1.0 else F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False,
                                              recompute_scale_factor=False)
        passes = [model(xs)]
        if flip:
            passes.append(model(xs.flip(-1)).flip(-1))
        for logits in passes:
            p = torch.softmax(F.interpolate(logits.float(), size=(H, W), mode="bilinear", align_corners=False), 1)
            total = p if total is None else total + p
            n += 1
    return total / n


def amend(probs: np.ndarray, present: np.ndarray, margin: float = 1e-4) -> np.ndarray:
    """Prediction-amended testing (Sun et al. Sect. 3.5): at every pixel the ceiling
    ``c_u = max_{j present} f_j(u)`` and the scores of classes the classifier rejects are
    pushed below it by ``margin``: ``f_j(u) <- min(f_j(u), c_u - margin)`` (clipped at 0), then
    renormalised to sum to 1. ``probs`` (C, H, W) over labels 0..K; ``present`` (C,) bool
    (background always counts as present)."""
    probs = np.asarray(probs, dtype=np.float32)
    present = np.asarray(present, bool).copy()
    present[0] = True
    ceiling = probs[present].max(axis=0)
    out = probs.copy()
    out[~present] = np.clip(np.minimum(out[~present], ceiling[None] - margin), 0, None)
    s = out.sum(axis=0, keepdims=True)
    return out / np.maximum(s, 1e-12)


def restrict_to_present(probs: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Probabilities (C, H, W) with the classes not ``present`` ((C,) bool) set to 0 and every
    pixel renormalised to sum to 1 (DSRG's retraining labels: the image's tags are known on
    the training set)."""
    p = np.asarray(probs, np.float32).copy()
    p[~np.asarray(present, bool)] = 0
    return p / np.maximum(p.sum(0, keepdims=True), 1e-12)


def refine(probs: np.ndarray, image: np.ndarray, *, present: np.ndarray | None = None, margin: float = 1e-4,
           crf=None, crf_iterations: int = 10) -> np.ndarray:
    """Post-processing of one image's softmax (C, H, W) as ``ws predict`` does it: prediction-amended
    testing with the classifier's ``present`` classes ((C,) bool, background first; see
    :func:`amend`), then the dense ``crf(image (H, W, 3) uint8, probs, iterations=...)``
    (DSRG, Sun et al.). Either step is skipped when its argument is None."""
    p = np.asarray(probs, np.float32)
    if present is not None:
        p = amend(p, present, margin)
    if crf is not None:
        p = np.asarray(crf(image, p.astype(np.float32), iterations=crf_iterations))
    return p


@torch.no_grad()
def semantic_confusion(model, samples, num_classes: int, device: str = "cpu", scales=(1.0,),
                       flip: bool = False) -> np.ndarray:
    """Confusion matrix (K+1, K+1) (rows ground truth, columns prediction, 255 left out) of the
    argmax of :func:`predict_probs` over ``samples``, an iterable of ``(image (H, W, 3) uint8,
    ground truth (H, W) uint8)``: the per-epoch validation of ``ws train-seg --val``."""
    from ..cam.augment import normalize
    from ..eval.semantic import confusion

    conf = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    for image, gt in samples:
        x = torch.from_numpy(normalize(image))[None].to(device)
        pred = predict_probs(model, x, scales, flip)[0].argmax(0).cpu().numpy().astype(np.uint8)
        conf += confusion(gt, pred, num_classes)
    return conf
