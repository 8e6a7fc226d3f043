"""Segment Anything's automatic mask generation: class-agnostic segment proposals from a
grid of point prompts (Kirillov et al., "Segment Anything", ICCV 2023, Sec. 3 and App. A
"Automatic mask generation").

The procedure (our implementation of the paper's description; the defaults are those of the
paper and of the official ``SamAutomaticMaskGenerator``):

1. the image (and, with ``crop_layers`` > 0, overlapping zoomed-in crops of it: layer i
   cuts the image into 2^i x 2^i crops overlapping by ``crop_overlap`` of a side) is resized so
   that its longer side is the model's input size, normalised and padded to a square;
2. a regular ``points_per_side`` x ``points_per_side`` grid of foreground points is prompted,
   ``points_per_batch`` at a time, three masks per point (multimask output);
3. a mask is kept when its predicted IoU >= ``pred_iou_thresh`` (0.88) and its stability
   score >= ``stability_thresh`` (0.95): the IoU of the mask logits thresholded at
   ``mask_threshold`` +- ``stability_offset`` (1.0);
4. masks are thresholded at ``mask_threshold`` (0.0), and duplicates removed by box NMS at
   ``box_nms`` (0.7) within a crop; masks of a crop that touch the crop's inner border are
   dropped, and crops are merged by box NMS at ``crop_nms`` preferring masks of smaller crops;
5. with ``min_region_area`` > 0, holes and islands smaller than that (pixels) are removed and
   NMS is run again.

The score of a mask is predicted IoU x stability. The model is a ``transformers``
``SamModel`` (any checkpoint of that class: ViT-B/L/H, or a tiny random one in tests); the
function only calls its ``get_image_embeddings`` and its prompt-encoder/mask-decoder forward.
"""

from __future__ import annotations

import numpy as np

PIXEL_MEAN = (123.675, 116.28, 103.53)   # SAM's normalisation (ImageNet statistics, 0-255 scale)
PIXEL_STD = (58.395, 57.12, 57.375)


def point_grid(n: int) -> np.ndarray:
    """(n*n, 2) float64 ``x, y`` point centres of a regular n x n grid on [0, 1]^2."""
    c = (np.arange(n, dtype=np.float64) + 0.5) / n
    xs, ys = np.meshgrid(c, c)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def crop_boxes(height: int, width: int, layers: int, overlap: float) -> tuple[list, list]:
    """Crop boxes ``[x0, y0, x1, y1]`` (x1, y1 exclusive) and their layer: the whole image
    (layer 0), then for layer i = 1..layers 2^i x 2^i crops whose neighbours overlap by
    ``overlap`` x (shorter side) x 2 / 2^i pixels (SAM App. A: overlapping 2x2 and 4x4 windows)."""
    boxes, layer_of = [[0, 0, width, height]], [0]
    short = min(height, width)
    for i in range(1, layers + 1):
        n = 2 ** i
        ov = int(overlap * short * (2 / n))
        cw = int(np.ceil((ov * (n - 1) + width) / n))
        ch = int(np.ceil((ov * (n - 1) + height) / n))
        for y in range(n):
            for x in range(n):
                x0, y0 = (cw - ov) * x, (ch - ov) * y
                boxes.append([x0, y0, min(x0 + cw, width), min(y0 + ch, height)])
                layer_of.append(i)
    return boxes, layer_of


