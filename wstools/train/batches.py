"""Batching of dataset items for torch DataLoaders, and the errors they carry.

An item that could not be read carries ``error = (problem, path, image_id)`` instead of
raising inside a DataLoader worker (where the message would be wrapped in a traceback);
:func:`raise_errors` re-raises the first as an ``InputError`` in the main process.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ..errors import InputError


class LoadedItems(Dataset):
    """Items ``0..n-1`` built from ``load(i)``: a subclass's ``item(i, *load(i))`` gives the
    tensors; a load that raises ``InputError`` gives ``{"index": i, "error": (problem, path,
    image_id)}`` instead (see :func:`raise_errors`). ``rng_of(i)`` is item i's generator."""

    def __init__(self, n: int, load, rng_of):
        self.n, self.load, self.rng_of = n, load, rng_of

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        try:
            loaded = self.load(i)
        except InputError as e:
            return {"index": i, "error": (e.problem, e.path, e.image_id)}
        return {"index": i, "error": None, **self.item(i, *loaded)}

    def item(self, i, *loaded) -> dict:
        raise NotImplementedError


def collate_list(items):
    """Keep items as a list (images of different sizes at inference)."""
    return items


def collate_stack(items):
    """Stack equally sized items (training crops) into a batch; errors are kept in ``errors``."""
    errors = [it["error"] for it in items if it["error"] is not None]
    if errors:
        return {"errors": errors}
    return {"errors": [], "index": torch.tensor([it["index"] for it in items]),
            "image": torch.stack([it["image"] for it in items]),
            "target": torch.stack([it["target"] for it in items])}


def raise_errors(batch) -> None:
    errors = batch["errors"] if isinstance(batch, dict) else [it["error"] for it in batch if it["error"]]
    if errors:
        problem, path, image_id = errors[0]
        raise InputError(problem, path=path, image_id=image_id)
