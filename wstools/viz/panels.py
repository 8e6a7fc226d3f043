"""The panels of ``ws viz``: one image drawn at a scale, with a caption above and, for label maps,
a legend below. Arrays in, (h, w, 3) uint8 panels out; the caller reads the files."""

from __future__ import annotations

import numpy as np

from . import (caption, footer, label_legend, overlay_heatmap, overlay_instances, overlay_labels, overlay_masks,
               overlay_response, plural, resize, resize_stack)


class Panels:
    """Draws one image's panels at ``factor`` times its size (``image`` (H, W, 3) uint8; ``classes``
    the K class names, label c >= 1 is ``classes[c - 1]``). Maps and masks are resized (nearest)
    before they are drawn, so outlines, texts and captions stay sharp and readable."""

    def __init__(self, image: np.ndarray, factor: float, classes):
        self.factor = factor
        self.image = resize(image, factor, nearest=False)
        self.classes = list(classes)

    def header(self, image_id: str, tags) -> np.ndarray:
        """The image itself: its id above, its tags below."""
        entries = [(None, t + ("," if i < len(tags) - 1 else "")) for i, t in enumerate(tags)]
        return footer(caption(self.image, image_id), entries or [(None, "none")], prefix="tags:")

    def labels(self, labels: np.ndarray, title: str) -> np.ndarray:
        """A (H, W) label map (0 background, 1..K, 255 unlabelled: hatched) with a legend."""
        panel = caption(overlay_labels(self.image, resize(labels, self.factor, nearest=True)), title)
        return footer(panel, label_legend(labels, self.classes))

    def heat(self, heat: np.ndarray, title: str) -> np.ndarray:
        """A (H, W) map in [0, 1] as a heat map."""
        return caption(overlay_heatmap(self.image, resize(np.asarray(heat, np.float32), self.factor, nearest=False)),
                       title)

    def instances(self, masks: np.ndarray, texts, title: str) -> np.ndarray:
        """(N, H, W) boolean masks, each outlined with its text."""
        return caption(overlay_instances(self.image, resize_stack(masks, self.factor, nearest=True), texts), title)

    def proposals(self, masks: np.ndarray, boxes: np.ndarray, scores, total: int) -> np.ndarray:
        """The first N proposals of ``total``: (N, H, W) masks, (N, 4) x0, y0, x1, y1 boxes in pixels,
        their scores or None; each marked with its rank (and score)."""
        texts = [f"#{i + 1}" + ("" if scores is None else f" {float(scores[i]):.2f}") for i in range(len(masks))]
        title = f"top {len(masks)} of {plural(total, 'proposal')}" if total > len(masks) else plural(total, "proposal")
        boxes = np.asarray(boxes, np.float64) * self.factor
        return caption(overlay_masks(self.image, resize_stack(masks, self.factor, nearest=True), boxes, texts=texts),
                       title)

    def response(self, heat: np.ndarray, y: float, x: float, title: str) -> np.ndarray:
        """A (H, W) peak response map with its peak at pixel (y, x) marked."""
        scaled = resize(np.asarray(heat, np.float32), self.factor, nearest=False)
        # the peak at the centre of its (scaled) pixel
        return caption(overlay_response(self.image, scaled, (y + 0.5) * self.factor - 0.5,
                                        (x + 0.5) * self.factor - 0.5), title)
