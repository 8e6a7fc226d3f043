"""Multi-label FCN classifier and class activation maps (CAMs).

The "attention module" of Fan et al. (ECCV 2018, Sect. 3.1, loss Eq. 1), the CAM
source of LIID and DSRG, and the cue generator of Sun et al. (other-class
subtraction, background from the top layers' features, gray-image classifier).
Plain functions and modules on tensors; the training loop is in
:mod:`wstools.cam.train`, file handling in :mod:`wstools.io`.
"""

from .model import CamNet, multilabel_loss
from .cams import background_from_features, finalize_cams, forward_cams, select_classes
from .metrics import average_precision, mean_average_precision
from .augment import IMAGENET_MEAN, IMAGENET_STD, normalize, random_scale_flip_crop, to_gray

__all__ = ["CamNet", "multilabel_loss", "forward_cams", "finalize_cams", "background_from_features",
           "select_classes", "average_precision", "mean_average_precision", "IMAGENET_MEAN", "IMAGENET_STD",
           "normalize", "random_scale_flip_crop", "to_gray"]
