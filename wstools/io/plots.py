"""Figures of ``ws eval --plot`` (matplotlib, Agg backend), written atomically."""

from __future__ import annotations

from .atomic import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_curves(path, curves: list[dict], *, xlabel: str, ylabel: str, title: str = "", logx: bool = False,
                force: bool = False, ylim=(0.0, 1.02), empty_note: str = "nothing to draw") -> None:
    """Line plot: ``curves`` are ``{"x": [...], "y": [...], "label": str, "style": "-"}`` dicts.
    With no point to draw, the axes span [0, 1] and ``empty_note`` is written in the middle."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    try:
        for c in curves:
            ax.plot(c["x"], c["y"], c.get("style", "-"), label=c.get("label"), marker=c.get("marker"))
        if not any(len(c["x"]) for c in curves):
            ax.set_xlim(0.0, 1.0)
            ax.text(0.5, 0.5, empty_note, ha="center", va="center", transform=ax.transAxes, wrap=True)
        elif logx:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ylim is not None:
            ax.set_ylim(*ylim)
        if title:
            ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if any(c.get("label") for c in curves):
            ax.legend(fontsize=8)
        fig.tight_layout()
        with atomic_path(path, force) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
