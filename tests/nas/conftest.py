"""Shared fixtures: small bundles fitted on synthetic block latencies, and a profiler stand-in that measures
whole networks as 0.3 ms + 1.1 x the sum of their blocks' synthetic latencies (a known overhead to recover)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest

from nas.measure import space_blocks
from nas.network import Network
from nas.spaces import get_space
from profiler.families import get_family
from profiler.protocol import Timing
from profiler.worker import Measurement
from tests.acquisition.synthetic_profiler import SyntheticProfiler
from tests.surrogates.synthetic import roofline_ms

PLATFORM = "5y57e71c0000"  # SyntheticProfiler's
OVERHEAD_MS, SLOPE = 0.3, 1.1


def block_ms(family: str, cfg: dict[str, Any]) -> float:
    fam = get_family(family)
    key = fam.key(cfg)
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little")
    return roofline_ms(fam.counts(cfg)) * float(np.random.default_rng(seed).lognormal(0.0, 0.02))


def network_ms(net: Network) -> float:
    return OVERHEAD_MS + SLOPE * sum(block_ms(b.family, dict(b.config)) for b in net.blocks)


class NetworkProfiler(SyntheticProfiler):
    """SyntheticProfiler that also measures whole networks (family ``network``)."""

    def measure(self, family: Any, config: dict[str, Any]) -> Measurement:
        if family.name != "network":
            return super().measure(family, config)
        self.calls += 1
        cfg = family.validate(config)
        ms = network_ms(Network.from_dict(cfg))
        t = Timing(min_ms=ms, median_ms=ms, p10_ms=ms, p90_ms=ms, mean_ms=ms, n=40, timed_s=ms * 0.04, warmup_n=2,
                   warmup_s=0.0, stop="stable", spread=1.0)
        return Measurement(family="network", key=family.key(cfg), config=cfg, protocol=self.protocol.id,
                           platform=self.platform_id, status="ok", cost_s=ms * 0.045 + 0.05, timing=t)


def make_bundle(path: str, family: str, n_networks: int = 60) -> str:
    from surrogates import FeatureEncoder, export_bundle, get_model

    cfgs = space_blocks(get_space(f"stacked-{family}"), n_networks, seed=1)[family]
    cfgs += get_family(family).space.sample(100, seed=2)
    y = np.asarray([block_ms(family, c) for c in cfgs])
    enc = FeatureEncoder(get_family(family))
    model = get_model("gbt", max_iter=80, random_state=0).fit(enc.transform(cfgs), y)
    export_bundle(path, model, enc, model_name="gbt", platform={"id": PLATFORM, "protocol": "synthetic-v1"},
                  n_train=len(cfgs))
    return path


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = tmp_path_factory.mktemp("bundles")
    for fam in ("mbconv", "resv1"):
        make_bundle(str(d / f"{fam}.bundle"), fam)
    return str(d)
