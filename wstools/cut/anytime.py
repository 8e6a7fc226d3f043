"""An anytime solver for one large component: a strong labelling fast, a certified bound at every step.

Problem: the engine's (see :mod:`.engine`) maximise F(l) = sum_v g[v, l_v] + sum_e w_e [l_u = l_v rewarded],
w_e >= 0, l_v in allowed(v). On a giant component with weak evidence (Kovtun fixes nothing) the LP
relaxation is too slow to build and solve in a user's time budget. Here, instead:

* **Primal: alpha-expansion** (Boykov, Veksler, Zabih, "Fast approximate energy minimization via
  graph cuts", PAMI 2001), started from the per-node best label (the attention argmax) and from the
  dual's beliefs. One move lets every node that allows alpha switch to alpha; its energy
  (= -F) is submodular for this pairwise term (E00 + E11 <= E01 + E10 = 0), so one s-t min cut
  (PyMaxflow, Boykov-Kolmogorov) finds the best move. F never decreases.
* **Bound: the dual of the local-polytope LP** (for the Potts model the relaxation LIID Eq. 11
  cites), as a reparametrisation: messages lambda on every (edge, endpoint, label) shift mass
  between the edge terms and the node terms, and for *any* lambda

      max F <= sum_v max_l [g_v(l) + sum_{e at v} lambda_{e,v}(l)]
             + sum_e max_{a,b} [w_e [a = b rewarded] - lambda_{e,u}(a) - lambda_{e,v}(b)],

  so the bound is valid after every iteration, whatever the iteration does. lambda is improved by
  block-coordinate descent: MPLP star updates (Globerson & Jaakkola, NIPS 2007; Sontag et al.) on
  all nodes of one colour class at once (colour classes are independent sets, so the updates
  do not interact and the bound never increases). Labels are stored in *slots* (a node's allowed
  labels only: 2-4 of 21 for tag-restricted graphs), which keeps every array at (edges, slots).

The gap bound - F is certified up to float rounding, for which a margin of 64 machine epsilons of
the summed magnitudes is added to the bound.
"""

from __future__ import annotations

import time

import numpy as np

EPS_MARGIN = 64 * np.finfo(np.float64).eps


def _now():
    return time.monotonic()


# ---------------------------------------------------------------------------- slots

def make_slots(allowed):
    """(n, S) int64 label of each slot (-1 = empty), S = max allowed labels per node."""
    n, L = allowed.shape
    cnt = allowed.sum(1)
    S = max(1, int(cnt.max(initial=1)))
    order = np.argsort(~allowed, axis=1, kind="stable")[:, :S]
    lab = np.where(np.arange(S)[None, :] < cnt[:, None], order, -1).astype(np.int64)
    return lab


def _match(lab, a, b, reward):
    """(len(a), S): slot of node b holding the (rewarded) label of a's slot s, else -1."""
    S = lab.shape[1]
    la, lb = lab[a], lab[b]
    out = np.full(la.shape, -1, dtype=np.int64)
    ok_a = (la >= 0) & reward[np.maximum(la, 0)]
    for t in range(S):
        hit = ok_a & (la == lb[:, t:t + 1])
        out[hit] = t
    return out


# ---------------------------------------------------------------------------- colouring

def colour_classes(n, eu, ev, seed=0):
    """Independent sets covering all nodes (Jones-Plassmann with random priorities), as arrays."""
    rng = np.random.default_rng(seed)
    prio = rng.permutation(n)
    left = np.ones(n, dtype=bool)
    loop = eu == ev                    # a self loop would block its node forever
    au, av = eu[~loop], ev[~loop]
    classes = []
    while left.any():
        keep = left[au] & left[av]
        au, av = au[keep], av[keep]
        blocked = np.zeros(n, dtype=bool)
        lo = np.where(prio[au] < prio[av], au, av)
        blocked[lo] = True
        pick = left & ~blocked
        classes.append(np.flatnonzero(pick))
        left &= ~pick
    return classes


# ---------------------------------------------------------------------------- dual

