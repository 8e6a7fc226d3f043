"""Tabular outputs of ``ws eval``: CSV files and plain-text tables for stderr."""

from __future__ import annotations

import csv
import math

from .atomic import atomic_path


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return v


def write_csv(path, rows: list[dict], force: bool = False) -> None:
    """Write ``rows`` (dicts; the union of their keys, in first-seen order, is the header) atomically."""
    header = []
    for r in rows:
        for k in r:
            if k not in header:
                header.append(k)
    with atomic_path(path, force) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header)
            w.writeheader()
            for r in rows:
                w.writerow({k: _cell(r.get(k)) for k in header})


def format_table(rows: list[dict], columns: list[str] | None = None, digits: int = 3) -> str:
    """A fixed-width text table of ``rows`` (numbers rounded to ``digits``; None shows as '-')."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])

    def fmt(v):
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "-"
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
