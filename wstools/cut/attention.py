"""The attention-only baseline: each proposal takes its most probable allowed label.

Fan et al. ECCV 2018 Table 1a "attention" row (tags from the attention module
alone, no graph); LIID without the knowledge graph (Tables 1-5, first number of
each pair). Ties go to the lower label.
"""

from __future__ import annotations

import numpy as np


def attention_labels(prob: np.ndarray, allowed: np.ndarray, *, background: bool = True) -> np.ndarray:
    """argmax over allowed labels of ``prob`` (M, K+1) -> (M,) int64. ``background=False`` never
    picks label 0 while an object label is allowed (Fan et al.'s attention module has no background)."""
    p = np.where(allowed, np.asarray(prob, dtype=np.float64), -np.inf)
    if not background:
        fg = allowed[:, 1:].any(axis=1)
        p[fg, 0] = -np.inf
    return np.argmax(p, axis=1).astype(np.int64)
