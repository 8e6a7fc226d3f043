"""LIID's proposal-based MIL network and its losses (Liu et al., "Leveraging Instance-, Image-
and Dataset-Level Information for Weakly Supervised Instance Segmentation", TPAMI; Sect. 4).

Shapes: one image i with P = |S_i| proposals, K foreground classes, label 0 = background/noise,
D feature channels. ``p`` (P, K+1) softmax probabilities, ``f`` (P, D) features.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..nn.backbones import Backbone
from .roi import roi_features


class MilNet(nn.Module):
    """Backbone -> ROI-Align of each box on the top feature map -> GAP to f (D) -> FC to K+1
    scores a -> softmax p (LIID Sect. 4.1, Eq. 2). ``centers`` (K+1, D) is a buffer updated by
    :func:`update_centers` (Eq. 8), saved in the state dict.

    ``forward(x (B,3,H,W), boxes: list of B (P_b, 4) xyxy pixel tensors) -> (a (sum P_b, K+1), f (sum P_b, D))``.
    """

    def __init__(self, backbone: Backbone, num_classes: int, roi_size: int = 7):
        super().__init__()
        self.backbone = backbone
        self.num_classes = num_classes
        self.roi_size = roi_size
        self.fc = nn.Linear(backbone.out_channels, num_classes + 1)
        self.register_buffer("centers", torch.zeros(num_classes + 1, backbone.out_channels))

    def forward(self, x: torch.Tensor, boxes: list):
        feats = self.backbone(x)
        f = roi_features(feats[-1], boxes, x.shape[-2:], self.roi_size)
        return self.fc(f), f


def cam_loss(p: torch.Tensor, pseudo: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """LIID Eq. 4: -1/P sum_j [log p_j[y~_j] + 1/K sum_{k != y~_j} log(1 - p_j[k])] over the K+1
    labels (so K terms in the inner sum). p (P, K+1); pseudo (P,) int64 labels of Eq. 3."""
    P, K1 = p.shape
    if P == 0:
        return p.sum() * 0
    onehot = F.one_hot(pseudo.long(), K1).to(p.dtype)
    pos = torch.log(p.clamp_min(eps)).mul(onehot).sum(1)
    neg = torch.log((1 - p).clamp_min(eps)).mul(1 - onehot).sum(1) / (K1 - 1)
    return -(pos + neg).mean()


def lse_pool(p: torch.Tensor, r: float = 5.0) -> torch.Tensor:
    """LIID Eq. 5: Z_k = 1/r log(1/P sum_j exp(r p_jk)), (P, K+1) -> (K+1,)."""
    P = p.shape[0]
    return (torch.logsumexp(r * p, dim=0) - torch.log(torch.tensor(float(P), dtype=p.dtype, device=p.device))) / r


def mil_loss(p: torch.Tensor, present: torch.Tensor, r: float = 5.0, eps: float = 1e-6) -> torch.Tensor:
    """LIID Eq. 6 on Z = :func:`lse_pool` (p, r): -1/|Y| sum_{k in Y} log Z_k - 1/|Y^c| sum_{k not in Y}
    log(1 - Z_k). ``present`` (K+1,) bool: the image's tags with the background (label 0) always
    set (LIID Sect. 4.2.2). Eq. 6 as printed divides both sums by |Y^c|; we read the first as
    1/|Y| (a typo: otherwise an image tagged with every class divides by zero). An empty
    complement contributes 0."""
    Z = lse_pool(p, r)
    present = present.bool().clone()
    present[0] = True
    pos = -torch.log(Z[present].clamp_min(eps)).mean()
    absent = ~present
    neg = -torch.log((1 - Z[absent]).clamp_min(eps)).mean() if absent.any() else Z.sum() * 0
    return pos + neg


def center_loss(f: torch.Tensor, p: torch.Tensor, centers: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """LIID Eq. 7: 1/P sum_j [1 - cos(f_j, c_{y^_j})], y^_j = argmax_k p_jk. f (P, D); centers
    (K+1, D) (no gradient flows into them; a zero centre gives cosine 0)."""
    if f.shape[0] == 0:
        return f.sum() * 0
    c = centers.detach()[p.detach().argmax(1)]
    return (1 - F.cosine_similarity(f, c, dim=1, eps=eps)).mean()


@torch.no_grad()
def update_centers(centers: torch.Tensor, f: torch.Tensor, p: torch.Tensor, theta: float = 0.01) -> None:
    """LIID Eq. 8 in place, for j = 1..P in order: c_{y^_j} <- c_{y^_j} + theta (f_j - c_{y^_j})."""
    labels = p.argmax(1)
    for j in range(f.shape[0]):
        k = int(labels[j])
        centers[k] += theta * (f[j].detach().to(centers.dtype) - centers[k])


def mil_total_loss(a: torch.Tensor, f: torch.Tensor, pseudo: torch.Tensor, present: torch.Tensor,
                   centers: torch.Tensor, *, alpha: float = 0.5, beta: float = 0.5, gamma: float = 0.1,
                   r: float = 5.0) -> tuple[torch.Tensor, dict]:
    """LIID Eq. 9 for one image: alpha L_Att + beta L_MIL + gamma L_Cent, from the scores a
    (P, K+1) (softmax inside, Eq. 2) and features f (P, D). Returns (loss, parts as floats)."""
    p = torch.softmax(a, dim=1)
    la = cam_loss(p, pseudo)
    lm = mil_loss(p, present, r)
    lc = center_loss(f, p, centers)
    total = alpha * la + beta * lm + gamma * lc
    return total, {"loss_att": float(la.detach()), "loss_mil": float(lm.detach()), "loss_cent": float(lc.detach())}


def mil_step(device, alpha: float = 0.5, beta: float = 0.5, gamma: float = 0.1, r: float = 5.0,
             theta: float = 0.01):
    """A training step for :func:`wstools.train.loop.fit`: ``step(net, batch) -> (loss, parts)``.
    LIID Eq. 9 per image of ``batch`` (a list of ``{image (3,H,W), boxes (P,4), pseudo (P,),
    present (K+1,)}``), averaged over the images, then the centre update of Eq. 8 with each
    image's features; ``parts`` = the three loss terms per image."""

    def step(net, batch):
        model = net.module if hasattr(net, "module") else net
        losses, parts = [], []
        for it in batch:
            x = it["image"][None].to(device)
            a, f = net(x, [it["boxes"].to(device)])
            loss, aux = mil_total_loss(a, f, it["pseudo"].to(device), it["present"].to(device), model.centers,
                                       alpha=alpha, beta=beta, gamma=gamma, r=r)
            update_centers(model.centers, f.detach(), torch.softmax(a.detach(), 1), theta)
            losses.append(loss)
            parts.append(aux)
        return torch.stack(losses).mean(), parts
    return step


def mil_optimizer(model: MilNet, name: str = "sgd", lr: float = 5e-4, momentum: float = 0.9,
                  weight_decay: float = 1e-4) -> torch.optim.Optimizer:
    """SGD (LIID: 5e-4, momentum 0.9, weight decay 1e-4) or Adam over all the network's weights."""
    from ..train.loop import make_optimizer

    return make_optimizer([{"params": list(model.parameters())}], name, lr, momentum, weight_decay)


def mil_schedule(lr_drop: float = 0.5):
    """The loop's ``schedule``: the rate divided by 10 after the fraction ``lr_drop`` of the run
    (LIID: after 5 of 10 epochs)."""
    from ..train.loop import step_schedule

    return step_schedule([lr_drop], 0.1)


def summarize_mil(auxes) -> dict:
    """The loop's ``summarize``: the mean of each loss term of :func:`mil_step` over the epoch."""
    rows = [p for batch in auxes for p in batch]
    if not rows:
        return {}
    return {k: float(np.mean([p[k] for p in rows])) for k in rows[0]}
