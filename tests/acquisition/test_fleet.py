"""The Ray fleet on one private local Ray instance (loopback, 2 CPUs): profiling over a pool and over every
platform at once, campaigns across actors and platforms, an actor killed mid-batch, a hung actor, the coordinator
killed and resumed.

Every actor here is replay-backed (:class:`studies.replay.ReplayOracle`, ``num_cpus=0`` except where the test is
that their CPUs come back): on a 2-core machine two
real CPU measurements at once distort each other, and a replayed block costs what its table says, so the books
(requested, stored, charged) can be checked exactly. Actors that must really hold jobs in flight when they are
killed take their table's cost (0.2 s a block) in wall time (``realtime=True``). Nothing asserted depends on
timing: kills happen between two pumps of the coordinator, when the victim holds jobs in flight; a hung actor
hangs for a minute while its timeout is 10 s (a healthy answer takes milliseconds); waits for something that
takes a second poll up to a deadline.

The pure logic (addresses, names, specs, Ray missing) is tested without Ray in ``tests/profiler/test_actor.py``.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from acquisition.bill import campaign_bill  # noqa: E402
from acquisition.campaign import CampaignSpec  # noqa: E402
from acquisition.fleet_run import LOST_ACTIVITY, lost_charger, profile_fleet, run_fleet  # noqa: E402
from acquisition.profiling import profile_configs  # noqa: E402
from acquisition.store import Store  # noqa: E402
from acquisition.transfer import MIN_SOURCE_ROWS  # noqa: E402
from profiler.fleet import ActorSpec, Fleet, FleetError, connect, disconnect  # noqa: E402
from studies.replay import ReplayOracle, ReplayTable  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 120.0  # how long to wait for what takes a second or two on an idle machine
BLOCK_S = 0.2  # the replayed cost of one block: realtime actors hold each job that long


# -- tables, specs, helpers ------------------------------------------------------------------------------------
def table(scale: float = 1.0, cost_s: float = 0.01, family: Any = None) -> ReplayTable:
    """A smooth synthetic table of 243 configurations (``scale``: another device of the same block family)."""
    rows = [{"a": a, "b": b, "c": c, "ms": scale * 0.05 * a ** 1.5 * b * {"x": 1.0, "y": 1.7, "z": 2.5}[c] + 0.01 * a,
             "cost": cost_s}
            for a, b, c in itertools.product(range(1, 10), range(1, 10), ("x", "y", "z"))]
    return ReplayTable.from_rows("fleetsyn", rows, params=["a", "b", "c"], latency_col="ms", cost_col="cost",
                                 family=family)


T1 = table()
T2 = table(scale=1.8, family=T1.family)  # the same family on another device: another platform
FAM = T1.family


def actors(t: ReplayTable, n: int, *, realtime: bool = False, target: Any = None, **kw: Any) -> list[ActorSpec]:
    return [ActorSpec(target or ReplayOracle(t), num_cpus=0, realtime=realtime, **kw) for _ in range(n)]


def spec(name: str, budget: int = 40, **kw: Any) -> CampaignSpec:
    """A small campaign: an unreachable target, so it runs to its budget (or meets it: either is an end)."""
    kw = {"strategy": "random", "model": "linear", "target_spearman": 0.9999, "budget_samples": budget,
          "batch_size": 10, "initial_size": 10, "validation_size": 10, "seed": 0, **kw}
    return CampaignSpec(name=name, family=FAM.name, **kw)


def books(store: Store, platform: str) -> dict[str, Any]:
    """What the store holds for ``platform``: measurements, their keys, and the ledger rows that charge them."""
    rows = list(store.measurements(family=FAM.name, platform=platform))
    charged = store.db.execute(
        "select count(*), count(distinct measurement_id), coalesce(sum(seconds), 0) from ledger where platform = ? "
        "and activity in ('profile', 'validation_profile') and measurement_id is not null", [platform]).fetchone()
    lost = store.db.execute("select count(*), coalesce(sum(seconds), 0), count(measurement_id) from ledger where "
                            "platform = ? and activity = ?", [platform, LOST_ACTIVITY]).fetchone()
    return {"stored": len(rows), "keys": Counter(r["key"] for r in rows), "cost_s": sum(r["cost_s"] for r in rows),
            "charged": charged[0], "charged_ids": charged[1], "charged_s": charged[2], "lost_rows": lost[0],
            "lost_s": lost[1], "lost_with_id": lost[2], "rows": rows}


def assert_books(b: dict[str, Any], n: int) -> None:
    """``n`` requested, stored and charged once each, no key twice."""
    assert b["stored"] == n and len(b["keys"]) == n and max(b["keys"].values()) == 1
    assert b["charged"] == b["charged_ids"] == n
    assert b["charged_s"] == pytest.approx(b["cost_s"])
    assert b["lost_with_id"] == 0  # lost device time is never tied to a measurement


def wait_until(what: str, done: Callable[[], bool], step: Callable[[], Any] = lambda: time.sleep(0.1)) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        assert time.monotonic() < deadline, f"{what} did not happen within {DEADLINE_S:g} s"
        step()


def per_actor(fleet: Fleet) -> dict[str, int]:
    return {r["actor"]: r["measurements"] for r in fleet.throughput()}


class Killer:
    """Kills actors between two of the coordinator's pumps: once ``after`` measurements of a platform came back,
    ``count`` of its actors (those with jobs in flight first; at least one must hold some)."""

    def __init__(self, fleet: Fleet, plans: dict[str, tuple[int, int]]) -> None:
        self.fleet, self.plans, self.pump = fleet, plans, fleet.pump
        self.got: Counter[str] = Counter()
        self.killed: dict[str, list[str]] = {}
        self.inflight_at_kill: dict[str, int] = {}
        fleet.pump = self  # type: ignore[method-assign]

    def __call__(self, timeout: float = 1.0) -> list[tuple[Any, Any]]:
        out = self.pump(timeout)
        self.got.update(m.platform for _, m in out)
        for plat, (after, count) in self.plans.items():
            if plat in self.killed or self.got[plat] < after or plat not in self.fleet.pools:
                continue
            slots = sorted(self.fleet.pools[plat].slots, key=lambda s: -len(s.inflight))
            if not slots or not slots[0].inflight:
                continue
            victims = slots[:count]
            self.inflight_at_kill[plat] = sum(len(s.inflight) for s in victims)
            for s in victims:
                ray.kill(s.handle)
            self.killed[plat] = [s.label for s in victims]
        return out


class HangOnce:
    """A recorded measurer that hangs (a minute) on ``key`` while the file ``flag`` exists, removing it first:
    the configuration hangs on its first try only, whichever actor gets it."""

    def __init__(self, t: ReplayTable, key: str, flag: str) -> None:
        self.oracle, self.key, self.flag = ReplayOracle(t), key, flag
        o = self.oracle
        self.platform_id, self.fingerprint, self.device, self.protocol = o.platform_id, o.fingerprint, o.device, \
            o.protocol

    def measure(self, family: Any, config: dict[str, Any]) -> Any:
        if family.key(family.validate(config)) == self.key:
            try:
                os.remove(self.flag)
            except FileNotFoundError:
                pass
            else:
                time.sleep(60)
        return self.oracle.measure(family, config)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One private Ray instance for the module (2 CPUs on loopback); yields its address."""
    started = connect("local", num_cpus=2)  # False: this process was connected already (that instance is used)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        if started:
            disconnect()


