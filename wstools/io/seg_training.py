"""The files of ``ws train-seg`` besides its checkpoint. Pseudo labels in, as training items:
per-image label maps from a ``labels`` store or a folder of ``<id>.png`` (:class:`LabelSource`,
:class:`SemanticLoader`), instance masks from a ``ws export-coco`` JSON (:func:`read_coco_training`,
:class:`InstanceLoader`); the loaders are picklable callables ``load(i)`` for
:class:`wstools.seg.data.SegCrops` and :class:`wstools.seg.instance.InstanceImages`. The
validation manifest and its ground truth (:func:`load_val_manifest`, :func:`semantic_samples`,
:func:`instance_samples`); the initial backbone weights (:func:`initialise_backbone`); DSRG's
stage-1 labels out (:func:`write_stage1_labels`) and its weights into stage 2
(:func:`initialise_from_segmentation`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError


class LabelSource:
    """Per-image label maps from a ``labels`` store or a folder of ``<id>.png``; opened lazily in
    each process (DataLoader workers get their own HDF5 handle). ``read(rec) -> (H, W) uint8``."""

    def __init__(self, path, manifest, records):
        from .labels import read_labels_group
        from .store import open_store

        self.path = Path(path)
        self.is_dir = self.path.is_dir()
        self._h5, self._pid = None, None
        if self.is_dir:
            missing = [r.id for r in records if not (self.path / f"{r.id}.png").exists()]
            if missing:
                raise InputError(f"lacks {len(missing)} label maps of {manifest.path} (expected <id>.png)",
                                 path=self.path, image_id=missing[0])
        else:
            with open_store(self.path, "labels") as s:
                s.check_classes(manifest.classes, manifest.path)
                have = set(s.image_ids())
                missing = [r.id for r in records if r.id not in have]
                if missing:
                    raise InputError(f"lacks {len(missing)} images of {manifest.path}", path=self.path,
                                     image_id=missing[0])
                # every map once, before training starts: a bad one found in epoch 3 would cost two
                # epochs and print after the run's start line
                for rec in records:
                    read_labels_group(s.image(rec.id), manifest.num_classes)
                self.uid = s.uid

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_h5"], d["_pid"] = None, None
        return d

    def read(self, rec) -> np.ndarray:
        from .images import read_label_png
        from .labels import read_labels_group
        from .store import open_store

        if self.is_dir:
            return read_label_png(self.path / f"{rec.id}.png", rec.id)
        if self._h5 is None or self._pid != os.getpid():
            self._h5, self._pid = open_store(self.path, "labels"), os.getpid()
        return read_labels_group(self._h5.image(rec.id))

    def where(self, rec):
        return self.path / f"{rec.id}.png" if self.is_dir else self.path


class SemanticLoader:
    """``load(i) -> (image, labels, tags)`` of a training record (picklable for workers)."""

    def __init__(self, manifest, records, source: LabelSource):
        self.manifest, self.records, self.source = manifest, records, source

    def __call__(self, i):
        from ..seg.data import check_label_map

        rec = self.records[i]
        img = self.manifest.read_image(rec)
        lab = check_label_map(self.source.read(rec), img.shape, self.manifest.num_classes,
                              path=self.source.where(rec), image_id=rec.id)
        return img, lab, self.manifest.tag_vector(rec)


def read_coco_training(path, manifest):
    """A ``ws export-coco`` (COCO instances) JSON -> ``{record index: [(label, rle dict), ...]}``
    over the manifest's records, crowd regions left out. Images are matched as
    :func:`wstools.io.coco.read_instances` does (``ws_id``, else ``str(id)``, else file name).
    Refuses categories unknown to the manifest or named otherwise, and images it lacks."""
    from .coco import read_instances, read_json

    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list) \
            or not isinstance(data.get("images"), list):
        raise InputError("a COCO instances file is a JSON object with images, annotations and categories", path=path)
    cat_to_label = {int(c): i + 1 for i, c in enumerate(manifest.category_ids())}
    for c in data.get("categories", []):
        cid = c.get("id") if isinstance(c, dict) else None
        if cid not in cat_to_label:
            raise InputError(f"category {cid!r} ({c.get('name') if isinstance(c, dict) else c!r}) is unknown to "
                             f"{manifest.path} (its category ids: {sorted(cat_to_label)})", path=path)
        name = c.get("name")
        if name is not None and name != manifest.classes[cat_to_label[cid] - 1]:
            raise InputError(f"category {cid} is named {name!r}, {manifest.path} calls it "
                             f"{manifest.classes[cat_to_label[cid] - 1]!r}", path=path)
    index = {r.id: i for i, r in enumerate(manifest.images)}
    return {index[image_id]: [(label, rle) for label, rle, _ in dets]
            for image_id, dets in read_instances(path, manifest, data, crowd=False).items()}


class InstanceLoader:
    def __init__(self, manifest, records, anns, path):
        self.manifest, self.records, self.anns, self.path = manifest, records, anns, path

    def __call__(self, i):
        from .. import masks as codec

        rec = self.records[i]
        img = self.manifest.read_image(rec)
        h, w = img.shape[:2]
        if (h, w) != (rec.height, rec.width):
            raise InputError(f"image is {h}x{w}, the manifest says {rec.height}x{rec.width}", path=self.path,
                             image_id=rec.id)
        anns = self.anns[i]
        m = codec.decode([rle["counts"] for _, rle in anns], h, w) if anns else np.zeros((0, h, w), bool)
        return img, m, np.asarray([label for label, _ in anns], np.int64)


def coco_image_order(ids):
    """The order pycocotools visits images: numeric when all ids are, else lexicographic."""
    return sorted(ids, key=int) if ids and all(i.isdigit() for i in ids) else sorted(ids)


def semantic_samples(manifest):
    """``samples(rank, world)`` for :func:`wstools.seg.training.semantic_evaluator`: every
    ``world``-th image of ``manifest`` from ``rank`` with its semantic ground truth."""
    from .dataset import load_semantic

    def samples(rank, world):
        return ((manifest.read_image(rec), load_semantic(manifest, rec)) for rec in manifest.images[rank::world])
    return samples


def instance_samples(manifest):
    """``samples()`` for :func:`wstools.seg.training.instance_evaluator`: ``(image, ground-truth
    instances, height, width)`` in pycocotools' image order."""
    from .dataset import load_instances

    def samples():
        records = manifest.by_id()
        for image_id in coco_image_order(manifest.ids()):
            rec = records[image_id]
            yield manifest.read_image(rec), load_instances(manifest, rec), rec.height, rec.width
    return samples


