"""Segmentation networks: DeepLabv3 (torchvision) and a small CPU network; Mask R-CNN.

Semantic networks are :class:`SegNet`: ``forward(x (B, 3, H, W) ImageNet-normalised) ->
logits (B, K+1, h, w)`` at the network's output stride (h ~ H / stride); callers upsample.
Their ``backbone`` module carries the parameter names of the classifier's backbone
(:mod:`wstools.nn.backbones`) so a ``ws cam`` classifier initialises it (Sun et al.
Sect. 3.5: the segmentation network starts from the colour classifier).

Architectures (``SEMANTIC_ARCHS``):

- ``tiny``: :class:`~wstools.nn.backbones.TinyBackbone` (stride 8 or 16) + a 3x3 conv-BN-ReLU
  and a 1x1 classifier; for CPU runs and tests.
- ``deeplabv3_resnet50``, ``deeplabv3_resnet101``: torchvision's DeepLabv3 (ASPP head,
  output stride 8), built with ``weights=None, weights_backbone=None``.

Instance networks (``INSTANCE_ARCHS``): torchvision's ``maskrcnn_resnet50_fpn`` and
``maskrcnn_tiny`` (the tiny backbone at stride 8, one feature map, for CPU runs).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..errors import InputError
from ..nn.backbones import build_backbone

SEMANTIC_ARCHS = ("tiny", "deeplabv3_resnet50", "deeplabv3_resnet101")
INSTANCE_ARCHS = ("maskrcnn_tiny", "maskrcnn_resnet50_fpn")
# the classifier architecture whose backbone weights fit each segmentation architecture
BACKBONE_OF = {"tiny": "tiny", "deeplabv3_resnet50": "resnet50", "deeplabv3_resnet101": "resnet101",
               "maskrcnn_tiny": "tiny", "maskrcnn_resnet50_fpn": "resnet50"}


class SegNet(nn.Module):
    """``backbone`` (features) + ``head`` (logits). ``forward(x) -> (B, num_labels, h, w)``."""

    def __init__(self, arch: str, backbone: nn.Module, head: nn.Module, num_labels: int, stride: int,
                 torchvision_backbone: bool = False):
        super().__init__()
        self.arch, self.num_labels, self.stride = arch, num_labels, stride
        self.backbone, self.head = backbone, head
        self._tv = torchvision_backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone(x)
        return self.head(f["out"] if self._tv else f[-1])

    def param_groups(self, lr: float, head_lr_mult: float = 10.0, weight_decay: float = 5e-4) -> list:
        """Backbone at ``lr``, the head at ``head_lr_mult * lr`` (DeepLab / DSRG: 10x on the classifier)."""
        return [{"params": list(self.backbone.parameters()), "lr": lr, "initial_lr": lr,
                 "weight_decay": weight_decay},
                {"params": list(self.head.parameters()), "lr": lr * head_lr_mult,
                 "initial_lr": lr * head_lr_mult, "weight_decay": weight_decay}]


def build_semantic(arch: str, num_labels: int, stride: int = 8) -> SegNet:
    """A randomly initialised semantic network over ``num_labels`` = K + 1 labels."""
    if arch == "tiny":
        bb = build_backbone("tiny", stride)
        c = bb.out_channels
        head = nn.Sequential(nn.Conv2d(c, c // 2, 3, padding=1, bias=False), nn.BatchNorm2d(c // 2),
                             nn.ReLU(inplace=True), nn.Conv2d(c // 2, num_labels, 1))
        return SegNet(arch, bb, head, num_labels, stride)
    if arch in ("deeplabv3_resnet50", "deeplabv3_resnet101"):
        from torchvision.models import segmentation

        net = getattr(segmentation, arch)(weights=None, weights_backbone=None, num_classes=num_labels,
                                          aux_loss=False)
        return SegNet(arch, net.backbone, net.classifier, num_labels, 8, torchvision_backbone=True)
    raise InputError(f"unknown segmentation architecture {arch!r} (choose from {', '.join(SEMANTIC_ARCHS)})")


def load_backbone(model: nn.Module, state: dict, source="weights") -> int:
    """Copy a backbone state dict (classifier backbone names: ``conv1.weight``, ``layer1.0...``,
    ``stage1...``; ``fc.*`` dropped) into ``model.backbone``. Every backbone parameter must be
    present with the same shape; returns the number of tensors loaded."""
    own = model.backbone.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier."))}
    missing = [k for k in own if k not in state]
    if missing:
        raise InputError(f"weights do not fit --arch {model.arch}: the file lacks {len(missing)} backbone "
                         f"parameters (e.g. {missing[0]!r})", path=source)
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise InputError(f"weights do not fit --arch {model.arch}: {k!r} has shape {tuple(state[k].shape)}, "
                             f"expected {tuple(v.shape)}", path=source)
    model.backbone.load_state_dict({k: state[k] for k in own}, strict=True)
    return len(own)


class _TinyFeatures(nn.Module):
    """The tiny backbone as Mask R-CNN wants it: ``x -> OrderedDict(0=f_top)``, ``out_channels``."""

    def __init__(self):
        super().__init__()
        self.body = build_backbone("tiny", 8)
        self.out_channels = self.body.out_channels

    def forward(self, x):
        return OrderedDict([("0", self.body(x)[-1])])


def build_instance(arch: str, num_labels: int, min_size: int = 800, max_size: int = 1333):
    """torchvision Mask R-CNN over ``num_labels`` = K + 1 labels (0 = background); images are
    resized so their short side is ``min_size`` (torchvision: 800) and long side <= ``max_size``.
    The backbone is reachable as ``model.backbone.body`` (classifier parameter names)."""
    from torchvision.models import detection
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    if arch == "maskrcnn_resnet50_fpn":
        return detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_labels,
                                               min_size=min_size, max_size=max_size)
    if arch == "maskrcnn_tiny":
        from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
        from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

        # small heads and proposal budgets: a CPU network for toy-sized images
        feats = _TinyFeatures()
        c = feats.out_channels
        anchors = AnchorGenerator(sizes=((8, 16, 32, 64),), aspect_ratios=((0.5, 1.0, 2.0),))
        return detection.MaskRCNN(
            feats, num_classes=None, min_size=min_size, max_size=max_size, rpn_anchor_generator=anchors,
            rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=150, rpn_pre_nms_top_n_test=150,
            rpn_post_nms_top_n_test=75, box_batch_size_per_image=64, box_detections_per_img=30,
            box_roi_pool=MultiScaleRoIAlign(["0"], output_size=7, sampling_ratio=2),
            box_head=TwoMLPHead(c * 7 * 7, 256), box_predictor=FastRCNNPredictor(256, num_labels),
            mask_roi_pool=MultiScaleRoIAlign(["0"], output_size=14, sampling_ratio=2),
            mask_head=MaskRCNNHeads(c, [64, 64], 1), mask_predictor=MaskRCNNPredictor(64, 64, num_labels))
    raise InputError(f"unknown instance architecture {arch!r} (choose from {', '.join(INSTANCE_ARCHS)})")
