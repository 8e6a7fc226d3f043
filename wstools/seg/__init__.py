"""Segmentation networks trained on pseudo labels (the last stage of every seed paper) and
their inference: DeepLabv3 / a tiny CPU network for semantic segmentation, Mask R-CNN for
instances; cross-entropy, DSRG's balanced seeding loss (Eq. 1) and SEC's constrain-to-boundary
loss; DSRG dynamic supervision; multi-scale + flip inference; Sun et al.'s prediction-amended
testing. Plain functions on tensors and arrays: no files, no flags (see ``ws train-seg`` and
``ws predict`` for those).
"""

from .losses import balanced_seeding_loss, boundary_loss, cross_entropy, seeding_loss
from .models import INSTANCE_ARCHS, SEMANTIC_ARCHS, SegNet, build_instance, build_semantic, load_backbone
from .instance import detect
from .semantic import amend, predict_probs, refine, restrict_to_present, semantic_confusion, semantic_step

__all__ = ["balanced_seeding_loss", "boundary_loss", "cross_entropy", "seeding_loss", "INSTANCE_ARCHS",
           "SEMANTIC_ARCHS", "SegNet", "build_instance", "build_semantic", "load_backbone", "amend", "predict_probs",
           "semantic_step", "refine", "restrict_to_present", "semantic_confusion", "detect"]
