"""Replay: a recorded table of configurations and latencies as a family and a device (docs/design.md §7).

A :class:`ReplayTable` holds one latency (and optionally one profiling cost) per configuration; a
:class:`ReplayOracle` answers the engine's measurements from it, so a replay campaign is an ordinary campaign
(same engine, store, ledger and reports) whose candidate pool is the table's unmeasured rows.

Tables come from a CSV file (:meth:`ReplayTable.from_csv`: the user names the parameter columns, whose types
are inferred and can be overridden, the latency column and its unit, an optional cost column and optional row
filters) or from the measurements of a store (:meth:`ReplayTable.from_store`: a live family's stored
measurements, with the cost each one really took; the family keeps its analytic features).

**Bad tables.** A missing column, a filter that matches nothing, a latency that is not a positive finite
number, or one configuration recorded with different latencies is an error naming the row and the value.
``bad_rows="drop"`` skips the bad latencies instead (their count is logged); ``duplicates="median"`` /
``"min"`` / ``"first"`` merges repeated configurations (identical repeats are always merged).

**Cost without a cost column** (:class:`ProtocolCost`): a replayed measurement is charged what the
measurement protocol would have cost for a block of that latency ``t``:

- ``adaptive`` (our default protocol): ``overhead_s + max(warmup_s, warmup_min·t) +
  min(max(min_seconds, min_repeats·t), max_seconds)``, i.e. worker overhead and build, warm-up, then timed
  repeats until at least ``min_repeats`` calls and ``min_seconds`` of work, capped by ``max_seconds``. On
  3,000 CPU measurements of this project the real cost is 1.13x the model at the median (10-90 %: 0.91-2.0x;
  the tail is blocks re-measured as unstable, so a replayed total is about 1.5x below the live one);
- ``fixed`` (the paper's protocol): ``overhead_s + (warmup + repeats)·t``.

Example:
    >>> rows = [{"hw": str(h), "c": str(c), "ms": str(0.01 * h * c)} for h in (7, 14, 28) for c in (16, 32)]
    >>> table = ReplayTable.from_rows("demo", rows, params=["hw", "c"], latency_col="ms")
    >>> oracle = ReplayOracle(table)
    >>> m = oracle.measure(table.family, {"hw": 14, "c": 32})
    >>> round(m.timing.min_ms, 3), m.cost_s > 0
    (4.48, True)
    >>> len(oracle.sample(4, seed=0)), len(oracle.sample(9, seed=0))
    (4, 6)
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from profiler.protocol import Timing
from profiler.space import SpaceError
from profiler.tabular import TabularFamily, parse_number
from profiler.worker import Measurement

__all__ = ["LedgerCost", "ProtocolCost", "ReplayError", "ReplayOracle", "ReplayTable", "column_values", "parse_where"]

log = logging.getLogger("latency_acquisition.studies")

UNITS = {"ms": 1.0, "s": 1e3, "us": 1e-3, "ns": 1e-6}
DUPLICATE_POLICIES = ("error", "median", "min", "first")
REPLAY_VERSION = 1


class ReplayError(ValueError):
    """A table that cannot be replayed: missing columns, bad latencies, conflicting duplicates, bad filters."""


@dataclass(frozen=True)
class ProtocolCost:
    """The documented cost (seconds) of measuring a block of latency ``t`` under a protocol (module docstring)."""

    protocol: str = "adaptive"
    overhead_s: float = 0.05
    warmup_s: float = 0.02
    warmup_min: int = 2
    min_seconds: float = 0.15
    min_repeats: int = 20
    max_seconds: float = 2.0
    repeats: int = 10_000
    warmup: int = 10

    def __post_init__(self) -> None:
        if self.protocol not in ("adaptive", "fixed"):
            raise ReplayError(f"cost protocol={self.protocol!r} is not allowed: expected 'adaptive' or 'fixed'")
        for name in ("overhead_s", "warmup_s", "min_seconds", "max_seconds"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ReplayError(f"{name}={v!r} is not allowed: expected a number >= 0")

    def __call__(self, latency_ms: np.ndarray | float) -> np.ndarray:
        t = np.asarray(latency_ms, dtype=float) / 1e3
        if self.protocol == "fixed":
            return self.overhead_s + (self.warmup + self.repeats) * t
        timed = np.minimum(np.maximum(self.min_seconds, self.min_repeats * t), self.max_seconds)
        return self.overhead_s + np.maximum(self.warmup_s, self.warmup_min * t) + timed

    def spec(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LedgerCost:
    """What this machine's profiler really charged, as a function of latency: fitted on a store's ledger.

    Every ledger row of a profiling activity that belongs to an ok measurement gives one (latency, seconds
    charged) pair — warm-up, timed repeats, placements, worker start and re-measurements of unstable blocks all
    included. An isotonic regression of log-seconds on log-latency (cost never falls as latency grows) gives
    knots; a latency between knots is interpolated, one outside the measured range gets the nearest knot's cost
    (the protocol's floor below, its cap above). Use it instead of the documented :class:`ProtocolCost` to
    replay a table at the cost this machine's profiler would have paid.

    Examples:
        >>> c = LedgerCost((0.0, 2.0), (-1.0, 0.0), {"rows": 2})
        >>> [round(float(v), 3) for v in c([0.5, 1.0, np.exp(1.0), 100.0])]
        [0.368, 0.368, 0.607, 1.0]
    """

    log_latency: tuple[float, ...]
    log_cost: tuple[float, ...]
    source: dict[str, Any] = field(default_factory=dict)
    protocol: str = "ledger"

    MIN_ROWS = 30

    @classmethod
    def from_store(cls, db: str | os.PathLike[str], *, platform: str | None = None,
                   protocol: str | None = None) -> LedgerCost:
        """Fit on the ledger of ``db`` (one platform and protocol; name them when the store holds several)."""
        from sklearn.isotonic import IsotonicRegression

        from acquisition.store import Store, StoreError

        path = os.fspath(db)
        try:
            with Store(path, readonly=True) as store:
                rows = store.charged_profiles()
        except StoreError as e:
            raise ReplayError(f"cost database: {e}") from None
        rows = [r for r in rows if platform in (None, r[2]) and protocol in (None, r[3])]
        pairs = {(r[2], r[3]) for r in rows}
        if len(pairs) > 1:
            raise ReplayError(f"{path!r} holds measurements of {len(pairs)} platform/protocol pairs "
                              f"({', '.join(sorted(f'{p}/{q}' for p, q in pairs))}): name one")
        if len(rows) < cls.MIN_ROWS:
            raise ReplayError(f"{path!r} has {len(rows)} charged ok measurements to fit a cost model on; at least "
                              f"{cls.MIN_ROWS} are needed")
        x = np.log([r[0] for r in rows])
        y = np.log([r[1] for r in rows])
        iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(x, y)
        plat, prot = pairs.pop()
        return cls(tuple(float(v) for v in iso.X_thresholds_), tuple(float(v) for v in iso.y_thresholds_),
                   {"store": os.path.basename(path), "platform": plat, "protocol": prot, "rows": len(rows)})

    def __call__(self, latency_ms: np.ndarray | float) -> np.ndarray:
        t = np.log(np.maximum(np.asarray(latency_ms, dtype=float), 1e-12))
        return np.exp(np.interp(t, self.log_latency, self.log_cost))

    def spec(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "source": self.source, "knots": len(self.log_latency),
                "log_latency": list(self.log_latency), "log_cost": list(self.log_cost)}


def parse_where(items: Iterable[str] | Mapping[str, str] | None) -> dict[str, list[str]]:
    """``["device=a", "act=relu", "device=b"]`` -> ``{"device": ["a", "b"], "act": ["relu"]}`` (a row is kept when
    every named column holds one of its values)."""
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return {str(k): [str(v)] if isinstance(v, str | int | float) else [str(x) for x in v]
                for k, v in items.items()}
    out: dict[str, list[str]] = {}
    for item in items:
        col, sep, val = str(item).partition("=")
        if not sep or not col.strip():
            raise ReplayError(f"filter {item!r} is not allowed: expected COLUMN=VALUE")
        out.setdefault(col.strip(), []).append(val.strip())
    return out


def column_values(path: str | os.PathLike[str], column: str, where: Mapping[str, Sequence[str]] | None = None
                  ) -> list[str]:
    """The distinct values of ``column`` in the CSV table at ``path`` (among the rows ``where`` keeps), sorted."""
    path = os.fspath(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            cols = reader.fieldnames or []
            for c in (column, *(where or {})):
                if c not in cols:
                    raise ReplayError(f"column {c!r} is not in the table: columns are {', '.join(cols)}")
            return sorted({str(r[column]).strip() for r in reader
                           if all(str(r[c]).strip() in vs for c, vs in (where or {}).items())})
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ReplayError(f"table {path!r} cannot be read as CSV: {e}") from None


def _check_policies(unit: str, cost_unit: str, duplicates: str, bad_rows: str) -> None:
    if unit not in UNITS:
        raise ReplayError(f"unit={unit!r} is not allowed: expected one of {', '.join(UNITS)}")
    if cost_unit not in UNITS:
        raise ReplayError(f"cost_unit={cost_unit!r} is not allowed: expected one of {', '.join(UNITS)}")
    if duplicates not in DUPLICATE_POLICIES:
        raise ReplayError(f"duplicates={duplicates!r} is not allowed: expected one of {', '.join(DUPLICATE_POLICIES)}")
    if bad_rows not in ("error", "drop"):
        raise ReplayError(f"bad_rows={bad_rows!r} is not allowed: expected 'error' or 'drop'")


def _kept_rows(rows: Sequence[Mapping[str, Any]], params: list[str], latency_col: str, cost_col: str | None,
               where_d: dict[str, Any]) -> list[tuple[int, Mapping[str, Any]]]:
    """(line in the file, row) of the rows the filters keep, after checking that every named column exists."""
    if not params:
        raise ReplayError("params must name at least one parameter column")
    if not rows:
        raise ReplayError("the table has no rows")
    columns = list(rows[0])
    for col in (*params, latency_col, *([cost_col] if cost_col else []), *where_d):
        if col not in columns:
            raise ReplayError(f"column {col!r} is not in the table: columns are {', '.join(columns)}")
    if latency_col in params or (cost_col and cost_col in params):
        raise ReplayError(f"column {latency_col if latency_col in params else cost_col!r} cannot be both a "
                          "parameter and the latency or cost")
    kept = [(i + 2, r) for i, r in enumerate(rows)  # line numbers as in the file (header = line 1)
            if all(str(r[c]).strip() in vals for c, vals in where_d.items())]
    if not kept:
        detail = "; ".join(f"values of {c!r} are {_listed(sorted({str(r[c]).strip() for r in rows}))}"
                           for c in where_d)
        raise ReplayError(f"the filter {' and '.join(f'{c}={v}' for c, vs in where_d.items() for v in vs)} "
                          f"matches no rows ({detail})")
    return kept


Row = tuple[int, Mapping[str, Any], float, float | None]  # (line in the file, row, latency ms, cost s)


def _usable_rows(name: str, kept: list[tuple[int, Mapping[str, Any]]], latency_col: str, cost_col: str | None,
                 bad_rows: str, unit: float, cost_unit: float) -> tuple[list[Row], int]:
    """(line, row, latency ms, cost s or None) of the rows with a usable latency (and cost), and how many were
    dropped (``bad_rows="drop"``; else the first bad one is an error naming its line)."""
    good: list[Row] = []
    dropped = 0
    for line, r in kept:
        lat, why = _positive_number(r[latency_col])
        cost, cwhy = (None, None) if not cost_col else _positive_number(r[cost_col], allow_zero=True)
        if why or cwhy:
            if bad_rows == "drop":
                dropped += 1
                continue
            col, val, w = (latency_col, r[latency_col], why) if why else (cost_col, r[cost_col], cwhy)
            raise ReplayError(f"line {line}: {col}={val!r} {w} (pass bad_rows='drop' / --drop-bad-rows to skip "
                              "such rows)")
        good.append((line, r, lat * unit,  # type: ignore[operator]
                     None if cost is None else cost * cost_unit / 1e3))
    if dropped:
        log.warning("replay table %s: dropped %d row(s) with a missing, non-numeric or non-positive latency/cost",
                    name, dropped)
    if not good:
        raise ReplayError("no row of the table has a usable latency")
    return good, dropped


def _merge_duplicates(family: Any, good: list[Row], params: list[str], duplicates: str
                      ) -> tuple[list[dict[str, Any]], list[str], list[float], list[float | None]]:
    """One (configuration, key, latency, cost) per configuration: rows of the same configuration merged by the
    ``duplicates`` policy (``error``: different latencies are an error naming both lines)."""
    by_key: dict[str, list[tuple[int, dict[str, Any], float, float | None]]] = {}
    for line, r, lat, cost in good:
        try:
            cfg = family.validate({p: r[p] for p in params})
        except SpaceError as e:
            raise ReplayError(f"line {line}: {e} (the row is outside family {family.name!r}'s space)") from None
        by_key.setdefault(family.key(cfg), []).append((line, cfg, lat, cost))
    configs, keys, lats, costs = [], [], [], []
    for key, group in by_key.items():
        vals = np.array([g[2] for g in group])
        conflict = len(group) > 1 and not np.allclose(vals, vals[0], rtol=1e-9, atol=0)
        if conflict and duplicates == "error":
            a, b = group[0], next(g for g in group if not math.isclose(g[2], group[0][2], rel_tol=1e-9))
            raise ReplayError(
                f"lines {a[0]} and {b[0]} hold the same configuration {_short(a[1])} with different "
                f"latencies ({a[2]:.6g} and {b[2]:.6g} ms): filter the table (e.g. by device) or pass "
                "duplicates='median'|'min'|'first' (--duplicates)")
        configs.append(group[0][1])
        keys.append(key)
        lats.append({"median": float(np.median(vals)), "min": float(vals.min())}.get(duplicates, float(vals[0])))
        cs = [g[3] for g in group if g[3] is not None]
        costs.append(float(np.median(cs)) if cs else None)
    return configs, keys, lats, costs


@dataclass
class ReplayTable:
    """One latency (ms) and optionally one cost (s) per distinct configuration of ``family``."""

    family: Any
    configs: list[dict[str, Any]]
    keys: list[str]
    latency_ms: np.ndarray
    cost_s: np.ndarray | None = None
    source: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.configs)

    @property
    def table_id(self) -> str:
        """A short hash of what the table holds (configurations, latencies, costs) and where it came from."""
        h = hashlib.sha256()
        h.update(json.dumps({k: v for k, v in self.source.items() if k != "path"}, sort_keys=True,
                            default=str).encode())
        h.update("\n".join(self.keys).encode())
        h.update(np.round(self.latency_ms, 9).tobytes())
        if self.cost_s is not None:
            h.update(np.round(self.cost_s, 9).tobytes())
        return h.hexdigest()[:12]

    # -- construction ----------------------------------------------------------------------------------------
    @classmethod
    def from_csv(cls, path: str | os.PathLike[str], *, params: Sequence[str], latency_col: str,
                 unit: str = "ms", cost_col: str | None = None, cost_unit: str = "s",
                 where: Iterable[str] | Mapping[str, str] | None = None, categorical: Sequence[str] = (),
                 numeric: Sequence[str] = (), name: str | None = None, duplicates: str = "error",
                 bad_rows: str = "error", family: TabularFamily | None = None) -> ReplayTable:
        """Read a CSV table (header row; see the module docstring for the checks and policies)."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ReplayError(f"table {path!r} does not exist or is not a file")
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise ReplayError(f"table {path!r} cannot be read as CSV: {e}") from None
        if not rows:
            raise ReplayError(f"table {path!r} has no data rows")
        stem = os.path.splitext(os.path.basename(path))[0]
        where_d = parse_where(where)
        fam_name = name or (stem + "".join(f"-{'+'.join(v)}" for v in where_d.values()))
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        return cls.from_rows(fam_name, rows, params=params, latency_col=latency_col, unit=unit, cost_col=cost_col,
                             cost_unit=cost_unit, where=where_d, categorical=categorical, numeric=numeric,
                             duplicates=duplicates, bad_rows=bad_rows, family=family,
                             source={"path": os.path.abspath(path), "file": os.path.basename(path),
                                     "sha256": digest})

    @classmethod
    def from_rows(cls, name: str, rows: Sequence[Mapping[str, Any]], *, params: Sequence[str], latency_col: str,
                  unit: str = "ms", cost_col: str | None = None, cost_unit: str = "s",
                  where: Iterable[str] | Mapping[str, str] | None = None, categorical: Sequence[str] = (),
                  numeric: Sequence[str] = (), duplicates: str = "error", bad_rows: str = "error",
                  source: dict[str, Any] | None = None, family: TabularFamily | None = None) -> ReplayTable:
        """Build a table (and its :class:`~profiler.tabular.TabularFamily`) from dict rows of text or numbers.

        ``family``: use this family instead of inferring one (tables of one block family on several devices share
        it, so that one platform's rows can be another's transfer source); every row must lie in its space."""
        _check_policies(unit, cost_unit, duplicates, bad_rows)
        params = [p.strip() for p in params if p.strip()] if not isinstance(params, str) else \
            [p.strip() for p in params.split(",") if p.strip()]
        where_d = parse_where(where)
        kept = _kept_rows(rows, params, latency_col, cost_col, where_d)
        good, dropped = _usable_rows(name, kept, latency_col, cost_col, bad_rows, UNITS[unit], UNITS[cost_unit])
        try:
            if family is None:
                family = TabularFamily.from_rows(name, [g[1] for g in good], params=params, categorical=categorical,
                                                 numeric=numeric)
        except SpaceError as e:
            raise ReplayError(str(e)) from None
        configs, keys, lats, costs = _merge_duplicates(family, good, params, duplicates)
        src = dict(source or {})
        src.update({"params": list(params), "latency_col": latency_col, "unit": unit, "cost_col": cost_col,
                    "where": where_d, "duplicates": duplicates, "rows": len(good), "dropped": dropped,
                    "categorical": list(categorical), "numeric": list(numeric)})
        cost_arr = np.asarray(costs, dtype=float) if cost_col else None
        return cls(family, configs, keys, np.asarray(lats, dtype=float), cost_arr, src)

    @classmethod
    def from_store(cls, db: str | os.PathLike[str], family: str | Any, *, platform: str | None = None,
                   protocol: str | None = None) -> ReplayTable:
        """The ok measurements of ``family`` stored in ``db`` (min latency, real cost), for one platform."""
        from acquisition.store import Store
        from profiler.families import get_family

        fam = get_family(family) if isinstance(family, str) else family
        with Store(db, readonly=True) as store:
            rows = [r for r in store.measurements(family=fam.name, status="ok")
                    if platform in (None, r["platform"]) and protocol in (None, r["protocol"])]
        if not rows:
            raise ReplayError(f"{os.fspath(db)!r} holds no ok measurement of family {fam.name!r}"
                              + (f" on platform {platform}" if platform else ""))
        plats = {(r["platform"], r["protocol"]) for r in rows}
        if len(plats) > 1:
            raise ReplayError(f"{os.fspath(db)!r} holds {fam.name!r} measurements of {len(plats)} platform/protocol "
                              f"pairs ({', '.join(sorted(f'{p}/{q}' for p, q in plats))}): name one with platform=")
        cfgs = [json.loads(r["config"]) if isinstance(r["config"], str) else r["config"] for r in rows]
        plat, prot = plats.pop()
        return cls(fam, [fam.validate(c) for c in cfgs], [r["key"] for r in rows],
                   np.asarray([r["min_ms"] for r in rows], dtype=float), np.asarray([r["cost_s"] for r in rows]),
                   {"store": os.path.basename(os.fspath(db)), "platform": plat, "protocol": prot,
                    "family": fam.name})


def _positive_number(v: Any, allow_zero: bool = False) -> tuple[float | None, str | None]:
    x = parse_number(v)
    if x is None:
        return None, "is not a finite number"
    if x < 0 or (x == 0 and not allow_zero):
        return None, "is not positive" if not allow_zero else "is negative"
    return float(x), None


def _short(cfg: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in cfg.items())


@dataclass
class _ReplayDevice:
    spec: str


@dataclass
class _ReplayProtocol:
    id: str


class ReplayOracle:
    """A device that answers from a :class:`ReplayTable` (the ``Profiler`` interface the engine uses, plus
    :meth:`sample`, which draws candidates from the table's rows).

    A measured configuration costs its ``cost_s`` from the table, or ``cost(latency)`` when the table has none
    (:class:`ProtocolCost`, the documented default, or :class:`LedgerCost`, fitted on this machine's ledger).
    A configuration that is not in the table is a failed measurement.
    """

    instant = True  # answers at once: its cost_s is a modelled device time (the pipelined driver's virtual clock)

    def __init__(self, table: ReplayTable, cost: ProtocolCost | LedgerCost | None = None) -> None:
        self.table = table
        self.cost = cost or ProtocolCost()
        self._index = {k: i for i, k in enumerate(table.keys)}
        cost_src = {"column": table.source.get("cost_col") or "stored"} if table.cost_s is not None else \
            self.cost.spec()
        self.fingerprint = {"kind": "replay", "version": REPLAY_VERSION, "table": table.table_id,
                            "family": table.family.name, "source": table.source}
        from profiler.devices import platform_id

        self.platform_id = "replay-" + platform_id({"kind": "replay", "table": table.table_id})[:12]
        self.device = _ReplayDevice(f"replay:{table.family.name}")
        self.protocol = _ReplayProtocol("replay-" + hashlib.sha256(json.dumps(cost_src, sort_keys=True)
                                                                  .encode()).hexdigest()[:8])
        self._costs = table.cost_s if table.cost_s is not None else self.cost(table.latency_ms)
        self.calls = 0

    def measure(self, family: Any, config: Mapping[str, Any]) -> Measurement:
        self.calls += 1
        cfg = family.validate(config)
        key = family.key(cfg)
        i = self._index.get(key)
        if i is None:
            return Measurement(family=family.name, key=key, config=cfg, protocol=self.protocol.id,
                               platform=self.platform_id, status="failed", cost_s=0.0,
                               reason="configuration not in the replay table")
        ms = float(self.table.latency_ms[i])
        cost = float(self._costs[i])
        t = Timing(min_ms=ms, median_ms=ms, p10_ms=ms, p90_ms=ms, mean_ms=ms, n=1, timed_s=ms / 1e3, warmup_n=0,
                   warmup_s=0.0, stop="replay", spread=1.0)
        return Measurement(family=family.name, key=key, config=cfg, protocol=self.protocol.id,
                           platform=self.platform_id, status="ok", cost_s=cost, timing=t, build_s=0.0)

    def sample(self, n: int, method: str = "random", seed: int | None = 0, *, exclude: set[str] | None = None,
               family: str = "") -> list[dict[str, Any]]:
        """Up to ``n`` distinct table rows not in ``exclude`` (keys): a random subset, or for ``"sobol"`` the
        rows nearest to scrambled Sobol points of the family's space (a space-filling initial design)."""
        exclude = exclude or set()
        free = np.asarray([i for i, k in enumerate(self.table.keys) if k not in exclude], dtype=int)
        rng = np.random.default_rng(seed)
        n = min(int(n), len(free))
        if n <= 0:
            return []
        if method == "sobol" and n < len(free):
            return [self.table.configs[i] for i in self._nearest_to_sobol(free, n, seed)]
        return [self.table.configs[i] for i in rng.permutation(free)[:n]]

    def _nearest_to_sobol(self, free: np.ndarray, n: int, seed: int | None) -> list[int]:
        from scipy.spatial import cKDTree

        from surrogates import FeatureEncoder

        enc = FeatureEncoder(self.table.family, analytic=False)
        X = enc.transform([self.table.configs[i] for i in free], validated=True)
        pts = enc.transform(self.table.family.space.sample(n, method="sobol", seed=seed, unique=False),
                            validated=True)
        lo, span = X.min(axis=0), np.ptp(X, axis=0)
        span[span == 0] = 1.0
        tree = cKDTree((X - lo) / span)
        taken: set[int] = set()
        out = []
        for p in (pts - lo) / span:
            k = min(len(free), len(taken) + 1)
            _, idx = tree.query(p, k=k)
            j = next(int(j) for j in np.atleast_1d(idx) if int(j) not in taken)
            taken.add(j)
            out.append(int(free[j]))
        return out

    def close(self) -> None:
        pass

    def __enter__(self) -> ReplayOracle:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"<replay oracle {self.platform_id}: {self.table.family.name}, {len(self.table)} rows>"


def _listed(values: list[str], limit: int = 10) -> str:
    """``values`` joined by commas; beyond ``limit``, the first ones and how many more there are."""
    if len(values) <= limit:
        return ", ".join(values)
    return f"{', '.join(values[:limit])} and {len(values) - limit} more ({len(values)} in all)"
