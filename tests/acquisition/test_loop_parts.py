"""The loop's named parts keep their contracts (acquisition/loop/*): the design, the model choice, verification,
the stop decision and the batch query, each on its own, as the engine composes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from acquisition.campaign import CampaignSpec
from acquisition.engine import CampaignLoop
from acquisition.loop.base import Asked, TrainingData
from acquisition.loop.design import InitialDesign
from acquisition.loop.models import ModelChoice
from acquisition.loop.query import BatchQuery
from acquisition.loop.stop import StopCheck, check_stop
from acquisition.loop.verify import verify
from acquisition.store import Store
from profiler.families import get_family
from tests.acquisition.synthetic_profiler import SyntheticProfiler
from tests.quick_models import QUICK

FAM = get_family("mbconv")


def spec(**kw) -> CampaignSpec:
    base = {"name": "p", "family": "mbconv", "model": QUICK, "target_spearman": 0.97, "budget_samples": 60,
            "batch_size": 10, "initial_size": 10, "pool_size": 200, "folds": 3, "fidelity": "full"}
    return CampaignSpec(**{**base, **kw}).validate()


@pytest.fixture
def measured(tmp_path: Path):
    """A store holding one campaign after its initial design and one batch, and that campaign's loop."""
    store = Store(tmp_path / "c.sqlite")
    prof = SyntheticProfiler()
    s = spec()
    store.ensure_platform(prof.platform_id, prof.fingerprint, prof.device.spec)
    store.create_campaign(s.name, s.family, prof.platform_id, s.as_dict(), protocol=prof.protocol.id)
    loop = CampaignLoop(store, s, prof, FAM, max_fits=1)
    while asks := loop.next_asks():
        loop.measure(prof, asks)
    yield store, s, loop
    store.close()


def test_the_design_asks_once_and_the_same_configurations_on_a_resume(tmp_path: Path) -> None:
    prof = SyntheticProfiler()
    s = spec(verification="holdout", validation_size=12)
    with Store(tmp_path / "d.sqlite") as store:
        store.ensure_platform(prof.platform_id, prof.fingerprint, prof.device.spec)
        store.create_campaign(s.name, s.family, prof.platform_id, s.as_dict(), protocol=prof.protocol.id)
        design = InitialDesign(store, s, FAM, lambda n, m, seed, ex: FAM.space.sample(n, method=m, seed=seed,
                                                                                     exclude=ex, family=FAM.name),
                               loop_fid(s), prof.protocol.id, None)
        assert design.ask_missing()  # the validation set first
        assert [a["role"] for a in store.pending_asks(s.name)] == ["validation"] * 12
        assert design.ask_missing()  # then the initial design
        assert not design.ask_missing() and not design.ask_probes()  # nothing more: one fidelity, no probes
        again = InitialDesign(store, s, FAM, design.draw, loop_fid(s), prof.protocol.id, None)
        assert [a.key for b in again.batches() for a in b] == [a.key for b in design.batches() for a in b]
        assert not again.ask_missing()  # a resume finds the asks stored


def loop_fid(s: CampaignSpec):
    from acquisition.fidelity import Fidelity

    return Fidelity(s.fidelity, cheap_id=None, full_id="synthetic-v1")


def test_model_choice_fits_and_says_what_it_kept(measured) -> None:
    store, s, loop = measured
    data = loop.data()
    charged: list[tuple[str, float]] = []
    choice = ModelChoice(store, s, loop.strategy, loop.encoder, (), lambda a, sec: charged.append((a, sec)))
    model, fit_s = choice.fit(data)
    assert choice.model is model and choice.name == QUICK and choice.rows == len(data.train)
    assert choice.last_gain is None  # no sources: nothing compared
    assert charged == [("fit", fit_s)] and fit_s > 0
    assert np.all(np.isfinite(model.predict(data.X)))


