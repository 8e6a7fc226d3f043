"""``ws cut GRAPH -o assignment.h5``: assign a label (or noise) to every proposal."""

from __future__ import annotations

import click
import numpy as np

from ..cut import METHODS, attention_cut, fan_partition, multiway_cut
from ..io.flat import read_graph, write_assignment
from ..io.store import open_store
from .common import Timer, command, emit, force_option, log, output_option, progress, warn
from .stage import output_store


@command("cut")
@click.argument("graph", type=click.Path(dir_okay=False))
@output_option("Output assignment store (.h5).")
@click.option("--method", type=click.Choice(METHODS), default="multiway", show_default=True,
              help="multiway: LIID's multi-way cut (Sec. 5.3), exact per component; fan: Fan et al. Eq. 8 with "
                   "the retention constraint, solved globally; attention: argmax of the allowed probabilities "
                   "(the no-graph baseline of both papers).")
@click.option("--labels", "label_rule", type=click.Choice(["tags", "free"]), default="tags", show_default=True,
              help="multiway: tags = each proposal's label is chosen among its image's tags + noise; free = the "
                   "cut chooses among all K+1 labels and a label absent from the image becomes noise afterwards "
                   "(LIID's released code; the paper is silent). Measured: equal on oracle probabilities, and "
                   "with a MIL network's probabilities free sends most true instances to untagged labels and so "
                   "to noise (README 'ws cut').")
@click.option("--beta", type=click.FloatRange(0), default=30.0, show_default=True,
              help="Fan et al. Eq. 7-8 balancing ratio beta (30 is the paper's best, Table 2a).")
@click.option("--retention", type=float, default=0.9, show_default=True,
              help="Fan et al. Eq. 8 retention ratio r in (0, 1]: floor(r n) proposals keep a label. The paper "
                   "gives no best value (Table 2b); 1 = Eq. 7.")
@click.option("--time-limit", type=click.FloatRange(0, min_open=True), default=600.0, show_default=True,
              help="Seconds for the whole command. At the limit the best labelling found is written with its "
                   "certified bound and gap; components not proven optimal are marked (component_exact). Large "
                   "components get alpha-expansion and a dual bound first, the LP with the time left.")
@click.option("--component-time-limit", type=click.FloatRange(0, min_open=True), default=30.0, show_default=True,
              help="Seconds for the integer program of one component (within --time-limit); past it the best "
                   "labelling found is kept and the certified gap reported.")
@click.option("--workers", type=click.IntRange(0), default=0, show_default=True,
              help="Processes solving chunks of components in parallel (0 = in the main process).")
@force_option
def cut(graph, output, method, label_rule, beta, retention, time_limit, component_time_limit, workers, force):
    """Assign each proposal one of its allowed labels, or noise (0), using the graph.

    multiway minimises LIID's multi-way cut energy sum_v (1 - p_{l_v}(v)) +
    sum_uv w_uv [l_u != l_v] over the allowed labels (tags + 0; --labels free:
    over all labels, untagged ones then noise, as LIID's released code), every
    connected component to proven optimality (LP relaxation, then an OR-Tools
    integer program where the LP is fractional). fan maximises Fan et al.'s
    Eq. 8 with exactly floor(r n) proposals kept, coupling all components by a
    Lagrange multiplier found by bisection, with an exact repair. The summary and
    the store carry the objective, the proven bound and the relative gap, the
    label distribution (kept / noise per class), the fraction of proposals
    settled by each step (dominance, Kovtun, trivial components, LP, anytime)
    and the seconds of each phase; `ws info` shows them again. A warning says
    when every proposal ends as noise or with one label (pairwise weights far
    above the unaries, e.g. too large a `ws graph --delta`).

    --time-limit bounds the whole command: on a giant component the best
    alpha-expansion labelling is written with a certified bound (the dual of
    the LP relaxation, MPLP updates) and the gap.

    \b
    Example:
      ws cut graph.h5 -o assignment.h5 --method multiway --workers 2
      ws cut graph.h5 -o fast.h5 --method multiway --time-limit 10
      ws cut graph.h5 -o fan.h5 --method fan --beta 30 --retention 0.9
    """
    import time

    from ..cut import report
    from ..errors import InputError

    t_cmd = time.monotonic()
    deadline = t_cmd + time_limit - min(2.0, 0.1 * time_limit)    # room to write the output

    if not (0.0 < retention <= 1.0):
        raise InputError(f"--retention {retention} must be in (0, 1] (Fan et al. Eq. 8)")
    with open_store(graph, "graph") as src:
        K = len(src.classes)
        g = read_graph(src, K)
        built_with = src.params.get("weights")
        if method == "fan" and built_with not in (None, "fan"):
            warn(f"{graph}: graph built with --weights {built_with}; Fan et al.'s cut (Eq. 6-8) expects "
                 "--weights fan (W = cos + 1, Eq. 5)")
        M = g["unary"].shape[0]
        with Timer() as t:
            with progress(desc="chunks", unit="chunk") as bar:
                if method == "multiway":
                    res = multiway_cut(g["indptr"], g["indices"], g["weights"], g["unary"], g["allowed"],
                                       restrict=label_rule == "tags", time_limit=component_time_limit,
                                       workers=workers, progress=bar.update,
                                       deadline=deadline)
                elif method == "fan":
                    res = fan_partition(g["indptr"], g["indices"], g["weights"], g["unary"], g["allowed"],
                                        beta=beta, retention=retention, time_limit=component_time_limit,
                                        workers=workers, progress=bar.update, deadline=deadline)
                else:
                    res = attention_cut(g["indptr"], g["indices"], g["weights"], g["unary"], g["allowed"])
        labels, sizes, exact = res.labels, res.component_sizes, res.component_exact
        objective, bound, gap, stats = res.objective, res.bound, res.gap, res.stats
        params = {"method": method, "labels": label_rule, "beta": beta, "retention": retention,
                  "time_limit": time_limit, "component_time_limit": component_time_limit}
        info = {"labels": report.label_distribution(labels, g["allowed"], src.classes),
                "fixed": report.reduction_fractions(stats, M) if method == "multiway" else {},
                "seconds": {**report.phase_seconds(stats), "total": round(t.seconds, 3)},
                "inexact_components": int(len(exact) - np.sum(exact)),
                "warnings": report.warnings_for(labels, g["unary"], g["allowed"], g["weights"], method=method)}
        with output_store(output, "assignment", classes=src.classes, params=params, inputs=[src], force=force,
                          dataset_of=src) as dst:
            write_assignment(dst, labels=labels, image_ids=g["image_ids"], image=g["image"], proposal=g["proposal"],
                             truth=g["truth"], objective=objective, bound=bound, gap=gap, method=method,
                             component_sizes=sizes, component_exact=exact, report=info)
            dst.h5.attrs["seconds"] = t.seconds
    log(f"{method}: {M} proposals, objective {objective:.6g}, gap {gap:.3g}, {t.seconds:.2f} s")
    for w in info["warnings"]:
        warn(w)
    summary = {"output": output, "method": method, "proposals": M, "kept": int((labels > 0).sum()),
               "objective": objective, "bound": bound, "gap": gap, "components": int(len(sizes)),
               "largest_component": int(sizes.max()) if len(sizes) else 0,
               "components_exact": int(np.sum(exact)), "seconds": round(t.seconds, 3)}
    summary.update({k: v for k, v in stats.items() if k not in summary and not k.startswith("seconds_")})
    summary.update(info)
    if g["truth"] is not None:
        summary["accuracy"] = float((labels == g["truth"]).mean())
    emit(summary)