# -- profiling and campaigns -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_profile_configs_spreads_over_the_pool(cluster: str, tmp_path: Path) -> None:
    configs = T1.configs[:40]
    with Store(tmp_path / "p.sqlite") as store, Fleet(actors(T1, 2)) as fleet:
        pool = fleet.pool()
        assert pool.size == 2 and pool.platform_id == ReplayOracle(T1).platform_id
        s = profile_configs(store, pool, FAM, configs, progress=False)
        assert (s.requested, s.profiled, s.failed) == (40, 40, 0)
        b = books(store, pool.platform_id)
        assert_books(b, 40)
        assert b["lost_rows"] == 0
        assert {r["key"] for r in b["rows"]} == {FAM.key(c) for c in configs}
        by_actor = Counter(r["device_state"]["fleet"]["actor"] for r in b["rows"])
        assert len(by_actor) == 2 and min(by_actor.values()) > 0  # both devices measured
        assert by_actor == per_actor(fleet)
        again = profile_configs(store, pool, FAM, configs, progress=False)
        assert (again.reused, again.profiled) == (40, 0)
        m = pool.measure(FAM, T1.configs[50])  # one configuration, on any actor
        assert m.ok and m.timing.min_ms == pytest.approx(T1.latency_ms[50])


@pytest.mark.slow
def test_a_campaign_across_two_actors(cluster: str, tmp_path: Path) -> None:
    with Store(tmp_path / "c.sqlite") as store, Fleet(actors(T1, 2)) as fleet:
        plat = fleet.pool().platform_id
        res = run_fleet(store, spec("one"), fleet, FAM, bundle_dir=str(tmp_path))
        assert list(res) == [plat]
        r = res[plat]
        assert r.name == "one" and r.state in ("met", "budget") and r.fleet_error is None
        assert r.bundle == str(tmp_path / "one.bundle") and Path(r.bundle).exists()
        b = books(store, plat)
        members = store.members("one")
        assert_books(b, len(members))
        assert not store.pending_asks("one")
        assert min(per_actor(fleet).values()) > 0
        assert campaign_bill(store, "one").total_s == pytest.approx(b["cost_s"])


