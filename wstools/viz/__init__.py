"""Pictures of intermediate results: overlays of labels, masks and heat maps on images.

Plain functions on numpy arrays: (H, W, 3) uint8 images in, (H, W, 3) uint8 out.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..palette import voc_palette

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


def text_scale(width: int) -> float:
    """OpenCV font scale of text drawn inside a panel ``width`` px wide (about 8 px tall letters in
    a narrow panel, 11 px from 160 px on)."""
    return 0.28 if width < 160 else 0.4


def _put_text(out, text, org, colour, scale):
    """White text on a black outline (readable over any colour), underlined in the mask's colour."""
    (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = org
    cv2.line(out, (x, y + 2), (x + w, y + 2), tuple(int(c) for c in colour), 2)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def overlay_masks(image: np.ndarray, masks: np.ndarray, boxes=None, alpha: float = 0.45, texts=None) -> np.ndarray:
    """Draw (N, H, W) boolean masks (filled, outlined), optional (N, 4) xyxy boxes and optional
    ``texts[i]`` (e.g. rank and score) at the top-left corner of box i over an image.

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
    if texts is not None and boxes is not None:
        scale = text_scale(image.shape[1])
        for i in range(len(masks) - 1, -1, -1):
            if texts[i]:
                x0, y0 = int(round(boxes[i][0])), int(round(boxes[i][1]))
                _put_text(out, str(texts[i]), (max(x0, 0) + 1, max(y0 + int(30 * scale), int(30 * scale))),
                          colours[i], scale)
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
    scale = text_scale(image.shape[1])
    for i in range(len(masks) - 1, -1, -1):
        ys, xs = np.nonzero(masks[i])
        if not len(ys) or not texts[i]:
            continue
        lift = int(30 * scale)
        _put_text(out, str(texts[i]), (int(xs.min()), max(int(ys.min()) + lift, lift)), colours[i], scale)
    return out


def caption(panel: np.ndarray, text: str) -> np.ndarray:
    """Add a one-line caption strip above a panel (14 px under 160 px wide, else 18 px)."""
    wide = panel.shape[1] >= 160
    h, width = (18 if wide else 14), panel.shape[1] - 3
    strip = np.full((h, panel.shape[1], 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = 0.45 if wide else 0.35   # shrunk (down to 0.22) to fit a narrow panel, then cut
    while scale > 0.22 and cv2.getTextSize(text, font, scale, 1)[0][0] > width:
        scale -= 0.01
    while len(text) > 1 and cv2.getTextSize(text, font, scale, 1)[0][0] > width:
        text = text[:-1]
    cv2.putText(strip, text, (2, h - 4), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, panel], 0)


UNLABELED_COLOUR = (200, 200, 200)


def label_legend(labels: np.ndarray, classes) -> list:
    """``[(colour, name), ...]`` for the values present in a label map (0 background, 1..K
    ``classes[i - 1]`` in VOC colours, 255 unlabeled): what :func:`footer` draws under it."""
    present = [int(v) for v in np.unique(labels)]
    out = []
    for v in present:
        if v == 0:
            out.append((None, "background"))
        elif v == 255:
            out.append((UNLABELED_COLOUR, "unlabeled"))
        else:
            name = classes[v - 1] if v - 1 < len(classes) else f"label {v}"
            out.append((tuple(int(c) for c in _PALETTE[v]), name))
    return out


def footer(panel: np.ndarray, entries, prefix: str = "") -> np.ndarray:
    """Add lines under a panel: ``prefix`` then ``entries`` (``(colour or None, text)``; a colour
    draws a swatch before the text), wrapped to the panel's width."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    width = panel.shape[1]
    scale = 0.4 if width >= 160 else 0.3
    line_h = 16 if width >= 160 else 12
    sw = line_h - 5
    items = ([(None, prefix)] if prefix else []) + [(c, t) for c, t in entries]
    lines, line, x = [], [], 2
    for colour, text in items:
        tw = cv2.getTextSize(text, font, scale, 1)[0][0] + (sw + 3 if colour is not None else 0) + 4
        if line and x + tw > width:
            lines.append(line)
            line, x = [], 2
        line.append((x, colour, text))
        x += tw
    if line:
        lines.append(line)
    strip = np.full((len(lines) * line_h + 2, width, 3), 255, np.uint8)
    for row, line in enumerate(lines):
        base = row * line_h + line_h - 3
        for x, colour, text in line:
            if colour is not None:
                cv2.rectangle(strip, (x, base - sw + 1), (x + sw, base), tuple(int(c) for c in colour), -1)
                cv2.rectangle(strip, (x, base - sw + 1), (x + sw, base), (0, 0, 0), 1)
                x += sw + 3
            cv2.putText(strip, text, (x, base), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([panel, strip], 0)


def plural(n: int, noun: str) -> str:
    """``1 instance``, ``2 instances``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def scale_factor(height: int, width: int, scale) -> float:
    """The factor panels are drawn at: ``scale`` itself, or for ``"auto"`` enough for the shorter
    side to reach 256 px (never below 1)."""
    if scale == "auto":
        return max(1.0, 256.0 / min(height, width))
    return float(scale)


def _scaled(n: int, factor: float) -> int:
    return max(1, int(round(n * factor)))


def resize(array: np.ndarray, factor: float, nearest: bool) -> np.ndarray:
    """An (H, W) map or (H, W, 3) image resized by ``factor`` (nearest for labels and masks,
    bilinear for images and heat maps); booleans stay boolean."""
    if factor == 1.0:
        return array
    h, w = array.shape[:2]
    src = array.astype(np.uint8) if array.dtype == bool else (
        array.astype(np.float32) if array.dtype == np.float16 else array)
    out = cv2.resize(src, (_scaled(w, factor), _scaled(h, factor)),
                     interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)
    return out.astype(bool) if array.dtype == bool else out


def resize_stack(stack: np.ndarray, factor: float, nearest: bool) -> np.ndarray:
    """(N, H, W) maps or masks resized by ``factor`` (see :func:`resize`)."""
    if factor == 1.0:
        return stack
    if len(stack) == 0:
        return np.zeros((0, _scaled(stack.shape[1], factor), _scaled(stack.shape[2], factor)), stack.dtype)
    return np.stack([resize(a, factor, nearest) for a in stack])


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
