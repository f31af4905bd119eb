"""Sampling strategies: reproducible, distinct, valid picks; balanced covers the range."""

from __future__ import annotations

import numpy as np
import pytest

from esm import sampling, spaces
from esm.errors import InputError

SPACE = spaces.get("ofa-mbv3")


@pytest.fixture(scope="module")
def pool() -> sampling.Pool:
    return sampling.Pool(SPACE, SPACE.sample(1500, seed=3))


@pytest.fixture(scope="module")
def labels(pool: sampling.Pool) -> np.ndarray:
    # a smooth synthetic latency (ms) from the costs, with mild noise
    f = pool.features
    rng = np.random.default_rng(0)
    return (0.02 * f[:, -3] + 0.5 * f[:, -1] + 1.0) * (1 + 0.01 * rng.standard_normal(len(f)))


@pytest.mark.parametrize("name", sampling.names())
def test_reproducible_distinct_unmeasured(name: str, pool: sampling.Pool,
                                          labels: np.ndarray) -> None:
    st = sampling.get_strategy(name, SPACE)
    measured = np.arange(0, 40, dtype=np.int64)
    a = st.select(pool, 25, seed=7, measured=measured, y=labels[measured])
    b = st.select(pool, 25, seed=7, measured=measured, y=labels[measured])
    assert a.dtype == np.int64 and a.shape == (25,)
    np.testing.assert_array_equal(a, b)
    assert len(set(a.tolist())) == 25
    assert not set(a.tolist()) & set(measured.tolist())
    assert a.min() >= 0 and a.max() < len(pool)
    # also from nothing (model-guided strategies fall back)
    c = st.select(pool, 10, seed=1)
    assert len(set(c.tolist())) == 10


def test_strategies_differ(pool: sampling.Pool, labels: np.ndarray) -> None:
    measured = np.arange(30, dtype=np.int64)
    picks = {n: tuple(sampling.get_strategy(n, SPACE).select(
        pool, 20, seed=0, measured=measured, y=labels[measured])) for n in sampling.names()}
    assert len(set(picks.values())) == len(picks)


def test_seed_changes_random(pool: sampling.Pool) -> None:
    st = sampling.get_strategy("random", SPACE)
    assert not np.array_equal(st.select(pool, 20, seed=1), st.select(pool, 20, seed=2))


def test_exhaustion_and_errors(pool: sampling.Pool) -> None:
    st = sampling.get_strategy("diversity", SPACE)
    small = sampling.Pool(SPACE, pool.genomes[:12])
    got = st.select(small, 50, seed=0, measured=np.arange(5))
    assert sorted(got.tolist()) == list(range(5, 12))
    assert st.select(small, 5, seed=0, measured=np.arange(12)).size == 0
    with pytest.raises(InputError):
        sampling.get_strategy("nope", SPACE)
    with pytest.raises(InputError):
        st.select(small, 3, measured=np.array([99]))
    with pytest.raises(InputError):
        st.select(small, -1)
    with pytest.raises(InputError):
        sampling.get_strategy("active", SPACE).select(small, 2, measured=np.arange(3),
                                                      y=np.ones(2))
    assert sampling.get_strategy("default", SPACE).name == sampling.DEFAULT_STRATEGY


def _bin_spread(values: np.ndarray, lo: float, hi: float, bins: int = 10) -> float:
    """Coefficient of variation of the counts in equal-width bins over [lo, hi]."""
    c = np.histogram(np.clip(values, lo, hi), bins=bins, range=(lo, hi))[0].astype(float)
    return float(c.std() / c.mean())


def test_balanced_covers_cost_range_more_evenly() -> None:
    big = sampling.Pool(SPACE, SPACE.sample(8000, seed=11))
    lo, hi = np.quantile(big.macs, [0.005, 0.995])
    bal = sampling.get_strategy("balanced", SPACE, bins=10).select(big, 200, seed=0)
    rnd = sampling.get_strategy("random", SPACE).select(big, 200, seed=0)
    s_bal = _bin_spread(big.macs[bal], lo, hi)
    s_rnd = _bin_spread(big.macs[rnd], lo, hi)
    # uniform gene sampling piles up in the middle of the MACs range; balanced is ~flat
    assert s_bal < 0.5 * s_rnd
    assert s_bal < 0.2
    # and puts more of its picks into the tails of the range
    def tails(v: np.ndarray) -> float:
        w = 0.2 * (hi - lo)
        return float(np.mean((v < lo + w) | (v > hi - w)))

    assert tails(big.macs[bal]) > tails(big.macs[rnd]) + 0.1


