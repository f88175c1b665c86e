"""The fidelity lever: cheap measurements early, probes at both fidelities, the learned offset, the switch to
full fidelity, the bill, resume, and a predictor that predicts full-fidelity latency."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from acquisition.bill import campaign_bill
from acquisition.campaign import CampaignError, CampaignSpec
from acquisition.engine import run_campaign
from acquisition.fidelity import CHEAP_PROTOCOL, MIN_PAIRS_FOR_SLOPE, PROBE_SHARE, PROBES_FIRST, Fidelity
from acquisition.profiling import profile_configs
from acquisition.store import Store
from profiler.families import get_family
from profiler.protocol import Timing
from profiler.worker import Measurement
from surrogates import load_bundle
from tests.acquisition.synthetic_profiler import SyntheticProfiler
from tests.quick_models import QUICK
from tests.surrogates.synthetic import roofline_ms

FAM = get_family("mbconv")
CHEAP_BIAS = 1.06  # the cheap fidelity reads 6 % high (the minimum of fewer calls)


class TwoFidelityProfiler(SyntheticProfiler):
    """The synthetic profiler with a per-call protocol: any protocol other than its own is the cheap fidelity
    (reads ``CHEAP_BIAS`` high with 3 % noise of its own, costs a fifth)."""

    supports_protocol = True

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.cheap_calls = 0

    def measure(self, family: Any, config: dict[str, Any], protocol: Any = None) -> Measurement:
        m = super().measure(family, config)
        if protocol is None or protocol.id == self.protocol.id or not m.ok:
            return m
        self.cheap_calls += 1
        seed = int.from_bytes(hashlib.sha256((m.key + protocol.id).encode()).digest()[:4], "little")
        ms = m.timing.min_ms * CHEAP_BIAS * float(np.random.default_rng(seed).lognormal(0.0, 0.03))
        t = Timing(min_ms=ms, median_ms=ms * 1.02, p10_ms=ms, p90_ms=ms * 1.05, mean_ms=ms * 1.02,
                   n=20, timed_s=ms * 0.02, warmup_n=2, warmup_s=ms * 0.002, stop="stable", spread=1.0)
        return Measurement(family=family.name, key=m.key, config=m.config, protocol=protocol.id,
                           platform=self.platform_id, status="ok", cost_s=m.cost_s / 5, timing=t, build_s=0.01)


def spec(name: str = "f1", **kw: Any) -> CampaignSpec:
    base = {"name": name, "family": "mbconv", "model": QUICK, "target_spearman": 0.97, "budget_samples": 200,
            "batch_size": 20, "initial_size": 20, "pool_size": 500, "folds": 3}
    base.update(kw)
    return CampaignSpec(**base)


# -- the offset and the labels ---------------------------------------------------------------------------------
def _rows(cheap: dict[str, float], full: dict[str, float]) -> list[dict[str, Any]]:
    rows = [{"key": k, "protocol": "c", "min_ms": v, "drawn": "random", "cost_s": 0.1} for k, v in cheap.items()]
    rows += [{"key": k, "protocol": "f", "min_ms": v, "drawn": "probe", "cost_s": 0.5} for k, v in full.items()]
    return rows


def test_offset_is_the_median_ratio_of_the_pairs_then_a_robust_line() -> None:
    fid = Fidelity("auto", cheap_id="c", full_id="f")
    fid.learn(_rows({"a": 1.1, "b": 2.2, "c": 4.0}, {"a": 1.0, "b": 2.0}))
    assert fid.n_pairs == 2 and fid.offset_b == 0
    assert fid.correct([1.1])[0] == pytest.approx(1.0)
    # many pairs whose ratio depends on latency (small blocks read relatively higher): a line, not a constant
    lat = np.geomspace(0.1, 10, 20)
    cheap = {f"k{i}": t * (1.0 + 0.1 / np.sqrt(t)) for i, t in enumerate(lat)}
    fid.learn(_rows(cheap, {f"k{i}": t for i, t in enumerate(lat)}))
    assert fid.n_pairs == 20 >= MIN_PAIRS_FOR_SLOPE and fid.offset_b != 0
    err = np.abs(fid.correct(list(cheap.values())) / lat - 1)
    const = np.abs(np.asarray(list(cheap.values())) * np.exp(np.median(np.log(lat / list(cheap.values())))) / lat - 1)
    assert np.max(err) < 0.1 and np.max(err) < 0.5 * np.max(const)  # a constant is off by far more at the ends
    assert np.isfinite(fid.noise) and fid.noise < 0.05


def test_labels_prefer_full_fidelity_and_keep_how_a_configuration_was_drawn() -> None:
    fid = Fidelity("auto", cheap_id="c", full_id="f")
    rows = [*_rows({"a": 1.1, "b": 2.2}, {"a": 1.0}), {"key": "z", "protocol": "other", "min_ms": 9.0}]
    out = {r["key"]: r for r in fid.labels(rows)}
    assert set(out) == {"a", "b"}  # another protocol's row is not used
    assert out["a"]["fidelity"] == "full" and out["a"]["y"] == 1.0 and out["a"]["drawn"] == "random"
    assert out["b"]["fidelity"] == "cheap" and out["b"]["y"] == pytest.approx(2.0)


def test_switch_rule() -> None:
    fid = Fidelity("auto", cheap_id="c", full_id="f")
    lat = np.geomspace(0.1, 10, 10)
    noise = np.random.default_rng(0).lognormal(0, 0.03, 10)
    rows = _rows({f"k{i}": t * 1.05 * e for i, (t, e) in enumerate(zip(lat, noise, strict=True))},
                 {f"k{i}": t for i, t in enumerate(lat)})
    fid.learn(rows)
    assert 0.005 < fid.noise < 0.08
    assert fid.next_is_cheap(rows, verified_mape=100 * 30.0 * fid.noise)  # far off: cheap
    assert not fid.next_is_cheap(rows, verified_mape=100 * fid.noise)  # at the noise: full
    assert fid.next_is_cheap(rows[:3] + rows[10:13], verified_mape=0.0)  # too few pairs to know the noise
    assert fid.next_is_cheap(rows, verified_mape=float("nan"))
    switched = [*rows, {"key": "n", "protocol": "f", "min_ms": 1.0, "drawn": "strategy"}]
    assert fid.switched(switched) and not fid.next_is_cheap(switched, verified_mape=1e9)  # for good
    assert not Fidelity("full", cheap_id="c", full_id="f").next_is_cheap([], 1e9)
    assert Fidelity("auto", cheap_id=None, full_id="f").mode == "full"  # a profiler with one fidelity
    # probes: 4 in the first batch, then enough to keep 5 % of the cheap configurations probed
    assert fid.n_probes([], 20) == PROBES_FIRST and fid.n_probes([], 2) == 2
    assert fid.n_probes(rows, 20) == 0  # 10 pairs for 10 cheap rows: nothing to add
    many = [{"key": f"x{i}", "protocol": "c", "min_ms": 1.0} for i in range(290)]
    assert fid.n_probes(rows + many, 20) == int(np.ceil(PROBE_SHARE * 320)) - 10
    with pytest.raises(ValueError, match="fidelity='fast'"):
        Fidelity("fast", cheap_id="c", full_id="f")


# -- the campaign ------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("pipeline", ["off", "on"])
def test_auto_fidelity_campaign_measures_cheap_probes_and_predicts_full_fidelity(pipeline: str, tmp_path: Path
                                                                                 ) -> None:
    prof = TwoFidelityProfiler()
    with Store(tmp_path / "f.sqlite") as store:
        res = run_campaign(store, spec(pipeline=pipeline), prof, FAM, bundle_path=str(tmp_path / "f.bundle"))
        assert res.state == "met"
        members = store.members("f1")
        cheap_id = CHEAP_PROTOCOL.id
        cheap = [m for m in members if m["protocol"] == cheap_id]
        probes = [m for m in members if m["drawn"] == "probe"]
        assert cheap and members[0]["protocol"] == cheap_id  # the initial design is measured cheaply
        assert all(m["protocol"] == prof.protocol.id for m in probes)
        # probes re-measure configurations of the cheap batches: 4 of the design, then 1 per 20 cheap configs
        assert {m["key"] for m in probes} <= {m["key"] for m in cheap}
        its = store.iterations("f1")
        due = max(PROBES_FIRST, int(np.ceil(PROBE_SHARE * len(cheap))))
        # pipelined, the batch in flight when the campaign stopped has no probes (nothing fitted after it)
        assert len(probes) == due if pipeline == "off" else PROBES_FIRST <= len(probes) <= due
        assert its[-1]["fidelity_pairs"] == len(probes)
        # the offset is what the probes measured (their median ratio), near the true bias (3 % noise per pair)
        full = {m["key"]: m["min_ms"] for m in probes}
        ratios = [full[m["key"]] / m["min_ms"] for m in cheap if m["key"] in full]
        assert its[-1]["fidelity_offset"] == pytest.approx(np.exp(np.median(np.log(ratios))) - 1)
        assert its[-1]["fidelity_offset"] == pytest.approx(1 / CHEAP_BIAS - 1, abs=0.035)
        # never cheap after full (the switch is for good); no configuration measured cheap twice
        fids = [it["fidelity"] for it in its if it["fidelity"]]
        assert "cheap" not in fids[fids.index("full"):] if "full" in fids else True
        assert len({m["key"] for m in cheap}) == len(cheap)
        # samples are configurations: the probes re-measure, they are not more samples
        assert res.n_train == len({m["key"] for m in members})
        # pipelined: plus what the device measured or started while the last iteration decided to stop
        assert res.n_train == its[-1]["n_train"] + (its[-1]["inflight"] if pipeline == "on" else 0)
        # the bill: every measurement, both fidelities
        assert campaign_bill(store, "f1").total_s == pytest.approx(sum(m["cost_s"] for m in members))
        assert res.fidelity["cheap"]["rows"] == len(cheap) and res.fidelity["pairs"] == len(probes)
    pred = load_bundle(tmp_path / "f.bundle")
    assert pred.manifest["platform"]["protocol"] == prof.protocol.id
    assert pred.manifest["extra"]["fidelity"]["pairs"] == len(probes)
    # fitted on corrected labels: on its cheaply measured rows it predicts the full-fidelity scale, the cheap
    # reading times the learned offset, not the cheap reading itself
    cfgs = [m["config"] for m in cheap]
    raw = np.asarray([m["min_ms"] for m in cheap])
    truth = np.asarray([roofline_ms(FAM.counts(FAM.validate(c))) for c in cfgs])
    pred_ms = pred.predict(cfgs)
    # (the model smooths its training rows, so the ratio is near the offset, far from 1: half the offset's size)
    offset = its[-1]["fidelity_offset"]
    assert abs(np.median(pred_ms / raw) - (1 + offset)) < abs(offset) / 2
    assert abs(np.median(pred_ms / truth) - 1) < 0.035  # within the probes' error of the truth, not +6 %


@pytest.mark.slow
def test_auto_fidelity_costs_less_than_full_for_the_same_target(tmp_path: Path) -> None:
    bills = {}
    for fid in ("auto", "full"):
        with Store(tmp_path / f"{fid}.sqlite") as store:
            res = run_campaign(store, spec(name=fid, fidelity=fid), TwoFidelityProfiler(), FAM)
            assert res.state == "met"
            bills[fid] = res.profiling_hours
            if fid == "full":
                assert {m["protocol"] for m in store.members(fid)} == {"synthetic-v1"}
    assert bills["auto"] < 0.6 * bills["full"]  # every batch at a fifth of the cost, plus the probes


@pytest.mark.slow
def test_resume_continues_at_the_stored_fidelity_without_measuring_twice(tmp_path: Path) -> None:
    prof = TwoFidelityProfiler()
    with Store(tmp_path / "r.sqlite") as store:
        run_campaign(store, spec(target_spearman=0.9999, budget_samples=100), prof, FAM, max_iterations=2)
        n1, calls1 = len(store.members("f1")), prof.calls
        run_campaign(store, spec(target_spearman=0.9999, budget_samples=100), prof, FAM)
        members = store.members("f1")
        keys = [(m["key"], m["protocol"]) for m in members]
        assert len(keys) == len(set(keys)) and len(members) > n1
        assert prof.calls - calls1 == len(members) - n1  # nothing stored was measured again


def test_a_profiler_with_one_fidelity_measures_everything_at_its_own(tmp_path: Path) -> None:
    with Store(tmp_path / "o.sqlite") as store:
        run_campaign(store, spec(budget_samples=60, target_spearman=0.9999), SyntheticProfiler(), FAM)
        assert {m["protocol"] for m in store.members("f1")} == {"synthetic-v1"}
        assert {m["drawn"] for m in store.members("f1")} <= {"initial", "random", "strategy"}
        assert {it["fidelity"] for it in store.iterations("f1")} <= {"full", None}


def test_profile_configs_with_another_protocol(tmp_path: Path) -> None:
    cfgs = FAM.space.sample(3, method="sobol", seed=0)
    cheap = CHEAP_PROTOCOL
    with Store(tmp_path / "p.sqlite") as store:
        prof = TwoFidelityProfiler()
        assert profile_configs(store, prof, FAM, cfgs, protocol=cheap, progress=False).profiled == 3
        assert profile_configs(store, prof, FAM, cfgs, protocol=cheap, progress=False).reused == 3
        assert profile_configs(store, prof, FAM, cfgs, progress=False).profiled == 3  # the other protocol
        with pytest.raises(ValueError, match="cannot measure with another protocol"):
            profile_configs(store, SyntheticProfiler(), FAM, cfgs, protocol=cheap, progress=False)


def test_fidelity_settings_are_validated_and_old_campaigns_stay_full() -> None:
    with pytest.raises(CampaignError, match="fidelity='cheap'"):
        spec(fidelity="cheap").validate()
    old = spec().as_dict()
    del old["fidelity"]
    assert CampaignSpec.from_dict(old).fidelity == "full"
