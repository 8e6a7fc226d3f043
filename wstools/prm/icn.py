"""The Instance-aware Cue-propagation Network (ICN; Huang et al., Neurocomputing 2021, Sect. 3.2,
Fig. 3, Eq. 3-4) and its iterative inference.

Input: the normalised image (B, 3, H, W) concatenated with one min-max-normalised response map
(B, 1, H, W). Encoder: five stages at strides 1, 2, 4, 8, 16 — torchvision's VGG-16
``features`` (conv1 .. conv5, first convolution widened to 4 input channels; ``vgg16``) or a
small CNN (``tiny``, for CPU runs and tests). Two fusion paths over the stages' features
f1 .. f5, every fusion being Eq. 3, f_o = E(C(U(f_a), f_b)): resize ``f_a`` to ``f_b``'s size,
concatenate, two 3x3 convolutions with ReLU:

- context-driven path (CFM), deep to shallow: g5 = f5, g_i = Fuse(g_{i+1}, f_i), i = 4 .. 1;
- detail-driven path (DFM), shallow to deep: d1 = f1, d_i = Fuse(d_{i-1}, f_i), i = 2 .. 5
  (here U is a down-sampling: the paper writes one Eq. 3 for both directions).

Mapping head: concatenate g1 and d5 (up-sampled to full resolution), a 3x3 convolution with
ReLU and a 1x1 convolution give one logit per pixel at the input's resolution; the enhanced map
is its sigmoid. Loss (Eq. 4): pixel-wise (binary) cross-entropy against the pseudo label.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ENCODERS = ("tiny", "vgg16")


def _conv(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True))


class Fuse(nn.Module):
    """Eq. 3: resize ``a`` to ``b``'s size, concatenate, two 3x3 convolutions (+ReLU)."""

    def __init__(self, ca, cb, cout):
        super().__init__()
        self.body = nn.Sequential(_conv(ca + cb, cout), _conv(cout, cout))

    def forward(self, a, b):
        if a.shape[-2:] != b.shape[-2:]:
            a = F.interpolate(a, size=b.shape[-2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat([a, b], 1))


def _tiny_stages(cin=4, widths=(16, 32, 64, 96, 128)):
    stages, c = [], cin
    for i, w in enumerate(widths):
        layers = [nn.MaxPool2d(2, ceil_mode=True)] if i else []
        layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                   nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        stages.append(nn.Sequential(*layers))
        c = w
    return nn.ModuleList(stages), list(widths)


def _vgg_stages(cin=4):
    import torchvision

    f = torchvision.models.vgg16(weights=None).features
    first = f[0]
    f[0] = nn.Conv2d(cin, first.out_channels, 3, padding=1)
    # conv1: 0-3, pool+conv2: 4-8, pool+conv3: 9-15, pool+conv4: 16-22, pool+conv5: 23-29 (pool5 dropped)
    cuts = [(0, 4), (4, 9), (9, 16), (16, 23), (23, 30)]
    return nn.ModuleList(nn.Sequential(*[f[i] for i in range(a, b)]) for a, b in cuts), [64, 128, 256, 512, 512]


class ICN(nn.Module):
    """``forward(image (B, 3, H, W), prm (B, 1, H, W) in [0, 1]) -> logits (B, 1, H, W)``."""

    def __init__(self, encoder: str = "vgg16", width: int | None = None):
        super().__init__()
        if encoder == "tiny":
            self.stages, chans = _tiny_stages()
            width = width or 32
        elif encoder == "vgg16":
            self.stages, chans = _vgg_stages()
            width = width or 64
        else:
            raise ValueError(f"unknown ICN encoder {encoder!r} (one of {ENCODERS})")
        self.encoder = encoder
        n = len(chans)
        # context path: g_{i+1} (width, or f5's channels for the first) fused with f_i
        self.cfm = nn.ModuleList(Fuse(chans[-1] if i == n - 2 else width, chans[i], width)
                                 for i in range(n - 2, -1, -1))
        # detail path: d_{i-1} (f1's channels for the first, else width) fused with f_i
        self.dfm = nn.ModuleList(Fuse(chans[0] if i == 1 else width, chans[i], width) for i in range(1, n))
        self.head = nn.Sequential(_conv(2 * width, width), nn.Conv2d(width, 1, 1))

    def forward(self, image: torch.Tensor, prm: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image, prm.to(image.dtype)], 1)
        feats = []
        for s in self.stages:
            x = s(x)
            feats.append(x)
        g = feats[-1]
        for k, i in enumerate(range(len(feats) - 2, -1, -1)):
            g = self.cfm[k](g, feats[i])
        d = feats[0]
        for k, i in enumerate(range(1, len(feats))):
            d = self.dfm[k](d, feats[i])
        size = image.shape[-2:]
        g = F.interpolate(g, size=size, mode="bilinear", align_corners=False) if g.shape[-2:] != size else g
        d = F.interpolate(d, size=size, mode="bilinear", align_corners=False)
        return self.head(torch.cat([g, d], 1))


def minmax(v: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each (1, H, W) map of a (B, 1, H, W) batch to [0, 1]."""
    lo = v.amin(dim=(1, 2, 3), keepdim=True)
    hi = v.amax(dim=(1, 2, 3), keepdim=True)
    return torch.where(hi - lo > 1e-12, (v - lo) / (hi - lo).clamp_min(1e-12), torch.zeros_like(v))


def icn_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 4: pixel-wise cross-entropy of the enhanced map (sigmoid of ``logits``) against the
    binary pseudo label ``target`` (same shape), averaged over pixels and samples."""
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), reduction="mean")


