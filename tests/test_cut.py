"""ws graph / ws cut: solvers against brute force, kNN against exact search, CLI and bad input."""

from __future__ import annotations

import itertools
import math

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_bad_input, run_ws
from wstools.cut import attention_labels, fan_objective, fan_partition, multiway_cut, potts_energy, upper_edges
from wstools.graph import knn, knn_graph, recall_at_k
from wstools.io.flat import write_features
from wstools.io.store import create_store
from wstools.toy.features import make_features

pytestmark = pytest.mark.cli


@st.composite
def problems(draw):
    n = draw(st.integers(1, 9))
    L = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    rng = np.random.default_rng(seed)
    allowed = rng.random((n, L)) < 0.6
    allowed[:, 0] = True
    prob = rng.random((n, L))
    prob /= prob.sum(1, keepdims=True)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.35]
    W = np.zeros((n, n))
    for i, j in pairs:
        W[i, j] = W[j, i] = rng.uniform(0, 2)
    import scipy.sparse as sp

    C = sp.csr_matrix(W)
    return C, prob, allowed, draw(st.sampled_from([0.3, 0.5, 0.8, 1.0])), draw(st.sampled_from([0.0, 1.0, 30.0]))


def _brute(allowed, score):
    best, arg = -math.inf, None
    for lab in itertools.product(*[np.flatnonzero(a) for a in allowed]):
        s = score(np.array(lab))
        if s > best + 1e-12:
            best, arg = s, np.array(lab)
    return best, arg


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_multiway_equals_brute_force(problem):
    C, prob, allowed, _, _ = problem
    eu, ev, ew = upper_edges(C.indptr, C.indices, C.data)
    res = multiway_cut(C.indptr, C.indices, C.data, prob, allowed)
    best, _ = _brute(allowed, lambda lab: -potts_energy(lab, prob, eu, ev, ew))
    assert allowed[np.arange(len(res.labels)), res.labels].all()
    assert res.objective == pytest.approx(-best, abs=1e-7)
    assert res.objective == pytest.approx(potts_energy(res.labels, prob, eu, ev, ew))
    assert res.gap <= 1e-9 and res.component_exact.all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_fan_equals_brute_force_with_retention(problem):
    C, prob, allowed, r, beta = problem
    eu, ev, ew = upper_edges(C.indptr, C.indices, C.data)
    n = prob.shape[0]
    m = min(math.floor(r * n + 1e-9), int(allowed[:, 1:].any(1).sum()))
    res = fan_partition(C.indptr, C.indices, C.data, prob, allowed, beta=beta, retention=r)
    assert (res.labels > 0).sum() == m
    assert allowed[np.arange(n), res.labels].all()

    def score(lab):
        return fan_objective(lab, prob, eu, ev, ew, beta) if (lab > 0).sum() == m else -math.inf

    best, _ = _brute(allowed, score)
    assert res.objective == pytest.approx(fan_objective(res.labels, prob, eu, ev, ew, beta))
    assert res.bound >= best - 1e-7                      # the bound is valid
    if res.gap <= 1e-9:                                  # a proven optimum is the optimum
        assert res.objective == pytest.approx(best, abs=1e-7)
    assert res.objective >= best - res.gap * max(1.0, abs(res.objective)) - 1e-7


def test_fan_objective_is_xWx_plus_beta_px():
    rng = np.random.default_rng(0)
    n, L = 6, 3
    import scipy.sparse as sp

    W = np.triu(rng.uniform(0, 2, (n, n)), 1)
    W = W + W.T
    C = sp.csr_matrix(W)
    p = rng.random((n, L))
    lab = np.array([1, 1, 2, 0, 2, 1])
    X = np.zeros((L, n))
    X[lab[lab > 0], np.flatnonzero(lab > 0)] = 1
    direct = sum(X[i] @ W @ X[i] + 30 * p[:, i] @ X[i] for i in range(1, L))
    eu, ev, ew = upper_edges(C.indptr, C.indices, C.data)
    assert fan_objective(lab, p, eu, ev, ew, 30) == pytest.approx(direct)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(2, 6), st.integers(0, 1000))
def test_attention_is_allowed_argmax(n, L, seed):
    rng = np.random.default_rng(seed)
    p = rng.random((n, L))
    a = rng.random((n, L)) < 0.5
    a[:, 0] = True
    lab = attention_labels(p, a)
    for i in range(n):
        ok = np.flatnonzero(a[i])
        assert lab[i] == ok[np.argmax(p[i, ok])]


