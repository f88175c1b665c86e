"""Synthetic but structured latency data for surrogate tests (no profiling): a roofline-like law of the block's
analytic counts with log-normal noise, so that models have something real to learn and rank."""

from __future__ import annotations

import numpy as np

from profiler.families import get_family


def roofline_ms(counts, *, gmacs_per_s: float = 20.0, gbytes_per_s: float = 8.0, layer_us: float = 15.0) -> float:
    """max(compute time, memory time) + a fixed cost per layer, in ms."""
    compute = counts.macs / (gmacs_per_s * 1e9)
    memory = counts.bytes_moved / (gbytes_per_s * 1e9)
    return 1e3 * (max(compute, memory) + counts.layers * layer_us * 1e-6)


def block_dataset(family: str, n: int, *, seed: int = 0, noise: float = 0.03):
    """(configs, latency_ms) for ``n`` random configurations of a built-in family."""
    fam = get_family(family)
    configs = fam.space.sample(n, seed=seed)
    rng = np.random.default_rng(seed + 1000)
    y = np.array([roofline_ms(fam.counts(c)) for c in configs]) * rng.lognormal(0.0, noise, n)
    return fam, configs, y