def test_ridge_matches_lstsq_at_small_alpha() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 4.0
    m = sampling.RidgeModel(alphas=[1e-8]).fit(X, y)
    np.testing.assert_allclose(m.predict(X), y, atol=1e-6)


def test_variance_prefers_informative_points() -> None:
    """Greedy I-optimal picks reduce the linear model's average prediction variance more than
    random picks do (the quantity it optimizes)."""
    pl = sampling.Pool(SPACE, SPACE.sample(1000, seed=5))
    z = np.concatenate([pl.standardized, np.ones((len(pl), 1))], axis=1)

    def avg_var(idx: np.ndarray) -> float:
        a = z[idx].T @ z[idx] + np.eye(z.shape[1])
        return float(np.mean(((z @ np.linalg.inv(a)) * z).sum(1)))

    v = sampling.get_strategy("variance", SPACE, relative=False).select(pl, 40, seed=0)
    r = sampling.get_strategy("random", SPACE).select(pl, 40, seed=0)
    assert avg_var(v) < avg_var(r)


def _naive_variance_picks(pl: sampling.Pool, k: int, measured: np.ndarray, alpha: float,
                          w: np.ndarray) -> list[int]:
    """Reference twin of the greedy I-optimal design: recompute everything per pick."""
    z = np.concatenate([pl.standardized, np.ones((len(pl), 1))], axis=1)
    reg = np.full(z.shape[1], alpha)
    reg[-1] = 1e-6
    s_mat = (z * (w / w.mean())[:, None]).T @ z / len(pl)
    chosen = list(measured)
    out: list[int] = []
    for _ in range(k):
        a_inv = np.linalg.inv(z[chosen].T @ z[chosen] + np.diag(reg))
        best, arg = -np.inf, -1
        for i in range(len(pl)):
            if i in chosen:
                continue
            zi = z[i]
            u = a_inv @ zi
            gain = float(u @ s_mat @ u) / (1.0 + float(zi @ u))
            if gain > best:
                best, arg = gain, i
        chosen.append(arg)
        out.append(arg)
    return out


def test_variance_design_matches_naive_twin() -> None:
    """The rank-one-updated greedy design picks what recomputing from scratch picks."""
    pl = sampling.Pool(SPACE, SPACE.sample(150, seed=9))
    measured = np.arange(5, dtype=np.int64)
    got = sampling.get_strategy("variance", SPACE, mix=0, kernel=0, relative=False,
                                 alpha=0.5).select(
        pl, 8, seed=0, measured=measured)
    assert got.tolist() == _naive_variance_picks(pl, 8, measured, 0.5, np.ones(len(pl)))
    # relative weighting (1 / MACs^2 before a model exists) changes the target and the picks
    w = pl.macs ** -2.0
    got_rel = sampling.get_strategy("variance", SPACE, mix=0, kernel=0, alpha=0.5).select(
        pl, 8, seed=0, measured=measured)
    assert got_rel.tolist() == _naive_variance_picks(pl, 8, measured, 0.5, w)


@pytest.mark.parametrize("params", [{}, {"mix": 0.5}, {"kernel": 0.2}, {"mix": 0.5,
                                                                          "mix_power": 1.0},
                                    {"mix": 0, "features": "costs+genes"}])
def test_variance_options_valid_and_seeded(params: dict, pool: sampling.Pool,
                                           labels: np.ndarray) -> None:
    st = sampling.get_strategy("variance", SPACE, **params)
    measured = np.arange(0, 60, 2, dtype=np.int64)
    a = st.select(pool, 17, seed=4, measured=measured, y=labels[measured])
    b = st.select(pool, 17, seed=4, measured=measured, y=labels[measured])
    np.testing.assert_array_equal(a, b)
    assert a.shape == (17,) and len(set(a.tolist())) == 17
    assert not set(a.tolist()) & set(measured.tolist())


@pytest.mark.parametrize("space_name", spaces.names())
def test_default_strategy_every_space(space_name: str) -> None:
    """The default strategy picks distinct, unmeasured, valid genomes in every space, from
    nothing and with a fitted model, and is reproducible."""
    sp = spaces.get(space_name)
    pl = sampling.Pool(sp, sp.sample(300, seed=1))
    st = sampling.get_strategy("default", sp)
    first = st.select(pl, 12, seed=0)
    assert len(set(first.tolist())) == 12
    y = 1.0 + pl.features[first].sum(axis=1) / max(float(pl.features.sum(axis=1).max()), 1e-9)
    nxt = st.select(pl, 15, seed=0, measured=first, y=y)
    again = st.select(pl, 15, seed=0, measured=first, y=y)
    np.testing.assert_array_equal(nxt, again)
    assert nxt.shape == (15,) and len(set(nxt.tolist())) == 15
    assert not set(nxt.tolist()) & set(first.tolist())
    sp.validate(pl.genomes[nxt])


