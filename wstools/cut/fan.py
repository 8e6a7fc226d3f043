"""Fan et al. (ECCV 2018) graph partitioning with attention and noise rejection, Eq. 8, solved globally.

Exact formulation. x_{v,l} in {0,1} for proposal v and object label l in 1..K
(the allowed tags of v's image); label 0 in ``labels`` means "not kept"
(all x_{v,.} = 0: rejected as noise). With W the symmetric kNN weight matrix
of Eq. 5 (cos + 1, zero diagonal, one CSR entry per direction) and p_{v,l} the
attention probabilities (the graph's ``unary`` columns 1..K)::

    maximise   sum_{l=1..K} ( x_l^T W x_l + beta * p_l^T x_l )
             = sum_{(u,v) in E} 2 W_uv [l_u == l_v != 0] + beta * sum_v p_{v, l_v} [l_v != 0]
    s.t.       sum_l x_{v,l} <= 1,   x_{v,l} = 0 unless l is a tag of v's image,
               sum_{v,l} x_{v,l} = floor(r n)                                    (Eq. 8)

(x_l^T W x_l counts each undirected edge twice, hence the 2.) r = 1 is Eq. 7.
If fewer than floor(r n) proposals have a tag at all, all of those are kept.

The count constraint couples the components. It is relaxed with a Lagrange
multiplier lambda (a price per kept proposal): for fixed lambda the problem
separates over components and each is solved exactly (:mod:`.engine`).
L(lambda) = max_x [F(x) - lambda (|x| - m)] bounds the optimum from above for
every lambda. A 1-D cutting plane on lambda (the price where the Lagrangians of
the two ends meet, a bisection step when that leaves the bracket) narrows the
bracket [lo, hi] with |x(lo)| >= m >= |x(hi)|; a component whose optimum is the same at both ends is
optimal for every lambda between them (its value is linear in lambda) and is
not solved again. When the counts meet exactly the solution is optimal (gap 0).
At the dual minimum both ends are optimal for the same lambda, and so is every
choice per component of the low- or high-price labelling: a subset sum picks one
with exactly m kept, which is optimal (gap 0 up to the solves' certified slack).
Otherwise the components that still differ are solved jointly with the exact
count as one integer program (LP first, then OR-Tools), the others fixed, and
the reported gap is against the best L(lambda).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from . import engine
from .multiway import CutResult, component_summary, components, relative_gap, upper_edges


def fan_objective(labels, prob, eu, ev, ew, beta) -> float:
    """The Eq. 8 objective (module docstring) of ``labels`` (0 = not kept); ew one per undirected edge."""
    labels = np.asarray(labels)
    p = np.asarray(prob, dtype=np.float64)
    kept = labels > 0
    val = beta * float(p[np.arange(labels.size), labels][kept].sum())
    same = (labels[eu] == labels[ev]) & (labels[eu] > 0)
    return val + 2.0 * float(np.asarray(ew, dtype=np.float64)[same].sum())


def _sub(nodes, local, gain, allowed, eu, ev, ew, ecomp, comp_mask):
    es = np.flatnonzero(comp_mask[ecomp])
    return gain[nodes], allowed[nodes], local[eu[es]], local[ev[es]], ew[es], es


def fan_partition(indptr, indices, weights, prob, allowed, *, beta: float = 30.0, retention: float = 0.9,
                  time_limit: float = 60.0, workers: int = 0, max_iter: int = 100, progress=None,
                  deadline: float | None = None, exact_nodes: int = 20000) -> CutResult:
    """Solve Eq. 8 (module docstring). Shapes: CSR of the symmetric kNN graph (weights W of Eq. 5),
    prob/allowed (M, K+1) with column 0 = background (not used by Eq. 8: 0 means "not kept").

    ``objective`` = Eq. 8 value, ``bound`` = proven upper bound (min over lambda of L(lambda), or the
    exact integer program's). ``stats`` has kept, target, lambda, iterations, seconds per phase.
    ``time_limit``: seconds per integer program; ``deadline`` (``time.monotonic()`` seconds): the
    whole solve stops by then with the best labelling and its certified gap. When the Lagrangian
    and the repairs leave a gap and the graph has at most ``exact_nodes`` proposals, the coupled
    problem (all proposals, the exact count, the quadratic terms linearised over the kNN edges:
    y_uv^l <= x_u^l, y_uv^l <= x_v^l) is solved as one integer program (OR-Tools SCIP) within
    the time left, which closes the gap.
    """
    import time

    t_start = time.monotonic()

    def left():
        return time_limit if deadline is None else max(0.0, min(time_limit, deadline - time.monotonic()))

    if not (0.0 < retention <= 1.0) or not math.isfinite(retention):
        raise InputError(f"retention ratio r = {retention} must be in (0, 1] (Fan et al. Eq. 8)")
    prob = np.asarray(prob, dtype=np.float64)
    allowed = np.asarray(allowed, dtype=bool).copy()
    allowed[:, 0] = True                      # any proposal may be rejected
    M, L = prob.shape
    eu, ev, w = upper_edges(indptr, indices, weights)
    ew = 2.0 * w
    reward = np.ones(L, dtype=bool)
    reward[0] = False
    eligible = allowed[:, 1:].any(axis=1)
    target = int(math.floor(retention * M + 1e-9))
    m = min(target, int(eligible.sum()))
    base = np.where(allowed, beta * prob, -np.inf)
    base[:, 0] = 0.0
    count_mask = reward

    n_comp, comp = components(M, eu, ev)
    ecomp = comp[eu]
    order = np.argsort(comp, kind="stable")
    starts = np.searchsorted(comp[order], np.arange(n_comp + 1))

    def gain_at(lam):
        g = base.copy()
        g[:, 1:] -= lam
        return g

    def solve_at(lam, comp_mask):
        """Exact optimum at lam of the components in comp_mask: labels of their nodes, slack, exact nodes."""
        nodes = order[np.concatenate([np.arange(starts[c], starts[c + 1]) for c in np.flatnonzero(comp_mask)])] \
            if comp_mask.any() else np.zeros(0, dtype=np.int64)
        local = np.full(M, -1, dtype=np.int64)
        local[nodes] = np.arange(nodes.size)
        g, a, su, sv, sw, _ = _sub(nodes, local, gain_at(lam), allowed, eu, ev, ew, ecomp, comp_mask)
        sol = engine.solve(g, a, su, sv, sw, reward, time_limit=time_limit, workers=workers, deadline=deadline)
        return nodes, sol

    hi_lam = float(np.max(beta * prob[:, 1:].max(initial=0.0, axis=1) +
                          np.bincount(eu, ew, M) + np.bincount(ev, ew, M), initial=0.0)) + 1.0
    lo_lam = -1.0
    all_c = np.ones(n_comp, dtype=bool)
    labels_lo = np.zeros(M, dtype=np.int64)
    exact_lo = np.ones(M, dtype=bool)
    nodes, sol = solve_at(lo_lam, all_c)
    labels_lo[nodes] = sol.labels
    exact_lo[nodes] = sol.exact
    slack_lo = sol.bound - sol.value
    labels_hi = np.zeros(M, dtype=np.int64)       # at hi_lam nobody is kept (price above any gain)
    exact_hi = np.ones(M, dtype=bool)

    def lagrangian(lam, labels, slack):
        kept = labels > 0
        return fan_objective(labels, prob, eu, ev, w, beta) - lam * (kept.sum() - m) + slack

    best_bound = lagrangian(lo_lam, labels_lo, slack_lo)
    stats = {"target": target, "eligible": int(eligible.sum()), "iterations": 0, "repair_nodes": 0}
    final = None
    if (labels_lo > 0).sum() == m:
        final, final_exact, lam = labels_lo, exact_lo, lo_lam
    elif m == 0:
        final, final_exact, lam = labels_hi, exact_hi, hi_lam
        best_bound = min(best_bound, lagrangian(hi_lam, labels_hi, 0.0))
    else:
        lam = lo_lam
        for it in range(max_iter):
            if deadline is not None and time.monotonic() > deadline:
                break
            stats["iterations"] = it + 1
            node_diff = (labels_lo != labels_hi) | ~exact_lo | ~exact_hi
            open_c = np.bincount(comp[node_diff], minlength=n_comp) > 0
            if not open_c.any():
                break
            # the price where the Lagrangians of both ends meet (1-D cutting plane; finite for the
            # piecewise linear dual), the midpoint when it falls outside the bracket
            f_lo, k_lo = fan_objective(labels_lo, prob, eu, ev, w, beta), int((labels_lo > 0).sum())
            f_hi, k_hi = fan_objective(labels_hi, prob, eu, ev, w, beta), int((labels_hi > 0).sum())
            lam = (f_lo - f_hi) / (k_lo - k_hi) if k_lo > k_hi else lo_lam
            if not (lo_lam < lam < hi_lam):
                lam = 0.5 * (lo_lam + hi_lam)
            meet = max(f_lo - lam * (k_lo - m), f_hi - lam * (k_hi - m))
            nodes, sol = solve_at(lam, open_c)
            labels_mid = labels_lo.copy()           # settled components: same at both ends, optimal at lam
            labels_mid[nodes] = sol.labels
            exact_mid = exact_lo & exact_hi
            exact_mid[nodes] = sol.exact
            slack_mid = sol.bound - sol.value
            l_mid = lagrangian(lam, labels_mid, slack_mid)
            best_bound = min(best_bound, l_mid)
            if progress is not None:
                progress(1)
            kept = int((labels_mid > 0).sum())
            if kept == m:
                final, final_exact = labels_mid, exact_mid
                break
            if kept > m:
                lo_lam, labels_lo, exact_lo = lam, labels_mid, exact_mid
            else:
                hi_lam, labels_hi, exact_hi = lam, labels_mid, exact_mid
            if l_mid <= meet + 1e-12 * max(1.0, abs(meet)):
                break       # both ends optimal at lam: lam minimises the dual
            if hi_lam - lo_lam <= 1e-12 * max(1.0, abs(hi_lam)):
                break
        if final is None:
            mix = _mix(labels_lo, labels_hi, comp, n_comp, m)
            if mix is not None:
                stats["mixed_components"] = int(mix[1])
                mix_val = fan_objective(mix[0], prob, eu, ev, w, beta)
                if relative_gap(mix_val, max(best_bound, mix_val)) <= 1e-9:
                    final, final_exact = mix[0], exact_lo & exact_hi
        if final is None:
            final, final_exact = _local_repair(labels_lo, labels_hi, exact_lo & exact_hi, allowed, base, eu, ev, ew,
                                               reward, count_mask, m, left(), stats, best_bound,
                                               lambda lab: fan_objective(lab, prob, eu, ev, w, beta))
        if final is None:
            final, final_exact = _repair(labels_lo, labels_hi, exact_lo & exact_hi, comp, n_comp, order, starts,
                                         allowed, base, eu, ev, ew, ecomp, reward, count_mask, m, left(), stats)
    stats["seconds_lagrangian"] = time.monotonic() - t_start
    value = fan_objective(final, prob, eu, ev, w, beta)
    bound = max(best_bound, value)
    stats["exact_mip"] = False
    if relative_gap(value, bound) > 1e-9 and M <= exact_nodes and left() > 0:
        t0 = time.monotonic()
        lab, optimal, ub = engine.solve_with_count(base, allowed, eu, ev, ew, reward, count_mask, m,
                                                   time_limit=left())
        stats["exact_mip"] = True
        stats["seconds_exact_mip"] = time.monotonic() - t0
        if lab is not None:
            lv = fan_objective(lab, prob, eu, ev, w, beta)
            if (lab > 0).sum() == m and lv >= value:
                final, value = lab, lv
            if optimal:
                final_exact = np.ones(M, dtype=bool)
                bound = value
            else:
                bound = max(value, min(bound, ub))
    if relative_gap(value, bound) <= 1e-9:      # the Lagrangian bound proves the whole labelling optimal
        final_exact = np.ones(M, dtype=bool)
    sizes, ex = component_summary(comp, n_comp, final_exact)
    stats.update(kept=int((final > 0).sum()), lam=float(lam), components=int(n_comp))
    return CutResult(labels=final, objective=value, bound=bound, gap=relative_gap(value, bound),
                     component_sizes=sizes, component_exact=ex, stats=stats)


def _mix(labels_lo, labels_hi, comp, n_comp, m):
    """Per component the low- or the high-price labelling, with exactly m kept in total (subset sum).

    When both ends are optimal at the same price (the dual minimum), every such mixture is a
    Lagrangian optimum, so one with exactly m kept is optimal for Eq. 8 (complementary slackness).
    Returns (labels, number of components taken from the low end) or None when no subset hits m.
    """
    k_lo = np.bincount(comp, weights=labels_lo > 0, minlength=n_comp).astype(np.int64)
    k_hi = np.bincount(comp, weights=labels_hi > 0, minlength=n_comp).astype(np.int64)
    d = k_lo - k_hi
    target = m - int(k_hi.sum())
    items = np.flatnonzero(d > 0)
    if target < 0 or target > int(d[items].sum()):
        return None
    mask = (1 << (target + 1)) - 1
    reach = [1]
    for c in items:
        reach.append((reach[-1] | (reach[-1] << int(d[c]))) & mask)
    if not (reach[-1] >> target) & 1:
        return None
    take = np.zeros(n_comp, dtype=bool)
    t = target
    for j in range(len(items) - 1, -1, -1):      # backtrack: take item j when t is unreachable without it
        if not (reach[j] >> t) & 1:
            take[items[j]] = True
            t -= int(d[items[j]])
    out = np.where(take[comp], labels_lo, labels_hi)
    return out, int(take.sum())


def _local_repair(labels_lo, labels_hi, exact_both, allowed, base, eu, ev, ew, reward, count_mask, m, time_limit,
                  stats, bound, objective, max_nodes: int = 20000):
    """Re-solve, with the exact count, only the nodes where the two ends differ plus their neighbourhoods
    (1, 2, 4, ... hops), every other node fixed at the common labelling (its edges folded into gains).

    A restricted problem, so not exact by itself; it returns as soon as the labelling's value meets
    the Lagrangian ``bound`` (relative 1e-9: then it is proven optimal), else the best found, or
    None when even the smallest neighbourhood exceeds ``max_nodes``.
    """
    M = labels_lo.size
    A = engine.sp.coo_matrix((np.ones(eu.size), (eu, ev)), shape=(M, M)).tocsr()
    A = A + A.T
    region = labels_lo != labels_hi
    best, best_val = None, -np.inf
    for hops in (1, 2, 4, 8):
        for _ in range(hops - (hops // 2 if hops > 1 else 0)):
            region = region | (A @ region.astype(np.float64) > 0)
        if region.sum() > max_nodes:
            break
        nodes = np.flatnonzero(region)
        local = np.full(M, -1, dtype=np.int64)
        local[nodes] = np.arange(nodes.size)
        g = base[nodes].copy()
        inside = region[eu] & region[ev]
        for a_, b_ in ((eu, ev), (ev, eu)):        # edges from fixed nodes become gains
            sel = region[b_] & ~region[a_]
            la = labels_lo[a_[sel]]
            ok = reward[la] & allowed[b_[sel], la]
            np.add.at(g, (local[b_[sel]][ok], la[ok]), ew[sel][ok])
        fixed_kept = int((labels_lo[~region] > 0).sum())
        lab, _, _ = engine.solve_with_count(g, allowed[nodes], local[eu[inside]], local[ev[inside]], ew[inside],
                                            reward, count_mask, m - fixed_kept, time_limit=time_limit)
        stats["repair_nodes"] = int(nodes.size)
        if lab is None:
            continue
        out = labels_lo.copy()
        out[nodes] = lab
        val = objective(out)
        if val > best_val:
            best, best_val = out, val
        if relative_gap(val, max(bound, val)) <= 1e-9:
            break
    if best is None:
        return None, None
    exact = exact_both.copy()
    exact[labels_lo != labels_hi] = False
    return best, exact


def _repair(labels_lo, labels_hi, exact_both, comp, n_comp, order, starts, allowed, base, eu, ev, ew, ecomp,
            reward, count_mask, m, time_limit, stats):
    """Solve the still-open components jointly with the exact count; the rest fixed."""
    M = labels_lo.size
    open_c = np.bincount(comp[labels_lo != labels_hi], minlength=n_comp) > 0
    nodes = order[np.concatenate([np.arange(starts[c], starts[c + 1]) for c in np.flatnonzero(open_c)])]
    fixed_kept = int((labels_lo[~open_c[comp]] > 0).sum())
    local = np.full(M, -1, dtype=np.int64)
    local[nodes] = np.arange(nodes.size)
    g, a, su, sv, sw, _ = _sub(nodes, local, base, allowed, eu, ev, ew, ecomp, open_c)
    stats["repair_nodes"] = int(nodes.size)
    lab, optimal, _ = engine.solve_with_count(g, a, su, sv, sw, reward, count_mask, m - fixed_kept,
                                              time_limit=time_limit)
    out = labels_lo.copy()
    exact = exact_both.copy()
    if lab is None:     # greedy: from the low-price side drop the kept nodes of least gain
        lab = labels_lo[nodes].copy()
        kept = np.flatnonzero(lab > 0)
        drop = kept[np.argsort(g[kept, lab[kept]])][: max(0, kept.size - (m - fixed_kept))]
        lab[drop] = 0
        optimal = False
    out[nodes] = lab
    exact[nodes] = optimal
    return out, exact
