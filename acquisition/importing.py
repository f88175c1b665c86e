"""``import``: a recorded latency table of many devices into the store, one platform per device.

A table with one row per (configuration, device) — a lookup table, a benchmark's published latencies, an
earlier project's measurements — names each row's device in one column (``device_col``) and the block's
parameters in others (by default, the names of the family's parameters). Every device becomes a platform of kind
``recorded`` (fingerprint ``{"kind": "recorded", "name": DEVICE, "table": FILE}``, its hash the id: importing the
same table again names the same platforms and adds only rows not stored yet), every row a measurement of the
family with protocol ``recorded`` (``stop = recorded``; the latency is ``min_ms``, the statistic campaigns fit).
Such platforms are ordinary transfer sources: ``run --transfer auto`` and ``ask --transfer auto`` learn from them.

Nothing is charged as profiling: the rows cost this project no device time (ledger activity ``import``, with
the table's cost column when it has one, else 0 s). The whole import is one transaction: a bad table (a missing
column, a configuration outside the family's space, a latency that is not a positive number, one configuration
recorded twice for a device with different latencies) is an error naming its line and column, and stores
nothing.

Example:
    >>> import csv, os, tempfile
    >>> from acquisition.store import Store
    >>> from profiler.families import get_family
    >>> d = tempfile.mkdtemp(); path = os.path.join(d, "t.csv")
    >>> fam = get_family("resv1"); cfgs = fam.space.sample(3, seed=0)
    >>> with open(path, "w", newline="") as fh:
    ...     w = csv.DictWriter(fh, [*cfgs[0], "device", "latency_ms"]); _ = w.writeheader()
    ...     _ = w.writerows({**c, "device": d, "latency_ms": 1.5} for c in cfgs for d in ("board-a", "board-b"))
    >>> with Store(os.path.join(d, "s.sqlite")) as store:
    ...     [(r.device, r.added) for r in import_table(store, path, fam, device_col="device")]
    [('board-a', 3), ('board-b', 3)]
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["RECORDED_PROTOCOL", "Imported", "TableImportError", "import_table", "recorded_platform"]

RECORDED_PROTOCOL = "recorded"
UNITS = {"ms": 1.0, "s": 1e3, "us": 1e-3, "ns": 1e-6}


class TableImportError(ValueError):
    """A table that cannot be imported (names the line and column)."""


@dataclass
class Imported:
    """One device of an imported table: its platform id, rows added now and rows already stored."""

    device: str
    platform: str
    added: int
    kept: int


def recorded_platform(device: str, table: str) -> tuple[str, dict[str, Any]]:
    """``(platform id, fingerprint)`` of device ``device`` of the table file ``table`` (its base name counts)."""
    from profiler.devices import platform_id

    fp = {"kind": "recorded", "name": str(device), "table": os.path.basename(table)}
    return platform_id(fp), fp


def _latency(text: Any) -> float | None:
    try:
        v = float(str(text).strip())
    except ValueError:
        return None
    return v if math.isfinite(v) and v > 0 else None


def import_table(store: Any, csv_path: str | os.PathLike[str], family: Any, *, device_col: str,
                 params: Sequence[str] | None = None, latency_col: str = "latency_ms", unit: str = "ms",
                 cost_col: str | None = None, where: dict[str, Sequence[str]] | None = None) -> list[Imported]:
    """Import the table at ``csv_path`` into ``store`` as measurements of ``family``, one platform per value of
    ``device_col`` (module docstring). ``params``: the parameter columns (default: the family's parameters);
    ``where``: keep only rows whose column holds one of the values. Returns one :class:`Imported` per device."""
    from acquisition.ask_tell import LatencyOnly
    from profiler.worker import Measurement

    path = os.fspath(csv_path)
    if unit not in UNITS:
        raise TableImportError(f"unit={unit!r} is not allowed: expected one of {', '.join(UNITS)}")
    if not os.path.isfile(path):
        raise TableImportError(f"table {path!r} does not exist or is not a file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = list(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise TableImportError(f"table {path!r} cannot be read as CSV: {e}") from None
    params = list(params) if params else list(family.space.names)
    for col in (*params, device_col, latency_col, *([cost_col] if cost_col else []), *(where or {})):
        if col not in columns:
            raise TableImportError(f"column {col!r} is not in the table {os.path.basename(path)}: columns are "
                               f"{', '.join(columns)}")
    parsed: dict[tuple[str, str], tuple[int, dict[str, Any], float, float]] = {}
    for line, r in enumerate(rows, start=2):  # line 1 is the header
        if where and not all(str(r[c]).strip() in [str(v) for v in vs] for c, vs in where.items()):
            continue
        device = str(r[device_col]).strip()
        if not device:
            raise TableImportError(f"line {line}: column {device_col!r} is empty: every row must name its device")
        lat = _latency(r[latency_col])
        if lat is None:
            raise TableImportError(f"line {line}: column {latency_col!r} holds {r[latency_col]!r}: expected a positive "
                               "number")
        cost = 0.0
        if cost_col:
            c = _latency(r[cost_col]) if str(r[cost_col]).strip() not in ("0", "0.0") else 0.0
            if c is None:
                raise TableImportError(f"line {line}: column {cost_col!r} holds {r[cost_col]!r}: expected seconds >= 0")
            cost = c
        try:
            cfg = family.validate(family.space.coerce({p: r[p] for p in params}))
        except ValueError as e:
            raise TableImportError(f"line {line}: {e} (columns {', '.join(params)} must be a {family.name!r} "
                               "configuration)") from None
        key = family.key(cfg)
        old = parsed.get((device, key))
        ms = lat * UNITS[unit]
        if old is not None and not math.isclose(old[2], ms, rel_tol=1e-9):
            raise TableImportError(f"lines {old[0]} and {line} hold the same configuration on device {device!r} with "
                               f"different latencies ({old[2]:.6g} and {ms:.6g} ms) in column {latency_col!r}")
        parsed.setdefault((device, key), (line, cfg, ms, cost))
    if not parsed:
        raise TableImportError(f"no row of {os.path.basename(path)} is left to import"
                           + (" after the filters" if where else ""))
    out: dict[str, Imported] = {}
    with store.transaction():
        for (device, key), (_, cfg, ms, cost) in parsed.items():
            pid, fp = recorded_platform(device, path)
            if device not in out:
                store.ensure_platform(pid, fp, f"recorded:{device}")
                out[device] = Imported(device, pid, 0, 0)
            if store.find(pid, family.name, RECORDED_PROTOCOL, [key]):
                out[device].kept += 1
                continue
            m = Measurement(family=family.name, key=key, config=cfg, protocol=RECORDED_PROTOCOL, platform=pid,
                            status="ok", cost_s=cost, timing=LatencyOnly(min_ms=ms, stop="recorded"))
            store.record(m, activity="import")
            out[device].added += 1
    return sorted(out.values(), key=lambda i: i.device)
