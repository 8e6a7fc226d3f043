"""Reading images and label maps; the VOC colour palette."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from ..palette import voc_palette

MIN_SIDE = 8


_PALETTE = voc_palette().reshape(-1).tolist()


def read_image(path, image_id=None) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 RGB.

    Grayscale, palette and RGBA images are converted (alpha is dropped).
    16-bit images, corrupt files and images smaller than 8 px on a side are
    refused with an ``InputError`` naming the file and the image id.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F") or "16" in im.mode:
                raise InputError(f"unsupported {im.mode} image (16-bit or float); convert to 8-bit RGB",
                                 path=path, image_id=image_id)
            im.load()
            if im.mode != "RGB":
                im = im.convert("RGB")
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise InputError("image file does not exist", path=path, image_id=image_id) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(f"cannot read image ({e.__class__.__name__}: {e})", path=path,
                         image_id=image_id) from None
    if min(arr.shape[:2]) < MIN_SIDE:
        raise InputError(f"image is {arr.shape[1]}x{arr.shape[0]} px, smaller than {MIN_SIDE} px",
                         path=path, image_id=image_id)
    return arr


def read_label_png(path, image_id=None) -> np.ndarray:
    """Read a label map (palette or gray PNG) as (H, W) uint8 of label indices."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            if im.mode == "P" or im.mode == "L":
                arr = np.asarray(im, dtype=np.uint8)
            elif im.mode in ("I;16", "I", "I;16B", "I;16L"):
                arr = np.asarray(im).astype(np.int64)
                if arr.max(initial=0) > 255:
                    raise InputError("label map has values above 255", path=path, image_id=image_id)
                arr = arr.astype(np.uint8)
            else:
                raise InputError(f"label map must be a palette or gray PNG, not mode {im.mode}",
                                 path=path, image_id=image_id)
    except FileNotFoundError:
        raise InputError("label map does not exist", path=path, image_id=image_id) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InputError(f"cannot read label map ({e})", path=path, image_id=image_id) from None
    return arr


def write_label_png(path, labels: np.ndarray) -> None:
    """Write an (H, W) uint8 label map as a VOC palette PNG (255 = ignore/unlabeled)."""
    labels = np.asarray(labels)
    if labels.dtype != np.uint8:
        labels = labels.astype(np.uint8)
    im = Image.fromarray(labels, mode="P")
    im.putpalette(_PALETTE)
    im.save(path, format="PNG", optimize=False)


def write_image(path, image: np.ndarray, format=None) -> None:
    """Write an (H, W, 3) uint8 image (format from the suffix unless given, e.g. "PNG")."""
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path, format=format)
