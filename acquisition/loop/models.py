"""Model choice: which model an iteration fits and keeps (plain, ``auto``, or transfer from other platforms).

Contract: :meth:`ModelChoice.fit` fits on one iteration's :class:`~acquisition.loop.base.TrainingData` and returns
the model kept and the seconds it took (charged as ``fit``); afterwards ``name`` says which model it kept
(``transfer:<base>`` when it stands on sources), ``last_gain`` the transfer model's out-of-fold gain over the plain
one (``None`` without sources) and ``rows`` how many rows the model saw.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from acquisition.campaign import AUTO_MODELS, CampaignSpec
from acquisition.contracts import CampaignStore
from acquisition.loop.base import TrainingData, noise_kw
from acquisition.stopping import MIN_VERIFY_ROWS
from acquisition.store import fault_point

__all__ = ["AUTO_GP_ROWS", "AUTO_MIN_ROWS", "AUTO_RECHOOSE", "AUTO_SLIP", "MEMBER_POOL_ROWS", "TRANSFER_BASE",
           "TRANSFER_MARGIN", "FitJob", "FitOutcome", "ModelChoice", "auto_models", "make_model", "run_fit",
           "transfer_base"]

log = logging.getLogger("latency_acquisition")

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
# Between choices auto refits only the model it kept: the others are fitted and compared again once the rows have
# grown by this factor since the last choice (or when the kept model slips, AUTO_SLIP). Fitting
# the losers every iteration was up to half of a TF-NAS campaign's fit time (a gp and a gbt committee at 200 rows:
# 2.5 s and 1.5 s) for a choice that rarely changes between such growths (docs/design-notes.md, issue 30).
AUTO_RECHOOSE = 1.5
# the kept model's out-of-fold rho (on the rows no model chose) falling this far below where it stood at the choice
# makes the choice again at once: more rows should not make the kept model rank worse
AUTO_SLIP = 0.01


# a committee's fold models go to ModelChoice.member_pool's workers from this many rows: below, a fold fit takes
# milliseconds and the round trip more (with 2 workers, paired: a gp committee 0.71-1.05x the time at 60 TF-NAS
# rows, 0.60-0.77x at 120, 0.62-0.64x at 180; gbt 0.89-1.03x, 0.83-0.85x, 0.78x;
# benchmarks/fold_workers_bench.py, docs/benchmarks/2026-12-07-fit-workers.md)
MEMBER_POOL_ROWS = 100


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


@dataclass(eq=False)
class FitJob:
    """One iteration's fit, everything it reads: picklable, so that it may run in a worker process
    (:mod:`acquisition.loop.fitpool`). ``key`` names the rows, the choice and the sources it was made of."""

    spec: CampaignSpec
    strategy: Any
    chosen: tuple[str, int, float] | None
    sources: Any  # SourceModels of the sources in use, or None
    X: np.ndarray
    y: np.ndarray
    fit_kw: dict[str, Any]
    drawn: tuple[str | None, ...]  # each row's ``drawn``
    digest: str = ""

    @property
    def key(self) -> tuple[Any, ...]:
        names = tuple(self.sources.names) if self.sources is not None else ()
        return (self.digest, self.chosen, names, id(self.sources))


@dataclass(eq=False)
class FitOutcome:
    """What :func:`run_fit` returns: the model kept, its name, auto's choice, the transfer gain, the fit's seconds."""

    model: Any
    name: str
    chosen: tuple[str, int, float] | None
    last_gain: float | None
    fit_s: float


def _digest(data: TrainingData) -> str:
    h = hashlib.sha1()
    for a in (data.X, data.y, data.noise):
        if a is not None:
            h.update(np.ascontiguousarray(a, dtype=float).tobytes())
    h.update(repr([r.get("drawn") for r in data.train]).encode())
    return h.hexdigest()


def run_fit(job: FitJob) -> FitOutcome:
    """:meth:`ModelChoice.fit`'s fitting: the models due (:func:`_due`) fitted, compared and one kept."""
    from acquisition.verification import paired_gain_lower
    from surrogates.metrics import spearman

    spec, sources, chosen = job.spec, job.sources, job.chosen
    t0 = time.perf_counter()
    n = len(job.y)
    names = auto_models(n) if spec.model == "auto" else (spec.model,)
    compared = len(names) > 1 or sources is not None  # compared out of fold: each in a committee
    # auto's evidence: the rows no model chose (a strategy's picks are where some model was unsure)
    unbiased = np.asarray([d in ("random", "initial") for d in job.drawn])
    choose = len(names) > 1 and unbiased.sum() >= AUTO_MIN_ROWS
    if len(names) > 1:
        names = _due(names, choose, n, chosen)

    def make(name: str) -> Any:
        return make_model(spec, job.strategy, name=name, committee=compared)

    candidates: list[tuple[str, Any]] = [(nm, make(nm)) for nm in names]
    if sources is not None:
        transfer = f"transfer:{transfer_base(n, job.X.shape[1] + len(sources))}"
        candidates.append((transfer, make_model(spec, job.strategy, name=transfer, sources=sources, committee=True)))
    rows = np.asarray([d == "random" for d in job.drawn])
    enough = rows.sum() >= MIN_VERIFY_ROWS
    if sources is not None and not enough:
        rows = np.ones(n, dtype=bool)  # the gain is recorded from the start, on every row
    scored = len(candidates) > 1 and rows.sum() >= (3 if sources is not None else MIN_VERIFY_ROWS)
    models, rhos, plain_rhos = {}, {}, {}

    def fit_one(name: str, model: Any) -> None:
        models[name] = model.fit(job.X, job.y, **job.fit_kw)
        rhos[name] = spearman(job.y[rows], np.exp(model.oof_log_[rows])) if scored else -np.inf
        if name in names:
            plain_rhos[name] = (spearman(job.y[unbiased], np.exp(model.oof_log_[unbiased])) if choose
                                else -np.inf)

    for name, model in candidates:
        fit_one(name, model)
    if choose and _slipped(names, plain_rhos, chosen, spec):  # the others, fitted and compared again now
        names = auto_models(n)
        for name in names:
            if name not in models:
                fit_one(name, make(name))
    # the first while nothing can tell them apart (a constant prediction has no ρ: it never wins)
    plain = max(names, key=lambda nm: (np.nan_to_num(plain_rhos[nm], nan=-np.inf), -names.index(nm)))
    if choose and len(names) > 1:
        chosen = (plain, n, float(np.nan_to_num(plain_rhos[plain], nan=-np.inf)))
    pick, gain = plain, None
    if sources is not None:
        # the transfer model, unless the plain one ranks enough random rows better with 95 % confidence: an
        # out-of-fold rho from a few dozen rows is too noisy to overrule the sources' agreement
        gain = float(rhos[transfer] - rhos[plain]) if scored else None
        beaten = enough and gain is not None and gain < 0 and paired_gain_lower(
            np.log(job.y[rows]), models[plain].oof_log_[rows], models[transfer].oof_log_[rows],
            seed=spec.seed) > TRANSFER_MARGIN
        pick = plain if beaten else transfer
    return FitOutcome(models[pick], pick, chosen, gain, time.perf_counter() - t0)