def test_knn_exact_matches_brute_force_and_faiss_recall():
    f = make_features(60, 5, 32, seed=1)
    X = f.feat / np.linalg.norm(f.feat, axis=1, keepdims=True)
    S = X @ X.T
    np.fill_diagonal(S, -np.inf)
    idx, sims = knn(f.feat, 3)
    assert np.allclose(np.sort(sims, 1), np.sort(-np.partition(-S, 2, axis=1)[:, :3], 1), atol=1e-5)
    assert recall_at_k(f.feat, idx, 3, sample=100) == 1.0
    pytest.importorskip("faiss")
    i2, _ = knn(f.feat, 3, method="hnsw")
    assert recall_at_k(f.feat, i2, 3, sample=100) >= 0.95
    # same-tag restriction: every edge joins proposals sharing a tag
    g = f.allowed[:, 1:]
    i3, _ = knn(f.feat, 3, groups=g)
    q = np.repeat(np.arange(len(f)), 3)
    ok = i3.ravel() >= 0
    assert ((g[q[ok]] & g[i3.ravel()[ok]]).any(1)).all()


def test_knn_graph_union_and_mutual():
    idx = np.array([[1], [2], [1]])
    sims = np.array([[0.5], [0.2], [0.2]], dtype=np.float32)
    W = knn_graph(idx, sims, weighting="fan")
    assert (W != W.T).nnz == 0 and W.nnz == 4
    assert W[0, 1] == pytest.approx(1.5)
    Wm = knn_graph(idx, sims, weighting="eq10", delta=5, edges="mutual")
    assert Wm.nnz == 2 and Wm[1, 2] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def feature_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("feat") / "features.h5"
    f = make_features(120, 5, 32, seed=2)
    with create_store(path, "features", classes=f.classes, params={}) as st_:
        write_features(st_, image_ids=f.image_ids, image=f.image, proposal=f.proposal, box=f.box, feat=f.feat,
                       prob=f.prob, allowed=f.allowed, truth=f.truth)
    return path


def test_cli_features_graph_cut(tmp_path, feature_store):
    g = tmp_path / "g.h5"
    out = run_ws("graph", feature_store, "-o", g, "--knn", "3").json
    assert out["recall@3"] == 1.0 and out["edges"] > 0
    acc = {}
    for method in ("multiway", "fan", "attention"):
        s = run_ws("cut", g, "-o", tmp_path / f"{method}.h5", "--method", method).json
        acc[method] = s["accuracy"]
        if method == "multiway":
            assert s["gap"] <= 1e-9 and s["components_exact"] == s["components"]
        if method == "fan":     # a Lagrangian duality gap may remain after the exact repair
            assert 0 <= s["gap"] <= 1e-3 and s["kept"] == math.floor(0.9 * s["proposals"])
        with h5py.File(tmp_path / f"{method}.h5") as h:
            assert h["labels"].shape == (s["proposals"],)
    assert acc["multiway"] > acc["attention"]
    r = run_ws("cut", g, "-o", tmp_path / "f5.h5", "--method", "fan", "--retention", "0.5")
    assert r.json["kept"] == math.floor(0.5 * r.json["proposals"])
    assert "expects --weights fan" not in r.stderr
    # Fan's cut on a LIID graph: it runs, with a warning naming the graph's weighting
    run_ws("graph", feature_store, "-o", tmp_path / "liid.h5", "--weights", "liid")
    r = run_ws("cut", tmp_path / "liid.h5", "-o", tmp_path / "fl.h5", "--method", "fan")
    assert "graph built with --weights liid" in r.stderr and "expects --weights fan" in r.stderr


def test_toy_features_option(tmp_path):
    s = run_ws("toy", tmp_path / "t", "--train", "0", "--val", "0", "--features", "20", "--feature-dim", "16").json
    assert s["features"]["proposals"] > 20
    run_ws("graph", tmp_path / "t" / "features.h5", "-o", tmp_path / "g.h5", "--same-tag")


def _graph_store(tmp_path, feature_store):
    g = tmp_path / "g.h5"
    run_ws("graph", feature_store, "-o", g)
    return g


def _corrupt(path, name, fn):
    with h5py.File(path, "r+") as h:
        data = h[name][()]
        del h[name]
        h.create_dataset(name, data=fn(data))