def test_exclude_is_not_training_data(pool: sampling.Pool, labels: np.ndarray) -> None:
    """``exclude`` rows (a holdout) are never picked but, unlike ``measured``, do not count as
    the model's data: the design then picks differently."""
    st = sampling.get_strategy("variance", SPACE, mix=0)
    measured = np.arange(0, 30, dtype=np.int64)
    held = np.arange(30, 80, dtype=np.int64)
    a = st.select(pool, 20, seed=0, measured=measured, y=labels[measured], exclude=held)
    assert not set(a.tolist()) & (set(measured.tolist()) | set(held.tolist()))
    both = np.concatenate([measured, held])
    b = st.select(pool, 20, seed=0, measured=both, y=labels[both])
    assert a.tolist() != b.tolist()
    with pytest.raises(InputError):
        st.select(pool, 2, exclude=np.array([len(pool)]))


@pytest.mark.parametrize("n_measured", [0, 100, 200, 400])
def test_variance_auto_mix_ramp(n_measured: int, pool: sampling.Pool,
                                labels: np.ndarray) -> None:
    """``mix="auto"`` (the default) draws a share ``min(0.75, measured / 400)`` of each batch
    uniformly: the same picks as that share given explicitly, and the pure design on nothing."""
    measured = np.arange(n_measured, dtype=np.int64)
    y = labels[measured] if n_measured else None
    auto = sampling.get_strategy("default", SPACE).select(pool, 20, seed=7, measured=measured,
                                                          y=y)
    share = min(0.75, n_measured / 400)
    explicit = sampling.get_strategy("variance", SPACE, mix=share).select(
        pool, 20, seed=7, measured=measured, y=y)
    np.testing.assert_array_equal(auto, explicit)
    if n_measured:
        other = sampling.get_strategy("variance", SPACE, mix=0).select(
            pool, 20, seed=7, measured=measured, y=y)
        assert auto.tolist() != other.tolist()


def test_ridge_downweights_outliers() -> None:
    """A few grossly mismeasured rows (one at high leverage) barely move the robust fit, while
    they pull the plain least-squares fit well off the clean relation."""
    rng = np.random.default_rng(1)
    X = rng.uniform(1, 3, size=(80, 4))
    X[0] = [6.0, 6.0, 6.0, 6.0]  # high leverage
    clean = X @ np.array([2.0, 1.0, 0.5, 1.5]) + 3.0
    y = clean * (1 + 0.005 * rng.standard_normal(80))
    y[[0, 5, 9]] *= 1.6
    Xt = rng.uniform(1, 3, size=(500, 4))
    yt = Xt @ np.array([2.0, 1.0, 0.5, 1.5]) + 3.0

    def err(m: sampling.RidgeModel) -> float:
        return float(np.mean(np.abs(m.fit(X, y).predict(Xt) / yt - 1)))

    robust = sampling.RidgeModel()
    assert err(robust) < 0.01 < err(sampling.RidgeModel(robust=0))
    assert robust.weights_[[0, 5, 9]].max() < 0.2 and np.median(robust.weights_) == 1.0


def test_ridge_relative_fit_lowers_mape() -> None:
    """With errors proportional to the target (as in latency), the relative (1/y^2-weighted)
    fit has a lower MAPE than the absolute one, and the model says which it used."""
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 1, size=(400, 3)) ** 3 * 50
    y = (X @ np.array([1.0, 2.0, 0.5]) + 1.0) * np.exp(0.1 * rng.standard_normal(400))
    tr, te = slice(0, 60), slice(60, None)

    def mape(rel: bool) -> float:
        m = sampling.RidgeModel(relative=rel, robust=0).fit(X[tr], y[tr])
        return float(np.mean(np.abs(m.predict(X[te]) / y[te] - 1)))

    assert mape(True) < 0.9 * mape(False)


NB201 = spaces.get("nb201")


@pytest.fixture(scope="module")
def nb201_pool() -> sampling.Pool:
    return sampling.Pool(NB201, NB201.sample(3000, seed=2))


def test_cost_blind_pools(nb201_pool: sampling.Pool, pool: sampling.Pool) -> None:
    """NAS-Bench-201's cost features alias its cells (none/skip/pooling edges cost nothing
    countable); ofa-mbv3's tell every network apart."""
    assert nb201_pool.cost_blind
    assert not pool.cost_blind


