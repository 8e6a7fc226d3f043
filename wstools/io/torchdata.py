"""torch ``Dataset`` of a manifest's images: streams one image at a time from disk.

A file that cannot be read does not raise inside a DataLoader worker (where the
message would be wrapped in a traceback); the item carries the error instead and
:func:`~wstools.train.batches.raise_errors` re-raises it as an ``InputError`` in the main process.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError
from ..train.batches import collate_list, collate_stack, raise_errors  # noqa: F401  (the loaders' collate functions)


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