@pytest.mark.slow
def test_a_single_campaigns_fold_models_are_fitted_in_worker_processes(cluster: str, tmp_path: Path,
                                                                      monkeypatch) -> None:
    import acquisition.loop.fitpool as fitpool
    import acquisition.loop.models as models

    monkeypatch.setattr(models, "MEMBER_POOL_ROWS", 20)  # from the first fits on, not only from 100 rows
    sent: list[int] = []
    fmap = fitpool.FitPool.map

    def counting_map(pool: Any, func: Any, tasks: Any) -> Any:
        sent.append(len(tasks))
        return fmap(pool, func, tasks)

    monkeypatch.setattr(fitpool.FitPool, "map", counting_map)
    with Store(tmp_path / "f.sqlite") as store, Fleet(actors(T1, 2)) as fleet:
        plat = fleet.pool().platform_id
        r = run_fleet(store, spec("folds", model="gp", verification="cv", folds=3), fleet, FAM,
                      fit_workers=2)[plat]
        assert r.state in ("met", "budget") and r.fleet_error is None
        assert sent and set(sent) == {3}  # each committee's three fold models went to the workers
        assert_books(books(store, plat), len(store.members("folds")))


@pytest.mark.slow
def test_a_fleet_campaign_is_pipelined_and_its_devices_clock_adds_up(cluster: str, tmp_path: Path) -> None:
    with Store(tmp_path / "c.sqlite") as store, Fleet(actors(T1, 2)) as fleet:
        plat = fleet.pool().platform_id
        r = run_fleet(store, spec("pipe", budget=50), fleet, FAM)[plat]
        its = store.iterations("pipe")
        assert r.device.pipelined and any(it["pending"] for it in its), "no batch was chosen while one was out"
        assert_books(books(store, plat), len(store.members("pipe")))
        keys = [a["key"] for a in store.asks("pipe")]
        assert len(keys) == len(set(keys)) and not store.pending_asks("pipe")
        # every actor's seconds in the run: measuring, or waiting (charged as device_idle, outside the bill)
        assert r.device.wall_s == pytest.approx(r.device.busy_s + r.device.idle_s) and r.device.busy_s > 0
        idle = dict(store.db.execute("select note, sum(seconds) from ledger where campaign = 'pipe' and activity = "
                                     "'device_idle' group by note").fetchall())
        assert set(idle) <= {f"actor {a}" for a in per_actor(fleet)} and sum(idle.values()) == pytest.approx(
            r.device.idle_s)
        assert campaign_bill(store, "pipe").total_s == pytest.approx(books(store, plat)["cost_s"])
        from acquisition.report import build_report

        rep = build_report(store, "pipe")
        assert sum(d["idle_hours"] for d in rep["devices"]) * 3600 == pytest.approx(r.device.idle_s)
        (c,) = rep["campaigns"]
        assert c["device_idle_s"] == pytest.approx(r.device.idle_s) and c["device_busy_s"] > 0
        off = run_fleet(store, spec("seq", budget=30, pipeline="off"), fleet, FAM)[plat]
        assert not off.device.pipelined and not any(it["pending"] for it in store.iterations("seq"))


@pytest.mark.slow
def test_the_engine_thinks_ahead_once_per_batch_in_flight(cluster: str, tmp_path: Path) -> None:
    # the last batches take the actors a second (realtime, 0.2 s a block) and a linear fit milliseconds: a step
    # beside a batch that asks for nothing (the budget is spoken for) is not taken again on each result that comes
    with Store(tmp_path / "o.sqlite") as store, Fleet(actors(table(cost_s=0.2), 2, realtime=True)) as fleet:
        run_fleet(store, spec("once", budget=40), fleet, FAM)
        its = store.iterations("once")
        asked = Counter(a["batch"] for a in store.asks("once"))
        idle = [k for k, it in enumerate(its) if it["pending"] and not asked[str(k)]]
        assert len(idle) <= 1, f"steps beside a batch that asked for nothing: {idle} of {len(its)}"
        assert any(it["pending"] for it in its) and its[-1]["n_train"] == 40


