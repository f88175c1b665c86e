"""The device actor as a plain class (no Ray), and the fleet's logic that needs no Ray: addresses, campaign names,
actor specs, and the message that says how to install Ray when it is missing.

Nothing here imports Ray or needs it installed (the one test that builds a Ray scheduling strategy skips without
it); the fleet on a live Ray instance is tested in ``tests/acquisition/test_fleet.py``. Times are only bounded
below: a realtime actor's sleep never returns early.
"""

from __future__ import annotations

import itertools
import os
import socket
import sys
import time
from typing import Any

import pytest

from acquisition.fleet_run import campaign_names
from profiler.actor import DeviceActor
from profiler.devices import CpuDevice
from profiler.families import get_family
from profiler.fleet import (
    INSTALL_HINT,
    ActorSpec,
    Fleet,
    FleetError,
    check_address,
    connect,
    device_actor_specs,
    disconnect,
    require_ray,
)
from profiler.protocol import AdaptiveProtocol, FixedProtocol
from studies.replay import ReplayOracle, ReplayTable

COST_S = 0.05


MISSING = {"hw": 28, "act": "hswish"}  # in the family's space, not in the table: a failed measurement


def table(cost_s: float = COST_S) -> ReplayTable:
    rows = [{"hw": hw, "act": act, "ms": 0.01 * hw * (2 if act == "relu" else 3), "cost": cost_s}
            for hw, act in itertools.product((7, 14, 28), ("relu", "hswish")) if {"hw": hw, "act": act} != MISSING]
    return ReplayTable.from_rows("actordemo", rows, params=["hw", "act"], latency_col="ms", cost_col="cost")


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every ``time.sleep`` the actor asks for (recorded, not slept)."""
    asked: list[float] = []
    monkeypatch.setattr(time, "sleep", asked.append)
    return asked


# -- DeviceActor with a recorded measurer ----------------------------------------------------------------------
def test_a_replay_actor_describes_its_platform() -> None:
    t = table()
    oracle = ReplayOracle(t)
    actor = DeviceActor(oracle, realtime=False, index=3)
    info = actor.describe()
    assert info["platform"] == oracle.platform_id and info["fingerprint"] == oracle.fingerprint
    assert info["device"] == oracle.device.spec == "replay:actordemo"
    assert info["protocol"] == oracle.protocol.id
    assert info["supports_protocol"] is False and info["live"] is False
    assert info["host"] == socket.gethostname() and info["pid"] == os.getpid()
    assert info["label"] == f"{socket.gethostname()}:replay:actordemo#3"
    assert DeviceActor(oracle, label="bench-a").describe()["label"] == "bench-a"
    assert DeviceActor(oracle).label == f"{socket.gethostname()}:replay:actordemo"  # no index: no number


def test_a_measurement_says_which_actor_took_it(sleeps: list[float]) -> None:
    t = table()
    actor = DeviceActor(ReplayOracle(t), realtime=False, label="a1")
    m = actor.measure(t.family, {"hw": 14, "act": "relu"})
    assert m.ok and m.timing.min_ms == pytest.approx(0.28) and m.cost_s == pytest.approx(COST_S)
    assert m.device_state["fleet"] == {"actor": "a1", "host": socket.gethostname(), "pid": os.getpid()}
    bad = actor.measure(t.family, MISSING)
    assert bad.status == "failed" and bad.device_state["fleet"]["actor"] == "a1"
    assert actor.measured == 2
    assert sleeps == []  # realtime off: answered at once, the cost only recorded


def test_device_state_of_the_measurer_is_kept() -> None:
    t = table()

    class Stateful(ReplayOracle):
        def measure(self, family: Any, config: Any) -> Any:
            m = super().measure(family, config)
            m.device_state = {"temp_c": 41}
            return m

    m = DeviceActor(Stateful(t), realtime=False, label="s").measure(t.family, t.configs[0])
    assert m.device_state["temp_c"] == 41 and m.device_state["fleet"]["actor"] == "s"


def test_realtime_takes_the_cost_in_wall_time() -> None:
    t = table()
    actor = DeviceActor(ReplayOracle(t), realtime=True)
    t0 = time.perf_counter()
    m = actor.measure(t.family, t.configs[1])
    assert time.perf_counter() - t0 >= m.cost_s == pytest.approx(COST_S)


def test_realtime_sleeps_only_what_is_left_and_never_for_a_free_answer(sleeps: list[float]) -> None:
    t = table()
    actor = DeviceActor(ReplayOracle(t), realtime=True)
    actor.measure(t.family, t.configs[0])
    assert len(sleeps) == 1 and 0 < sleeps[0] <= COST_S
    actor.measure(t.family, MISSING)  # failed: cost 0, no sleep
    assert len(sleeps) == 1
    free = DeviceActor(ReplayOracle(table(cost_s=0.0)), realtime=True)
    free.measure(free.measurer.table.family, free.measurer.table.configs[0])
    assert len(sleeps) == 1


def test_a_protocol_is_passed_to_the_measurer_and_plugins_are_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    t = table()
    calls: list[Any] = []

    class WithProtocol(ReplayOracle):
        supports_protocol = True

        def measure(self, family: Any, config: Any, protocol: Any = None) -> Any:
            calls.append(protocol)
            return super().measure(family, config)

    monkeypatch.delitem(sys.modules, "tests.profiler.dtype_families", raising=False)
    actor = DeviceActor(WithProtocol(t), realtime=False, plugins=("tests.profiler.dtype_families",))
    assert "tests.profiler.dtype_families" in sys.modules
    assert actor.describe()["supports_protocol"] is True
    cheap = FixedProtocol(repeats=3)
    actor.measure(t.family, t.configs[0])
    actor.measure(t.family, t.configs[0], cheap)
    assert calls == [None, cheap]


def test_close_of_a_recorded_measurer() -> None:
    closed: list[bool] = []
    oracle = ReplayOracle(table())
    oracle.close = lambda: closed.append(True)  # type: ignore[method-assign]
    DeviceActor(oracle).close()
    assert closed == [True]
    DeviceActor(type("Bare", (), {"device": oracle.device})()).close()  # a measurer without close: nothing to do


@pytest.mark.slow  # starts a real worker process
def test_a_live_cpu_actor_measures_a_tiny_block() -> None:
    proto = AdaptiveProtocol(min_seconds=0.02, max_seconds=0.3)
    actor = DeviceActor(CpuDevice(threads=1), proto, timeout_s=300, label="cpu0")
    try:
        assert actor.measurer.pid is not None  # the device is set up when the actor is created
        info = actor.describe()
        assert info["live"] is True and info["device"] == "cpu" and info["protocol"] == proto.id
        assert info["platform"] == actor.measurer.platform_id
        fam = get_family("mbconv")
        cfg = {"input_hw": 7, "cin": 16, "cout": 16, "expansion": 1, "kernel": 3, "stride": 1, "se": False,
               "act": "relu"}
        m = actor.measure(fam, cfg)
        assert m.ok, m.reason
        assert m.platform == info["platform"] and m.key == fam.key(cfg) and m.timing.min_ms > 0
        assert m.device_state["fleet"]["actor"] == "cpu0"
    finally:
        actor.close()
    assert actor.measurer.pid is None  # its worker process is gone


# -- the fleet's logic without Ray -----------------------------------------------------------------------------
@pytest.mark.parametrize("address", ["auto", "local", "127.0.0.1:6379", "head-node.example:6379",
                                     "ray://10.0.0.5:10001", "  auto  "])
def test_good_addresses(address: str) -> None:
    assert check_address(address) == address.strip()


@pytest.mark.parametrize("address", ["", "AUTO ; rm -rf /", "head-node", "head:port", "http://head:8265",
                                     "ray://", "head:123456", "a b:1", "--address=auto", None, 6379])
def test_bad_addresses(address: Any) -> None:
    with pytest.raises(ValueError, match="is not allowed"):
        check_address(address)


def test_campaign_names() -> None:
    assert campaign_names("tf", ["p1"]) == {"p1": "tf"}
    assert campaign_names("tf", ["p1", "p1"]) == {"p1": "tf"}
    assert campaign_names("tf", ["p1", "p2"]) == {"p1": "tf-p1", "p2": "tf-p2"}


def test_campaign_names_keep_what_the_store_holds(tmp_path: Any) -> None:
    from acquisition.store import Store

    with Store(tmp_path / "n.sqlite") as store:
        store.create_campaign("tf", "fam", "p1", {})
        assert campaign_names("tf", ["p1", "p2"], store) == {"p1": "tf", "p2": "tf-p2"}  # p1's campaign resumes
        assert campaign_names("tf", ["p3"], store) == {"p3": "tf-p3"}  # "tf" is p1's: not another platform's
        store.create_campaign("tf-p2", "fam", "p2", {})
        assert campaign_names("tf", ["p2"], store) == {"p2": "tf-p2"}  # alone now, it keeps its name
        assert campaign_names("new", ["p1"], store) == {"p1": "new"}


def test_actor_spec_options_and_job_timeout() -> None:
    oracle = ReplayOracle(table())
    assert ActorSpec(oracle).options() == {"num_cpus": 1.0, "num_gpus": 0.0, "max_restarts": 0,
                                           "max_task_retries": 0}
    gpu = ActorSpec(oracle, num_cpus=1, num_gpus=1).options()
    assert gpu["num_gpus"] == 1 and "scheduling_strategy" not in gpu
    assert ActorSpec(oracle).job_timeout() == 600.0  # a recorded measurer
    cpu = CpuDevice(threads=1)
    assert ActorSpec(cpu, timeout_s=10, max_attempts=3).job_timeout() == 10 * 3 + 180
    proto = AdaptiveProtocol(min_seconds=0.02, max_seconds=0.3)
    assert ActorSpec(cpu, proto).job_timeout() == proto.suggested_timeout() * 2 + 180
    assert ActorSpec(cpu).job_timeout() == AdaptiveProtocol().suggested_timeout() * 2 + 180


def test_a_pinned_actor_asks_for_its_node() -> None:
    pytest.importorskip("ray")
    spec = ActorSpec(ReplayOracle(table()), node="ab" * 28)
    hard, soft = spec.options()["scheduling_strategy"], spec.options(soft=True)["scheduling_strategy"]
    assert hard.node_id == soft.node_id == "ab" * 28
    assert (hard.soft, soft.soft) == (False, True)


def test_fleet_arguments_are_checked() -> None:
    spec = ActorSpec(ReplayOracle(table()))
    for kw, what in (({"depth": 0}, "depth"), ({"start_timeout_s": 0}, "start_timeout_s"),
                     ({"job_timeout_s": -1}, "job_timeout_s")):
        with pytest.raises(ValueError, match=what):
            Fleet([spec], **kw)
    with pytest.raises(ValueError, match="at least one actor"):
        Fleet([])


def test_without_ray_every_entry_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    for call in (require_ray, lambda: connect("local"), lambda: connect("auto"), disconnect,
                 lambda: device_actor_specs(CpuDevice()), lambda: Fleet([ActorSpec(ReplayOracle(table()))]).start()):
        with pytest.raises(FleetError) as info:
            call()
        assert INSTALL_HINT in str(info.value) and INSTALL_HINT == "pip install 'latency-acquisition[ray]'"
    with pytest.raises(ValueError, match="not allowed"):  # a bad address is refused before Ray is needed
        connect("nowhere")


def test_a_fleet_needs_a_connection() -> None:
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # pragma: no cover - another module left a connection open
        pytest.skip("this process is connected to Ray")
    with pytest.raises(FleetError, match="not connected to Ray"):
        Fleet([ActorSpec(ReplayOracle(table()))]).start()
