"""Measurement protocols, driven by a scripted timer so that the rules are tested without real timing noise."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pytest

from profiler.protocol import (
    AdaptiveProtocol,
    CpuTimer,
    FixedProtocol,
    ProtocolError,
    Run,
    Timing,
    parse_protocol,
    placement_noise,
    run_protocol,
)


class ScriptedTimer:
    """Returns durations from a script instead of measuring; counts invocations of ``fn``."""

    def __init__(self, durations: Iterable[float]) -> None:
        self.durations = iter(durations)
        self.calls = 0

    def time(self, fn: Callable[[], Any], k: int) -> list[float]:
        out = []
        for _ in range(k):
            fn()
            self.calls += 1
            out.append(next(self.durations))
        return out


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1e-3
        return self.t


def test_fixed_protocol_counts_and_statistics() -> None:
    durations = [9.0] * 5 + list(np.linspace(1.0, 2.0, 101))
    timer = ScriptedTimer(durations)
    t = run_protocol(FixedProtocol(repeats=101, warmup=5), lambda: None, timer, clock=FakeClock())
    assert timer.calls == 106
    assert t.n == 101 and t.warmup_n == 5 and t.stop == "fixed"
    assert t.min_ms == 1.0 and t.median_ms == pytest.approx(1.5) and t.p10_ms == pytest.approx(1.1)
    assert t.p90_ms == pytest.approx(1.9) and t.mean_ms == pytest.approx(1.5)
    assert t.timed_s == pytest.approx(sum(durations[5:]) / 1000)


def test_adaptive_stops_early_on_a_stable_block() -> None:
    rng = np.random.default_rng(0)
    stable = itertools.chain([50.0, 20.0], (10.0 + rng.exponential(0.2) for _ in itertools.count()))
    timer = ScriptedTimer(stable)
    proto = AdaptiveProtocol(min_repeats=20, min_seconds=0.15)
    t = run_protocol(proto, lambda: None, timer)
    assert t.stop == "stable"
    assert proto.min_repeats <= t.n <= 40
    assert 10.0 <= t.min_ms < 10.05
    assert t.unstable_reason(proto.max_spread) is None
    assert t.warmup_n >= 2  # the slow first calls were not timed


def test_adaptive_keeps_going_while_the_minimum_improves() -> None:
    # latency falls steadily (e.g. a cache warming up): the second half keeps finding a faster minimum
    timer = ScriptedTimer(20.0 * 0.995**i for i in itertools.count())
    proto = AdaptiveProtocol(min_repeats=10, min_seconds=0.0, max_repeats=400, max_seconds=1000)
    t = run_protocol(proto, lambda: None, timer)
    assert t.stop == "max_repeats" and t.n == 400
    assert "did not converge" in t.unstable_reason(proto.max_spread)


def test_adaptive_respects_the_time_cap() -> None:
    timer = ScriptedTimer(100.0 * 0.99**i for i in itertools.count())  # keeps getting faster
    proto = AdaptiveProtocol(min_repeats=10, max_seconds=2.0)
    t = run_protocol(proto, lambda: None, timer)
    assert t.stop == "max_seconds"
    assert 2.0 <= t.timed_s < 2.6


def test_adaptive_minimum_repeats_and_seconds_for_tiny_blocks() -> None:
    timer = ScriptedTimer(itertools.repeat(0.01))  # 10 microseconds
    proto = AdaptiveProtocol(min_repeats=20, min_seconds=0.15)
    t = run_protocol(proto, lambda: None, timer)
    assert t.stop == "stable" and t.timed_s >= 0.15 and t.n >= 15_000


def test_a_cap_reached_with_converged_statistics_is_stable() -> None:
    timer = ScriptedTimer(itertools.repeat(0.01))
    proto = AdaptiveProtocol(min_repeats=20, min_seconds=0.15, max_repeats=2000)
    t = run_protocol(proto, lambda: None, timer)
    assert t.n == 2000 and t.stop == "stable" and t.unstable_reason(proto.max_spread) is None


def test_spread_flags_bimodal_timings() -> None:
    samples = np.array([1.0] + [4.0] * 30)
    t = Timing.from_samples(samples, warmup_n=2, warmup_s=0.01, stop="stable")
    assert t.spread == pytest.approx(4.0)
    assert "bimodal" in t.unstable_reason(1.25)
    assert Timing.from_samples(np.full(30, 2.0), 2, 0.01, "stable").unstable_reason(1.25) is None


def test_cpu_timer_measures_sleep() -> None:
    import time

    out = CpuTimer().time(lambda: time.sleep(0.002), 3)
    assert len(out) == 3 and all(d >= 2.0 for d in out)  # a sleep never returns early; load only adds


@pytest.mark.parametrize("kwargs, field", [
    ({"min_repeats": 1}, "min_repeats"), ({"max_repeats": 5}, "max_repeats"), ({"rel_tol": 0}, "rel_tol"),
    ({"max_seconds": -1}, "max_seconds"), ({"warmup_min": 2.5}, "warmup_min"), ({"max_spread": 0.5}, "max_spread"),
])
def test_adaptive_parameter_validation(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError, match=field):
        AdaptiveProtocol(**kwargs)


def test_fixed_parameter_validation_and_ids() -> None:
    with pytest.raises(ProtocolError, match="repeats"):
        FixedProtocol(repeats=0)
    assert FixedProtocol(repeats=1000).id == "fixed-n1000-v1"
    assert AdaptiveProtocol().id == "adaptive-v1"
    assert parse_protocol("fixed", repeats=5).repeats == 5
    with pytest.raises(ProtocolError, match="'bogus'"):
        parse_protocol("bogus")


def test_more_warmup_on_retry() -> None:
    a = AdaptiveProtocol()
    b = a.with_more_warmup()
    assert b.warmup_min > a.warmup_min and b.warmup_seconds > a.warmup_seconds and b.id == a.id
    f = FixedProtocol(warmup=10).with_more_warmup()
    assert f.warmup > 10


def test_placements_split_the_budget_and_combine() -> None:
    proto = AdaptiveProtocol(min_repeats=20, min_seconds=0.15, max_seconds=2.0, placements=3)
    per = proto.per_placement()
    assert per.placements == 1 and per.min_repeats == 7
    assert per.min_seconds == pytest.approx(0.05) and per.max_seconds == pytest.approx(2.0 / 3)
    later = proto.per_placement(first=False)
    assert later.warmup_min == 1 and later.warmup_seconds < per.warmup_seconds
    one = AdaptiveProtocol(placements=1, max_placements=1)
    assert one.per_placement() == one
    with pytest.raises(ProtocolError, match="placements"):
        AdaptiveProtocol(placements=0)
    runs = [Run(np.array([2.0, 2.1, 2.2]), 2, 0.01, "stable"), Run(np.array([1.5, 1.6]), 3, 0.02, "max_seconds")]
    t = Timing.combine(runs)
    assert t.min_ms == 1.5 and t.n == 5 and t.warmup_n == 5 and t.warmup_s == pytest.approx(0.03)
    assert t.stop == "max_seconds"  # one unconverged placement makes the whole measurement unconverged
    assert t.placements == 2 and t.noise == pytest.approx(abs(np.log(2.0 / 1.5)) / np.sqrt(2))


def test_placement_noise_and_extra_placements() -> None:
    assert placement_noise([1.0]) is None and placement_noise([]) is None
    assert placement_noise([2.0, 2.0, 2.0]) == 0.0
    assert placement_noise([1.0, np.e]) == pytest.approx(1 / np.sqrt(2))
    proto = AdaptiveProtocol(placements=3, max_noise=0.05, max_placements=5)
    assert proto.wants_another_placement([]) and proto.wants_another_placement([10.0, 10.1])
    assert not proto.wants_another_placement([10.0, 10.1, 10.05])  # they agree: three placements are enough
    assert proto.wants_another_placement([10.0, 11.5, 12.0])  # they disagree: one more
    assert not proto.wants_another_placement([10.0, 11.5, 12.0, 10.0, 13.0])  # at max_placements
    assert not AdaptiveProtocol(max_noise=None).wants_another_placement([10.0, 11.5, 12.0])
    assert FixedProtocol().wants_another_placement([]) and not FixedProtocol().wants_another_placement([1.0])
    with pytest.raises(ProtocolError, match="max_placements"):
        AdaptiveProtocol(placements=3, max_placements=2)
    with pytest.raises(ProtocolError, match="max_noise"):
        AdaptiveProtocol(max_noise=0)
    # the timeout leaves room for the extra placements
    assert proto.suggested_timeout() > AdaptiveProtocol(max_placements=3).suggested_timeout()


def test_a_named_adaptive_variant_is_stored_apart() -> None:
    assert AdaptiveProtocol().id == "adaptive-v1"
    assert AdaptiveProtocol(min_seconds=0.03, variant="quick").id == "adaptive-quick-v1"
    with pytest.raises(ProtocolError, match="variant='a b'"):
        AdaptiveProtocol(variant="a b")
