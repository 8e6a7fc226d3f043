"""The ICN training set of ``ws icn train`` (resizing lives in :mod:`wstools.prm.icn`)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ...prm.icn import resize_map


class IcnPairs(torch.utils.data.Dataset):
    """Training pairs of the ICN, streamed: item ``{image (3,S,S), map (1,S,S), target (1,S,S),
    error}``. ``samples``: list of ``(record, instance index, target RLE counts)``; response maps
    are read from the responses store (opened lazily in each worker); images, maps and targets
    are resized to ``size`` x ``size``, flipped left-right at random and, with ``crop_scale`` < 1,
    cropped at random (Huang et al. Sect. 4.2: "random flipping and cropping"; the crop's size is
    not given): a window of each side times U(crop_scale, 1) at a random place, resized back to
    ``size`` x ``size`` (the target thresholded at 0.5 again)."""

    def __init__(self, manifest, samples, responses_path, size: int, seed: int, epoch_box, gray: bool = False,
                 crop_scale: float = 1.0):
        self.manifest, self.samples, self.path, self.size = manifest, samples, str(responses_path), size
        self.seed, self.epoch_box, self.crop_scale = seed, epoch_box, float(crop_scale)
        self._h5 = None

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        import h5py

        from ...cam.augment import normalize
        from ...errors import InputError
        from ...io.store import image_key
        from ...masks import decode

        rec, k, counts = self.samples[i]
        try:
            img = self.manifest.read_image(rec)
        except InputError as e:
            return {"error": (e.problem, e.path, e.image_id)}
        if self._h5 is None:
            self._h5 = h5py.File(self.path, "r")
        v = self._h5["images"][image_key(rec.id)]["maps"][k].astype(np.float32)
        t = decode([counts], rec.height, rec.width)[0].astype(np.float32)
        s = (self.size, self.size)
        img = cv2.resize(img, s[::-1], interpolation=cv2.INTER_LINEAR)
        v, t = resize_map(v, s), (resize_map(t, s) >= 0.5).astype(np.float32)
        rng = np.random.default_rng([self.seed, self.epoch_box[0], i])
        if rng.random() < 0.5:
            img, v, t = img[:, ::-1], v[:, ::-1], t[:, ::-1]
        if self.crop_scale < 1:
            ch, cw = (max(1, int(round(self.size * rng.uniform(self.crop_scale, 1)))) for _ in range(2))
            y0, x0 = int(rng.integers(0, self.size - ch + 1)), int(rng.integers(0, self.size - cw + 1))
            img = cv2.resize(np.ascontiguousarray(img[y0:y0 + ch, x0:x0 + cw]), s[::-1], interpolation=cv2.INTER_LINEAR)
            v = resize_map(np.ascontiguousarray(v[y0:y0 + ch, x0:x0 + cw]), s)
            t = (resize_map(np.ascontiguousarray(t[y0:y0 + ch, x0:x0 + cw]), s) >= 0.5).astype(np.float32)
        return {"error": None, "image": torch.from_numpy(normalize(np.ascontiguousarray(img))),
                "map": torch.from_numpy(np.ascontiguousarray(v)[None]),
                "target": torch.from_numpy(np.ascontiguousarray(t)[None])}
