"""The per-image dataset of ``ws features train-mil`` (the loop's step, LIID Eq. 8-9, its optimizer,
schedule and log summary are in :mod:`wstools.features.mil`)."""

from __future__ import annotations

import numpy as np
import torch

from ...errors import InputError


class MilImages(torch.utils.data.Dataset):
    """Item ``i``: ``{index, image (3,H,W), boxes (P,4), pseudo (P,) int64, present (K+1,) bool, error}``.
    ``samples``: list of ``(record, boxes, pseudo labels)``; images are read (and normalised) on demand."""

    def __init__(self, manifest, samples, gray: bool = False):
        self.manifest, self.samples, self.gray = manifest, samples, gray

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        from ...cam.augment import normalize, to_gray

        rec, boxes, pseudo = self.samples[i]
        try:
            img = self.manifest.read_image(rec)
        except InputError as e:
            return {"error": (e.problem, e.path, e.image_id), "index": i}
        present = np.zeros(self.manifest.num_classes + 1, bool)
        present[0] = True
        present[self.manifest.tag_labels(rec)] = True
        return {"error": None, "index": i,
                "image": torch.from_numpy(np.ascontiguousarray(normalize(to_gray(img) if self.gray else img))),
                "boxes": torch.from_numpy(boxes), "pseudo": torch.from_numpy(pseudo),
                "present": torch.from_numpy(present)}
