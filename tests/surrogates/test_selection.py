"""Time-bounded k-fold model comparison."""

from __future__ import annotations

import numpy as np
import pytest

from surrogates import FeatureEncoder, ModelError, compare_models
from tests.surrogates.synthetic import block_dataset


@pytest.fixture(scope="module")
def xy():
    fam, cfgs, y = block_dataset("resv1", 200, seed=4)
    return FeatureEncoder(fam).transform(cfgs), y


def test_compares_models_on_common_folds(xy) -> None:
    X, y = xy
    res = compare_models(X, y, models=["linear", "gbt", "rf"], cv=3, seed=0,
                         params={"rf": {"n_estimators": 30}, "gbt": {"max_iter": 50}})
    assert res.common_folds == 3 and not res.timed_out
    assert set(res.scores) == {"linear", "gbt", "rf"}
    assert res.best == max(res.scores, key=lambda n: res.scores[n]["spearman"])
    assert res.scores["gbt"]["spearman"] > res.scores["linear"]["spearman"]
    assert "rho" in res.table() and res.table().count("\n") == 3


def test_acc10_criterion_ranks_by_the_share_within_10_percent(xy) -> None:
    X, y = xy
    res = compare_models(X, y, models=["linear", "gbt", "linear-gbt"], cv=3, seed=0, criterion="acc10",
                         params={"gbt": {"max_iter": 50}, "linear-gbt": {"n_estimators": 50}})
    assert res.criterion == "acc10"
    assert res.best == max(res.scores, key=lambda n: res.scores[n]["acc10"])
    first = res.table().splitlines()[1]
    assert first.startswith(res.best)


def test_time_budget_stops_starting_new_folds(xy) -> None:
    X, y = xy
    res = compare_models(X, y, models=["gbt", "mlp"], cv=5, time_budget_s=0.05, seed=0,
                         params={"mlp": {"max_epochs": 50}})
    assert res.timed_out and res.common_folds < 5
    assert sum(res.folds_done.values()) < 10


@pytest.mark.slow
def test_parallel_matches_serial(xy) -> None:
    X, y = xy
    kw = {"models": ["linear", "gbt"], "cv": 3, "seed": 1, "params": {"gbt": {"max_iter": 30}}}
    a = compare_models(X, y, n_jobs=1, **kw)
    b = compare_models(X, y, n_jobs=2, **kw)
    for name in a.scores:
        assert a.scores[name]["spearman"] == pytest.approx(b.scores[name]["spearman"])


@pytest.mark.parametrize(("kw", "needle"), [({"models": ["nope"]}, "unknown model 'nope'"),
                                            ({"cv": 1}, "cv=1"), ({"time_budget_s": 0}, "time_budget_s=0"),
                                            ({"models": []}, "at least one model"),
                                            ({"criterion": "mape"}, "criterion='mape'")])
def test_bad_arguments(kw, needle: str) -> None:
    X, y = np.ones((20, 2)), np.ones(20)
    with pytest.raises((ValueError, ModelError), match=needle):
        compare_models(X, y, **kw)