def stability_score(logits, threshold: float, offset: float):
    """IoU of ``logits > threshold + offset`` within ``logits > threshold - offset`` per mask
    (torch tensor (..., H, W) -> (...)); SAM App. A 'stable masks'."""
    inner = (logits > threshold + offset).flatten(-2).sum(-1)
    outer = (logits > threshold - offset).flatten(-2).sum(-1)
    return inner.float() / outer.clamp(min=1).float()


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) bool -> (N, 4) float32 tight ``x0, y0, x1, y1`` boxes (x1, y1 exclusive; an
    empty mask gets a zero box)."""
    n = len(masks)
    out = np.zeros((n, 4), np.float32)
    for i in range(n):
        ys = np.flatnonzero(masks[i].any(1))
        xs = np.flatnonzero(masks[i].any(0))
        if len(ys):
            out[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return out


def remove_small_regions(mask: np.ndarray, min_area: int) -> np.ndarray:
    """Fill holes and delete islands of ``mask`` smaller than ``min_area`` pixels (8-connected)."""
    import cv2

    out = mask.copy()
    for fill in (True, False):      # holes first, then islands
        work = (~out if fill else out).astype(np.uint8)
        n, lab, stats, _ = cv2.connectedComponentsWithStats(work, connectivity=8)
        small = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] < min_area]
        if small:
            hit = np.isin(lab, small)
            out[hit] = fill
    return out


def _box_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    import torch
    from torchvision.ops import nms

    if len(boxes) == 0 or threshold >= 1:
        return np.argsort(-scores, kind="stable")
    keep = nms(torch.as_tensor(boxes, dtype=torch.float32), torch.as_tensor(scores, dtype=torch.float32),
               float(threshold))
    return keep.numpy()


def _prepare(image: np.ndarray, size: int, device):
    """uint8 (h, w, 3) -> normalised, padded (1, 3, size, size) tensor and the resized (h', w')."""
    import torch
    import torch.nn.functional as F

    h, w = image.shape[:2]
    s = size / max(h, w)
    nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
    x = torch.from_numpy(np.array(image, dtype=np.uint8)).to(device).permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(PIXEL_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=device).view(1, 3, 1, 1)
    x = (x - mean) / std
    x = F.pad(x, (0, size - nw, 0, size - nh))
    return x, (nh, nw)


def _crop_masks(model, crop: np.ndarray, *, points: np.ndarray, points_per_batch: int, pred_iou_thresh: float,
                stability_thresh: float, stability_offset: float, mask_threshold: float, box_nms: float):
    """Masks of one crop (bool (N, h, w)), predicted IoU and stability (N,), after NMS."""
    import torch
    import torch.nn.functional as F

    dev = next(model.parameters()).device
    size = int(model.config.vision_config.image_size)
    h, w = crop.shape[:2]
    x, (nh, nw) = _prepare(crop, size, dev)
    dtype = next(model.parameters()).dtype
    masks, ious, stabs = [], [], []
    with torch.no_grad():
        emb = model.get_image_embeddings(x.to(dtype))
        pts = points * np.array([nw, nh], dtype=np.float64)       # in the resized frame
        for s in range(0, len(pts), points_per_batch):
            p = torch.as_tensor(pts[s:s + points_per_batch], dtype=dtype, device=dev)
            out = model(image_embeddings=emb, input_points=p[None, :, None, :],
                        input_labels=torch.ones((1, len(p), 1), dtype=torch.long, device=dev),
                        multimask_output=True)
            logits = out.pred_masks[0].flatten(0, 1).float()             # (B*3, h_low, w_low)
            iou = out.iou_scores[0].flatten().float()
            keep = iou >= pred_iou_thresh
            if not keep.any():
                continue
            logits, iou = logits[keep], iou[keep]
            logits = F.interpolate(logits[:, None], size=(size, size), mode="bilinear", align_corners=False)
            logits = F.interpolate(logits[:, :, :nh, :nw], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
            stab = stability_score(logits, mask_threshold, stability_offset)
            keep = stab >= stability_thresh
            if not keep.any():
                continue
            masks.append((logits[keep] > mask_threshold).cpu().numpy())
            ious.append(iou[keep].cpu().numpy())
            stabs.append(stab[keep].cpu().numpy())
    if not masks:
        return np.zeros((0, h, w), bool), np.zeros(0, np.float32), np.zeros(0, np.float32)
    masks, ious, stabs = np.concatenate(masks), np.concatenate(ious), np.concatenate(stabs)
    nonempty = masks.reshape(len(masks), -1).any(1)
    masks, ious, stabs = masks[nonempty], ious[nonempty], stabs[nonempty]
    keep = _box_nms(mask_boxes(masks), ious, box_nms)
    return masks[keep], ious[keep].astype(np.float32), stabs[keep].astype(np.float32)


def sam_masks(image: np.ndarray, model, *, points_per_side: int = 32, points_per_batch: int = 64,
              pred_iou_thresh: float = 0.88, stability_thresh: float = 0.95, stability_offset: float = 1.0,
              mask_threshold: float = 0.0, box_nms: float = 0.7, crop_layers: int = 0, crop_nms: float = 0.7,
              crop_overlap: float = 512 / 1500, crop_points_downscale: int = 1,
              min_region_area: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SAM automatic masks of one image (module docstring for the steps and their sources).

    ``image``: (H, W, 3) uint8 RGB. ``model``: a ``transformers.SamModel`` in eval mode (on any
    device). Returns ``masks`` (N, H, W) bool, ``scores`` (N,) float32 = predicted IoU x
    stability, and ``boxes`` (N, 4) float32 ``x0, y0, x1, y1`` (x1, y1 exclusive), ranked by
    score, best first.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    H, W = image.shape[:2]
    cboxes, layers = crop_boxes(H, W, crop_layers, crop_overlap)
    all_masks, all_iou, all_stab, all_crop_area = [], [], [], []
    for (x0, y0, x1, y1), layer in zip(cboxes, layers):
        n = max(1, int(points_per_side / crop_points_downscale ** layer))
        m, iou, stab = _crop_masks(model, image[y0:y1, x0:x1], points=point_grid(n),
                                   points_per_batch=points_per_batch, pred_iou_thresh=pred_iou_thresh,
                                   stability_thresh=stability_thresh, stability_offset=stability_offset,
                                   mask_threshold=mask_threshold, box_nms=box_nms)
        if layer > 0 and len(m):    # masks cut by the crop's inner border are left to other crops
            b = mask_boxes(m)
            inner = np.array([x0 > 0, y0 > 0, x1 < W, y1 < H])
            near = (np.abs(b - np.array([0, 0, x1 - x0, y1 - y0])) <= 20.0) & inner
            ok = ~near.any(1)
            m, iou, stab = m[ok], iou[ok], stab[ok]
        full = np.zeros((len(m), H, W), bool)
        full[:, y0:y1, x0:x1] = m
        all_masks.append(full)
        all_iou.append(iou)
        all_stab.append(stab)
        all_crop_area.append(np.full(len(m), float((x1 - x0) * (y1 - y0))))
    masks = np.concatenate(all_masks)
    iou, stab = np.concatenate(all_iou), np.concatenate(all_stab)
    if len(cboxes) > 1 and len(masks):
        keep = _box_nms(mask_boxes(masks), 1.0 / np.concatenate(all_crop_area), crop_nms)
        masks, iou, stab = masks[keep], iou[keep], stab[keep]
    if min_region_area > 0 and len(masks):
        masks = np.stack([remove_small_regions(m, int(min_region_area)) for m in masks])
        nonempty = masks.reshape(len(masks), -1).any(1)
        masks, iou, stab = masks[nonempty], iou[nonempty], stab[nonempty]
        keep = _box_nms(mask_boxes(masks), iou * stab, box_nms)
        masks, iou, stab = masks[keep], iou[keep], stab[keep]
    scores = (iou * stab).astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    masks, scores = masks[order], scores[order]
    return masks, scores, mask_boxes(masks)
