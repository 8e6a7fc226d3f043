"""Synthetic weakly-labelled data: textured shapes on cluttered backgrounds.

``make_image`` draws one image with its ground truth and ``split_image`` image ``i`` of a
named split; :func:`wstools.io.toy.write_dataset` writes a whole split as files plus a
manifest. Everything is deterministic for a seed.
"""

from .generator import FAMILIES, PALETTE, ToyImage, make_image, split_image

__all__ = ["FAMILIES", "PALETTE", "ToyImage", "make_image", "split_image"]