def test_auto_fits_the_others_only_when_a_choice_is_due(monkeypatch) -> None:
    """Before a choice can be made auto fits the first model alone; between choices the kept one alone; all of them
    once the rows grew by AUTO_RECHOOSE or when the kept model slips."""
    import acquisition.loop.models as lm
    from surrogates import get_model
    from surrogates.models import CommitteeRegressor

    made: list[str] = []

    def cheap(spec_, strategy, name=None, sources=None, *, committee=False):  # every name a quick committee
        made.append(name)
        return CommitteeRegressor(get_model("linear"), n_folds=3, random_state=0)

    monkeypatch.setattr(lm, "make_model", cheap)
    rng = np.random.default_rng(0)
    X, choice = rng.normal(size=(80, 4)), ModelChoice(None, spec(model="auto"), None, None, (), lambda a, s: None)

    def fit(n: int) -> list[str]:
        made.clear()
        y = np.exp(X[:n] @ [0.5, 0.3, 0.1, 0.0] + 0.05 * rng.normal(size=n))
        rows = [{"drawn": "initial" if i < 10 else "random"} for i in range(n)]
        choice.fit(TrainingData(rows, X[:n], y, [], np.zeros((0, 4)), np.zeros(0)))
        return list(made)

    assert fit(12) == ["gbt"] and choice.chosen is None  # 12 unbiased rows < AUTO_MIN_ROWS: no choice yet
    assert fit(30) == ["gbt", "linear", "gp"] and choice.chosen[:2] == ("gbt", 30)  # ties: the first
    assert fit(40) == ["gbt"] and fit(44) == ["gbt"]  # under 1.5 x 30: the kept model alone
    assert fit(45) == ["gbt", "linear", "gp"]  # 45 >= 1.5 x 30
    assert fit(60) == ["gbt"] and fit(68) == ["gbt", "linear", "gp"]  # 68 >= 1.5 x 45
    choice.chosen = ("gbt", 68, 1.5)  # the kept model's rho can only fall below this: it slipped
    assert fit(70) == ["gbt", "linear", "gp"] and choice.chosen[1] == 70


@pytest.mark.parametrize("mode", ["cv", "prequential"])
def test_verify_returns_what_the_stop_rule_reads(measured, mode: str) -> None:
    store, s, loop = measured
    data = loop.data()
    m = verify(loop.current_model(), data, mode, lambda: store.asks(s.name))  # fitted on these rows
    for k in ("spearman", "spearman_lo", "spearman_hi", "mape", "acc10", "n_verify", "cv_spearman", "coverage80"):
        assert k in m, k
    assert m["n_verify"] >= 0 and (np.isnan(m["spearman_lo"]) or m["spearman_lo"] <= m["spearman"])


def test_the_stop_decision_reads_the_rule_and_the_budget(measured) -> None:
    store, s, loop = measured
    n = len(loop.data().train)
    going = check_stop(store, s, {"spearman": 0.5, "spearman_lo": 0.4, "n_verify": 30}, n)
    assert isinstance(going, StopCheck) and not going.ok_now and going.state is None and going.met_streak == 0
    spent = check_stop(store, spec(budget_samples=n), {"spearman": 0.5, "spearman_lo": 0.4, "n_verify": 30}, n)
    assert spent.state == "budget" and spent.budget_left["exhausted"]


def test_the_query_draws_its_random_share_first_and_never_a_measured_configuration(measured) -> None:
    store, s, loop = measured
    data = loop.data()
    q = BatchQuery(store, s, loop.strategy, loop.encoder, loop.encode, loop.draw, loop.full_protocol, None)
    model = loop.current_model()
    picked = q.select(model, data, it=7, k=10)
    drawn = [d for _, d, _ in picked]
    assert len(picked) == 10 and drawn == ["random"] * 5 + ["strategy"] * 5  # random_share 0.5
    keys = {FAM.key(c) for c, _, _ in picked}
    assert len(keys) == 10 and not keys & set(store.member_keys(s.name))
    assert all(np.isfinite(p) for _, _, p in picked) and q.last_s > 0
    again = BatchQuery(store, s, loop.strategy, loop.encoder, loop.encode, loop.draw, loop.full_protocol, None)
    assert [FAM.key(c) for c, _, _ in again.select(model, data, it=7, k=10)] == [FAM.key(c) for c, _, _ in
                                                                                     picked]  # seeded by iteration


