"""ws cut on hard graphs: the anytime solver's bound, --time-limit, Fan's exact repair, the report."""

from __future__ import annotations

import itertools
import json
import math
import time

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_ws
from wstools.cut import anytime, engine, fan_objective, fan_partition, multiway_cut, potts_energy, report, upper_edges
from wstools.io.flat import write_features
from wstools.io.store import create_store
from wstools.toy.features import make_features

pytestmark = pytest.mark.cli

HARD = dict(tag_mix=(0.0, 0.5, 0.5), confidence=0.3, sharpness=1.0, spread=1.5, ambiguous=0.5)


@st.composite
def hard_problems(draw):
    """Small graphs with isolated nodes, tied probabilities and every retention ratio 0.3-0.8."""
    n = draw(st.integers(2, 9))
    L = draw(st.integers(2, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
    allowed = rng.random((n, L)) < 0.6
    allowed[:, 0] = True
    prob = rng.random((n, L))
    if draw(st.booleans()):                    # ties: few distinct values
        prob = np.round(prob * 2) / 2 + 0.1
    prob /= prob.sum(1, keepdims=True)
    isolated = rng.random(n) < 0.3
    W = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            if not (isolated[i] or isolated[j]) and rng.random() < 0.4:
                W[i, j] = W[j, i] = draw(st.sampled_from([0.5, 1.0])) if draw(st.booleans()) else rng.uniform(0, 2)
    return sp.csr_matrix(W), prob, allowed, draw(st.sampled_from([0.3, 0.4, 0.5, 0.6, 0.7, 0.8])), \
        draw(st.sampled_from([0.0, 1.0, 30.0]))


def _brute(allowed, score):
    best = -math.inf
    for lab in itertools.product(*[np.flatnonzero(a) for a in allowed]):
        best = max(best, score(np.array(lab)))
    return best


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hard_problems())
def test_fan_gap_zero_vs_brute_force(problem):
    """The exact integer program closes every gap: objective = brute-force optimum, gap 0."""
    C, prob, allowed, r, beta = problem
    eu, ev, ew = upper_edges(C.indptr, C.indices, C.data)
    n = prob.shape[0]
    m = min(math.floor(r * n + 1e-9), int(allowed[:, 1:].any(1).sum()))
    res = fan_partition(C.indptr, C.indices, C.data, prob, allowed, beta=beta, retention=r)
    best = _brute(allowed, lambda lab: fan_objective(lab, prob, eu, ev, ew, beta) if (lab > 0).sum() == m
                  else -math.inf)
    assert (res.labels > 0).sum() == m and allowed[np.arange(n), res.labels].all()
    assert res.objective == pytest.approx(best, abs=1e-7)
    assert res.gap <= 1e-9 and res.component_exact.all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hard_problems())
def test_multiway_gap_zero_with_isolated_nodes_and_ties(problem):
    C, prob, allowed, _, _ = problem
    eu, ev, ew = upper_edges(C.indptr, C.indices, C.data)
    res = multiway_cut(C.indptr, C.indices, C.data, prob, allowed)
    best = _brute(allowed, lambda lab: -potts_energy(lab, prob, eu, ev, ew))
    assert res.objective == pytest.approx(-best, abs=1e-7) and res.gap <= 1e-9


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10 ** 6), st.booleans())
def test_anytime_bound_is_valid_and_primal_is_feasible(seed, potts):
    """For any iteration count the dual bound is >= the optimum >= the primal value."""
    rng = np.random.default_rng(seed)
    n, L = int(rng.integers(2, 8)), int(rng.integers(2, 5))
    allowed = rng.random((n, L)) < 0.6
    allowed[:, 0] = True
    gain = np.log(rng.random((n, L)) + 1e-3)
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.4]).reshape(-1, 2)
    eu, ev = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    ew = rng.uniform(0, 2, len(pairs))
    reward = np.ones(L, dtype=bool)
    reward[0] = potts
    best = _brute(allowed, lambda lab: anytime.objective(lab, gain, eu, ev, ew, reward))
    dual = anytime.PottsDual(gain, allowed, eu, ev, ew, reward)
    for _ in range(5):
        b, dec = dual.bound()
        assert b >= best - 1e-9 and allowed[np.arange(n), dec].all()
        dual.sweep()
    lab, val, bound, _ = anytime.solve_component(gain, allowed, eu, ev, ew, reward, time.monotonic() + 5)
    assert allowed[np.arange(n), lab].all()
    assert val == pytest.approx(anytime.objective(lab, gain, eu, ev, ew, reward))
    assert val <= best + 1e-9 <= bound + 2e-9
    # the engine with the anytime path forced on every component: same guarantees
    sol = engine.solve(gain, allowed, eu, ev, ew, reward, anytime_nodes=0)
    assert sol.value <= best + 1e-9 <= sol.bound + 2e-9
    if sol.exact.all():
        assert sol.value == pytest.approx(best, abs=1e-7)


def test_expansion_finds_the_cluster_label():
    """A chain where only the joint move to label 2 pays: one alpha-expansion makes it; ICM could not."""
    gain = np.array([[0.0, 0.3, 0.0]] * 4)
    allowed = np.ones((4, 3), dtype=bool)
    eu, ev, ew = np.array([0, 1, 2]), np.array([1, 2, 3]), np.array([1.0, 1.0, 1.0])
    gain[:, 2] = 0.2
    reward = np.ones(3, dtype=bool)
    start = np.array([1, 2, 1, 2])
    lab, val, moves = anytime.expansion(start, gain, allowed, eu, ev, ew, reward, time.monotonic() + 5)
    assert (lab == 1).all() and val == pytest.approx(4 * 0.3 + 3.0) and moves >= 1