@torch.no_grad()
def enhance(model: ICN, image: torch.Tensor, maps: np.ndarray, steps: int = 3, batch: int = 8) -> np.ndarray:
    """Iterative ICN inference (Huang et al. Sect. 3.2, testing phase) for one image.

    ``image`` (3, H, W) normalised, on the model's device; ``maps`` (N, H, W) float response maps.
    Each step min-max normalises the current map, feeds it with the image and takes the
    sigmoid of the output as the next map. Returns (steps, N, H, W) float32 in [0, 1]: the
    map after every step (the last is the result).
    """
    model.eval()
    maps = np.asarray(maps, dtype=np.float32)
    n, H, W = maps.shape
    out = np.zeros((steps, n, H, W), dtype=np.float32)
    dev = image.device
    for s in range(0, n, batch):
        v = torch.from_numpy(maps[s:s + batch, None]).to(dev)
        x = image[None].expand(v.shape[0], -1, -1, -1)
        for t in range(steps):
            v = torch.sigmoid(model(x, minmax(v)).float())
            out[t, s:s + v.shape[0]] = v[:, 0].cpu().numpy()
    return out


def icn_step(device: str):
    """The shared loop's ``step``: batch ``{"image" (B,3,S,S), "map" (B,1,S,S), "target" (B,1,S,S)}``
    -> (Eq. 4 loss, None)."""
    def step(net, batch):
        x = batch["image"].to(device, non_blocking=True)
        v = batch["map"].to(device, non_blocking=True)
        y = batch["target"].to(device, non_blocking=True)
        return icn_loss(net(x, minmax(v)), y), None
    return step


def collate_icn(items):
    """Stack ICN training samples (dicts of equally sized tensors); errors kept like
    :func:`wstools.io.torchdata.collate_stack`."""
    errors = [it["error"] for it in items if it.get("error") is not None]
    if errors:
        return {"errors": errors}
    return {"errors": [], **{k: torch.stack([it[k] for it in items]) for k in ("image", "map", "target")}}


def icn_optimizer(model: ICN, lr: float = 1e-3) -> torch.optim.Optimizer:
    """Adam over all the ICN's weights (Huang et al. Sect. 4.2: 1e-3)."""
    from ..train.loop import make_optimizer

    return make_optimizer([{"params": list(model.parameters()), "lr": lr}], "adam", lr)


def icn_schedule(epochs: int, decay_every: int = 20, decay: float = 0.5):
    """The loop's ``schedule``: the rate times ``decay`` every ``decay_every`` epochs (0 = never)."""
    from ..train.loop import step_schedule

    milestones = [e / epochs for e in range(decay_every, epochs, decay_every)] if decay_every else []
    return step_schedule(milestones, decay)


def fit_icn(model: ICN, train_set, *, epochs: int = 120, batch_size: int = 8, lr: float = 1e-3,
            decay_every: int = 20, decay: float = 0.5, device: str = "cpu", workers: int = 0, seed: int = 0,
            start_epoch: int = 0, optimizer_state=None, stop_after=None, set_epoch=None, on_epoch=None,
            progress=None, rank: int = 0, world: int = 1) -> dict:
    """Train the ICN on the shared loop (:func:`wstools.train.fit`): Adam at ``lr`` multiplied by
    ``decay`` every ``decay_every`` epochs (Huang et al. Sect. 4.2: 1e-3, x0.5 every 20 epochs,
    120 epochs). Items of ``train_set``: ``{"image", "map", "target", "error"}`` of one size."""
    from ..train.loop import fit

    opt = icn_optimizer(model, lr)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    return fit(model, train_set, step=icn_step(device), optimizer=opt, epochs=epochs, batch_size=batch_size,
               schedule=icn_schedule(epochs, decay_every, decay), collate=collate_icn, device=device, workers=workers,
               seed=seed, start_epoch=start_epoch, stop_after=stop_after, set_epoch=set_epoch, on_epoch=on_epoch,
               progress=progress, rank=rank, world=world)


def resize_map(a: np.ndarray, size) -> np.ndarray:
    """(H, W) float -> (h, w) = ``size`` float32 (bilinear)."""
    import cv2

    h, w = size
    if a.shape == (h, w):
        return a.astype(np.float32)
    return cv2.resize(a.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


def enhance_image(model: ICN, image: np.ndarray, maps: np.ndarray, size: int, steps: int = 3, batch: int = 8,
                  device: str = "cpu") -> np.ndarray:
    """Algorithm 1 line 8 for one image: the ICN's iterative enhancement of its naive PRMs.

    ``image`` (H, W, 3) uint8; ``maps`` (N, H, W) float naive PRMs. Image and maps are resized
    to the training side ``size``, enhanced ``steps`` times (:func:`enhance`) and the last
    maps resized back: (N, H, W) float32 in [0, 1]."""
    import cv2

    from ..cam.augment import normalize

    maps = np.asarray(maps, dtype=np.float32)
    if len(maps) == 0:
        return maps
    H, W = maps.shape[1:]
    img = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
    x = torch.from_numpy(normalize(img)).to(device)
    small = np.stack([resize_map(v, (size, size)) for v in maps])
    out = enhance(model, x, small, steps, batch)[-1]
    return np.stack([resize_map(v, (H, W)) for v in out])
