"""The strategy contract, run by every registered strategy, and what each built-in strategy is for."""

from __future__ import annotations

import numpy as np
import pytest

from acquisition.strategies import (
    QueryContext,
    Strategy,
    StrategyError,
    get_strategy,
    list_strategies,
    register_strategy,
)
from surrogates import FeatureEncoder, get_model
from surrogates.models import CommitteeRegressor
from tests.surrogates.synthetic import block_dataset

BUILTIN = ["random", "sobol", "uncertainty", "interval", "cost-aware", "diverse", "error-driven", "representative"]


@pytest.fixture(scope="module")
def setup():
    fam, cfgs, y = block_dataset("mbconv", 600, seed=7)
    X = FeatureEncoder(fam).transform(cfgs)
    model = CommitteeRegressor(get_model("gbt", max_iter=60), n_folds=4, random_state=0).fit(X[:100], y[:100])
    return cfgs[100:], X[100:], X[:100], y[:100], model


def ctx_for(setup, seed: int = 0, model: bool = True, cost=None) -> QueryContext:
    pool, Xp, Xt, yt, m = setup
    return QueryContext(candidates=pool, X=Xp, cost_s=np.ones(len(pool)) if cost is None else cost,
                        rng=np.random.default_rng(seed), model=m if model else None, X_train=Xt, y_train=yt)


def test_builtins_are_registered() -> None:
    assert list_strategies()[: len(BUILTIN)] == BUILTIN


@pytest.mark.parametrize("name", list_strategies())
@pytest.mark.parametrize("with_model", [True, False], ids=["fitted", "no-model"])
def test_contract(name: str, with_model: bool, setup) -> None:
    s = get_strategy(name)
    assert isinstance(s, Strategy)
    picked = s(ctx_for(setup, model=with_model), 25)
    assert len(picked) == 25 and len(set(picked)) == 25
    assert all(isinstance(i, int) and 0 <= i < 500 for i in picked)
    again = s(ctx_for(setup, model=with_model), 25)
    assert again == picked, "the same seed must give the same batch"
    assert sorted(s(ctx_for(setup, model=with_model), 10_000)) == list(range(500))  # k > pool: the whole pool
    assert s(ctx_for(setup, model=with_model), 0) == []


@pytest.mark.parametrize("name", list_strategies())
def test_cost_is_computed_only_for_strategies_that_read_it(name: str, setup) -> None:
    calls = []

    def cost() -> np.ndarray:
        calls.append(1)
        return np.ones(500)

    eager = get_strategy(name)(ctx_for(setup), 25)
    lazy = get_strategy(name)(ctx_for(setup, cost=cost), 25)
    assert lazy == eager, "a cost given as a function must give the same batch as the same cost as an array"
    assert len(calls) == (1 if name in ("cost-aware", "representative") else 0)


def test_a_cost_function_of_the_wrong_length_is_refused(setup) -> None:
    ctx = ctx_for(setup, cost=lambda: np.ones(3))
    with pytest.raises(StrategyError, match=r"cost_s has shape \(3,\), expected \(500,\)"):
        _ = ctx.cost_s


def test_uncertainty_picks_the_largest_std(setup) -> None:
    ctx = ctx_for(setup)
    picked = get_strategy("uncertainty")(ctx, 10)
    epi = ctx.dist.epistemic
    assert min(epi[picked]) >= np.sort(epi)[-10] - 1e-12


@pytest.mark.parametrize("name", ["uncertainty", "cost-aware", "diverse", "representative"])
def test_strategies_that_chase_ignorance_refuse_a_model_without_an_epistemic_part(name: str, setup) -> None:
    pool, Xp, Xt, yt, _ = setup
    noise_only = get_model("quantile-gbt", max_iter=30, random_state=0).fit(Xt, yt)
    ctx = QueryContext(candidates=pool, X=Xp, cost_s=np.ones(len(pool)), rng=np.random.default_rng(0),
                       model=noise_only, X_train=Xt, y_train=yt)
    with pytest.raises(StrategyError, match=f"strategy '{name}' needs a model with an epistemic uncertainty"):
        get_strategy(name)(ctx, 5)
    assert len(get_strategy("interval")(ctx, 5)) == 5  # the interval strategy is about noise, and says so