def load_val_manifest(path, manifest, task: str | None = None):
    """The ``--val`` manifest at ``path`` (``None`` without one): refused unless its classes are
    ``manifest``'s and, for ``task`` "semantic" / "instance", every image has that ground truth."""
    from .dataset import load_manifest

    if not path:
        return None
    val = load_manifest(path)
    if val.classes != manifest.classes:
        raise InputError(f"class list {val.classes} differs from {manifest.classes} of {manifest.path}",
                         path=val.path)
    if task == "semantic" and not val.has_semantic_gt():
        raise InputError("has no semantic ground truth for every image (needed by --val)", path=val.path)
    if task == "instance" and not val.has_instance_gt():
        raise InputError("has no instance ground truth for every image (needed by --val)", path=val.path)
    return val


def initialise_backbone(model, task: str, arch: str, init_path=None, weights: str = "none", classes=None,
                        stride: int | None = None) -> None:
    """``--init`` (the backbone of a ``ws cam train`` classifier checkpoint, whose arch must be
    the one ``arch`` is built on, or every weight of a ``ws train-seg`` checkpoint of this task,
    arch, stride and ``classes``: :func:`initialise_from_segmentation`) or ``--weights``
    (``imagenet`` / a state dict PATH) into a fresh segmentation network; nothing for neither."""
    from ..nn.backbones import imagenet_state_dict
    from ..seg.models import BACKBONE_OF, load_backbone
    from ..seg.training import backbone_holder
    from .checkpoint import load_checkpoint, read_state_dict

    want = BACKBONE_OF[arch]
    target = backbone_holder(model, task, arch)
    if init_path:
        ck = load_checkpoint(init_path, ("classifier", "segmentation"))
        if ck["ws_kind"] == "segmentation":
            return _load_segmentation(model, ck, init_path, classes, task, arch, stride)
        if ck["arch"] != want:
            raise InputError(f"is a {ck['arch']} classifier; --arch {arch} needs a {want} one", path=init_path)
        state = {k[len("backbone."):]: v for k, v in ck["state_dict"].items() if k.startswith("backbone.")}
        load_backbone(target, state, init_path)
    elif weights != "none":
        if want == "tiny":
            raise InputError(f"there are no pretrained weights for --arch {arch}; use --weights none or --init")
        state = imagenet_state_dict(want) if weights == "imagenet" else read_state_dict(weights)
        load_backbone(target, state, weights)


