"""Measurement protocols: how many times a block is run, and which statistics are kept.

Two protocols share one runner (:func:`run_protocol`) and any :class:`Timer` (CPU wall clock or CUDA events):

- :class:`AdaptiveProtocol` (the default): warm up, then time invocations in chunks until the minimum has
  stopped improving and the median has stopped drifting, bounded by repeat and time caps.
- :class:`FixedProtocol`: the paper's protocol, N timed invocations after a short warm-up, statistic = min.

Every run returns a :class:`Timing` with min (the paper's statistic), median, p10, p90, mean, n, timed seconds,
warm-up cost and why it stopped. A timing is *unstable* when the adaptive rule hit a cap before converging or
when the spread p10/min exceeds ``max_spread`` (a bimodal process); the profiler re-measures those in a fresh
worker (see :mod:`profiler.worker`).

Example:
    >>> import time
    >>> from profiler.protocol import AdaptiveProtocol, CpuTimer, run_protocol
    >>> t = run_protocol(AdaptiveProtocol(min_seconds=0.01), lambda: time.sleep(0.001), CpuTimer())
    >>> t.min_ms >= 1.0 and t.n >= 10
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

__all__ = ["AdaptiveProtocol", "CpuTimer", "FixedProtocol", "MeasurementProtocol", "ProtocolError", "Run",
           "Timer", "Timing", "parse_protocol", "placement_noise", "run_protocol", "run_samples"]

PROTOCOL_VERSION = 1


class ProtocolError(ValueError):
    """A protocol parameter is out of its allowed range."""


class Timer(Protocol):
    """Times ``k`` back-to-back invocations of ``fn``, one duration (milliseconds) per invocation."""

    def time(self, fn: Callable[[], Any], k: int) -> list[float]: ...


class CpuTimer:
    """Wall-clock timer: ``time.perf_counter_ns`` around each invocation."""

    def time(self, fn: Callable[[], Any], k: int) -> list[float]:
        out = []
        clock = time.perf_counter_ns
        for _ in range(k):
            t0 = clock()
            fn()
            out.append((clock() - t0) / 1e6)
        return out


def _check(name: str, value: float, low: float, high: float = float("inf"), integer: bool = False) -> None:
    ok = low <= value <= high and (not integer or float(value).is_integer())
    if not ok:
        kind = "an integer" if integer else "a number"
        raise ProtocolError(f"{name}={value!r} is out of range: expected {kind} in [{low}, {high}]")


@dataclass(frozen=True)
class AdaptiveProtocol:
    """Warm up, then repeat until the statistic is stable, capped by repeats and seconds.

    Stable means: at least ``min_repeats`` invocations and ``min_seconds`` of timed work, the minimum of the
    first half of the samples is within ``rel_tol`` of the overall minimum (the second half did not find a
    faster mode), and the lower quartiles of the two halves agree within ``drift_tol`` (no trend; the quartile
    rather than the median because interference from other processes fattens the upper half of the samples:
    medians of two halves differ by 3-6 % on this shared CPU while the minimum is already settled).
    Warm-up runs at least ``warmup_min`` invocations and ``warmup_seconds`` of work.

    ``placements``: the block is built and timed in that many buffer placements (each after a random-size pad
    allocation shifts the heap), each with its share of the budget, and the statistics are taken over all
    samples. Where buffers land changes a block's minimum by 6-15 % inside one process on this CPU (cache-set
    and 4K aliasing between activations); a single placement made two processes disagree by up to 38 %.

    ``max_noise`` / ``max_placements``: a measurement's own noise is the scatter of its placements' minima (std of
    their logs, :func:`placement_noise`), stored with it. With ``max_noise`` set, while the scatter exceeds it the
    block is timed in one more placement, up to ``max_placements`` in all (a measurement whose placements
    disagree is measured again before it is stored). Off by default (``None``): measured side by side on this
    KVM guest, extra placements at 5 % made the tail between processes *worse* (23 against 13 of 300
    configurations off by more than 10 %; ``benchmarks/noise_bench.py``), because a minimum over more samples
    catches more of the host's rare fast moments, which another process may not see.

    ``retry_unstable``: a block whose timing did not settle is measured again in a fresh worker with more
    warm-up (:class:`profiler.worker.Profiler`, up to ``max_attempts``). ``False`` keeps the first timing, flagged
    unstable: for a quick, low-fidelity protocol the restart costs many times the measurement itself.
    """

    warmup_min: int = 2
    warmup_seconds: float = 0.02
    min_repeats: int = 20
    min_seconds: float = 0.15
    max_repeats: int = 100_000
    max_seconds: float = 2.0
    rel_tol: float = 0.01
    drift_tol: float = 0.05
    max_spread: float = 1.25
    placements: int = 3
    max_noise: float | None = None
    max_placements: int = 6
    variant: str = ""  # a named variant is stored apart from the default (e.g. the engine's cheap "quick")
    retry_unstable: bool = True  # measure an unstable block again in a fresh worker (see profiler.worker)
    name: str = field(default="adaptive", init=False)

    def __post_init__(self) -> None:
        _check("placements", self.placements, 1, 100, integer=True)
        _check("max_placements", self.max_placements, self.placements, 100, integer=True)
        if self.max_noise is not None:
            _check("max_noise", self.max_noise, 1e-6, 10)
        _check("warmup_min", self.warmup_min, 0, 10_000, integer=True)
        _check("warmup_seconds", self.warmup_seconds, 0, 600)
        _check("min_repeats", self.min_repeats, 2, 1_000_000, integer=True)
        _check("max_repeats", self.max_repeats, self.min_repeats, 10_000_000, integer=True)
        _check("min_seconds", self.min_seconds, 0, 600)
        _check("max_seconds", self.max_seconds, max(self.min_seconds, 1e-3), 86_400)
        _check("rel_tol", self.rel_tol, 1e-6, 1)
        _check("drift_tol", self.drift_tol, 1e-6, 1)
        _check("max_spread", self.max_spread, 1, 100)
        if not isinstance(self.variant, str) or not all(c.isalnum() for c in self.variant):
            raise ProtocolError(f"variant={self.variant!r} is not allowed: expected letters and digits")
        if not isinstance(self.retry_unstable, bool):
            raise ProtocolError(f"retry_unstable={self.retry_unstable!r} is not allowed: expected True or False")

    @property
    def id(self) -> str:
        """Identifies the protocol in the store (measurements are unique per protocol id)."""
        return f"adaptive-{self.variant}-v{PROTOCOL_VERSION}" if self.variant else f"adaptive-v{PROTOCOL_VERSION}"

    def suggested_timeout(self) -> float:
        return 120.0 + 3 * (self.max_seconds * self.max_placements / self.placements + self.warmup_seconds)

    def with_more_warmup(self) -> AdaptiveProtocol:
        from dataclasses import replace

        return replace(self, warmup_min=max(4, 2 * self.warmup_min), warmup_seconds=max(0.2, 4 * self.warmup_seconds))

    def per_placement(self, first: bool = True) -> AdaptiveProtocol:
        """The share of the budget one buffer placement gets (see :func:`profiler._worker_main.measure_one`).

        Only the first placement needs the full warm-up (one-off initialisation); later ones re-warm caches.
        """
        from dataclasses import replace

        k = self.placements
        if k == 1 and self.max_placements == 1:
            return self
        min_rep = max(5, -(-self.min_repeats // k))
        warm = {} if first else {"warmup_min": 1, "warmup_seconds": self.warmup_seconds / 4}
        return replace(self, placements=1, max_placements=1, min_repeats=min_rep, min_seconds=self.min_seconds / k,
                       max_seconds=self.max_seconds / k, max_repeats=max(min_rep, self.max_repeats // k), **warm)

    def params(self) -> dict[str, Any]:
        return asdict(self)

    def wants_another_placement(self, minima: list[float]) -> bool:
        """Whether a block timed in placements with these minima needs one more (see the class docstring)."""
        if len(minima) < self.placements:
            return True
        if self.max_noise is None or len(minima) >= self.max_placements:
            return False
        noise = placement_noise(minima)
        return noise is not None and noise > self.max_noise


@dataclass(frozen=True)
class FixedProtocol:
    """The paper's protocol: ``warmup`` untimed then ``repeats`` timed invocations; statistic = min."""

    repeats: int = 10_000
    warmup: int = 10
    max_spread: float = 1.25
    name: str = field(default="fixed", init=False)

    def __post_init__(self) -> None:
        _check("repeats", self.repeats, 1, 10_000_000, integer=True)
        _check("warmup", self.warmup, 0, 1_000_000, integer=True)
        _check("max_spread", self.max_spread, 1, 100)

    @property
    def id(self) -> str:
        return f"fixed-n{self.repeats}-v{PROTOCOL_VERSION}"

    def suggested_timeout(self) -> float:
        return 3600.0

    placements = 1  # the paper's protocol: one build, N invocations

    def wants_another_placement(self, minima: list[float]) -> bool:
        return not minima

    def with_more_warmup(self) -> FixedProtocol:
        from dataclasses import replace

        return replace(self, warmup=max(20, 4 * self.warmup))

    def per_placement(self, first: bool = True) -> FixedProtocol:
        return self

    def params(self) -> dict[str, Any]:
        return asdict(self)