def test_one_iterations_data_holds_labels_features_and_noise(measured) -> None:
    _, _, loop = measured
    data = loop.data()
    assert isinstance(data, TrainingData) and len(data.train) == len(data.y) == data.X.shape[0] >= 10
    assert data.fit_kw() == {} or "sample_noise" in data.fit_kw()
    assert all(isinstance(a, Asked) for a in loop.next_asks())  # the loop goes on from where the parts left it


def test_measuring_tells_each_result_as_it_arrives_with_the_protocol_it_was_asked_at() -> None:
    from types import SimpleNamespace

    from acquisition.loop.measure import measure_asks

    calls, told = [], []

    class Recorder:
        def measure(self, family, config, protocol=None):
            calls.append(protocol)
            return SimpleNamespace(ok=config["i"] != 1, config=config)

    cheap = SimpleNamespace(id="quick")
    asks = [Asked(f"k{i}", {"i": i}, "train", "random", "quick" if i == 2 else "full", "0") for i in range(3)]
    measure_asks(Recorder(), FAM, asks, lambda a, m: told.append((a.key, m.ok)), cheap)
    assert calls == [None, None, cheap]  # the cheap protocol only for the ask made at the cheap fidelity
    assert told == [("k0", True), ("k1", False), ("k2", True)]  # every result told, failed ones too, in order


def test_a_traced_family_draws_the_fresh_candidates_its_count_budget_allows(monkeypatch) -> None:
    """Closed-form counts: a fresh pool of pool_size. Traced counts: as many fresh candidates as COUNT_SHARE of the
    batch's device time counts (at least 2 k), topped up with the last pool's unasked candidates, none measured."""
    import acquisition.loop.query as query

    def draw(n, method, seed, exclude):
        return FAM.space.sample(n, method=method, seed=seed, exclude=exclude, family=FAM.name)

    s = spec(pool_size=300)
    rows = [{"cost_s": 0.5}] * 12
    data = TrainingData(rows, np.zeros((12, 1)), np.ones(12), [], np.zeros((0, 1)), np.zeros(0), rows)
    q = BatchQuery(None, s, None, type("E", (), {"family": FAM})(), None, draw, None, None)
    assert q.fresh_size(data, 10) == 300 and len(q.candidates(data, 1, 10, set())) == 300 and q.carry is None

    monkeypatch.setattr("profiler.families.trace_seconds", lambda family: 0.01)  # 10 ms a configuration
    assert q.fresh_size(data, 10) == int(query.COUNT_SHARE * 10 * 0.5 / 0.01)  # 25
    monkeypatch.setattr("profiler.families.trace_seconds", lambda family: 1.0)
    assert q.fresh_size(data, 10) == 20  # never fewer than twice the batch
    monkeypatch.setattr("profiler.families.trace_seconds", lambda family: float("nan"))
    assert q.fresh_size(data, 10) == 20  # nothing traced yet

    first = q.candidates(data, 1, 10, set())
    q.carry = first[5:]  # what select keeps: the pool less what it asked
    measured = {FAM.key(first[7])}
    second = q.candidates(data, 2, 10, measured)
    keys = [FAM.key(c) for c in second]
    assert len(second) == 20 + 14 and len(set(keys)) == len(keys) and not measured & set(keys)
    assert keys[20:] == [FAM.key(c) for c in first[5:] if FAM.key(c) not in measured]  # fresh first, then kept
