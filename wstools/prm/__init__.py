"""Peak response maps, the ICN enhancer and proposal matching (Huang et al., Neurocomputing
2021, after Zhou et al., CVPR 2018): plain functions on numpy arrays and torch tensors.

- :mod:`.peaks`: class peaks, Eq. 1.
- :mod:`.response`: peak back-propagation through a CAM classifier, Eq. 2.
- :mod:`.icn`: the Instance-aware Cue-propagation Network, Eq. 3-4, and its iterative inference.
- :mod:`.matching`: the rebalanced matching score (Eq. 5), Zhou et al.'s plain score, top-k
  pseudo labels and NMS of the matched instances (Algorithm 1).
"""

from .matching import (binarize, contour, match_image, plain_scores, rebalanced_scores,  # noqa: F401
                       topk_union)
from .peaks import find_peaks, peak_map  # noqa: F401