MeasurementProtocol = AdaptiveProtocol | FixedProtocol


def parse_protocol(name: str, **params: Any) -> MeasurementProtocol:
    """``"adaptive"`` or ``"fixed"`` with optional parameters (``repeats=1000`` for fixed, ...)."""
    if name == "adaptive":
        return AdaptiveProtocol(**params)
    if name == "fixed":
        return FixedProtocol(**params)
    raise ProtocolError(f"protocol={name!r} is not allowed: expected 'adaptive' or 'fixed'")


@dataclass
class Timing:
    """Statistics of one protocol run. Times in milliseconds, costs in seconds."""

    min_ms: float
    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    n: int
    timed_s: float
    warmup_n: int
    warmup_s: float
    stop: str  # "stable", "max_repeats", "max_seconds" or "fixed"
    spread: float  # p10 / min
    placements: int = 1  # buffer placements timed (each a rebuild; see AdaptiveProtocol)
    noise: float | None = None  # relative noise of min_ms: std of the log placement minima (None with one placement)

    @classmethod
    def from_samples(cls, samples_ms: np.ndarray, warmup_n: int, warmup_s: float, stop: str) -> Timing:
        s = np.asarray(samples_ms, dtype=float)
        p10, med, p90 = np.percentile(s, [10, 50, 90])
        mn = float(s.min())
        return cls(min_ms=mn, median_ms=float(med), p10_ms=float(p10), p90_ms=float(p90), mean_ms=float(s.mean()),
                   n=int(s.size), timed_s=float(s.sum()) / 1e3, warmup_n=warmup_n, warmup_s=warmup_s, stop=stop,
                   spread=float(p10) / mn if mn > 0 else float("inf"))

    @classmethod
    def combine(cls, runs: list[Run]) -> Timing:
        """Statistics over the samples of several runs (placements); a run that did not converge taints all."""
        stops = [r.stop for r in runs]
        stop = next((s for s in stops if s in ("max_repeats", "max_seconds")), stops[0])
        t = cls.from_samples(np.concatenate([r.samples for r in runs]), sum(r.warmup_n for r in runs),
                             sum(r.warmup_s for r in runs), stop)
        t.placements = len(runs)
        t.noise = placement_noise([float(r.samples.min()) for r in runs])
        return t

    def unstable_reason(self, max_spread: float) -> str | None:
        """Why this timing should not be trusted as is, or ``None``."""
        if self.stop in ("max_repeats", "max_seconds"):
            return f"did not converge ({self.stop} reached after n={self.n})"
        if self.spread > max_spread:
            return f"spread p10/min={self.spread:.2f} above {max_spread:.2f} (bimodal timings)"
        return None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def placement_noise(minima: list[float]) -> float | None:
    """Relative noise of a measurement from its placements' minima: the standard deviation of their logarithms
    (``None`` with fewer than two placements). 0.02 means the placements' minima scatter by about 2 %."""
    m = np.asarray([v for v in minima if v > 0], dtype=float)
    if m.size < 2:
        return None
    return float(np.std(np.log(m), ddof=1))


