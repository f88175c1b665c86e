"""The acquisition loop: fit -> verify -> stop? -> query -> profile (DESIGN §5).

:func:`run_campaign` drives one campaign to its end (target met, budget spent) and exports its predictor.
Every state change is one transaction in the store (a measurement, its ledger row and its campaign membership
together; an iteration row; the campaign's state), and everything the loop decides is derived from the seed
and the stored state, so a run killed at any moment resumes where it stopped without losing or duplicating a
measurement or charging anything twice.

**Verification** (``spec.verification``):

- ``cv`` (the default): no device second is spent on verification. The model is a
  :class:`~surrogates.models.committee.CommitteeRegressor` (the chosen model plus its K fold models); ρ, MAPE
  and ±10 % are computed on the out-of-fold predictions of the training rows that were drawn at **random** from
  the candidates (the random share of every batch), i.e. an unbiased sample of what the predictor will be
  asked about. The fold models saw (K-1)/K of the rows, so the estimate is slightly pessimistic: the stop rule
  errs on the safe side. The exported model is fitted on everything measured.
- ``holdout``: the naive way, kept as the baseline of studies: a random validation set of ``validation_size``
  configurations (its own seed stream) is profiled first and the model is judged on it; the exported model is
  then refitted on training + validation rows, so those device seconds are not thrown away.

**Stop rule.** The target counts as met only when the verified ρ (and ±10 % accuracy / MAPE, if targeted) meets
it on ``confirm`` (default 2) consecutive iterations, each fitted on more data, with at least
``MIN_VERIFY_ROWS`` verification rows: one lucky fit, or a model that crosses the line and falls back, does not
stop the campaign. Each iteration also stores the bootstrap 95 % interval of ρ. With ``stop_on_target=False``
(studies) the campaign goes on to its budget and ends as ``met`` if the rule fired on the way.

**The batch.** ``random_share`` of every batch is drawn uniformly from the candidates (``drawn = random``); the
strategy picks the rest from the remaining candidates (``drawn = strategy``). The random share keeps the
training set dense where the predictor is judged (strategies alone over-sample the sparse corners) and is what
``cv`` verification scores. The ``random`` strategy draws the whole batch at random.

**Candidates** come from the oracle when it has a pool of its own (a replay table's unmeasured rows, see
:mod:`studies.replay`), else fresh random configurations of the family's space; a campaign with no candidate
left ends as ``exhausted``.

**Cost.** Budgets in hours and every hours figure are the campaign's bill (:mod:`acquisition.bill`): the device
seconds of every measurement it used, verification included. **Engine overhead** is the seconds spent fitting,
verifying, querying (encoding the pool, the cost model and the strategy) and exporting, each charged to the
ledger with its activity. A study may pass ``judge``: a function of the fitted model and the keys the campaign
has seen that returns metrics on never-seen rows (stored as ``test_*``, charged to nothing, used by nothing).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition.bill import campaign_bill
from acquisition.campaign import CampaignSpec
from acquisition.fidelity import Fidelity
from acquisition.store import fault_point

__all__ = ["MIN_VERIFY_ROWS", "CampaignResult", "IterationRecord", "make_model", "run_campaign"]

log = logging.getLogger("latency_acquisition")


@dataclass
class IterationRecord:
    iteration: int
    n_train: int
    profiling_s: float
    spearman: float
    spearman_lo: float
    spearman_hi: float
    mape: float
    acc10: float
    coverage80: float
    fit_s: float
    query_s: float
    met: bool
    verification: str = "cv"
    n_verify: int = 0
    test_spearman: float | None = None
    test_acc10: float | None = None
    test_mape: float | None = None
    fidelity: str | None = None  # of the batch this iteration asked for (cheap / full); None when it asked none
    fidelity_pairs: int = 0
    fidelity_offset: float | None = None
    fidelity_noise: float | None = None
    model: str | None = None  # the model the iteration kept (transfer:<name> when it stands on sources)
    transfer_gain: float | None = None  # out-of-fold rho of the transfer model minus the plain model's


@dataclass
class CampaignResult:
    name: str
    state: str  # met | budget | exhausted | failed | stopped
    spec: CampaignSpec
    platform: str
    iterations: list[IterationRecord] = field(default_factory=list)
    n_train: int = 0
    n_validation: int = 0
    profiling_hours: float = 0.0  # the whole bill (acquisition.bill), validation included
    validation_hours: float = 0.0  # the part of the bill spent on a holdout validation set
    engine_s: float = 0.0
    wall_s: float = 0.0
    bundle: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    fidelity: dict[str, Any] = field(default_factory=dict)  # Fidelity.summary(): rows, cost, offset, noise

    @property
    def met(self) -> bool:
        return self.state == "met"

    @property
    def overhead_share(self) -> float:
        return self.engine_s / self.wall_s if self.wall_s > 0 else float("nan")


def _targets_met(spec: CampaignSpec, m: dict[str, float]) -> bool:
    ok = m["spearman"] >= spec.target_spearman
    if spec.target_acc10 is not None:
        ok = ok and m["acc10"] >= spec.target_acc10
    if spec.target_mape is not None:
        ok = ok and m["mape"] <= spec.target_mape
    return bool(ok)


class _CostModel:
    """Estimated profiling seconds of a configuration, learned from what the ledger charged so far: gradient
    boosting on log-seconds (no uncertainty needed, so one fit), the median charge until 10 rows exist."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.model: Any = None
        self.fallback = 1.0

    def fit(self, X: np.ndarray, cost_s: np.ndarray) -> None:
        from sklearn.ensemble import HistGradientBoostingRegressor

        cost_s = np.maximum(np.asarray(cost_s, dtype=float), 1e-3)
        self.fallback = float(np.median(cost_s)) if len(cost_s) else 1.0
        self.model = None
        if len(cost_s) >= 10:
            self.model = HistGradientBoostingRegressor(
                max_iter=100, learning_rate=0.05, min_samples_leaf=max(1, min(5, len(cost_s) // 10)),
                early_stopping=False, random_state=self.seed).fit(X, np.log(cost_s))

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.model is None:
            return np.full(len(X), self.fallback)
        return np.exp(self.model.predict(X))


# the transfer model's own learner (surrogates.models.transfer: chosen on the TF-NAS table, one device from the
# other, over gbt and over a ridge prior + correction)
TRANSFER_BASE = "linear-gbt"
TRANSFER_MARGIN = 0.01  # out-of-fold rho by which the plain model must beat the transfer model to replace it
MIN_VERIFY_ROWS = 50  # fewer verification rows than this never meet the target (ρ from 30 rows is ±0.01 at 0.98)
# The engine fits with one OpenMP/BLAS thread: at campaign sizes (tens to a few thousand rows) scikit-learn's
# histogram boosting is faster on one thread than on two (0.58 s against 3.3 s for 300 trees on 300 rows on
# this 2-core machine beside other work), and the profiler's worker is another process.


def run_campaign(store: Any, spec: CampaignSpec, profiler: Any, family: Any, *,
                 progress: bool | Callable[[dict[str, Any]], None] = False, bundle_path: str | None = None,
                 max_iterations: int = 10_000, judge: Callable[[Any, set[str]], dict[str, float]] | None = None,
                 sources: Sequence[Any] | None = None) -> CampaignResult:
    """Run (or resume) ``spec`` to its end; ``profiler`` measures (live :class:`profiler.worker.Profiler` or a
    replay oracle with the same ``measure``/``platform_id`` interface). Returns the result; exports the bundle to
    ``bundle_path`` when given. ``sources``: :class:`acquisition.transfer.TransferSource` s to learn from
    (``spec.transfer`` must not be ``"none"``; see the module docstring)."""
    from threadpoolctl import threadpool_limits

    t_wall = time.perf_counter()
    platform = profiler.platform_id
    store.ensure_platform(platform, profiler.fingerprint, profiler.device.spec)
    spec = open_campaign(store, spec, platform)
    with threadpool_limits(limits=1):  # one thread: see the note under MIN_VERIFY_ROWS
        return _run(store, spec, profiler, family, progress, bundle_path, max_iterations, judge, t_wall,
                    list(sources or []))


def _run(store: Any, spec: CampaignSpec, profiler: Any, family: Any,
         progress: bool | Callable[[dict[str, Any]], None], bundle_path: str | None, max_iterations: int,
         judge: Callable[[Any, set[str]], dict[str, float]] | None, t_wall: float,
         sources: list[Any]) -> CampaignResult:
    platform = profiler.platform_id
    run = _Run(store, spec, profiler, family, progress, sources)
    run.initial_data()
    result = CampaignResult(spec.name, "stopped", spec, platform)
    reached = any(r["met_streak"] >= spec.confirm for r in store.iterations(spec.name))
    state = None
    for _ in range(max_iterations):
        data = run.data()
        if data is None:
            state = "failed"
            break
        model, fit_s = run.fit(data)
        m = run.verify(model, data)
        if judge is not None:
            m.update({f"test_{k}": v for k, v in judge(model, store.member_keys(spec.name)).items()})
        it = store.iteration_count(spec.name)
        floor = MIN_VERIFY_ROWS if spec.verification == "cv" else min(MIN_VERIFY_ROWS, spec.validation_size)
        ok_now = m["n_verify"] >= floor and _targets_met(spec, m)
        met_streak = _met_streak(store, spec, len(data.train)) + 1 if ok_now else 0
        bill_s = campaign_bill(store, spec.name).total_s
        # configurations asked for (failed ones too; a probe re-measures one, it is not another sample)
        n_asked = len({r["key"] for r in store.members(spec.name, "train")})
        budget_left = _budget_left(spec, n_asked, bill_s)
        reached = reached or met_streak >= spec.confirm
        rec = IterationRecord(it, len(data.train), bill_s, m["spearman"], m["spearman_lo"], m["spearman_hi"],
                              m["mape"], m["acc10"], m["coverage80"], fit_s, 0.0, ok_now, spec.verification,
                              int(m["n_verify"]), m.get("test_spearman"), m.get("test_acc10"), m.get("test_mape"),
                              model=run.model_name, transfer_gain=run.last_gain)
        if met_streak >= spec.confirm and spec.stop_on_target:
            state = "met"
        elif budget_left["exhausted"]:
            state = "met" if reached else "budget"
        picked: list[tuple[dict[str, Any], str]] = []
        cheap = False
        if state is None:
            cheap = run.fid.next_is_cheap(data.rows, m["mape"])
            picked = run.query(model, data, it, _batch_size(spec, n_asked), cheap=cheap)
            rec.query_s = run.last_query_s
            rec.fidelity = "cheap" if cheap else "full"
        rec.fidelity_pairs = run.fid.n_pairs
        if run.fid.mode == "auto":
            rec.fidelity_offset = float(np.expm1(run.fid.offset_a))
            rec.fidelity_noise = run.fid.noise if np.isfinite(run.fid.noise) else None
        if state is None and not picked:
            state = "met" if reached else "exhausted"
            log.warning("campaign %s: no candidate left to profile (the replay table is used up)", spec.name)
        store.add_iteration(spec.name, rec.__dict__, met_streak=met_streak)
        result.iterations.append(rec)
        run.bar.update(rec, budget_left)
        if state is not None:
            break
        run.profile_batch(picked, it, cheap)
    run.bar.close()
    result.state = state or "stopped"
    result.bundle = run.export(bundle_path, result)
    store.set_campaign_state(spec.name, result.state)
    bill = campaign_bill(store, spec.name)
    result.n_train = len({r["key"] for r in store.members(spec.name, "train", status="ok")})  # configurations
    result.n_validation = len(store.members(spec.name, "validation", status="ok"))
    result.profiling_hours = bill.hours
    result.validation_hours = bill.role_hours("validation")
    result.engine_s = run.engine_s
    result.fidelity = run.fid.summary(store.members(spec.name, "train", status="ok"))
    result.wall_s = time.perf_counter() - t_wall
    if result.iterations:
        last = result.iterations[-1]
        result.metrics = {"spearman": last.spearman, "mape": last.mape, "acc10": last.acc10}
    return result


@dataclass
class _Data:
    train: list[dict[str, Any]]  # one row per configuration, label in "y" (acquisition.fidelity.Fidelity.labels)
    X: np.ndarray
    y: np.ndarray
    val: list[dict[str, Any]]
    X_val: np.ndarray
    y_val: np.ndarray
    rows: list[dict[str, Any]] = field(default_factory=list)  # every ok train measurement (both fidelities)


class _Run:
    """The named steps of one campaign run, sharing its encoder, cost model and charges."""

    def __init__(self, store: Any, spec: CampaignSpec, profiler: Any, family: Any,
                 progress: bool | Callable[[dict[str, Any]], None], sources: Sequence[Any] = ()) -> None:
        from acquisition.strategies import get_strategy
        from surrogates import FeatureEncoder

        self.store, self.spec, self.profiler, self.family, self.progress = store, spec, profiler, family, progress
        self.encoder = FeatureEncoder(family)
        self.engine_s = 0.0
        self.last_query_s = 0.0
        self.feature_rows: dict[str, np.ndarray] = {}
        self.draw = _sampler(profiler, family)
        self.cost_model = _CostModel(spec.seed)
        self.strategy = get_strategy(spec.strategy)
        self.rng_base = _stream(spec.seed, "query")
        self.bar = _Progress(spec, progress)
        self.model: Any = None
        self.model_name = spec.model
        self.full_protocol = getattr(profiler, "protocol", None)
        self.cheap_protocol = None
        if spec.fidelity == "auto" and getattr(profiler, "supports_protocol", False):
            from acquisition.fidelity import CHEAP_PROTOCOL

            self.cheap_protocol = CHEAP_PROTOCOL
        self.fid = Fidelity(spec.fidelity, cheap_id=self.cheap_protocol.id if self.cheap_protocol else None,
                            full_id=self.full_protocol.id if self.full_protocol is not None else "")
        if sources and spec.transfer == "none":
            from acquisition.campaign import CampaignError

            raise CampaignError(f"campaign {spec.name!r} has transfer='none' but was given {len(sources)} source(s)")
        self.sources = list(sources)
        self.fitted_sources: list[Any] | None = None  # one model per source, fitted at the first fit
        self.source_models: Any = None  # SourceModels of the sources in use (judged again every iteration)
        self.last_gain: float | None = None  # out-of-fold rho of the transfer model minus the plain model's

    # -- helpers ---------------------------------------------------------------------------------------------
    def encode(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """Features of stored measurements, each row encoded once per campaign run (stored configs were
        validated before they were measured)."""
        new = [r for r in rows if r["key"] not in self.feature_rows]
        if new:
            for r, x in zip(new, self.encoder.transform([r["config"] for r in new], validated=True), strict=True):
                self.feature_rows[r["key"]] = x
        if not rows:
            return np.zeros((0, len(self.encoder.feature_names)))
        return np.stack([self.feature_rows[r["key"]] for r in rows])

    def charge(self, activity: str, seconds: float) -> None:
        self.engine_s += seconds
        self.store.charge(activity, seconds, platform=self.profiler.platform_id, family=self.family.name,
                          campaign=self.spec.name)

    def profile(self, configs: list[dict[str, Any]], role: str, *, drawn: str | list[str], show: bool = False,
                cheap: bool = False) -> None:
        from acquisition.profiling import profile_configs

        profile_configs(self.store, self.profiler, self.family, configs, campaign=self.spec.name, role=role,
                        activity="validation_profile" if role == "validation" else "profile",
                        progress=show and self.progress is True, drawn=drawn,
                        protocol=self.cheap_protocol if cheap else None)

    def profile_batch(self, picked: list[tuple[dict[str, Any], str]], it: int | str, cheap: bool,
                      show: bool = False) -> None:
        """Profile a batch for training; a cheap batch also measures a few of its rows, drawn at random, at full
        fidelity: the probes that keep the offset between fidelities measured (:mod:`acquisition.fidelity`)."""
        self.profile([c for c, _ in picked], "train", drawn=[d for _, d in picked], cheap=cheap, show=show)
        if not cheap or not picked:
            return
        rows = self.store.members(self.spec.name, "train")
        batch_keys = {self.family.key(c) for c, _ in picked}
        before = [r for r in rows if r["key"] not in batch_keys]  # a resume picks the same probes again
        n = self.fid.n_probes(before, len(picked))
        rng = np.random.default_rng(_stream(self.spec.seed, "probe", it))
        ok = {r["key"] for r in rows if r["status"] == "ok"}
        probes = [picked[i][0] for i in rng.permutation(len(picked)) if self.family.key(picked[i][0]) in ok][:n]
        if probes:
            self.profile(probes, "train", drawn="probe", show=show)

    # -- the steps -------------------------------------------------------------------------------------------
    def initial_data(self) -> None:
        """The holdout validation set (``holdout`` only; its own seed stream, so it never depends on the
        strategy), then the space-filling initial design, shared by every strategy for the same seed. Asked
        again on a resume, both only complete what a killed run left unfinished."""
        spec = self.spec
        val_keys: set[str] = set()
        if spec.verification == "holdout":
            val_cfgs = self.draw(spec.validation_size, "random", _stream(spec.seed, "validation"), set())
            self.profile(val_cfgs, "validation", drawn="validation", show=True)
            val_keys = {self.family.key(c) for c in val_cfgs}
        if spec.transfer != "none":  # the family's probe set: the same on every platform (acquisition.transfer)
            from acquisition.transfer import probe_configs

            init = probe_configs(self.draw, spec.initial_size, val_keys)
        else:
            init = self.draw(spec.initial_size, "sobol", _stream(spec.seed, "initial"), val_keys)
        init = [c for c in init if self.family.key(c) not in val_keys]
        # an auto-fidelity campaign always starts cheap (also on a resume after it switched: the stored cheap
        # rows are found again instead of measuring the design at full fidelity)
        self.profile_batch([(c, "initial") for c in init], "initial", self.fid.mode == "auto", show=True)

    def data(self) -> _Data | None:
        store, spec = self.store, self.spec
        rows = store.members(spec.name, "train", status="ok")
        train = self.fid.labels(rows)
        val = store.members(spec.name, "validation", status="ok")
        need_val = spec.verification == "holdout"
        if len(train) < 2 or (need_val and len(val) < 3):
            log.error("campaign %s: too few ok measurements to fit (%d train, %d validation)", spec.name,
                      len(train), len(val))
            return None
        return _Data(train, self.encode(train), np.asarray([r["y"] for r in train]), val, self.encode(val),
                     np.asarray([r["min_ms"] for r in val]), rows)

    def transfer_sources(self, data: _Data) -> Any:
        """The sources to use, judged on every row measured so far (at the first fit: the probe set) and
        recorded in the store; ``None`` when the campaign has none (or none agrees). Judging again as rows come
        in drops a source that agreed with the probes by chance: 20 probes leave a useless source's agreement
        a spread of about ±0.23."""
        if not self.sources:
            return None
        from acquisition.transfer import judge_sources
        from surrogates.models.transfer import SourceModels

        t0 = time.perf_counter()
        if self.fitted_sources is None:
            self.fitted_sources = [s.fit(self.encoder, self.spec.seed) for s in self.sources]
        judged = judge_sources(self.sources, self.fitted_sources, self.encoder, [r["config"] for r in data.train],
                               data.y, X=data.X)
        used = [j.name for j in judged if j.used]
        if self.source_models is None or used != self.source_models.names:
            self.source_models = SourceModels([m for m, j in zip(self.fitted_sources, judged, strict=True)
                                               if j.used], used)
            for j in judged:
                log.info("campaign %s: source %s agreement %.3f on %d rows: %s", self.spec.name, j.name,
                         j.agreement, len(data.train), "used" if j.used else f"ignored ({j.reason})")
        self.store.set_campaign_sources(self.spec.name, [{**s.as_dict(), **j.as_dict(), "judged_on": len(data.y)}
                                                         for j, s in zip(judged, self.sources, strict=True)])
        self.charge("transfer", time.perf_counter() - t0)
        return self.source_models or None

    def fit(self, data: _Data) -> tuple[Any, float]:
        """Fit the campaign's model; with ``model="auto"`` fit each of :data:`AUTO_MODELS` and keep the one
        whose out-of-fold ρ on the randomly drawn rows is highest (the first until there are enough rows).

        With transfer sources in use (those the rows measured so far agree with), a
        :class:`~surrogates.models.transfer.TransferRegressor` on :data:`TRANSFER_BASE` is fitted beside the
        plain model and kept, unless the plain model's out-of-fold ρ on enough random rows beats it by
        :data:`TRANSFER_MARGIN`; the difference is recorded every iteration (``transfer_gain``)."""
        from acquisition.campaign import AUTO_MODELS
        from surrogates.metrics import spearman

        sources = self.transfer_sources(data)
        t0 = time.perf_counter()
        names = AUTO_MODELS if self.spec.model == "auto" else (self.spec.model,)
        candidates: list[tuple[str, Any]] = [(n, make_model(self.spec, self.strategy, name=n)) for n in names]
        if sources is not None:
            candidates.append((f"transfer:{TRANSFER_BASE}",
                               make_model(self.spec, self.strategy, name=TRANSFER_BASE, sources=sources)))
        rows = np.asarray([r.get("drawn") == "random" for r in data.train])
        enough = rows.sum() >= MIN_VERIFY_ROWS
        if sources is not None and not enough:
            rows = np.ones(len(data.train), dtype=bool)  # the gain is recorded from the start, on every row
        scored = len(candidates) > 1 and rows.sum() >= (3 if sources is not None else MIN_VERIFY_ROWS)
        models, rhos = {}, {}
        for name, model in candidates:
            models[name] = model.fit(data.X, data.y)
            rhos[name] = spearman(data.y[rows], np.exp(model.oof_log_[rows])) if scored else -np.inf
        plain = max(names, key=lambda n: (rhos[n], -names.index(n)))  # the first while nothing can tell them apart
        pick, self.last_gain = plain, None
        if sources is not None:
            # the transfer model, unless the plain one beats it by TRANSFER_MARGIN on enough random rows: an
            # out-of-fold rho from a few dozen rows is too noisy to overrule the sources' agreement
            transfer = candidates[-1][0]
            self.last_gain = float(rhos[transfer] - rhos[plain]) if scored else None
            beaten = enough and self.last_gain is not None and self.last_gain < -TRANSFER_MARGIN
            pick = plain if beaten else transfer
        best, self.model_name = models[pick], pick
        fault_point("fit")
        fit_s = time.perf_counter() - t0
        self.charge("fit", fit_s)
        self.model = best
        return best, fit_s

    def verify(self, model: Any, data: _Data) -> dict[str, float]:
        """Metrics the stop rule reads: on the holdout set, or on the out-of-fold predictions of the randomly
        drawn training rows (module docstring)."""
        from surrogates import evaluate
        from surrogates.models import LogLatencyDist

        t0 = time.perf_counter()
        if self.spec.verification == "holdout":
            m = evaluate(data.y_val, model.predict_dist(data.X_val), ci=True)
        else:
            rows = np.asarray([r.get("drawn") == "random" for r in data.train])
            oof, y = model.oof_log_[rows], data.y[rows]
            if len(y) >= 3:
                full = model.predict_dist(data.X[rows])
                m = evaluate(y, LogLatencyDist(oof, full.std, {}, full.epistemic), ci=True)
            else:
                m = {k: float("nan") for k in ("spearman", "spearman_lo", "spearman_hi", "mape", "acc10",
                                               "coverage80")}
        m["n_verify"] = float(len(data.y_val) if self.spec.verification == "holdout" else rows.sum())
        self.charge("evaluate", time.perf_counter() - t0)
        return m

    def query(self, model: Any, data: _Data, it: int, k: int, cheap: bool = False
              ) -> list[tuple[dict[str, Any], str]]:
        """The next batch: ``random_share`` of it uniformly from the candidates, the rest by the strategy."""
        from acquisition.strategies import QueryContext

        t0 = time.perf_counter()
        spec = self.spec
        pool = self.draw(spec.pool_size, "random", _stream(self.rng_base, it), set(self.store.member_keys(spec.name)))
        if not pool or k <= 0:
            self.last_query_s = 0.0
            return []
        rng = np.random.default_rng(_stream(self.rng_base, it, 1))
        n_rand = k if spec.strategy == "random" else (max(1, round(spec.random_share * k)) if spec.random_share
                                                        else 0)
        n_rand = min(n_rand, len(pool))
        # the pool is a random sample of the candidates in random order: its first n_rand are a random draw
        chosen = [(c, "random") for c in pool[:n_rand]]
        rest = pool[n_rand:]
        if k - n_rand > 0 and rest:
            X_pool = self.encoder.transform(rest, validated=True)
            all_rows = self.store.members(spec.name, "train")
            proto = (self.cheap_protocol if cheap else self.full_protocol)
            same = [r for r in all_rows if proto is not None and r["protocol"] == proto.id]
            all_rows = same if len(same) >= 10 else all_rows  # costs at the fidelity the batch will be measured at

            def pool_cost(rows: list[dict[str, Any]] = all_rows, X: np.ndarray = X_pool) -> np.ndarray:
                self.cost_model.fit(self.encode(rows), np.asarray([r["cost_s"] for r in rows]))
                return self.cost_model.predict(X)

            ctx = QueryContext(candidates=rest, X=X_pool, cost_s=pool_cost,  # fitted only if the strategy asks
                               rng=rng, model=model, X_train=data.X, y_train=data.y)
            chosen += [(rest[i], "strategy") for i in self.strategy(ctx, k - n_rand)]
        self.last_query_s = time.perf_counter() - t0
        self.charge("query", self.last_query_s)
        return chosen

    def export(self, bundle_path: str | None, result: CampaignResult) -> str | None:
        """Export the predictor fitted on everything measured (a holdout campaign refits on training +
        validation rows first)."""
        from surrogates import export_bundle

        if self.model is None or bundle_path is None:
            return None
        spec, store = self.spec, self.store
        t0 = time.perf_counter()
        rows = self.fid.labels(store.members(spec.name, "train", status="ok"))
        model = self.model
        if spec.verification == "holdout":
            val = store.members(spec.name, "validation", status="ok")
            rows = rows + [dict(r, y=r["min_ms"]) for r in val]
            name = self.model_name.removeprefix("transfer:")
            srcs = self.source_models if self.model_name.startswith("transfer:") else None
            model = make_model(spec, self.strategy, name=name, sources=srcs).fit(
                self.encode(rows), np.asarray([r["y"] for r in rows]))
        last = result.iterations[-1] if result.iterations else None
        metrics = ({"spearman": last.spearman, "spearman_lo": last.spearman_lo, "mape": last.mape,
                    "acc10": last.acc10, "coverage80": last.coverage80, "verification": spec.verification,
                    "n_verify": last.n_verify} if last else {})

        platform = self.profiler.platform_id
        export_bundle(bundle_path, model, self.encoder, model_name=self.model_name,
                      platform={"id": platform, "fingerprint": self.profiler.fingerprint,
                                "protocol": self.profiler.protocol.id},
                      n_train=len(rows), metrics=metrics,
                      extra={"campaign": spec.name, "strategy": spec.strategy, "model_setting": spec.model,
                             "fidelity": self.fid.summary(store.members(spec.name, "train", status="ok")),
                             "transfer": {"sources": [s["name"] for s in store.campaign_sources(spec.name)
                                                      if s["used"]],
                                          "model_uses_them": self.model_name.startswith("transfer:")}})
        self.charge("export", time.perf_counter() - t0)
        store.add_predictor(spec.name, bundle_path, metrics)
        return bundle_path


def make_model(spec: CampaignSpec, strategy: Any = None, name: str | None = None, sources: Any = None) -> Any:
    """The campaign's model (``name``, default ``spec.model``) seeded, wrapped in a K-fold committee when the
    verification or the strategy needs one (``cv`` verification; a strategy that reads the epistemic std).
    With ``sources`` (:class:`~surrogates.models.transfer.SourceModels`), that model on top of them."""
    from surrogates import get_model
    from surrogates.models import CommitteeRegressor

    if sources is not None:
        from surrogates.models.transfer import TransferRegressor

        model = TransferRegressor(sources=sources, base=name or spec.model)
    else:
        model = get_model(name or spec.model)
    if "random_state" in model.get_params():
        model.set_params(random_state=spec.seed)
    needs = spec.verification == "cv" or (getattr(strategy, "needs_epistemic", False) and not model.has_epistemic)
    if needs:
        model = CommitteeRegressor(model, n_folds=spec.folds, random_state=spec.seed)
    return model


def _batch_size(spec: CampaignSpec, n_asked: int) -> int:
    k = spec.batch_size
    if spec.budget_samples is not None:
        k = min(k, spec.budget_samples - n_asked)
    return k


MUTABLE_FIELDS = ("budget_hours", "budget_samples")


def open_campaign(store: Any, spec: CampaignSpec, platform: str) -> CampaignSpec:
    """Create the campaign, or check that ``spec`` matches the stored one and mark it running again.

    Only the budgets may change on a resume (to extend a campaign); any other difference is an error, since
    it would silently mix two experiments in one campaign.
    """
    from acquisition.campaign import CampaignError

    spec.validate()
    row = store.get_campaign(spec.name)
    if row is None:
        store.create_campaign(spec.name, spec.family, platform, spec.as_dict())
        return spec
    stored = CampaignSpec.from_dict(row["spec"])
    if row["platform"] != platform:
        raise CampaignError(f"campaign {spec.name!r} runs on platform {row['platform']}, not on this device's "
                            f"platform {platform}: use another campaign name")
    diff = [f for f in spec.conflicts(stored, set(spec.as_dict())) if f.split("=")[0] not in MUTABLE_FIELDS]
    if diff:
        raise CampaignError(f"campaign {spec.name!r} exists with other settings: {diff[0]}; only the budgets may "
                            "change when a campaign is resumed")
    store.update_campaign_spec(spec.name, spec.as_dict())
    store.set_campaign_state(spec.name, "running")
    return spec


def _sampler(profiler: Any, family: Any) -> Callable[[int, str, int, set[str]], list[dict[str, Any]]]:
    """How candidates are drawn: from the oracle when it has its own pool (a replay table's rows), else from
    the family's space (fresh configurations)."""
    own = getattr(profiler, "sample", None)
    if callable(own):
        return lambda n, method, seed, exclude: own(n, method, seed, exclude=exclude, family=family.name)
    return lambda n, method, seed, exclude: family.space.sample(n, method=method, seed=seed, family=family.name,
                                                               exclude=exclude)


def _stream(seed: int, *parts: Any) -> int:
    """A deterministic sub-seed for one purpose (validation, initial design, query at iteration i, ...)."""
    import hashlib

    h = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return int.from_bytes(h[:4], "little")


def _met_streak(store: Any, spec: CampaignSpec, n_train: int) -> int:
    """The streak before an iteration on ``n_train`` rows: iterations on as many rows (a resumed run that fits
    the same data again) do not count twice."""
    rows = [r for r in store.iterations(spec.name) if r["n_train"] < n_train]
    return int(rows[-1]["met_streak"]) if rows else 0


def _budget_left(spec: CampaignSpec, n_train: int, profiling_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {"exhausted": False}
    if spec.budget_samples is not None:
        out["samples"] = spec.budget_samples - n_train
        out["exhausted"] |= n_train >= spec.budget_samples
    if spec.budget_hours is not None:
        out["hours"] = spec.budget_hours - profiling_s / 3600
        out["exhausted"] |= profiling_s / 3600 >= spec.budget_hours
    return out


class _Progress:
    """One line per iteration (tqdm when interactive): iteration, samples, hours, ρ vs target, budget left."""

    def __init__(self, spec: CampaignSpec, progress: bool | Callable[[dict[str, Any]], None]) -> None:
        self.spec = spec
        self.callback = progress if callable(progress) else None
        self.bar = None
        if progress is True:
            from tqdm import tqdm

            total = spec.budget_samples
            self.bar = tqdm(total=total, unit="sample", desc=f"campaign {spec.name}", dynamic_ncols=True)

    def update(self, rec: IterationRecord, budget: dict[str, Any]) -> None:
        info = {"iteration": rec.iteration, "samples": rec.n_train, "hours": rec.profiling_s / 3600,
                "rho": rec.spearman, "target": self.spec.target_spearman, **{f"left_{k}": v for k, v in budget.items()
                                                                            if k != "exhausted"}}
        if self.callback:
            self.callback(info)
        if self.bar is not None:
            self.bar.n = rec.n_train
            left = ", ".join(f"{k[5:]} left {v:.3g}" for k, v in info.items() if k.startswith("left_"))
            self.bar.set_postfix_str(f"it {rec.iteration}  {rec.profiling_s / 3600:.3f} h  rho {rec.spearman:.4f}/"
                                     f"{self.spec.target_spearman}" + (f"  {left}" if left else ""))
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
