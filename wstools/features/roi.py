"""ROI-Align of proposal boxes on a feature map, then global average pooling (LIID Sect. 4.1;
Fan et al. Sect. 3.2 use a GAP feature per region as well)."""

from __future__ import annotations

import torch


def roi_features(fmap: torch.Tensor, boxes: list, image_size, output_size: int = 7,
                 sampling_ratio: int = 2) -> torch.Tensor:
    """Pooled features of every proposal of a batch.

    fmap: (B, D, h, w) feature map of B equally sized images of ``image_size`` = (H, W) pixels;
    boxes: list of B float tensors (P_b, 4) xyxy in image pixels. ``torchvision.ops.roi_align``
    with spatial_scale = h / H (the map's stride), ``aligned=True``, an ``output_size`` square
    grid, then the mean over the grid (GAP). Returns (sum P_b, D), rows in image order.
    """
    from torchvision.ops import roi_align

    D = fmap.shape[1]
    if sum(int(b.shape[0]) for b in boxes) == 0:
        return fmap.new_zeros((0, D))
    H = int(image_size[0])
    scale = fmap.shape[-2] / float(H)
    rois = roi_align(fmap, [b.to(fmap.dtype).reshape(-1, 4) for b in boxes], output_size=output_size,
                     spatial_scale=scale, sampling_ratio=sampling_ratio, aligned=True)
    return rois.mean(dim=(2, 3))
