"""Exact labelling of a sparse graph, component by component.

The problem both tag-assignment methods reduce to (n nodes, L labels, E edges)::

    maximise  F(l) = sum_v gain[v, l_v] + sum_{e=(u,v)} w_e [l_u == l_v and l_u in reward]
    over      l_v in allowed[v]                       (optionally: #{v : l_v in count_mask} == m)

with w_e >= 0. LIID's multi-way cut (Potts energy, every label rewarded) and
Fan et al.'s Eq. 8 (agreement rewarded only for object labels, Lagrangian
node price in ``gain``) are instances (see :mod:`.multiway`, :mod:`.fan`).

Without a count constraint the problem separates over connected components.
The solver, in order, all exact:

1. *Dominance* (vectorised): a node whose best gain beats its second best by at
   least the total weight of its edges takes its best label in some optimal
   labelling; it is fixed, and its edges become gains of its neighbours. Repeats
   while nodes get fixed; the graph falls further apart.
2. *Trivial components* (vectorised): where every node's best label agrees along
   every edge (and is rewarded) the best labels are optimal (each term is at its
   maximum). Isolated nodes are the special case without edges.
3. The remaining components are solved, in chunks and in parallel, as the
   integer program with x_{v,l} in {0,1}, sum_l x_{v,l} = 1, agreement variables
   y_{e,l} <= x_{u,l}, y_{e,l} <= x_{v,l}. Its LP relaxation (the
   Calinescu-Karloff-Rabani relaxation LIID Eq. 11 cites) is solved first
   (HiGHS, through scipy, built from sparse arrays); every component whose LP
   optimum is integral is solved. The others go to a MIP (OR-Tools, SCIP) with a
   per-component time limit; one that runs out falls back to the better of the
   MIP incumbent and LP rounding + ICM, with the LP / MIP bound certifying the gap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

INTEGRAL_TOL = 1e-6


def _now():
    return time.monotonic()


@dataclass
class Solution:
    labels: np.ndarray       # (n,) int64
    value: float             # F(labels)
    bound: float             # proven upper bound on max F
    exact: np.ndarray        # (n,) bool: the node's (reduced) component was solved to proven optimality
    stats: dict


def objective(labels, gain, eu, ev, ew, reward) -> float:
    """F(labels) (module docstring), in float64."""
    labels = np.asarray(labels)
    n = labels.shape[0]
    val = float(np.asarray(gain, dtype=np.float64)[np.arange(n), labels].sum())
    if len(eu):
        same = (labels[eu] == labels[ev]) & np.asarray(reward)[labels[eu]]
        val += float(np.asarray(ew, dtype=np.float64)[same].sum())
    return val


# ---------------------------------------------------------------------------- LP / MIP of a chunk

def build_program(gain, allowed, eu, ev, ew, reward, count=None):
    """The integer program of the module docstring as ``min c.z`` with sparse constraints.

    Variables z = [x (allowed pairs, node-major) | y (edge, label) pairs]. Returns a dict
    with c, A_ub (<= 0), A_eq, b_eq, xv, xl (node and label of each x), n_x, and the
    component-independent layout. ``count = (mask, m)`` adds sum of x over labels in mask = m.
    """
    n, L = allowed.shape
    xv, xl = np.nonzero(allowed)
    nx = xv.size
    xid = np.full((n, L), -1, dtype=np.int64)
    xid[xv, xl] = np.arange(nx)
    ymask = allowed[eu] & allowed[ev] & np.asarray(reward, dtype=bool)[None, :]
    ye, yl = np.nonzero(ymask)
    ny = ye.size
    c = np.concatenate([-gain[xv, xl], -np.asarray(ew, dtype=np.float64)[ye]])
    rows = np.concatenate([np.arange(ny), np.arange(ny), ny + np.arange(ny), ny + np.arange(ny)])
    cols = np.concatenate([nx + np.arange(ny), xid[eu[ye], yl], nx + np.arange(ny), xid[ev[ye], yl]])
    vals = np.concatenate([np.ones(ny), -np.ones(ny), np.ones(ny), -np.ones(ny)])
    A_ub = sp.csr_matrix((vals, (rows, cols)), shape=(2 * ny, nx + ny))
    eq_rows, eq_cols, eq_vals, b_eq = [xv], [np.arange(nx)], [np.ones(nx)], [np.ones(n)]
    if count is not None:
        mask, m = count
        sel = np.flatnonzero(np.asarray(mask, dtype=bool)[xl])
        eq_rows.append(np.full(sel.size, n))
        eq_cols.append(sel)
        eq_vals.append(np.ones(sel.size))
        b_eq.append([float(m)])
    A_eq = sp.csr_matrix((np.concatenate(eq_vals), (np.concatenate(eq_rows), np.concatenate(eq_cols))),
                         shape=(n + (count is not None), nx + ny))
    return {"c": c, "A_ub": A_ub, "A_eq": A_eq, "b_eq": np.concatenate(b_eq).astype(float), "xv": xv, "xl": xl,
            "n_x": nx, "ye": ye}


def solve_lp(prog, time_limit: float | None = None):
    """LP relaxation with HiGHS; returns the solution vector z or None when it failed or ran out of
    ``time_limit`` seconds."""
    from scipy.optimize import linprog

    if prog["c"].size == 0:
        return np.zeros(0)
    opts = {} if time_limit is None else {"time_limit": max(0.05, float(time_limit))}
    res = linprog(prog["c"], A_ub=prog["A_ub"] if prog["A_ub"].shape[0] else None,
                  b_ub=np.zeros(prog["A_ub"].shape[0]) if prog["A_ub"].shape[0] else None,
                  A_eq=prog["A_eq"], b_eq=prog["b_eq"], bounds=(0, 1), method="highs", options=opts)
    if res.status != 0:
        return None
    return res.x


def solve_mip(prog, time_limit: float):
    """The integer program through OR-Tools (SCIP): ``(z or None, optimal, bound on min c.z)``."""
    from ortools.linear_solver import pywraplp

    solver = pywraplp.Solver.CreateSolver("SCIP")
    if solver is None:  # pragma: no cover - every OR-Tools wheel has SCIP
        solver = pywraplp.Solver.CreateSolver("CBC")
    c, nx = prog["c"], prog["n_x"]
    z = [solver.IntVar(0, 1, "") if j < nx else solver.NumVar(0, 1, "") for j in range(c.size)]
    for A, lo, hi in ((prog["A_ub"], None, np.zeros(prog["A_ub"].shape[0])), (prog["A_eq"], prog["b_eq"], prog["b_eq"])):
        A = A.tocsr()
        for r in range(A.shape[0]):
            ct = solver.RowConstraint(-solver.infinity() if lo is None else float(lo[r]), float(hi[r]), "")
            for j, a in zip(A.indices[A.indptr[r]:A.indptr[r + 1]], A.data[A.indptr[r]:A.indptr[r + 1]]):
                ct.SetCoefficient(z[int(j)], float(a))
    obj = solver.Objective()
    for j in range(c.size):
        if c[j]:
            obj.SetCoefficient(z[j], float(c[j]))
    obj.SetMinimization()
    solver.SetTimeLimit(max(1, int(time_limit * 1000)))
    params = pywraplp.MPSolverParameters()
    params.SetDoubleParam(params.RELATIVE_MIP_GAP, 1e-9)
    status = solver.Solve(params)
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        return None, False, -np.inf
    sol = np.array([v.solution_value() for v in z])
    optimal = status == pywraplp.Solver.OPTIMAL
    bound = obj.Value() if optimal else obj.BestBound()
    return sol, optimal, min(bound, obj.Value())


def icm(labels, gain, allowed, eu, ev, ew, reward, sweeps: int = 20):
    """Iterated conditional modes from ``labels`` (never decreases F); used only as a fallback."""
    labels = labels.copy()
    n, L = gain.shape
    g = np.where(allowed, gain, -np.inf)
    A = sp.coo_matrix((np.concatenate([ew, ew]), (np.concatenate([eu, ev]), np.concatenate([ev, eu]))),
                      shape=(n, n)).tocsr()
    for _ in range(sweeps):
        changed = False
        for v in range(n):
            a, b = A.indptr[v], A.indptr[v + 1]
            score = g[v].copy()
            nl = labels[A.indices[a:b]]
            np.add.at(score, nl, np.where(reward[nl], A.data[a:b], 0.0))
            best = int(np.argmax(score))
            if score[best] > score[labels[v]] + 1e-12:
                labels[v] = best
                changed = True
        if not changed:
            break
    return labels


def _labels_from_x(prog, z, n):
    nx = prog["n_x"]
    x = z[:nx]
    best = np.full(n, -1.0)
    lab = np.zeros(n, dtype=np.int64)
    order = np.lexsort((x, prog["xv"]))          # per node, the largest x last
    last = np.ones(order.size, dtype=bool)
    last[:-1] = prog["xv"][order][1:] != prog["xv"][order][:-1]
    pick = order[last]
    lab[prog["xv"][pick]] = prog["xl"][pick]
    best[prog["xv"][pick]] = x[pick]
    return lab


def solve_chunk(gain, allowed, eu, ev, ew, reward, comp, n_comp, time_limit, deadline=None):
    """Solve the components of one chunk (nodes 0..n-1, ``comp`` their component 0..n_comp-1).

    Returns ``(labels, slack, exact, n_mip)``: slack[c] = proven upper bound minus
    value of component c (0 when exact). ``deadline`` (time.monotonic() seconds): the LP and the
    MIPs stop there; when the LP does not finish, the chunk goes to :mod:`.anytime`.
    """
    n = gain.shape[0]
    t0 = _now()
    prog = build_program(gain, allowed, eu, ev, ew, reward)
    # the LP gets 70 % of the time left; the rest is for the anytime fallback when it does not finish
    z = solve_lp(prog, None if deadline is None else 0.7 * (deadline - t0) - (_now() - t0))
    slack = np.zeros(n_comp)
    exact = np.ones(n_comp, dtype=bool)
    if z is None:
        from . import anytime

        lab, val, ub, _ = anytime.solve_component(gain, allowed, eu, ev, ew, reward,
                                                  _now() + 1.0 if deadline is None else deadline)
        closed = ub - val <= 1e-9 * max(1.0, abs(val))
        exact[:] = closed
        if not closed:
            slack[0] = ub - val
        return lab, slack, exact, 0
    else:
        nx = prog["n_x"]
        frac = np.abs(z[:nx] - np.round(z[:nx])) > INTEGRAL_TOL
        frac_comp = np.bincount(comp[prog["xv"][frac]], minlength=n_comp) > 0
        labels = _labels_from_x(prog, z, n)
        var_comp = np.concatenate([comp[prog["xv"]], comp[eu[prog["ye"]]]])
        lp_ub = -np.bincount(var_comp, weights=prog["c"] * z, minlength=n_comp)
    n_mip = 0
    if frac_comp.any():
        order = np.argsort(comp, kind="stable")
        starts = np.searchsorted(comp[order], np.arange(n_comp + 1))
        ecomp = comp[eu]
        for c in np.flatnonzero(frac_comp):
            nodes = order[starts[c]:starts[c + 1]]
            local = np.full(n, -1, dtype=np.int64)
            local[nodes] = np.arange(nodes.size)
            es = np.flatnonzero(ecomp == c)
            args = (gain[nodes], allowed[nodes], local[eu[es]], local[ev[es]], ew[es], reward)
            sub = build_program(*args)
            n_mip += 1
            tl = time_limit if deadline is None else max(0.0, min(time_limit, deadline - _now()))
            zc, optimal, bound = solve_mip(sub, tl) if tl > 0 else (None, False, -np.inf)
            cand = []
            if zc is not None:
                cand.append(_labels_from_x(sub, zc, nodes.size))
            start = labels[nodes] if z is not None else np.argmax(np.where(allowed[nodes], gain[nodes], -np.inf), 1)
            if not optimal:
                cand.append(icm(start, *args[:2], *args[2:5], reward))
            vals = [objective(lab, args[0], args[2], args[3], args[4], reward) for lab in cand]
            best = int(np.argmax(vals))
            labels[nodes] = cand[best]
            ub = min(lp_ub[c], -bound) if zc is not None else lp_ub[c]
            exact[c] = bool(optimal and best == 0)
            slack[c] = 0.0 if exact[c] else max(0.0, ub - vals[best])
    return labels, slack, exact, n_mip


# ---------------------------------------------------------------------------- whole problem

def _fold(gain, allowed, eu, ev, ew, reward, fixed, new, active):
    """Edges from newly fixed nodes to free ones become gains of the free ones (in place); returns the
    mask of edges whose both ends are still free."""
    for a, b in ((eu, ev), (ev, eu)):
        sel = active & new[a] & (fixed[b] < 0)
        la = fixed[a[sel]]
        ok = reward[la] & allowed[b[sel], la]
        np.add.at(gain, (b[sel][ok], la[ok]), ew[sel][ok])
    return active & (fixed[eu] < 0) & (fixed[ev] < 0)


def _dominance(gain, allowed, eu, ev, ew, reward, rounds: int = 20, fixed=None, active=None):
    """Fix dominated nodes (module docstring, step 1). Returns (gain', fixed label or -1, active edge mask)."""
    n, L = gain.shape
    gain = gain.copy()
    fixed = np.full(n, -1, dtype=np.int64) if fixed is None else fixed.copy()
    active = np.ones(eu.size, dtype=bool) if active is None else active.copy()
    for _ in range(rounds):
        free = fixed < 0
        g = np.where(allowed, gain, -np.inf)
        part = -np.partition(-g, 1, axis=1)[:, :2] if L > 1 else np.concatenate([g, np.full((n, 1), -np.inf)], 1)
        margin = part[:, 0] - part[:, 1]
        deg = np.bincount(eu[active], weights=ew[active], minlength=n) + \
            np.bincount(ev[active], weights=ew[active], minlength=n)
        new = free & (margin >= deg)
        if not new.any():
            break
        fixed[new] = np.argmax(g[new], axis=1)
        active = _fold(gain, allowed, eu, ev, ew, reward, fixed, new, active)
    return gain, fixed, active


FLOW_TOTAL = 2.0 ** 60      # integer capacities of one auxiliary min cut sum to at most this (int64 max flow)


def _kovtun(gain, allowed, eu, ev, ew, reward, fixed, active, rounds: int = 4, deadline=None):
    """Kovtun's partial optimality for every rewarded label, in place on gain / fixed.

    Kovtun, "Partial optimal labeling search for a NP-hard subclass of (max,+) problems" (DAGM 2003):
    for a label a, the auxiliary binary problem on the free nodes allowing a, with costs (energy =
    -gain) ``c_v(a)`` for y_v = a, ``min_{l != a allowed} c_v(l)`` for y_v = not-a and ``w_uv`` for
    y_u != y_v (an edge to a free node that does not allow a costs w_uv when y_v = a), is submodular
    and solved by one s-t min cut. For its minimiser A (source side) and any labelling x, setting
    x = a on A does not increase the energy (for B = {x_v = a}: E(x') - E(x) <= g(A u B) - g(B) <=
    g(A) - g(A n B) <= 0 by submodularity and minimality of A). Labels are processed one at a time
    on the reduced problem (fixed nodes folded into their neighbours' gains), for a few rounds.
    Kovtun states it for the Potts model; the same bound holds for any rewarded label a here, since
    the pairwise energy -w [l_u = l_v rewarded] lies in [-w, 0] and equals -w at (a, a): moving the
    nodes of A minus B to a changes an edge to the rest by at most +w, an edge to B by exactly -w and
    an edge inside by at most 0, which is g(A u B) - g(B).

    Max flow needs integer capacities: they are scaled so that they sum to ``FLOW_TOTAL`` and
    rounded; with rounding error at most delta in total, A is a minimiser up to 2 delta, so fixing A
    loses at most 2 delta of optimality. Returns (active edge mask, slack): the sum of those 2 delta,
    to be added to the proven bound.
    """
    from ortools.graph.python import max_flow

    n, L = gain.shape
    slack = 0.0
    for _ in range(rounds):
        changed = False
        for a in np.flatnonzero(reward):
            if deadline is not None and _now() > deadline:
                return active, slack
            free = fixed < 0
            cand = free & allowed[:, a]
            idx = np.flatnonzero(cand)
            if idx.size == 0:
                continue
            loc = np.full(n, -1, dtype=np.int64)
            loc[idx] = np.arange(idx.size)
            g = np.where(allowed[idx], gain[idx], -np.inf)
            cost_a = -g[:, a]
            g[:, a] = -np.inf
            other = g.max(axis=1)
            inner = active & cand[eu] & cand[ev]
            out_u = active & cand[eu] & ~cand[ev]          # the other end is free and cannot take a
            out_v = active & cand[ev] & ~cand[eu]
            cost_a = cost_a + np.bincount(loc[eu[out_u]], ew[out_u], idx.size) + \
                np.bincount(loc[ev[out_v]], ew[out_v], idx.size)
            deg = np.bincount(loc[eu[inner]], ew[inner], idx.size) + np.bincount(loc[ev[inner]], ew[inner], idx.size)
            cost_na = np.where(np.isfinite(other), -other, cost_a + deg + 1.0)   # a is its only label: any value
            base = np.minimum(cost_a, cost_na)
            cost_a, cost_na = cost_a - base, cost_na - base
            total = float(cost_a.sum() + cost_na.sum() + 2.0 * ew[inner].sum())
            if total <= 0.0:
                fixed[idx] = a            # every node indifferent: all a is a minimiser
                new = cand
            else:
                scale = FLOW_TOTAL / total
                N, E = idx.size, int(inner.sum())
                tails = np.concatenate([np.full(N, N), np.arange(N), loc[eu[inner]], loc[ev[inner]]])
                heads = np.concatenate([np.arange(N), np.full(N, N + 1), loc[ev[inner]], loc[eu[inner]]])
                caps = np.rint(np.concatenate([cost_na, cost_a, ew[inner], ew[inner]]) * scale).astype(np.int64)
                mf = max_flow.SimpleMaxFlow()
                mf.add_arcs_with_capacity(tails, heads, caps)
                if mf.solve(N, N + 1) != mf.OPTIMAL:   # pragma: no cover - capacities are bounded
                    continue
                src = np.asarray(mf.get_source_side_min_cut(), dtype=np.int64)
                src = src[src < N]
                # per capacity |error| <= 0.5 / scale (+ float rounding of the product)
                slack += 2.0 * (2 * N + E) * (0.5 + 1e-3) / scale
                new = np.zeros(n, dtype=bool)
                new[idx[src]] = True
                fixed[new] = a
            if new.any():
                changed = True
                active = _fold(gain, allowed, eu, ev, ew, reward, fixed, new, active)
        if not changed:
            break
    return active, slack


def solve(gain, allowed, eu, ev, ew, reward, *, time_limit: float = 60.0, workers: int = 0,
          chunk_vars: int = 40000, kovtun: bool = True, progress=None, deadline: float | None = None,
          anytime_nodes: int = 5000) -> Solution:
    """Maximise F (module docstring) exactly where the time allows. Shapes: gain, allowed
    (n, L); eu, ev, ew (E,) one entry per undirected edge; reward (L,) bool. ``kovtun``: apply
    Kovtun's partial optimality (:func:`_kovtun`) for the rewarded labels.

    ``time_limit``: seconds for one component's integer program. ``deadline`` (``time.monotonic()``
    seconds, None = none): everything stops by then and the best labelling found is returned with a
    certified bound. Components of more than ``anytime_nodes`` nodes left after the reductions go
    first to :func:`wstools.cut.anytime.solve_component` (alpha-expansion + a dual bound at every
    iteration) with a share of the remaining time proportional to their size; if that does not
    close their gap and time remains, to the LP (HiGHS, stopped at the deadline). ``stats`` has the
    nodes fixed by each reduction, the nodes solved by each method and the seconds of each phase.
    """
    t_start = _now()
    gain = np.asarray(gain, dtype=np.float64)
    allowed = np.asarray(allowed, dtype=bool)
    reward = np.asarray(reward, dtype=bool)
    eu, ev = np.asarray(eu, dtype=np.int64), np.asarray(ev, dtype=np.int64)
    ew = np.asarray(ew, dtype=np.float64)
    n, L = gain.shape
    red_gain, fixed, active = _dominance(gain, allowed, eu, ev, ew, reward)
    stats = {"nodes": n, "fixed_by_dominance": int((fixed >= 0).sum()), "fixed_by_kovtun": 0,
             "trivial_components": 0, "solved_trivially": 0, "lp_components": 0, "solved_by_lp": 0,
             "mip_components": 0, "anytime_components": 0, "solved_by_anytime": 0, "inexact_nodes": 0,
             "largest_solved_component": 0, "seconds_dominance": 0.0, "seconds_kovtun": 0.0,
             "seconds_lp": 0.0, "seconds_anytime": 0.0}
    stats["seconds_dominance"] = _now() - t_start
    slack_total = 0.0
    if kovtun and reward.any() and (fixed < 0).any():
        t0 = _now()
        before = int((fixed >= 0).sum())
        # at most 30 % of the time left: on weak evidence Kovtun fixes few nodes
        kdl = None if deadline is None else t0 + 0.3 * max(0.0, deadline - t0)
        active, slack_total = _kovtun(red_gain, allowed, eu, ev, ew, reward, fixed, active, deadline=kdl)
        stats["fixed_by_kovtun"] = int((fixed >= 0).sum()) - before
        t1 = _now()
        stats["seconds_kovtun"] = t1 - t0
        red_gain, fixed, active = _dominance(red_gain, allowed, eu, ev, ew, reward, fixed=fixed, active=active)
        stats["fixed_by_dominance"] = int((fixed >= 0).sum()) - stats["fixed_by_kovtun"]
        stats["seconds_dominance"] += _now() - t1
    labels = fixed.copy()
    free = np.flatnonzero(fixed < 0)
    exact = np.ones(n, dtype=bool)
    if free.size:
        local = np.full(n, -1, dtype=np.int64)
        local[free] = np.arange(free.size)
        au, av, aw = local[eu[active]], local[ev[active]], ew[active]
        nf = free.size
        G = sp.coo_matrix((np.ones(au.size), (au, av)), shape=(nf, nf))
        n_comp, comp = connected_components(G, directed=False)
        fg = np.where(allowed[free], red_gain[free], -np.inf)
        best = np.argmax(fg, axis=1)
        bad = (best[au] != best[av]) | ~reward[best[au]]
        hard = np.bincount(comp[au[bad]], minlength=n_comp) > 0
        easy_nodes = ~hard[comp]
        labels[free[easy_nodes]] = best[easy_nodes]
        stats["trivial_components"] = int((~hard).sum())
        stats["solved_trivially"] = int(easy_nodes.sum())
        sizes = np.bincount(comp, minlength=n_comp)
        big_ids = np.flatnonzero(hard & (sizes > anytime_nodes))
        hard_ids = np.flatnonzero(hard & (sizes <= anytime_nodes))
        if hard.any():
            stats["largest_solved_component"] = int(sizes[hard].max())
        # ---- the other components: LP (+ MIP), exact
        if hard_ids.size:
            t0 = _now()
            # first (they are exact and usually quick), with a share of the time when giants wait
            dl_small = deadline
            if deadline is not None and big_ids.size:
                frac = float(sizes[hard_ids].sum()) / float(sizes[hard_ids].sum() + sizes[big_ids].sum())
                dl_small = t0 + max(0.0, deadline - t0) * max(0.3, frac)
            nvars = np.bincount(comp, weights=allowed[free].sum(1), minlength=n_comp)
            # chunks of whole components, about chunk_vars x-variables each
            cum = np.cumsum(nvars[hard_ids])
            chunk_of = (cum - 1) // chunk_vars
            _, chunk_of = np.unique(chunk_of, return_inverse=True)
            n_chunks = int(chunk_of.max()) + 1
            comp_chunk = np.full(n_comp, -1, dtype=np.int64)
            comp_chunk[hard_ids] = chunk_of
            comp_local = np.full(n_comp, -1, dtype=np.int64)
            for ch in range(n_chunks):
                ids = hard_ids[chunk_of == ch]
                comp_local[ids] = np.arange(ids.size)
            node_chunk = comp_chunk[comp]
            order = np.argsort(node_chunk, kind="stable")
            bounds = np.searchsorted(node_chunk[order], np.arange(n_chunks + 1))
            echunk = node_chunk[au]
            eorder = np.argsort(echunk, kind="stable")
            ebounds = np.searchsorted(echunk[eorder], np.arange(n_chunks + 1))
            tasks = []
            for ch in range(n_chunks):
                nodes = order[bounds[ch]:bounds[ch + 1]]
                es = eorder[ebounds[ch]:ebounds[ch + 1]]
                loc = np.full(nf, -1, dtype=np.int64)
                loc[nodes] = np.arange(nodes.size)
                n_c = int((chunk_of == ch).sum())
                tasks.append((nodes, (red_gain[free[nodes]], allowed[free[nodes]], loc[au[es]], loc[av[es]], aw[es],
                                      reward, comp_local[comp[nodes]], n_c, time_limit, dl_small)))
            results = _run(tasks, workers, progress)
            for (nodes, args), (lab, slack, ex, n_mip) in zip(tasks, results):
                labels[free[nodes]] = lab
                exact[free[nodes]] = ex[args[6]]
                slack_total += float(slack.sum())
                stats["lp_components"] += int(args[7])
                stats["solved_by_lp"] += int(nodes.size)
                stats["mip_components"] += int(n_mip)
            stats["seconds_lp"] += _now() - t0
        # ---- giant components: anytime first, the LP with what time is left
        if big_ids.size:
            t0 = _now()
            from . import anytime

            ecomp = comp[au]
            share_total = float(sizes[big_ids].sum())
            for c in big_ids[np.argsort(-sizes[big_ids])]:
                nodes = np.flatnonzero(comp == c)
                loc = np.full(nf, -1, dtype=np.int64)
                loc[nodes] = np.arange(nodes.size)
                es = np.flatnonzero(ecomp == c)
                args = (red_gain[free[nodes]], allowed[free[nodes]], loc[au[es]], loc[av[es]], aw[es], reward)
                if deadline is None:
                    dl = _now() + max(time_limit, 1.0)
                else:
                    dl = _now() + max(0.0, deadline - _now()) * float(sizes[c]) / share_total
                share_total -= float(sizes[c])
                lab, val, ub, _ = anytime.solve_component(*args, dl)
                stats["anytime_components"] += 1
                stats["solved_by_anytime"] += int(nodes.size)
                closed = ub - val <= 1e-9 * max(1.0, abs(val))
                left = (deadline - _now()) if deadline is not None else time_limit
                nvars = int(args[1].sum()) + int(es.size) * 2
                if not closed and left > 2e-5 * nvars:     # building the LP alone takes about this long
                    t_lp = _now()
                    prog = build_program(*args)
                    z = solve_lp(prog, left - (_now() - t_lp))
                    if z is not None:
                        lp_ub = -float(prog["c"] @ z)
                        zl = _labels_from_x(prog, z, nodes.size)
                        zv = objective(zl, *args[:1], *args[2:])
                        if zv > val:
                            lab, val = zl, zv
                        ub = min(ub, lp_ub + 1e-9 * max(1.0, abs(lp_ub)))
                        closed = ub - val <= 1e-9 * max(1.0, abs(val))
                    stats["seconds_lp"] += _now() - t_lp
                labels[free[nodes]] = lab
                exact[free[nodes]] = closed
                if not closed:
                    slack_total += max(0.0, ub - val)
            stats["seconds_anytime"] = _now() - t0 - stats["seconds_lp"]
    stats["inexact_nodes"] = int((~exact).sum())
    value = objective(labels, gain, eu, ev, ew, reward)
    return Solution(labels=labels, value=value, bound=value + slack_total, exact=exact, stats=stats)


def _solve_task(args):
    return solve_chunk(*args)


def _run(tasks, workers, progress):
    """Solve the chunks, in ``workers`` processes when there are several of both
    (:func:`wstools.parallel.worker_map`: a dead worker is the error every command gives)."""
    from ..parallel import worker_map

    n = workers if workers and workers > 1 and len(tasks) > 1 else 0
    out = []
    with worker_map(_solve_task, (args for _, args in tasks), n) as results:
        for res in results:
            out.append(res)
            if progress is not None:
                progress(1)
    return out


def solve_with_count(gain, allowed, eu, ev, ew, reward, count_mask, m, *, time_limit: float = 60.0):
    """Maximise F with #{v : l_v in count_mask} == m over all given nodes jointly (no decomposition).

    Returns ``(labels or None, optimal, upper bound)``: the LP first; the MIP (OR-Tools) when fractional.
    """
    gain = np.asarray(gain, dtype=np.float64)
    n = gain.shape[0]
    prog = build_program(gain, allowed, eu, ev, ew, reward, count=(count_mask, m))
    t0 = _now()
    z = solve_lp(prog, time_limit)
    if z is None:
        return None, False, np.inf
    time_limit = max(0.05, time_limit - (_now() - t0))
    lp_ub = -float(prog["c"] @ z)
    nx = prog["n_x"]
    if np.all(np.abs(z[:nx] - np.round(z[:nx])) <= INTEGRAL_TOL):
        return _labels_from_x(prog, z, n), True, lp_ub
    zc, optimal, bound = solve_mip(prog, time_limit)
    if zc is None:
        return None, False, lp_ub
    return _labels_from_x(prog, zc, n), optimal, min(lp_ub, -bound)
