"""The one training loop of the toolkit (kept apart from the library, in the style of
torchvision's ``references/``): the classifier (``ws cam train``), LIID's proposal MIL
network (``ws features train-mil``), the segmentation networks (``ws train-seg``) and
the ICN enhancer (``ws icn train``) all run :func:`fit` with their own ``step``.

It reads no files and no flags. The caller passes a dataset, the model, a ``step``
function that turns one batch into a loss, and callbacks for evaluation and for the
per-epoch log record and checkpoint (see :mod:`wstools.cli.training`). Seeding,
learning-rate schedules, DistributedDataParallel under ``torchrun`` and the gathering of
per-batch outputs across processes live here once.
"""

from __future__ import annotations

import os
import random
import time
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from ..errors import WsRuntimeError, raise_if_terminated
from .batches import collate_stack, raise_errors


class NonFiniteTraining(WsRuntimeError):
    """The loss or a weight became NaN / inf (a too large learning rate, bad input values):
    training stops (exit 1) at once instead of saving NaN weights every later stage would use.
    ``epoch`` is 1-based."""

    def __init__(self, message: str, epoch: int):
        super().__init__(message)
        self.epoch = epoch


def non_finite_tensors(state: dict) -> list[str]:
    """Names of the floating-point tensors of a state dict holding NaN or inf."""
    return [name for name, t in state.items()
            if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all())]


def check_finite_weights(model: torch.nn.Module, epoch: int) -> None:
    """Raise :class:`NonFiniteTraining` naming the epoch (1-based) and the first bad tensor."""
    bad = non_finite_tensors(model.state_dict())
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise NonFiniteTraining(f"epoch {epoch}: weight {bad[0]}{more} became NaN or inf "
                                "(lower the learning rate, check the inputs)", epoch)


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


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices) for a reproducible run."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def poly_lr(base_lr: float, step: int, total: int, power: float = 0.9) -> float:
    """Poly schedule (DeepLab, IRN): ``base_lr * (1 - step / total) ** power``."""
    return base_lr * (1.0 - min(step, total) / max(total, 1)) ** power


def poly_schedule(power: float = 0.9) -> Callable[[float, int, int], float]:
    """``schedule(base_lr, step, total) -> lr`` of the poly rule."""
    return lambda base, step, total: poly_lr(base, step, total, power)


def step_schedule(milestones, gamma: float = 0.1) -> Callable[[float, int, int], float]:
    """``schedule(base_lr, step, total) -> lr`` multiplied by ``gamma`` at each milestone, given
    as fractions of the run in (0, 1) (LIID: lr / 10 after 5 of 10 epochs = ``[0.5]``)."""
    milestones = sorted(float(m) for m in milestones)
    return lambda base, step, total: base * gamma ** sum(step >= m * total for m in milestones)


def constant_schedule() -> Callable[[float, int, int], float]:
    return lambda base, step, total: base