def test_deadline_is_honoured_on_a_giant_component():
    """A 6,000-node single component with weak evidence and a 1 s deadline: back within ~1 s with a
    valid bound; given time, exact."""
    rng = np.random.default_rng(0)
    n, L = 6000, 8
    prob = rng.dirichlet(np.ones(L) * 5, n)
    allowed = rng.random((n, L)) < 0.4
    allowed[:, 0] = True
    i = np.arange(n)
    pairs = np.concatenate([np.stack([i[:-1], i[1:]], 1), np.stack([i, rng.integers(0, n, n)], 1)])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    W = sp.coo_matrix((rng.uniform(0.05, 0.4, len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)).tocsr()
    W = (W + W.T).tocsr()
    t = time.monotonic()
    r = multiway_cut(W.indptr, W.indices, W.data, prob, allowed, deadline=t + 1.0)
    assert time.monotonic() - t < 2.5
    eu, ev, ew = upper_edges(W.indptr, W.indices, W.data)
    assert r.objective == pytest.approx(potts_energy(r.labels, prob, eu, ev, ew))
    assert r.bound <= r.objective and r.gap >= 0
    assert r.stats["solved_by_anytime"] > 0
    assert r.component_exact.all() == (r.gap <= 1e-9 or r.stats["inexact_nodes"] == 0)


def test_report_by_hand():
    labels = np.array([0, 1, 1, 2, 0])
    allowed = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 1], [1, 0, 1], [1, 0, 1]], dtype=bool)
    d = report.label_distribution(labels, allowed, ["a", "b"])
    assert d == {"noise": 2, "a": {"kept": 2, "noise": 1}, "b": {"kept": 1, "noise": 1}}
    assert report.reduction_fractions({"fixed_by_kovtun": 3, "solved_by_lp": 1}, 4)["kovtun"] == 0.75
    prob = np.full((5, 3), 1 / 3)
    w = report.warnings_for(np.zeros(5, dtype=int), prob, allowed, np.full(4, 5.0), method="multiway")
    assert len(w) == 1 and "noise" in w[0] and "--delta" in w[0]
    assert report.warnings_for(labels, prob, allowed, np.full(4, 5.0), method="multiway") == []
    w1 = report.warnings_for(np.ones(5, dtype=int), prob, allowed, np.full(4, 5.0), method="multiway")
    assert len(w1) == 1 and "same label 1" in w1[0]


@pytest.fixture(scope="module")
def hard_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("hard") / "features.h5"
    f = make_features(400, 5, 16, seed=3, **HARD)     # ~5,400 proposals: one component above anytime_nodes
    with create_store(path, "features", classes=f.classes, params={}) as s:
        write_features(s, image_ids=f.image_ids, image=f.image, proposal=f.proposal, box=f.box, feat=f.feat,
                       prob=f.prob, allowed=f.allowed, truth=f.truth)
    return path


def test_cli_time_limit_report_info_and_warning(tmp_path, hard_store):
    """--time-limit is honoured; summary, store and ws info carry the report; a delta far above the
    unaries makes every proposal noise (proven) and the user is told why."""
    g = tmp_path / "g.h5"
    run_ws("graph", hard_store, "-o", g, "--knn", "5", "--weights", "eq10", "--edges", "union", "--delta", "50")
    r = run_ws("cut", g, "-o", tmp_path / "a.h5", "--time-limit", "3")
    s = r.json
    assert s["seconds"]["total"] <= 3.0
    assert s["labels"]["noise"] == s["proposals"] - s["kept"]
    assert set(s["fixed"]) == {"dominance", "kovtun", "trivial", "lp", "anytime"}
    assert sum(s["fixed"].values()) == pytest.approx(1.0, abs=1e-4)
    assert s["inexact_components"] == s["components"] - s["components_exact"]
    assert s["kept"] == 0 and s["gap"] <= 1e-9
    assert len(s["warnings"]) == 1 and "noise" in s["warnings"][0] and "--delta" in s["warnings"][0]
    assert "warning:" in r.stderr
    with h5py.File(tmp_path / "a.h5") as h:
        rep = json.loads(h.attrs["report"])
    assert rep["labels"]["noise"] == s["proposals"] and rep["warnings"] == s["warnings"]
    info = run_ws("info", tmp_path / "a.h5", "--json").json
    assert info["assignment"]["labels"] == s["labels"] and info["assignment"]["fixed"] == s["fixed"]
    out = run_ws("info", tmp_path / "a.h5").stdout
    assert "labels: noise" in out and "settled by:" in out and "WARNING" in out


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=30))),
    st.integers(0, 3))
def test_colour_classes_partition_into_independent_sets(graph, seed):
    """Every node in exactly one class, no edge inside a class; self loops (which a hand-made edge
    list may hold) are ignored rather than blocking their node forever."""
    n, edges = graph
    eu = np.array([u for u, _ in edges], dtype=np.int64)
    ev = np.array([v for _, v in edges], dtype=np.int64)
    classes = anytime.colour_classes(n, eu, ev, seed=seed)
    nodes = np.concatenate(classes) if classes else np.zeros(0, dtype=np.int64)
    assert sorted(nodes.tolist()) == list(range(n))
    colour = np.empty(n, dtype=np.int64)
    for c, members in enumerate(classes):
        colour[members] = c
    for u, v in edges:
        assert u == v or colour[u] != colour[v]
