"""Class activation maps from a trained :class:`~wstools.cam.model.CamNet`.

Pipeline (IRN's ``make_cam`` step, with Sun et al.'s modifications):

1. :func:`forward_cams`: for each scale s in ``scales`` (and its left-right
   flip), resize the batch by s, take the score maps, apply ReLU, upsample
   (bilinear) to the full image size and sum over scales and flips. Also the
   class probabilities (sigmoid of the GAP logits, Fan et al. Sect. 3.1),
   averaged over the passes, and the channel sums of the top two stages'
   features for the background map.
2. :func:`select_classes`: the tagged classes, or those predicted above a
   threshold.
3. :func:`finalize_cams`: divide each selected class's map by its maximum
   (so it lies in [0, 1]); optionally subtract the other selected classes'
   maps (Sun et al. Sect. 3.2, after Shimoda & Yanai).
4. :func:`background_from_features`: Sun et al. Sect. 3.2's background map.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

EPS = 1e-5


@torch.no_grad()
def forward_cams(model, images: torch.Tensor, scales=(1.0, 0.5, 1.5, 2.0), flip: bool = True,
                 features: bool = False):
    """Multi-scale, flipped CAMs of a batch of equally sized images.

    Parameters
    ----------
    model : CamNet in eval mode
    images : (B, 3, H, W) float, ImageNet-normalised, on the model's device
    scales : input rescaling factors (IRN: 1.0, 0.5, 1.5, 2.0)
    flip : also run each scale on the left-right flipped batch and flip back
    features : also return the top two stages' channel-summed features

    Returns
    -------
    maps : (B, K, H, W) float32, sum over passes of ReLU(score map) upsampled to H x W
        (un-normalised; pass to :func:`finalize_cams`)
    probs : (B, K) float32 class probabilities, mean over passes
    feats : (B, 2, H, W) float32 sum over passes of the channel sums of ``[f_second, f_top]``
        upsampled to H x W, or ``None`` when ``features`` is false
    """
    B, _, H, W = images.shape
    maps = None
    probs = None
    feats = None
    passes = 0
    for s in scales:
        x = images if s == 1.0 else F.interpolate(images, size=(max(1, round(H * s)), max(1, round(W * s))),
                                                  mode="bilinear", align_corners=False)
        if flip:
            x = torch.cat([x, x.flip(-1)], 0)
        sm, fs = model.score_maps(x)
        p = torch.sigmoid(sm.mean(dim=(2, 3)))
        m = F.interpolate(F.relu(sm), size=(H, W), mode="bilinear", align_corners=False)
        f = None
        if features:
            f = torch.cat([F.interpolate(fi.sum(1, keepdim=True), size=(H, W), mode="bilinear",
                                         align_corners=False) for fi in fs], 1)
        if flip:
            m = m[:B] + m[B:].flip(-1)
            p = p[:B] + p[B:]
            if f is not None:
                f = f[:B] + f[B:].flip(-1)
        maps = m if maps is None else maps + m
        probs = p if probs is None else probs + p
        if f is not None:
            feats = f if feats is None else feats + f
        passes += 2 if flip else 1
    return maps.float(), (probs / passes).float(), None if feats is None else feats.float()


def select_classes(probs: np.ndarray, tags=None, threshold: float = 0.5) -> np.ndarray:
    """Labels (1..K, int64, sorted) whose CAMs to keep: the tags when given (a training
    set), else the classes with probability >= ``threshold``, or the single best class
    when none reaches it (a test set). ``probs``: (K,); ``tags``: labels in 1..K or None."""
    if tags is not None:
        return np.asarray(sorted(int(t) for t in tags), dtype=np.int64)
    probs = np.asarray(probs)
    keep = np.flatnonzero(probs >= threshold)
    if keep.size == 0:
        keep = np.array([int(np.argmax(probs))])
    return (keep + 1).astype(np.int64)


def finalize_cams(maps: torch.Tensor, labels, subtract_others: bool = False) -> torch.Tensor:
    """Max-normalised CAMs of the selected classes.

    ``maps``: (K, H, W) non-negative (from :func:`forward_cams`); ``labels``: (C,) in 1..K.
    Each map is divided by its maximum (+1e-5), giving values in [0, 1]. With
    ``subtract_others`` (Sun et al. Sect. 3.2), each normalised map then loses the
    sum of the other selected classes' normalised maps, is clipped at 0 and
    re-normalised by its maximum. Returns (C, H, W) float32.
    """
    idx = torch.as_tensor(np.asarray(labels, dtype=np.int64) - 1, device=maps.device)
    m = maps.index_select(0, idx).clamp_min(0)
    m = m / (m.amax(dim=(1, 2), keepdim=True) + EPS)
    if subtract_others and m.shape[0] > 1:
        others = m.sum(0, keepdim=True) - m
        m = (m - others).clamp_min(0)
        m = m / (m.amax(dim=(1, 2), keepdim=True) + EPS)
    return m.clamp(0, 1)


def background_from_features(feats: torch.Tensor) -> torch.Tensor:
    """Background score map of Sun et al. (Sect. 3.2).

    Sun et al. sum all feature maps of the classifier's top two layers and
    normalise the result to [0, 1]; pixels below 0.2 are background cues. Here
    ``feats`` (2, H, W) are those channel sums (of the top two stages); each is
    divided by its maximum so the two layers weigh equally, they are added, and
    the sum is min-max normalised to A in [0, 1]. Returned: ``1 - A`` (H, W)
    float32, so larger means more likely background and Sun et al.'s cue
    ``A < 0.2`` is ``background > 0.8``.
    """
    f = feats.clamp_min(0)
    f = f / (f.amax(dim=(1, 2), keepdim=True) + EPS)
    a = f.sum(0)
    a = (a - a.min()) / (a.max() - a.min() + EPS)
    return (1.0 - a).clamp(0, 1)
