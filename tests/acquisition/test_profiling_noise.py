"""``profile_configs`` stores each measurement's own noise and counts the noisy ones."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from acquisition.profiling import profile_configs
from acquisition.store import Store
from profiler.families import get_family
from tests.acquisition.synthetic_profiler import SyntheticProfiler

FAM = get_family("mbconv")


@dataclass
class _Adaptive:
    """An adaptive protocol with extra placements (``max_noise``) under the synthetic protocol's id."""

    id: str = "synthetic-v1"
    placements: int = 3
    max_noise: float | None = 0.05


class PlacementProfiler(SyntheticProfiler):
    """Scripted noise and placements: every third block took 6 placements and still scatters by 8 %."""

    def __init__(self) -> None:
        super().__init__()
        self.protocol = _Adaptive()

    def measure(self, family: Any, config: dict[str, Any]) -> Any:
        m = super().measure(family, config)
        noisy = self.calls % 3 == 0
        m.timing = replace(m.timing, placements=6 if noisy else 3, noise=0.08 if noisy else 0.01)
        return m


def test_noise_is_stored_and_counted(tmp_path) -> None:
    cfgs = FAM.space.sample(9, seed=1)
    with Store(tmp_path / "a.sqlite") as store:
        s = profile_configs(store, PlacementProfiler(), FAM, cfgs, progress=False)
        rows = list(store.measurements(family="mbconv"))
    assert s.profiled == 9 and s.noisy == 3 and s.extra_placements == 3 and len(s.noise) == 9
    assert sorted(r["noise"] for r in rows) == [0.01] * 6 + [0.08] * 3
    assert sorted(r["placements"] for r in rows) == [3] * 6 + [6] * 3


def test_measurements_without_a_noise_estimate_are_not_counted(tmp_path) -> None:
    with Store(tmp_path / "a.sqlite") as store:
        s = profile_configs(store, SyntheticProfiler(), FAM, FAM.space.sample(4, seed=1), progress=False)
        assert [r["noise"] for r in store.measurements(family="mbconv")] == [None] * 4
    assert s.noisy == 0 and s.noise == []
