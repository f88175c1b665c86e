"""The acquisition loop: fit -> verify -> stop? -> query -> profile (docs/design.md §5).

:func:`run_campaign` drives one campaign to its end (target met, budget spent) and exports its predictor.
Every state change is one transaction in the store (a measurement, its ledger row and its campaign membership
together; an iteration row with the batch it asks for; the campaign's state), and everything the loop decides
is derived from the seed and the stored state, so a run killed at any moment resumes where it stopped without
losing or duplicating a measurement or charging anything twice.

**Ask/tell.** The loop is :class:`CampaignLoop`'s named steps. *Ask* (:meth:`CampaignLoop.next_asks`): the
configurations asked for and not measured yet (stored in ``campaign_asks``: a crash re-asks the same ones),
else the next step's: the holdout validation set and the initial design, the probes of a cheap batch, or one
iteration (fit -> verify -> stop? -> query). *Tell* (:meth:`CampaignLoop.tell`): store a measurement of an asked
configuration and charge it. :func:`run_campaign` is this loop with a profiler as the measurer;
:class:`acquisition.Campaign` is the same loop for a device the user measures with a tool of their own.

**Pipelined** (``spec.pipeline``, :mod:`acquisition.loop.pipeline`): :func:`run_campaign` drives the loop with
:func:`~acquisition.loop.pipeline.drive`; while the device measures one batch, :meth:`CampaignLoop.ask_ahead`
fits on the batches measured before it and asks for the next, the pending asks excluded and counted. The run's
device clock (wall, busy, idle) is in ``CampaignResult.device``; the idle seconds go to the ledger as
``device_idle``, outside the bill.

**Verification** (``spec.verification``, :mod:`acquisition.verification`):

- ``cv`` (the default): no device second is spent on verification. The model is a
  :class:`~surrogates.models.committee.CommitteeRegressor` (the chosen model plus its K fold models); ρ, MAPE
  and ±10 % are computed on the out-of-fold predictions of the training rows that were drawn at **random** from
  the candidates (the random share of every batch), i.e. an unbiased sample of what the predictor will be
  asked about. The fold models saw (K-1)/K of the rows, so the estimate is slightly pessimistic: the stop rule
  errs on the safe side. The exported model is fitted on everything measured.
- ``prequential``: no device second either. When an iteration queries its batch, its model predicts every
  configuration of it before it is measured (stored with the ask, in every mode); the randomly drawn rows of the
  batches measured since, scored against those predictions, are truly unseen checks of models at most a few
  batches older than the current one (those fitted on at least half its rows). Measured against never-seen rows
  it lags more than ``cv`` (older models, fewer rows; ``docs/design-notes.md``), so it is not the default.
- ``holdout``: the naive way, kept as the baseline of studies: a random validation set of ``validation_size``
  configurations (its own seed stream) is profiled first and the model is judged on it; the exported model is
  then refitted on training + validation rows, so those device seconds are not thrown away.

**Stop rule** (``spec.stop_rule``, :mod:`acquisition.stopping`, pluggable). ``bound`` (the default): every
target's one-sided 95 % confidence bound meets it (ρ's lower bound ≥ the ρ target, and so on) on ``confirm``
(2) consecutive iterations, with no fixed number of rows: a model far above its target is claimed from a few
dozen rows, one near it keeps measuring.
``streak``: the point estimates on ``confirm`` consecutive iterations with at least 50 verification rows (the
rule before bounds; the naive baseline's). Each iteration stores the bounds it read and whether the rule fired.
With ``stop_on_target=False`` (studies) the campaign goes on to its budget and ends as ``met`` if the rule fired
on the way.

**The batch.** ``random_share`` of every batch is drawn uniformly from the candidates (``drawn = random``); the
strategy picks the rest from the remaining candidates (``drawn = strategy``). The random share keeps the
training set dense where the predictor is judged (strategies alone over-sample the sparse corners) and is what
``prequential`` and ``cv`` verification score. The ``random`` strategy draws the whole batch at random.

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

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition.bill import campaign_bill
from acquisition.campaign import CampaignSpec
from acquisition.contracts import CampaignStore, Family, Measurer, MeasuringDevice
from acquisition.fidelity import Fidelity
from acquisition.loop.base import Asked, TrainingData, finite, row_noise, sampler
from acquisition.loop.design import InitialDesign
from acquisition.loop.export import export_predictor
from acquisition.loop.fitpool import FitPool, prefetch
from acquisition.loop.measure import measure_asks
from acquisition.loop.models import (  # noqa: F401 - re-exported: the engine's model choice, as before
    AUTO_GP_ROWS,
    AUTO_MIN_ROWS,
    TRANSFER_BASE,
    TRANSFER_MARGIN,
    ModelChoice,
    auto_models,
    make_model,
    transfer_base,
)
from acquisition.loop.pipeline import IDLE_ACTIVITY, DeviceTime, ask_ahead, drive, pipelined
from acquisition.loop.query import BatchQuery
from acquisition.loop.stop import StopCheck, check_stop
from acquisition.loop.verify import verify
from acquisition.stopping import MIN_VERIFY_ROWS

__all__ = ["AUTO_GP_ROWS", "END_STATES", "MIN_VERIFY_ROWS", "Asked", "CampaignLoop", "CampaignResult",
           "IterationRecord", "StopCheck", "auto_models", "check_resume", "make_model", "open_campaign", "run_campaign"]

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
    stop_rule: str | None = None
    fired: bool = False  # the stop rule fired at this iteration
    acc10_lo: float | None = None  # one-sided lower bound of ±10 % accuracy (acquisition.verification)
    mape_hi: float | None = None  # one-sided upper bound of MAPE
    cv_spearman: float | None = None  # the committee's out-of-fold rho on the random share (a diagnostic)
    pending: int = 0  # asks pending while it chose (pipelined: the batch in flight, excluded from its choice)
    inflight: int = 0  # of those, measured or started by the device when it decided (a stop here still pays them)


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
    # the noise floor the campaign ran under (acquisition.campaign.noise_floor_of) and the targets it flagged
    noise_floor: dict[str, Any] = field(default_factory=dict)
    noise_warnings: list[str] = field(default_factory=list)
    fleet_error: str | None = None  # a fleet campaign that stopped because its platform had no device left
    # this run's clock (acquisition.loop.pipeline): wall, device busy and idle seconds, pipelined or not
    device: DeviceTime = field(default_factory=DeviceTime)

    @property
    def met(self) -> bool:
        return self.state == "met"

    @property
    def overhead_share(self) -> float:
        return self.engine_s / self.wall_s if self.wall_s > 0 else float("nan")


# The engine fits with one OpenMP/BLAS thread: at campaign sizes (tens to a few thousand rows) scikit-learn's
# histogram boosting is faster on one thread than on two (0.58 s against 3.3 s for 300 trees on 300 rows on
# this 2-core machine beside other work), and the profiler's worker is another process.
END_STATES = ("met", "budget", "exhausted", "failed")  # a campaign in one of these states asks for nothing more


def run_campaign(store: CampaignStore, spec: CampaignSpec, profiler: Measurer, family: Family, *,
                 progress: bool | Callable[[dict[str, Any]], None] = False, bundle_path: str | None = None,
                 max_iterations: int = 10_000, judge: Callable[[Any, set[str]], dict[str, float]] | None = None,
                 sources: Sequence[Any] | None = None, fit_workers: int = 0) -> CampaignResult:
    """Run (or resume) ``spec`` to its end; ``profiler`` measures (live :class:`profiler.worker.Profiler` or a
    replay oracle with the same ``measure``/``platform_id`` interface). Returns the result; exports the bundle to
    ``bundle_path`` when given. ``sources``: :class:`acquisition.transfer.TransferSource` s to learn from
    (``spec.transfer`` must not be ``"none"``; see the module docstring). ``max_iterations``: at most this many
    fits in this call (the campaign then ends as ``stopped``; running it again resumes it). ``fit_workers``:
    worker processes that fit the committees' fold models from :data:`~acquisition.loop.models.MEMBER_POOL_ROWS`
    rows (the same models; :mod:`acquisition.loop.fitpool`). 0 (the default): none; on this project's 2-core
    machine they did not pay for themselves in a ``run`` (``docs/benchmarks/2026-12-07-fit-workers.md``).

    The loop is ask/tell (:class:`CampaignLoop`, the steps :class:`acquisition.Campaign` runs too): ask for the
    pending or next configurations, measure them with ``profiler``, tell each result as it arrives."""
    from threadpoolctl import threadpool_limits

    t_wall = time.perf_counter()
    platform = profiler.platform_id
    store.ensure_platform(platform, profiler.fingerprint, profiler.device.spec)
    spec = open_campaign(store, spec, platform, protocol=profiler.protocol.id)
    with threadpool_limits(limits=1), \
            (FitPool(int(fit_workers), lazy=True) if fit_workers else contextlib.nullcontext()) as members:
        # one thread each (see the note under TRANSFER_MARGIN); the fold models in the workers, when there are any
        loop = CampaignLoop(store, spec, profiler, family, progress=progress, sources=list(sources or []),
                            judge=judge, max_fits=max_iterations)
        loop.models.member_pool = members
        clock = drive(loop, profiler, pipeline=pipelined(spec, profiler, store), progress=progress is True)
        if clock.idle_s > 0:
            store.charge(IDLE_ACTIVITY, clock.idle_s, platform=platform, family=family.name, campaign=spec.name,
                         note="virtual" if clock.virtual else None)
        result = loop.result(bundle_path, t_wall)
        result.device = clock
        return result


class CampaignLoop:
    """The named steps of one campaign, sharing its encoder, cost model and charges.

    ``measurer`` describes where measurements come from: ``platform_id``, ``fingerprint``, ``device.spec``,
    ``protocol.id``; ``supports_protocol`` (it can measure with the cheap fidelity's protocol too) and ``sample``
    (a pool of its own, e.g. a replay table) when it has them. The steps:

    - :meth:`next_asks`: what to measure next. The pending asks (asked, not yet measured: stored, so a crash
      re-asks them); else the next step's, recorded as pending: the design (the holdout validation set, the
      initial design) and a cheap batch's probes (:class:`~acquisition.loop.design.InitialDesign`), else one
      iteration, :meth:`advance`: :meth:`data` -> fit (:class:`~acquisition.loop.models.ModelChoice`) -> verify
      (:func:`~acquisition.loop.verify.verify`) -> stop? (:func:`~acquisition.loop.stop.check_stop`) -> query
      (:class:`~acquisition.loop.query.BatchQuery`).
    - :meth:`tell`: store one measurement of an asked configuration and charge it (one transaction).
    - :meth:`measure`: the built-in measurer, a profiler that measures the asks and tells each result.
    - :meth:`export`: the predictor bundle, fitted on everything measured.
    """

    def __init__(self, store: CampaignStore, spec: CampaignSpec, measurer: MeasuringDevice, family: Family, *,
                 progress: bool | Callable[[dict[str, Any]], None] = False, sources: Sequence[Any] = (),
                 judge: Callable[[Any, set[str]], dict[str, float]] | None = None, max_fits: int | None = None,
                 state: str | None = None) -> None:
        from acquisition.strategies import get_strategy
        from surrogates import FeatureEncoder

        self.store, self.spec, self.profiler, self.family, self.progress = store, spec, measurer, family, progress
        self.platform = measurer.platform_id
        self.judge, self.max_fits, self.fits = judge, max_fits, 0
        self.state = state  # None while the campaign goes on; an END_STATES value (or "stopped") once it ends
        self.records: list[IterationRecord] = []  # the iterations of this session
        self.encoder = FeatureEncoder(family)
        self.engine_s = 0.0
        self.feature_rows: dict[str, np.ndarray] = {}
        self.draw = sampler(measurer, family)
        if spec.around:
            self.draw = _around(self.draw, spec, measurer, family)
        self.strategy = get_strategy(spec.strategy)
        self.bar = _Progress(spec, progress)
        self.full_protocol = getattr(measurer, "protocol", None)
        self.full_id = self.full_protocol.id if self.full_protocol is not None else ""
        self.cheap_protocol = None
        if spec.fidelity == "auto" and getattr(measurer, "supports_protocol", False):
            from acquisition.fidelity import CHEAP_PROTOCOL

            self.cheap_protocol = CHEAP_PROTOCOL
        self.fid = Fidelity(spec.fidelity, cheap_id=self.cheap_protocol.id if self.cheap_protocol else None,
                            full_id=self.full_id)
        if sources and spec.transfer == "none":
            from acquisition.campaign import CampaignError

            raise CampaignError(f"campaign {spec.name!r} has transfer='none' but was given {len(sources)} source(s)")
        # the named parts: the design, the model choice, the batch query (verify and stop are functions)
        self.design = InitialDesign(store, spec, family, self.draw, self.fid, self.full_id,
                                    self.cheap_protocol.id if self.cheap_protocol else None)
        self.models = ModelChoice(store, spec, self.strategy, self.encoder, sources, self.charge)
        self.ahead_data: TrainingData | None = None  # the rows a fit sent to a worker was made of (prefetch)
        self.queries = BatchQuery(store, spec, self.strategy, self.encoder, self.encode, self.draw,
                                  self.full_protocol, self.cheap_protocol)
        self._noise_checked = False
        self._last: tuple[Any, dict[str, float], Any] | None = None  # the last fit: model, its metrics, its rows
        # the pipelined driver's count of pending asks the device has measured or started (IterationRecord.inflight)
        self.inflight: Callable[[], int] = lambda: 0

    # the model choice's state, read by ask/tell, the fleet and the export
    @property
    def model(self) -> Any:
        return self.models.model

    @property
    def model_name(self) -> str:
        return self.models.name

    @property
    def sources(self) -> list[Any]:
        return self.models.sources

    @sources.setter
    def sources(self, value: list[Any]) -> None:  # the fleet re-reads its platforms' sources before every fit
        self.models.set_sources(value)

    @property
    def source_models(self) -> Any:
        return self.models.source_models

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
        self.store.charge(activity, seconds, platform=self.platform, family=self.family.name,
                          campaign=self.spec.name)

    def finish(self, state: str) -> None:
        """The campaign ends as ``state`` (stored at once: an ask/tell campaign has no end of run)."""
        self.state = state
        self.store.set_campaign_state(self.spec.name, state)

    def check_noise_floor(self) -> list[str]:
        """The noise floor the campaign runs under, recorded and warned about when new
        (:func:`acquisition.campaign.check_noise_floor`; the first call of a session always logs)."""
        from acquisition.campaign import check_noise_floor

        first, self._noise_checked = not self._noise_checked, True
        return check_noise_floor(self.store, self.spec, self.platform, self.family.name, self.full_id or None, first)

    # -- ask ---------------------------------------------------------------------------------------------------
    def next_asks(self) -> list[Asked]:
        """What to measure next (empty once the campaign has ended): the pending asks, else those of the next
        step (the design, a cheap batch's probes, or an iteration), recorded as pending before they are
        returned."""
        if not self._noise_checked and self.state is None:
            self.check_noise_floor()
        while self.state is None:
            pending = self.pending()
            if pending:
                return pending
            if self.design.ask_missing() or self.design.ask_probes():
                continue
            if self.max_fits is not None and self.fits >= self.max_fits:
                self.state = "stopped"
                break
            self.advance()
        return []

    def pending(self) -> list[Asked]:
        """Asked and not measured yet, in the order asked. Stored measurements of them (another campaign's, a
        ``profile`` run's, on this platform and protocol) join the campaign first, at no cost."""
        pending = [Asked.from_row(r) for r in self.store.pending_asks(self.spec.name)]
        return self.store.join_stored(self.spec.name, self.platform, self.family.name, pending)

    # -- ask ahead (pipelined acquisition) ---------------------------------------------------------------------
    def ask_ahead(self) -> list[Asked]:
        """The next asks while those already asked are measured (:func:`acquisition.loop.pipeline.ask_ahead`)."""
        return ask_ahead(self)

    # -- fits in worker processes (a fleet's campaigns) ----------------------------------------------------------
    def prefetch(self, pool: Any) -> bool:
        """Send the next :meth:`advance`'s fit to ``pool``; ``True`` once it may go on (:func:`.fitpool.prefetch`;
        a step that did not advance sets ``ahead_data`` back to ``None``: those rows are not the next fit's)."""
        return prefetch(self, pool)

    # -- one iteration -----------------------------------------------------------------------------------------
    def advance(self, pending: set[str] = frozenset(), n_pending: int = 0) -> list[Asked]:
        """One iteration: fit -> verify -> stop? -> query, recorded with the batch it asks for in one transaction;
        returns that batch (empty when the campaign ends here). ``pending``: keys asked, not measured (never asked
        again), ``n_pending`` of them samples of the budget. On the rows the last fit saw, its model is reused."""
        store, spec = self.store, self.spec
        self.check_noise_floor()  # a floor measured since the campaign started (a doctor run beside it)
        data, self.ahead_data = (self.ahead_data if self.ahead_data is not None else self.data()), None
        if data is None:
            self.finish("failed")
            return []
        self.fits += 1
        seen = (len(data.train), float(data.y.sum()))  # the rows and labels a fit saw
        if self._last is not None and self._last[0] is self.model and self._last[2] == seen:
            model, fit_s, m = self.model, 0.0, dict(self._last[1])
        else:
            model, fit_s = self.models.fit(data)
            t0 = time.perf_counter()
            m = verify(model, data, spec.verification, lambda: store.asks(spec.name))
            self.charge("evaluate", time.perf_counter() - t0)
            if self.judge is not None:
                m.update({f"test_{k}": v for k, v in self.judge(model, store.member_keys(spec.name)).items()})
            self._last = (model, dict(m), seen)
        it = store.iteration_count(spec.name)
        check = check_stop(store, spec, m, len(data.train))
        rec = _record(it, len(data.train), check, m, fit_s, spec, self.model_name, self.models.last_gain)
        state = check.state
        picked: list[tuple[dict[str, Any], str, float | None]] = []
        cheap = False
        if state is None:
            cheap = self.fid.next_is_cheap(data.rows, m["mape"])
            picked = self.queries.select(model, data, it, _batch_size(spec, check.n_asked + n_pending), cheap=cheap,
                                         pending=pending)
            rec.query_s = self.queries.last_s
            if rec.query_s:  # nothing to choose from is no query (and no ledger row)
                self.charge("query", rec.query_s)
            rec.fidelity = "cheap" if cheap else "full"
        _record_fidelity(rec, self.fid)
        if state is None and not picked and not pending:  # with asks in flight, the budget is spoken for
            state = "met" if check.reached else "exhausted"
            log.warning("campaign %s: no candidate left to profile (the replay table is used up)", spec.name)
        proto = self.cheap_protocol.id if cheap and self.cheap_protocol else self.full_id
        asks = [Asked(self.family.key(c), c, "train", drawn, proto, str(it), pred, len(data.train))
                for c, drawn, pred in picked]
        rec.pending, rec.inflight = len(pending), (self.inflight() if pending else 0)
        store.add_iteration(spec.name, rec.__dict__, met_streak=check.met_streak, asks=[a.as_row() for a in asks])
        self.records.append(rec)
        self.bar.update(rec, check.budget_left)
        if state is not None:
            self.finish(state)
        return asks

    def data(self) -> TrainingData | None:
        store, spec = self.store, self.spec
        rows = store.members(spec.name, "train", status="ok")
        train = self.fid.labels(rows)
        val = store.members(spec.name, "validation", status="ok")
        need_val = spec.verification == "holdout"
        if len(train) < 2 or (need_val and len(val) < 3):
            log.error("campaign %s: too few ok measurements to fit (%d train, %d validation)", spec.name,
                      len(train), len(val))
            return None
        return TrainingData(train, self.encode(train), np.asarray([r["y"] for r in train]), val, self.encode(val),
                     np.asarray([r["min_ms"] for r in val]), rows, row_noise(train))

    # -- tell and measure ------------------------------------------------------------------------------------
    def tell(self, asked: Asked, measurement: Any) -> int:
        """Store ``measurement`` (a :class:`profiler.worker.Measurement` of ``asked``) as the campaign's and
        charge its cost to the ledger, in one transaction (:meth:`acquisition.store.Store.record`); the ask is
        no longer pending. Returns the measurement's id."""
        return self.store.record(measurement, activity="validation_profile" if asked.role == "validation" else
                                 "profile", campaign=self.spec.name, role=asked.role, drawn=asked.drawn)

    def measure(self, profiler: Any, asks: Sequence[Asked]) -> None:
        """The built-in measurer: ``profiler`` measures each ask and each result is told as it arrives
        (:func:`acquisition.loop.measure.measure_asks`)."""
        show = self.progress is True and any(a.batch in ("validation", "initial") for a in asks)
        measure_asks(profiler, self.family, asks, self.tell, self.cheap_protocol, show)

    # -- the predictor -----------------------------------------------------------------------------------------
    def current_model(self) -> Any:
        """The model fitted on everything measured: this session's last fit if nothing was measured since, else
        a fit now (charged as ``fit``). ``None`` when too few rows are measured to fit."""
        n = len(self.fid.labels(self.store.members(self.spec.name, "train", status="ok")))
        if self.model is None or self.models.rows != n:
            data = self.data()
            if data is None:
                return None
            self.models.fit(data)
        return self.model

    def export(self, bundle_path: str | None, last: IterationRecord | dict[str, Any] | None) -> str | None:
        """Export the predictor fitted on everything measured (a holdout campaign refits on training +
        validation rows first); ``last``: the last iteration, whose verified metrics the manifest carries."""
        return _export(self, bundle_path, last)

    def result(self, bundle_path: str | None, t_wall: float) -> CampaignResult:
        """End a run: export the bundle, store the state, and sum up what the campaign holds and cost."""
        return _summarize(self, bundle_path, t_wall)


def _record(it: int, n_train: int, check: StopCheck, m: dict[str, Any], fit_s: float, spec: CampaignSpec,
            model: str, gain: float | None) -> IterationRecord:
    """One iteration's record from its verification metrics ``m`` and stop check (the query's fields follow)."""
    return IterationRecord(it, n_train, check.bill_s, m["spearman"], m["spearman_lo"], m["spearman_hi"], m["mape"],
                           m["acc10"], m["coverage80"], fit_s, 0.0, check.ok_now, spec.verification,
                           int(m["n_verify"]), m.get("test_spearman"), m.get("test_acc10"), m.get("test_mape"),
                           model=model, transfer_gain=gain, stop_rule=spec.stop_rule, fired=check.fired,
                           acc10_lo=finite(m.get("acc10_lo")), mape_hi=finite(m.get("mape_hi")),
                           cv_spearman=finite(m.get("cv_spearman")))


def _record_fidelity(rec: IterationRecord, fid: Fidelity) -> None:
    rec.fidelity_pairs = fid.n_pairs
    if fid.mode == "auto":
        rec.fidelity_offset = float(np.expm1(fid.offset_a))
        rec.fidelity_noise = fid.noise if np.isfinite(fid.noise) else None


def _export(loop: CampaignLoop, bundle_path: str | None, last: IterationRecord | dict[str, Any] | None
        ) -> str | None:
    """:meth:`CampaignLoop.export`."""
    if loop.model is None or bundle_path is None:
        return None
    spec, store = loop.spec, loop.store
    t0 = time.perf_counter()
    rows = loop.fid.labels(store.members(spec.name, "train", status="ok"))
    model = loop.model
    if spec.verification == "holdout":
        rows = rows + [dict(r, y=r["min_ms"]) for r in store.members(spec.name, "validation", status="ok")]
        model = loop.models.refit(loop.encode(rows), np.asarray([r["y"] for r in rows]), row_noise(rows))
    export_predictor(bundle_path, model, loop.model_name, loop.encoder, store=store, spec=spec, fid=loop.fid,
                     platform={"id": loop.platform, "fingerprint": loop.profiler.fingerprint,
                               "protocol": loop.full_id},
                     n_train=len(rows), last=last.__dict__ if isinstance(last, IterationRecord) else last)
    loop.charge("export", time.perf_counter() - t0)
    return bundle_path


def _around(draw: Any, spec: CampaignSpec, measurer: Any, family: Any) -> Any:
    """The draw weighted toward the blocks of the networks the campaign serves (:mod:`acquisition.loop.around`)."""
    from acquisition.campaign import CampaignError
    from acquisition.loop.around import around_sampler, around_targets, parse_around

    if callable(getattr(measurer, "sample", None)):
        raise CampaignError(f"campaign {spec.name!r}: around needs fresh configurations of the family's space, and "
                            "this measurer draws its own (a recorded table)")
    return around_sampler(draw, family, around_targets(parse_around(spec.around or ""), family), spec.around_share)


def _summarize(loop: CampaignLoop, bundle_path: str | None, t_wall: float) -> CampaignResult:
    """:meth:`CampaignLoop.result`: the bundle exported, the state stored, the campaign's figures summed up."""
    store, spec = loop.store, loop.spec
    loop.bar.close()
    result = CampaignResult(spec.name, loop.state or "stopped", spec, loop.platform, iterations=loop.records)
    result.bundle = loop.export(bundle_path, loop.records[-1] if loop.records else None)
    store.set_campaign_state(spec.name, result.state)
    bill = campaign_bill(store, spec.name)
    result.n_train = len({r["key"] for r in store.members(spec.name, "train", status="ok")})  # configurations
    result.n_validation = len(store.members(spec.name, "validation", status="ok"))
    result.profiling_hours = bill.hours
    result.validation_hours = bill.role_hours("validation")
    result.engine_s = loop.engine_s
    result.fidelity = loop.fid.summary(store.members(spec.name, "train", status="ok"))
    result.wall_s = time.perf_counter() - t_wall
    recorded = (store.get_campaign(spec.name) or {}).get("spec", {})
    result.noise_floor = dict(recorded.get("noise_floor") or {})
    result.noise_warnings = list(recorded.get("noise_warnings") or [])
    if result.iterations:
        last = result.iterations[-1]
        result.metrics = {"spearman": last.spearman, "mape": last.mape, "acc10": last.acc10}
    return result


def _batch_size(spec: CampaignSpec, n_asked: int) -> int:
    k = spec.batch_size
    if spec.budget_samples is not None:
        k = min(k, spec.budget_samples - n_asked)
    return k


BUDGET_FIELDS = ("budget_hours", "budget_samples")
# what a resume may change: extend a campaign, re-declare its cost, pipeline it or not (the same experiment)
MUTABLE_FIELDS = (*BUDGET_FIELDS, "cost_s", "pipeline")


def check_resume(store: Any, spec: CampaignSpec, platform: str, protocol: str | None = None
                 ) -> dict[str, Any] | None:
    """The stored campaign named ``spec.name`` (``None`` if there is none), after checking that ``spec``,
    ``platform`` and ``protocol`` may resume it; reads only. A campaign of another family, platform or
    measurement protocol is refused, naming both values, and so is any other setting than the budgets and the
    declared cost (:data:`MUTABLE_FIELDS`): either would silently mix two experiments in one campaign."""
    from acquisition.campaign import CampaignError

    row = store.get_campaign(spec.name)
    if row is None:
        return None
    name = spec.name
    if row["family"] != spec.family:
        raise CampaignError(f"campaign {name!r} is a campaign of family {row['family']!r}, not {spec.family!r}: "
                            "use another campaign name")
    if row["platform"] != platform:
        raise CampaignError(f"campaign {name!r} runs on platform {row['platform']}, not on this device's "
                            f"platform {platform}: use another campaign name")
    stored_protocol = row.get("protocol")
    if protocol is not None and stored_protocol is not None and stored_protocol != protocol:
        raise CampaignError(f"campaign {name!r} measures with protocol {stored_protocol!r}, not {protocol!r}: use "
                            "another campaign name")
    stored = CampaignSpec.from_dict(row["spec"])
    diff = [f for f in spec.conflicts(stored, set(spec.as_dict())) if f.split("=")[0] not in MUTABLE_FIELDS]
    if diff:
        raise CampaignError(f"campaign {name!r} exists with other settings: {diff[0]}; only the budgets may "
                            "change when a campaign is resumed")
    return row


def open_campaign(store: Any, spec: CampaignSpec, platform: str, *, protocol: str | None = None,
                  reopen: bool = True) -> CampaignSpec:
    """Create the campaign, or resume it after :func:`check_resume` (which refuses another family, platform,
    protocol or setting than the budgets). ``protocol``: the id of the protocol it measures with (stored, and
    checked on every resume). ``reopen``: mark a resumed campaign running again (``run``); otherwise (ask/tell)
    it stays in the state it ended in unless a budget changed."""
    spec.validate()
    row = check_resume(store, spec, platform, protocol)
    if row is None:
        store.create_campaign(spec.name, spec.family, platform, spec.as_dict(), protocol=protocol)
        return spec
    if protocol is not None and row.get("protocol") is None:  # stored before schema 7
        store.set_campaign_protocol(spec.name, protocol)
    extended = any(getattr(spec, f) != row["spec"].get(f) for f in BUDGET_FIELDS)
    from acquisition.campaign import RECORDED_KEYS

    kept = {k: row["spec"][k] for k in RECORDED_KEYS if row["spec"].get(k) is not None}  # records, not settings
    store.update_campaign_spec(spec.name, {**spec.as_dict(), **kept})
    if reopen or extended:
        store.set_campaign_state(spec.name, "running")
    return spec


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
