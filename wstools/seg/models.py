"""Segmentation networks: DeepLabv3 (torchvision) and a small CPU network; Mask R-CNN.

Semantic networks are :class:`SegNet`: ``forward(x (B, 3, H, W) ImageNet-normalised) ->
logits (B, K+1, h, w)`` at the network's output stride (h ~ H / stride); callers upsample.
Their ``backbone`` module carries the parameter names of the classifier's backbone
(:mod:`wstools.nn.backbones`) so a ``ws cam`` classifier initialises it (Sun et al.
Sect. 3.5: the segmentation network starts from the colour classifier).

Architectures (``SEMANTIC_ARCHS``):

- ``tiny``: :class:`~wstools.nn.backbones.TinyBackbone` (stride 8 or 16) + a 3x3 conv-BN-ReLU
  and a 1x1 classifier; for CPU runs and tests.
- ``tiny_unet``: the same backbone + a U-Net decoder (Ronneberger et al. 2015) with skips from
  every backbone stage and from a full-resolution convolution of the image
  (:class:`UNetDecoder`): logits at the input resolution; the base of ``contour_tiny``. On
  96 px toy data it is not better than ``tiny`` at an equal number of steps and costs about
  twice the CPU per step (README "ws train-seg" benchmarks): both underfit there.
- ``deeplabv3_resnet50``, ``deeplabv3_resnet101``: torchvision's DeepLabv3 (ASPP head,
  output stride 8), built with ``weights=None, weights_backbone=None``.

Instance networks (``INSTANCE_ARCHS``): torchvision's ``maskrcnn_resnet50_fpn`` and
``maskrcnn_tiny`` (the tiny backbone at stride 8, one feature map, for CPU runs), and
``contour_tiny`` (:class:`ContourInstanceNet`: the ``tiny_unet`` with an instance-contour
channel, decoded as in DCAN, Chen et al. CVPR 2016; a proposal-free stand-in for Mask R-CNN
that learns toy data in CPU minutes). All take and return what torchvision's Mask R-CNN does.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..nn.backbones import build_backbone

SEMANTIC_ARCHS = ("tiny", "tiny_unet", "deeplabv3_resnet50", "deeplabv3_resnet101")
INSTANCE_ARCHS = ("maskrcnn_tiny", "contour_tiny", "maskrcnn_resnet50_fpn")
# the classifier architecture whose backbone weights fit each segmentation architecture
BACKBONE_OF = {"tiny": "tiny", "tiny_unet": "tiny", "deeplabv3_resnet50": "resnet50", "deeplabv3_resnet101": "resnet101",
               "maskrcnn_tiny": "tiny", "contour_tiny": "tiny", "maskrcnn_resnet50_fpn": "resnet50"}


class SegNet(nn.Module):
    """``backbone`` (features) + ``head`` (logits). ``forward(x) -> (B, num_labels, h, w)``.
    ``stride`` is the backbone's output stride (the ``stride`` argument of :func:`build_semantic`)."""

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


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNetDecoder(nn.Module):
    """U-Net decoder (Ronneberger et al. 2015) over the tiny backbone's stages.

    ``forward(x, feats) -> logits (B, num_labels, H, W)`` with ``x`` the input (B, 3, H, W) and
    ``feats = [stem (s2), stage1 (s4), stage2 (s8), stage4 (s8 or s16)]``: starting from the top
    stage, each step upsamples (bilinear) to the next finer skip, concatenates it and applies a
    3x3 conv-BN-ReLU; the last skip is a 3x3 conv-BN-ReLU of the image itself at full resolution,
    so boundaries are drawn at pixel precision. ``skip_channels`` = channels of the four features;
    ``widths`` = channels after each of the four merges (s8, s4, s2, s1)."""

    def __init__(self, skip_channels, num_labels: int, widths=(64, 48, 32, 16), input_width: int = 16):
        super().__init__()
        c_stem, c1, c2, c_top = skip_channels
        self.input = _conv_bn_relu(3, input_width)
        self.merge8 = _conv_bn_relu(c_top + c2, widths[0])
        self.merge4 = _conv_bn_relu(widths[0] + c1, widths[1])
        self.merge2 = _conv_bn_relu(widths[1] + c_stem, widths[2])
        self.merge1 = _conv_bn_relu(widths[2] + input_width, widths[3])
        self.classifier = nn.Conv2d(widths[3], num_labels, 1)

    @staticmethod
    def _up_cat(y, skip):
        if y.shape[-2:] != skip.shape[-2:]:
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([y, skip], 1)

    def forward(self, x, feats):
        stem, f1, f2, top = feats
        y = self.merge8(self._up_cat(top, f2))
        y = self.merge4(self._up_cat(y, f1))
        y = self.merge2(self._up_cat(y, stem))
        y = self.merge1(self._up_cat(y, self.input(x)))
        return self.classifier(y)


