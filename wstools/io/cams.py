"""The ``cams`` store's per-image layout, and CAM files of the IRN code base.

Per image group (``/images/<key>``):

=================  ====================================================================
``cams``           (C, H, W) float16 in [0, 1], one map per label in ``labels``
``labels``         (C,) int64 in 1..K: the tagged (or predicted) classes
``scores``         (K,) float32 classifier probabilities of all K classes
``background``     optional (H, W) float16 in [0, 1]: background score map (larger =
                   more likely background)
attrs              ``height``, ``width`` (full image resolution)
=================  ====================================================================
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ..errors import InputError


def write_cam_group(group, cams: np.ndarray, labels: np.ndarray, scores: np.ndarray, background=None) -> None:
    """Fill one image's group of a ``cams`` store (shapes in the module docstring)."""
    cams = np.asarray(cams)
    labels = np.asarray(labels, dtype=np.int64)
    if cams.ndim != 3 or cams.shape[0] != labels.shape[0]:
        raise ValueError(f"cams {cams.shape} do not match labels {labels.shape}")
    h, w = cams.shape[1:]
    group.attrs["height"] = int(h)
    group.attrs["width"] = int(w)
    group.create_dataset("cams", data=np.clip(cams, 0, 1).astype(np.float16),
                         chunks=(1, h, w) if cams.shape[0] else None, compression="gzip", compression_opts=1,
                         shuffle=True)
    group.create_dataset("labels", data=labels)
    group.create_dataset("scores", data=np.asarray(scores, dtype=np.float32))
    if background is not None:
        background = np.asarray(background)
        if background.shape != (h, w):
            raise ValueError(f"background {background.shape} is not {(h, w)}")
        group.create_dataset("background", data=np.clip(background, 0, 1).astype(np.float16),
                             compression="gzip", compression_opts=1, shuffle=True)


def read_cam_group(group) -> dict:
    """``{cams (C,H,W) float32, labels (C,), scores (K,), background (H,W) or None}``; maps and
    scores that are NaN, infinite or outside [0, 1], and maps not of the image's size, are an
    InputError naming the file and image."""
    from .values import check_map_size, check_maps

    def read_map(name):
        return check_map_size(check_maps(group[name][()].astype(np.float32), name, group), name, group)

    out = {"cams": read_map("cams"), "labels": group["labels"][()],
           "scores": check_maps(group["scores"][()], "scores", group),
           "background": read_map("background") if "background" in group else None}
    return out


# --- IRN ---------------------------------------------------------------------------------
#
# IRN (Ahn et al., CVPR 2019, github.com/jiwoon-ahn/irn, step/make_cam.py) saves one
# ``np.save(f"{id}.npy", {"keys": valid_cat, "cam": strided_cam, "high_res": highres_cam})``
# per image: a pickled dict in which ``keys`` (tagged classes, 0-based) and ``cam`` are
# torch tensors and ``high_res`` is a (C, H, W) float32 array. Reading a pickle with
# np.load(allow_pickle=True) can run any code the file names, so ``ws cam import``
# never does. It parses the pickle with an unpickler that resolves only the globals
# such a file needs - numpy array reconstruction, OrderedDict and torch's tensor
# rebuild - and reads torch storages through torch.load(weights_only=True). Any other
# global (a function to call, a class to build) is refused, naming it.

_NUMPY_GLOBALS = {("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
                  ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict")}


class _IrnUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            import torch._utils

            return torch._utils._rebuild_tensor_v2
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            import torch

            return lambda b: torch.load(io.BytesIO(b), weights_only=True)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _to_numpy(x):
    if hasattr(x, "detach"):  # a torch tensor
        return x.detach().cpu().numpy()
    return np.asarray(x)


def read_irn_npy(path) -> tuple[np.ndarray, np.ndarray]:
    """Read one IRN CAM file safely; returns ``keys`` (C,) int64 0-based class indices and
    ``high_res`` (C, H, W) float32. InputError (naming the file) on anything else."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            if dtype != np.dtype(object) or shape != ():
                raise InputError(f"is a plain {dtype} array of shape {shape}, not IRN's dict with "
                                 "'keys' and 'high_res'", path=path)
            obj = _IrnUnpickler(f).load()
    except InputError:
        raise
    except (pickle.UnpicklingError, ValueError, EOFError, OSError, TypeError, AttributeError, RuntimeError) as e:
        raise InputError(f"cannot read as an IRN CAM file ({e.__class__.__name__}: {e})", path=path) from None
    d = obj.item() if isinstance(obj, np.ndarray) and obj.shape == () else obj
    if not isinstance(d, dict) or "keys" not in d or "high_res" not in d:
        raise InputError("is not an IRN CAM dict with 'keys' and 'high_res'", path=path)
    keys = _to_numpy(d["keys"]).astype(np.int64).reshape(-1)
    cams = _to_numpy(d["high_res"]).astype(np.float32)
    if cams.ndim != 3 or cams.shape[0] != keys.shape[0]:
        raise InputError(f"'high_res' has shape {cams.shape}, expected ({keys.shape[0]}, H, W) for "
                         f"{keys.shape[0]} keys", path=path)
    if not np.isfinite(cams).all():
        raise InputError("'high_res' has non-finite values", path=path)
    return keys, cams
