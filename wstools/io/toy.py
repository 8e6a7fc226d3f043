"""Writing a ``ws toy`` dataset: images, GT PNGs and the manifest (the drawing is :mod:`wstools.toy`)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..toy.generator import FAMILIES, split_image
from .dataset import ImageRecord, Manifest, save_manifest
from .images import write_label_png


def write_dataset(out_dir, split: str, count: int, *, size: int = 128, num_classes: int = 5,
                  seed: int = 0, border: int = 0, force: bool = False, wrap=None) -> Manifest:
    """Write ``count`` toy images of ``split`` under ``out_dir`` and the manifest ``split.json``.

    Image ``i`` of a split depends only on (seed, split, i), so a larger
    ``count`` extends a dataset without changing its first images. ``wrap``
    optionally wraps the image loop (e.g. a progress bar).
    """
    out = Path(out_dir)
    for sub in ("images", "semantic", "instances", "objects"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    records = []
    for i in (wrap or iter)(range(count)):
        toy = split_image(split, i, size=size, num_classes=num_classes, seed=seed, border=border)
        image_id = f"{split}_{i:06d}"
        Image.fromarray(toy.image).save(out / "images" / f"{image_id}.png", compress_level=1)
        write_label_png(out / "semantic" / f"{image_id}.png", toy.semantic)
        write_label_png(out / "instances" / f"{image_id}.png", toy.instances)
        write_label_png(out / "objects" / f"{image_id}.png", toy.objects)
        records.append(ImageRecord(
            id=image_id, image=f"images/{image_id}.png", width=size, height=size, tags=toy.tags,
            semantic=f"semantic/{image_id}.png", instances=f"instances/{image_id}.png",
            extra={"objects": f"objects/{image_id}.png", "object_families": toy.object_families}))
    manifest = Manifest(classes=list(FAMILIES[:num_classes]), images=records, name=f"toy-{split}",
                        path=out / f"{split}.json",
                        extra={"toy": {"seed": seed, "size": size, "border": border,
                                       "distractor_families": list(FAMILIES[num_classes:])}})
    save_manifest(manifest, out / f"{split}.json", force=force)
    return manifest
