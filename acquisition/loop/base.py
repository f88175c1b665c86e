"""What the loop's parts share: an asked configuration, the training data of one iteration, seed streams.

Example:
    >>> a = Asked("k1", {"c": 8}, drawn="initial", protocol="adaptive-v1", batch="initial")
    >>> Asked.from_row(a.as_row()) == a
    True
    >>> stream(0, "query", 3) == stream(0, "query", 3) != stream(1, "query", 3)
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Asked", "TrainingData", "finite", "noise_kw", "row_noise", "sampler", "stream"]


@dataclass(frozen=True)
class Asked:
    """A configuration a campaign asks to have measured.

    ``key`` is the family's canonical key of ``config``. ``role`` is ``train``, or ``validation`` for a holdout
    campaign's validation set; ``drawn`` says how it was chosen (``initial``, ``random``, ``strategy``,
    ``validation`` or ``probe``); ``protocol`` is the id of the protocol to measure it with; ``batch`` is what
    asked for it: ``validation``, ``initial`` or the number of the iteration. ``pred_log``: the log-latency the
    asking iteration's model predicted before it was measured, fitted on ``pred_n`` rows (prequential
    verification); ``None`` for the design and probes.
    """

    key: str
    config: dict[str, Any]
    role: str = "train"
    drawn: str | None = None
    protocol: str = ""
    batch: str = ""
    pred_log: float | None = None
    pred_n: int | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Asked:
        return cls(row["key"], row["config"], row["role"], row["drawn"], row["protocol"], row["batch"] or "",
                   row.get("pred_log"), row.get("pred_n"))

    def as_row(self) -> dict[str, Any]:
        return {"key": self.key, "config": self.config, "role": self.role, "drawn": self.drawn,
                "protocol": self.protocol, "batch": self.batch, "pred_log": self.pred_log, "pred_n": self.pred_n}


@dataclass
class TrainingData:
    """One iteration's rows: training (labels at full fidelity), validation (holdout), their features."""

    train: list[dict[str, Any]]  # one row per configuration, label in "y" (acquisition.fidelity.Fidelity.labels)
    X: np.ndarray
    y: np.ndarray
    val: list[dict[str, Any]]
    X_val: np.ndarray
    y_val: np.ndarray
    rows: list[dict[str, Any]] = field(default_factory=list)  # every ok train measurement (both fidelities)
    noise: np.ndarray | None = None  # each train row's relative measurement noise (NaN: unknown, older rows)

    def fit_kw(self) -> dict[str, Any]:
        """``sample_noise`` for the model's ``fit`` when some row's noise is known (nothing otherwise)."""
        return noise_kw(self.noise)


def row_noise(rows: Sequence[dict[str, Any]]) -> np.ndarray:
    """Each stored measurement's relative noise (``measurements.noise``, schema 8), NaN where it has none."""
    return np.asarray([np.nan if r.get("noise") is None else float(r["noise"]) for r in rows], dtype=float)


def noise_kw(noise: np.ndarray | None) -> dict[str, Any]:
    """``{"sample_noise": noise}`` when any row's noise is known, else ``{}`` (the model's plain fit)."""
    return {"sample_noise": noise} if noise is not None and np.isfinite(noise).any() else {}


def sampler(profiler: Any, family: Any) -> Callable[[int, str, int, set[str]], list[dict[str, Any]]]:
    """How candidates are drawn: from the oracle when it has its own pool (a replay table's rows), else from
    the family's space (fresh configurations)."""
    own = getattr(profiler, "sample", None)
    if callable(own):
        return lambda n, method, seed, exclude: own(n, method, seed, exclude=exclude, family=family.name)
    return lambda n, method, seed, exclude: family.space.sample(n, method=method, seed=seed, family=family.name,
                                                               exclude=exclude)


def stream(seed: int, *parts: Any) -> int:
    """A deterministic sub-seed for one purpose (validation, initial design, query at iteration i, ...)."""
    h = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return int.from_bytes(h[:4], "little")


def finite(v: Any) -> float | None:
    """``v`` as a float, or ``None`` where it is missing or not finite (a stored NULL)."""
    return float(v) if v is not None and np.isfinite(v) else None