def test_bad_input(tmp_path, feature_store):
    g = _graph_store(tmp_path, feature_store)
    assert_bad_input(run_ws("cut", g, "-o", tmp_path / "a.h5", "--method", "fan", "--retention", "1.5", expect=2),
                     "retention")
    assert_bad_input(run_ws("cut", g, "-o", tmp_path / "a.h5", "--retention", "0", expect=2), "retention")
    assert not (tmp_path / "a.h5").exists()
    cases = {
        "allowed": (lambda a: np.where(np.arange(len(a))[:, None] == 3, False, a), "no allowed label"),
        "weights": (lambda w: np.where(np.arange(len(w)) == 0, -1.0, w).astype(np.float32), "negative or NaN"),
    }
    for name, (fn, msg) in cases.items():
        bad = tmp_path / f"bad_{name}.h5"
        bad.write_bytes(g.read_bytes())
        _corrupt(bad, name, fn)
        assert_bad_input(run_ws("cut", bad, "-o", tmp_path / "x.h5", expect=2), str(bad), msg)
    bad = tmp_path / "bad_nan.h5"
    bad.write_bytes(g.read_bytes())
    _corrupt(bad, "weights", lambda w: np.where(np.arange(len(w)) == 2, np.nan, w).astype(np.float32))
    assert_bad_input(run_ws("cut", bad, "-o", tmp_path / "x.h5", expect=2), "negative or NaN")
    bad = tmp_path / "bad_sym.h5"
    bad.write_bytes(g.read_bytes())
    _corrupt(bad, "weights", lambda w: np.where(np.arange(len(w)) == 0, w + 0.5, w).astype(np.float32))
    assert_bad_input(run_ws("cut", bad, "-o", tmp_path / "x.h5", expect=2), "not symmetric")
    assert not (tmp_path / "x.h5").exists()
    # wrong kind, and a features store without an allowed label
    assert_bad_input(run_ws("cut", feature_store, "-o", tmp_path / "x.h5", expect=2), "expected 'graph'")
    badf = tmp_path / "badf.h5"
    badf.write_bytes(feature_store.read_bytes())
    _corrupt(badf, "allowed", lambda a: np.where(np.arange(len(a))[:, None] == 0, False, a))
    assert_bad_input(run_ws("graph", badf, "-o", tmp_path / "y.h5", expect=2), "no allowed label", "img_000000")


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10 ** 6), st.sampled_from([True, False]))
def test_kovtun_reduction_keeps_the_optimum(seed, potts):
    """Kovtun's partial optimality (engine._kovtun) on 40-node graphs: same optimum as the LP/MIP alone."""
    from wstools.cut import engine

    rng = np.random.default_rng(seed)
    n, L = 40, 4
    allowed = rng.random((n, L)) < 0.6
    allowed[:, 0] = True
    gain = np.log(rng.random((n, L)) + 1e-3)
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.08]).reshape(-1, 2)
    ew = rng.uniform(0, 1.5, len(pairs))
    reward = np.ones(L, dtype=bool)
    reward[0] = potts
    on = engine.solve(gain, allowed, pairs[:, 0], pairs[:, 1], ew, reward)
    off = engine.solve(gain, allowed, pairs[:, 0], pairs[:, 1], ew, reward, kovtun=False)
    assert on.value == pytest.approx(off.value, abs=1e-7)
    assert on.bound >= on.value and on.bound - on.value <= 1e-9
    assert allowed[np.arange(n), on.labels].all()


def test_kovtun_fixes_a_cluster_and_mix_hits_the_count():
    from wstools.cut import engine
    from wstools.cut.fan import _mix

    # a chain of 4 nodes preferring label 1 strongly linked: all fixed to 1 by the auxiliary min cut
    gain = np.array([[0.0, 0.5], [0.0, -0.2], [0.0, 0.4], [0.0, -0.1]])
    allowed = np.ones((4, 2), dtype=bool)
    eu, ev, ew = np.array([0, 1, 2]), np.array([1, 2, 3]), np.array([2.0, 2.0, 2.0])
    sol = engine.solve(gain, allowed, eu, ev, ew, np.ones(2, dtype=bool))
    assert sol.stats["fixed_by_kovtun"] == 4 and (sol.labels == 1).all()
    # subset sum over components: low end keeps 3+2, high end 1+0; m = 3 needs comp 0 low, comp 1 high
    comp = np.array([0, 0, 0, 1, 1])
    lo, hi = np.array([1, 1, 1, 2, 2]), np.array([1, 0, 0, 0, 0])
    out, taken = _mix(lo, hi, comp, 2, 3)
    assert (out == [1, 1, 1, 0, 0]).all() and taken == 1
    assert _mix(lo, hi, comp, 2, 4) is None


def test_threads_option(tmp_path, feature_store):
    """--threads sets torch's CPU threads; a negative count is bad usage."""
    run_ws("graph", feature_store, "-o", tmp_path / "g.h5", "--threads", 1)
    # a click usage error through the installed entry point: exit 2, one line
    r = run_ws("graph", feature_store, "-o", tmp_path / "h.h5", "--threads", -1, expect=2, subprocess=True)
    assert "--threads" in r.stderr and not (tmp_path / "h.h5").exists()
