"""The acquisition loop: fit -> evaluate on validation -> stop? -> query -> profile (DESIGN §5).

:func:`run_campaign` drives one campaign to its end (target met, budget spent) and exports its predictor.
Every state change is one transaction in the store (a measurement, its ledger row and its campaign membership
together; an iteration row; the campaign's state), and everything the loop decides is derived from the seed
and the stored state, so a run killed at any moment resumes where it stopped without losing or duplicating a
measurement or charging anything twice.

**Stop rule.** The validation set is a random sample of ``validation_size`` configurations (its own seed
stream), profiled once and charged to the ledger as ``validation_profile``. The target counts as met only when
the validation ρ (and ±10 % accuracy / MAPE, if targeted) meets it on ``confirm`` (default 2) consecutive
iterations, each fitted on more data: one lucky fit, or a model that crosses the line and falls back, does not
stop the campaign. Each iteration also stores the bootstrap 95 % interval of ρ, so a report shows how far the
target is inside it. With ``stop_on_target=False`` (studies) the campaign goes on to its budget and ends as
``met`` if the rule fired on the way.

**Candidates** come from the oracle when it has a pool of its own (a replay table's unmeasured rows, see
:mod:`studies.replay`), else fresh random configurations of the family's space; a campaign with no candidate
left ends as ``exhausted``.

**Engine overhead** is the seconds spent fitting, evaluating, querying (encoding the pool, the cost model and
the strategy) and exporting, each charged to the ledger with its activity.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition.campaign import CampaignSpec
from acquisition.store import fault_point

__all__ = ["CampaignResult", "IterationRecord", "run_campaign"]

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


@dataclass
class CampaignResult:
    name: str
    state: str  # met | budget | exhausted | failed | stopped
    spec: CampaignSpec
    platform: str
    iterations: list[IterationRecord] = field(default_factory=list)
    n_train: int = 0
    n_validation: int = 0
    profiling_hours: float = 0.0
    validation_hours: float = 0.0
    engine_s: float = 0.0
    wall_s: float = 0.0
    bundle: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

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


def run_campaign(store: Any, spec: CampaignSpec, profiler: Any, family: Any, *,
                 progress: bool | Callable[[dict[str, Any]], None] = False, bundle_path: str | None = None,
                 max_iterations: int = 10_000) -> CampaignResult:
    """Run (or resume) ``spec`` to its end; ``profiler`` measures (live :class:`profiler.worker.Profiler` or a
    replay oracle with the same ``measure``/``platform_id`` interface). Returns the result; exports the bundle to
    ``bundle_path`` when given."""
    from acquisition.profiling import profile_configs
    from acquisition.strategies import QueryContext, get_strategy
    from surrogates import FeatureEncoder, evaluate, export_bundle, get_model

    t_wall = time.perf_counter()
    platform = profiler.platform_id
    store.ensure_platform(platform, profiler.fingerprint, profiler.device.spec)
    spec = open_campaign(store, spec, platform)
    encoder = FeatureEncoder(family)
    protocol = profiler.protocol.id
    engine_s = 0.0
    feature_rows: dict[str, np.ndarray] = {}

    def encode(rows: list[dict[str, Any]]) -> np.ndarray:
        """Features of stored measurements, each row encoded once per campaign run (stored configs were
        validated before they were measured)."""
        new = [r for r in rows if r["key"] not in feature_rows]
        if new:
            for r, x in zip(new, encoder.transform([r["config"] for r in new], validated=True), strict=True):
                feature_rows[r["key"]] = x
        if not rows:
            return np.zeros((0, len(encoder.feature_names)))
        return np.stack([feature_rows[r["key"]] for r in rows])

    def charge(activity: str, seconds: float) -> None:
        nonlocal engine_s
        engine_s += seconds
        store.charge(activity, seconds, platform=platform, family=family.name, campaign=spec.name)

    def profile(configs: list[dict[str, Any]], role: str, show: bool = False) -> None:
        profile_configs(store, profiler, family, configs, campaign=spec.name, role=role,
                        activity="validation_profile" if role == "validation" else "profile",
                        progress=show and progress is True)

    # 1. validation set: its own seed stream, so it never depends on the strategy
    draw = _sampler(profiler, family)
    val_cfgs = draw(spec.validation_size, "random", _stream(spec.seed, "validation"), set())
    profile(val_cfgs, "validation", show=True)
    # 2. initial design (space-filling), shared by every strategy for the same seed; asked again on a resume, it
    #    only completes what a killed run left unfinished (stored measurements are reused, membership is idempotent)
    val_keys = {family.key(c) for c in val_cfgs}
    init = [c for c in draw(spec.initial_size, "sobol", _stream(spec.seed, "initial"), val_keys)
            if family.key(c) not in val_keys]
    profile(init, "train", show=True)

    bar = _Progress(spec, progress)
    result = CampaignResult(spec.name, "stopped", spec, platform)
    cost_model = _CostModel(spec.seed)
    strategy = get_strategy(spec.strategy)
    rng_base = _stream(spec.seed, "query")
    state = None
    model = None
    reached = any(r["met_streak"] >= spec.confirm for r in store.iterations(spec.name))
    for _ in range(max_iterations):
        train = store.members(spec.name, "train", status="ok")
        val = store.members(spec.name, "validation", status="ok")
        if len(train) < 2 or len(val) < 3:
            state = "failed"
            log.error("campaign %s: too few ok measurements to fit (%d train, %d validation)", spec.name,
                      len(train), len(val))
            break
        X_tr = encode(train)
        y_tr = np.asarray([r["min_ms"] for r in train])
        X_va = encode(val)
        y_va = np.asarray([r["min_ms"] for r in val])
        it = store.iteration_count(spec.name)
        # fit + evaluate
        t0 = time.perf_counter()
        model = get_model(spec.model)
        if "random_state" in model.get_params():
            model.set_params(random_state=spec.seed)
        model.fit(X_tr, y_tr)
        fault_point("fit")
        fit_s = time.perf_counter() - t0
        charge("fit", fit_s)
        t0 = time.perf_counter()
        m = evaluate(y_va, model.predict_dist(X_va), ci=True)
        charge("evaluate", time.perf_counter() - t0)
        ok_now = _targets_met(spec, m)
        met_streak = _met_streak(store, spec, len(train)) + 1 if ok_now else 0
        prof_s = store.profiling_seconds(campaign=spec.name)
        n_asked = len(store.members(spec.name, "train"))  # failed measurements count against the budget too
        budget_left = _budget_left(spec, n_asked, prof_s)
        reached = reached or met_streak >= spec.confirm
        done = met_streak >= spec.confirm and spec.stop_on_target
        rec = IterationRecord(it, len(train), prof_s, m["spearman"], m["spearman_lo"], m["spearman_hi"], m["mape"],
                              m["acc10"], m["coverage80"], fit_s, 0.0, ok_now)
        if done:
            state = "met"
        elif budget_left["exhausted"]:
            state = "met" if reached else "budget"
        if state is not None:
            store.add_iteration(spec.name, rec.__dict__, met_streak=met_streak)
            result.iterations.append(rec)
            bar.update(rec, budget_left)
            break
        # query
        t0 = time.perf_counter()
        k = spec.batch_size
        if spec.budget_samples is not None:
            k = min(k, spec.budget_samples - n_asked)
        pool = draw(spec.pool_size, "random", _stream(rng_base, it), set(store.member_keys(spec.name)))
        if not pool:
            state = "met" if reached else "exhausted"
            log.warning("campaign %s: no candidate left to profile (the replay table is used up)", spec.name)
            store.add_iteration(spec.name, rec.__dict__, met_streak=met_streak)
            result.iterations.append(rec)
            bar.update(rec, budget_left)
            break
        X_pool = encoder.transform(pool, validated=True)
        all_rows = store.members(spec.name, "train")

        def pool_cost(rows: list[dict[str, Any]] = all_rows, X: np.ndarray = X_pool) -> np.ndarray:
            cost_model.fit(encode(rows), np.asarray([r["cost_s"] for r in rows]))
            return cost_model.predict(X)

        ctx = QueryContext(candidates=pool, X=X_pool, cost_s=pool_cost,  # fitted only if the strategy asks
                           rng=np.random.default_rng(_stream(rng_base, it, 1)), model=model, X_train=X_tr,
                           y_train=y_tr)
        picked = strategy(ctx, k)
        query_s = time.perf_counter() - t0
        charge("query", query_s)
        rec.query_s = query_s
        store.add_iteration(spec.name, rec.__dict__, met_streak=met_streak)
        result.iterations.append(rec)
        bar.update(rec, budget_left)
        # profile
        profile([pool[i] for i in picked], "train")
    bar.close()
    state = state or "stopped"
    # export
    train = store.members(spec.name, "train", status="ok")
    result.n_train = len(train)
    result.n_validation = len(store.members(spec.name, "validation", status="ok"))
    if model is not None and bundle_path is not None:
        t0 = time.perf_counter()
        last = result.iterations[-1] if result.iterations else None
        metrics = ({"spearman": last.spearman, "spearman_lo": last.spearman_lo, "mape": last.mape,
                    "acc10": last.acc10, "coverage80": last.coverage80, "split": "validation"} if last else {})
        export_bundle(bundle_path, model, encoder, model_name=spec.model,
                      platform={"id": platform, "fingerprint": profiler.fingerprint, "protocol": protocol},
                      n_train=len(train), metrics=metrics, extra={"campaign": spec.name, "strategy": spec.strategy})
        charge("export", time.perf_counter() - t0)
        store.add_predictor(spec.name, bundle_path, metrics)
        result.bundle = bundle_path
    result.state = state
    store.set_campaign_state(spec.name, state)
    result.profiling_hours = store.profiling_seconds(campaign=spec.name, activity="profile") / 3600
    result.validation_hours = store.profiling_seconds(campaign=spec.name, activity="validation_profile") / 3600
    result.engine_s = engine_s
    result.wall_s = time.perf_counter() - t_wall
    if result.iterations:
        last = result.iterations[-1]
        result.metrics = {"spearman": last.spearman, "mape": last.mape, "acc10": last.acc10}
    return result


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