class PottsDual:
    """Messages of the local-polytope dual (module docstring) in half-edge layout.

    Half-edge h in 0..2E-1: h < E is edge h seen from eu[h], h >= E edge h-E seen from ev[h-E];
    ``msg[h, s]`` = lambda at the half-edge's node, slot s.
    """

    def __init__(self, gain, allowed, eu, ev, ew, reward, seed=0):
        n = gain.shape[0]
        self.n, self.E = n, eu.size
        self.lab = make_slots(allowed)
        self.valid = self.lab >= 0
        self.G = np.where(self.valid, gain[np.arange(n)[:, None], np.maximum(self.lab, 0)], -np.inf)
        self.node = np.concatenate([eu, ev])
        self.partner = np.concatenate([np.arange(self.E, 2 * self.E), np.arange(self.E)])
        self.w = np.concatenate([ew, ew])
        self.match = np.concatenate([_match(self.lab, eu, ev, reward), _match(self.lab, ev, eu, reward)])
        self.msg = np.zeros((2 * self.E, self.lab.shape[1]))
        self.hvalid = self.valid[self.node]
        self.deg = np.bincount(self.node, minlength=n)
        order = np.argsort(self.node, kind="stable")
        self.half_order = order
        self.colours = []
        starts = np.searchsorted(self.node[order], np.arange(n + 1))
        for cls in colour_classes(n, eu, ev, seed):
            cls = cls[self.deg[cls] > 0]
            if cls.size == 0:
                continue
            halves = order[np.repeat(starts[cls], self.deg[cls]) + _ranges(self.deg[cls])]
            # halves grouped by node, in the order of cls; seg = first half of each node
            seg = np.concatenate([[0], np.cumsum(self.deg[cls])[:-1]])
            self.colours.append((cls, halves, np.repeat(np.arange(cls.size), self.deg[cls]), seg,
                                 self.hvalid[halves], self._plan(halves)))
        self.scale = float(np.abs(np.where(self.valid, self.G, 0)).max(1).sum() + 2 * ew.sum())

    def _plan(self, h):
        """Index arrays of :meth:`_maxmarg` for the half-edges h, computed once."""
        S = self.lab.shape[1]
        p = self.partner[h]
        mt = self.match[h]
        r, c = np.nonzero(mt >= 0)
        return p, ~self.hvalid[p], r * S + c, p[r] * S + mt[r, c], self.w[h][r]

    def _maxmarg_planned(self, plan):
        p, pinv, pos, src, wv = plan
        neg = -self.msg[p]
        neg[pinv] = -np.inf
        m = np.empty_like(neg)
        m[:] = neg.max(1)[:, None]
        mf = m.reshape(-1)
        mf[pos] = np.maximum(mf[pos], wv - self.msg.reshape(-1)[src])
        return m

    def _maxmarg(self, h):
        """(len(h), S) max-marginal of each half-edge's edge term at its node, excluding its own message."""
        p = self.partner[h]
        neg = np.where(self.hvalid[p], -self.msg[p], -np.inf)
        m = np.broadcast_to(neg.max(1, keepdims=True), neg.shape).copy()
        mt = self.match[h]
        hit = mt >= 0
        rows = np.nonzero(hit)[0]
        agree = self.w[h][rows] - self.msg[p[rows], mt[hit]]
        m[hit] = np.maximum(m[hit], agree)
        return m

    def sweep(self):
        """One pass of star updates over all colour classes (never increases the bound)."""
        with np.errstate(invalid="ignore"):
            for cls, halves, owner, seg, hv, plan in self.colours:
                m = self._maxmarg_planned(plan)
                m[~hv] = 0.0
                total = self.G[cls] + np.add.reduceat(m, seg, axis=0)
                total /= (self.deg[cls] + 1.0)[:, None]
                m -= total[owner]
                m[~hv] = 0.0
                self.msg[halves] = m

    def node_terms(self):
        N = self.G.copy()
        o = self.half_order
        nz = np.flatnonzero(self.deg > 0)
        if nz.size:
            starts = np.concatenate([[0], np.cumsum(self.deg[nz])[:-1]])
            N[nz] += np.add.reduceat(self.msg[o], starts, axis=0)
        return N

    def bound(self):
        """(certified upper bound on max F (module docstring) for the current messages, the labels of
        the node terms' argmax)."""
        N = self.node_terms()
        nb = np.where(self.valid, N, -np.inf).max(1)
        E = self.E
        negu = np.where(self.hvalid[:E], -self.msg[:E], -np.inf)
        negv = np.where(self.hvalid[E:], -self.msg[E:], -np.inf)
        split = negu.max(1) + negv.max(1)
        mt = self.match[:E]
        hit = mt >= 0
        rows, cols = np.nonzero(hit)
        agree = np.full(negu.shape, -np.inf)
        agree[rows, cols] = self.w[:E][rows] + negu[rows, cols] + negv[rows, mt[rows, cols]]
        ev_ = np.maximum(split, agree.max(1))
        mag = float(np.abs(nb).sum() + np.abs(ev_).sum()) + self.scale
        dec = self.lab[np.arange(self.n), np.argmax(np.where(self.valid, N, -np.inf), axis=1)]
        return float(nb.sum() + ev_.sum()) + EPS_MARGIN * mag, dec


