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

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition.bill import campaign_bill
from acquisition.campaign import AUTO_MODELS, CampaignSpec
from acquisition.fidelity import Fidelity
from acquisition.stopping import MIN_VERIFY_ROWS, get_stop_rule
from acquisition.store import fault_point

__all__ = ["END_STATES", "MIN_VERIFY_ROWS", "Asked", "CampaignLoop", "CampaignResult", "IterationRecord", "StopCheck",
           "check_resume", "make_model", "open_campaign", "run_campaign"]

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

    @property
    def met(self) -> bool:
        return self.state == "met"

    @property
    def overhead_share(self) -> float:
        return self.engine_s / self.wall_s if self.wall_s > 0 else float("nan")


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


# the transfer model's correction of its sources' prior (surrogates.models.transfer): a Gaussian process while
# it is cheap (where the rows say nothing it fades back to the prior instead of extrapolating the probe corners:
# never-seen rho on the TF-NAS table from the 20 probes 0.85-0.91 against 0.78-0.88 for linear leaves, and as
# good or better up to 300 rows, docs/design-notes.md), linear-leaf trees beyond. A GP fit costs about
# rows^2 x features (its likelihood gradient): the bound, 300 rows of the TF-NAS table's 10 columns, is 1-2 s a
# fit here; 158 rows of a live mbconv campaign's 36. The prior alone was tried as a second form chosen by
# out-of-fold rho and dropped (it lost more than it saved on 20-40 rows).
TRANSFER_BASE = "linear-gbt"


def auto_models(n_rows: int) -> tuple[str, ...]:
    """The models ``model="auto"`` fits on ``n_rows`` rows: :data:`AUTO_MODELS`, ``gp`` up to
    :data:`AUTO_GP_ROWS` rows (its hyperparameters are searched on a bounded subset, but conditioning on every row
    costs n³ and its memory n²).

        >>> auto_models(100), auto_models(5000)
        (('gbt', 'linear', 'gp'), ('gbt', 'linear'))
    """
    return tuple(m for m in AUTO_MODELS if m != "gp" or n_rows <= AUTO_GP_ROWS)


AUTO_GP_ROWS = 2000
# model="auto" chooses on the out-of-fold ρ of the rows drawn independently of the models (the initial design
# and the random share) once it has this many; before, the first of AUTO_MODELS
AUTO_MIN_ROWS = 15


def transfer_base(n_rows: int, n_features: int) -> str:
    """The transfer model's correction learner for ``n_rows`` rows of ``n_features`` columns (the block's
    features and one per source): ``gp`` while ``n_rows² · n_features`` is within the GP's own bound on a full
    hyperparameter search (:data:`surrogates.models.gp.SEARCH_COST`), else :data:`TRANSFER_BASE`."""
    from surrogates.models.gp import SEARCH_COST  # here: the engine's import stays free of scikit-learn's GP

    return "gp" if n_rows**2 * n_features <= SEARCH_COST else TRANSFER_BASE


# the plain model replaces the transfer model only where it ranks the random rows better out of fold with 95 %
# confidence (a paired bootstrap, acquisition.verification.paired_gain_lower). A fixed margin (0.01) on the
# out-of-fold rho switched 2 of 10 TF-NAS transfer runs to a model 0.06 worse on never-seen rows at 120-200 rows.
TRANSFER_MARGIN = 0.0
# The engine fits with one OpenMP/BLAS thread: at campaign sizes (tens to a few thousand rows) scikit-learn's
# histogram boosting is faster on one thread than on two (0.58 s against 3.3 s for 300 trees on 300 rows on
# this 2-core machine beside other work), and the profiler's worker is another process.
END_STATES = ("met", "budget", "exhausted", "failed")  # a campaign in one of these states asks for nothing more


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


