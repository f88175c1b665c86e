"""Budgeted studies: arms x seeds on one oracle, budget and target (docs/design.md §7).

A :class:`Study` runs one ordinary campaign per **arm** and seed on the same source (a replayed table or a
live device) with the same budget, target and batch sizes. An arm is

- ``default``: ``run``'s whole default configuration (strategy, random share, model, verification, stop rule,
  fidelity) — what a user gets without choosing anything (a replayed table has one fidelity: there ``auto`` is
  full); ``random_share``, ``verification`` and ``stop_rule`` override it, for studies that choose those;
- ``default:MODEL``: the default configuration with the model ``MODEL`` (a registered model or ``auto``), for
  studies that choose the default model;
- ``random``: the naive baseline — random sampling, every block at full fidelity and a held-out random
  validation set of ``validation_size`` configurations, judged on it (as one would do by hand); the ratio
  against it is what a user saves;
- any other strategy name: that strategy (with ``random_share`` of every batch drawn at random) under the
  baseline's verification (a holdout set) and fidelity (full), so that its ratio against ``random`` is the
  strategy's share of the saving alone (``default``'s own strategy under this name gives the *strategy-only*
  ratio).

For a given seed every arm shares the initial design (and the holdout arms the validation set), so arms are
compared seed by seed. Campaigns keep acquiring after their stop rule fires (``run_to_budget``), so every
learning curve covers the whole budget.

**Judged on never-seen rows.** At every iteration the fitted model is also scored on rows the campaign never
saw (replay: every table row it has not measured; live: a fixed random test set of ``test_size``
configurations profiled once per seed, outside every bill) — charged to nothing, seen by nothing the campaign
decides. A campaign's **stop** is the first iteration where its own stop rule fired (what it believed); the
stop is **verified** when the never-seen ρ (and ±10 %, if targeted) at that iteration meets the target.
*Samples/hours to target* are those of a verified stop; a run whose first stop was not verified (a *false
stop*: the user would have walked away with a worse predictor) or that never stopped is censored (infinite):
medians and intervals treat it as larger than any finite value. Beside it the summary gives the never-seen ρ
at the stop, the number of false stops, and the *oracle* hours (where the never-seen ρ first met the target on
``confirm`` consecutive iterations: what a perfect stop rule would have paid).

**Hours** are the campaign's bill (:mod:`acquisition.bill`): every device second of its measurements,
verification included.

**Storage.** Seeds run in parallel with joblib (replay sources; a live device runs one campaign at a time).
Each seed's campaigns live in their own database under ``<db>.campaigns/`` written only by the process that
runs that seed; the study database ``db`` is written only by the coordinator (this process), one transaction
per finished seed: the study, its runs and their tidy per-iteration records. Running a study again resumes
it: finished seeds are read back, unfinished ones resume their campaigns where they stopped.

Examples:
    >>> import csv, os, tempfile
    >>> from studies.sources import ReplaySource
    >>> d = tempfile.mkdtemp(); path = os.path.join(d, "blocks.csv")
    >>> with open(path, "w", newline="") as fh:
    ...     w = csv.writer(fh); _ = w.writerow(["hw", "c", "ms"])
    ...     w.writerows([hw, c, 1e-3 * hw * hw * c] for hw in range(7, 57, 7) for c in range(8, 129, 8))
    >>> study = Study("demo", ReplaySource(csv=path, params=["hw", "c"], latency_col="ms"),
    ...               arms=["default", "random"], seeds=[0], target_spearman=0.9, budget_samples=40, batch_size=10,
    ...               initial_size=10, validation_size=30, db=os.path.join(d, "study.sqlite"))
    >>> result = study.run(n_jobs=1, progress=False)
    >>> s = result.summary()["arms"]
    >>> s["default"]["runs"], result.records[-1]["n_train"], sorted(s["default"]["hours_ratio"])[:3]
    (1, 40, ['bound', 'hi', 'interval'])
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from acquisition.campaign import spec_defaults
from studies._stats import median_ci
from studies.sources import LiveSource, ReplaySource, source_from_dict

__all__ = ["Study", "StudyError", "StudyResult", "load_study"]

log = logging.getLogger("latency_acquisition.studies")
STUDY_SCHEMA = 4  # 2: arms, the one bill (hours), never-seen metrics; 3: + records.fired (pluggable stop rules);
# 4: + records.pending / inflight (pipelined acquisition), runs.device_wall_s / device_idle_s (the run's clock)
RECORD_FIELDS = ("arm", "seed", "iteration", "n_train", "hours", "spearman", "spearman_lo", "mape", "acc10",
                 "coverage80", "n_verify", "met", "met_streak", "test_spearman", "test_acc10", "test_mape", "fit_s",
                 "query_s", "fired", "pending", "inflight")
RUN_FIELDS = {"study": str, "arm": str, "seed": int, "state": str, "wall_s": float, "engine_s": float,
              "validation_hours": float, "n_train": int, "hours": float, "device_wall_s": float,
              "device_idle_s": float}
BASELINE = "random"
DEFAULT_ARM = "default"
TRANSFER_SUFFIX = "+transfer"
MODEL_SEP = ":"  # default:MODEL, the default configuration with another model
PIPELINE_SEP = "@"  # ARM@sequential / ARM@pipelined: the arm with pipelining off / on (acquisition.loop.pipeline)
PIPELINE_ARMS = {"sequential": "off", "pipelined": "on"}


def _is_default(arm: str) -> bool:
    return arm == DEFAULT_ARM or arm.startswith(DEFAULT_ARM + MODEL_SEP)


def campaign_stem(arm: str) -> str:
    """The campaign name of ``arm`` without its seed: campaign names allow no '+', ':' or '@'."""
    return arm.replace("+", ".").replace(MODEL_SEP, "_").replace(PIPELINE_SEP, "_")


class StudyError(ValueError):
    """Bad study arguments, or a study database that holds another study under the same name."""


_SPEC_DEFAULTS = spec_defaults()

@dataclass
class Study:
    """Strategies x seeds on one source; see the module docstring."""

    name: str
    source: ReplaySource | LiveSource
    arms: Sequence[str] = ("default", "random")
    seeds: Sequence[int] | int = 10
    target_spearman: float = 0.99
    target_acc10: float | None = None
    budget_samples: int | None = 1500
    budget_hours: float | None = None
    model: str = "gbt"
    batch_size: int = 50
    initial_size: int = 50
    validation_size: int = 500
    # the engine's own defaults (one source: acquisition.campaign); the sizes and targets above are the studies'
    # (the TF-NAS benchmarks': batches of 50, a 500-row holdout for the naive way, rho 0.99)
    pool_size: int = _SPEC_DEFAULTS["pool_size"]
    confirm: int = _SPEC_DEFAULTS["confirm"]
    random_share: float | None = None  # of the default and strategy arms; None: the engine's default
    verification: str | None = None  # of the default arm; None: the engine's default
    stop_rule: str | None = None  # of the default arm; None: the engine's default
    run_to_budget: bool = True
    test_size: int = 300  # live sources: the never-seen test set per seed
    db: str = "study.sqlite"
    acc10_at: int = 500  # ±10 % accuracy is also reported at this many training samples
    transfer_where: Sequence[str] = ()  # replay: rows of the same table matching these filters are a source
    transfer_db: str | None = None  # a store whose other platforms' measurements of the family are sources
    transfer_shuffle: bool = False  # shuffle the sources' latencies: an unrelated source (the no-harm check)
    transfer_by: str | None = None  # replay: each other value of this column of the table is a source of its own
    # modules imported first in every process that runs seeds (`--plugin`): parallel seeds run in fresh processes,
    # which know only the installed plug-ins, not the ones a module registered in this one
    plugins: Sequence[str] = ()
    # the arms of a seed share one campaign database: a configuration one arm measured is free to the others
    # (the shared initial design is measured once). False: one database per arm and seed, so that each arm pays
    # for (and, pipelined, waits for) every measurement itself (benchmarks/pipeline_study.py)
    shared_store: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.seeds, int):
            self.seeds = list(range(self.seeds))
        self.seeds = [int(s) for s in self.seeds]
        self.arms = list(self.arms)
        self.transfer_where = list(self.transfer_where)
        self.plugins = list(self.plugins)
        if self.transfer_db:
            self.transfer_db = os.path.abspath(self.transfer_db)

    @property
    def transfers(self) -> bool:
        """Whether the study has transfer sources: then every arm ``A`` runs twice, as ``A`` and ``A+transfer``."""
        return bool(self.transfer_where or self.transfer_db or self.transfer_by)

    @property
    def all_arms(self) -> list[str]:
        """The arms that run: each of :attr:`arms`, followed by its ``+transfer`` twin when :attr:`transfers`."""
        if not self.transfers:
            return list(self.arms)
        return [a for arm in self.arms for a in (arm, arm + TRANSFER_SUFFIX)]

    # -- validation --------------------------------------------------------------------------------------------
    def campaign_spec(self, arm: str, seed: int, family: str) -> Any:
        """The campaign of ``arm`` (see the module docstring) for ``seed``; ``A+transfer`` is ``A``'s campaign
        with transfer on (the family's probe set first, the study's sources offered)."""
        from acquisition.campaign import CampaignSpec

        transfer = "auto" if arm.endswith(TRANSFER_SUFFIX) else "none"
        name = f"{campaign_stem(arm)}-s{seed}"
        arm = arm.removesuffix(TRANSFER_SUFFIX)
        arm, sep, mode = arm.partition(PIPELINE_SEP)
        if sep and mode not in PIPELINE_ARMS:
            raise StudyError(f"arm {arm}{sep}{mode!r}: after '{sep}' expected {' or '.join(PIPELINE_ARMS)}")
        common = dict(name=name, family=family, transfer=transfer, target_spearman=self.target_spearman,
                      target_acc10=self.target_acc10, budget_samples=self.budget_samples,
                      budget_hours=self.budget_hours, batch_size=self.batch_size, initial_size=self.initial_size,
                      validation_size=self.validation_size, pool_size=self.pool_size, seed=seed,
                      confirm=self.confirm, stop_on_target=not self.run_to_budget,
                      # the naive baseline and the strategy arms step by step, as by hand; the default arm as run does
                      pipeline=PIPELINE_ARMS[mode] if sep else "auto" if _is_default(arm) else "off")
        share = {} if self.random_share is None else {"random_share": self.random_share}
        if _is_default(arm):
            own = {k: getattr(self, k) for k in ("verification", "stop_rule") if getattr(self, k) is not None}
            if arm != DEFAULT_ARM:
                own["model"] = arm[len(DEFAULT_ARM) + 1:]
            return CampaignSpec(**share, **own, **common)
        return CampaignSpec(strategy=arm, model=self.model, verification="holdout", fidelity="full",
                            stop_rule="streak", **share, **common)

    def validate(self) -> Study:
        from acquisition.campaign import CampaignError
        from acquisition.strategies import StrategyError

        if not self.arms:
            raise StudyError("arms must name at least one arm (default, random or a strategy)")
        if len(set(self.arms)) != len(self.arms):
            raise StudyError(f"arms={','.join(self.arms)} names an arm twice")
        if not isinstance(self.test_size, int) or self.test_size < 10:
            raise StudyError(f"test_size={self.test_size!r} is not allowed: expected an integer >= 10")
        if not self.seeds:
            raise StudyError("seeds must hold at least one seed")
        if any(s < 0 for s in self.seeds) or len(set(self.seeds)) != len(self.seeds):
            raise StudyError(f"seeds={self.seeds} must be distinct integers >= 0")
        if not isinstance(self.acc10_at, int) or self.acc10_at <= 0:
            raise StudyError(f"acc10_at={self.acc10_at!r} is not allowed: expected an integer > 0")
        if any(a.endswith(TRANSFER_SUFFIX) for a in self.arms):
            raise StudyError(f"arms={','.join(self.arms)}: '{TRANSFER_SUFFIX}' twins are added by the study when it "
                             "has transfer sources (transfer_where / transfer_db), not named as arms")
        if self.transfer_where and getattr(self.source, "csv", None) is None:
            raise StudyError("transfer_where needs a replayed CSV table as the source (--csv)")
        if self.transfer_by:
            self._check_transfer_by()
        if self.transfer_db and not os.path.isfile(self.transfer_db):
            raise StudyError(f"transfer_db {self.transfer_db!r} does not exist")
        if self.transfer_db:
            from acquisition.store import Store, StoreError

            try:
                Store(self.transfer_db, readonly=True).close()
            except StoreError as e:
                raise StudyError(f"transfer_db: {e}") from None
        if self.transfer_where:  # parse the source rows now: a filter matching nothing fails before any campaign
            from studies.replay import ReplayError, ReplayTable

            src = self.source
            try:
                ReplayTable.from_csv(src.csv, params=src.params, latency_col=src.latency_col, unit=src.unit,
                                     where=self.transfer_where, categorical=src.categorical, numeric=src.numeric,
                                     duplicates=src.duplicates, bad_rows=src.bad_rows)
            except ReplayError as e:
                raise StudyError(f"transfer_where {','.join(self.transfer_where)}: {e}") from None
        for arm in self.arms:
            try:
                self.campaign_spec(arm, self.seeds[0], "x").validate()
            except (CampaignError, StrategyError) as e:
                raise StudyError(str(e)) from None
        return self

    def _check_transfer_by(self) -> None:
        """``transfer_by``: a column of the replayed CSV that the source's filter names (the target device), with
        at least one other value among the rows the other filters keep."""
        from studies.replay import ReplayError, column_values, parse_where

        src, col = self.source, self.transfer_by
        if getattr(src, "csv", None) is None:
            raise StudyError("transfer_by needs a replayed CSV table as the source (--csv)")
        where = parse_where(src.where)
        if col not in where:
            raise StudyError(f"transfer_by {col!r}: the source must be one value of it (e.g. --where {col}=VALUE)")
        try:
            others = transfer_by_values(src.csv, col, src.where)
        except ReplayError as e:
            raise StudyError(f"transfer_by {col!r}: {e}") from None
        if not others:
            values = column_values(src.csv, col)
            raise StudyError(f"transfer_by {col!r}: the table has no other value of it to learn from (values: "
                             f"{', '.join(values)})")

    def settings(self) -> dict[str, Any]:
        d = asdict(self)
        d["source"] = self.source.as_dict()
        d.pop("db")
        return d

    # -- running -------------------------------------------------------------------------------------------------
    def run(self, n_jobs: int = -1, progress: bool = True) -> StudyResult:
        """Run (or resume) every strategy x seed; returns the :class:`StudyResult`."""
        from joblib import Parallel, delayed
        from tqdm import tqdm

        self.validate()
        t0 = time.perf_counter()
        store = _StudyStore(self.db)
        try:
            store.open_study(self.name, self.settings())
            done = store.finished_seeds(self.name)
            todo = [s for s in self.seeds if s not in done]
            cdir = self.db + ".campaigns"
            os.makedirs(cdir, exist_ok=True)
            jobs = 1 if not self.source.parallel_safe else _n_jobs(n_jobs, len(todo))
            settings = self.settings()
            bar = tqdm(total=len(self.seeds) * len(self.all_arms), initial=len(done) * len(self.all_arms),
                       unit="campaign", desc=f"study {self.name}", disable=not progress)
            if jobs == 1:
                results = (_run_seed(settings, seed, cdir, threads=None) for seed in todo)
            else:
                results = Parallel(n_jobs=jobs, return_as="generator_unordered")(
                    delayed(_run_seed)(settings, seed, cdir, threads=1) for seed in todo)
            for seed, runs, records in results:
                store.add_seed(self.name, seed, runs, records)
                bar.update(len(runs))
            bar.close()
        finally:
            store.close()
        res = load_study(self.db, self.name)
        res.wall_s = time.perf_counter() - t0
        return res


def _n_jobs(n_jobs: int, n_tasks: int) -> int:
    if n_tasks <= 1:
        return 1
    cpus = os.cpu_count() or 1
    want = cpus if n_jobs is None or n_jobs < 1 else n_jobs
    return max(1, min(want, n_tasks))


def _run_seed(settings: dict[str, Any], seed: int, cdir: str, threads: int | None
              ) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    """Run every arm of one seed in its own campaign database (this process is its only writer)."""
    from contextlib import ExitStack, nullcontext

    from threadpoolctl import threadpool_limits

    from acquisition.bill import campaign_bill
    from acquisition.engine import run_campaign
    from acquisition.store import Store

    s = dict(settings)
    for module in s.get("plugins") or ():  # a plug-in model, strategy or family registers itself on import
        importlib.import_module(module)
    source = source_from_dict(s.pop("source"))
    study = Study(source=source, db="", **{k: v for k, v in s.items() if k in Study.__dataclass_fields__})
    limit = threadpool_limits(limits=threads) if threads else nullcontext()
    runs, records = [], []
    with limit, ExitStack() as stack:
        oracle, family = source.open()
        close = getattr(oracle, "close", None)
        if callable(close):
            stack.callback(close)
        sources = study_sources(study, oracle, family) if study.transfers else []
        stores: dict[str, tuple[Store, Any]] = {}  # file -> (store, its judge)
        for arm in study.all_arms:
            path = f"seed-{seed}.sqlite" if study.shared_store else f"seed-{seed}.{campaign_stem(arm)}.sqlite"
            if path not in stores:
                store = stack.enter_context(Store(os.path.join(cdir, path)))
                stores[path] = (store, _judge(store, oracle, family, study, seed))
            store, judge = stores[path]
            spec = study.campaign_spec(arm, seed, family.name)
            t0 = time.perf_counter()
            res = run_campaign(store, spec, oracle, family, judge=judge,
                               sources=sources if spec.transfer == "auto" else None)
            recs = _records(store, spec.name, arm, seed)
            records.extend(recs)
            bill = campaign_bill(store, spec.name)
            runs.append({"arm": arm, "seed": seed, "state": res.state, "wall_s": time.perf_counter() - t0,
                         "engine_s": res.engine_s, "validation_hours": bill.role_hours("validation"),
                         # what the run ended with (a pipelined stop: with what was in flight)
                         "n_train": res.n_train, "hours": bill.hours,
                         "device_wall_s": res.device.wall_s, "device_idle_s": res.device.idle_s})
    return seed, runs, records


def transfer_by_values(csv_path: str, column: str, where: Sequence[str]) -> list[str]:
    """The values of ``column`` other than the source's own (``where`` names it) among the rows the other filters
    of ``where`` keep, sorted: each is a transfer source with ``transfer_by``."""
    from studies.replay import column_values, parse_where

    w = parse_where(where)
    own = set(w.pop(column, []))
    return [v for v in column_values(csv_path, column, w) if v not in own]


def _table_source(study: Study, family: Any, where: list[str], name: str) -> Any:
    """Rows of the study's replayed CSV matching ``where`` as a source, mapped onto the target's ``family`` (rows
    outside its space are dropped); ``None`` when fewer than a source needs remain."""
    from acquisition.transfer import MIN_SOURCE_ROWS, TransferSource
    from studies.replay import ReplayTable

    src = study.source
    t = ReplayTable.from_csv(src.csv, params=src.params, latency_col=src.latency_col, unit=src.unit, where=where,
                             categorical=src.categorical, numeric=src.numeric, duplicates=src.duplicates,
                             bad_rows=src.bad_rows)
    cfgs, lats = [], []
    for c, y in zip(t.configs, t.latency_ms, strict=True):
        try:
            cfgs.append(family.validate(c))
        except ValueError:
            continue
        lats.append(y)
    if len(cfgs) < MIN_SOURCE_ROWS:
        log.warning("source %s: %d rows in the target's space, fewer than %d: not used", name, len(cfgs),
                    MIN_SOURCE_ROWS)
        return None
    return TransferSource(name, "table", cfgs, np.asarray(lats), {"where": list(where)})


def study_sources(study: Study, oracle: Any, family: Any) -> list[Any]:
    """The transfer sources of a study: the replayed table's rows matching ``transfer_where`` (configurations
    mapped onto the target table's family; rows outside its space are dropped), with ``transfer_by`` each other
    value of that column as a source of its own (the other filters kept), and the other platforms of
    ``transfer_db``; with ``transfer_shuffle`` their latencies are shuffled (an unrelated source)."""
    from acquisition.store import Store
    from acquisition.transfer import store_sources
    from studies.replay import parse_where

    out: list[Any] = []
    if study.transfer_where:
        s = _table_source(study, family, list(study.transfer_where), "table:" + ",".join(study.transfer_where))
        out += [s] if s is not None else []
    if study.transfer_by:
        col = study.transfer_by
        rest = [f"{c}={v}" for c, vs in parse_where(study.source.where).items() if c != col for v in vs]
        for value in transfer_by_values(study.source.csv, col, study.source.where):
            s = _table_source(study, family, [*rest, f"{col}={value}"], f"table:{col}={value}")
            out += [s] if s is not None else []
    if study.transfer_db:
        with Store(study.transfer_db, readonly=True) as st:
            out += store_sources(st, family, oracle.platform_id, "auto")
    if study.transfer_shuffle:
        for j, s in enumerate(out):
            s.latency_ms = np.random.default_rng(j).permutation(s.latency_ms)
            s.name += " (shuffled)"
    return out


class _Judge:
    """Scores a fitted model on the rows a campaign never saw (module docstring)."""

    def __init__(self, family: Any, configs: list[dict[str, Any]], keys: list[str], latency_ms: np.ndarray) -> None:
        from surrogates import FeatureEncoder

        self.keys = np.asarray(keys)
        self.X = FeatureEncoder(family).transform(configs, validated=True)
        self.y = np.asarray(latency_ms, dtype=float)

    def __call__(self, model: Any, seen: set[str]) -> dict[str, float]:
        from surrogates.metrics import accuracy_within, mape, spearman

        keep = ~np.isin(self.keys, list(seen))
        pred = model.predict(self.X[keep])
        t = self.y[keep]
        return {"spearman": spearman(t, pred), "acc10": accuracy_within(t, pred, 0.10), "mape": mape(t, pred)}


def _judge(store: Any, oracle: Any, family: Any, study: Study, seed: int) -> _Judge:
    """Replay: every table row. Live: a random test set of ``test_size`` configurations (its own seed stream),
    profiled once into the seed's database without any campaign, so it is outside every bill."""
    table = getattr(oracle, "table", None)
    if table is not None:
        return _Judge(family, table.configs, table.keys, table.latency_ms)
    from acquisition.loop.base import stream
    from acquisition.profiling import profile_configs

    cfgs = family.space.sample(study.test_size, method="random", seed=stream(seed, "study-test"),
                               family=family.name)
    profile_configs(store, oracle, family, cfgs, activity="test_profile", progress=False)
    rows = store.find(oracle.platform_id, family.name, oracle.protocol.id, [family.key(c) for c in cfgs])
    ok = [r for r in rows.values() if r["status"] == "ok"]
    return _Judge(family, [json.loads(r["config"]) for r in ok], [r["key"] for r in ok],
                  np.asarray([r["min_ms"] for r in ok]))


