"""Budgeted studies: strategies x seeds on one oracle, budget and target (DESIGN §7).

A :class:`Study` runs one ordinary campaign per strategy and seed on the same source (a replayed table or a
live device) with the same budget, target, model and batch sizes. For a given seed every strategy shares the
validation set and the initial design (the engine derives both from the seed), so strategies are compared
seed by seed. Campaigns keep acquiring after the target is met (``run_to_budget``), so every learning curve
covers the whole budget; *samples to target* and *hours to target* are read off the curve where the engine's
stop rule would have fired (the target on ``confirm`` consecutive iterations). A run that never gets there is
censored (infinite): medians and intervals treat it as larger than any finite value.

**Storage.** Seeds run in parallel with joblib (replay sources; a live device runs one campaign at a time).
Each seed's campaigns live in their own database under ``<db>.campaigns/`` written only by the process that
runs that seed; the study database ``db`` is written only by the coordinator (this process), one transaction
per finished seed: the study, its runs and their tidy per-iteration records. Running a study again resumes
it: finished seeds are read back, unfinished ones resume their campaigns where they stopped.

**Hours** are profiling hours of the training measurements a campaign used (the cost the ledger charged for
each, wherever it was first measured); validation profiling is the same for every strategy of a seed and is
reported separately.

Example:
    >>> import csv, os, tempfile
    >>> from studies.sources import ReplaySource
    >>> d = tempfile.mkdtemp(); path = os.path.join(d, "blocks.csv")
    >>> with open(path, "w", newline="") as fh:
    ...     w = csv.writer(fh); _ = w.writerow(["hw", "c", "ms"])
    ...     w.writerows([hw, c, 1e-3 * hw * hw * c] for hw in range(7, 57, 7) for c in range(8, 129, 8))
    >>> study = Study("demo", ReplaySource(csv=path, params=["hw", "c"], latency_col="ms"), strategies=["random"],
    ...               seeds=[0], target_spearman=0.9, budget_samples=40, batch_size=10, initial_size=10,
    ...               validation_size=30, model="gbt", db=os.path.join(d, "study.sqlite"))
    >>> result = study.run(n_jobs=1, progress=False)
    >>> result.summary()["strategies"]["random"]["runs"], result.records[-1]["n_train"]
    (1, 40)
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from studies._stats import median_ci
from studies.sources import LiveSource, ReplaySource, source_from_dict

__all__ = ["Study", "StudyError", "StudyResult", "load_study"]

log = logging.getLogger("latency_acquisition.studies")
STUDY_SCHEMA = 1
RECORD_FIELDS = ("strategy", "seed", "iteration", "n_train", "train_hours", "spearman", "spearman_lo", "mape",
                 "acc10", "coverage80", "met", "met_streak", "fit_s", "query_s")


class StudyError(ValueError):
    """Bad study arguments, or a study database that holds another study under the same name."""


@dataclass
class Study:
    """Strategies x seeds on one source; see the module docstring."""

    name: str
    source: ReplaySource | LiveSource
    strategies: Sequence[str] = ("random", "uncertainty", "diverse", "representative")
    seeds: Sequence[int] | int = 10
    target_spearman: float = 0.99
    target_acc10: float | None = None
    budget_samples: int | None = 1500
    budget_hours: float | None = None
    model: str = "gbt"
    batch_size: int = 50
    initial_size: int = 50
    validation_size: int = 500
    pool_size: int = 4000
    confirm: int = 2
    run_to_budget: bool = True
    db: str = "study.sqlite"
    acc10_at: int = 500  # ±10 % accuracy is also reported at this many training samples

    def __post_init__(self) -> None:
        if isinstance(self.seeds, int):
            self.seeds = list(range(self.seeds))
        self.seeds = [int(s) for s in self.seeds]
        self.strategies = list(self.strategies)

    # -- validation --------------------------------------------------------------------------------------------
    def campaign_spec(self, strategy: str, seed: int, family: str) -> Any:
        from acquisition.campaign import CampaignSpec

        return CampaignSpec(name=f"{strategy}-s{seed}", family=family, strategy=strategy, model=self.model,
                            target_spearman=self.target_spearman, target_acc10=self.target_acc10,
                            budget_samples=self.budget_samples, budget_hours=self.budget_hours,
                            batch_size=self.batch_size, initial_size=self.initial_size,
                            validation_size=self.validation_size, pool_size=self.pool_size, seed=seed,
                            confirm=self.confirm, stop_on_target=not self.run_to_budget)

    def validate(self) -> Study:
        from acquisition.campaign import CampaignError
        from acquisition.strategies import StrategyError

        if not self.strategies:
            raise StudyError("strategies must name at least one strategy")
        if len(set(self.strategies)) != len(self.strategies):
            raise StudyError(f"strategies={','.join(self.strategies)} names a strategy twice")
        if not self.seeds:
            raise StudyError("seeds must hold at least one seed")
        if any(s < 0 for s in self.seeds) or len(set(self.seeds)) != len(self.seeds):
            raise StudyError(f"seeds={self.seeds} must be distinct integers >= 0")
        if not isinstance(self.acc10_at, int) or self.acc10_at <= 0:
            raise StudyError(f"acc10_at={self.acc10_at!r} is not allowed: expected an integer > 0")
        for strat in self.strategies:
            try:
                self.campaign_spec(strat, self.seeds[0], "x").validate()
            except (CampaignError, StrategyError) as e:
                raise StudyError(str(e)) from None
        return self

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
            bar = tqdm(total=len(self.seeds) * len(self.strategies), initial=len(done) * len(self.strategies),
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
    """Run every strategy of one seed in its own campaign database (this process is its only writer)."""
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    from acquisition.engine import run_campaign
    from acquisition.store import Store

    s = dict(settings)
    source = source_from_dict(s.pop("source"))
    study = Study(source=source, db="", **{k: v for k, v in s.items() if k in Study.__dataclass_fields__})
    limit = threadpool_limits(limits=threads) if threads else nullcontext()
    runs, records = [], []
    with limit:
        oracle, family = source.open()
        try:
            with Store(os.path.join(cdir, f"seed-{seed}.sqlite")) as store:
                for strat in study.strategies:
                    spec = study.campaign_spec(strat, seed, family.name)
                    t0 = time.perf_counter()
                    res = run_campaign(store, spec, oracle, family)
                    recs = _records(store, spec.name, strat, seed)
                    records.extend(recs)
                    val_h = sum(r["cost_s"] for r in store.members(spec.name, "validation")) / 3600
                    runs.append({"strategy": strat, "seed": seed, "state": res.state,
                                 "wall_s": time.perf_counter() - t0,
                                 "engine_s": res.engine_s, "validation_hours": val_h,
                                 "n_train": recs[-1]["n_train"] if recs else 0,
                                 "train_hours": recs[-1]["train_hours"] if recs else 0.0})
        finally:
            close = getattr(oracle, "close", None)
            if callable(close):
                close()
    return seed, runs, records


def _records(store: Any, campaign: str, strategy: str, seed: int) -> list[dict[str, Any]]:
    """Tidy per-iteration rows; ``train_hours`` = cost of the training measurements the fit used."""
    members = store.members(campaign, "train")
    cum, ok_cost, n_ok = 0.0, [0.0], 0
    for m in members:  # cost of everything asked up to (and including) the n-th ok measurement
        cum += float(m["cost_s"] or 0.0)
        if m["status"] == "ok":
            n_ok += 1
            ok_cost.append(cum)
    out = []
    for it in store.iterations(campaign):
        n = int(it["n_train"])
        out.append({"strategy": strategy, "seed": seed, "iteration": int(it["iteration"]), "n_train": n,
                    "train_hours": ok_cost[min(n, len(ok_cost) - 1)] / 3600, "spearman": it["spearman"],
                    "spearman_lo": it["spearman_lo"], "mape": it["mape"], "acc10": it["acc10"],
                    "coverage80": it["coverage80"], "met": int(it["met"]), "met_streak": int(it["met_streak"]),
                    "fit_s": it["fit_s"], "query_s": it["query_s"]})
    return out


# -- the study database ------------------------------------------------------------------------------------------
class _StudyStore:
    """The study database (sqlite-utils, WAL, versioned): studies, study_runs, study_records."""

    def __init__(self, path: str, readonly: bool = False) -> None:
        import sqlite3

        import sqlite_utils

        if readonly and not os.path.isfile(path):
            raise StudyError(f"study database {path!r} does not exist")
        d = os.path.dirname(os.path.abspath(path))
        if not readonly and not os.path.isdir(d):
            raise StudyError(f"cannot create study database {path!r}: directory {d!r} does not exist")
        conn = sqlite3.connect(f"file:{path}?mode=ro" if readonly else path, uri=readonly)
        self.db = sqlite_utils.Database(conn)
        if readonly:
            if "studies" not in self.db.table_names():
                raise StudyError(f"{path!r} is not a study database (no studies table)")
            return
        self.db.execute("pragma journal_mode=wal")
        version = self.db.execute("pragma user_version").fetchone()[0]
        if version > STUDY_SCHEMA:
            raise StudyError(f"{path!r} has study schema {version}, newer than this code ({STUDY_SCHEMA})")
        if "studies" not in self.db.table_names():
            if self.db.table_names():
                raise StudyError(f"{path!r} is another kind of database (tables {', '.join(self.db.table_names())})")
            with self.db.conn:
                self.db["studies"].create({"name": str, "settings": str, "created_at": str}, pk="name")
                self.db["study_runs"].create({"study": str, "strategy": str, "seed": int, "state": str, "wall_s": float,
                                              "engine_s": float, "validation_hours": float, "n_train": int,
                                              "train_hours": float}, pk=("study", "strategy", "seed"))
                self.db["study_records"].create({"study": str, **{f: float for f in RECORD_FIELDS}},
                                                pk=("study", "strategy", "seed", "iteration"))
                self.db["study_records"].create_index(["study", "strategy"])
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
        diff = [k for k in settings if k not in grow and old.get(k) != settings[k]]
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
        return {int(s) for s, c in rows.fetchall() if c >= len(settings["strategies"])}

    def add_seed(self, name: str, seed: int, runs: list[dict[str, Any]], records: list[dict[str, Any]]) -> None:
        with self.db.conn:  # one transaction per seed
            self.db["study_runs"].upsert_all([{"study": name, **r} for r in runs], pk=("study", "strategy", "seed"))
            self.db["study_records"].upsert_all([{"study": name, **r} for r in records],
                                                pk=("study", "strategy", "seed", "iteration"))


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
        runs = list(store.db["study_runs"].rows_where("study = ?", [name], order_by="strategy, seed"))
        recs = list(store.db["study_records"].rows_where("study = ?", [name], order_by="strategy, seed, iteration"))
    finally:
        store.close()
    for r in recs:
        for k in ("seed", "iteration", "n_train", "met", "met_streak"):
            r[k] = int(r[k])
        r.pop("study", None)
    return StudyResult(name, settings, runs, recs)


@dataclass
class StudyResult:
    """Tidy per-iteration ``records`` (one dict per strategy x seed x iteration), ``runs`` and the settings."""

    name: str
    settings: dict[str, Any]
    runs: list[dict[str, Any]]
    records: list[dict[str, Any]]
    wall_s: float = field(default=float("nan"))

    def curves(self, strategy: str) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for r in self.records:
            if r["strategy"] == strategy:
                out.setdefault(r["seed"], []).append(r)
        return {s: sorted(v, key=lambda r: r["iteration"]) for s, v in sorted(out.items())}

    def to_target(self, strategy: str) -> dict[int, tuple[float, float]]:
        """Per seed: (samples, hours) when the stop rule would fire, ``(inf, inf)`` when it never does."""
        confirm = int(self.settings.get("confirm", 2))
        out = {}
        for seed, recs in self.curves(strategy).items():
            hit = next((r for r in recs if r["met_streak"] >= confirm), None)
            out[seed] = (float(hit["n_train"]), float(hit["train_hours"])) if hit else (float("inf"), float("inf"))
        return out

    def at_samples(self, strategy: str, n: int, metric: str) -> dict[int, float]:
        """Per seed: ``metric`` at the last iteration fitted on at most ``n`` samples; NaN if none, or if the
        campaign ended (target, budget) before it was fitted on ``n`` samples."""
        out = {}
        for seed, recs in self.curves(strategy).items():
            before = [r for r in recs if r["n_train"] <= n]
            reached = bool(recs) and recs[-1]["n_train"] >= n
            out[seed] = float(before[-1][metric]) if before and reached else float("nan")
        return out

    def summary(self, baseline: str = "random", level: float = 0.95, acc10_at: int | None = None) -> dict[str, Any]:
        """Per strategy: samples and hours to target (median and interval over seeds), the paired saving
        against ``baseline`` (median over seeds of strategy / baseline, with its interval), ±10 % accuracy at
        ``acc10_at`` samples (default: the study's setting), and the final metrics."""
        strategies = list(self.settings["strategies"])
        n_at = int(acc10_at if acc10_at is not None else self.settings.get("acc10_at", 500))
        base = self.to_target(baseline) if baseline in strategies else {}
        out: dict[str, Any] = {}
        for strat in strategies:
            tt = self.to_target(strat)
            if not tt:
                continue
            samples = [v[0] for v in tt.values()]
            hours = [v[1] for v in tt.values()]
            entry: dict[str, Any] = {"runs": len(tt), "met": int(np.isfinite(samples).sum()),
                                     "samples_to_target": _ci(samples, level), "hours_to_target": _ci(hours, level)}
            if base and strat != baseline:
                common = [s for s in tt if s in base]
                for i, what in ((0, "samples"), (1, "hours")):
                    ratios = [_ratio(tt[s][i], base[s][i]) for s in common]
                    entry[f"{what}_ratio"] = _ci(ratios, level)
            acc = list(self.at_samples(strat, n_at, "acc10").values())
            entry[f"acc10_at_{n_at}"] = _ci(acc, level)
            finals = [recs[-1] for recs in self.curves(strat).values()]
            entry["final"] = {m: float(np.median([f[m] for f in finals])) for m in ("n_train", "spearman", "mape",
                                                                                  "acc10", "train_hours")}
            out[strat] = entry
        return {"study": self.name, "target_spearman": self.settings["target_spearman"], "baseline": baseline,
                "seeds": len({r["seed"] for r in self.runs}), "level": level, "acc10_at": n_at,
                "source": self.settings["source"], "model": self.settings["model"], "strategies": out}


def _ci(values: Sequence[float], level: float) -> dict[str, float]:
    med, lo, hi = median_ci(values, level)
    return {"median": med, "lo": lo, "hi": hi}


def _ratio(a: float, b: float) -> float:
    if np.isinf(b):
        return 0.0 if np.isfinite(a) else float("nan")  # the baseline never got there: a finite run is a full saving
    return float("inf") if np.isinf(a) else a / b