@pytest.mark.slow
def test_a_pipelined_fleet_stop_keeps_what_was_sent_and_drops_the_rest(cluster: str, tmp_path: Path) -> None:
    # a slow device (0.1 s a block, measured in real time) and a target met at once: the stop is decided with the
    # next batch out; the actors' share of it is kept, the rest never sent is dropped
    with Store(tmp_path / "s.sqlite") as store, Fleet(actors(table(cost_s=0.1), 2, realtime=True)) as fleet:
        plat = fleet.pool().platform_id
        r = run_fleet(store, spec("stop", budget=200, target_spearman=0.5, stop_rule="bound", confirm=1,
                                  verification="cv", strategy="representative", model="gbt"), fleet, FAM)[plat]
        assert r.state == "met"
        fired = next(it for it in store.iterations("stop") if it["fired"])
        assert fired["pending"] > 0 and not store.pending_asks("stop")
        assert_books(books(store, plat), len(store.members("stop")))
        assert fired["n_train"] <= r.n_train <= fired["n_train"] + 10


@pytest.mark.slow
def test_two_platforms_at_once_learn_from_each_other(cluster: str, tmp_path: Path) -> None:
    with Store(tmp_path / "t.sqlite") as store, Fleet(actors(T1, 1) + actors(T2, 1)) as fleet:
        p1, p2 = ReplayOracle(T1).platform_id, ReplayOracle(T2).platform_id
        assert set(fleet.pools) == {p1, p2}
        res = run_fleet(store, spec("tw", budget=60, transfer="auto"), fleet, FAM, bundle_dir=str(tmp_path))
        assert {p: r.name for p, r in res.items()} == {p1: f"tw-{p1}", p2: f"tw-{p2}"}
        for p, r in res.items():
            assert r.state in ("met", "budget") and r.fleet_error is None and Path(r.bundle).exists()
            assert_books(books(store, p), len(store.members(r.name)))
        recorded = {p: store.campaign_sources(r.name) for p, r in res.items()}
        # each platform's later fits read the other one once it has enough rows; the campaign that finished
        # last certainly saw the other with its rows (the first may finish before the other reached them)
        assert any(recorded.values())
        for p, srcs in recorded.items():
            other = p2 if p == p1 else p1
            assert [s["name"] for s in srcs] in ([], [f"store:{other}"])
            assert all(s["rows"] >= MIN_SOURCE_ROWS for s in srcs)


# -- faults ----------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_an_actor_killed_mid_batch_is_replaced_and_nothing_is_lost(cluster: str, tmp_path: Path) -> None:
    t = table(cost_s=BLOCK_S)
    configs = t.configs[:16]
    with Store(tmp_path / "k.sqlite") as store, Fleet(actors(t, 2, realtime=True), replace=True) as fleet:
        pool = fleet.pool()
        fleet.on_lost = lost_charger(store, FAM)
        kill = Killer(fleet, {pool.platform_id: (2, 1)})
        s = profile_configs(store, pool, FAM, configs, progress=False)
        assert kill.killed and kill.inflight_at_kill[pool.platform_id] >= 1
        assert (s.requested, s.profiled) == (16, 16)
        b = books(store, pool.platform_id)
        assert_books(b, 16)
        assert fleet.lost_jobs >= 1
        assert b["lost_rows"] == 1 and b["lost_s"] > 0 and b["lost_s"] == pytest.approx(fleet.lost_s)
        # a replacement with the same resources joins the pool (it may already have measured)
        wait_until("the replacement joins", lambda: pool.size == 2, lambda: fleet.pump(0.2))
        rows = fleet.throughput()
        assert len(rows) == 3
        dead = [r for r in rows if not r["alive"]]
        assert [r["actor"] for r in dead] == kill.killed[pool.platform_id]
        new = [s.label for s in pool.slots if s.label not in {r["actor"] for r in dead}]
        assert len(new) == 2 and pool.replacements == 1
        m = pool.measure(FAM, t.configs[20])
        assert m.ok
        # the cost report: one row per device actor that measured, the platform's lost time beside them
        from acquisition.report import build_report, render_markdown

        rep = build_report(store)
        devices = {r["actor"]: r for r in rep["devices"]}
        assert sum(r["measurements"] for r in devices.values()) == 16  # what was stored (measure() stores nothing)
        assert set(devices) <= {r["actor"] for r in rows} and len(devices) >= 1
        assert all(r["platform_lost_hours"] == pytest.approx(fleet.lost_s / 3600) for r in devices.values())
        assert "## Fleet devices" in render_markdown(rep)


