"""Options and checks shared by the ``ws eval`` modes (one place, imported by each module)."""

from __future__ import annotations

import click

from ...errors import InputError
from ...io.atomic import check_output
from ..common import force_option, option_stack, parse_floats


def gt_option(f):
    return click.option("--gt", "gt", required=True, type=click.Path(dir_okay=False),
                        help="Dataset manifest with the ground truth (its images are the ones scored).")(f)


def scored_file(name: str, dir_okay: bool = False):
    """The file a mode scores (argument ``name``) and ``--gt``, the manifest it is scored against."""
    return option_stack([click.argument(name, type=click.Path(dir_okay=dir_okay)), gt_option])


def csv_option(f):
    return click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
                        help="Write the per-class rows to this CSV file.")(f)


def plot_option(f):
    return click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
                        help="Write a figure to this PNG file (matplotlib, Agg backend).")(f)


def report_options(plot=True):
    """``--csv``, ``--plot`` (where the mode draws one) and ``--force``: the outputs every mode shares."""
    return option_stack([csv_option, plot_option, force_option] if plot else [csv_option, force_option])


def check_outputs(force, *paths):
    """Refuse existing output files (--csv, --plot) unless --force."""
    for p in paths:
        if p is not None:
            check_output(p, force)

def parse_iou_thresholds(text: str, name: str) -> tuple:
    """A comma list of IoU thresholds in [0, 1] (option ``name``)."""
    values = parse_floats(text, name)
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise InputError(f"{name} {text!r}: IoU thresholds must lie in [0, 1]")
    return tuple(values)


# proposals --------------------------------------------------------------------