class TinyUNet(SegNet):
    """``tiny_unet``: :class:`~wstools.nn.backbones.TinyBackbone` (its parameter names, so a tiny
    classifier initialises it) + :class:`UNetDecoder` as ``head``; logits at the input resolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        stem = b.stem(x)
        f1 = b.stage1(stem)
        f2 = b.stage2(f1)
        top = b.stage4(b.stage3(f2))
        return self.head(x, [stem, f1, f2, top])


class ContourInstanceNet(TinyUNet):
    """``contour_tiny``: a :class:`TinyUNet` with K+2 output channels, the semantic logits over
    labels 0..K and one instance-contour logit (DCAN, Chen et al. CVPR 2016: a contour-aware
    network whose contours split touching objects); called like torchvision's Mask R-CNN.

    ``forward(images, targets=None)``: ``images`` a list of (3, H, W) floats in [0, 1] (padded
    to a common size); training (with ``targets`` as Mask R-CNN's, ``masks`` and ``labels``)
    returns ``{"loss_semantic": cross-entropy, "loss_contour": contour_weight x binary
    cross-entropy}`` (targets by :func:`wstools.seg.instance.contour_targets`); eval returns one
    dict per image with ``boxes`` (N, 4), ``labels``, ``scores`` and ``masks`` (N, 1, H, W) (0/1)
    of :func:`wstools.seg.instance.instances_from_contours`."""

    def __init__(self, backbone, head, num_labels: int, stride: int, contour_weight: float = 1.0,
                 min_area: int = 4):
        super().__init__("contour_tiny", backbone, head, num_labels, stride)
        self.contour_weight, self.min_area = contour_weight, min_area

    def _batch(self, images):
        H = max(int(x.shape[-2]) for x in images)
        W = max(int(x.shape[-1]) for x in images)
        mean = torch.tensor([0.485, 0.456, 0.406], device=images[0].device).view(3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=images[0].device).view(3, 1, 1)
        x = torch.zeros(len(images), 3, H, W, device=images[0].device)
        for i, im in enumerate(images):
            x[i, :, :im.shape[-2], :im.shape[-1]] = (im - mean) / std
        return x

    def forward(self, images, targets=None):
        from .instance import contour_targets, instances_from_contours
        from .losses import cross_entropy

        x = self._batch(images)
        out = super().forward(x)
        sem_logits, con_logits = out[:, :-1], out[:, -1]
        if self.training:
            if targets is None:
                raise ValueError("training needs targets")
            sem, con = zip(*[contour_targets(t["masks"].cpu(), t["labels"].cpu(), x.shape[-2], x.shape[-1])
                             for t in targets])
            sem = torch.stack(sem).to(x.device)
            con = torch.stack(con).to(x.device)
            valid = sem != 255
            bce = F.binary_cross_entropy_with_logits(con_logits[valid], con[valid]) if bool(valid.any()) \
                else con_logits.sum() * 0.0
            return {"loss_semantic": cross_entropy(sem_logits, sem), "loss_contour": self.contour_weight * bce}
        probs = torch.softmax(sem_logits.detach().float(), 1).cpu().numpy()
        contours = torch.sigmoid(con_logits.detach().float()).cpu().numpy()
        results = []
        for i, im in enumerate(images):
            h, w = im.shape[-2:]
            masks, labels, scores = instances_from_contours(probs[i, :, :h, :w], contours[i, :h, :w],
                                                            min_area=self.min_area)
            boxes = np.zeros((len(masks), 4), np.float32)
            for j, m in enumerate(masks):
                ys, xs = np.nonzero(m)
                boxes[j] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            results.append({"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels),
                            "scores": torch.from_numpy(scores),
                            "masks": torch.from_numpy(masks.astype(np.float32))[:, None]})
        return results


def build_semantic(arch: str, num_labels: int, stride: int = 8) -> SegNet:
    """A randomly initialised semantic network over ``num_labels`` = K + 1 labels."""
    if arch == "tiny":
        bb = build_backbone("tiny", stride)
        c = bb.out_channels
        head = nn.Sequential(nn.Conv2d(c, c // 2, 3, padding=1, bias=False), nn.BatchNorm2d(c // 2),
                             nn.ReLU(inplace=True), nn.Conv2d(c // 2, num_labels, 1))
        return SegNet(arch, bb, head, num_labels, stride)
    if arch == "tiny_unet":
        bb = build_backbone("tiny", stride)
        w = bb.stem[0].out_channels
        head = UNetDecoder((w, bb.stage1.conv2.out_channels, bb.stage2.conv2.out_channels, bb.out_channels),
                           num_labels)
        return TinyUNet(arch, bb, head, num_labels, stride)
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
    if arch == "contour_tiny":
        unet = build_semantic("tiny_unet", num_labels + 1, 8)
        return ContourInstanceNet(unet.backbone, unet.head, num_labels, 8)
    raise InputError(f"unknown instance architecture {arch!r} (choose from {', '.join(INSTANCE_ARCHS)})")
