"""Peak response maps, the ICN enhancer and proposal matching (Huang et al., Neurocomputing
2021, after Zhou et al., CVPR 2018): plain functions on numpy arrays and torch tensors.

- :mod:`.peaks`: class peaks, Eq. 1.
- :mod:`.response`: peak back-propagation through a CAM classifier, Eq. 2;
  ``image_responses`` = Algorithm 1 lines 2-7 for one image (peaks + one naive PRM each).
- :mod:`.icn`: the Instance-aware Cue-propagation Network, Eq. 3-4, and its iterative
  inference (``enhance``; ``enhance_image`` for one image at the training size).
- :mod:`.matching`: the rebalanced matching score (Eq. 5), Zhou et al.'s plain score, the ICN's
  top-k pseudo labels (``pseudo_label``) and NMS of the matched instances (Algorithm 1,
  ``match_image``, ``mask_nms``).

(``response`` and ``icn`` import torch, so they are not re-exported here.)
"""

from .matching import (binarize, contour, inner_contour, map_contour, mask_nms, match_image,  # noqa: F401
                       plain_scores, pseudo_label, rebalanced_scores, score_parameters, topk_union)
from .peaks import find_peaks, peak_map  # noqa: F401
