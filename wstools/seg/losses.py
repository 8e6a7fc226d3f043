"""Training losses of the segmentation network on pseudo labels.

Shapes: ``logits`` (B, C, H, W) float over the labels 0..K (C = K + 1, 0 = background);
``labels`` / ``seeds`` (B, H, W) int64 in 0..K with 255 = ignore / unlabeled.
All losses are means over the batch of per-image values (except :func:`cross_entropy`,
which averages over all labelled pixels of the batch, as ``torch.nn.CrossEntropyLoss``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..labels import IGNORE


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE) -> torch.Tensor:
    """Pixel-wise cross-entropy on (pseudo) labels, pixels equal to ``ignore_index`` left out:
    ``-1/|L| sum_{u in L} log softmax(logits)_{u, y_u}`` over the labelled pixels L of the
    whole batch. 0 (with a gradient path) when no pixel is labelled."""
    labels = labels.long()
    valid = labels != ignore_index
    if not bool(valid.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="mean")


def balanced_seeding_loss(logits: torch.Tensor, seeds: torch.Tensor, ignore_index: int = IGNORE) -> torch.Tensor:
    """DSRG's balanced seeding loss (Huang et al., CVPR 2018, Eq. 1), per image:

    ``l = -1/sum_{c in C} |S_c| sum_{c in C} sum_{u in S_c} log H_{u,c}
          -1/|S_0| sum_{u in S_0} log H_{u,0}``

    with C the foreground classes that have seeds, S_c the seed pixels of class c,
    S_0 the background seeds and H = softmax(logits). Foreground and background are
    normalised separately (SEC's seeding loss, Sun et al. Eq. 3, divides both by the total
    number of seeds). A term without seeds is 0. Mean over the batch.
    """
    logp = F.log_softmax(logits, dim=1)
    seeds = seeds.long()
    valid = seeds != ignore_index
    idx = torch.where(valid, seeds, torch.zeros_like(seeds))
    picked = logp.gather(1, idx.unsqueeze(1)).squeeze(1)          # (B, H, W): log H_{u, s_u}
    fg = valid & (seeds > 0)
    bg = valid & (seeds == 0)
    dims = tuple(range(1, seeds.ndim))
    n_fg = fg.sum(dim=dims).clamp(min=1)
    n_bg = bg.sum(dim=dims).clamp(min=1)
    l_fg = -(picked * fg).sum(dim=dims) / n_fg
    l_bg = -(picked * bg).sum(dim=dims) / n_bg
    return (l_fg + l_bg).mean()


def seeding_loss(logits: torch.Tensor, seeds: torch.Tensor, ignore_index: int = IGNORE) -> torch.Tensor:
    """SEC's seeding loss (Sun et al. Eq. 3): ``-1/|S| sum_{u in S} log H_{u, s_u}`` over all seed
    pixels S of an image (foreground and background together), mean over the batch."""
    logp = F.log_softmax(logits, dim=1)
    seeds = seeds.long()
    valid = seeds != ignore_index
    idx = torch.where(valid, seeds, torch.zeros_like(seeds))
    picked = logp.gather(1, idx.unsqueeze(1)).squeeze(1)
    dims = tuple(range(1, seeds.ndim))
    return (-(picked * valid).sum(dim=dims) / valid.sum(dim=dims).clamp(min=1)).mean()


def boundary_loss(logits: torch.Tensor, refined: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Constrain-to-boundary loss (SEC; Sun et al. Eq. 4; DSRG Eq. 2): the KL divergence from
    the network's softmax F to its dense-CRF refinement Q,

    ``L_c = 1/n sum_u sum_c Q_{u,c} log(Q_{u,c} / F_{u,c})``

    with n the number of pixels of an image, mean over the batch. ``refined`` (B, C, H, W)
    is Q (probabilities, no gradient); the gradient flows through F only.
    """
    q = refined.detach().to(logits.dtype).clamp(min=0)
    logp = F.log_softmax(logits, dim=1)
    kl = (q * (torch.log(q.clamp(min=eps)) - logp)).sum(dim=1)     # (B, H, W)
    return kl.mean(dim=tuple(range(1, kl.ndim))).mean()
