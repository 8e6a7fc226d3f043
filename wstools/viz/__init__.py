"""Pictures of intermediate results: overlays of labels, masks and heat maps on images.

Plain functions on numpy arrays: (H, W, 3) uint8 images in, (H, W, 3) uint8 out.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..io.images import voc_palette

_PALETTE = voc_palette()


def overlay_labels(image: np.ndarray, labels: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Blend a (H, W) label map (0 background, 1..K, 255 unlabeled) over an image in VOC colours.

    Background stays as the image; unlabeled (255) pixels are hatched gray.
    """
    out = image.astype(np.float32).copy()
    fg = (labels > 0) & (labels < 255)
    colours = _PALETTE[labels].astype(np.float32)
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[fg]
    unl = labels == 255
    if unl.any():
        yy, xx = np.nonzero(unl)
        hatch = ((yy + xx) % 6) < 3
        out[yy[hatch], xx[hatch]] = 0.5 * out[yy[hatch], xx[hatch]] + 0.5 * 200.0
    return np.clip(out, 0, 255).astype(np.uint8)


def distinct_colours(n: int, seed: int = 0) -> np.ndarray:
    """(n, 3) uint8 colours spread over hue."""
    if n <= 0:
        return np.zeros((0, 3), np.uint8)
    hues = (np.arange(n) * 0.618034 + (seed * 0.1)) % 1.0
    hsv = np.stack([hues * 179, np.full(n, 220), np.full(n, 255)], -1).astype(np.uint8)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


def overlay_masks(image: np.ndarray, masks: np.ndarray, boxes=None, alpha: float = 0.45) -> np.ndarray:
    """Draw (N, H, W) boolean masks (filled, outlined) and optional (N, 4) xyxy boxes over an image.

    Masks are drawn in reverse order so the first (best ranked) ends on top.
    """
    out = image.astype(np.float32).copy()
    colours = distinct_colours(len(masks))
    for i in range(len(masks) - 1, -1, -1):
        m = masks[i]
        out[m] = (1 - alpha) * out[m] + alpha * colours[i]
    out = np.clip(out, 0, 255).astype(np.uint8)
    for i in range(len(masks) - 1, -1, -1):
        contours, _ = cv2.findContours(masks[i].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in colours[i]), 1)
        if boxes is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in boxes[i])
            cv2.rectangle(out, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), tuple(int(c) for c in colours[i]), 1)
    return out


def overlay_heatmap(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a (H, W) map in [0, 1] over an image with the jet colour map."""
    heat8 = np.clip(np.nan_to_num(heat.astype(np.float32)) * 255, 0, 255).astype(np.uint8)
    colour = cv2.cvtColor(cv2.applyColorMap(heat8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return np.clip((1 - alpha) * image.astype(np.float32) + alpha * colour, 0, 255).astype(np.uint8)


def mark_point(image: np.ndarray, y: float, x: float, size: int = 7) -> np.ndarray:
    """A white cross with a black outline at pixel (row ``y``, column ``x``) of an image (a copy)."""
    out = image.copy()
    p = (int(round(x)), int(round(y)))
    cv2.drawMarker(out, p, (0, 0, 0), cv2.MARKER_CROSS, size + 2, 3)
    cv2.drawMarker(out, p, (255, 255, 255), cv2.MARKER_CROSS, size, 1)
    return out


def overlay_response(image: np.ndarray, heat: np.ndarray, y: float, x: float) -> np.ndarray:
    """A peak response map (H, W) in [0, 1] as a heat map, its peak (row ``y``, column ``x``) marked."""
    return mark_point(overlay_heatmap(image, heat), y, x)


def overlay_instances(image: np.ndarray, masks: np.ndarray, texts=None, alpha: float = 0.45) -> np.ndarray:
    """Draw (N, H, W) boolean instance masks, one colour each (first on top), with ``texts[i]``
    (e.g. class and score) written at the top-left corner of mask i's box."""
    out = overlay_masks(image, masks, alpha=alpha)
    if texts is None:
        return out
    colours = distinct_colours(len(masks))
    for i in range(len(masks) - 1, -1, -1):
        ys, xs = np.nonzero(masks[i])
        if not len(ys) or not texts[i]:
            continue
        org = (int(xs.min()), max(int(ys.min()) + 8, 8))
        cv2.putText(out, str(texts[i]), org, cv2.FONT_HERSHEY_SIMPLEX, 0.28, (0, 0, 0), 2, cv2.LINE_AA)
        cv2.putText(out, str(texts[i]), org, cv2.FONT_HERSHEY_SIMPLEX, 0.28, tuple(int(c) for c in colours[i]), 1,
                    cv2.LINE_AA)
    return out


def caption(panel: np.ndarray, text: str) -> np.ndarray:
    """Add a one-line caption strip above a panel."""
    h, width = 14, panel.shape[1] - 3
    strip = np.full((h, panel.shape[1], 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = 0.35   # shrunk (down to 0.22) to fit a narrow panel, then cut
    while scale > 0.22 and cv2.getTextSize(text, font, scale, 1)[0][0] > width:
        scale -= 0.01
    while len(text) > 1 and cv2.getTextSize(text, font, scale, 1)[0][0] > width:
        text = text[:-1]
    cv2.putText(strip, text, (2, h - 4), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, panel], 0)


def tile(rows: list[list[np.ndarray]], pad: int = 2) -> np.ndarray:
    """Lay out panels in a grid (each row a list of (h, w, 3) panels), white padding."""
    height = max(p.shape[0] for row in rows for p in row)
    width = max(p.shape[1] for row in rows for p in row)
    ncol = max(len(row) for row in rows)
    grid = np.full((len(rows) * (height + pad) + pad, ncol * (width + pad) + pad, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, p in enumerate(row):
            y, x = pad + r * (height + pad), pad + c * (width + pad)
            grid[y:y + p.shape[0], x:x + p.shape[1]] = p
    return grid
