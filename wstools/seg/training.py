"""The pieces of a segmentation training run on the shared loop (:func:`wstools.train.fit`):
the network and its checkpoint entries, the optimizer, the step (with DSRG's growing and the
boundary loss's CRF when asked for), the per-epoch evaluators, and DSRG's stage-1 labels for
retraining. Plain functions: the caller reads the files (``ws train-seg`` does) and passes
images, label maps and ground truth in.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from ..errors import WsRuntimeError


def build_network(task: str, arch: str, stride: int, classes, category_ids, min_size: int = 800,
                  max_size: int = 1333):
    """``(model, base)``: a semantic (:func:`~wstools.seg.models.build_semantic`) or instance
    (:func:`~wstools.seg.models.build_instance`) network for ``len(classes) + 1`` labels, and the
    entries every checkpoint of it carries (arch, task, stride or sizes, classes, category ids)."""
    from .models import build_instance, build_semantic

    k1 = len(classes) + 1
    if task == "semantic":
        model = build_semantic(arch, k1, stride)
        base = {"arch": arch, "task": task, "stride": model.stride, "classes": list(classes),
                "category_ids": category_ids}
    else:
        model = build_instance(arch, k1, min_size, max_size)
        base = {"arch": arch, "task": task, "classes": list(classes), "min_size": min_size,
                "max_size": max_size, "category_ids": category_ids}
    return model, base


class _Body:
    """Mask R-CNN seen by :func:`~wstools.seg.models.load_backbone`: ``backbone`` = the ResNet / tiny body."""

    def __init__(self, model):
        self.arch = "mask r-cnn"
        self.backbone = model.backbone.body


def backbone_holder(model, task: str, arch: str):
    """What :func:`~wstools.seg.models.load_backbone` loads a classifier's backbone into: the
    network itself (semantic, ``contour_tiny``) or Mask R-CNN's body."""
    return model if task == "semantic" or arch == "contour_tiny" else _Body(model)


def segmentation_optimizer(model, task: str, name: str = "sgd", lr: float = 1e-3, momentum: float = 0.9,
                           weight_decay: float = 5e-4, head_lr_mult: float = 10.0) -> torch.optim.Optimizer:
    """SGD (DSRG) or Adam: semantic networks with the head at ``lr * head_lr_mult`` (DeepLab),
    instance networks over their trainable weights at ``lr``."""
    from ..train.loop import make_optimizer

    if task == "semantic":
        groups = model.param_groups(lr, head_lr_mult, weight_decay)
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr, "initial_lr": lr,
                   "weight_decay": weight_decay}]
    return make_optimizer(groups, name, lr, momentum, weight_decay)


def training_plan(task: str, model, device: str, *, optimizer: str = "sgd", lr: float = 1e-3, momentum: float = 0.9,
                  weight_decay: float = 5e-4, head_lr_mult: float = 10.0, losses: dict | None = None,
                  at: str = "output", boundary_stride: int = 1) -> dict:
    """The loop's arguments for ``model`` (:func:`wstools.train.fit`): ``step``, ``collate``,
    ``summarize``, ``optimizer`` (:func:`segmentation_optimizer`) and ``find_unused_parameters``.
    Semantic: :func:`~wstools.seg.semantic.semantic_step` with ``losses`` (its ``loss``,
    ``boundary_weight``, ``crf``, ``grow``, ``grow_crf``) at resolution ``at``; instance:
    :func:`~wstools.seg.instance.instance_step`."""
    from . import semantic
    from .data import collate_crops
    from .instance import collate_instances, instance_step, summarize_losses

    opt = segmentation_optimizer(model, task, optimizer, lr, momentum, weight_decay, head_lr_mult)
    if task == "semantic":
        return {"step": semantic.semantic_step(device, **(losses or {}), at=at, boundary_stride=boundary_stride),
                "collate": collate_crops, "summarize": semantic.summarize_labelled, "optimizer": opt,
                "find_unused_parameters": False}
    return {"step": instance_step(device), "collate": collate_instances, "summarize": summarize_losses,
            "optimizer": opt, "find_unused_parameters": True}