def write_stage1_labels(model_path, manifest, records, out, device: str = "cpu", crf=None, progress=None) -> None:
    """The `labels` store ``out`` of the training images as the semantic checkpoint ``model_path``
    labels them (:func:`wstools.seg.training.tag_restricted_labels`: restricted to each image's
    tags, refined by ``crf`` if given): DSRG's retraining targets."""
    from ..seg.training import tag_restricted_labels
    from .checkpoint import load_model
    from .labels import write_labels_group
    from .store import create_store

    model, _ = load_model(model_path, "segmentation", manifest.classes, device)
    with create_store(out, "labels", classes=manifest.classes, params={"model": str(model_path), "tags": True,
                                                                        "crf": crf is not None},
                      dataset=manifest, force=True) as store:
        for rec in (progress(records, desc="stage-1 labels") if progress else records):
            labels = tag_restricted_labels(model, manifest.read_image(rec), manifest.tag_vector(rec), device, crf)
            with store.write_image(rec.id) as g:
                write_labels_group(g, labels)


def initialise_from_segmentation(model, path, classes, task: str = "semantic", arch: str | None = None,
                                 stride: int | None = None) -> None:
    """Every weight of the ``ws train-seg`` checkpoint ``path`` into ``model`` (built for
    ``task``, ``arch``, ``stride`` and ``classes``): a network continues from another, as DSRG's
    retraining starts from the stage-1 network (its released run-s.sh). InputError naming the
    file when the checkpoint is of another task, arch, stride or class list."""
    from .checkpoint import load_checkpoint

    _load_segmentation(model, load_checkpoint(path, "segmentation"), path, classes, task, arch, stride)


def _load_segmentation(model, ck: dict, path, classes, task: str, arch: str | None, stride: int | None) -> None:
    """:func:`initialise_from_segmentation` of the already loaded checkpoint ``ck`` of ``path``."""
    from .checkpoint import check_classes

    if ck["task"] != task or (arch is not None and ck["arch"] != arch):
        raise InputError(f"is a {ck['arch']} {ck['task']} network; a {arch or ''} {task} network starts only from "
                         f"one of its own kind".replace("  ", " "), path=path)
    recorded = (ck.get("args") or {}).get("stride")
    if stride is not None and recorded is not None and int(recorded) != int(stride):
        raise InputError(f"was trained with --stride {recorded}, this network has --stride {stride}", path=path)
    check_classes(ck, classes, path)
    try:
        model.load_state_dict(ck["state_dict"])
    except (RuntimeError, ValueError) as e:
        raise InputError(f"state_dict does not fit this network ({str(e).splitlines()[0]})", path=path) from None
