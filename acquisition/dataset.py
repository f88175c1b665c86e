"""Stored measurements as a training set: one family, one platform, one protocol, and the paper's split.

:func:`load_dataset` is what :mod:`acquisition.fitting` fits and :mod:`acquisition.noise` re-measures; it lives
apart from both so that neither imports the other.

Example:
    >>> import os, tempfile
    >>> from acquisition.store import Store
    >>> with Store(os.path.join(tempfile.mkdtemp(), "x.sqlite")) as store:
    ...     try:
    ...         load_dataset(store, "mbconv")
    ...     except FitError as exc:
    ...         print(exc)
    no ok measurements of family 'mbconv' in the database: profile some first
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Dataset", "FitError", "load_dataset", "split_indices"]


class FitError(ValueError):
    """The stored data cannot produce a model (no data, ambiguous platform, unknown model)."""


@dataclass
class Dataset:
    family: str
    platform: str
    protocol: str
    configs: list[dict[str, Any]]
    latency_ms: np.ndarray
    keys: list[str]
    fingerprint: dict[str, Any] = field(default_factory=dict)
    noise: np.ndarray | None = None  # each row's relative measurement noise; NaN where unknown

    def __post_init__(self) -> None:
        if self.noise is None:
            self.noise = np.full(len(self.configs), np.nan)

    def __len__(self) -> int:
        return len(self.configs)


def load_dataset(store: Any, family: str, *, platform: str | None = None, protocol: str | None = None,
                 statistic: str = "min_ms") -> Dataset:
    """The ok measurements of ``family`` (one platform, one protocol) with their ``statistic`` as latency."""
    if statistic not in ("min_ms", "median_ms", "p10_ms"):
        raise FitError(f"statistic={statistic!r} is not allowed: expected min_ms, median_ms or p10_ms")
    rows = [r for r in store.measurements(family=family, status="ok") if r[statistic] and r[statistic] > 0]
    if not rows:
        raise FitError(f"no ok measurements of family {family!r} in the database: profile some first")
    plats = Counter(r["platform"] for r in rows)
    if platform is None:
        if len(plats) > 1:
            listing = ", ".join(f"{p} ({n})" for p, n in plats.most_common())
            raise FitError(f"family {family!r} was measured on {len(plats)} platforms: choose one with --platform "
                           f"({listing})")
        platform = next(iter(plats))
    elif platform not in plats:
        raise FitError(f"platform {platform!r} has no ok measurements of family {family!r} "
                       f"(platforms: {', '.join(plats)})")
    rows = [r for r in rows if r["platform"] == platform]
    protos = Counter(r["protocol"] for r in rows)
    if protocol is None:
        protocol = protos.most_common(1)[0][0]  # measurements of two protocols never mix
    elif protocol not in protos:
        raise FitError(f"protocol {protocol!r} has no measurements here (protocols: {', '.join(protos)})")
    rows = [r for r in rows if r["protocol"] == protocol]
    fp = next((p["fingerprint"] for p in store.platforms() if p["id"] == platform), {})
    noise = np.asarray([np.nan if r.get("noise") is None else float(r["noise"]) for r in rows], dtype=float)
    return Dataset(family, platform, protocol, [r["config"] for r in rows],
                   np.asarray([r[statistic] for r in rows], dtype=float), [r["key"] for r in rows], fp, noise)


def split_indices(n: int, *, seed: int = 0, validation: float = 0.15, test: float = 0.15
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random train / validation / test index arrays (the paper's three-way split)."""
    if n < 10:
        raise FitError(f"{n} measurements are too few to split into train/validation/test (need >= 10)")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(2, round(n * test))
    n_val = max(2, round(n * validation))
    return perm[n_test + n_val:], perm[n_test:n_test + n_val], perm[:n_test]