def _ranges(counts):
    """concatenate(arange(c) for c in counts), vectorised."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


# ---------------------------------------------------------------------------- primal

def objective(labels, gain, eu, ev, ew, reward):
    n = labels.shape[0]
    same = (labels[eu] == labels[ev]) & reward[labels[eu]]
    return float(gain[np.arange(n), labels].sum() + ew[same].sum())


def expansion(labels, gain, allowed, eu, ev, ew, reward, deadline, max_cycles: int = 10):
    """Alpha-expansion from ``labels`` until no move improves F, ``max_cycles`` passes or ``deadline``.

    Returns (labels, F(labels), number of moves accepted)."""
    import maxflow

    n, L = gain.shape
    labels = labels.copy()
    val = objective(labels, gain, eu, ev, ew, reward)
    idx = np.arange(n)
    moves = 0
    for _ in range(max_cycles):
        improved = False
        for a in range(L):
            if _now() > deadline:
                return labels, val, moves
            free = allowed[:, a] & (labels != a)
            nf = int(free.sum())
            if nf == 0:
                continue
            loc = np.full(n, -1, dtype=np.int64)
            loc[free] = np.arange(nf)
            x = labels
            keep = -gain[idx[free], x[free]]
            to_a = -gain[free, a].copy()
            keep = keep.copy()
            ra = bool(reward[a])
            fu, fv = free[eu], free[ev]
            both = fu & fv
            # one end fixed: fold into the free end's unary
            for s, t, sel in ((eu, ev, fv & ~fu), (ev, eu, fu & ~fv)):
                fl = x[s[sel]]
                tv = t[sel]
                same_keep = (x[tv] == fl) & reward[fl]
                np.add.at(keep, loc[tv], -ew[sel] * same_keep)
                if ra:
                    np.add.at(to_a, loc[tv], -ew[sel] * (fl == a))
            bu, bv, bw = eu[both], ev[both], ew[both]
            A = -bw * ((x[bu] == x[bv]) & reward[x[bu]])
            D = -bw * ra
            # E = A + (-A) y_u + D y_v + (-A - D)(1 - y_u) y_v ;  y = 1: take a (sink side)
            np.add.at(to_a, loc[bu], -A)
            np.add.at(to_a, loc[bv], D)
            const_shift = np.minimum(keep, to_a)
            g = maxflow.Graph[float](nf, int(both.sum()))
            nodes = g.add_nodes(nf)
            g.add_grid_tedges(nodes, to_a - const_shift, keep - const_shift)
            cap = -A - D
            if cap.size:
                g.add_edges(loc[bu], loc[bv], cap, np.zeros_like(cap))
            g.maxflow()
            take = g.get_grid_segments(nodes)
            if not take.any():
                continue
            new = labels.copy()
            new[np.flatnonzero(free)[take]] = a
            nv = objective(new, gain, eu, ev, ew, reward)
            if nv > val + 1e-12 * max(1.0, abs(val)):
                labels, val = new, nv
                moves += 1
                improved = True
        if not improved:
            break
    return labels, val, moves


def solve_component(gain, allowed, eu, ev, ew, reward, deadline, *, tol: float = 1e-9, start=None, seed=0):
    """Best labelling and certified bound of one problem (module docstring) by ``deadline`` (monotonic s).

    Shapes as :func:`wstools.cut.engine.solve`. Order: alpha-expansion from the per-node best label
    (``start`` if given); dual sweeps, the bound (and the labelling of the node terms' argmax, kept
    when better) every second sweep, until the gap is below ``tol`` (relative), the dual stalls or the
    next sweep would pass the deadline; with time left, alpha-expansion from the best labelling.
    Returns (labels, value, bound, stats) with stats ``sweeps``, ``moves``, ``seconds_primal``,
    ``seconds_dual``.
    """
    gain = np.asarray(gain, dtype=np.float64)
    g = np.where(allowed, gain, -np.inf)
    t0 = _now()
    first = np.argmax(g, axis=1) if start is None else start
    # at most 35 % of the time for the first expansion: the bound needs the dual's sweeps
    labels, val, moves = expansion(first, gain, allowed, eu, ev, ew, reward, t0 + 0.35 * max(0.0, deadline - t0))
    t1 = _now()
    stats = {"moves": moves, "sweeps": 0, "seconds_primal": t1 - t0}
    dual = PottsDual(gain, allowed, eu, ev, ew, reward, seed=seed)
    best_bound, dec = dual.bound()
    history = [best_bound]
    per_sweep = 0.0
    from_dual = False

    def closed():
        return best_bound - val <= tol * max(1.0, abs(val))

    while not closed():
        ts = _now()
        if ts + 1.5 * per_sweep > deadline:
            break
        dual.sweep()
        stats["sweeps"] += 1
        if stats["sweeps"] % 2 == 0 or _now() + 2.5 * (_now() - ts) > deadline:
            b, dec = dual.bound()
            best_bound = min(best_bound, b)
            history.append(best_bound)
            cv = objective(dec, gain, eu, ev, ew, reward)
            if cv > val:
                labels, val, from_dual = dec, cv, True
            if len(history) > 10 and history[-11] - best_bound <= 1e-10 * max(1.0, abs(val)):
                break                      # stalled
        per_sweep = max(per_sweep * 0.5, _now() - ts)
    if from_dual and not closed() and _now() < deadline:
        labels, val, m2 = expansion(labels, gain, allowed, eu, ev, ew, reward, deadline, max_cycles=3)
        stats["moves"] += m2
    stats["seconds_dual"] = _now() - t1
    return labels, val, max(best_bound, val), stats
