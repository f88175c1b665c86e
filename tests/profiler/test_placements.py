"""Extra buffer placements while a measurement's placements disagree (``measure_one``, scripted timings)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from profiler._worker_main import measure_one
from profiler.devices import parse_device
from profiler.families import get_family
from profiler.protocol import AdaptiveProtocol

CFG = {"input_hw": 8, "cin": 8, "cout": 8, "expansion": 1, "kernel": 3, "stride": 1, "se": False, "act": "relu"}


class PlacementTimer:
    """Each call to ``time`` is one placement's run: returns ``k`` durations of that placement's level (ms)."""

    def __init__(self, levels: list[float]) -> None:
        self.levels = itertools.chain(levels, itertools.repeat(levels[-1]))
        self.current: float | None = None

    def time(self, fn: Any, k: int) -> list[float]:
        fn()
        return [self.current] * k


class ScriptedDevice:
    """The CPU device, but its timer returns scripted durations: one level per placement."""

    def __init__(self, levels: list[float]) -> None:
        self.cpu = parse_device("cpu")
        self.timer_ = PlacementTimer(levels)
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cpu, name)

    def timer(self) -> PlacementTimer:
        self.timer_.current = next(self.timer_.levels)  # a new placement starts with a new run_samples call
        return self.timer_


def _measure(levels: list[float], **kw: Any) -> dict[str, Any]:
    proto = AdaptiveProtocol(min_seconds=0.0, min_repeats=4, warmup_min=1, warmup_seconds=0.0, **kw)
    return measure_one(ScriptedDevice(levels), get_family("mbconv"), CFG, proto)["timing"]


def test_agreeing_placements_stop_at_three() -> None:
    t = _measure([10.0, 10.1, 10.05, 5.0])
    assert t["placements"] == 3 and t["min_ms"] == pytest.approx(10.0)
    assert t["noise"] == pytest.approx(float(np.std(np.log([10.0, 10.1, 10.05]), ddof=1)))


def test_disagreeing_placements_are_measured_again() -> None:
    # the third disagrees: a fourth placement is timed, and the scatter of four is still above 5 %: a fifth ...
    t = _measure([10.0, 10.0, 13.0, 10.0, 10.1, 10.0], max_noise=0.05, max_placements=6)
    assert t["placements"] > 3 and t["min_ms"] == pytest.approx(10.0)
    assert t["noise"] <= 0.05 or t["placements"] == 6


def test_extra_placements_are_capped() -> None:
    t = _measure([10.0, 14.0, 10.0, 14.0, 10.0, 14.0, 10.0], max_noise=0.05, max_placements=5)
    assert t["placements"] == 5 and t["noise"] > 0.05


def test_by_default_three_placements_whatever_their_scatter() -> None:
    t = _measure([10.0, 14.0, 10.0, 14.0])  # max_noise=None by default (extra placements widened the tail)
    assert t["placements"] == 3 and t["noise"] > 0.05