@pytest.mark.slow
def test_all_devices_of_a_platform_gone_is_a_fleet_error(cluster: str, tmp_path: Path) -> None:
    t = table(cost_s=BLOCK_S)
    with Store(tmp_path / "g.sqlite") as store, Fleet(actors(t, 2, realtime=True), replace=False) as fleet:
        pool = fleet.pool()
        fleet.on_lost = lost_charger(store, FAM)
        kill = Killer(fleet, {pool.platform_id: (1, 2)})
        with pytest.raises(FleetError, match="has no device left"):
            profile_configs(store, pool, FAM, t.configs[:16], progress=False)
        assert len(kill.killed[pool.platform_id]) == 2 and pool.size == 0
        b = books(store, pool.platform_id)
        assert_books(b, b["stored"])  # what arrived is stored once; the rest is not stored at all
        assert 1 <= b["stored"] < 16 and b["lost_rows"] >= 1 and b["lost_s"] > 0


@pytest.mark.slow
def test_profiling_two_platforms_one_loses_every_device(cluster: str, tmp_path: Path) -> None:
    t1, t2 = table(cost_s=BLOCK_S), table(scale=1.8, cost_s=BLOCK_S, family=FAM)
    specs = actors(t1, 1, realtime=True) + actors(t2, 1, realtime=True)
    configs = t1.configs[:8]
    with Store(tmp_path / "pf.sqlite") as store, Fleet(specs, replace=False) as fleet:
        p1, p2 = ReplayOracle(t1).platform_id, ReplayOracle(t2).platform_id
        kill = Killer(fleet, {p2: (2, 1)})
        out = profile_fleet(store, fleet, FAM, configs, progress=False)
        assert kill.killed[p2]
        assert out[p1].error is None and out[p1].profiled == 8
        assert_books(books(store, p1), 8)
        assert "has no device left" in out[p2].error and 2 <= out[p2].profiled < 8
        b2 = books(store, p2)
        assert_books(b2, out[p2].profiled)
        assert b2["lost_rows"] == 1 and b2["lost_s"] > 0


@pytest.mark.slow
def test_campaigns_go_on_with_the_devices_left(cluster: str, tmp_path: Path) -> None:
    t1, t2 = table(cost_s=BLOCK_S), table(scale=1.8, cost_s=BLOCK_S, family=FAM)
    specs = actors(t1, 2, realtime=True) + actors(t2, 1, realtime=True)
    with Store(tmp_path / "f.sqlite") as store, Fleet(specs, replace=False) as fleet:
        p1, p2 = ReplayOracle(t1).platform_id, ReplayOracle(t2).platform_id
        kill = Killer(fleet, {p1: (12, 1), p2: (3, 1)})  # p1: one of its two devices; p2: its only one
        res = run_fleet(store, spec("go", budget=20), fleet, FAM)
        assert set(kill.killed) == {p1, p2}
        r1, r2 = res[p1], res[p2]
        # the platform with a device left ends normally, every measurement stored and charged once
        assert r1.state in ("met", "budget") and r1.fleet_error is None
        assert not store.pending_asks(r1.name)
        b1 = books(store, p1)
        assert_books(b1, len(store.members(r1.name)))
        survivor = next(s.label for s in fleet.pools[p1].slots)
        assert kill.killed[p1] != [survivor]
        bill1 = campaign_bill(store, r1.name)
        assert b1["lost_rows"] == 1 and b1["lost_s"] > 0 and bill1.by_role["lost"] == pytest.approx(b1["lost_s"])
        assert bill1.total_s == pytest.approx(b1["cost_s"] + b1["lost_s"])
        # the platform with none left stops (resumable), the lost time in its bill
        assert r2.state == "stopped" and "has no device left" in r2.fleet_error
        assert store.get_campaign(r2.name)["state"] == "stopped"
        b2 = books(store, p2)
        assert_books(b2, len(store.members(r2.name)))
        assert store.pending_asks(r2.name)  # what it did not measure is asked again on resume
        assert b2["lost_s"] > 0 and campaign_bill(store, r2.name).by_role["lost"] == pytest.approx(b2["lost_s"])


