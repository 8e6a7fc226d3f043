"""Masks in files are COCO compressed RLE; the codec itself lives in :mod:`wstools.masks`
(a pure array helper below both the file layer and the algorithm packages). This module
re-exports it for the file-format code of ``wstools.io``."""

from ..masks import area, boxes, decode, encode, from_polygons, from_uncompressed, iou, rle_boxes, rle_iou, to_rles

__all__ = ["area", "boxes", "decode", "encode", "from_polygons", "from_uncompressed", "iou", "rle_boxes", "rle_iou",
           "to_rles"]
