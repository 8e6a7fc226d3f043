"""Batching of dataset items for torch DataLoaders, and the errors they carry.

An item that could not be read carries ``error = (problem, path, image_id)`` instead of
raising inside a DataLoader worker (where the message would be wrapped in a traceback);
:func:`raise_errors` re-raises the first as an ``InputError`` in the main process.
"""

from __future__ import annotations

import torch

from ..errors import InputError


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