def crf_and_growing(crf: bool, grow: bool, theta_fg: float = 0.85, theta_bg: float = 0.99):
    """``(crf_fn, grow_fn)`` for :func:`~wstools.seg.semantic.semantic_step`: the dense CRF
    (:func:`wstools.grow.crf.dense_crf`) when ``crf``, DSRG's seeded region growing with
    theta_f / theta_b when ``grow``; ``None`` for each not asked for. A missing extra is a
    :class:`~wstools.errors.WsRuntimeError` naming it."""
    crf_fn = grow_fn = None
    if crf:
        try:
            from ..grow.crf import dense_crf, require_crf
        except ImportError as e:
            raise WsRuntimeError(f"the dense CRF (wstools.grow.crf) is not available: {e}") from None
        require_crf()
        crf_fn = dense_crf
    if grow:
        try:
            from ..grow import seeded_region_growing
        except ImportError as e:
            raise WsRuntimeError(f"seeded region growing (wstools.grow) is not available: {e}") from None
        grow_fn = partial(seeded_region_growing, theta_fg=theta_fg, theta_bg=theta_bg)
    return crf_fn, grow_fn


def semantic_evaluator(samples, classes, device: str):
    """``evaluate(model, rank, world) -> {val_miou, val_pixel_accuracy}`` (single scale, no flip;
    :func:`~wstools.seg.semantic.semantic_confusion`). ``samples(rank, world)`` yields this
    rank's ``(image (H, W, 3) uint8, ground truth (H, W) 0..K / 255)`` pairs."""
    from ..eval.semantic import scores
    from ..train.loop import gather
    from .semantic import semantic_confusion

    def evaluate(model, rank, world):
        conf = sum(gather([semantic_confusion(model, samples(rank, world), len(classes), device)], world))
        s = scores(conf, classes)
        return {"val_miou": s["miou"], "val_pixel_accuracy": s["pixel_accuracy"]}
    return evaluate


def instance_evaluator(samples, num_classes: int, device: str, mask_threshold: float = 0.5):
    """``evaluate(model, rank, world) -> {val_ap, val_ap50, val_map_r50}`` on rank 0 (COCO mask AP
    with :class:`wstools.eval.instance.InstanceEvaluator`, as ``ws eval instance``).
    ``samples()`` yields ``(image, gt, height, width)`` in pycocotools' image order, ``gt`` with
    ``counts`` (RLE), ``labels`` and ``iscrowd``."""
    from ..eval.instance import InstanceEvaluator
    from .instance import detect

    def evaluate(model, rank, world):
        if rank != 0:
            return {}
        ev = InstanceEvaluator(range(1, num_classes + 1))
        for image, gt, height, width in samples():
            masks, labels, scores = detect(model, image, device, mask_threshold)
            ev.add(gt.counts, gt.labels, masks, labels, scores, gt_crowd=gt.iscrowd, height=height, width=width)
        r = ev.result()
        return {"val_ap": r["coco"]["AP"], "val_ap50": r["coco"]["AP50"], "val_map_r50": r["map_r"].get("0.5")}
    return evaluate


def tag_restricted_labels(model, image: np.ndarray, tags: np.ndarray, device: str = "cpu", crf=None) -> np.ndarray:
    """DSRG's stage-1 labels of one training image (Sect. 4.4 "+Retrain"): the network's softmax
    restricted to background and the image's ``tags`` ((K,) 0/1; absent classes zeroed),
    refined by ``crf`` if given, argmax: (H, W) uint8."""
    from ..cam.augment import normalize
    from .semantic import predict_probs, present_labels, refine, restrict_to_present

    p = predict_probs(model, torch.from_numpy(normalize(image))[None].to(device))[0].cpu().numpy()
    p = refine(restrict_to_present(p, present_labels(tags)), image, crf=crf)
    return p.argmax(0).astype(np.uint8)
