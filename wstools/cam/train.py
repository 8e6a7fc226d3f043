"""Training loop of the multi-label classifier (kept apart from the library, in the
style of torchvision's ``references/``): SGD with a poly learning rate, 10x rate
on the 1x1 head (IRN), Fan et al. Eq. 1 loss, optional DistributedDataParallel.

It reads no files and no flags: the caller passes datasets (items as in
:class:`wstools.io.torchdata.ManifestImages`), the model and callbacks for the
per-epoch log record and checkpoint.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from ..io.torchdata import collate_list, collate_stack, raise_errors
from .metrics import mean_average_precision
from .model import multilabel_loss


def init_distributed(device: str):
    """Under ``torchrun`` (WORLD_SIZE > 1): join the process group (NCCL on CUDA, gloo on
    CPU) and return ``(rank, world_size, device)`` with this rank's device; else ``(0, 1, device)``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    rank = dist.get_rank()
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    return rank, dist.get_world_size(), device


def close_distributed():
    if dist.is_initialized():
        dist.destroy_process_group()


def poly_lr(base_lr: float, step: int, total: int, power: float = 0.9) -> float:
    """Poly schedule (DeepLab, IRN): ``base_lr * (1 - step / total) ** power``."""
    return base_lr * (1.0 - min(step, total) / max(total, 1)) ** power


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


def _gather(arrays, world):
    if world == 1:
        return arrays
    out = [None] * world
    dist.all_gather_object(out, arrays)
    return [a for part in out for a in part]


@torch.no_grad()
def predict(model, dataset, device, batch_size=8, workers=0, rank=0, world=1, progress=None):
    """Class probabilities on full images (one pass, no augmentation): ``(scores (N, K),
    targets (N, K))`` over the whole dataset (gathered from all ranks)."""
    model.eval()
    idx = list(range(rank, len(dataset), world))
    sub = torch.utils.data.Subset(dataset, idx)
    loader = DataLoader(sub, batch_size=batch_size, num_workers=workers, collate_fn=collate_list)
    rows = []
    for items in (progress(loader, desc="val") if progress else loader):
        raise_errors(items)
        for run in group_by_size(items):
            x = torch.stack([it["image"] for it in run]).to(device)
            p = torch.sigmoid(model(x)).float().cpu().numpy()
            rows += [(it["index"], p[j], it["target"].numpy()) for j, it in enumerate(run)]
    rows = sorted(_gather(rows, world), key=lambda r: r[0])
    k = model.num_classes if hasattr(model, "num_classes") else model.module.num_classes
    if not rows:
        return np.zeros((0, k)), np.zeros((0, k))
    return np.stack([r[1] for r in rows]), np.stack([r[2] for r in rows])


def fit(model, train_set, *, epochs: int, batch_size: int, lr: float, optimizer: str = "sgd", momentum: float = 0.0,
        weight_decay: float = 1e-4, head_lr_mult: float = 10.0, power: float = 0.9, device: str = "cpu",
        workers: int = 0, seed: int = 0, val_set=None, start_epoch: int = 0, optimizer_state=None,
        stop_after=None, set_epoch=None, on_epoch=None, progress=None, rank: int = 0, world: int = 1) -> dict:
    """Train ``model`` (a :class:`~wstools.cam.model.CamNet` on ``device``) for epochs
    ``start_epoch .. epochs-1`` with ``optimizer`` "sgd" (IRN) or "adam" (Kingma & Ba; for
    backbones trained from scratch), both with the poly schedule.

    ``train_set`` items hold an augmented crop (fixed size) and the (K,) tag vector;
    ``set_epoch(epoch)`` is called before each epoch (re-seeds the augmentation).
    After each epoch ``on_epoch(epoch, record, net, optimizer)`` receives the log
    record ``{epoch, loss, train_map, val_map?, lr, seconds}`` (rank 0 only).
    ``stop_after``: end after that many epochs (the schedule still spans ``epochs``).
    Returns the last record.
    """
    import time

    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[torch.device(device).index] if device.startswith("cuda") else None)
    groups = model.param_groups(lr, head_lr_mult, weight_decay)
    if optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    elif optimizer == "adam":
        opt = torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}")
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    drop_last = len(train_set) >= batch_size * world
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                 drop_last=drop_last)
    steps_per_epoch = max(1, (len(sampler) // batch_size) if drop_last else -(-len(sampler) // batch_size))
    total = steps_per_epoch * epochs
    record = {}
    last = epochs if stop_after is None else min(epochs, max(stop_after, start_epoch))
    for epoch in range(start_epoch, last):
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        if set_epoch is not None:
            set_epoch(epoch)
        loader = DataLoader(train_set, batch_size=batch_size, sampler=sampler, num_workers=workers,
                            collate_fn=collate_stack, drop_last=drop_last)
        net.train()
        losses, scores, targets = [], [], []
        it = progress(loader, desc=f"epoch {epoch + 1}/{epochs}", unit="batch") if progress else loader
        for i, batch in enumerate(it):
            raise_errors(batch)
            step = epoch * steps_per_epoch + i
            for g in opt.param_groups:
                g["lr"] = poly_lr(g["initial_lr"], step, total, power)
            x = batch["image"].to(device, non_blocking=True)
            y = batch["target"].to(device, non_blocking=True)
            logits = net(x)
            loss = multilabel_loss(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            scores.append(torch.sigmoid(logits.detach()).float().cpu().numpy())
            targets.append(batch["target"].numpy())
        parts = _gather([(np.mean(losses) if losses else float("nan"), np.concatenate(scores) if scores else None,
                          np.concatenate(targets) if targets else None)], world)
        ok = [p for p in parts if p[1] is not None]
        record = {"epoch": epoch + 1, "loss": float(np.mean([p[0] for p in ok])) if ok else float("nan"),
                  "train_map": mean_average_precision(np.concatenate([p[1] for p in ok]),
                                                      np.concatenate([p[2] for p in ok])) if ok else float("nan"),
                  "lr": opt.param_groups[0]["lr"]}
        if val_set is not None:
            s, t = predict(model, val_set, device, batch_size, workers, rank, world, progress)
            record["val_map"] = mean_average_precision(s, t)
        record["seconds"] = round(time.perf_counter() - t0, 3)
        if rank == 0 and on_epoch is not None:
            on_epoch(epoch, record, model, opt)
        if world > 1:
            dist.barrier()
    return record
