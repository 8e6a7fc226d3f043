"""``ws dataset voc|coco|folder|check``: manifests from common layouts, and validation."""

from __future__ import annotations

import click

from ..errors import InputError
from ..io.dataset import check_manifest, load_manifest, save_manifest
from ..io.importers import import_coco, import_folder, import_voc
from .common import WsGroup, command, emit, force_option, log, output_option, warn


@click.group("dataset", cls=WsGroup)
def dataset():
    """Make dataset manifests (the JSON list of images, tags and ground truth
    that every stage reads) from common layouts, and check them.

    \b
    Example:
      ws dataset voc VOCdevkit/VOC2012 --split train_aug -o voc_train.json
      ws dataset check voc_train.json
    """


def _validated(m, output, source):
    """What `ws dataset check` checks, before the manifest is written: the structure (classes, a
    'background' tag, duplicates) through the manifest reader, and every image and GT file read.
    Images without tags are allowed (warned); any other problem refuses the import, naming the
    first few at once."""
    from ..io.dataset import manifest_from_json

    if not m.images:
        raise InputError(f"not written to {output}: no images found (an empty manifest is of no use to any stage)",
                         path=source)
    m = manifest_from_json(m.to_json(), path=output)
    problems = check_manifest(m, read_files=True)
    untagged = [p for p in problems if p["problem"] == "image has no tags"]
    problems = [p for p in problems if p["problem"] != "image has no tags"]
    if problems:
        shown = "; ".join(f"image {p['image']}: {p['problem']}" for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InputError(f"not written: {len(problems)} problem{'s' if len(problems) > 1 else ''}: {shown}{more}",
                         path=output)
    if untagged:
        n = len(untagged)
        warn(f"{n} image{'s have' if n > 1 else ' has'} no tags (e.g. {untagged[0]['image']}): weak supervision "
             "learns nothing from them")
    return m


def _summary(m, output, **extra):
    return {"output": output, "images": len(m.images), "classes": m.num_classes,
            "untagged": sum(1 for r in m.images if not r.tags),
            "with_semantic_gt": sum(r.semantic is not None for r in m.images),
            "with_instance_gt": sum(r.instances is not None for r in m.images), **extra}


@command("voc")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--split", type=click.Choice(["train", "val", "trainval", "train_aug"]), default="train",
              show_default=True, help="Image list: ImageSets/Segmentation/SPLIT.txt; train_aug is SBD's "
                                      "augmented list (ImageSets/SegmentationAug/train_aug.txt).")
@click.option("--list", "list_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Use this list of image ids instead of the split's.")
@output_option("Manifest to write (.json).")
@force_option
def voc(root, split, list_file, output, force):
    """Manifest of a PASCAL VOC 2012 folder (ROOT holds JPEGImages/, Annotations/ ...).

    Tags come from the XML annotations (every object, difficult ones too), or
    from the class PNG when an image has no XML. SegmentationClass and
    SegmentationObject PNGs become the semantic and instance ground truth.

    \b
    Example:
      ws dataset voc VOCdevkit/VOC2012 --split train_aug -o voc/train.json
      ws dataset voc VOCdevkit/VOC2012 --split val -o voc/val.json
    """
    m = import_voc(root, split, output, list_file=list_file)
    m = _validated(m, output, list_file or root)
    save_manifest(m, output, force=force)
    emit(_summary(m, output, split=split))


@command("coco")
@click.argument("instances_json", type=click.Path(dir_okay=False))
@click.option("--images", "images_dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="Folder of the images (file_name in the JSON is relative to it).")
@click.option("--keep-empty", is_flag=True, help="Keep images without annotations (they get no tags).")
@output_option("Manifest to write (.json).")
@force_option
def coco(instances_json, images_dir, keep_empty, output, force):
    """Manifest of a COCO instances JSON (tags = categories annotated in each image).

    The annotations are kept as instance ground truth for `ws eval`; the COCO
    category ids are kept so exports map back to them.

    \b
    Example:
      ws dataset coco annotations/instances_train2017.json --images train2017 -o coco_train.json
    """
    m, skipped = import_coco(instances_json, images_dir, output, keep_empty=keep_empty)
    if skipped:
        warn(f"skipped {skipped} images without annotations (--keep-empty keeps them)")
    m = _validated(m, output, instances_json)
    save_manifest(m, output, force=force)
    emit(_summary(m, output, skipped_without_annotations=skipped))


@command("folder")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--tags", "tags_csv", required=True, type=click.Path(dir_okay=False),
              help="CSV with lines 'image,tag1;tag2' (image relative to FOLDER; header optional; UTF-8 "
                   "with or without a byte-order mark; tab-separated files are read too).")
@click.option("--classes", default=None, help="Comma-separated class list (default: every tag, sorted).")
@output_option("Manifest to write (.json).")
@force_option
def folder(folder, tags_csv, classes, output, force):
    """Manifest of a folder of images and a CSV of their tags.

    An image's id is its path relative to FOLDER without the suffix
    (`cats/a.jpg` is `cats/a`), so two files differing only in their suffix
    (`gray.png`, `gray.jpg`) are refused: rename one.

    \b
    Example:
      ws dataset folder photos --tags photos/tags.csv -o photos.json
      ws viz photos.json -o photos.png
    """
    class_list = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    if class_list is not None:
        repeated = sorted({c for c in class_list if class_list.count(c) > 1})
        if repeated:
            raise InputError(f"--classes {classes!r}: duplicate names ({', '.join(repeated)})")
    m = import_folder(folder, tags_csv, output, classes=class_list)
    m = _validated(m, output, tags_csv)
    save_manifest(m, output, force=force)
    emit(_summary(m, output))


@command("check")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--no-files", is_flag=True, help="Check only the JSON, do not open the images and GT maps.")
def check(manifest, no_files):
    """Validate MANIFEST: structure, tags, image files and ground-truth maps.

    Every problem is printed on stderr as 'MANIFEST: image ID: problem'; the
    exit code is 2 when there is any.

    \b
    Example:
      ws dataset check voc/train.json
      ws dataset check voc/train.json --no-files
    """
    m = load_manifest(manifest)
    if not m.images:
        raise InputError("the manifest lists no images", path=manifest)
    problems = check_manifest(m, read_files=not no_files)
    for p in problems:
        click.echo(f"{manifest}: image {p['image']}: {p['problem']}", err=True)
    if not problems:
        log(f"{manifest}: {len(m.images)} images, no problems")
    emit({"manifest": manifest, "images": len(m.images), "problems": len(problems), "ok": not problems})
    if problems:
        raise click.exceptions.Exit(2)


for _cmd in (voc, coco, folder, check):
    dataset.add_command(_cmd)