@pytest.mark.slow
def test_a_hung_actor_is_killed_and_its_job_measured_elsewhere(cluster: str, tmp_path: Path) -> None:
    configs = T1.configs[:12]
    hang = FAM.key(configs[0])
    flag = tmp_path / "hang"
    flag.touch()
    target = HangOnce(T1, hang, str(flag))
    with Store(tmp_path / "h.sqlite") as store, \
            Fleet(actors(T1, 2, target=target), replace=False, job_timeout_s=10.0) as fleet:
        pool = fleet.pool()
        fleet.on_lost = lost_charger(store, FAM)
        s = profile_configs(store, pool, FAM, configs, progress=False)
        assert not flag.exists() and s.profiled == 12
        b = books(store, pool.platform_id)
        assert_books(b, 12)
        assert b["lost_rows"] == 1 and b["lost_s"] >= 10.0  # the hung actor's time, charged apart
        (hung,) = [r for r in fleet.throughput() if not r["alive"]]
        assert "no answer after" in hung["end"]
        (row,) = [r for r in b["rows"] if r["key"] == hang]
        assert row["status"] == "ok" and row["device_state"]["fleet"]["actor"] == pool.slots[0].label != \
            hung["actor"]


# -- the coordinator killed and resumed ------------------------------------------------------------------------
COORDINATOR = textwrap.dedent("""
    import sys
    from profiler.fleet import ActorSpec, Fleet, connect
    from acquisition.fleet_run import run_fleet
    from acquisition.store import Store
    from studies.replay import ReplayOracle
    from tests.acquisition.test_fleet import T1, FAM, spec

    address, db, bundles = sys.argv[1:4]
    assert connect(address)
    specs = [ActorSpec(ReplayOracle(T1), num_cpus=1, realtime=False) for _ in range(2)]
    with Store(db) as store, Fleet(specs, start_timeout_s=60) as fleet:
        (r,) = run_fleet(store, spec("crash"), fleet, FAM, bundle_dir=bundles).values()
        print("ENDED", r.name, r.state)
""")


def coordinator(script: Path, address: str, tmp_path: Path, fault: str | None) -> subprocess.CompletedProcess:
    # a private instance listens on loopback only, and Ray turns a joining driver's 127.0.0.1 into this machine's
    # address unless it is told that this is no cluster (ray._private.services.resolve_ip_for_localhost)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    env.pop("LATENCY_ACQUISITION_FAULT", None)
    if fault:
        env["LATENCY_ACQUISITION_FAULT"] = fault
    return subprocess.run([sys.executable, str(script), address, str(tmp_path / "crash.sqlite"), str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)


@pytest.mark.slow
def test_the_coordinator_killed_and_resumed(cluster: str, tmp_path: Path) -> None:
    script = tmp_path / "coordinator.py"
    script.write_text(COORDINATOR)
    cpus = ray.cluster_resources()["CPU"]
    killed = coordinator(script, cluster, tmp_path, "record:25")  # inside the 25th measurement's transaction
    assert killed.returncode == -9, killed.stderr[-2000:]
    # its actors (1 CPU each: the whole instance) died with it: their CPUs come back
    wait_until("the killed coordinator's actors give their CPUs back",
               lambda: ray.available_resources().get("CPU", 0) == cpus)
    with Store(tmp_path / "crash.sqlite") as store:
        assert store.get_campaign("crash")["state"] == "running"
        assert len(store.members("crash")) == 24  # the 25th was rolled back with its ledger row
    resumed = coordinator(script, cluster, tmp_path, None)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    (line,) = [ln for ln in resumed.stdout.splitlines() if ln.startswith("ENDED")]
    assert line.split()[1] == "crash" and line.split()[2] in ("met", "budget")
    with Store(tmp_path / "crash.sqlite") as store:
        plat = ReplayOracle(T1).platform_id
        b = books(store, plat)
        assert_books(b, len(store.members("crash")))
        assert b["stored"] > 24 and not store.pending_asks("crash")
        bill = campaign_bill(store, "crash")
        assert bill.total_s == pytest.approx(b["cost_s"] + b["lost_s"])
        assert (tmp_path / "crash.bundle").exists()
    wait_until("the resumed coordinator's actors end", lambda: ray.available_resources().get("CPU", 0) == cpus)
