"""Peak response maps by peak back-propagation (Huang et al. 2021 Eq. 2, after Zhou et al.,
CVPR 2018).

Our choice (documented, as neither paper fixes it for an arbitrary backbone): the response
map of a peak (class c, cell (i, j)) is the gradient of that single score-map value
M_c[i, j] with respect to the input image (the "input-level feature map" of Eq. 2; all other
peaks and cells get no gradient, "only peaks are enabled"), reduced to one channel by the
absolute value summed over the three colour channels, smoothed by a Gaussian of
``smooth_sigma`` pixels and min-max normalised to [0, 1]. The classifier is in eval mode
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


def peak_response_maps(model, image: torch.Tensor, cells: np.ndarray, batch: int = 8,
                       smooth_sigma: float = 2.0) -> np.ndarray:
    """One response map per peak.

    Parameters
    ----------
    model : a :class:`~wstools.cam.model.CamNet` in eval mode (``score_maps(x) -> (maps, feats)``)
    image : (3, H, W) float, the normalised image, on the model's device
    cells : (N, 3) int rows ``[label (1..K), i, j]``: peak cells of the score map
    batch : peaks back-propagated together (memory ~ batch x one forward/backward pass)
    smooth_sigma : Gaussian smoothing of the gradient magnitude, in pixels (0 = none)

    Returns
    -------
    (N, H, W) float32 in [0, 1].
    """
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
        r = grad.abs().sum(1).float().cpu().numpy()
        if smooth_sigma > 0:
            r = np.stack([ndimage.gaussian_filter(m, smooth_sigma, mode="nearest") for m in r])
        out[s:s + n] = normalize_maps(r)
    return out