def run_campaign(store: Any, spec: CampaignSpec, profiler: Any, family: Any, *,
                 progress: bool | Callable[[dict[str, Any]], None] = False, bundle_path: str | None = None,
                 max_iterations: int = 10_000, judge: Callable[[Any, set[str]], dict[str, float]] | None = None,
                 sources: Sequence[Any] | None = None) -> CampaignResult:
    """Run (or resume) ``spec`` to its end; ``profiler`` measures (live :class:`profiler.worker.Profiler` or a
    replay oracle with the same ``measure``/``platform_id`` interface). Returns the result; exports the bundle to
    ``bundle_path`` when given. ``sources``: :class:`acquisition.transfer.TransferSource` s to learn from
    (``spec.transfer`` must not be ``"none"``; see the module docstring). ``max_iterations``: at most this many
    fits in this call (the campaign then ends as ``stopped``; running it again resumes it).

    The loop is ask/tell (:class:`CampaignLoop`, the steps :class:`acquisition.Campaign` runs too): ask for the
    pending or next configurations, measure them with ``profiler``, tell each result as it arrives."""
    from threadpoolctl import threadpool_limits

    t_wall = time.perf_counter()
    platform = profiler.platform_id
    store.ensure_platform(platform, profiler.fingerprint, profiler.device.spec)
    spec = open_campaign(store, spec, platform, protocol=profiler.protocol.id)
    with threadpool_limits(limits=1):  # one thread: see the note under TRANSFER_MARGIN
        loop = CampaignLoop(store, spec, profiler, family, progress=progress, sources=list(sources or []),
                            judge=judge, max_fits=max_iterations)
        while asks := loop.next_asks():
            loop.measure(profiler, asks)
        return loop.result(bundle_path, t_wall)


@dataclass
class _Data:
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


@dataclass
class StopCheck:
    """What the stop rule read at one iteration, and what it decided (``state``: ``None`` to go on)."""

    ok_now: bool  # the verified targets are met at this iteration (on enough verification rows)
    met_streak: int
    reached: bool  # the rule has fired at this iteration or an earlier one
    bill_s: float
    n_asked: int  # training configurations the campaign holds (failed ones too)
    budget_left: dict[str, Any]
    state: str | None
    fired: bool = False  # the rule fired at this iteration


