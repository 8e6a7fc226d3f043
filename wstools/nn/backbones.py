"""Fully convolutional backbones with output stride 16 or 8, and their weights.

Every backbone maps an image batch (B, 3, H, W), ImageNet-normalised, to its
top two stages' feature maps ``[f_second, f_top]`` and has ``out_channels``
(channels of ``f_top``). ``f_top`` has spatial size ceil(H / stride) (up to
rounding of the stride-2 convolutions), where ``stride`` is 16 or 8: the
last stage (stride 16) or the last two stages (stride 8) keep their
resolution and dilate their 3x3 convolutions instead, as in DeepLab (Chen et
al. 2017) and the CAM networks of IRN (Ahn et al. 2019).

Architectures (``ARCHS``):

- ``resnet18``, ``resnet50``, ``resnet101``: torchvision ResNets without
  ``avgpool``/``fc``; top two stages are ``layer3`` and ``layer4``.
- ``vgg16``: torchvision VGG-16 ``features``; pooling layers after conv4_3
  (stride 8) and conv5_3 are replaced by identities (indices are kept, so a
  torchvision state dict loads unchanged); conv5 is dilated by 2 at stride 8.
  Top two stages are conv4_3 and conv5_3 (after ReLU).
- ``tiny``: a small residual CNN (stem + four basic residual blocks with BatchNorm,
  32-64-128-128 channels) that trains from scratch on the CPU (``ws cam train --recipe toy``);
  no pretrained weights exist for it. At stride 8 its last two stages keep the resolution
  without dilation (see :class:`TinyBackbone`).

Parameter names match torchvision's models, so ``--weights PATH`` accepts the
``.pth`` files torchvision downloads (``resnet50-0676ba61.pth`` ...).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import InputError

ARCHS = ("tiny", "resnet18", "resnet50", "resnet101", "vgg16")
STRIDES = (8, 16)

# torchvision's weight enums (name of the enum, member): used by --weights imagenet
_IMAGENET = {
    "resnet18": ("ResNet18_Weights", "IMAGENET1K_V1"),
    "resnet50": ("ResNet50_Weights", "IMAGENET1K_V1"),
    "resnet101": ("ResNet101_Weights", "IMAGENET1K_V1"),
    "vgg16": ("VGG16_Weights", "IMAGENET1K_V1"),
}
# keys of a torchvision classification state dict that a backbone drops
_HEAD_PREFIXES = ("fc.", "classifier.")


class Backbone(nn.Module):
    """Base class: ``forward(x) -> [f_second, f_top]``."""

    arch: str = ""
    out_channels: int = 0
    stride: int = 16

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError


def _dilate(layer: nn.Module, dilation: int) -> None:
    """Make a ResNet stage keep its input resolution: stride 1 everywhere, 3x3
    convolutions dilated by ``dilation`` (padding = dilation keeps the size)."""
    for m in layer.modules():
        if isinstance(m, nn.Conv2d):
            m.stride = (1, 1)
            if m.kernel_size == (3, 3):
                m.dilation = (dilation, dilation)
                m.padding = (dilation, dilation)


class ResNetBackbone(Backbone):
    def __init__(self, arch: str, stride: int = 16):
        super().__init__()
        import torchvision

        net = getattr(torchvision.models, arch)(weights=None)
        self.arch, self.stride = arch, stride
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        if stride == 8:
            _dilate(self.layer3, 2)
            _dilate(self.layer4, 4)
        else:
            _dilate(self.layer4, 2)
        self.out_channels = net.fc.in_features

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        f3 = self.layer3(x)
        return [f3, self.layer4(f3)]


class VGGBackbone(Backbone):
    # indices in torchvision's vgg16().features
    _POOL4, _POOL5, _CONV5 = 23, 30, (24, 26, 28)
    _RELU4_3 = 22

    def __init__(self, arch: str = "vgg16", stride: int = 16):
        super().__init__()
        import torchvision

        self.arch, self.stride = arch, stride
        features = torchvision.models.vgg16(weights=None).features
        features[self._POOL5] = nn.Identity()
        if stride == 8:
            features[self._POOL4] = nn.Identity()
            for i in self._CONV5:
                features[i].dilation = (2, 2)
                features[i].padding = (2, 2)
        self.features = features
        self.out_channels = 512

    def forward(self, x):
        f4 = self.features[: self._RELU4_3 + 1](x)
        return [f4, self.features[self._RELU4_3 + 1:](f4)]


class _Residual(nn.Module):
    """Basic residual block (He et al. 2016): 3x3 conv-BN-ReLU, 3x3 conv-BN, plus the input
    (through a 1x1 conv-BN when the shape changes), then ReLU. (B, cin, H, W) ->
    (B, cout, H / stride, W / stride)."""

    def __init__(self, cin, cout, stride, dilation=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity() if cin == cout and stride == 1 else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class TinyBackbone(Backbone):
    """A small residual CNN that trains from scratch on the CPU in minutes.

    Stem: 3x3 conv (stride 2)-BN-ReLU, ``width`` channels. Four stages of one basic residual
    block each, ``width``, ``2 width``, ``4 width``, ``4 width`` channels (32-64-128-128 by
    default); stages 1-2 halve the resolution, stage 3 halves it at stride 16 and keeps it at
    stride 8, stage 4 keeps the resolution (dilation 2 at stride 16). At stride 8 stages 3-4 are
    not dilated: on the small images this network is for (8x8 maps at 64 px) the taps of
    dilation 2-4 fall mostly into the zero padding; on `ws toy` data the undilated version gave
    the same classification mAP and +0.03-0.04 CAM mIoU at equal training time
    (benchmarks/cam_toy.py, README "ws cam" Benchmarks).
    """

    def __init__(self, arch: str = "tiny", stride: int = 16, width: int = 32):
        super().__init__()
        self.arch, self.stride = arch, stride
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w),
                                  nn.ReLU(inplace=True))
        self.stage1 = _Residual(w, w, 2)
        self.stage2 = _Residual(w, 2 * w, 2)
        self.stage3 = _Residual(2 * w, 4 * w, 2 if stride == 16 else 1, 1)
        self.stage4 = _Residual(4 * w, 4 * w, 1, 2 if stride == 16 else 1)
        self.out_channels = 4 * w

    def forward(self, x):
        f3 = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return [f3, self.stage4(f3)]


def build_backbone(arch: str, stride: int = 16) -> Backbone:
    """A randomly initialised backbone ``arch`` (one of ``ARCHS``) at output ``stride`` 16 or 8."""
    if arch not in ARCHS:
        raise InputError(f"unknown architecture {arch!r} (choose from {', '.join(ARCHS)})")
    if stride not in STRIDES:
        raise InputError(f"output stride must be 8 or 16, not {stride}")
    if arch == "tiny":
        return TinyBackbone(arch, stride)
    if arch.startswith("resnet"):
        return ResNetBackbone(arch, stride)
    return VGGBackbone(arch, stride)


def imagenet_state_dict(arch: str) -> dict:
    """torchvision's ImageNet weights of ``arch`` through its weight enums (downloaded
    once into torch's hub cache). Offline: an InputError telling how to pass a file."""
    if arch not in _IMAGENET:
        raise InputError(f"there are no ImageNet weights for --arch {arch}; use --weights none or a file")
    import torchvision

    enum_name, member = _IMAGENET[arch]
    weights = getattr(getattr(torchvision.models, enum_name), member)
    try:
        return weights.get_state_dict(progress=False)
    except Exception as e:  # URLError, socket errors, HTTP errors, a truncated download
        raise InputError(
            f"cannot fetch torchvision's {enum_name}.{member} ({e.__class__.__name__}: {e}); on a machine "
            f"with internet access download {weights.url} and pass it with --weights PATH "
            f"(or copy it into {Path(torch.hub.get_dir()) / 'checkpoints'})") from None


def load_weights(backbone: Backbone, state: dict, source="weights") -> None:
    """Load a torchvision-style state dict into ``backbone``, refusing one of another
    architecture: every backbone parameter must be present with the same shape
    (classification-head keys ``fc.*`` / ``classifier.*`` are ignored)."""
    own = backbone.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith(_HEAD_PREFIXES)}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        detail = f"lacks {len(missing)} parameters (e.g. {missing[0]!r})" if missing else \
            f"has {len(unexpected)} unknown parameters (e.g. {unexpected[0]!r})"
        raise InputError(f"weights do not fit --arch {backbone.arch}: the file {detail}", path=source)
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise InputError(f"weights do not fit --arch {backbone.arch}: {k!r} has shape "
                             f"{tuple(state[k].shape)}, expected {tuple(v.shape)}", path=source)
    backbone.load_state_dict(state, strict=True)
