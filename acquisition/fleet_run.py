"""Campaigns on a fleet: one campaign per platform, all at once, the coordinator the single writer.

:func:`run_fleet` runs (or resumes) one campaign for each platform of a :class:`profiler.fleet.Fleet`: the
same steps as :func:`acquisition.engine.run_campaign` (:class:`acquisition.engine.CampaignLoop`: ask, measure,
tell), with each campaign's batch spread over its platform's actors and every result told (stored and charged,
one transaction) as it arrives. While one campaign fits, the actors of the others keep measuring what they
were sent.

**Names.** One platform: the campaign is named as given. Several: ``NAME-PLATFORM`` for each. A campaign the store
already holds for a platform keeps its name, so running the same command again resumes every one of them (a
coordinator killed and restarted resumes, as ``run`` does), even when the fleet has gained or lost platforms.

**Transfer as it becomes available.** A campaign whose ``transfer`` is ``auto`` learns from every other platform
of the store with enough measurements of the family (:func:`acquisition.transfer.store_sources`), and the list
is read again before each of its fits: a platform of the same fleet joins as a source once it has
:data:`acquisition.transfer.MIN_SOURCE_ROWS` ok rows, and is refitted each time its rows grew by half. The
engine judges every source on the campaign's own rows at every iteration and ignores those that disagree.

**Faults.** A dead actor's configurations go back to its platform's queue (:mod:`profiler.fleet`); the
device time it spent on the unfinished block is charged as ``lost_profile`` to the campaign (part of its bill).
A platform with no device left stops its campaign as ``stopped`` (resumable); the others go on.

Example (a private local Ray instance; two replay-backed actors)::

    from profiler.fleet import ActorSpec, Fleet, connect
    from acquisition.fleet_run import run_fleet
    connect("local")
    specs = [ActorSpec(oracle, num_cpus=0) for _ in range(2)]
    with Store("fleet.sqlite") as store, Fleet(specs) as fleet:
        results = run_fleet(store, CampaignSpec(name="tfnas", family=table.family.name), fleet, table.family)
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from acquisition.loop.pipeline import pipelined
from acquisition.store import Store, fault_point

__all__ = ["LOST_ACTIVITY", "campaign_names", "lost_charger", "profile_fleet", "run_fleet"]

log = logging.getLogger("latency_profiler.fleet")

LOST_ACTIVITY = "lost_profile"


def campaign_names(name: str, platforms: Sequence[str], store: Store | None = None) -> dict[str, str]:
    """``{platform: campaign name}``: ``name`` for a single platform, ``name-PLATFORM`` for several; a campaign
    the store already holds for a platform keeps its name (a fleet that lost or gained platforms since resumes
    the same campaigns)."""
    plats = list(dict.fromkeys(platforms))
    out = {p: name if len(plats) == 1 else f"{name}-{p}" for p in plats}
    if store is not None:
        stored = store.get_campaign(name)
        for p in plats:
            if store.get_campaign(f"{name}-{p}") is not None:
                out[p] = f"{name}-{p}"
            elif stored is not None and stored["platform"] == p:
                out[p] = name
            elif stored is not None and out[p] == name:  # NAME belongs to another platform
                out[p] = f"{name}-{p}"
    return out


def lost_charger(store: Store, family: Any, campaign_of: Callable[[Any], str | None] | None = None
                 ) -> Callable[[Any, Any, float, str], None]:
    """An ``on_lost`` for :class:`profiler.fleet.Fleet`: charge a dead actor's unfinished block as
    ``lost_profile`` (to the job's campaign, when ``campaign_of(job)`` names one)."""

    def charge(pool: Any, job: Any, seconds: float, reason: str) -> None:
        campaign = campaign_of(job) if campaign_of is not None else None
        store.charge(LOST_ACTIVITY, seconds, platform=pool.platform_id, family=family.name, campaign=campaign,
                     note=reason[:500])

    return charge


@dataclass(eq=False)
class _Plan:
    """One platform's share of :func:`profile_fleet`."""

    pool: Any
    summary: Any
    left: int


def profile_fleet(store: Store, fleet: Any, family: Any, configs: Sequence[dict[str, Any]], *,
                  retry_failed: bool = False, progress: bool = True, protocol: Any = None) -> dict[str, Any]:
    """Profile ``configs`` on every platform of ``fleet`` at once (what ``profile --ray-address`` does).

    Per platform exactly :func:`acquisition.profiling.profile_configs`: stored configurations are reused, the
    others spread over the platform's actors and each result stored with its ledger row as it arrives. A dead
    actor's unfinished block is charged as ``lost_profile``. A platform that loses every device stops with the
    reason in its summary's ``error``; the others go on. Returns ``{platform: ProfileSummary}``."""
    from tqdm import tqdm

    from acquisition.profiling import plan_profile, record_profiled
    from profiler.fleet import FleetError, Job

    plans: list[_Plan] = []
    for pool in fleet.pools.values():
        summary, todo = plan_profile(store, pool, family, configs, retry_failed=retry_failed, protocol=protocol)
        plan = _Plan(pool, summary, len(todo))
        plans.append(plan)
        for cfg, key, d in todo:
            fleet.submit(pool, Job(family, cfg, protocol, owner=plan, tag=(key, d)))
    fleet.on_lost = lost_charger(store, family)
    bar = tqdm(total=sum(p.left for p in plans), desc=f"profile {family.name}", unit="block",
               disable=not progress or not any(p.left for p in plans), file=sys.stderr, dynamic_ncols=True,
               mininterval=0.5)
    try:
        while any(p.left for p in plans):
            for job, m in fleet.pump(0.5):
                plan, (key, d) = job.owner, job.tag
                fault_point("profile")
                record_profiled(store, plan.summary, m, key, d, protocol=protocol or plan.pool.protocol)
                plan.left -= 1
                bar.update(1)
            for plan in plans:
                if not plan.left:
                    continue
                try:
                    fleet.check_alive(plan.pool)
                except FleetError as e:
                    plan.summary.error, plan.left = str(e), 0
                    fleet.cancel(plan)
            bar.set_postfix_str(fleet.postfix(), refresh=False)
    finally:
        bar.close()
    return {p.pool.platform_id: p.summary for p in plans}


@dataclass(eq=False)
class _Runner:
    """One platform's campaign in the fleet."""

    pool: Any
    loop: Any
    bundle: str | None
    done: bool = False
    error: str | None = None
    source_rows: dict[str, int] = field(default_factory=dict)
    fixed_sources: list[Any] = field(default_factory=list)
    auto_sources: bool = True
    pipelined: bool = False
    inflight: list[list[Any]] = field(default_factory=list)  # asks sent and not told, as asked together
    draining: bool = False  # the campaign ended with asks in flight: their results are awaited, the rest dropped
    thought: str | None = None  # the batch in flight the engine last thought ahead beside (once per batch)

    @property
    def outstanding(self) -> int:
        return sum(len(g) for g in self.inflight)

    def told(self, ask: Any) -> None:
        for g in self.inflight:
            if ask in g:
                g.remove(ask)
                break
        self.inflight = [g for g in self.inflight if g]


def run_fleet(store: Store, spec: Any, fleet: Any, family: Any, *, bundle_dir: str | None = None,
              progress: bool = False, sources: Sequence[Any] = (), transfer_platforms: Sequence[str] = (),
              max_iterations: int = 10_000, judge: Callable[[Any, set[str]], dict[str, float]] | None = None,
              fit_workers: int | None = None) -> dict[str, Any]:
    """Run (or resume) ``spec`` on every platform of ``fleet`` at once (see the module docstring).

    ``bundle_dir``: each campaign's predictor bundle is exported there as ``CAMPAIGN.bundle``. ``sources``:
    extra :class:`acquisition.transfer.TransferSource` s (bundles) for every campaign; ``transfer_platforms``:
    learn from these store platforms only (default: every other one, read again before each fit).
    Returns ``{platform: CampaignResult}``; a platform that lost every device ends ``stopped``, with the reason
    in ``result.fleet_error``. ``fit_workers``: worker processes for the campaigns' fits (``None``:
    :func:`~acquisition.loop.fitpool.default_workers`, one per campaign up to the cores; 0: in the coordinator);
    a single campaign fits in the coordinator, its committees' fold models spread over the workers (by default
    one per fold up to the cores, none for a CPU platform)."""
    from threadpoolctl import threadpool_limits

    from acquisition.engine import CampaignLoop, open_campaign
    from acquisition.loop.fitpool import FitPool, default_workers, warm_imports

    t_wall = time.perf_counter()
    warm_imports()
    names = campaign_names(spec.name, list(fleet.pools), store)
    runners: list[_Runner] = []
    with threadpool_limits(limits=1):  # one thread: see acquisition.engine
        for plat, pool in fleet.pools.items():
            store.ensure_platform(plat, pool.fingerprint, pool.device.spec)
            sp = replace(spec, name=names[plat], device=pool.device.spec)
            sp = open_campaign(store, sp, plat, protocol=pool.protocol.id)
            r = _Runner(pool, None, os.path.join(bundle_dir, f"{sp.name}.bundle") if bundle_dir else None,
                        fixed_sources=list(sources), auto_sources=sp.transfer != "none" and not transfer_platforms)
            first = _store_sources(store, family, plat, sp, transfer_platforms)
            r.source_rows = _source_rows(first)
            r.loop = CampaignLoop(store, sp, pool, family, progress=False,
                                  sources=first + r.fixed_sources if sp.transfer != "none" else [],
                                  judge=judge, max_fits=max_iterations)
            r.pipelined = pipelined(sp, pool, store)
            if r.pipelined:  # each actor holds its share of a batch while the coordinator thinks
                fleet.depth = max(fleet.depth, -(-sp.batch_size // max(1, pool.size)) + 1)
            runners.append(r)
        fleet.on_lost = lost_charger(store, family, lambda job: job.owner.loop.spec.name
                                     if isinstance(job.owner, _Runner) else None)
        t_run = time.perf_counter()
        before = {id(s): s.device_s for p in fleet.pools.values() for s in p.slots}  # measured before this run
        workers = default_workers(len(runners), members=_members(runners)) if fit_workers is None \
            else int(fit_workers)
        with (FitPool(workers, lazy=len(runners) == 1) if workers > 0 else contextlib.nullcontext()) as fits:
            if fits is not None and len(runners) == 1:  # one campaign: its committees' fold models in the workers
                runners[0].loop.models.member_pool, fits = fits, None
            _drive(store, fleet, family, runners, progress, fits)
        clocks = _charge_idle(store, fleet, family, runners, t_run, before)
        results = {}
        for r in runners:
            res = results[r.pool.platform_id] = r.loop.result(r.bundle, t_wall)
            res.fleet_error = r.error
            res.device = clocks[r.pool.platform_id]
    return results


def _members(runners: list[_Runner]) -> int:
    """A single campaign's fold models to fit in worker processes (:func:`~acquisition.loop.fitpool.default_workers`):
    its folds, unless its platform is a CPU (the actors may measure on this machine's cores)."""
    if len(runners) != 1 or (getattr(runners[0].pool, "fingerprint", None) or {}).get("kind") == "cpu":
        return 0
    return int(runners[0].loop.spec.folds)


def _charge_idle(store: Store, fleet: Any, family: Any, runners: list[_Runner], t0: float,
                 before: dict[int, float]) -> dict[str, Any]:
    """Each actor's seconds in this run that it did not measure (waiting for the coordinator, or for work),
    charged as ``device_idle`` to its platform's campaign (note: the actor); returns each platform's
    :class:`~acquisition.loop.pipeline.DeviceTime` (the sums over its actors)."""
    from acquisition.loop.pipeline import IDLE_ACTIVITY, DeviceTime

    now = time.perf_counter()
    by_platform = {r.pool.platform_id: r for r in runners}
    clocks = {p: DeviceTime(pipelined=r.pipelined) for p, r in by_platform.items()}
    slots = [s for p in fleet.pools.values() for s in p.slots] + list(fleet.retired)
    for slot in slots:
        r = by_platform.get(slot.info.get("platform"))
        if r is None:
            continue
        wall = max(0.0, (slot.ended or now) - max(slot.started, t0))
        busy = min(wall, slot.device_s - before.get(id(slot), 0.0))
        c = clocks[r.pool.platform_id]
        c.wall_s, c.busy_s, c.idle_s = c.wall_s + wall, c.busy_s + busy, c.idle_s + (wall - busy)
        if wall - busy > 0:
            store.charge(IDLE_ACTIVITY, wall - busy, platform=r.pool.platform_id, family=family.name,
                         campaign=r.loop.spec.name, note=f"actor {slot.label}")
    return clocks


def _submit(fleet: Any, family: Any, r: _Runner, asks: Sequence[Any], groups: list[list[Any]]) -> None:
    from profiler.fleet import Job

    cheap = r.loop.cheap_protocol
    for a in asks:
        proto = cheap if cheap is not None and a.protocol == cheap.id else None
        fleet.submit(r.pool, Job(family, a.config, proto, owner=r, tag=a))
    r.inflight.extend(groups)


def _step(store: Store, fleet: Any, family: Any, r: _Runner, fits: Any = None) -> None:
    """``r``'s next asks: the ordinary next step when nothing is in flight; pipelined, the next batch while one is
    measured (its actors hold their share of it meanwhile); a campaign that ended with asks in flight drops those
    not sent to an actor and waits for the others (:mod:`acquisition.loop.pipeline`). With ``fits`` (a
    :class:`~acquisition.loop.fitpool.FitPool`), a step that fits first sends its fit to a worker and returns;
    it goes on at a later call, once the fit is back."""
    from acquisition.loop.pipeline import batches, can_think_ahead, last_batch, open_batches

    ahead = r.loop.models.ahead
    if fits is not None and ahead is not None and not fits.ready(ahead[1]):
        return  # its fit is still out: nothing to do here until it is back (the loop polls often meanwhile)
    if r.loop.state is not None and r.inflight:
        if not r.draining:
            dropped = fleet.unqueue(r)
            for job in dropped:
                r.told(job.tag)
            if dropped:
                r.loop.store.drop_asks(r.loop.spec.name, [job.tag.as_row() for job in dropped])
            r.draining = True
        return
    if not r.inflight:
        _refresh_sources(store, family, r)
        if fits is not None and _fitting(r, fits, bool(r.loop.state is None and r.loop.design.complete()
                                                       and not r.loop.pending())):
            return
        asks = r.loop.next_asks()
        r.loop.ahead_data = None  # the step did not fit, or fitted: not the next fit's rows
        if not asks:
            r.done = True
            return
        _submit(fleet, family, r, asks, batches(asks))
    label = last_batch([a for g in r.inflight for a in g])
    if r.pipelined and open_batches(r.inflight) == 1 and r.loop.state is None and r.thought != label:
        fleet.dispatch()  # the actors take their share of the batch before the engine thinks
        _refresh_sources(store, family, r)
        if fits is not None and _fitting(r, fits, bool(can_think_ahead(r.loop))):
            return
        # once per batch in flight, as on one device (acquisition.loop.pipeline.drive): a step that asked for
        # nothing (the budget is spoken for) would otherwise fit again on each result of the batch that comes in
        r.thought = label
        more = r.loop.ask_ahead()
        r.loop.ahead_data = None  # the step did not fit, or fitted: not the next fit's rows
        if more:
            _submit(fleet, family, r, more, [list(more)])


def _fitting(r: _Runner, fits: Any, due: bool) -> bool:
    """Whether ``r`` waits for its fit in a worker (sent now if it is due and not sent yet): meanwhile the
    coordinator tells the other campaigns' results and sends their batches."""
    return due and not r.loop.prefetch(fits)


def _drive(store: Store, fleet: Any, family: Any, runners: list[_Runner], progress: bool,
           fits: Any = None) -> None:
    from tqdm import tqdm

    from profiler.fleet import FleetError

    bar = tqdm(desc=f"fleet {family.name}", unit="block", disable=not progress, file=sys.stderr,
               dynamic_ncols=True, mininterval=0.5)
    try:
        while True:
            for r in runners:
                if not r.done:
                    _step(store, fleet, family, r, fits)
            if all(r.done for r in runners):
                return
            out = [r.loop.models.ahead[1] for r in runners if fits is not None and not r.done
                   and r.loop.models.ahead is not None and not r.loop.models.ahead[1].future.done()]
            arrived = fleet.pump(0.02 if out else 0.5)  # a fit in a worker: back to its campaign soon after
            if out and not arrived:
                fits.wait(out, 0.05)
            for job, m in arrived:
                r = job.owner
                fault_point("profile")
                r.loop.tell(job.tag, m)
                r.told(job.tag)
                bar.update(1)
            for r in runners:
                if r.done or not r.outstanding:
                    continue
                try:
                    fleet.check_alive(r.pool)
                except FleetError as e:
                    log.warning("campaign %s stops: %s", r.loop.spec.name, e)
                    r.error, r.done, r.inflight = str(e), True, []
                    fleet.cancel(r)
                    r.loop.finish("stopped")
            if progress:
                states = ", ".join(f"{r.loop.spec.name}: {_state(r)}" for r in runners)
                bar.set_postfix_str(f"{states} | {fleet.postfix()}", refresh=False)
    finally:
        bar.close()


def _state(r: _Runner) -> str:
    if r.error:
        return "no device"
    if r.done:
        return r.loop.state or "done"
    rec = r.loop.records[-1] if r.loop.records else None
    return f"rho {rec.spearman:.3f} at {rec.n_train}" if rec is not None and rec.spearman == rec.spearman else \
        "designing"


def _store_sources(store: Store, family: Any, platform: str, spec: Any, platforms: Sequence[str]) -> list[Any]:
    if spec.transfer == "none":
        return []
    from acquisition.transfer import store_sources

    return store_sources(store, family, platform, list(platforms) if platforms else "auto")


def _source_rows(sources: Sequence[Any]) -> dict[str, int]:
    return {s.name: len(s.configs) for s in sources}


def _refresh_sources(store: Store, family: Any, r: _Runner) -> None:
    """Read the store's sources again before a fit: a platform that reached enough rows joins, one that grew
    by half is refitted (the engine judges them all again)."""
    if not r.auto_sources:
        return
    now = _store_sources(store, family, r.loop.platform, r.loop.spec, ())
    rows = _source_rows(now)
    grew = set(rows) != set(r.source_rows) or any(n >= 1.5 * r.source_rows.get(k, 0) for k, n in rows.items())
    if not grew:
        return
    log.info("campaign %s: transfer sources now %s", r.loop.spec.name, ", ".join(f"{k} ({n} rows)"
                                                                                 for k, n in rows.items()))
    r.source_rows = rows
    r.loop.sources = now + r.fixed_sources  # fitted again, and judged again, at the next fit
