"""Telling results: checking what a user tells (a key or a configuration, a latency or a failure, a cost; one
call or a CSV file) and writing the CSV of asks to fill in (:func:`write_asks_csv`)."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from acquisition.campaign import CampaignError
from acquisition.engine import Asked
from profiler.files import atomic_write

__all__ = ["COST", "FAILED", "KEY", "LATENCY", "CsvTold", "LatencyOnly", "Teller", "check_latency", "check_seconds",
           "write_asks_csv"]

LATENCY, COST, FAILED, KEY = "latency_ms", "cost_s", "failed", "key"  # the CSV columns besides the parameters


@dataclass(frozen=True)
class CsvTold:
    """What :meth:`~acquisition.ask_tell.Campaign.tell_csv` stored: measurements told, failures told, and rows
    left empty (their configurations stay pending)."""

    told: int
    failed: int
    left: int


@dataclass(frozen=True)
class LatencyOnly:
    """The timing of a measurement known only by its latency (told by the user's tool, or read from a recorded
    table: ``stop = "recorded"``); the other statistics are not known."""

    min_ms: float
    median_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    mean_ms: float | None = None
    n: int | None = None
    timed_s: float | None = None
    warmup_s: float | None = None
    stop: str = "told"


def check_seconds(what: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise CampaignError(f"{what}={v!r} is not allowed: expected a number of seconds >= 0")
    return float(v)


def check_latency(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        raise CampaignError(f"latency_ms={v!r} is not allowed: expected a positive, finite number of milliseconds")
    return float(v)


class Teller:
    """Turns what a user tells into the ask it answers and its :class:`~profiler.worker.Measurement`, every input
    checked and nothing stored (the campaign stores it, in one transaction).

    Contract: :meth:`prepare` takes a key or a configuration with a latency (or a failure's reason) and a cost,
    and returns ``(asked, measurement)`` or raises a one-line :class:`~acquisition.campaign.CampaignError` naming
    the bad value; :meth:`parse_row` does the same for one row of a CSV file; :meth:`read_csv` reads a file's rows
    after checking its columns.
    """

    def __init__(self, store: Any, name: str, family: Any, platform: str, spec: Any,
                 cost_fn: Callable[[float], float] | None) -> None:
        self.store = store
        self.name = name
        self.family = family
        self.platform = platform
        self.spec = spec
        self.cost_fn = cost_fn

    def read_csv(self, label: str, fh: IO[str]) -> list[tuple[int, dict[str, Any]]]:
        """The rows of a told CSV file with their line numbers, once its columns are checked."""
        params = self.family.space.names
        try:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            if LATENCY not in header:
                raise CampaignError(f"{label} has no {LATENCY!r} column (columns: {', '.join(header) or 'none'})")
            if KEY not in header and not set(params) <= set(header):
                missing = [p for p in params if p not in header]
                raise CampaignError(f"{label} has neither a {KEY!r} column nor the parameter column {missing[0]!r}")
            return [(reader.line_num, r) for r in reader]
        except csv.Error as exc:
            raise CampaignError(f"{label} is not a CSV file ({exc})") from None

    def parse_row(self, cells: dict[str, str], pending: dict[str, Asked], seen: dict[str, int],
                   line: int) -> tuple[Asked, Any]:
        space = self.family.space
        config = None
        if any(cells.get(p) for p in space.names):  # parameters given: they must be a configuration of the space
            try:
                config = self.family.validate(space.coerce({p: cells.get(p, "") for p in space.names}))
            except ValueError as exc:
                raise CampaignError(f"configuration outside the {self.family.name!r} space: {exc}") from None
        key = cells.get(KEY) or None
        if key is not None and config is not None and self.family.key(config) != key:
            raise CampaignError(f"key {key!r} does not match the parameters in its row (they have key "
                                f"{self.family.key(config)!r})")
        target: str | dict[str, Any] | None = key if key is not None else config
        if target is None:
            raise CampaignError(f"no {KEY!r} and no parameters: the row names no configuration")
        k = key if key is not None else self.family.key(config)  # type: ignore[arg-type]
        if k in seen:
            raise CampaignError(f"key {k!r} is also on line {seen[k]}")
        latency: Any = cells.get(LATENCY, "")
        if cells.get(FAILED):
            if latency:
                raise CampaignError(f"{LATENCY} {latency!r} and {FAILED} {cells[FAILED]!r}: a row is measured or "
                                    "failed, not both")
        else:
            try:
                latency = float(latency)
            except ValueError:
                raise CampaignError(f"{LATENCY} {latency!r} is not a positive number") from None
            if not math.isfinite(latency) or latency <= 0:
                raise CampaignError(f"{LATENCY} {cells[LATENCY]!r} is not a positive number")
        cost: Any = cells.get(COST) or None
        if cost is not None:
            try:
                cost = float(cost)
            except ValueError:
                raise CampaignError(f"{COST} {cost!r} is not a number of seconds") from None
            if not math.isfinite(cost) or cost < 0:
                raise CampaignError(f"{COST} {cells[COST]!r} is not a number of seconds >= 0")
        item = self.prepare(target, pending, latency_ms=None if cells.get(FAILED) else latency,
                             failed=cells.get(FAILED) or None, cost_s=cost)
        seen[k] = line
        return item

    def prepare(self, key_or_config: str | Mapping[str, Any], pending: dict[str, Asked], *,
                 latency_ms: float | None = None, failed: str | None = None,
                 cost_s: float | None = None) -> tuple[Asked, Any]:
        """The ask a told result answers and its measurement, every input checked (nothing stored)."""
        from profiler.worker import Measurement

        asked = self._resolve(key_or_config, pending)
        if failed is None:
            latency_ms = check_latency(latency_ms)
        elif not isinstance(failed, str) or not failed.strip():
            raise CampaignError(f"reason={failed!r} is not allowed: say why the configuration could not be measured")
        cost = self._cost(cost_s, latency_ms, failed is not None)
        m = Measurement(family=self.family.name, key=asked.key, config=self.family.validate(asked.config),
                        protocol=asked.protocol, platform=self.platform, status="failed" if failed else "ok",
                        cost_s=cost, reason=failed.strip() if failed else None,
                        timing=None if failed else LatencyOnly(latency_ms),  # type: ignore[arg-type]
                        device_state={"source": "tell"})
        return asked, m

    def _resolve(self, key_or_config: str | Mapping[str, Any], pending: dict[str, Asked]) -> Asked:
        what = "key"
        if isinstance(key_or_config, str):
            key = key_or_config
        elif isinstance(key_or_config, Mapping):
            try:
                key = self.family.key(key_or_config)
            except ValueError as exc:
                raise CampaignError(f"configuration outside the {self.family.name!r} space: {exc}") from None
            what = "configuration with key"
        else:
            raise CampaignError(f"key_or_config={key_or_config!r} is not allowed: expected a key (text) or a "
                                "configuration (a dict)")
        asked = pending.get(key)
        if asked is not None:
            return asked
        if key in self.store.member_keys(self.name):
            raise CampaignError(f"{what} {key!r} is already told: campaign {self.name!r} holds its measurement "
                                "(measurements are never replaced)")
        raise CampaignError(f"unknown {what} {key!r}: campaign {self.name!r} has not asked for it "
                            f"({len(pending)} pending; ask() lists them)")

    def _cost(self, cost_s: float | None, latency_ms: float | None, failed: bool) -> float:
        if cost_s is not None:
            return check_seconds("cost_s", cost_s)
        if self.cost_fn is not None and not failed:
            try:
                value = self.cost_fn(latency_ms)  # type: ignore[arg-type]
            except Exception as exc:
                raise CampaignError(f"the cost model failed for latency_ms={latency_ms!r}: "
                                    f"{type(exc).__name__}: {exc}") from None
            return check_seconds(f"the cost model's cost_s for latency_ms={latency_ms!r}", value)
        if self.spec.cost_s is not None:
            return float(self.spec.cost_s)
        raise CampaignError("cost_s is missing: give the device seconds the measurement took (cost_s=...), or "
                            "declare a cost per measurement for the campaign (Campaign(..., cost_s=...))")


def write_asks_csv(asks: Iterable[Asked], family: Any, out: str | os.PathLike[str] | IO[str]) -> int:
    """Write ``asks`` as CSV to a path (written whole or not at all) or an open text file: ``key``, one column
    per parameter of ``family``, then empty ``latency_ms``, ``cost_s`` and ``failed`` columns to fill in (what
    :meth:`~acquisition.ask_tell.Campaign.tell_csv` reads). Returns the number of rows."""
    names = list(family.space.names)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([KEY, *names, LATENCY, COST, FAILED])
    n = 0
    for a in asks:
        w.writerow([a.key, *(_cell(a.config[p]) for p in names), "", "", ""])
        n += 1
    text = buf.getvalue()
    if hasattr(out, "write"):
        out.write(text)  # type: ignore[union-attr]
        return n
    path = os.fspath(out)  # type: ignore[arg-type]
    with atomic_write(path) as fh:
        fh.write(text)
    return n


def _cell(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)