def test_choice_counts_and_shared_menu(nb201_pool: sampling.Pool) -> None:
    g = nb201_pool.genomes[:50]
    c = sampling.choice_counts(NB201, g)
    assert c.shape == (50, 5) and np.all(c.sum(axis=1) == 6)
    np.testing.assert_array_equal(c, _counts(NB201.canonical(g)))
    f = sampling.features(NB201, g, "costs+counts")
    np.testing.assert_array_equal(f, np.concatenate([sampling.cost_features(NB201, g), c], 1))
    np.testing.assert_array_equal(nb201_pool.features_in("costs+counts")[:50], f)
    assert sampling.shared_menu(NB201) and sampling.shared_menu(spaces.get("fbnet"))
    assert not sampling.shared_menu(SPACE)
    with pytest.raises(InputError, match="share one menu"):
        sampling.features(SPACE, SPACE.sample(3, seed=0), "costs+counts")


def test_stage_features() -> None:
    g = SPACE.sample(6, seed=4)
    st = sampling.stages(SPACE)
    assert st is not None and st.tolist() == [k for k in range(5) for _ in range(4)]
    f, c = sampling.features(SPACE, g, "stages"), sampling.cost_features(SPACE, g)
    assert f.shape == (6, 18)
    np.testing.assert_allclose(f[:, 3:6], c[:, 12:24].reshape(6, 4, 3).sum(axis=1))
    np.testing.assert_array_equal(f[:, -3:], c[:, -3:])
    np.testing.assert_allclose(sampling.Pool(SPACE, g).features_in("stages"), f)
    assert sampling.stages(NB201) is None  # six edges, no stages
    with pytest.raises(InputError, match="no stages"):
        sampling.features(NB201, NB201.sample(2, seed=0), "stages")


def _counts(g: np.ndarray) -> np.ndarray:
    return np.stack([(g == v).sum(axis=1) for v in range(5)], axis=1).astype(np.float64)


def test_variance_on_cost_blind_pool(nb201_pool: sampling.Pool) -> None:
    """On a cost-blind pool the default design runs on costs + genes with the shared choice
    counts and no residual kernel; it is seeded, picks distinct, unmeasured, not excluded rows,
    and its first networks pin the shared operation effects down better than the design
    without the counts."""
    pl = nb201_pool
    st = sampling.get_strategy("default", NB201)
    first = st.select(pl, 10, seed=0)
    np.testing.assert_array_equal(first, st.select(pl, 10, seed=0))
    explicit = sampling.get_strategy("variance", NB201, features="costs+genes", shared=3.0,
                                     kernel=0).select(pl, 10, seed=0)
    np.testing.assert_array_equal(first, explicit)
    plain = sampling.get_strategy("variance", NB201, features="costs+genes", shared=0,
                                  kernel=0).select(pl, 10, seed=0)
    assert first.tolist() != plain.tolist()
    # the operation counts of the picks span every shared direction (5 counts summing to 6:
    # rank 4), better conditioned than without the count features
    def smallest_sv(idx: np.ndarray) -> float:
        c = _counts(pl.genomes[idx])
        return float(np.linalg.svd(c - c.mean(axis=0), compute_uv=False)[3])
    assert smallest_sv(first) > 0.5
    assert smallest_sv(first) > smallest_sv(plain)
    # later steps: with a model, measured and excluded rows are never picked
    y = 5.0 + _counts(pl.genomes[first]) @ np.array([0.5, 0.1, 1.0, 3.0, 1.5])
    held = np.arange(0, 200, dtype=np.int64)
    held = held[~np.isin(held, first)]
    nxt = st.select(pl, 15, seed=3, measured=first, y=y, exclude=held)
    np.testing.assert_array_equal(nxt, st.select(pl, 15, seed=3, measured=first, y=y,
                                                 exclude=held))
    assert len(set(nxt.tolist())) == 15
    assert not set(nxt.tolist()) & (set(first.tolist()) | set(held.tolist()))
    # the prior (MAC weights, alpha 1) is kept until 20 networks are measured
    def after(**params: object) -> list[int]:
        return sampling.get_strategy("variance", NB201, **params).select(
            pl, 5, seed=3, measured=first, y=y).tolist()
    assert after() == after(min_fit=20) != after(min_fit=10)


def test_variance_not_cost_blind_unchanged(pool: sampling.Pool, labels: np.ndarray) -> None:
    """Where the costs see the genes (ofa-mbv3) the default design is the pool-feature design
    with the residual kernel and no shared counts, as before."""
    measured = np.arange(0, 30, dtype=np.int64)
    a = sampling.get_strategy("default", SPACE).select(pool, 12, seed=1, measured=measured,
                                                       y=labels[measured])
    b = sampling.get_strategy("variance", SPACE, features="pool", shared=0, kernel=0.2,
                              min_fit=10).select(pool, 12, seed=1, measured=measured,
                                                 y=labels[measured])
    np.testing.assert_array_equal(a, b)
