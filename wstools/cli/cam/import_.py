"""``ws cam import``: CAMs written by the IRN code base."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from ...errors import InputError
from ..common import command, emit, force_option, output_option, path_option
from ..stage import run_per_image


@command("import")
@click.argument("cam_dir", type=click.Path(file_okay=False))
@path_option("--manifest", help="Manifest of the images (classes, ids, sizes, tags).")
@output_option("CAM store to write (.h5, kind `cams`).")
@click.option("--normalize", is_flag=True, help="Divide each map by its maximum (for CAMs not already in [0, 1]).")
@force_option
def import_(cam_dir, manifest_path, output, normalize, force):
    """Import CAMs written by the IRN code base (Ahn et al. 2019): one `ID.npy` per
    image of the manifest, a dict with `keys` (0-based class indices) and
    `high_res` (C, H, W) maps at full resolution.

    IRN's files are pickles (np.save of a dict holding torch tensors), and
    unpickling an untrusted file can run arbitrary code. They are therefore never
    read with np.load(allow_pickle=True): a restricted unpickler accepts only
    the numpy arrays, OrderedDict and torch tensors (through
    torch.load(weights_only=True)) such a file holds, and refuses a file naming
    anything else. IRN files carry no classifier scores: `scores` is set to the
    tags (1 for the imported classes, 0 otherwise).

    \b
    Example:
      ws cam import irn/result/cam --manifest voc_train.json -o cams.h5
      ws info cams.h5
    """
    from ...io.cams import read_irn_npy, write_cam_group
    from ...io.dataset import load_manifest

    cam_dir = Path(cam_dir)
    if not cam_dir.is_dir():
        raise InputError("CAM folder does not exist", path=cam_dir)
    m = load_manifest(manifest_path)
    K = m.num_classes
    params = {"source": "irn", "dir": str(cam_dir), "normalize": normalize, "scores": "tags"}

    def compute(todo):
        for rec in todo:
            path = cam_dir / f"{rec.id}.npy"
            if not path.exists():
                raise InputError("no IRN CAM file for this image", path=path, image_id=rec.id)
            keys, cams = read_irn_npy(path)
            if keys.size and (keys.min() < 0 or keys.max() >= K):
                raise InputError(f"keys {keys.tolist()} outside 0..{K - 1} (K={K} classes of "
                                 f"{m.path})", path=path, image_id=rec.id)
            if len(set(keys.tolist())) != keys.size:
                raise InputError("duplicate keys", path=path, image_id=rec.id)
            if cams.shape[1:] != (rec.height, rec.width):
                raise InputError(f"maps are {cams.shape[2]}x{cams.shape[1]}, the image is "
                                 f"{rec.width}x{rec.height}", path=path, image_id=rec.id)
            if normalize:
                cams = np.maximum(cams, 0)
                cams = cams / (cams.reshape(len(cams), -1).max(1)[:, None, None] + 1e-5) if len(cams) else cams
            elif cams.size and (cams.min() < -1e-3 or cams.max() > 1 + 1e-3):
                raise InputError(f"values in [{cams.min():.3g}, {cams.max():.3g}] are not in [0, 1] "
                                 "(pass --normalize)", path=path, image_id=rec.id)
            order = np.argsort(keys)
            labels = keys[order] + 1
            scores = np.zeros(K, np.float32)
            scores[keys] = 1.0
            yield cams[order], labels, scores

    run = run_per_image(output, "cams", m.images, lambda g, r: write_cam_group(g, *r), classes=m.classes,
                        params=params, dataset=m, compute=compute, force=force, desc="import")
    emit({"output": str(output), "images": len(m.images), "source": "irn", "seconds": round(run.seconds, 3)})