def _converged(samples: np.ndarray, protocol: AdaptiveProtocol) -> bool:
    """The statistics have settled: the minimum stopped improving and the lower quartile does not drift."""
    half = samples.size // 2
    if half < 2:
        return False
    first, second = samples[:half], samples[half:]
    if first.min() > samples.min() * (1 + protocol.rel_tol):
        return False
    m1, m2 = np.percentile(first, 25), np.percentile(second, 25)
    return abs(m1 - m2) <= protocol.drift_tol * min(m1, m2)


def _is_stable(samples: np.ndarray, protocol: AdaptiveProtocol) -> bool:
    """Converged after the minimum effort (``min_repeats`` and ``min_seconds``)."""
    if samples.size < protocol.min_repeats or samples.sum() / 1e3 < protocol.min_seconds:
        return False
    return _converged(samples, protocol)


def run_protocol(protocol: MeasurementProtocol, fn: Callable[[], Any], timer: Timer | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Run ``protocol`` on ``fn`` with ``timer`` (default :class:`CpuTimer`) and return its :class:`Timing`."""
    return Timing.combine([run_samples(protocol, fn, timer, clock)])


@dataclass
class Run:
    """Raw result of one protocol run: the timed samples (ms), the warm-up and why it stopped."""

    samples: np.ndarray
    warmup_n: int
    warmup_s: float
    stop: str


def run_samples(protocol: MeasurementProtocol, fn: Callable[[], Any], timer: Timer | None = None,
                clock: Callable[[], float] = time.perf_counter) -> Run:
    """Like :func:`run_protocol` but returns the raw samples (several runs combine with :meth:`Timing.combine`)."""
    timer = timer or CpuTimer()
    t0 = clock()
    warm: list[float] = []
    if isinstance(protocol, FixedProtocol):
        if protocol.warmup:
            warm = timer.time(fn, protocol.warmup)
        warmup_s = clock() - t0
        samples: list[float] = []
        while len(samples) < protocol.repeats:
            samples += timer.time(fn, min(1000, protocol.repeats - len(samples)))
        return Run(np.asarray(samples, dtype=float), len(warm), warmup_s, "fixed")

    # adaptive
    while len(warm) < protocol.warmup_min or sum(warm) / 1e3 < protocol.warmup_seconds:
        warm += timer.time(fn, 1)
        if len(warm) >= 10_000:
            break
    warmup_s = clock() - t0
    est_ms = max(min(warm[-protocol.warmup_min:]) if warm else 1.0, 1e-4)
    samples_arr = np.empty(0)
    stop = "stable"
    while True:
        n = samples_arr.size
        # chunk: enough to reach min_repeats / min_seconds, then a quarter more each round, at most ~0.25 s
        want = max(protocol.min_repeats - n, int(np.ceil(protocol.min_seconds * 1e3 / est_ms)) - n, n // 4, 1)
        want = min(want, max(1, int(250 / est_ms)), protocol.max_repeats - n)
        samples_arr = np.concatenate([samples_arr, timer.time(fn, want)])
        est_ms = float(np.median(samples_arr))
        if _is_stable(samples_arr, protocol):
            break
        at_cap = "max_repeats" if samples_arr.size >= protocol.max_repeats else \
            "max_seconds" if samples_arr.sum() / 1e3 >= protocol.max_seconds else None
        if at_cap:  # out of budget: still "stable" if the statistics converged (tiny blocks hit max_repeats)
            stop = "stable" if _converged(samples_arr, protocol) else at_cap
            break
    return Run(samples_arr, len(warm), warmup_s, stop)
