"""LIID's multi-way cut of the knowledge graph, solved exactly per connected component.

LIID (Liu et al., TPAMI) Sec. 5.2-5.3: proposals and K+1 terminals (0 =
background / noise); proposal-terminal weight p_k (Eq. 10), proposal-proposal
weight delta*|cos| on the 3 strongest edges; the multi-way cut separates the
terminals at minimum cost and each proposal takes the label of its terminal.
The cost of a cut that puts proposal v with terminal l_v is the weight of the
terminal edges it cuts, sum_{k != l_v} p_k(v) (= 1 - p_{l_v}(v) for normalised
probabilities), plus the proposal edges across labels. As a Potts energy::

    E(l) = sum_v (sum_k u[v, k] - u[v, l_v]) + sum_{uv} w_uv [l_u != l_v],   l_v in allowed(v)

``u`` = the graph's terminal weights (``unary``), ``allowed`` = tags + 0. LIID
solved the simplex relaxation (Eq. 11) and IBM CPLEX branch and bound per
component; here each component is solved to proven optimality (see
:mod:`wstools.cut.engine`; E = sum_e w_e - F with every label rewarded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from . import engine


@dataclass
class CutResult:
    """Labels (M,) int64 in 0..K and the certificate of optimality."""

    labels: np.ndarray
    objective: float             # the method's objective at ``labels``
    bound: float                 # proven bound: lower (multiway, minimised) or upper (fan, maximised)
    gap: float                   # |objective - bound| / max(|objective|, 1)
    component_sizes: np.ndarray  # (components,) of the kNN graph
    component_exact: np.ndarray  # (components,) bool: solved to proven optimality
    stats: dict


def upper_edges(indptr, indices, weights):
    """One (u, v, w) per undirected edge (u < v) of a symmetric CSR."""
    M = len(indptr) - 1
    rows = np.repeat(np.arange(M, dtype=np.int64), np.diff(indptr))
    keep = rows < indices
    return rows[keep], np.asarray(indices)[keep].astype(np.int64), np.asarray(weights, dtype=np.float64)[keep]


def components(M, eu, ev):
    """(count, component id per node) of the graph."""
    G = sp.coo_matrix((np.ones(eu.size), (eu, ev)), shape=(M, M))
    return connected_components(G, directed=False)


def component_summary(comp, n_comp, exact_nodes):
    sizes = np.bincount(comp, minlength=n_comp).astype(np.int64)
    inexact = np.bincount(comp[~exact_nodes], minlength=n_comp) > 0
    return sizes, ~inexact


def relative_gap(objective, bound):
    return abs(objective - bound) / max(abs(objective), 1.0)


def potts_energy(labels, unary, eu, ev, ew) -> float:
    """E(l) of the module docstring."""
    u = np.asarray(unary, dtype=np.float64)
    M = u.shape[0]
    e = float((u.sum(1) - u[np.arange(M), labels]).sum())
    return e + float(np.asarray(ew, dtype=np.float64)[labels[eu] != labels[ev]].sum())


def multiway_cut(indptr, indices, weights, unary, allowed, *, restrict: bool = True, time_limit: float = 60.0,
                 workers: int = 0, progress=None, deadline: float | None = None,
                 anytime_nodes: int = 5000) -> CutResult:
    """Minimise E (module docstring); exact per component within ``time_limit``
    (seconds per component integer program) and ``deadline`` (``time.monotonic()`` seconds for the
    whole solve; see :func:`wstools.cut.engine.solve`, which also explains ``anytime_nodes``).

    Shapes: CSR (M+1,), (E,), (E,) symmetric with non-negative weights; unary, allowed (M, K+1).

    ``restrict=False`` (LIID's released code): the cut chooses among all K+1 labels, then a
    label outside ``allowed`` (not a tag of the proposal's image) becomes noise (0);
    ``objective`` and ``bound`` are those of the unrestricted problem, before that step.
    ``restrict=True``: the cut chooses only among ``allowed`` labels (tags + 0); ``objective``
    = E(labels), ``bound`` = a proven lower bound on its minimum.
    """
    unary = np.asarray(unary, dtype=np.float64)
    allowed = np.asarray(allowed, dtype=bool)
    tags = allowed
    if not restrict:
        allowed = np.ones_like(allowed)
    M, L = unary.shape
    eu, ev, ew = upper_edges(indptr, indices, weights)
    gain = unary - unary.sum(axis=1, keepdims=True)          # -(terminal cut cost)
    sol = engine.solve(gain, allowed, eu, ev, ew, np.ones(L, dtype=bool), time_limit=time_limit,
                       workers=workers, progress=progress, deadline=deadline, anytime_nodes=anytime_nodes)
    total_w = float(ew.sum())
    energy = potts_energy(sol.labels, unary, eu, ev, ew)
    lower = total_w - sol.bound
    n_comp, comp = components(M, eu, ev)
    sizes, ex = component_summary(comp, n_comp, sol.exact)
    labels = sol.labels
    if not restrict:
        labels = np.where(tags[np.arange(M), labels], labels, 0)
        sol.stats["untagged_to_noise"] = int((labels != sol.labels).sum())
    return CutResult(labels=labels, objective=energy, bound=min(lower, energy),
                     gap=relative_gap(energy, min(lower, energy)), component_sizes=sizes, component_exact=ex,
                     stats=sol.stats)
