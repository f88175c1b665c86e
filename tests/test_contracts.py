"""Every implementation in the project keeps the engine's contracts (acquisition/contracts.py): the measurers (the
profiler's stand-ins, a replay oracle, ask/tell's own device), the families (built-in, tabular, plug-in) and the
store."""

from __future__ import annotations

from pathlib import Path

from acquisition.ask_tell.platform import external_measurer
from acquisition.contracts import CampaignStore, Family, Measurer, MeasuringDevice
from acquisition.store import Store
from profiler.families import get_family
from profiler.tabular import TabularFamily
from profiler.worker import Profiler
from studies.replay import ReplayOracle, ReplayTable
from tests.acquisition.synthetic_profiler import SyntheticProfiler
from tests.acquisition.test_fidelity import TwoFidelityProfiler


def test_the_store_is_a_campaign_store(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        assert isinstance(store, CampaignStore)


def test_every_family_is_a_family() -> None:
    rows = [{"hw": hw, "c": c} for hw in (7, 14) for c in (8, 16)]
    tabular = TabularFamily.from_rows("t", rows, params=["hw", "c"])
    for fam in (get_family("mbconv"), get_family("resv1"), get_family("resv2"), tabular):
        assert isinstance(fam, Family), fam.name


def test_every_measurer_measures_and_asks_own_device_only_describes() -> None:
    rows = [{"hw": hw, "c": c, "ms": 0.01 * hw * c} for hw in (7, 14, 28) for c in (8, 16, 32)]
    oracle = ReplayOracle(ReplayTable.from_rows("t", rows, params=["hw", "c"], latency_col="ms"))
    for m in (SyntheticProfiler(), TwoFidelityProfiler(), oracle):
        assert isinstance(m, Measurer), type(m).__name__
    own = external_measurer("p", {"device": "Pixel 8"}, "pixel", "external")
    assert isinstance(own, MeasuringDevice) and not isinstance(own, Measurer)  # you measure, the engine asks
    assert callable(Profiler.measure)  # the profiler's worker (its platform is read when it starts)