def _due(names: tuple[str, ...], choose: bool, n_rows: int, chosen: tuple[str, int, float] | None
         ) -> tuple[str, ...]:
    """The auto models to fit on ``n_rows`` rows: the first alone before a choice can be made, the kept one
    alone between choices, all of them when a choice is due."""
    if not choose:
        return names[:1]
    if chosen is None or chosen[0] not in names or n_rows >= AUTO_RECHOOSE * chosen[1]:
        return names
    return (chosen[0],)


def _slipped(names: tuple[str, ...], plain_rhos: dict[str, float], chosen: tuple[str, int, float] | None,
             spec: CampaignSpec) -> bool:
    """Whether the model kept alone ranks the unbiased rows worse out of fold than when it was chosen."""
    if len(names) != 1 or chosen is None or spec.model != "auto":
        return False
    return bool(np.nan_to_num(plain_rhos[names[0]], nan=-np.inf) < chosen[2] - AUTO_SLIP)


class ModelChoice:
    """The model of one campaign, fitted each iteration (see the module docstring).

    ``sources``: :class:`acquisition.transfer.TransferSource` s (fitted once, at the first fit, and judged again
    every iteration); ``charge(activity, seconds)`` puts the engine's seconds on the ledger.
    """

    def __init__(self, store: CampaignStore, spec: CampaignSpec, strategy: Any, encoder: Any, sources: Sequence[Any],
                 charge: Callable[[str, float], None]) -> None:
        self.store, self.spec, self.strategy, self.encoder, self.charge = store, spec, strategy, encoder, charge
        self.model: Any = None
        self.name = spec.model
        self.rows = -1  # how many training rows self.model was fitted on
        self.sources = list(sources)
        self.fitted_sources: list[Any] | None = None  # one model per source, fitted at the first fit
        self.source_models: Any = None  # SourceModels of the sources in use (judged again every iteration)
        self.last_gain: float | None = None  # out-of-fold rho of the transfer model minus the plain model's
        # auto's last choice: (model, rows it was made on, the model's out-of-fold rho on the unbiased rows then)
        self.chosen: tuple[str, int, float] | None = None
        self.judged: tuple[str, Any] | None = None  # the rows' digest and the sources judged on them
        self.ahead: tuple[str, Any] | None = None  # a fit sent to a worker (prefetch): its job's key, its ticket
        # a FitPool whose workers fit the committees' fold models of a fit done here (a fleet's single campaign)
        self.member_pool: Any = None

    def set_sources(self, sources: Sequence[Any]) -> None:
        """New sources (the fleet reads its platforms' again before every fit): fitted and judged at the next fit."""
        self.sources, self.fitted_sources, self.source_models = list(sources), None, None
        self.judged = self.ahead = None

    def transfer_sources(self, data: TrainingData) -> Any:
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

    def fit(self, data: TrainingData) -> tuple[Any, float]:
        """Fit the campaign's model; with ``model="auto"`` fit each of :func:`auto_models` and keep the one
        whose out-of-fold ρ on the rows drawn independently of the models (the initial design and the random share:
        the cv verification's evidence) is highest, from :data:`AUTO_MIN_ROWS` such rows (before: the first, alone).
        The choice is made again once the rows have grown by :data:`AUTO_RECHOOSE` since the last one or when the
        kept model slips (:data:`AUTO_SLIP`); in between only the kept model is fitted (on every row).

        With transfer sources in use (those the rows measured so far agree with), a
        :class:`~surrogates.models.transfer.TransferRegressor` (its correction on :func:`transfer_base`) is fitted
        beside the plain model and kept unless the plain model ranks enough random rows better out of fold with 95 %
        confidence (:data:`TRANSFER_MARGIN`); the difference of the two out-of-fold ρ is recorded every iteration
        (``transfer_gain``).

        The fitting itself is :func:`run_fit` on this iteration's :class:`FitJob`: in a worker process when
        :meth:`prefetch` sent the same job there (its outcome is then adopted), else here, its committees' fold
        models in the workers of :attr:`member_pool` when it is set (:meth:`~acquisition.loop.fitpool.FitPool.map`)."""
        job = self.job(data)
        outcome = self._prefetched(job)
        if self.member_pool is not None and 2 * len(job.y) >= MEMBER_POOL_ROWS:
            self.member_pool.warm_up()  # its workers' imports done before they are needed
        if outcome is None and self.member_pool is not None and len(job.y) >= MEMBER_POOL_ROWS:
            from surrogates.models.committee import members_with

            with members_with(self.member_pool.map):
                outcome = run_fit(job)
        elif outcome is None:
            outcome = run_fit(job)
        self.model, self.name, self.chosen, self.last_gain = outcome.model, outcome.name, outcome.chosen, \
            outcome.last_gain
        fault_point("fit")
        self.charge("fit", outcome.fit_s)
        self.rows = len(data.train)
        return self.model, outcome.fit_s

    def job(self, data: TrainingData) -> FitJob:
        """The fit of ``data`` as a :class:`FitJob` (the sources judged on its rows first, once per set of rows)."""
        digest = _digest(data)
        if self.judged is None or self.judged[0] != digest:
            self.judged = (digest, self.transfer_sources(data))
        return FitJob(self.spec, self.strategy, self.chosen, self.judged[1], data.X, data.y, data.fit_kw(),
                      tuple(r.get("drawn") for r in data.train), digest)

    def prefetch(self, data: TrainingData, pool: Any) -> bool:
        """Send the fit of ``data`` to ``pool`` (a :class:`~acquisition.loop.fitpool.FitPool`) unless it is there
        already; ``True`` once its outcome is ready (or the worker is given up on: :meth:`fit` then fits here). The
        next :meth:`fit` of the same rows, sources and choice adopts it."""
        job = self.job(data)
        if self.ahead is None or self.ahead[0] != job.key:
            self.ahead = (job.key, pool.submit(job))
        return pool.ready(self.ahead[1])

    def _prefetched(self, job: FitJob) -> FitOutcome | None:
        """The outcome :meth:`prefetch` computed for ``job``, ``None`` if it has none (or its worker failed)."""
        ahead, self.ahead = self.ahead, None
        if ahead is None or ahead[0] != job.key:
            return None
        return ahead[1].outcome()

    def refit(self, X: np.ndarray, y: np.ndarray, noise: np.ndarray) -> Any:
        """The kept model, made again and fitted on ``X``, ``y`` (a holdout campaign's export: its training and
        validation rows together), with the sources it stands on."""
        srcs = self.source_models if self.name.startswith("transfer:") else None
        return make_model(self.spec, self.strategy, name=self.name, sources=srcs).fit(X, y, **noise_kw(noise))
