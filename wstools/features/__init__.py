"""Per-proposal label probabilities and semantic features (the bridge from pixels to ``ws graph``).

* :mod:`.probabilities`: probabilities from class activation maps inside a proposal (Fan et al.
  ECCV 2018 Eq. 2 box mean; LIID, Liu et al. TPAMI, Eq. 3 mean + max; mask mean) and LIID's
  pseudo proposal labels (Eq. 3).
* :mod:`.roi`: ROI-Align + global average pooling of proposal boxes on a feature map.
* :mod:`.mil`: LIID's proposal MIL network (Sect. 4.1, Eq. 2) and its losses (Eq. 4-9).

Plain functions on numpy arrays / torch tensors; no files, no flags.
"""

from .probabilities import cam_scores, noise_column, normalise_rows, pseudo_labels, proposal_probabilities
from .roi import roi_features
from .mil import MilNet, cam_loss, center_loss, lse_pool, mil_loss, mil_step, mil_total_loss, update_centers

__all__ = ["cam_scores", "noise_column", "normalise_rows", "pseudo_labels", "proposal_probabilities",
           "roi_features", "MilNet", "cam_loss", "center_loss", "lse_pool", "mil_loss", "mil_total_loss",
           "update_centers", "mil_step"]
