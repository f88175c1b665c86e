"""Fidelity: measure cheaply while the model is still far off, at full precision where it matters.

A campaign with ``fidelity="auto"`` on a profiler that can change its protocol per measurement
(``profiler.supports_protocol``; a replay table cannot) measures with two protocols:

- **cheap**: ``CHEAP_PROTOCOL``, the adaptive protocol with a fifth of its time floor and one buffer placement
  (``adaptive-quick-v1``): on this 2-core CPU 3.6x cheaper per ``mbconv`` block (median; 3.9x in total over 60
  blocks), within 5 % of the full protocol for 9 blocks in 10 and beyond 15 % for 1 in 60. A fixed protocol of 20
  calls (the paper's, shortened) was tried first: 2.5x cheaper in total but heavy-tailed (1 block in 10 read
  15-70 % high, its count-based warm-up too short for small blocks), and those tails in the verification rows
  kept the cross-validated ρ at 0.988-0.990 while never-seen rows gave 0.996 (2 of 5 live seeds never verified);
- **full**: the profiler's own protocol (what the exported predictor is meant to predict).

**Probes.** Of every cheap batch, a few rows chosen at random are measured at both fidelities:
``PROBES_FIRST`` of the first cheap batch, then as many as keep ``PROBE_SHARE`` of the cheap configurations probed.
Their pairs give the **offset** between fidelities, learned, not assumed: ``log(full) - log(cheap)`` as a robust
(Theil-Sen, scipy) line in ``log(cheap)`` once there are ``MIN_PAIRS_FOR_SLOPE`` pairs, their median before; and
the cheap fidelity's **noise**: the robust spread (1.4826 MAD) of the pairs around that line, in relative terms.
Every probe is a measurement of the campaign, so it is on the bill; its full-fidelity value is also that row's
training label.

**Training labels.** Per configuration the full-fidelity measurement when there is one, else the cheap one
times the learned offset (:meth:`Fidelity.labels`).

**When to switch.** Cheap measurements teach as much as full ones while the model's error is well above their
noise. The campaign switches to full fidelity, for good, at the first iteration whose verified MAPE is below
``SWITCH_FACTOR`` x the cheap noise (with at least ``MIN_PAIRS_TO_SWITCH`` pairs to know that noise). The
decision is derived from the stored measurements (a cheap train row after a full one cannot exist), so a
resumed campaign continues at the fidelity it had.

**Measured, not assumed**: :meth:`Fidelity.summary` reports, per fidelity, rows, median cost per row (the
ledger's charge), and the offset and noise the probes measured.

Example:
    >>> import numpy as np
    >>> rows = [{"key": "a", "protocol": "cheap", "min_ms": 1.10, "drawn": "random", "cost_s": 0.05},
    ...         {"key": "a", "protocol": "full", "min_ms": 1.00, "drawn": "probe", "cost_s": 0.3},
    ...         {"key": "b", "protocol": "cheap", "min_ms": 2.20, "drawn": "random", "cost_s": 0.05}]
    >>> fid = Fidelity("auto", cheap_id="cheap", full_id="full")
    >>> labelled = fid.labels(rows)
    >>> [(r["key"], round(r["y"], 3), r["drawn"]) for r in labelled]
    [('a', 1.0, 'random'), ('b', 2.0, 'random')]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from profiler.protocol import AdaptiveProtocol

__all__ = ["CHEAP_PROTOCOL", "FIDELITIES", "MIN_PAIRS_FOR_SLOPE", "MIN_PAIRS_TO_SWITCH", "PROBES_FIRST",
           "PROBE_SHARE", "SWITCH_FACTOR", "Fidelity"]

FIDELITIES = ("auto", "full")
# the cheap fidelity (module docstring): time floor 0.03 s instead of 0.15 s, one placement instead of three
CHEAP_PROTOCOL = AdaptiveProtocol(min_seconds=0.03, max_seconds=0.4, min_repeats=10, placements=1, variant="quick",
                                  retry_unstable=False)
PROBES_FIRST = 4  # probes in the first cheap batch (the initial design)
PROBE_SHARE = 0.05  # then one probe per 20 cheap configurations: the offset keeps being checked as the data move
MIN_PAIRS_FOR_SLOPE = 16  # below: a constant offset (the median log ratio); a tilt from fewer noisy pairs fits noise
MIN_PAIRS_TO_SWITCH = 6  # the cheap noise is not known from fewer pairs: stay cheap
SWITCH_FACTOR = 1.5  # switch to full fidelity once the verified MAPE < SWITCH_FACTOR x the cheap noise


class Fidelity:
    """The fidelity state of one campaign, rebuilt from its stored rows at every iteration (module docstring).

    ``mode`` is the campaign's setting (``auto`` or ``full``); ``cheap_id`` / ``full_id`` are the protocol ids
    of the two fidelities; ``full`` only uses ``full_id``.
    """

    def __init__(self, mode: str, *, cheap_id: str | None, full_id: str) -> None:
        if mode not in FIDELITIES:
            raise ValueError(f"fidelity={mode!r} is not allowed: expected one of {', '.join(FIDELITIES)}")
        self.mode = mode if cheap_id is not None else "full"
        self.cheap_id, self.full_id = cheap_id, full_id
        self.offset_a, self.offset_b = 0.0, 0.0  # log(full) - log(cheap) = a + b * (log(cheap) - center)
        self.center = 0.0
        self.noise = float("nan")  # relative noise of a cheap measurement around the corrected full value
        self.n_pairs = 0

    # -- the offset ------------------------------------------------------------------------------------------
    def learn(self, rows: Sequence[dict[str, Any]]) -> None:
        """Learn the offset and the cheap noise from the configurations measured at both fidelities."""
        cheap = {r["key"]: r["min_ms"] for r in rows if r["protocol"] == self.cheap_id and r.get("min_ms")}
        full = {r["key"]: r["min_ms"] for r in rows if r["protocol"] == self.full_id and r.get("min_ms")}
        both = sorted(set(cheap) & set(full))
        self.n_pairs = len(both)
        if not both:
            self.offset_a, self.offset_b, self.noise = 0.0, 0.0, float("nan")
            return
        lc = np.log([cheap[k] for k in both])
        r = np.log([full[k] for k in both]) - lc
        self.center = float(np.median(lc))
        if len(both) >= MIN_PAIRS_FOR_SLOPE and np.ptp(lc) > 0:
            from scipy.stats import theilslopes

            b, a, _, _ = theilslopes(r, lc - self.center)
            self.offset_a, self.offset_b = float(a), float(np.clip(b, -0.5, 0.5))  # a bounded tilt, never wild
        else:
            self.offset_a, self.offset_b = float(np.median(r)), 0.0
        resid = r - self._log_offset(lc)
        self.noise = float(np.expm1(1.4826 * np.median(np.abs(resid - np.median(resid))))) if len(both) > 1 \
            else float("nan")

    def _log_offset(self, log_cheap: np.ndarray) -> np.ndarray:
        return self.offset_a + self.offset_b * (np.asarray(log_cheap) - self.center)

    def correct(self, cheap_ms: np.ndarray) -> np.ndarray:
        """A cheap reading expressed at full fidelity."""
        lc = np.log(np.asarray(cheap_ms, dtype=float))
        return np.exp(lc + self._log_offset(lc))

    def labels(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One row per configuration (in first-seen order) with ``y`` (full-fidelity latency, measured or
        corrected), ``fidelity`` (``full`` or ``cheap``) and ``drawn`` (how the configuration was first drawn:
        a probe does not change it). Learns the offset first."""
        self.learn(rows)
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            if r["protocol"] not in (self.cheap_id, self.full_id):
                continue  # another protocol's row in the same campaign: not ours to use
            k = r["key"]
            is_full = r["protocol"] == self.full_id
            if k not in out:
                out[k] = dict(r, fidelity="full" if is_full else "cheap")
                if r.get("drawn") == "probe":
                    out[k]["drawn"] = None  # fixed below when the configuration's own row comes
            elif out[k]["drawn"] is None and r.get("drawn") != "probe":
                out[k]["drawn"] = r.get("drawn")
            if is_full and out[k]["fidelity"] == "cheap":
                drawn = out[k]["drawn"]
                out[k] = dict(r, fidelity="full", drawn=drawn)
        for v in out.values():
            v["y"] = float(v["min_ms"]) if v["fidelity"] == "full" else float(self.correct([v["min_ms"]])[0])
        return list(out.values())

    # -- the decision ----------------------------------------------------------------------------------------
    def switched(self, rows: Sequence[dict[str, Any]]) -> bool:
        """Whether the campaign already measures its batches at full fidelity (a non-probe train row at full)."""
        if self.mode == "full":
            return True
        return any(r["protocol"] == self.full_id and r.get("drawn") in ("random", "strategy", "initial")
                   for r in rows)

    def next_is_cheap(self, rows: Sequence[dict[str, Any]], verified_mape: float) -> bool:
        """Whether the next batch is measured cheaply (module docstring: when to switch); ``verified_mape`` in
        percent, as :func:`surrogates.evaluate` reports it."""
        if self.switched(rows):
            return False
        self.learn(rows)
        if self.n_pairs < MIN_PAIRS_TO_SWITCH or not np.isfinite(self.noise) or not np.isfinite(verified_mape):
            return True
        return bool(verified_mape / 100 >= SWITCH_FACTOR * max(self.noise, 1e-3))

    def n_probes(self, rows: Sequence[dict[str, Any]], batch: int) -> int:
        """How many rows of the next cheap batch of ``batch`` configurations to measure at both fidelities
        (``rows``: the campaign's measurements before it): enough for ``max(PROBES_FIRST, PROBE_SHARE x cheap
        configurations)`` pairs."""
        cheap = {r["key"] for r in rows if r["protocol"] == self.cheap_id}
        full = {r["key"] for r in rows if r["protocol"] == self.full_id}
        want = max(PROBES_FIRST, int(np.ceil(PROBE_SHARE * (len(cheap) + batch))))
        return int(np.clip(want - len(cheap & full), 0, batch))

    def summary(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Per fidelity: rows and median cost per row as charged; the learned offset (at the median latency)
        and the cheap noise."""
        out: dict[str, Any] = {"mode": self.mode, "pairs": self.n_pairs, "noise": self.noise,
                               "offset": float(np.expm1(self.offset_a)), "slope": self.offset_b}
        for name, pid in (("cheap", self.cheap_id), ("full", self.full_id)):
            cost = [r["cost_s"] for r in rows if r["protocol"] == pid and r.get("cost_s") is not None]
            out[name] = {"rows": len(cost), "median_cost_s": float(np.median(cost)) if cost else float("nan")}
        return out
