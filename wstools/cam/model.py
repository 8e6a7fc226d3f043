"""The multi-label FCN classifier (Fan et al., ECCV 2018, Sect. 3.1).

A backbone gives features (B, D, h, w); a 1x1 convolution (no bias, as in CAM
/ IRN) gives K score maps (B, K, h, w); global average pooling gives K logits;
a sigmoid gives the K independent class probabilities. The score maps are the
class activation maps (Zhou et al. 2016): with no bias, GAP commutes with the
1x1 convolution, so the logit of class k is exactly the mean of its map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.backbones import Backbone


class CamNet(nn.Module):
    """``forward(x) -> logits (B, K)``; ``score_maps(x) -> (maps (B, K, h, w), [f_second, f_top])``."""

    def __init__(self, backbone: Backbone, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Conv2d(backbone.out_channels, num_classes, 1, bias=False)
        # default (Kaiming-uniform) init of the 1x1 head, as IRN
        self.num_classes = num_classes

    def score_maps(self, x: torch.Tensor):
        feats = self.backbone(x)
        return self.classifier(feats[-1]), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps, _ = self.score_maps(x)
        return maps.mean(dim=(2, 3))

    def param_groups(self, lr: float, head_lr_mult: float = 10.0, weight_decay: float = 1e-4) -> list:
        """SGD parameter groups: backbone at ``lr``, the 1x1 head at ``head_lr_mult * lr`` (IRN)."""
        return [{"params": list(self.backbone.parameters()), "lr": lr, "initial_lr": lr,
                 "weight_decay": weight_decay},
                {"params": list(self.classifier.parameters()), "lr": lr * head_lr_mult,
                 "initial_lr": lr * head_lr_mult, "weight_decay": weight_decay}]


def multilabel_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fan et al. Eq. 1: L = -1/C sum_i [t_i log y_i + (1 - t_i) log(1 - y_i)], y = sigmoid(logit),
    averaged over the batch. ``logits``, ``targets``: (B, C); targets in {0, 1}."""
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="mean")
