"""Seed cues, superpixel snapping, seeded region growing and dense CRF (Sun et al.; DSRG)."""

from .probs import cam_probabilities
from .region import seeded_region_growing
from .seeds import background_mask, cam_seeds, cue_map, foreground_masks, fuse_seeds, masks_to_seeds
from .snap import snap_seeds, snap_to_superpixels

__all__ = ["seeded_region_growing", "cam_seeds", "cue_map", "foreground_masks", "background_mask", "masks_to_seeds",
           "fuse_seeds", "snap_to_superpixels", "snap_seeds", "cam_probabilities"]