def test_cost_aware_prefers_cheap_blocks_at_equal_information(setup) -> None:
    pool = setup[0]
    cost = np.where(np.arange(len(pool)) % 2 == 0, 0.1, 10.0)
    picked = get_strategy("cost-aware")(ctx_for(setup, cost=cost), 20)
    assert sum(i % 2 == 0 for i in picked) >= 18


def test_diverse_takes_no_duplicates(setup) -> None:
    pool, Xp, Xt, yt, m = setup
    std_order = np.argsort(-m.predict_dist(Xp).epistemic)
    top = int(std_order[0])
    X_dup = np.vstack([Xp, np.repeat(Xp[top:top + 1], 30, axis=0)])
    ctx = QueryContext(candidates=list(pool) + [pool[top]] * 30, X=X_dup, cost_s=np.ones(len(X_dup)),
                       rng=np.random.default_rng(0), model=m, X_train=Xt, y_train=yt)
    picked = get_strategy("diverse")(ctx, 10)
    copies = [i for i in picked if i == top or i >= len(pool)]
    assert len(copies) <= 1
    plain = get_strategy("uncertainty")(ctx, 10)
    assert sum(i == top or i >= len(pool) for i in plain) >= 10  # what diverse avoids


def test_representative_covers_the_pool_and_follows_information_per_second(setup) -> None:
    ctx = ctx_for(setup)
    Z = (ctx.X - ctx.X.mean(0)) / ctx.X.std(0)
    picked = get_strategy("representative")(ctx, 20)
    plain = get_strategy("uncertainty")(ctx_for(setup), 20)

    def spread(idx):  # mean distance from a pool point to its nearest pick: lower = better coverage
        return np.sqrt(((Z[:, None] - Z[idx][None]) ** 2).sum(-1)).min(1).mean()

    assert spread(picked) < spread(plain)
    # within the clusters, cheap candidates win at equal uncertainty
    cost = np.where(np.arange(len(setup[0])) % 2 == 0, 0.1, 10.0)
    cheap = get_strategy("representative")(ctx_for(setup, cost=cost), 20)
    assert sum(i % 2 == 0 for i in cheap) >= 18


def test_space_filling_spreads_out(setup) -> None:
    ctx = ctx_for(setup, model=False)
    Z = (ctx.X - ctx.X.mean(0)) / ctx.X.std(0)

    def min_gap(idx):
        d = np.sqrt(((Z[idx][:, None] - Z[idx][None]) ** 2).sum(-1))
        return d[np.triu_indices(len(idx), 1)].min()

    sf = min_gap(get_strategy("sobol")(ctx, 20))
    rnd = np.median([min_gap(get_strategy("random")(ctx_for(setup, seed=s, model=False), 20)) for s in range(5)])
    assert sf > rnd


def test_user_strategy_plugs_in(setup) -> None:
    class Cheapest(Strategy):
        name = "cheapest"
        needs_model = False

        def select(self, ctx, k):
            return list(np.argsort(ctx.cost_s)[:k])

    register_strategy("cheapest", Cheapest, replace=True)
    cost = np.arange(500, dtype=float)[::-1]
    assert get_strategy("cheapest")(ctx_for(setup, cost=cost), 3) == [499, 498, 497]


def test_contract_violations_are_caught(setup) -> None:
    class Broken(Strategy):
        name = "broken"
        needs_model = False

        def select(self, ctx, k):
            return [0] * k

    with pytest.raises(StrategyError, match="distinct"):
        Broken()(ctx_for(setup), 5)
    with pytest.raises(StrategyError, match="unknown strategy 'nope'"):
        get_strategy("nope")


