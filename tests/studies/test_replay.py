"""Replay tables and the replay oracle: parsing and its errors, the cost model, measurement and sampling, and
replay campaigns run by the ordinary engine."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest

from acquisition.campaign import CampaignSpec
from acquisition.engine import run_campaign
from acquisition.store import Store
from studies.replay import ProtocolCost, ReplayError, ReplayOracle, ReplayTable, parse_where
from tests.quick_models import QUICK

PARAMS = ["hw", "cin", "k", "act"]


def grid_rows(device: str = "a", scale: float = 1.0) -> list[dict[str, str]]:
    rows = []
    for hw, cin, k, act in itertools.product((7, 14, 28, 56), (16, 24, 32, 48, 64), (3, 5), ("relu", "swish")):
        ms = scale * 1e-4 * hw * hw * cin * k * k * (1.3 if act == "swish" else 1.0)
        rows.append({"hw": str(hw), "cin": str(cin), "k": str(k), "act": act, "device": device, "ms": f"{ms:.6f}"})
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def two_devices(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "t.csv", grid_rows("a") + grid_rows("b", scale=3.0))


def test_from_csv_with_a_filter_infers_types_and_keeps_latencies(two_devices: Path) -> None:
    t = ReplayTable.from_csv(two_devices, params=PARAMS, latency_col="ms", where=["device=b"])
    assert len(t) == 80 and t.family.name == "t-b"
    assert t.family.space["hw"].kind == "choice" and t.family.space["act"].kind == "categorical"
    i = t.keys.index(t.family.key({"hw": 14, "cin": 32, "k": 5, "act": "relu"}))
    assert t.latency_ms[i] == pytest.approx(3.0 * 1e-4 * 14 * 14 * 32 * 25, rel=1e-5)
    assert t.cost_s is None and t.source["sha256"] and t.source["where"] == {"device": ["b"]}


def test_types_can_be_overridden_and_units_converted(tmp_path: Path) -> None:
    rows = [{**r, "s": str(float(r["ms"]) / 1e3)} for r in grid_rows()]
    t = ReplayTable.from_csv(write_csv(tmp_path / "u.csv", rows), params=PARAMS, latency_col="s", unit="s",
                             categorical=["k"])
    assert t.family.space["k"].kind == "categorical"
    ref = ReplayTable.from_csv(tmp_path / "u.csv", params=PARAMS, latency_col="ms")
    assert np.allclose(np.sort(t.latency_ms), np.sort(ref.latency_ms), rtol=1e-4)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"params": ["hw", "nope"], "latency_col": "ms"}, "column 'nope' is not in the table"),
    ({"params": PARAMS, "latency_col": "lat"}, "column 'lat' is not in the table"),
    ({"params": PARAMS, "latency_col": "ms", "where": ["device=c"]}, "matches no rows (values of 'device' are a, b)"),
    ({"params": PARAMS, "latency_col": "ms", "where": ["device"]}, "filter 'device' is not allowed"),
    ({"params": PARAMS, "latency_col": "ms", "unit": "min"}, "unit='min' is not allowed"),
    ({"params": PARAMS, "latency_col": "ms"}, "hold the same configuration"),
    ({"params": PARAMS, "latency_col": "ms", "duplicates": "mean"}, "duplicates='mean' is not allowed"),
    ({"params": [*PARAMS, "ms"], "latency_col": "ms"}, "cannot be both a parameter and the latency"),
])
def test_bad_tables_and_arguments_name_the_problem(two_devices: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ReplayError) as e:
        ReplayTable.from_csv(two_devices, **kwargs)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_conflicting_duplicates_name_both_lines_and_policies_merge_them(two_devices: Path) -> None:
    with pytest.raises(ReplayError, match=r"lines 2 and 82 hold the same configuration hw=7, cin=16, k=3, act=relu"):
        ReplayTable.from_csv(two_devices, params=PARAMS, latency_col="ms")
    med = ReplayTable.from_csv(two_devices, params=PARAMS, latency_col="ms", duplicates="median")
    low = ReplayTable.from_csv(two_devices, params=PARAMS, latency_col="ms", duplicates="min")
    only_a = ReplayTable.from_csv(two_devices, params=PARAMS, latency_col="ms", where={"device": "a"})
    assert len(med) == len(low) == 80
    assert np.allclose(med.latency_ms, 2.0 * only_a.latency_ms, rtol=1e-4)
    assert np.allclose(low.latency_ms, only_a.latency_ms)


def test_identical_repeats_are_merged_silently(tmp_path: Path) -> None:
    rows = grid_rows()
    t = ReplayTable.from_csv(write_csv(tmp_path / "d.csv", rows + rows[:5]), params=PARAMS, latency_col="ms")
    assert len(t) == 80


@pytest.mark.parametrize(("bad", "why"), [("abc", "is not a finite number"), ("-1", "is not positive"),
                                          ("0", "is not positive"), ("", "is not a finite number"),
                                          ("nan", "is not a finite number")])
def test_bad_latencies_are_errors_naming_the_line_or_dropped(tmp_path: Path, bad: str, why: str) -> None:
    rows = grid_rows()
    rows[6]["ms"] = bad
    path = write_csv(tmp_path / "b.csv", rows)
    with pytest.raises(ReplayError, match=f"line 8: ms={bad!r} {why}"):
        ReplayTable.from_csv(path, params=PARAMS, latency_col="ms")
    assert len(ReplayTable.from_csv(path, params=PARAMS, latency_col="ms", bad_rows="drop")) == 79


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="does not exist"):
        ReplayTable.from_csv(tmp_path / "none.csv", params=PARAMS, latency_col="ms")
    (tmp_path / "e.csv").write_text("hw,ms\n")
    with pytest.raises(ReplayError, match="has no data rows"):
        ReplayTable.from_csv(tmp_path / "e.csv", params=["hw"], latency_col="ms")


def test_parse_where_groups_values_by_column() -> None:
    assert parse_where(["device=a", "act=relu", "device=b"]) == {"device": ["a", "b"], "act": ["relu"]}
    assert parse_where({"device": "a"}) == {"device": ["a"]}


def test_protocol_cost_models() -> None:
    adaptive, fixed = ProtocolCost(), ProtocolCost("fixed", overhead_s=0.0, warmup=10, repeats=100)
    # a tiny block: overhead + warm-up floor + the min_seconds floor of timed work
    assert adaptive(0.01) == pytest.approx(0.05 + 0.02 + 0.15)
    # a 50 ms block: 20 repeats (1 s) of timed work plus 2 warm-up calls
    assert adaptive(50.0) == pytest.approx(0.05 + 0.1 + 1.0)
    # a 500 ms block is capped at max_seconds of timed work
    assert adaptive(500.0) == pytest.approx(0.05 + 1.0 + 2.0)
    assert fixed(2.0) == pytest.approx(110 * 0.002)
    assert np.all(np.diff(adaptive(np.geomspace(0.01, 1e3, 50))) >= 0)
    with pytest.raises(ReplayError, match="cost protocol='paper' is not allowed"):
        ProtocolCost("paper")


def test_oracle_measures_from_the_table_and_charges_the_cost(two_devices: Path) -> None:
    t = ReplayTable.from_csv(two_devices, params=PARAMS, latency_col="ms", where=["device=a"])
    o = ReplayOracle(t)
    cfg = {"hw": "28", "cin": "48", "k": "3", "act": "swish"}
    m = o.measure(t.family, cfg)
    assert m.ok and m.timing.min_ms == pytest.approx(1e-4 * 28 * 28 * 48 * 9 * 1.3, rel=1e-5)
    assert m.cost_s == pytest.approx(float(ProtocolCost()(m.timing.min_ms)))
    assert m.platform == o.platform_id and o.platform_id.startswith("replay-")
    assert o.measure(t.family, {"hw": 56, "cin": 64, "k": 5, "act": "relu"}).timing.min_ms == pytest.approx(
        1e-4 * 56 * 56 * 64 * 25, rel=1e-5)
    other = ReplayTable.from_csv(two_devices, params=PARAMS, latency_col="ms", where=["device=b"])
    assert ReplayOracle(other).platform_id != o.platform_id  # another device is another platform


def test_a_configuration_outside_the_table_is_a_failed_measurement(tmp_path: Path) -> None:
    rows = [r for r in grid_rows() if not (r["hw"] == "7" and r["cin"] == "16" and r["k"] == "3")]
    t = ReplayTable.from_csv(write_csv(tmp_path / "h.csv", rows), params=PARAMS, latency_col="ms")
    m = ReplayOracle(t).measure(t.family, {"hw": 7, "cin": 16, "k": 3, "act": "relu"})
    assert not m.ok and m.reason == "configuration not in the replay table" and m.cost_s == 0.0


def test_a_cost_column_is_charged_as_recorded(tmp_path: Path) -> None:
    rows = [{**r, "cost": str(0.5 + i / 100)} for i, r in enumerate(grid_rows())]
    t = ReplayTable.from_csv(write_csv(tmp_path / "c.csv", rows), params=PARAMS, latency_col="ms", cost_col="cost")
    o = ReplayOracle(t)
    assert o.measure(t.family, t.configs[3]).cost_s == pytest.approx(0.53)
    assert o.protocol.id != ReplayOracle(ReplayTable.from_csv(tmp_path / "c.csv", params=PARAMS,
                                                              latency_col="ms")).protocol.id


def test_sampling_draws_distinct_free_rows_reproducibly(two_devices: Path) -> None:
    t = ReplayTable.from_csv(two_devices, params=PARAMS, latency_col="ms", where=["device=a"])
    o = ReplayOracle(t)
    a = o.sample(30, seed=3)
    assert a == o.sample(30, seed=3) and a != o.sample(30, seed=4)
    keys = {t.family.key(c) for c in a}
    assert len(keys) == 30
    rest = o.sample(100, seed=0, exclude=keys)
    assert len(rest) == 50 and not keys & {t.family.key(c) for c in rest}
    sob = o.sample(16, "sobol", seed=1)
    assert len({t.family.key(c) for c in sob}) == 16
    # a space-filling design covers every level of every parameter better than chance would need to
    assert {c["hw"] for c in sob} == {7, 14, 28, 56} and {c["act"] for c in sob} == {"relu", "swish"}
    assert o.sample(5, "sobol", seed=0, exclude={t.family.key(c) for c in t.configs}) == []


def test_from_store_replays_stored_measurements_with_their_cost(tmp_path: Path) -> None:
    from profiler.families import get_family
    from tests.acquisition.synthetic_profiler import SyntheticProfiler

    fam = get_family("resv1")
    with Store(tmp_path / "s.sqlite") as store:
        from acquisition.profiling import profile_configs

        prof = SyntheticProfiler()
        profile_configs(store, prof, fam, fam.space.sample(12, seed=0), progress=False)
    t = ReplayTable.from_store(tmp_path / "s.sqlite", "resv1")
    assert len(t) == 12 and t.family is fam and t.cost_s is not None
    o = ReplayOracle(t)
    m = o.measure(fam, t.configs[0])
    assert m.timing.min_ms == pytest.approx(t.latency_ms[0]) and m.cost_s == pytest.approx(t.cost_s[0])
    with pytest.raises(ReplayError, match="holds no ok measurement of family 'mbconv'"):
        ReplayTable.from_store(tmp_path / "s.sqlite", "mbconv")


def smooth_table(n_side: int = 9) -> ReplayTable:
    rows = []
    for a, b, c in itertools.product(range(1, n_side + 1), range(1, n_side + 1), ("x", "y", "z")):
        ms = 0.05 * a ** 1.5 * b * {"x": 1.0, "y": 1.7, "z": 2.5}[c]
        rows.append({"a": a, "b": b, "c": c, "ms": ms})
    return ReplayTable.from_rows("smooth", rows, params=["a", "b", "c"], latency_col="ms")


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random", "diverse"])
def test_a_replay_campaign_is_an_ordinary_campaign(tmp_path: Path, strategy: str) -> None:
    t = smooth_table()
    o = ReplayOracle(t)
    spec = CampaignSpec(name="r", family=t.family.name, strategy=strategy, model=QUICK, target_spearman=0.95,
                        budget_samples=150, batch_size=10, initial_size=10, validation_size=60, seed=1)
    with Store(tmp_path / "r.sqlite") as store:
        res = run_campaign(store, spec, o, t.family, bundle_path=str(tmp_path / "r.bundle"))
        assert res.state == "met" and res.metrics["spearman"] >= 0.95
        members = store.members("r")
        keys = [m["key"] for m in members]
        assert len(keys) == len(set(keys)) and set(keys) <= set(t.keys)
        charged = store.db.execute("select sum(seconds) from ledger where campaign = 'r' and activity in "
                                   "('profile', 'validation_profile')").fetchone()[0]
        assert charged == pytest.approx(sum(m["cost_s"] for m in members))
        assert res.profiling_hours > 0 and (tmp_path / "r.bundle").exists()


def test_a_used_up_table_ends_the_campaign_as_exhausted(tmp_path: Path) -> None:
    t = smooth_table(4)  # 48 rows
    spec = CampaignSpec(name="x", family=t.family.name, strategy="random", model="linear", target_spearman=1.0,
                        budget_samples=1000, batch_size=10, initial_size=10, validation_size=10, seed=0)
    with Store(tmp_path / "x.sqlite") as store:
        res = run_campaign(store, spec, ReplayOracle(t), t.family)
        assert res.state == "exhausted"
        assert len(store.members("x")) == 48


def test_ledger_cost_is_fitted_on_what_the_profiler_charged(tmp_path: Path) -> None:
    from acquisition.profiling import profile_configs
    from acquisition.store import Store
    from profiler.families import get_family
    from studies.replay import LedgerCost
    from tests.acquisition.synthetic_profiler import SyntheticProfiler

    fam, prof = get_family("mbconv"), SyntheticProfiler()
    db = tmp_path / "ledger.sqlite"
    with Store(db) as store:
        profile_configs(store, prof, fam, fam.space.sample(20, seed=0), progress=False)
    with pytest.raises(ReplayError, match=r"20 charged ok measurements.*at least 30"):
        LedgerCost.from_store(db)
    with Store(db) as store:
        profile_configs(store, prof, fam, fam.space.sample(120, seed=1), progress=False)
        rows = [(r["min_ms"], r["cost_s"]) for r in store.measurements(status="ok")]
    cost = LedgerCost.from_store(db)
    assert cost.source["rows"] == len(rows)
    ms = np.array(sorted(r[0] for r in rows))
    fitted = cost(ms)
    assert np.all(np.diff(fitted) >= 0)  # never cheaper for a slower block
    truth = ms * 0.045 + 0.05  # what SyntheticProfiler charges
    inner = slice(5, -5)
    assert np.allclose(fitted[inner], truth[inner], rtol=0.05)
    assert cost(ms[0] / 10) == pytest.approx(fitted[0]) and cost(ms[-1] * 10) == pytest.approx(fitted[-1])
    # a replay oracle charges it, and the protocol id says which cost model it used
    t = smooth_table(4)
    o = ReplayOracle(t, cost)
    m = o.measure(t.family, t.configs[0])
    assert m.cost_s == pytest.approx(float(cost(t.latency_ms[0])))
    assert o.protocol.id != ReplayOracle(t).protocol.id
