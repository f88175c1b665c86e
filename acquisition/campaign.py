"""Campaigns: what a user asks the engine for (docs/design.md §5), validated before anything is written.

A campaign is a family x platform x strategy x model x targets x budget x seed x batch size x validation size.
Its whole state lives in the database (tables ``campaigns``, ``campaign_measurements``, ``iterations``,
``predictors``), so running a campaign that exists resumes it.

**The noise floor a campaign runs under** (:func:`noise_floor_of`): the platform's latest ``python -m
acquisition doctor`` result, else the noise ceiling of the family's re-measured blocks on that platform
(:mod:`acquisition.noise`), else none. The engine records it with the campaign (the fields ``noise_floor`` and
``noise_warnings`` of the stored spec, :data:`RECORDED_KEYS`: records, not settings, so a resume never conflicts
on them) and warns when a target is above what that noise allows (:func:`noise_floor_lines`): a verified
figure cannot exceed how well the measurement repeats.

Example:
    >>> spec = CampaignSpec(name="demo", family="mbconv", target_spearman=0.98, budget_samples=200)
    >>> spec.validate().batch_size
    20
    >>> CampaignSpec(name="x", family="mbconv", target_spearman=1.5).validate()
    Traceback (most recent call last):
    ...
    acquisition.campaign.CampaignError: target_spearman=1.5 is not allowed: expected a number in (0, 1]
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "AUTO_MODELS",
    "DEFAULT_STRATEGY",
    "RECORDED_KEYS",
    "TRANSFERS",
    "VERIFICATIONS",
    "CampaignError",
    "CampaignSpec",
    "describe_floor",
    "floor_identity",
    "noise_floor_lines",
    "noise_floor_of",
    "setting",
    "setting_fields",
]

DEFAULT_STRATEGY = "representative"
# cv: out-of-fold predictions of the random share (the default: measured closest to the never-seen truth);
# prequential: each batch's random share scored by the model fitted before it was measured; holdout: a validation
# set (acquisition.verification)
VERIFICATIONS = ("cv", "prequential", "holdout")
PIPELINE_MODES = ("auto", "on", "off")  # acquisition.loop.pipeline.pipelined
# model="auto": every iteration fits each of these (each in its K-fold committee; gp only while it is cheap,
# acquisition.engine.auto_models) and keeps the one whose out-of-fold ρ on the rows drawn independently of the
# models is highest, so the model is re-chosen as rows grow; linear costs ~nothing
AUTO_MODELS = ("gbt", "linear", "gp")
DEFAULT_BUDGET_SAMPLES = 1000
# transfer="auto": the initial design is the family's probe set and the sources the run was given are judged on
# it and used where they help (acquisition.transfer); "none": a seed-dependent initial design, no source
TRANSFERS = ("auto", "none")
# what the engine records in the stored spec (not settings: a resume keeps them and never conflicts on them)
RECORDED_KEYS = ("noise_floor", "noise_warnings")
log = logging.getLogger("latency_acquisition")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class CampaignError(ValueError):
    """Bad campaign arguments, or arguments that contradict the stored campaign of the same name."""


def _unit(name: str, v: float | None, *, optional: bool = True) -> None:
    if v is None and optional:
        return
    if not isinstance(v, int | float) or isinstance(v, bool) or not (0 < v <= 1) or math.isnan(v):
        raise CampaignError(f"{name}={v!r} is not allowed: expected a number in (0, 1]")


def _positive(name: str, v: float | None, *, integer: bool = False, optional: bool = True,
              minimum: float = 0.0) -> None:
    if v is None and optional:
        return
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > minimum
    if integer:
        ok = ok and float(v).is_integer()  # type: ignore[arg-type]
    if not ok:
        what = "an integer" if integer else "a number"
        raise CampaignError(f"{name}={v!r} is not allowed: expected {what} > {minimum:g}")


def setting(default: Any, kind: type, help: str, *, choices: tuple[str, ...] | None = None) -> Any:
    """A :class:`CampaignSpec` field that users set: its default, the type a command line parses it with, its help
    (``{default}`` is filled with the command's default) and its choices. ``run`` and ``ask`` make their flags
    from these (:func:`acquisition.cli.settings.add_setting_args`); ask/tell's settings are these fields."""
    return field(default=default, metadata={"setting": True, "type": kind, "help": help, "choices": choices})


def spec_defaults() -> dict[str, Any]:
    """Every :class:`CampaignSpec` field's default (the fields without one, ``name`` and ``family``, left out): a
    new campaign's settings before a command's own defaults go on top."""
    from dataclasses import MISSING

    return {f.name: f.default for f in fields(CampaignSpec) if f.default is not MISSING}


def setting_fields() -> list[Any]:
    """The :class:`CampaignSpec` fields a user sets (see :func:`setting`), in declaration order."""
    return [f for f in fields(CampaignSpec) if f.metadata.get("setting")]


@dataclass
class CampaignSpec:
    """Everything that defines a campaign; :meth:`validate` checks it and returns it."""

    name: str
    family: str
    device: str = "cpu"
    strategy: str = setting(DEFAULT_STRATEGY, str, "query strategy (default {default}): {{strategies}}")
    # re-chosen every iteration among AUTO_MODELS (docs: the model-choice study)
    model: str = setting("auto", str, "surrogate model (default {default}; auto: re-chosen each iteration among "
                         f"{', '.join(AUTO_MODELS)} by out-of-fold rho): {{{{models}}}}")
    target_spearman: float = setting(0.98, float, "verified Spearman target in (0, 1] (default {default})")
    target_acc10: float | None = setting(None, float, "also require this share of verified predictions within "
                                         "+-10 %% (0, 1] (default: not required)")
    target_mape: float | None = setting(None, float, "also require MAPE (%%) <= this (default: not required)")
    budget_hours: float | None = setting(None, float, "budget in device hours, the campaign's whole bill (default "
                                         "{default}; the campaign stops at whichever budget is spent first)")
    budget_samples: int | None = setting(None, int, "training samples budget (default {default})")
    batch_size: int = setting(20, int, "configs per iteration (default {default})")
    initial_size: int = setting(20, int, "initial design size (default {default})")
    validation_size: int = setting(200, int, "validation set size with --verification holdout (default {default})")
    # a small pool keeps the strategy's half of each batch near the space's density: on the TF-NAS table 60
    # candidates reached a verified rho with 0.57-0.69x the samples of 4,000 (docs/design-notes.md, issue 30)
    pool_size: int = setting(60, int, "candidates per query, at least twice the batch (default {default})")
    seed: int = setting(0, int, "seed, >= 0 (default {default})")
    # the streak rule: consecutive iterations meeting the target before the campaign stops
    confirm: int = setting(2, int, "consecutive iterations whose verified target is met before it counts (default "
                           "{default})")
    # cv / prequential: the random share, no device time; holdout: a validation set
    verification: str = setting("cv", str, "cv: judge the model by cross-validation on the randomly drawn training "
                                "rows, no device time spent on it; prequential: on each batch's random rows, "
                                "predicted before they were measured; holdout: profile a random validation set "
                                "first (default {default})", choices=VERIFICATIONS)
    # when the targets count as met (acquisition.stopping): bound, streak or a plug-in
    stop_rule: str = setting("bound", str, "when the target counts as met: bound (its one-sided 95 %% confidence "
                             "bound meets it), streak (the estimate, --confirm times, >= 50 rows) or a plug-in "
                             "(default {default}): {{stop_rules}}")
    folds: int = setting(5, int, "folds of the cross-validation committee (default {default})")  # K of the committee
    random_share: float = setting(0.5, float, "share of every batch drawn at random; the strategy picks the rest "
                                  "(default {default})")
    around: str | None = setting(None, str, "networks the campaign serves, comma-separated: torchvision:NAME, "
                                 "timm:NAME or files (network specs, decompositions, lists of names); part of every "
                                 "candidate draw is taken near their blocks of this family (default: none)")
    around_share: float = setting(0.5, float, "with --around: the share of every candidate draw taken near those "
                                  "blocks, the rest from the whole space (default {default})")
    pipeline: str = setting("auto", str, "on: choose the next batch while the device measures this one; off: one "
                            "step after the other; auto: on, except on a CPU whose engine has no core of its own or "
                            "where doctor found that fitting beside a measurement moves it (default {default})",
                            choices=PIPELINE_MODES)
    fidelity: str = "auto"  # auto: cheap measurements while the model is far off (acquisition.fidelity); full
    stop_on_target: bool = True  # False: keep acquiring to the budget (studies want whole learning curves)
    transfer: str = "none"  # auto: learn from the sources given to the run (acquisition.transfer); none: not
    cost_s: float | None = None  # ask/tell: device seconds charged per told measurement that gives no cost of its own
    # recorded by the engine, not set by the user (RECORDED_KEYS): the noise floor it ran under, the targets flagged
    noise_floor: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    noise_warnings: list[str] | None = field(default=None, compare=False, repr=False)

    def validate(self) -> CampaignSpec:
        from acquisition.strategies import get_strategy
        from surrogates import list_models

        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise CampaignError(f"campaign name {self.name!r} is not allowed: use 1-64 letters, digits, '_', '-' "
                                "or '.', starting with a letter or digit")
        _unit("target_spearman", self.target_spearman, optional=False)
        _unit("target_acc10", self.target_acc10)
        _positive("target_mape", self.target_mape)
        _positive("budget_hours", self.budget_hours)
        _positive("budget_samples", self.budget_samples, integer=True)
        _positive("batch_size", self.batch_size, integer=True, optional=False)
        _positive("initial_size", self.initial_size, integer=True, optional=False, minimum=4)
        _positive("validation_size", self.validation_size, integer=True, optional=False, minimum=9)
        _positive("pool_size", self.pool_size, integer=True, optional=False)
        _positive("confirm", self.confirm, integer=True, optional=False)
        if self.pipeline not in PIPELINE_MODES:
            raise CampaignError(f"pipeline={self.pipeline!r} is not allowed: expected one of "
                                f"{', '.join(PIPELINE_MODES)}")
        if self.verification not in VERIFICATIONS:
            raise CampaignError(f"verification={self.verification!r} is not allowed: expected one of "
                                f"{', '.join(VERIFICATIONS)}")
        _positive("folds", self.folds, integer=True, optional=False, minimum=1)
        r = self.random_share
        if not isinstance(r, int | float) or isinstance(r, bool) or not (0 <= r <= 1):
            raise CampaignError(f"random_share={r!r} is not allowed: expected a number in [0, 1]")
        if self.verification != "holdout" and r == 0 and self.strategy != "random":
            raise CampaignError(f"random_share=0 is not allowed with verification={self.verification!r}: it scores "
                                "the randomly drawn share of each batch (use verification='holdout')")
        r = self.around_share
        if not isinstance(r, int | float) or isinstance(r, bool) or not (0 <= r <= 1):
            raise CampaignError(f"around_share={r!r} is not allowed: expected a number in [0, 1]")
        _check_around(self.around)
        from acquisition.fidelity import FIDELITIES

        if self.fidelity not in FIDELITIES:
            raise CampaignError(f"fidelity={self.fidelity!r} is not allowed: expected one of {', '.join(FIDELITIES)}")
        if not isinstance(self.stop_on_target, bool):
            raise CampaignError(f"stop_on_target={self.stop_on_target!r} is not allowed: expected True or False")
        if self.transfer not in TRANSFERS:
            raise CampaignError(f"transfer={self.transfer!r} is not allowed: expected one of {', '.join(TRANSFERS)}")
        c = self.cost_s
        if c is not None and (not isinstance(c, int | float) or isinstance(c, bool) or not math.isfinite(c) or c < 0):
            raise CampaignError(f"cost_s={c!r} is not allowed: expected a number of seconds >= 0")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise CampaignError(f"seed={self.seed!r} is not allowed: expected an integer >= 0")
        get_strategy(self.strategy)  # unknown -> StrategyError naming it
        from acquisition.stopping import StopRuleError, get_stop_rule

        try:
            get_stop_rule(self.stop_rule)
        except StopRuleError as e:
            raise CampaignError(str(e)) from None
        if self.model != "auto" and self.model not in list_models():
            raise CampaignError(f"model {self.model!r} is unknown: available models are auto, "
                                f"{', '.join(list_models())}")
        if self.budget_hours is None and self.budget_samples is None:
            self.budget_samples = DEFAULT_BUDGET_SAMPLES  # a campaign always ends
        if self.budget_samples is not None and self.budget_samples < self.initial_size:
            raise CampaignError(f"budget_samples={self.budget_samples} is below initial_size={self.initial_size}")
        return self

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CampaignSpec:
        names = {f.name for f in fields(cls)}
        d = dict(d)
        if "verification" not in d:  # a campaign stored before schema 3 ran the holdout way, all by its strategy
            d.update(verification="holdout", random_share=0.0)
        if "fidelity" not in d:  # a campaign stored before the fidelity lever measured everything at full fidelity
            d["fidelity"] = "full"
        if "transfer" not in d:  # a campaign stored before transfer: seed-dependent initial design, no source
            d["transfer"] = "none"
        if "stop_rule" not in d:  # a campaign stored before stop rules: the target on `confirm` iterations
            d["stop_rule"] = "streak"
        return cls(**{k: v for k, v in d.items() if k in names})

    def conflicts(self, stored: CampaignSpec, given: set[str]) -> list[str]:
        """Fields the user gave explicitly that differ from the stored campaign (a resume must not change them)."""
        out = []
        for f in fields(self):
            if f.name in RECORDED_KEYS:
                continue
            if f.name in given and getattr(self, f.name) != getattr(stored, f.name):
                out.append(f"{f.name}={getattr(self, f.name)!r} (stored: {getattr(stored, f.name)!r})")
        return out


def _check_around(text: str | None) -> None:
    """``around``'s entries are model names (``torchvision:NAME``, ``timm:NAME``) or existing files."""
    if text is None:
        return
    from profiler.zoo import ModelNameError, split_name

    items = [t.strip() for t in str(text).split(",") if t.strip()] if isinstance(text, str) else []
    if not items:
        raise CampaignError(f"around={text!r} is not allowed: name networks (torchvision:NAME, timm:NAME or files)")
    for t in items:
        if os.path.isfile(t):
            continue
        try:
            split_name(t)
        except ModelNameError:
            raise CampaignError(f"around entry {t!r} is neither a model name (torchvision:NAME, timm:NAME) nor a "
                                "file") from None


DOCTOR_FIELDS = ("id", "created_at", "verdict", "probe_family", "probe_n", "median_diff", "worst_diff", "within10",
                 "spearman", "reasons")


def noise_floor_of(store: Any, platform: str, family: str, *, protocol: str | None = None) -> dict[str, Any]:
    """The noise floor a campaign of ``family`` on ``platform`` runs under, as plain data: ``source`` is
    ``doctor`` (the platform's latest ``doctor`` result: its id, date, verdict and figures), ``repeats`` (the
    family's re-measured blocks on that platform and ``protocol``: ``n`` and the figures) or ``none``.

    Example:
        >>> import os, tempfile
        >>> from acquisition.store import Store
        >>> with Store(os.path.join(tempfile.mkdtemp(), "f.sqlite")) as store:
        ...     noise_floor_of(store, "p1", "mbconv")
        {'source': 'none'}
    """
    row = store.latest_noise_floor(platform)
    if row:
        return {"source": "doctor", **{k: row.get(k) for k in DOCTOR_FIELDS}}
    if store.has_table("repeats"):
        from acquisition.noise import noise_ceiling

        c = noise_ceiling(store, family, platform=platform, protocol=protocol)
        if c is not None:
            return {"source": "repeats", "family": family, "n": c.n, "median_diff": c.median_diff,
                    "worst_diff": c.worst_diff, "within10": c.within10, "spearman": c.spearman}
    return {"source": "none"}


def floor_identity(floor: dict[str, Any] | None) -> tuple[Any, ...]:
    """What makes two recorded floors the same floor: a doctor run's id; the re-measured blocks of a family (more
    repeats of the same family refine it, they are not a new floor); none."""
    if not floor:
        return ("unrecorded",)
    src = floor.get("source")
    return (src, floor.get("id")) if src == "doctor" else (src, floor.get("family"))


def _where(floor: dict[str, Any]) -> str:
    if floor["source"] == "doctor":
        return f"doctor, {str(floor.get('created_at') or '')[:10]}"
    return f"{floor['n']} re-measured {floor['family']} blocks"


def noise_floor_lines(spec: CampaignSpec, floor: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(warnings, info)``: one line for each target above what ``floor`` allows (a ±10 % target above the share
    of blocks that repeat within ±10 %; a ρ target above the ρ between repeated measurements), and, when no
    floor is known, one line suggesting ``python -m acquisition doctor``. The campaign still runs: a target
    above the floor can be met by chance but not verified."""
    if floor.get("source", "none") == "none":
        return [], [f"campaign {spec.name}: no noise floor measured on this platform: `python -m acquisition doctor` "
                    "measures how well this machine repeats a measurement, so that a target above it is flagged"]
    out = []
    w10, rho = floor.get("within10"), floor.get("spearman")
    if spec.target_acc10 is not None and w10 is not None and spec.target_acc10 > w10:
        out.append(f"campaign {spec.name}: a ±10 % target of {100 * spec.target_acc10:.0f} % on a machine where "
                   f"{100 * w10:.0f} % of blocks repeat within ±10 % ({_where(floor)}): the target cannot be "
                   "verified")
    if rho is not None and spec.target_spearman > rho:
        out.append(f"campaign {spec.name}: a ρ target of {spec.target_spearman} on a machine where two measurements "
                   f"of the same blocks rank at ρ {rho:.4f} ({_where(floor)}): the target cannot be verified")
    return out, []


def describe_floor(floor: dict[str, Any] | None) -> str:
    """One cell: the floor's verdict (or source) and figures, or why there is none."""
    if not floor:
        return "not recorded (the campaign ran before noise floors were recorded)"
    if floor.get("source") == "none":
        return "no doctor run on this platform"

    def pct(v: Any, digits: int) -> str:
        return "–" if v is None else f"{100 * v:.{digits}f} %"

    figures = (f"median diff. {pct(floor.get('median_diff'), 1)}, worst {pct(floor.get('worst_diff'), 0)}, "
               f"{pct(floor.get('within10'), 1)} within ±10 %")
    if floor["source"] == "doctor":
        return f"{floor.get('verdict')}: {figures} ({_where(floor)})"
    return f"no doctor run; {figures} ({_where(floor)})"


def check_noise_floor(store: Any, spec: CampaignSpec, platform: str, family: str, protocol: str | None,
                      first: bool) -> list[str]:
    """Read the noise floor campaign ``spec`` runs under (:func:`noise_floor_of`) and record
    it with the campaign when it is new; warn (log) for each target above it, or say (info) that no floor is
    known. The first call of a session always logs; later calls (every iteration) only when a new floor
    appeared (a doctor run, re-measured blocks where there were none), once. Never refuses to run.
    Returns the warnings logged. ``first``: the first check of this session."""
    row = store.get_campaign(spec.name)
    if row is None:
        return []
    stored = row["spec"].get("noise_floor")
    floor = noise_floor_of(store, platform, family, protocol=protocol)
    new = floor_identity(floor) != floor_identity(stored)
    if not (first or new):
        return []
    warnings, info = noise_floor_lines(spec, floor)
    for line in warnings:
        log.warning("%s", line)
    for line in info:
        log.info("%s", line)
    if new and not getattr(store, "readonly", False):
        told = list(row["spec"].get("noise_warnings") or [])
        told += [w for w in warnings if w not in told]
        store.update_campaign_spec(spec.name, {**row["spec"], "noise_floor": floor,
                                                         "noise_warnings": told})
    return warnings
