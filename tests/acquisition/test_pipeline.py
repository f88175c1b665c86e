"""Pipelined acquisition (acquisition.loop.pipeline): the next batch chosen while the device measures this one,
pending asks excluded and counted, decisions that do not depend on timing, a stop with asks in flight, the run's
clock (wall = busy + idle, charged as device_idle outside the bill) and when ``auto`` pipelines."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest

from acquisition.bill import campaign_bill
from acquisition.campaign import CampaignError, CampaignSpec
from acquisition.engine import run_campaign
from acquisition.loop import pipeline
from acquisition.loop.pipeline import IDLE_ACTIVITY, pipelined
from acquisition.store import Store
from profiler.families import get_family
from studies.replay import ReplayOracle, ReplayTable
from tests.acquisition.synthetic_profiler import SyntheticProfiler
from tests.quick_models import QUICK

FAM = get_family("mbconv")


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> ReplayTable:
    path = tmp_path_factory.mktemp("t") / "t.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["hw", "c", "k", "ms"])
        w.writerows([hw, c, k, 1e-3 * hw * hw * c * k * (1 + 0.1 * ((hw * c) % 7))]
                    for hw in range(7, 57, 7) for c in range(8, 129, 8) for k in (1, 3, 5))
    return ReplayTable.from_csv(path, params=["hw", "c", "k"], latency_col="ms")


def spec(name: str = "p", family: str = "mbconv", **kw) -> CampaignSpec:
    base = {"name": name, "family": family, "model": QUICK, "target_spearman": 0.9999, "budget_samples": 70,
            "batch_size": 10, "initial_size": 10, "pool_size": 300, "folds": 3, "pipeline": "on"}
    base.update(kw)
    return CampaignSpec(**base)


def asked(store: Store, name: str) -> list[tuple[str, str]]:
    return [(a["batch"], a["key"]) for a in store.asks(name)]


def test_pipelined_replay_asks_ahead_without_asking_twice(table: ReplayTable, tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        res = run_campaign(store, spec(family=table.family.name), ReplayOracle(table), table.family)
        its = store.iterations("p")
        assert res.state == "budget" and res.n_train == 70
        # after the first fit every iteration chose with the batch before it in flight
        assert its[0]["pending"] == 0 and all(it["pending"] == 10 for it in its[1:-1]) and its[-1]["pending"] == 0
        assert its[1]["n_train"] == its[0]["n_train"] and its[1]["fit_s"] == 0  # the pipe filled by the same model
        keys = [k for _, k in asked(store, "p")]
        assert len(keys) == len(set(keys)) == 70, "a pending configuration was asked again"
        members = store.members("p")
        assert len(members) == len({m["key"] for m in members}) == 70 and not store.pending_asks("p")
        # requested = stored = charged, and the bill is the measurements' cost alone
        charged = store.db.execute("select count(*) from ledger where campaign = 'p' and activity = 'profile'"
                                   ).fetchone()[0]
        assert charged == 70 and campaign_bill(store, "p").total_s == pytest.approx(sum(m["cost_s"] for m in members))


def test_the_clock_adds_up_and_idle_is_charged_outside_the_bill(table: ReplayTable, tmp_path: Path) -> None:
    out = {}
    for mode in ("off", "on"):
        with Store(tmp_path / f"{mode}.sqlite") as store:
            res = run_campaign(store, spec(family=table.family.name, pipeline=mode), ReplayOracle(table),
                               table.family)
            d = res.device
            assert d.virtual and d.pipelined == (mode == "on")
            assert d.wall_s == pytest.approx(d.busy_s + d.idle_s) and d.busy_s == pytest.approx(
                campaign_bill(store, "p").total_s)
            idle = store.db.execute("select sum(seconds) from ledger where activity = ?", [IDLE_ACTIVITY]).fetchone()[0]
            assert idle == pytest.approx(d.idle_s)
            out[mode] = d
            if mode == "off":  # sequential: the device waits for every engine step
                engine = sum(it["fit_s"] + it["query_s"] for it in store.iterations("p"))
                assert d.idle_s >= engine


def test_decisions_do_not_depend_on_how_fast_the_device_answers(tmp_path: Path) -> None:
    runs = []
    for i, sleep in enumerate((0.0, 0.004)):
        with Store(tmp_path / f"s{i}.sqlite") as store:
            run_campaign(store, spec(budget_samples=50), SyntheticProfiler(sleep_s=sleep), FAM)
            runs.append(asked(store, "p"))
            assert not store.pending_asks("p")
    assert runs[0] == runs[1]


def test_a_stop_with_a_batch_in_flight_keeps_what_was_measured_and_drops_the_rest(tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        # a device far slower than the engine: the stop is decided while the next batch has barely started
        res = run_campaign(store, spec(target_spearman=0.5, budget_samples=400, stop_rule="bound", confirm=1,
                                       verification="cv"), SyntheticProfiler(sleep_s=0.05), FAM)
        assert res.state == "met"
        fired = next(it for it in store.iterations("p") if it["fired"])
        assert fired["pending"] == 10
        assert not store.pending_asks("p"), "asks never started are dropped"
        # what the device measured or started meanwhile is kept: told, charged, in the campaign
        assert fired["n_train"] <= res.n_train < fired["n_train"] + 10
        assert res.device.dropped == fired["n_train"] + 10 - res.n_train
        charged = store.db.execute("select count(*) from ledger where campaign = 'p' and activity = 'profile'"
                                   ).fetchone()[0]
        assert charged == len(store.members("p")) == res.n_train


def test_the_sample_budget_counts_pending_asks(table: ReplayTable, tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        res = run_campaign(store, spec(family=table.family.name, budget_samples=45), ReplayOracle(table),
                           table.family)
        assert res.n_train == 45 and len(store.asks("p")) == 45


def test_a_used_up_table_is_not_exhausted_while_asks_are_in_flight(table: ReplayTable, tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        res = run_campaign(store, spec(family=table.family.name, budget_samples=None, batch_size=100,
                                       initial_size=40), ReplayOracle(table), table.family)
        assert res.state == "exhausted" and res.n_train == len(table)


def test_sequential_runs_choose_with_nothing_pending(table: ReplayTable, tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        res = run_campaign(store, spec(family=table.family.name, pipeline="off"), ReplayOracle(table), table.family)
        assert not res.device.pipelined and all(it["pending"] == 0 for it in store.iterations("p"))
        assert [it["n_train"] for it in store.iterations("p")] == [10, 20, 30, 40, 50, 60, 70]


def test_a_resume_may_switch_pipelining(table: ReplayTable, tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        run_campaign(store, spec(family=table.family.name, budget_samples=30), ReplayOracle(table), table.family)
        res = run_campaign(store, spec(family=table.family.name, budget_samples=50, pipeline="off"),
                           ReplayOracle(table), table.family)
        assert res.n_train == 50 and not res.device.pipelined


def test_pipeline_setting_is_checked() -> None:
    with pytest.raises(CampaignError, match="pipeline='always'"):
        spec(pipeline="always").validate()


def _cpu(threads: int = 1, platform: str = "cpu-1") -> SimpleNamespace:
    return SimpleNamespace(device=SimpleNamespace(kind="cpu", threads=threads), platform_id=platform)


class _Floors:
    def __init__(self, value: float | None) -> None:
        self.value = value

    def latest_noise_floor(self, platform: str) -> dict | None:
        if self.value is None:
            return None
        return {"checks": [{"name": "other", "status": "ok"},
                           {"name": "interference", "status": "ok", "value": self.value}]}


def test_auto_pipelines_except_where_the_engine_would_disturb_a_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    auto = spec(pipeline="auto")
    assert pipelined(auto, SimpleNamespace(device=SimpleNamespace(kind="cuda")))
    assert pipelined(auto, SyntheticProfiler())  # replay tables and stand-ins measure nothing
    assert pipelined(spec(pipeline="on"), _cpu()) and not pipelined(spec(pipeline="off"), SyntheticProfiler())
    monkeypatch.setattr(pipeline, "_allowed_cores", lambda: {0, 1})
    assert pipelined(auto, _cpu()) and not pipelined(auto, _cpu(threads=2))
    assert pipelined(auto, _cpu(), _Floors(None)) and pipelined(auto, _cpu(), _Floors(0.01))
    assert not pipelined(auto, _cpu(), _Floors(0.05)) and not pipelined(auto, _cpu(), _Floors(-0.05))
    monkeypatch.setattr(pipeline, "_allowed_cores", lambda: {0})
    assert not pipelined(auto, _cpu())


@pytest.mark.parametrize("strategy", ["random", "uncertainty", "diverse", "representative", "cost-aware"])
def test_every_strategy_chooses_around_a_batch_in_flight(strategy: str, table: ReplayTable, tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        res = run_campaign(store, spec(family=table.family.name, strategy=strategy, budget_samples=50),
                           ReplayOracle(table), table.family)
        keys = [k for _, k in asked(store, "p")]
        assert res.n_train == 50 and len(keys) == len(set(keys)) == 50


def test_ask_tell_hands_out_the_next_batch_while_one_is_out(tmp_path: Path) -> None:
    from acquisition import Campaign, Platform

    prof = SyntheticProfiler()
    with Campaign(tmp_path / "a.sqlite", "c", family="mbconv", platform=Platform("board"), cost_s=1.0,
                  model=QUICK, batch_size=10, initial_size=10, pool_size=300, budget_samples=60,
                  target_spearman=0.9999) as c:
        design = c.ask()
        assert len(design) == 10 and c.ask() == [], "the design is measured before the first fit"
        for a in design:
            c.tell(a.key, prof.measure(FAM, a.config).timing.min_ms)
        first = c.ask()
        second = c.ask()  # the first is out, not told: the next one is chosen beside it
        assert len(first) == len(second) == 10 and not {a.key for a in first} & {a.key for a in second}
        assert c.ask() == [], "two batches out: the next waits for a tell"
        assert c.store.iterations("c")[-1]["pending"] == 10
        for a in first + second:
            c.tell(a.key, prof.measure(FAM, a.config).timing.min_ms)
        assert len(c.ask()) == 10
    with Campaign(tmp_path / "b.sqlite", "c", family="mbconv", platform=Platform("board"), cost_s=1.0,
                  model=QUICK, batch_size=10, initial_size=10, pool_size=300, pipeline="off") as c:
        for a in c.ask():
            c.tell(a.key, prof.measure(FAM, a.config).timing.min_ms)
        assert len(c.ask()) == 10 and c.ask() == []


def test_a_doctor_run_that_found_interference_turns_auto_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pipeline, "_allowed_cores", lambda: {0, 1})
    with Store(tmp_path / "a.sqlite") as store:
        store.ensure_platform("cpu-1", {"kind": "cpu"}, "cpu")
        row = {"verdict": "ok", "probe_family": "mbconv", "probe_n": 8, "seconds": 1.0, "reasons": [],
               "checks": [{"name": "interference", "status": "info", "reading": "moved", "value": 0.06}]}
        assert pipelined(spec(pipeline="auto"), _cpu(), store)  # no doctor run on this platform yet
        store.record_noise_floor("cpu-1", row)
        assert not pipelined(spec(pipeline="auto"), _cpu(), store)
        store.record_noise_floor("cpu-1", {**row, "checks": [{**row["checks"][0], "value": 0.004}]})
        assert pipelined(spec(pipeline="auto"), _cpu(), store)  # the latest run decides