class CampaignLoop:
    """The named steps of one campaign, sharing its encoder, cost model and charges.

    ``measurer`` describes where measurements come from: ``platform_id``, ``fingerprint``, ``device.spec``,
    ``protocol.id``; ``supports_protocol`` (it can measure with the cheap fidelity's protocol too) and ``sample``
    (a pool of its own, e.g. a replay table) when it has them. The steps:

    - :meth:`next_asks`: what to measure next. The pending asks (asked, not yet measured: stored, so a crash
      re-asks them); else the next step's, recorded as pending: :meth:`design` (the holdout validation set, the
      initial design), :meth:`probe_step` (a cheap batch's probes), else one iteration, :meth:`advance`:
      :meth:`data` -> :meth:`fit` -> :meth:`verify` -> :meth:`stop_check` -> :meth:`query`.
    - :meth:`tell`: store one measurement of an asked configuration and charge it (one transaction).
    - :meth:`measure`: the built-in measurer, a profiler that measures the asks and tells each result.
    - :meth:`export`: the predictor bundle, fitted on everything measured.
    """

    def __init__(self, store: Any, spec: CampaignSpec, measurer: Any, family: Any, *,
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
        self.last_query_s = 0.0
        self.feature_rows: dict[str, np.ndarray] = {}
        self.draw = _sampler(measurer, family)
        self.cost_model = _CostModel(spec.seed)
        self.strategy = get_strategy(spec.strategy)
        self.rng_base = _stream(spec.seed, "query")
        self.bar = _Progress(spec, progress)
        self.model: Any = None
        self.model_name = spec.model
        self.model_rows = -1  # how many training rows self.model was fitted on
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
        self.sources = list(sources)
        self.fitted_sources: list[Any] | None = None  # one model per source, fitted at the first fit
        self.source_models: Any = None  # SourceModels of the sources in use (judged again every iteration)
        self.last_gain: float | None = None  # out-of-fold rho of the transfer model minus the plain model's
        self._design: list[list[Asked]] | None = None  # the validation set and the initial design (deterministic)
        self._design_done = False
        self._noise_checked = False

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
        """Read the noise floor the campaign runs under (:func:`acquisition.campaign.noise_floor_of`) and record
        it with the campaign when it is new; warn (log) for each target above it, or say (info) that no floor is
        known. The first call of a session always logs; later calls (every iteration) only when a new floor
        appeared (a doctor run, re-measured blocks where there were none), once. Never refuses to run.
        Returns the warnings logged."""
        from acquisition.campaign import floor_identity, noise_floor_lines, noise_floor_of

        first, self._noise_checked = not self._noise_checked, True
        row = self.store.get_campaign(self.spec.name)
        if row is None:
            return []
        stored = row["spec"].get("noise_floor")
        floor = noise_floor_of(self.store, self.platform, self.family.name, protocol=self.full_id or None)
        new = floor_identity(floor) != floor_identity(stored)
        if not (first or new):
            return []
        warnings, info = noise_floor_lines(self.spec, floor)
        for line in warnings:
            log.warning("%s", line)
        for line in info:
            log.info("%s", line)
        if new and not getattr(self.store, "readonly", False):
            told = list(row["spec"].get("noise_warnings") or [])
            told += [w for w in warnings if w not in told]
            self.store.update_campaign_spec(self.spec.name, {**row["spec"], "noise_floor": floor,
                                                             "noise_warnings": told})
        return warnings

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
            if self.design_step() or self.probe_step():
                continue
            if self.max_fits is not None and self.fits >= self.max_fits:
                self.state = "stopped"
                break
            self.advance()
        return []

    def pending(self) -> list[Asked]:
        """Asked and not measured yet, in the order asked. Stored measurements of them (another campaign's, a
        ``profile`` run's, on this platform and protocol) join the campaign first, at no cost."""
        return self._attach_stored([Asked.from_row(r) for r in self.store.pending_asks(self.spec.name)])

    def _attach_stored(self, asks: list[Asked]) -> list[Asked]:
        """Attach the stored measurements of ``asks`` (failed ones too: a failure is not retried) and return the
        rest, as :func:`acquisition.profiling.profile_configs` reuses them."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for proto in dict.fromkeys(a.protocol for a in asks):
            rows = self.store.find(self.platform, self.family.name, proto, [a.key for a in asks if a.protocol == proto])
            found.update({(proto, k): r for k, r in rows.items()})
        if not found:
            return asks
        reused: dict[tuple[str, str | None], list[int]] = {}
        todo = []
        for a in asks:
            row = found.get((a.protocol, a.key))
            if row is None:
                todo.append(a)
            else:
                reused.setdefault((a.role, a.drawn), []).append(int(row["id"]))
        for (role, drawn), ids in reused.items():
            self.store.add_members(self.spec.name, ids, role, drawn=drawn)
        return todo

    def design(self) -> list[list[Asked]]:
        """The holdout validation set (``holdout`` only; its own seed stream, so it never depends on the
        strategy), then the space-filling initial design, shared by every strategy for the same seed (with
        transfer: the family's probe set, the same on every platform, :mod:`acquisition.transfer`)."""
        if self._design is not None:
            return self._design
        spec, key = self.spec, self.family.key
        batches: list[list[Asked]] = []
        val_keys: set[str] = set()
        if spec.verification == "holdout":
            val = self.draw(spec.validation_size, "random", _stream(spec.seed, "validation"), set())
            batches.append([Asked(key(c), c, "validation", "validation", self.full_id, "validation") for c in val])
            val_keys = {a.key for a in batches[0]}
        if spec.transfer != "none":
            from acquisition.transfer import probe_configs

            init = probe_configs(self.draw, spec.initial_size, val_keys)
        else:
            init = self.draw(spec.initial_size, "sobol", _stream(spec.seed, "initial"), val_keys)
        # an auto-fidelity campaign always starts cheap (also on a resume after it switched: the stored cheap
        # rows are found again instead of measuring the design at full fidelity)
        proto = self.cheap_protocol.id if self.fid.mode == "auto" and self.cheap_protocol else self.full_id
        batches.append([Asked(key(c), c, "train", "initial", proto, "initial") for c in init
                        if key(c) not in val_keys])
        self._design = batches
        return batches

    def design_step(self) -> bool:
        """Ask for the part of :meth:`design` the campaign has neither asked for nor measured (a campaign stored
        before asks were recorded finds its measurements); returns whether it asked for anything."""
        if self._design_done:
            return False
        spec = self.spec
        asked = {(r["key"], r["protocol"]) for r in self.store.asks(spec.name)}
        asked |= {(r["key"], r["protocol"]) for r in self.store.members(spec.name)}
        for batch in self.design():
            missing = [a for a in batch if (a.key, a.protocol) not in asked]
            if missing:
                self.store.add_asks(spec.name, [a.as_row() for a in missing])
                return True
        self._design_done = True
        return False

    def probe_step(self) -> bool:
        """Once a cheap batch is measured, ask for its probes: a few of its ok rows, drawn at random, measured
        again at full fidelity (they keep the offset between fidelities measured, :mod:`acquisition.fidelity`).
        Returns whether it asked for any."""
        if self.cheap_protocol is None:
            return False
        spec, store = self.spec, self.store
        batch = store.last_ask_batch(spec.name)
        if batch is None:
            return False
        asked = [Asked.from_row(r) for r in store.asks(spec.name, batch)]
        picked = [a for a in asked if a.drawn != "probe"]
        if not picked or any(a.drawn == "probe" for a in asked) or picked[0].protocol != self.cheap_protocol.id:
            return False
        rows = store.members(spec.name, "train")
        batch_keys = {a.key for a in picked}
        before = [r for r in rows if r["key"] not in batch_keys]
        n = self.fid.n_probes(before, len(picked))
        rng = np.random.default_rng(_stream(spec.seed, "probe", int(batch) if batch.isdigit() else batch))
        ok = {r["key"] for r in rows if r["status"] == "ok"}
        probes = [picked[i] for i in rng.permutation(len(picked)) if picked[i].key in ok][:n]
        if not probes:
            return False
        store.add_asks(spec.name, [Asked(a.key, a.config, "train", "probe", self.full_id, batch).as_row()
                                   for a in probes])
        return True

    # -- one iteration -----------------------------------------------------------------------------------------
    def advance(self) -> list[Asked]:
        """One iteration: fit -> verify -> stop? -> query. Records the iteration and the batch it asks for in one
        transaction and returns that batch (empty when the campaign ends here)."""
        store, spec = self.store, self.spec
        self.check_noise_floor()  # a floor measured since the campaign started (a doctor run beside it)
        data = self.data()
        if data is None:
            self.finish("failed")
            return []
        self.fits += 1
        model, fit_s = self.fit(data)
        m = self.verify(model, data)
        if self.judge is not None:
            m.update({f"test_{k}": v for k, v in self.judge(model, store.member_keys(spec.name)).items()})
        it = store.iteration_count(spec.name)
        check = self.stop_check(m, data)
        rec = IterationRecord(it, len(data.train), check.bill_s, m["spearman"], m["spearman_lo"], m["spearman_hi"],
                              m["mape"], m["acc10"], m["coverage80"], fit_s, 0.0, check.ok_now, spec.verification,
                              int(m["n_verify"]), m.get("test_spearman"), m.get("test_acc10"), m.get("test_mape"),
                              model=self.model_name, transfer_gain=self.last_gain, stop_rule=spec.stop_rule,
                              fired=check.fired, acc10_lo=_finite(m.get("acc10_lo")),
                              mape_hi=_finite(m.get("mape_hi")), cv_spearman=_finite(m.get("cv_spearman")))
        state = check.state
        picked: list[tuple[dict[str, Any], str, float | None]] = []
        cheap = False
        if state is None:
            cheap = self.fid.next_is_cheap(data.rows, m["mape"])
            picked = self.query(model, data, it, _batch_size(spec, check.n_asked), cheap=cheap)
            rec.query_s = self.last_query_s
            rec.fidelity = "cheap" if cheap else "full"
        rec.fidelity_pairs = self.fid.n_pairs
        if self.fid.mode == "auto":
            rec.fidelity_offset = float(np.expm1(self.fid.offset_a))
            rec.fidelity_noise = self.fid.noise if np.isfinite(self.fid.noise) else None
        if state is None and not picked:
            state = "met" if check.reached else "exhausted"
            log.warning("campaign %s: no candidate left to profile (the replay table is used up)", spec.name)
        proto = self.cheap_protocol.id if cheap and self.cheap_protocol else self.full_id
        asks = [Asked(self.family.key(c), c, "train", drawn, proto, str(it), pred, len(data.train))
                for c, drawn, pred in picked]
        store.add_iteration(spec.name, rec.__dict__, met_streak=check.met_streak, asks=[a.as_row() for a in asks])
        self.records.append(rec)
        self.bar.update(rec, check.budget_left)
        if state is not None:
            self.finish(state)
        return asks

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
                     np.asarray([r["min_ms"] for r in val]), rows, row_noise(train))

    def stop_check(self, m: dict[str, float], data: _Data) -> StopCheck:
        """The stop rule (``spec.stop_rule``, :mod:`acquisition.stopping`): it passes this iteration or not, and
        fires after as many consecutive passes (each on more rows) as it needs; or a budget is spent."""
        store, spec = self.store, self.spec
        rule = get_stop_rule(spec.stop_rule)
        ok_now = rule.passes(m, spec)
        met_streak = _met_streak(store, spec, len(data.train)) + 1 if ok_now else 0
        fired = met_streak >= rule.needed(spec)
        bill_s = campaign_bill(store, spec.name).total_s
        # configurations asked for (failed ones too; a probe re-measures one, it is not another sample)
        n_asked = len({r["key"] for r in store.members(spec.name, "train")})
        budget_left = _budget_left(spec, n_asked, bill_s)
        reached = fired or any(r["met_streak"] >= rule.needed(spec) for r in store.iterations(spec.name))
        state = None
        if fired and spec.stop_on_target:
            state = "met"
        elif budget_left["exhausted"]:
            state = "met" if reached else "budget"
        return StopCheck(bool(ok_now), met_streak, reached, bill_s, n_asked, budget_left, state, fired)


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
        """Fit the campaign's model; with ``model="auto"`` fit each of :func:`auto_models` and keep the one
        whose out-of-fold ρ on the rows drawn independently of the models (the initial design and the random share:
        the cv verification's evidence) is highest, from :data:`AUTO_MIN_ROWS` such rows (before: the first).

        With transfer sources in use (those the rows measured so far agree with), a
        :class:`~surrogates.models.transfer.TransferRegressor` (its correction on :func:`transfer_base`) is fitted
        beside the plain model and kept unless the plain model ranks enough random rows better out of fold with 95 %
        confidence (:data:`TRANSFER_MARGIN`); the difference of the two out-of-fold ρ is recorded every iteration
        (``transfer_gain``)."""
        from acquisition.verification import paired_gain_lower
        from surrogates.metrics import spearman

        sources = self.transfer_sources(data)
        t0 = time.perf_counter()
        names = auto_models(len(data.train)) if self.spec.model == "auto" else (self.spec.model,)
        compared = len(names) > 1 or sources is not None  # compared out of fold: each in a committee
        candidates: list[tuple[str, Any]] = [(n, make_model(self.spec, self.strategy, name=n, committee=compared))
                                             for n in names]
        if sources is not None:
            transfer = f"transfer:{transfer_base(len(data.train), data.X.shape[1] + len(sources))}"
            candidates.append((transfer, make_model(self.spec, self.strategy, name=transfer, sources=sources,
                                                    committee=True)))
        rows = np.asarray([r.get("drawn") == "random" for r in data.train])
        enough = rows.sum() >= MIN_VERIFY_ROWS
        if sources is not None and not enough:
            rows = np.ones(len(data.train), dtype=bool)  # the gain is recorded from the start, on every row
        scored = len(candidates) > 1 and rows.sum() >= (3 if sources is not None else MIN_VERIFY_ROWS)
        # auto's evidence: the rows no model chose (a strategy's picks are where some model was unsure)
        unbiased = np.asarray([r.get("drawn") in ("random", "initial") for r in data.train])
        choose = len(names) > 1 and unbiased.sum() >= AUTO_MIN_ROWS
        models, rhos, plain_rhos = {}, {}, {}
        for name, model in candidates:
            models[name] = model.fit(data.X, data.y, **data.fit_kw())
            rhos[name] = spearman(data.y[rows], np.exp(model.oof_log_[rows])) if scored else -np.inf
            if name in names:
                plain_rhos[name] = (spearman(data.y[unbiased], np.exp(model.oof_log_[unbiased])) if choose
                                    else -np.inf)
        # the first while nothing can tell them apart (a constant prediction has no ρ: it never wins)
        plain = max(names, key=lambda n: (np.nan_to_num(plain_rhos[n], nan=-np.inf), -names.index(n)))
        pick, self.last_gain = plain, None
        if sources is not None:
            # the transfer model, unless the plain one ranks enough random rows better with 95 % confidence: an
            # out-of-fold rho from a few dozen rows is too noisy to overrule the sources' agreement
            self.last_gain = float(rhos[transfer] - rhos[plain]) if scored else None
            beaten = enough and self.last_gain is not None and self.last_gain < 0 and paired_gain_lower(
                np.log(data.y[rows]), models[plain].oof_log_[rows], models[transfer].oof_log_[rows],
                seed=self.spec.seed) > TRANSFER_MARGIN
            pick = plain if beaten else transfer
        best, self.model_name = models[pick], pick
        fault_point("fit")
        fit_s = time.perf_counter() - t0
        self.charge("fit", fit_s)
        self.model, self.model_rows = best, len(data.train)
        return best, fit_s

    def verify(self, model: Any, data: _Data) -> dict[str, float]:
        """Metrics the stop rule reads (:func:`acquisition.verification.score`: point estimates and one-sided
        bounds): on the prequential evidence, the out-of-fold predictions of the randomly drawn training rows, or
        the holdout set (module docstring). ``cv_spearman`` and ``coverage80`` come from the committee's
        out-of-fold predictions of the random rows, when the model is a committee."""
        from acquisition.verification import estimate, prequential_evidence, score
        from surrogates.metrics import coverage
        from surrogates.models import LogLatencyDist

        t0 = time.perf_counter()
        mode = self.spec.verification
        rows = np.asarray([r.get("drawn") == "random" for r in data.train], dtype=bool)
        oof = getattr(model, "oof_log_", None)
        cv: dict[str, float] = {"cv_spearman": float("nan"), "coverage80": float("nan")}
        if oof is not None and rows.sum() >= 3:
            full = model.predict_dist(data.X[rows])
            dist = LogLatencyDist(oof[rows], full.std, {}, full.epistemic)
            cv_m = score(data.y[rows], np.exp(oof[rows]))
            cv = {"cv_spearman": cv_m["spearman"], "coverage80": coverage(data.y[rows], dist, 0.8), **(
                cv_m if mode == "cv" else {})}
        if mode == "holdout":
            dist_val = model.predict_dist(data.X_val)
            m = {**score(data.y_val, dist_val.latency), "coverage80": coverage(data.y_val, dist_val, 0.8)}
        elif mode == "prequential":
            labels = {r["key"]: float(r["y"]) for r in data.train}
            m = {**estimate(prequential_evidence(self.store.asks(self.spec.name), labels), len(data.train)),
                 **{k: cv[k] for k in ("cv_spearman", "coverage80")}}
        else:
            m = {**score([], []), **cv}  # cv already holds the out-of-fold scores when there are enough rows
        self.charge("evaluate", time.perf_counter() - t0)
        return m

    def query(self, model: Any, data: _Data, it: int, k: int, cheap: bool = False
              ) -> list[tuple[dict[str, Any], str, float]]:
        """The next batch: ``random_share`` of it uniformly from the candidates, the rest by the strategy; each
        with the model's predicted log-latency (stored with the ask: prequential evidence)."""
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
        # the model's prediction of every row before it is measured: prequential evidence (acquisition.verification)
        pred = (model.predict_dist(self.encoder.transform([c for c, _ in chosen], validated=True)).mean if chosen
                else [])
        self.last_query_s = time.perf_counter() - t0
        self.charge("query", self.last_query_s)
        return [(c, drawn, float(p)) for (c, drawn), p in zip(chosen, pred, strict=True)]


    # -- tell and measure ------------------------------------------------------------------------------------
    def tell(self, asked: Asked, measurement: Any) -> int:
        """Store ``measurement`` (a :class:`profiler.worker.Measurement` of ``asked``) as the campaign's and
        charge its cost to the ledger, in one transaction (:meth:`acquisition.store.Store.record`); the ask is
        no longer pending. Returns the measurement's id."""
        return self.store.record(measurement, activity="validation_profile" if asked.role == "validation" else
                                 "profile", campaign=self.spec.name, role=asked.role, drawn=asked.drawn)

    def measure(self, profiler: Any, asks: Sequence[Asked]) -> None:
        """The built-in measurer: ``profiler`` measures each ask (at the cheap fidelity when it was asked so) and
        each result is told as it arrives, so a kill loses at most the block being measured."""
        from tqdm import tqdm

        show = self.progress is True and any(a.batch in ("validation", "initial") for a in asks)
        bar = tqdm(total=len(asks), desc=f"profile {self.family.name}", unit="block", disable=not show,
                   file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
        failed = 0
        try:
            for a in asks:
                cheap = self.cheap_protocol is not None and a.protocol == self.cheap_protocol.id
                m = (profiler.measure(self.family, a.config, self.cheap_protocol) if cheap
                     else profiler.measure(self.family, a.config))
                fault_point("profile")
                self.tell(a, m)
                failed += not m.ok
                bar.update(1)
                bar.set_postfix(failed=failed, refresh=False)
        finally:
            bar.close()

    # -- the predictor -----------------------------------------------------------------------------------------
    def current_model(self) -> Any:
        """The model fitted on everything measured: this session's last fit if nothing was measured since, else
        a fit now (charged as ``fit``). ``None`` when too few rows are measured to fit."""
        n = len(self.fid.labels(self.store.members(self.spec.name, "train", status="ok")))
        if self.model is None or self.model_rows != n:
            data = self.data()
            if data is None:
                return None
            self.fit(data)
        return self.model

    def export(self, bundle_path: str | None, last: IterationRecord | dict[str, Any] | None) -> str | None:
        """Export the predictor fitted on everything measured (a holdout campaign refits on training +
        validation rows first); ``last``: the last iteration, whose verified metrics the manifest carries."""
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
            srcs = self.source_models if self.model_name.startswith("transfer:") else None
            model = make_model(spec, self.strategy, name=self.model_name, sources=srcs).fit(
                self.encode(rows), np.asarray([r["y"] for r in rows]), **noise_kw(row_noise(rows)))
        last = last.__dict__ if isinstance(last, IterationRecord) else last
        metrics = ({"spearman": last["spearman"], "spearman_lo": last["spearman_lo"], "mape": last["mape"],
                    "acc10": last["acc10"], "coverage80": last["coverage80"], "verification": spec.verification,
                    "n_verify": last["n_verify"]} if last else {})
        export_bundle(bundle_path, model, self.encoder, model_name=self.model_name,
                      platform={"id": self.platform, "fingerprint": self.profiler.fingerprint,
                                "protocol": self.full_id},
                      n_train=len(rows), metrics=metrics,
                      extra={"campaign": spec.name, "strategy": spec.strategy, "model_setting": spec.model,
                             "fidelity": self.fid.summary(store.members(spec.name, "train", status="ok")),
                             "transfer": {"sources": [s["name"] for s in store.campaign_sources(spec.name)
                                                      if s["used"]],
                                          "model_uses_them": self.model_name.startswith("transfer:")}})
        self.charge("export", time.perf_counter() - t0)
        store.add_predictor(spec.name, bundle_path, metrics)
        return bundle_path

    def result(self, bundle_path: str | None, t_wall: float) -> CampaignResult:
        """End a run: export the bundle, store the state, and sum up what the campaign holds and cost."""
        store, spec = self.store, self.spec
        self.bar.close()
        result = CampaignResult(spec.name, self.state or "stopped", spec, self.platform, iterations=self.records)
        result.bundle = self.export(bundle_path, self.records[-1] if self.records else None)
        store.set_campaign_state(spec.name, result.state)
        bill = campaign_bill(store, spec.name)
        result.n_train = len({r["key"] for r in store.members(spec.name, "train", status="ok")})  # configurations
        result.n_validation = len(store.members(spec.name, "validation", status="ok"))
        result.profiling_hours = bill.hours
        result.validation_hours = bill.role_hours("validation")
        result.engine_s = self.engine_s
        result.fidelity = self.fid.summary(store.members(spec.name, "train", status="ok"))
        result.wall_s = time.perf_counter() - t_wall
        recorded = (store.get_campaign(spec.name) or {}).get("spec", {})
        result.noise_floor = dict(recorded.get("noise_floor") or {})
        result.noise_warnings = list(recorded.get("noise_warnings") or [])
        if result.iterations:
            last = result.iterations[-1]
            result.metrics = {"spearman": last.spearman, "mape": last.mape, "acc10": last.acc10}
        return result


def make_model(spec: CampaignSpec, strategy: Any = None, name: str | None = None, sources: Any = None, *,
               committee: bool = False) -> Any:
    """The campaign's model (``name``, default ``spec.model``) seeded, wrapped in a K-fold committee when the
    verification or the strategy needs one (``cv`` verification; a strategy that reads the epistemic std).
    With ``sources`` (:class:`~surrogates.models.transfer.SourceModels`), a transfer model on them: ``name``
    ``transfer:prior`` is the prior alone, ``transfer:BASE`` (or a plain ``BASE``) the prior with a ``BASE``
    correction. ``committee``: wrap it whatever the settings (models compared out of fold need one)."""
    from surrogates import get_model
    from surrogates.models import CommitteeRegressor

    if (name or spec.model) == "auto":
        raise ValueError(f"model='auto' is a choice among {', '.join(AUTO_MODELS)}: name the model to make")
    if sources is not None:
        from surrogates.models.transfer import TransferRegressor

        base = (name or spec.model).removeprefix("transfer:")
        model = (TransferRegressor(sources=sources, method="prior") if base == "prior"
                 else TransferRegressor(sources=sources, base=base))
    else:
        model = get_model(name or spec.model)
    if "random_state" in model.get_params():
        model.set_params(random_state=spec.seed)
    # the committee gives out-of-fold predictions (cv verification; auto's choice, also beside a holdout set, which
    # then judges the choice and never makes it) and the epistemic std
    needs = (committee or spec.verification != "holdout" or spec.model == "auto"
             or (getattr(strategy, "needs_epistemic", False) and not model.has_epistemic))
    if needs:
        model = CommitteeRegressor(model, n_folds=spec.folds, random_state=spec.seed)
    return model


def _batch_size(spec: CampaignSpec, n_asked: int) -> int:
    k = spec.batch_size
    if spec.budget_samples is not None:
        k = min(k, spec.budget_samples - n_asked)
    return k


BUDGET_FIELDS = ("budget_hours", "budget_samples")
MUTABLE_FIELDS = (*BUDGET_FIELDS, "cost_s")  # what a resume may change: extend a campaign, re-declare its cost


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


def _finite(v: Any) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


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
