"""Peak response maps by peak back-propagation (Huang et al. 2021 Eq. 2, after Zhou et al.,
CVPR 2018).

The response map of a peak (class c, cell (i, j)) is the plain gradient (Huang et al.'s
Eq. 2 is the chain rule; Zhou et al.'s released code back-propagates through a modified,
"probabilistic" convolution instead) of that single score-map value M_c[i, j] with respect
to the input image (the "input-level feature map"; all other peaks and cells get no
gradient, "only peaks are enabled"). Neither paper says how the three colour channels become
one map: ``reduce="abs"`` (default) sums the gradient's magnitudes; ``"positive"`` sums the
signed gradient and keeps the positive part, as Zhou et al.'s released code does with its
gradient. The map is then smoothed by a Gaussian of ``smooth_sigma`` pixels (our choice) and
min-max normalised to [0, 1]. The classifier is in eval mode
(batch-norm statistics frozen), so the peaks of an image are processed as a batch of copies
of the image — one backward pass per ``batch`` peaks, memory bounded by ``batch``.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Min-max normalise each (H, W) map of (N, H, W) to [0, 1] (a constant map becomes 0)."""
    maps = np.asarray(maps, dtype=np.float32)
    lo = maps.min(axis=(1, 2), keepdims=True) if maps.size else maps
    hi = maps.max(axis=(1, 2), keepdims=True) if maps.size else maps
    return np.where(hi - lo > 1e-12, (maps - lo) / np.maximum(hi - lo, 1e-12), 0.0).astype(np.float32)


REDUCTIONS = ("abs", "positive")


def peak_response_maps(model, image: torch.Tensor, cells: np.ndarray, batch: int = 8,
                       smooth_sigma: float = 2.0, reduce: str = "abs") -> np.ndarray:
    """One response map per peak.

    Parameters
    ----------
    model : a :class:`~wstools.cam.model.CamNet` in eval mode (``score_maps(x) -> (maps, feats)``)
    image : (3, H, W) float, the normalised image, on the model's device
    cells : (N, 3) int rows ``[label (1..K), i, j]``: peak cells of the score map
    batch : peaks back-propagated together (memory ~ batch x one forward/backward pass)
    smooth_sigma : Gaussian smoothing of the reduced gradient, in pixels (0 = none)
    reduce : ``abs`` (sum of |gradient| over colour channels) or ``positive`` (positive part
        of the channel sum, Zhou et al.'s code)

    Returns
    -------
    (N, H, W) float32 in [0, 1].
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduce!r} (one of {REDUCTIONS})")
    cells = np.asarray(cells, dtype=np.int64).reshape(-1, 3)
    H, W = image.shape[-2:]
    out = np.zeros((len(cells), H, W), dtype=np.float32)
    for s in range(0, len(cells), batch):
        c = cells[s:s + batch]
        n = len(c)
        x = image.detach()[None].expand(n, -1, -1, -1).clone().requires_grad_(True)
        with torch.enable_grad():
            maps, _ = model.score_maps(x)
            idx = torch.arange(n, device=maps.device)
            sel = maps[idx, torch.as_tensor(c[:, 0] - 1, device=maps.device),
                       torch.as_tensor(c[:, 1], device=maps.device), torch.as_tensor(c[:, 2], device=maps.device)]
            (grad,) = torch.autograd.grad(sel.sum(), x)
        r = (grad.abs().sum(1) if reduce == "abs" else grad.sum(1).clamp_min(0)).float().cpu().numpy()
        if smooth_sigma > 0:
            r = np.stack([ndimage.gaussian_filter(m, smooth_sigma, mode="nearest") for m in r])
        out[s:s + n] = normalize_maps(r)
    return out


def image_responses(model, image: torch.Tensor, tags=None, score_threshold: float = 0.5, *, sigma: float = 1.0,
                    eta: float | None = None, window: int = 3, max_peaks: int = 0, at_least_one: bool = True,
                    relu: bool = True, batch: int = 8, smooth_sigma: float = 2.0, reduce: str = "abs"):
    """Algorithm 1 lines 2-7 for one image: class peaks (Eq. 1) of the present classes and one
    naive PRM per peak (Eq. 2).

    ``model`` a CamNet in eval mode; ``image`` (3, H, W) normalised, on the model's device;
    ``tags`` the image's labels (1..K) or None to take the classes predicted with probability
    >= ``score_threshold`` (at least the top one); the other parameters are those of
    :func:`~wstools.prm.peaks.find_peaks` and :func:`peak_response_maps`. Returns
    ``(peaks (N, 4) float32 [label, y, x, raw class score] in image pixels, maps (N, H, W)
    float32 in [0, 1])``.
    """
    from ..cam.cams import select_classes
    from .peaks import cells_to_pixels, find_peaks

    with torch.no_grad():
        maps, _ = model.score_maps(image[None])
    maps = maps[0].float()
    probs = torch.sigmoid(maps.mean(dim=(1, 2))).cpu().numpy()
    labels = select_classes(probs, tags, score_threshold)
    cells = find_peaks(maps.cpu().numpy(), labels, sigma, eta, window, max_peaks, at_least_one, relu=relu)
    prms = peak_response_maps(model, image, cells[:, :3], batch, smooth_sigma, reduce)
    return cells_to_pixels(cells, maps.shape[-2:], image.shape[-2:]), prms
