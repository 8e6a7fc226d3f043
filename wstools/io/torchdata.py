"""torch ``Dataset`` of a manifest's images: streams one image at a time from disk.

A file that cannot be read does not raise inside a DataLoader worker (where the
message would be wrapped in a traceback); the item carries the error instead and
:func:`raise_errors` re-raises it as an ``InputError`` in the main process.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError


class ManifestImages(Dataset):
    """Item ``i``: ``{"index", "id", "image": transform(image, i), "target": (K,) tags, "size": (H, W)}``.

    ``transform(image (H, W, 3) uint8, index) -> (3, h, w) float32 array``.
    """

    def __init__(self, manifest, records, transform):
        self.manifest = manifest
        self.records = list(records)
        self.transform = transform

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        rec = self.records[i]
        item = {"index": i, "id": rec.id, "target": torch.from_numpy(self.manifest.tag_vector(rec)),
                "size": (rec.height, rec.width), "error": None}
        try:
            img = self.manifest.read_image(rec)
        except InputError as e:
            item["error"] = (e.problem, e.path, e.image_id)
            item["image"] = None
            return item
        item["image"] = torch.from_numpy(np.ascontiguousarray(self.transform(img, i)))
        return item


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