def make_optimizer(groups: list, name: str = "sgd", lr: float = 0.01, momentum: float = 0.0,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """SGD or Adam over parameter ``groups`` (dicts with ``params`` and ``lr``; each group's
    ``initial_lr`` is set to its ``lr`` so schedules scale every group alike)."""
    for g in groups:
        g.setdefault("lr", lr)
        g.setdefault("initial_lr", g["lr"])
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def gather(objects: list, world: int) -> list:
    """Concatenate the ``objects`` lists of all ranks (all_gather_object); identity for one process."""
    if world == 1:
        return objects
    out = [None] * world
    dist.all_gather_object(out, objects)
    return [a for part in out for a in part]


def rank_subset(dataset, rank: int, world: int):
    """Items ``rank, rank + world, ...`` of a dataset (each rank evaluates its share)."""
    if world == 1:
        return dataset
    return torch.utils.data.Subset(dataset, list(range(rank, len(dataset), world)))


def fit(model: torch.nn.Module, train_set, *, step: Callable, optimizer: torch.optim.Optimizer, epochs: int,
        batch_size: int, schedule: Callable | None = None, collate: Callable = collate_stack,
        summarize: Callable | None = None, evaluate: Callable | None = None, device: str = "cpu",
        workers: int = 0, seed: int = 0, start_epoch: int = 0, stop_after: int | None = None,
        set_epoch: Callable | None = None, on_epoch: Callable | None = None, progress=None, rank: int = 0,
        world: int = 1, find_unused_parameters: bool = False) -> dict:
    """Train ``model`` (already on ``device``) for epochs ``start_epoch .. epochs - 1``.

    Parameters
    ----------
    step : ``step(net, batch) -> (loss, aux)``: one batch (as ``collate`` returns it,
        errors already raised) to a scalar loss tensor and any picklable ``aux`` (per-batch
        outputs for ``summarize``; ``None`` if unused). ``net`` is the model, wrapped in
        DistributedDataParallel under ``torchrun``: call ``net(...)`` for the forward pass.
    optimizer : from :func:`make_optimizer` (its groups carry ``initial_lr``), state loaded
        by the caller when resuming.
    schedule : ``schedule(initial_lr, step, total_steps) -> lr`` applied to every group before
        every step (default :func:`poly_schedule`).
    summarize : ``summarize(auxes) -> dict`` of training metrics over the epoch's ``aux`` of
        all ranks (rank 0 only).
    evaluate : ``evaluate(model, rank, world) -> dict`` after each epoch (every rank calls it;
        it gathers itself, e.g. with :func:`gather`, and rank 0's dict is logged).
    set_epoch : called with the epoch before it starts (re-seeds augmentation).
    on_epoch : ``on_epoch(epoch, record, model, optimizer)`` on rank 0 after each epoch.
    stop_after : end after that many epochs (the schedule still spans ``epochs``).

    Returns the last record ``{epoch, loss, lr, seconds, **summarize(...), **evaluate(...)}``.
    """
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[torch.device(device).index] if device.startswith("cuda") else None,
            find_unused_parameters=find_unused_parameters)
    schedule = schedule or poly_schedule()
    drop_last = len(train_set) >= batch_size * world
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                 drop_last=drop_last)
    steps_per_epoch = max(1, (len(sampler) // batch_size) if drop_last else -(-len(sampler) // batch_size))
    total = steps_per_epoch * epochs
    record: dict = {}
    last = epochs if stop_after is None else min(epochs, max(stop_after, start_epoch))
    for epoch in range(start_epoch, last):
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        if set_epoch is not None:
            set_epoch(epoch)
        loader = DataLoader(train_set, batch_size=batch_size, sampler=sampler, num_workers=workers,
                            collate_fn=collate, drop_last=drop_last)
        net.train()
        losses, auxes = [], []
        it = progress(loader, desc=f"epoch {epoch + 1}/{epochs}", unit="batch") if progress else loader
        for i, batch in enumerate(it):
            raise_if_terminated()
            raise_errors(batch)
            global_step = epoch * steps_per_epoch + i
            for g in optimizer.param_groups:
                g["lr"] = schedule(g["initial_lr"], global_step, total)
            loss, aux = step(net, batch)
            value = float(loss.detach())
            if not np.isfinite(value):     # before the step: the weights of the last epoch stay good
                raise NonFiniteTraining(f"epoch {epoch + 1}: the loss became {value} at batch {i + 1} of "
                                        f"{steps_per_epoch} (lower the learning rate, check the inputs)", epoch + 1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(value)
            auxes.append(aux)
        check_finite_weights(model, epoch + 1)
        parts = gather([(losses, auxes)], world)
        all_losses = [x for p in parts for x in p[0]]
        record = {"epoch": epoch + 1, "loss": float(np.mean(all_losses)) if all_losses else float("nan"),
                  "lr": optimizer.param_groups[0]["lr"]}
        if summarize is not None:
            record.update(summarize([a for p in parts for a in p[1]]))
        if evaluate is not None:
            model.eval()
            record.update(evaluate(model, rank, world))
        record["seconds"] = round(time.perf_counter() - t0, 3)
        if rank == 0 and on_epoch is not None:
            on_epoch(epoch, record, model, optimizer)
        if world > 1:
            dist.barrier()
    return record
