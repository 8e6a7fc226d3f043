"""Training of the multi-label classifier on the shared loop (:func:`wstools.train.fit`):
the batch step (Fan et al. Eq. 1), the per-epoch training mAP, and full-image prediction
for the validation mAP. SGD with a poly learning rate and a 10x rate on the 1x1 head (IRN).

It reads no files and no flags: the caller passes datasets (items as in
:class:`wstools.io.torchdata.ManifestImages`), the model and callbacks.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..train.batches import collate_list, raise_errors
from ..train.loop import fit as fit_loop
from ..train.loop import gather, make_optimizer, poly_lr, poly_schedule, rank_subset  # noqa: F401 (poly_lr re-exported)
from .metrics import mean_average_precision
from .model import multilabel_loss


def group_by_size(items):
    """Split a list of dataset items into runs of equally sized images (stackable batches)."""
    runs, cur = [], []
    for it in items:
        if cur and tuple(it["image"].shape) != tuple(cur[0]["image"].shape):
            runs.append(cur)
            cur = []
        cur.append(it)
    if cur:
        runs.append(cur)
    return runs


@torch.no_grad()
def predict(model, dataset, device, batch_size=8, workers=0, rank=0, world=1, progress=None):
    """Class probabilities on full images (one pass, no augmentation): ``(scores (N, K),
    targets (N, K))`` over the whole dataset (gathered from all ranks)."""
    model.eval()
    loader = DataLoader(rank_subset(dataset, rank, world), batch_size=batch_size, num_workers=workers,
                        collate_fn=collate_list)
    rows = []
    for items in (progress(loader, desc="val") if progress else loader):
        raise_errors(items)
        for run in group_by_size(items):
            x = torch.stack([it["image"] for it in run]).to(device)
            p = torch.sigmoid(model(x)).float().cpu().numpy()
            rows += [(it["index"], p[j], it["target"].numpy()) for j, it in enumerate(run)]
    rows = sorted(gather(rows, world), key=lambda r: r[0])
    k = model.num_classes if hasattr(model, "num_classes") else model.module.num_classes
    if not rows:
        return np.zeros((0, k)), np.zeros((0, k))
    return np.stack([r[1] for r in rows]), np.stack([r[2] for r in rows])


def classifier_step(device: str):
    """The loop's ``step`` for a :class:`~wstools.cam.model.CamNet`: Fan et al. Eq. 1 on a batch of
    crops; ``aux`` = (sigmoid scores, targets) for the training mAP."""
    def step(net, batch):
        x = batch["image"].to(device, non_blocking=True)
        y = batch["target"].to(device, non_blocking=True)
        logits = net(x)
        return multilabel_loss(logits, y), (torch.sigmoid(logits.detach()).float().cpu().numpy(),
                                            batch["target"].numpy())
    return step


def summarize_map(auxes) -> dict:
    """Training mAP over an epoch's (scores, targets) pairs."""
    if not auxes:
        return {"train_map": float("nan")}
    return {"train_map": mean_average_precision(np.concatenate([a[0] for a in auxes]),
                                                np.concatenate([a[1] for a in auxes]))}


def classifier_optimizer(model, name: str = "sgd", lr: float = 0.1, momentum: float = 0.0,
                         weight_decay: float = 1e-4, head_lr_mult: float = 10.0) -> torch.optim.Optimizer:
    """SGD (IRN) or Adam over a :class:`~wstools.cam.model.CamNet`'s groups: the backbone at ``lr``,
    the 1x1 head at ``lr * head_lr_mult``."""
    return make_optimizer(model.param_groups(lr, head_lr_mult, weight_decay), name, lr, momentum, weight_decay)


def classifier_evaluator(val_set, device: str, batch_size: int = 8, workers: int = 0, progress=None):
    """The loop's ``evaluate``: ``{val_map}`` of full-image predictions on ``val_set``."""
    def evaluate(model, rank, world):
        s, t = predict(model, val_set, device, batch_size, workers, rank, world, progress)
        return {"val_map": mean_average_precision(s, t)}
    return evaluate


def fit(model, train_set, *, epochs: int, batch_size: int, lr: float, optimizer: str = "sgd", momentum: float = 0.0,
        weight_decay: float = 1e-4, head_lr_mult: float = 10.0, power: float = 0.9, device: str = "cpu",
        workers: int = 0, seed: int = 0, val_set=None, start_epoch: int = 0, optimizer_state=None,
        stop_after=None, set_epoch=None, on_epoch=None, progress=None, rank: int = 0, world: int = 1) -> dict:
    """Train a :class:`~wstools.cam.model.CamNet` (on ``device``) with ``optimizer`` "sgd" (IRN) or
    "adam" (for backbones trained from scratch), both with the poly schedule, on the shared loop.

    ``train_set`` items hold an augmented crop (fixed size) and the (K,) tag vector. The log
    record is ``{epoch, loss, train_map, val_map?, lr, seconds}``. Returns the last record.
    """
    opt = classifier_optimizer(model, optimizer, lr, momentum, weight_decay, head_lr_mult)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    evaluate = classifier_evaluator(val_set, device, batch_size, workers, progress) if val_set is not None else None
    return fit_loop(model, train_set, step=classifier_step(device), optimizer=opt, epochs=epochs,
                    batch_size=batch_size, schedule=poly_schedule(power), summarize=summarize_map,
                    evaluate=evaluate, device=device, workers=workers, seed=seed, start_epoch=start_epoch,
                    stop_after=stop_after, set_epoch=set_epoch, on_epoch=on_epoch, progress=progress, rank=rank,
                    world=world)