def _records(store: Any, campaign: str, arm: str, seed: int) -> list[dict[str, Any]]:
    """Tidy per-iteration rows; ``hours`` = the campaign's bill when that model was fitted."""
    out = []
    for it in store.iterations(campaign):
        out.append({"arm": arm, "seed": seed, "iteration": int(it["iteration"]), "n_train": int(it["n_train"]),
                    "hours": float(it["profiling_s"]) / 3600, "spearman": it["spearman"],
                    "spearman_lo": it["spearman_lo"], "mape": it["mape"], "acc10": it["acc10"],
                    "coverage80": it["coverage80"], "n_verify": it["n_verify"], "met": int(it["met"]),
                    "met_streak": int(it["met_streak"]), "test_spearman": it["test_spearman"],
                    "test_acc10": it["test_acc10"], "test_mape": it["test_mape"], "fit_s": it["fit_s"],
                    "query_s": it["query_s"], "fired": int(it["fired"] or 0) if it.get("stop_rule") else None,
                    "pending": int(it.get("pending") or 0), "inflight": int(it.get("inflight") or 0)})
    return out


# -- the study database ------------------------------------------------------------------------------------------
class _StudyStore:
    """The study database (sqlite-utils, WAL, versioned): studies, study_runs, study_records."""

    def __init__(self, path: str, readonly: bool = False) -> None:
        from acquisition.store import open_database

        if readonly and not os.path.isfile(path):
            raise StudyError(f"study database {path!r} does not exist")
        d = os.path.dirname(os.path.abspath(path))
        if not readonly and not os.path.isdir(d):
            raise StudyError(f"cannot create study database {path!r}: directory {d!r} does not exist")
        self.db = open_database(path, readonly=readonly)
        if readonly:
            if "studies" not in self.db.table_names():
                raise StudyError(f"{path!r} is not a study database (no studies table)")
            return
        self.db.execute("pragma journal_mode=wal")
        version = self.db.execute("pragma user_version").fetchone()[0]
        if version > STUDY_SCHEMA:
            raise StudyError(f"{path!r} has study schema {version}, newer than this code ({STUDY_SCHEMA})")
        if 0 < version < 2:
            raise StudyError(f"{path!r} has study schema {version}, from before arms, the one bill and never-seen "
                             f"metrics (schema {STUDY_SCHEMA}): run the study again into a new database")
        if 2 <= version < STUDY_SCHEMA and not readonly:
            with self.db.conn:  # 3: records gain `fired` (NULL: the stop was met_streak >= confirm); 4: see above
                for table, cols in (("study_records", ("fired", "pending", "inflight")),
                                    ("study_runs", ("device_wall_s", "device_idle_s"))):
                    have = self.db[table].columns_dict
                    for c in cols:
                        if c not in have:
                            self.db[table].add_column(c, float)
                self.db.execute(f"pragma user_version = {STUDY_SCHEMA}")
        if "studies" not in self.db.table_names():
            if self.db.table_names():
                raise StudyError(f"{path!r} is another kind of database (tables {', '.join(self.db.table_names())})")
            with self.db.conn:
                self.db["studies"].create({"name": str, "settings": str, "created_at": str}, pk="name")
                self.db["study_runs"].create(RUN_FIELDS, pk=("study", "arm", "seed"))
                self.db["study_records"].create({"study": str, **{f: str if f == "arm" else float
                                                                  for f in RECORD_FIELDS}},
                                                pk=("study", "arm", "seed", "iteration"))
                self.db["study_records"].create_index(["study", "arm"])
                self.db.execute(f"pragma user_version = {STUDY_SCHEMA}")

    def close(self) -> None:
        self.db.conn.close()

    def open_study(self, name: str, settings: dict[str, Any]) -> None:
        row = next(self.db["studies"].rows_where("name = ?", [name]), None)
        if row is None:
            with self.db.conn:
                self.db["studies"].insert({"name": name, "settings": json.dumps(settings, sort_keys=True),
                                           "created_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
            return
        old = json.loads(row["settings"])
        grow = ("seeds",)  # adding seeds extends a study; anything else would mix two experiments
        how = ("plugins",)  # where the code comes from, not what the study measures
        added = {"shared_store": True}  # settings newer than the stored study: their default is what it ran with
        diff = [k for k in settings if k not in grow + how and old.get(k, added.get(k)) != settings[k]]
        if diff:
            raise StudyError(f"study {name!r} exists in this database with other settings ({diff[0]}: "
                             f"{old.get(diff[0])!r}, now {settings[diff[0]]!r}): use another name or database")
        if set(old.get("seeds", [])) != set(settings["seeds"]):
            old["seeds"] = sorted(set(old.get("seeds", [])) | set(settings["seeds"]))
            with self.db.conn:
                self.db["studies"].update(name, {"settings": json.dumps(old, sort_keys=True)})

    def finished_seeds(self, name: str) -> set[int]:
        rows = self.db.execute("select seed, count(*) from study_runs where study = ? group by seed", [name])
        settings = json.loads(self.db["studies"].get(name)["settings"])
        return {int(s) for s, c in rows.fetchall() if c >= len(settings["arms"])}

    def add_seed(self, name: str, seed: int, runs: list[dict[str, Any]], records: list[dict[str, Any]]) -> None:
        with self.db.conn:  # one transaction per seed
            self.db["study_runs"].upsert_all([{"study": name, **r} for r in runs], pk=("study", "arm", "seed"))
            self.db["study_records"].upsert_all([{"study": name, **r} for r in records],
                                                pk=("study", "arm", "seed", "iteration"))


def load_study(db: str, name: str | None = None) -> StudyResult:
    """The stored result of study ``name`` (the only study in ``db`` when ``name`` is None)."""
    store = _StudyStore(db, readonly=True)
    try:
        names = [r["name"] for r in store.db["studies"].rows]
        if name is None:
            if len(names) != 1:
                raise StudyError(f"{db!r} holds {len(names)} studies ({', '.join(names) or 'none'}): name one")
            name = names[0]
        if name not in names:
            raise StudyError(f"study {name!r} is not in {db!r}: studies are {', '.join(names) or 'none'}")
        settings = json.loads(store.db["studies"].get(name)["settings"])
        runs = list(store.db["study_runs"].rows_where("study = ?", [name], order_by="arm, seed"))
        recs = list(store.db["study_records"].rows_where("study = ?", [name], order_by="arm, seed, iteration"))
    finally:
        store.close()
    for r in recs:
        for k in ("seed", "iteration", "n_train", "met", "met_streak"):
            r[k] = int(r[k])
        r.pop("study", None)
    return StudyResult(name, settings, runs, recs)


@dataclass
class StudyResult:
    """Tidy per-iteration ``records`` (one dict per arm x seed x iteration), ``runs`` and the settings."""

    name: str
    settings: dict[str, Any]
    runs: list[dict[str, Any]]
    records: list[dict[str, Any]]
    wall_s: float = field(default=float("nan"))

    @property
    def arms(self) -> list[str]:
        arms = list(self.settings["arms"])
        if (self.settings.get("transfer_where") or self.settings.get("transfer_db")
                or self.settings.get("transfer_by")):
            arms = [a for arm in arms for a in (arm, arm + TRANSFER_SUFFIX)]
        return arms

    def curves(self, arm: str) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for r in self.records:
            if r["arm"] == arm:
                out.setdefault(r["seed"], []).append(r)
        return {s: sorted(v, key=lambda r: r["iteration"]) for s, v in sorted(out.items())}

    def _verified(self, r: dict[str, Any]) -> bool:
        t = r.get("test_spearman")
        ok = t is not None and not math.isnan(t) and t >= self.settings["target_spearman"]
        acc = self.settings.get("target_acc10")
        if ok and acc is not None:
            ok = r.get("test_acc10") is not None and r["test_acc10"] >= acc
        return bool(ok)

    def stops(self, arm: str) -> dict[int, dict[str, Any]]:
        """Per seed: where the campaign's own rule first fired (``n``, ``hours``, believed ``spearman``,
        never-seen ``test_spearman``, ``verified``), and the ``oracle`` point; ``None`` fields when never."""
        confirm = int(self.settings.get("confirm", 2))
        ends = {(r.get("arm"), int(r.get("seed", -1))): r for r in self.runs}
        out = {}
        for seed, recs in self.curves(arm).items():
            # the iteration where the campaign's own rule fired (recorded since stop rules; before: the streak)
            hit = next((r for r in recs if (r["met_streak"] >= confirm if r.get("fired") is None else r["fired"])),
                       None)
            streak, oracle = 0, None
            for r in recs:
                streak = streak + 1 if self._verified(r) else 0
                if streak >= confirm:
                    oracle = r
                    break
            n, hours = _paid_at(hit, recs, ends.get((arm, seed)))
            out[seed] = {"n": n, "hours": hours,
                         "spearman": hit["spearman"] if hit else None,
                         "test_spearman": hit["test_spearman"] if hit else None,
                         "test_acc10": hit["test_acc10"] if hit else None,
                         "verified": bool(hit and self._verified(hit)),
                         "oracle_n": oracle["n_train"] if oracle else None,
                         "oracle_hours": oracle["hours"] if oracle else None,
                         "end_n": recs[-1]["n_train"], "end_hours": recs[-1]["hours"]}
        return out

    def to_target(self, arm: str) -> dict[int, tuple[float, float]]:
        """Per seed: (samples, hours) of a verified stop, ``(inf, inf)`` for a false stop or none."""
        inf = float("inf")
        return {s: (float(v["n"]), float(v["hours"])) if v["verified"] else (inf, inf)
                for s, v in self.stops(arm).items()}

    def at_samples(self, arm: str, n: int, metric: str) -> dict[int, float]:
        """Per seed: ``metric`` at the last iteration fitted on at most ``n`` samples; NaN if none, or if the
        campaign ended (target, budget) before it was fitted on ``n`` samples."""
        out = {}
        for seed, recs in self.curves(arm).items():
            before = [r for r in recs if r["n_train"] <= n]
            reached = bool(recs) and recs[-1]["n_train"] >= n
            v = before[-1][metric] if before and reached else None
            out[seed] = float("nan") if v is None else float(v)
        return out

    def summary(self, baseline: str = BASELINE, level: float = 0.95, acc10_at: int | None = None) -> dict[str, Any]:
        """Per arm: samples and hours to a verified target (median and interval over seeds), false stops, the
        never-seen ρ at the stop, oracle hours, the paired ratios against ``baseline`` (median over seeds of
        arm / baseline, its interval, whether it is a bound, and a Wilcoxon signed-rank test), the
        strategy-only ratio of ``default`` (when its strategy ran as an arm too), ±10 % accuracy on never-seen
        rows at ``acc10_at`` samples."""
        from acquisition.campaign import DEFAULT_STRATEGY

        arms = self.arms
        n_at = int(acc10_at if acc10_at is not None else self.settings.get("acc10_at", 500))
        base = self.stops(baseline) if baseline in arms else {}
        out: dict[str, Any] = {}
        for arm in arms:
            st = self.stops(arm)
            if not st:
                continue
            tt = self.to_target(arm)
            entry: dict[str, Any] = {
                "runs": len(st), "met": sum(v["verified"] for v in st.values()),
                "false_stops": sum(v["n"] is not None and not v["verified"] for v in st.values()),
                "no_stop": sum(v["n"] is None for v in st.values()),
                "samples_to_target": _ci([v[0] for v in tt.values()], level),
                "hours_to_target": _ci([v[1] for v in tt.values()], level),
                "test_spearman_at_stop": _ci([_nan(v["test_spearman"]) for v in st.values()], level),
                "test_acc10_at_stop": _ci([_nan(v["test_acc10"]) for v in st.values()], level),
                "spearman_believed_at_stop": _ci([_nan(v["spearman"]) for v in st.values()], level),
                "oracle_hours": _ci([_inf(v["oracle_hours"]) for v in st.values()], level)}
            against = arm.removesuffix(TRANSFER_SUFFIX) if arm.endswith(TRANSFER_SUFFIX) else baseline
            if f"{arm}{PIPELINE_SEP}sequential" in arms:  # a pipelined arm: against its sequential twin
                against = f"{arm}{PIPELINE_SEP}sequential"
            if against in arms and arm != against and (against != baseline or base):
                entry["ratio_against"] = against  # a +transfer twin: against the same arm without transfer
                for i, what in ((0, "samples"), (1, "hours")):
                    entry[f"{what}_ratio"] = paired_ratio(self, arm, against, i, level)
            entry[f"acc10_at_{n_at}"] = _ci(list(self.at_samples(arm, n_at, "test_acc10").values()), level)
            finals = [recs[-1] for recs in self.curves(arm).values()]
            entry["final"] = {m: float(np.nanmedian([_nan(f[m]) for f in finals]))
                              for m in ("n_train", "spearman", "test_spearman", "mape", "acc10", "hours")}
            out[arm] = entry
        if DEFAULT_ARM in out and DEFAULT_STRATEGY in out and "hours_ratio" in out[DEFAULT_STRATEGY]:
            out[DEFAULT_ARM]["strategy_only"] = {"arm": DEFAULT_STRATEGY,
                                                 "hours_ratio": out[DEFAULT_STRATEGY]["hours_ratio"]}
        return {"study": self.name, "target_spearman": self.settings["target_spearman"],
                "target_acc10": self.settings.get("target_acc10"),
                "budget_samples": self.settings.get("budget_samples"),
                "budget_hours": self.settings.get("budget_hours"), "baseline": baseline,
                "seeds": len({r["seed"] for r in self.runs}), "level": level, "acc10_at": n_at,
                "source": self.settings["source"], "model": self.settings["model"],
                "validation_size": self.settings.get("validation_size"), "arms": out,
                **({"transfer": {"where": self.settings.get("transfer_where"), "db": self.settings.get("transfer_db"),
                                 "by": self.settings.get("transfer_by"),
                                 "shuffled": bool(self.settings.get("transfer_shuffle")),
                                 "sources": ", ".join(self.settings.get("transfer_where") or [])
                                 or self.settings.get("transfer_db")
                                 or f"every other {self.settings.get('transfer_by')} of the table",
                                 "ratios": "each +transfer arm against the same arm without transfer"}}
                   if (self.settings.get("transfer_where") or self.settings.get("transfer_db")
                       or self.settings.get("transfer_by")) else {})}


def _paid_at(hit: dict[str, Any] | None, recs: list[dict[str, Any]], run: dict[str, Any] | None
             ) -> tuple[Any, Any]:
    """Samples and hours a stop at iteration ``hit`` paid. A pipelined stop also pays the blocks the device had
    measured or started when it was decided (``inflight``): exactly what the run ended with when it stopped there
    (``--stop-at-target``), else estimated at the campaign's mean cost per sample so far."""
    if hit is None:
        return None, None
    extra = int(hit.get("inflight") or 0)
    if not extra:
        return hit["n_train"], hit["hours"]
    if run is not None and run.get("state") == "met" and hit is recs[-1] and run.get("n_train"):
        return int(run["n_train"]), float(run["hours"])
    return hit["n_train"] + extra, hit["hours"] * (1 + extra / max(hit["n_train"], 1))


def paired_ratio(result: StudyResult, arm: str, baseline: str, which: int, level: float) -> dict[str, Any]:
    """Median over seeds of ``arm``'s / ``baseline``'s samples (``which=0``) or hours (1) to a verified target.

    A censored run (no verified stop within the budget) is known only to need more than its whole run: a
    censored baseline makes that seed's ratio an upper bound (``arm / baseline's whole run``), a censored arm a
    lower bound; both censored, the seed is unknown and left out. ``bound`` says whether the median is exact,
    an upper or a lower bound (``"mixed"`` if seeds bound it both ways). ``wilcoxon_p`` is the two-sided
    Wilcoxon signed-rank test of the paired log-ratios (censored pairs ranked beyond every finite one)."""
    from scipy.stats import wilcoxon

    a_st, b_st = result.stops(arm), result.stops(baseline)
    a_tt, b_tt = result.to_target(arm), result.to_target(baseline)
    ratios, kinds, logs = [], set(), []
    end = "end_n" if which == 0 else "end_hours"
    for s in sorted(set(a_tt) & set(b_tt)):
        a, b = a_tt[s][which], b_tt[s][which]
        if math.isinf(a) and math.isinf(b):
            continue
        if math.isinf(b):
            ratios.append(a / b_st[s][end])
            kinds.add("upper")
            logs.append(-math.inf)
        elif math.isinf(a):
            ratios.append(a_st[s][end] / b)
            kinds.add("lower")
            logs.append(math.inf)
        else:
            ratios.append(a / b)
            logs.append(math.log(a / b))
    out: dict[str, Any] = _ci(ratios, level)
    out["bound"] = None if not kinds else (kinds.pop() if len(kinds) == 1 else "mixed")
    out["pairs"] = len(ratios)
    finite = [abs(x) for x in logs if math.isfinite(x)]
    cap = (max(finite) if finite else 1.0) + 1.0
    d = [max(-cap, min(cap, x)) for x in logs]
    p = float("nan")
    if len(d) >= 2 and any(x != 0 for x in d):
        p = float(wilcoxon(d).pvalue)
    out["wilcoxon_p"] = p
    return out


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _inf(v: Any) -> float:
    return float("inf") if v is None else float(v)


def _ci(values: Sequence[float], level: float) -> dict[str, Any]:
    med, lo, hi = median_ci(values, level)
    n = sum(1 for v in values if not (isinstance(v, float) and math.isnan(v)))
    return {"median": med, "lo": lo, "hi": hi, "n": n, "interval": "range" if n < 6 else f"{round(100 * level)} %"}
