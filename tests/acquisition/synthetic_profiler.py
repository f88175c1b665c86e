"""A profiler stand-in for engine tests: answers instantly from a roofline law of the block's analytic counts
with log-normal noise (seeded per configuration, so a configuration measures the same every time), and charges
the cost the adaptive protocol would (about 40 calls of the block plus 50 ms). Optionally fails or sleeps."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from profiler.protocol import Timing
from profiler.worker import Measurement
from tests.surrogates.synthetic import roofline_ms


@dataclass
class _Device:
    spec: str = "synthetic"


@dataclass
class _Protocol:
    id: str = "synthetic-v1"


class SyntheticProfiler:
    def __init__(self, noise: float = 0.02, platform: str = "5y57e71c0000", sleep_s: float = 0.0,
                 fail_every: int = 0, law: dict[str, float] | None = None) -> None:
        self.noise = noise
        self.law = dict(law or {})  # roofline_ms parameters: another law is another platform
        self.platform_id = platform
        self.fingerprint = {"kind": "synthetic", "noise": noise, **self.law}
        self.device = _Device()
        self.protocol = _Protocol()
        self.sleep_s = sleep_s
        self.fail_every = fail_every
        self.calls = 0

    def measure(self, family: Any, config: dict[str, Any]) -> Measurement:
        self.calls += 1
        cfg = family.validate(config)
        key = family.key(cfg)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if self.fail_every and self.calls % self.fail_every == 0:
            return Measurement(family=family.name, key=key, config=cfg, protocol=self.protocol.id,
                               platform=self.platform_id, status="failed", cost_s=0.5, reason="synthetic failure")
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little")
        ms = roofline_ms(family.counts(cfg), **self.law) * float(np.random.default_rng(seed).lognormal(0.0, self.noise))
        t = Timing(min_ms=ms, median_ms=ms * 1.03, p10_ms=ms * 1.01, p90_ms=ms * 1.08, mean_ms=ms * 1.04, n=40,
                   timed_s=ms * 0.04, warmup_n=2, warmup_s=ms * 0.002, stop="stable", spread=1.01)
        return Measurement(family=family.name, key=key, config=cfg, protocol=self.protocol.id,
                           platform=self.platform_id, status="ok", cost_s=ms * 0.045 + 0.05, timing=t, build_s=0.01)

    def close(self) -> None:
        pass

    def __enter__(self) -> SyntheticProfiler:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
