"""Instance segmentation with torchvision's Mask R-CNN on pseudo instance masks (LIID's export,
``ws export-coco``): targets, the training step of the shared loop, and detections as COCO
results (compressed RLE) that ``ws eval instance`` scores.

Images enter Mask R-CNN as (3, H, W) float in [0, 1]; the model normalises and resizes itself.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import masks as mask_codec
from ..train.batches import LoadedItems


def instance_target(masks: np.ndarray, labels: np.ndarray) -> dict:
    """Mask R-CNN target of one image: ``masks`` (N, H, W) bool, ``labels`` (N,) in 1..K ->
    ``{boxes (M, 4) float32 x0,y0,x1,y1 (pixel edges), labels (M,) int64, masks (M, H, W) uint8}``
    keeping the M non-empty masks."""
    masks = np.asarray(masks, bool)
    labels = np.asarray(labels, np.int64)
    h, w = masks.shape[1:] if masks.ndim == 3 else (0, 0)
    keep = masks.reshape(len(masks), -1).any(1) if len(masks) else np.zeros(0, bool)
    masks, labels = masks[keep], labels[keep]
    boxes = np.zeros((len(masks), 4), np.float32)
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        boxes[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return {"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels),
            "masks": torch.from_numpy(masks.astype(np.uint8).reshape(len(masks), h, w))}


class InstanceImages(LoadedItems):
    """Item ``i``: ``{"index", "image" (3, H, W) float32 in [0, 1], "target" (see
    :func:`instance_target`), "error"}``, flipped left-right with probability 1/2 when ``flip``.
    ``load(i) -> (image (H, W, 3) uint8, masks (N, H, W) bool, labels (N,))``."""

    def __init__(self, n: int, load, rng_of, flip: bool = True):
        super().__init__(n, load, rng_of)
        self.flip = flip

    def item(self, i, image, masks, labels):
        if self.flip and self.rng_of(i).random() < 0.5:
            image, masks = image[:, ::-1], masks[:, :, ::-1]
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255.0
        return {"image": x, "target": instance_target(masks, labels)}


def collate_instances(items):
    errors = [it["error"] for it in items if it["error"] is not None]
    if errors:
        return {"errors": errors}
    return {"errors": [], "images": [it["image"] for it in items], "targets": [it["target"] for it in items]}


def instance_step(device: str):
    """The loop's ``step`` for Mask R-CNN: the sum of torchvision's losses (RPN objectness and
    box, ROI classification, box and mask); ``aux`` = the individual losses."""
    def step(net, batch):
        images = [x.to(device) for x in batch["images"]]
        targets = [{k: v.to(device) for k, v in t.items()} for t in batch["targets"]]
        losses = net(images, targets)
        total = sum(losses.values())
        return total, {k: float(v.detach()) for k, v in losses.items()}
    return step


def summarize_losses(auxes) -> dict:
    if not auxes:
        return {}
    return {k: float(np.mean([a[k] for a in auxes])) for k in auxes[0]}


def detections_to_results(output: dict, image_id: str, category_ids, mask_threshold: float = 0.5,
                          min_score: float = 0.0) -> list:
    """One image's Mask R-CNN output (``boxes``, ``labels`` 1..K, ``scores``, ``masks`` (N, 1, H, W)
    probabilities) -> COCO results ``[{image_id, category_id, segmentation {size, counts str},
    score}]``; masks binarised at ``mask_threshold``, detections below ``min_score`` dropped."""
    scores = output["scores"].detach().cpu().numpy()
    labels = output["labels"].detach().cpu().numpy()
    probs = output["masks"].detach().cpu().numpy()
    keep = scores >= min_score
    if not keep.any():
        return []
    m = probs[keep, 0] >= mask_threshold
    h, w = m.shape[1:]
    counts = mask_codec.encode(m)
    return [{"image_id": image_id, "category_id": int(category_ids[int(lab) - 1]),
             "segmentation": {"size": [int(h), int(w)], "counts": c.decode("ascii")}, "score": float(s)}
            for c, lab, s in zip(counts, labels[keep], scores[keep])]


@torch.no_grad()
def detect(model, image: np.ndarray, device: str = "cpu", mask_threshold: float = 0.5):
    """One image (H, W, 3) uint8 through Mask R-CNN (eval mode) -> ``(masks (N, H, W) bool,
    labels (N,) 1..K, scores (N,))``, masks binarised at ``mask_threshold``."""
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div(255).to(device)
    out = model([x])[0]
    return (out["masks"][:, 0].cpu().numpy() >= mask_threshold, out["labels"].cpu().numpy(),
            out["scores"].cpu().numpy())


def contour_targets(masks: torch.Tensor, labels: torch.Tensor, height: int, width: int, width_px: int = 1):
    """Training targets of :class:`~wstools.seg.models.ContourInstanceNet` from one image's
    instances (``masks`` (N, h, w) uint8 within an (height, width) canvas, ``labels`` (N,) 1..K):
    ``(semantic (height, width) int64, contours (height, width) float32)``. ``semantic`` is the
    label of the instance covering a pixel (the smaller instance wins where masks overlap), 0
    elsewhere and 255 outside the (h, w) image; ``contours`` is 1 on each instance's inner
    boundary (pixels of the mask within ``width_px`` of a pixel outside it), 0 elsewhere."""
    import torch.nn.functional as F

    h, w = masks.shape[-2:] if masks.ndim == 3 else (height, width)
    sem = torch.full((height, width), 255, dtype=torch.int64)
    sem[:h, :w] = 0
    con = torch.zeros((height, width), dtype=torch.float32)
    if len(masks):
        m = masks.bool()
        order = torch.argsort(m.flatten(1).sum(1), descending=True)     # large first, small painted last
        k = 2 * width_px + 1
        for i in order.tolist():
            sem[:h, :w][m[i]] = int(labels[i])
            inner = -F.max_pool2d(-m[i][None, None].float(), k, 1, width_px)[0, 0]   # erosion
            con[:h, :w][m[i] & (inner < 0.5)] = 1.0
    return sem, con


def instances_from_contours(probs: np.ndarray, contours: np.ndarray, *, contour_threshold: float = 0.5,
                            min_area: int = 4):
    """Instances from a semantic softmax (K+1, H, W) and an instance-contour probability (H, W)
    (the decoding of DCAN, Chen et al. CVPR 2016, Sect. 3.2, per class): each foreground class's
    argmax region less its contour pixels is split into 8-connected components; components smaller
    than ``min_area`` pixels are dropped; every other pixel of the region joins its nearest
    component. Returns ``(masks (N, H, W) bool, labels (N,) 1..K, scores (N,))``, a score being
    the class's mean probability over the instance."""
    import cv2
    from scipy import ndimage

    probs = np.asarray(probs, np.float32)
    arg = probs.argmax(0)
    H, W = arg.shape
    out_m, out_l, out_s = [], [], []
    for c in range(1, probs.shape[0]):
        region = arg == c
        if not region.any():
            continue
        core = region & (np.asarray(contours) < contour_threshold)
        n, comp = cv2.connectedComponents(core.astype(np.uint8), connectivity=8)
        areas = np.bincount(comp.ravel(), minlength=n)
        keep = [j for j in range(1, n) if areas[j] >= min_area]
        if not keep:
            continue
        comp = np.where(np.isin(comp, keep), comp, 0)
        # every region pixel takes the label of the nearest kept core pixel
        _, (iy, ix) = ndimage.distance_transform_edt(comp == 0, return_indices=True)
        grown = np.where(region, comp[iy, ix], 0)
        for j in keep:
            m = grown == j
            if m.any():
                out_m.append(m)
                out_l.append(c)
                out_s.append(float(probs[c][m].mean()))
    if not out_m:
        return np.zeros((0, H, W), bool), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.stack(out_m), np.asarray(out_l, np.int64), np.asarray(out_s, np.float32)
