"""Class-agnostic segment proposals with masks.

- :mod:`.hierarchy`: selective-search hierarchical grouping of Felzenszwalb
  superpixels with masks (Uijlings et al., IJCV 2013).
- :mod:`.saliency`: salient instances from a classical saliency map split by
  connected components and superpixels (after Fan et al., ECCV 2018).
- :mod:`.filtering`: de-duplication, size/aspect filters, mask NMS, top N.

Every method returns ``boxes`` (N, 4) float32 xyxy pixels (x1, y1 exclusive),
``scores`` (N,) float32 (higher is better) and ``counts``: N COCO RLE masks
(pycocotools compressed ``counts``), ranked best first.
"""

from .filtering import mask_nms, select, shape_filter, unique_masks
from .hierarchy import greedy_grouping, hierarchy_candidates, hierarchy_proposals, superpixels

__all__ = ["greedy_grouping", "hierarchy_candidates", "hierarchy_proposals", "superpixels", "mask_nms", "select",
           "shape_filter", "unique_masks"]