def test_the_guides_strategy_example_runs(setup) -> None:
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "guides" / "campaigns.md").read_text()
    block = next(b for b in guide.split("```python\n")[1:] if b.startswith("# my_strategy.py"))
    code = block.split("```")[0]
    namespace: dict = {}
    exec(compile(code, "campaigns.md:my_strategy.py", "exec"), namespace)
    picked = get_strategy("fast-first")(ctx_for(setup, cost=np.arange(500.0)), 10)
    assert len(set(picked)) == 10 and all(i < 250 for i in picked)


def test_error_driven_refines_around_the_worst_out_of_fold_rows_without_refitting(setup, monkeypatch) -> None:
    import sklearn.model_selection

    from acquisition.strategies._feature_space import standardize

    def no_refit(*args, **kwargs):
        raise AssertionError("error-driven must use the committee's out-of-fold predictions, not refit")

    monkeypatch.setattr(sklearn.model_selection, "cross_val_predict", no_refit)
    ctx = ctx_for(setup)
    picked = get_strategy("error-driven")(ctx, 10)
    m = ctx.model
    err = np.abs(m.oof_log_ - np.log(ctx.y_train))
    Z, f = standardize(ctx.X, ctx.X_train)
    worst = f(ctx.X_train[np.argsort(-err)[:5]])
    nearest = [int(np.argmin(((Z - h) ** 2).sum(axis=1))) for h in worst]
    assert picked[0] == nearest[0]  # the candidate nearest to the row the model gets most wrong comes first
    assert set(picked[:5]) >= {i for j, i in enumerate(nearest) if i not in nearest[:j]}  # then around the others
    std = ctx.dist.std.copy()
    std[picked[:5]] = -np.inf
    assert set(picked[5:]) == set(np.argsort(-std)[:5])  # the other half: the most uncertain candidates


@pytest.mark.slow
def test_error_driven_cross_validates_a_model_without_out_of_fold_predictions(setup, monkeypatch) -> None:
    from acquisition.strategies import error_driven

    pool, Xp, Xt, yt, _ = setup
    plain = get_model("gbt", max_iter=60, random_state=0).fit(Xt, yt)
    assert getattr(plain, "oof_log_", None) is None
    calls = []
    real = error_driven.out_of_fold_log

    def spy(model, X, y, folds=5):
        out = real(model, X, y, folds)
        calls.append(out.shape)
        return out

    monkeypatch.setattr(error_driven, "out_of_fold_log", spy)
    ctx = QueryContext(candidates=pool, X=Xp, cost_s=np.ones(len(pool)), rng=np.random.default_rng(0), model=plain,
                       X_train=Xt, y_train=yt)
    picked = get_strategy("error-driven")(ctx, 10)
    assert len(set(picked)) == 10 and calls == [(len(yt),)]
    assert np.all(np.isfinite(real(plain, Xt, yt)))


def test_strategy_base_and_space_filling_do_not_import_each_other() -> None:
    import ast
    import subprocess
    import sys
    from pathlib import Path

    import acquisition.strategies._base as base

    tree = ast.parse(Path(base.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any("space_filling" in (m or "") for m in imported), imported
    # each module imports on its own, first, in a fresh interpreter
    for first in ("acquisition.strategies.space_filling", "acquisition.strategies._base"):
        code = f"import {first}; from acquisition.strategies import get_strategy; print(get_strategy('sobol').name)"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                              cwd=Path(base.__file__).resolve().parents[2])
        assert proc.returncode == 0 and proc.stdout.strip() == "sobol", proc.stderr


def test_the_fallback_before_the_first_fit_is_the_sobol_strategy(setup) -> None:
    for name in ("uncertainty", "error-driven", "representative"):
        assert get_strategy(name)(ctx_for(setup, model=False), 15) == get_strategy("sobol")(
            ctx_for(setup, model=False), 15)
