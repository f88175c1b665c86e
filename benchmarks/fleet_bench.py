"""Fleet benchmark (issue 15): scaling over actors, the coordinator's overhead, and faults, on a local Ray instance.

Run it alone on the machine (it times wall clock; anything else running distorts it), from the repository root:

    python benchmarks/fleet_bench.py all                     # every section (about 10 minutes on 2 cores)
    python benchmarks/fleet_bench.py scaling --repeats 3     # throughput with 1, 2, 4, 8 actors
    python benchmarks/fleet_bench.py overhead                # coordinator ms per measurement, largest fleet
    python benchmarks/fleet_bench.py fault                   # an actor killed mid-run: requested = stored = charged
    python benchmarks/fleet_bench.py campaign                # a campaign's wall time with 1, 2, 4, 8 actors
    python benchmarks/fleet_bench.py fits                    # two platforms' campaigns: fits in workers or not
    python benchmarks/fleet_bench.py all --quick             # a dry run: fewer blocks, sizes and repeats

Every actor is replay-backed (:class:`studies.replay.ReplayOracle` over the TF-NAS ``xeon`` rows of
``../shared/data/tfnas_mbconv_latency.csv``; no device is measured, so the actors do not distort each other) and
reserves no CPU (``num_cpus=0``), on one private instance (``profiler.fleet.connect("local")``). Every run
goes through the real coordinator path: :func:`acquisition.profiling.profile_configs` (or
:func:`acquisition.fleet_run.run_fleet`) into a fresh SQLite store, so dispatch, result transfer and the store
write (measurement + ledger row, one transaction) are all included. Actors are started before the clock starts
and each does one untimed warm-up block.

- ``scaling``: realtime actors (each answer takes the block's ``ProtocolCost`` in wall time, ~0.22 s for these
  rows) with 1, 2, 4, 8 actors, ``--blocks-per-actor`` blocks per actor, ``--repeats`` runs per size with the
  sizes interleaved (each run draws its own rows). Figures, medians over the repeats: throughput (measurements/s
  of the ``profile_configs`` call), speed-up against 1 actor, efficiency = speed-up / actors (target >= 0.8 up to
  8), the ideal throughput = blocks / (sum of the blocks' costs / actors) and the share of it reached.
- ``overhead``: actors that answer at once (``realtime=False``) with 1, 2, 4, 8 actors over ``--overhead-blocks``
  blocks: wall ms per measurement (with actors that answer at once, the coordinator's loop time), the driver
  process's CPU ms per measurement (``time.process_time``: Python and Ray's threads in the coordinator), and,
  apart, ``Store.record`` alone of the same measurements into a fresh store (wall and CPU ms per record; again
  with ``PRAGMA synchronous = FULL``, the store's setting before it chose ``NORMAL``). "Largest fleet it can keep
  busy", by calculation: block cost / coordinator seconds per measurement at the largest size (CPU, and wall: the
  coordinator's thread also waits on the store's commit), for the TF-NAS median cost, a 1 s and a 0.05 s block;
  by measurement: realtime actors whose every block costs ``--fast-cost-ms`` (20 ms), so that the coordinator
  and not the actors is the bottleneck, with 1 (the per-call overhead alone), 4, 8, 16, 32 actors, one run per
  size: efficiency = throughput / (actors / cost); the largest size whose efficiency stays >= 0.8 is reported.
- ``fault``: ``--fault-blocks`` configurations through ``profile_configs`` over ``--fault-actors`` (4) realtime
  actors, one actor killed (``ray.kill``) once a third of them is stored, half-way into its current block
  (chosen at the store's write in the coordinator's thread, killed from a timer thread); then a small TF-NAS
  campaign (``run_fleet``, ``--fault-budget`` samples, no stop on target) with one actor killed the same way once
  a third of the budget is stored. Counts: requested (configurations asked; for the campaign, jobs submitted),
  stored (measurements), charged (ledger rows with a measurement id), duplicates (keys stored twice plus
  measurements charged twice: must be 0), lost_profile seconds (the killed actor's unfinished block, charged
  apart), jobs requeued, replacements requested and the pool's size at the end.

- ``fits``: two platforms (the TF-NAS table's Xeon and Titan rows), ``--fits-actors`` realtime actors each, one
  campaign each (``--campaign-budget`` samples, no stop on the target), their fits in the coordinator's loop
  (``fit_workers=0``) against worker processes (the default): wall time, engine seconds, actors' idle share,
  ``--repeats`` runs of each, interleaved, and the speed-up paired per repeat.
- ``campaign``: a TF-NAS campaign (``run_fleet``, ``--campaign-budget`` samples, no stop on the target) with 1, 2,
  4, 8 realtime actors at the default batch of 20, then 8 actors with a batch of 80: wall time and its speed-up,
  the engine's seconds (fits, verification, queries run in the coordinator while the devices wait) and the device
  seconds; ``--fit-workers 0,default`` compares fit settings (0: all in the coordinator; the default spreads a
  committee's fold models over worker processes), ``--repeats`` rounds of each, interleaved (default 1).

A compact table per section goes to stdout, progress to stderr, and each section's figures (every run's too)
to ``--out``/``fleet_SECTION.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from acquisition.fleet_run import LOST_ACTIVITY, lost_charger, run_fleet  # noqa: E402
from acquisition.profiling import profile_configs  # noqa: E402
from acquisition.store import Store  # noqa: E402
from profiler.fleet import ActorSpec, Fleet, connect, disconnect  # noqa: E402
from studies.replay import ProtocolCost, ReplayOracle, ReplayTable  # noqa: E402

TFNAS = os.path.join(ROOT, "..", "shared", "data", "tfnas_mbconv_latency.csv")
XEON = "xeon_gold6130_bs1_1thread_pytorch1.1"
TFNAS_PARAMS = ["input_hw", "cin", "mid_channels", "se_channels", "cout", "kernel", "stride", "act"]
TITAN = "titan_rtx_bs32_pytorch1.1"
SECTIONS = ("scaling", "overhead", "fault", "campaign", "fits")


def log(msg: str) -> None:
    """Progress, to stderr."""
    print(msg, file=sys.stderr, flush=True)


def load_table(path: str = TFNAS, device: str = XEON, family: Any = None) -> ReplayTable:
    """The TF-NAS MBConv rows of one device (default the Xeon: one thread, batch 1); ``family``: another table's
    (two devices of one block family are two platforms of it)."""
    return ReplayTable.from_csv(path, params=TFNAS_PARAMS, latency_col="latency_ms", where=[f"device={device}"],
                                family=family)


def constant_cost(seconds: float) -> ProtocolCost:
    """A :class:`ProtocolCost` that charges every block ``seconds`` (its overhead alone)."""
    return ProtocolCost(overhead_s=seconds, warmup_s=0.0, warmup_min=0, min_seconds=0.0, min_repeats=0,
                        max_seconds=0.0)


def block_costs(oracle: ReplayOracle) -> np.ndarray:
    """Each table row's cost (s) under the oracle's cost model."""
    table = oracle.table
    return np.asarray(table.cost_s if table.cost_s is not None else oracle.cost(table.latency_ms), dtype=float)


def draw(table: ReplayTable, n: int, seed: int) -> tuple[list[dict[str, Any]], np.ndarray]:
    """``n`` distinct rows of ``table`` (configurations and row indices), at random."""
    if n > len(table):
        raise SystemExit(f"{n} blocks asked for, but the table has only {len(table)} rows")
    idx = np.random.default_rng(seed).choice(len(table), n, replace=False)
    return [table.configs[i] for i in idx], idx


class HookedStore(Store):
    """A :class:`Store` that calls ``after_record(count)`` after each measurement it records (the fault runs kill
    an actor from there: in the coordinator's thread, at a known point of the run)."""

    def __init__(self, path: str, after_record: Callable[[int], None] | None = None) -> None:
        super().__init__(path)
        self.after_record = after_record
        self.recorded = 0

    def record(self, m: Any, **kw: Any) -> int:
        mid = super().record(m, **kw)
        self.recorded += 1
        if self.after_record is not None:
            self.after_record(self.recorded)
        return mid


class CountingFleet(Fleet):
    """A :class:`Fleet` that counts the jobs submitted to it (a campaign's requested measurements; a job put back
    in the queue after a fault is not submitted again)."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.submitted = 0

    def submit(self, pool: Any, job: Any) -> None:
        self.submitted += 1
        super().submit(pool, job)


@contextlib.contextmanager
def started(specs: Sequence[ActorSpec], fleet_cls: type[Fleet] = Fleet, **kw: Any) -> Iterator[Fleet]:
    """A started fleet; on exit it is closed and every actor it ever held is killed (``Fleet.close`` only asks
    the actors to close: a handle kept in ``retired`` would keep the actor process alive)."""
    import ray

    fleet = fleet_cls(specs, **kw)
    try:
        fleet.start()
        yield fleet
    finally:
        fleet.close()
        handles = [s.handle for s in fleet.retired] + [s.handle for p in fleet.pools.values() for s in p.slots]
        handles += [h for h, *_ in fleet._starting.values()]
        for h in handles:
            with contextlib.suppress(Exception):
                ray.kill(h, no_restart=True)


def warm_up(pool: Any, family: Any, configs: Sequence[dict[str, Any]]) -> None:
    """One untimed block per actor (first call: the family reaches the actor, its code warms up); not stored."""
    for _ in pool.imap(family, list(configs[:pool.size])):
        pass


DEPTH = 2  # calls in flight per actor (Fleet's depth; --depth)


def timed_profile(oracle: ReplayOracle, n_actors: int, configs: list[dict[str, Any]], realtime: bool,
                  tmp: str, tag: str) -> dict[str, Any]:
    """Start ``n_actors`` actors, then time ``profile_configs`` of ``configs`` into a fresh store."""
    family = oracle.table.family
    specs = [ActorSpec(oracle, num_cpus=0, realtime=realtime) for _ in range(n_actors)]
    t_start = time.perf_counter()
    with started(specs, depth=DEPTH) as fleet:
        pool = fleet.pool()
        start_s = time.perf_counter() - t_start
        warm_up(pool, family, configs)
        with Store(os.path.join(tmp, f"{tag}.sqlite")) as store:
            store.ensure_platform(pool.platform_id, pool.fingerprint, pool.device.spec)
            c0, t0 = time.process_time(), time.perf_counter()
            s = profile_configs(store, pool, family, configs, progress=False)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            stored = store.db.execute("select count(*) from measurements").fetchone()[0]
        per_actor = sorted(r["measurements"] for r in fleet.throughput() if r["alive"])
    if s.profiled != len(configs) or stored != len(configs):
        raise RuntimeError(f"{tag}: {len(configs)} asked, {s.profiled} profiled, {stored} stored")
    return {"actors": n_actors, "blocks": len(configs), "wall_s": wall, "cpu_s": cpu, "start_s": start_s,
            "throughput": len(configs) / wall, "wall_ms_per_meas": 1e3 * wall / len(configs),
            "cpu_ms_per_meas": 1e3 * cpu / len(configs), "per_actor": per_actor}


# -- scaling -----------------------------------------------------------------------------------------------------
def scaling(oracle: ReplayOracle, sizes: list[int], per_actor: int, repeats: int, tmp: str) -> dict[str, Any]:
    table, costs = oracle.table, block_costs(oracle)
    runs: list[dict[str, Any]] = []
    for rep in range(repeats):
        for n in sizes:
            cfgs, idx = draw(table, per_actor * n, seed=1000 * rep + n)
            r = timed_profile(oracle, n, cfgs, True, tmp, f"scaling-{n}-{rep}")
            r["repeat"] = rep
            r["ideal_throughput"] = len(cfgs) / (float(costs[idx].sum()) / n)
            runs.append(r)
            log(f"scaling: {n} actor(s), repeat {rep + 1}/{repeats}: {r['throughput']:.2f}/s "
                f"(ideal {r['ideal_throughput']:.2f}/s, {r['wall_s']:.1f} s, actors started in {r['start_s']:.1f} s)")
    rows = []
    for n in sizes:
        mine = [r for r in runs if r["actors"] == n]
        rows.append({"actors": n, "throughput": statistics.median(r["throughput"] for r in mine),
                     "ideal_throughput": statistics.median(r["ideal_throughput"] for r in mine),
                     "cpu_ms_per_meas": statistics.median(r["cpu_ms_per_meas"] for r in mine),
                     "throughputs": [r["throughput"] for r in mine]})
    base = next((r["throughput"] for r in rows if r["actors"] == 1), None)
    for r in rows:
        r["speedup"] = r["throughput"] / base if base else float("nan")
        r["efficiency"] = r["speedup"] / r["actors"]
        r["of_ideal"] = r["throughput"] / r["ideal_throughput"]
    print(f"\nscaling: realtime replay actors, {per_actor} blocks per actor, median of {repeats} run(s); "
          f"median block cost {1e3 * float(np.median(costs)):.0f} ms")
    print(f"{'actors':>6s} {'meas/s':>8s} {'ideal/s':>8s} {'of ideal':>8s} {'speed-up':>8s} {'efficiency':>10s} "
          f"{'cpu ms/meas':>11s}")
    for r in rows:
        print(f"{r['actors']:6d} {r['throughput']:8.2f} {r['ideal_throughput']:8.2f} {100 * r['of_ideal']:7.1f}% "
              f"{r['speedup']:8.2f} {r['efficiency']:10.2f} {r['cpu_ms_per_meas']:11.2f}")
    return {"blocks_per_actor": per_actor, "repeats": repeats, "median_cost_s": float(np.median(costs)),
            "rows": rows, "runs": runs}


# -- overhead ----------------------------------------------------------------------------------------------------
def store_alone(oracle: ReplayOracle, configs: list[dict[str, Any]], tmp: str, tag: str,
                synchronous: str | None = None) -> dict[str, Any]:
    """``Store.record`` alone: the measurements the actors would return, recorded one by one into a fresh store
    (``synchronous``: a ``PRAGMA synchronous`` to try instead of the store's own ``NORMAL``, e.g. ``FULL``)."""
    family = oracle.table.family
    ms = []
    for cfg in configs:
        m = oracle.measure(family, cfg)
        m.device_state = {"fleet": {"actor": "bench", "host": "bench", "pid": os.getpid()}}
        ms.append(m)
    with Store(os.path.join(tmp, f"{tag}.sqlite")) as store:
        store.ensure_platform(oracle.platform_id, oracle.fingerprint, oracle.device.spec)
        if synchronous is not None:
            store.db.execute(f"PRAGMA synchronous = {synchronous}")
        c0, t0 = time.process_time(), time.perf_counter()
        for m in ms:
            store.record(m, activity="profile")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"records": len(ms), "wall_ms_per_record": 1e3 * wall / len(ms), "cpu_ms_per_record": 1e3 * cpu / len(ms)}


def overhead(oracle: ReplayOracle, sizes: list[int], blocks: int, repeats: int, fast_sizes: list[int],
             fast_per_actor: int, fast_cost_ms: float, tmp: str) -> dict[str, Any]:
    table, costs = oracle.table, block_costs(oracle)
    runs: list[dict[str, Any]] = []
    for rep in range(repeats):
        for n in sizes:
            cfgs, _ = draw(table, blocks, seed=2000 + 1000 * rep + n)
            r = timed_profile(oracle, n, cfgs, False, tmp, f"overhead-{n}-{rep}")
            r["repeat"] = rep
            runs.append(r)
            log(f"overhead: {n} actor(s), repeat {rep + 1}/{repeats}: {r['wall_ms_per_meas']:.2f} ms wall, "
                f"{r['cpu_ms_per_meas']:.2f} ms coordinator CPU per measurement")
    rows = []
    for n in sizes:
        mine = [r for r in runs if r["actors"] == n]
        rows.append({"actors": n, "wall_ms_per_meas": statistics.median(r["wall_ms_per_meas"] for r in mine),
                     "cpu_ms_per_meas": statistics.median(r["cpu_ms_per_meas"] for r in mine),
                     "throughput": statistics.median(r["throughput"] for r in mine)})
    store_rows = {}
    for sync in (None, "FULL"):
        stores = [store_alone(oracle, draw(table, blocks, seed=3000 + rep)[0], tmp, f"store-{sync}-{rep}", sync)
                  for rep in range(repeats)]
        store_rows[sync or "default"] = {
            "wall_ms_per_record": statistics.median(s["wall_ms_per_record"] for s in stores),
            "cpu_ms_per_record": statistics.median(s["cpu_ms_per_record"] for s in stores), "runs": stores}
    store_row, full = store_rows["default"], store_rows["FULL"]
    print(f"\noverhead: actors that answer at once, {blocks} blocks per run, median of {repeats} run(s)")
    print(f"{'actors':>6s} {'meas/s':>8s} {'wall ms/meas':>12s} {'cpu ms/meas':>11s} {'cpu ms w/o store':>16s}")
    for r in rows:
        print(f"{r['actors']:6d} {r['throughput']:8.1f} {r['wall_ms_per_meas']:12.2f} {r['cpu_ms_per_meas']:11.2f} "
              f"{r['cpu_ms_per_meas'] - store_row['cpu_ms_per_record']:16.2f}")
    print(f"{'store':>6s} {'':8s} {store_row['wall_ms_per_record']:12.2f} {store_row['cpu_ms_per_record']:11.2f}"
          "   (Store.record alone, measurement + ledger row in one transaction)")
    print(f"{'FULL':>6s} {'':8s} {full['wall_ms_per_record']:12.2f} {full['cpu_ms_per_record']:11.2f}"
          "   (the same with PRAGMA synchronous = FULL, the store's setting before: an fsync at each commit)")
    # by calculation: a block's cost over the coordinator's seconds per measurement, at the largest size
    big = rows[-1]
    calc = []
    for label, cost_s in (("tfnas median", float(np.median(costs))), ("1 s block", 1.0), ("0.05 s block", 0.05)):
        calc.append({"block": label, "cost_s": cost_s, "by_cpu": cost_s / (big["cpu_ms_per_meas"] / 1e3),
                     "by_wall": cost_s / (big["wall_ms_per_meas"] / 1e3)})
    print(f"\nlargest fleet it can keep busy, by calculation (block cost / coordinator time per measurement with "
          f"{big['actors']} actors: {big['cpu_ms_per_meas']:.2f} ms CPU, {big['wall_ms_per_meas']:.2f} ms wall)")
    print(f"{'block':>14s} {'cost s':>7s} {'by CPU':>8s} {'by wall':>8s}")
    for c in calc:
        print(f"{c['block']:>14s} {c['cost_s']:7.3f} {c['by_cpu']:8.0f} {c['by_wall']:8.0f}")
    measured = fleet_limit(oracle.table, fast_sizes, fast_per_actor, fast_cost_ms, tmp)
    return {"blocks": blocks, "repeats": repeats, "rows": rows, "store": store_rows, "calculation": calc,
            "measured": measured, "runs": runs}


def fleet_limit(table: ReplayTable, sizes: list[int], per_actor: int, cost_ms: float, tmp: str) -> dict[str, Any]:
    """Realtime actors whose every block costs ``cost_ms``: the coordinator becomes the bottleneck as they grow."""
    fast = ReplayOracle(table, cost=constant_cost(cost_ms / 1e3))
    rows = []
    for n in sizes:
        cfgs, _ = draw(table, per_actor * n, seed=4000 + n)
        r = timed_profile(fast, n, cfgs, True, tmp, f"limit-{n}")
        r["ideal_throughput"] = n / (cost_ms / 1e3)
        r["efficiency"] = r["throughput"] / r["ideal_throughput"]
        rows.append(r)
        log(f"limit: {n} actor(s) of {cost_ms:g} ms blocks: {r['throughput']:.0f}/s of {r['ideal_throughput']:.0f}/s "
            f"(efficiency {r['efficiency']:.2f}; actors started in {r['start_s']:.1f} s)")
    ok = [r["actors"] for r in rows if r["efficiency"] >= 0.8]
    largest = max(ok) if ok else None
    print(f"\nlargest fleet it can keep busy, by measurement: realtime actors of {cost_ms:g} ms blocks, "
          f"{per_actor} blocks per actor, one run per size")
    print(f"{'actors':>6s} {'meas/s':>8s} {'ideal/s':>8s} {'efficiency':>10s} {'cpu ms/meas':>11s} "
          f"{'blocks per actor (min-max)':>27s}")
    for r in rows:
        spread = f"{r['per_actor'][0]}-{r['per_actor'][-1]}" if r["per_actor"] else "-"
        print(f"{r['actors']:6d} {r['throughput']:8.1f} {r['ideal_throughput']:8.1f} {r['efficiency']:10.2f} "
              f"{r['cpu_ms_per_meas']:11.2f} {spread:>27s}")
    print(f"largest size with efficiency >= 0.8: {largest if largest is not None else 'none'} "
          f"({largest * 1e3 / cost_ms if largest else 0:.0f} measurements/s)")
    return {"cost_ms": cost_ms, "blocks_per_actor": per_actor, "rows": rows, "largest_at_0.8": largest}


# -- faults ------------------------------------------------------------------------------------------------------
def counts(store: Store, campaign: str | None = None) -> dict[str, Any]:
    """Stored measurements, ledger rows with a measurement id, duplicates and lost_profile seconds (of one
    campaign, or of the whole store)."""
    q = store.db.execute
    if campaign is None:
        stored, keys = q("select count(*), count(distinct platform || '/' || family || '/' || protocol || '/' || key) "
                         "from measurements").fetchone()
        charged, mids = q("select count(*), count(distinct measurement_id) from ledger "
                          "where measurement_id is not null").fetchone()
        lost_s, lost_n = q("select coalesce(sum(seconds), 0), count(*) from ledger where activity = ?",
                           [LOST_ACTIVITY]).fetchone()
    else:
        stored, keys = q("select count(*), count(distinct m.platform || '/' || m.family || '/' || m.protocol || '/' "
                         "|| m.key) from campaign_measurements c join measurements m on m.id = c.measurement_id "
                         "where c.campaign = ?", [campaign]).fetchone()
        charged, mids = q("select count(*), count(distinct measurement_id) from ledger "
                          "where measurement_id is not null and campaign = ?", [campaign]).fetchone()
        lost_s, lost_n = q("select coalesce(sum(seconds), 0), count(*) from ledger where activity = ? and "
                           "campaign = ?", [LOST_ACTIVITY, campaign]).fetchone()
    return {"stored": stored, "charged": charged, "duplicates": (stored - keys) + (charged - mids),
            "lost_profile_s": float(lost_s), "lost_rows": lost_n}


class Killer:
    """Kills one actor of ``pool`` (``ray.kill``) once ``at`` measurements are stored, ``into_s`` seconds into
    its current block (so that the lost block is a real part of one): the actor with work in flight that began
    its block last, killed at once if it is already that far, else from a timer thread. While no actor has work
    in flight (between a campaign's batches) the kill waits for the next store write."""

    def __init__(self, at: int, into_s: float) -> None:
        self.at = at
        self.into_s = into_s
        self.pool: Any = None
        self.killed: dict[str, Any] | None = None
        self.timer: threading.Timer | None = None

    def __call__(self, recorded: int) -> None:
        if self.killed is not None or recorded < self.at or self.pool is None:
            return
        busy = [s for s in self.pool.slots if s.inflight]
        if not busy:
            return
        slot = max(busy, key=lambda s: s.since)
        wait = max(0.0, self.into_s - (time.perf_counter() - slot.since))
        self.killed = {"actor": slot.label, "after_stored": recorded, "inflight": len(slot.inflight)}
        self.timer = threading.Timer(wait, self._kill, args=(slot,))
        self.timer.start()

    def _kill(self, slot: Any) -> None:
        import ray

        assert self.killed is not None
        self.killed["into_block_s"] = time.perf_counter() - slot.since
        ray.kill(slot.handle, no_restart=True)
        log(f"fault: killed actor {slot.label} after {self.killed['after_stored']} stored "
            f"({self.killed['inflight']} block(s) in flight, {self.killed['into_block_s']:.2f} s into its current one)")

    def join(self) -> None:
        """Wait for the timer (a run that ended first leaves nothing behind)."""
        if self.timer is not None:
            self.timer.join()


def fault(oracle: ReplayOracle, actors: int, blocks: int, budget: int, tmp: str) -> dict[str, Any]:
    table, family = oracle.table, oracle.table.family
    specs = [ActorSpec(oracle, num_cpus=0, realtime=True) for _ in range(actors)]
    into = 0.5 * float(np.median(block_costs(oracle)))  # the kill comes half-way through a median block
    # 1. profile_configs
    cfgs, _ = draw(table, blocks, seed=5000)
    killer = Killer(max(1, blocks // 3), into)
    with HookedStore(os.path.join(tmp, "fault-profile.sqlite"), killer) as store, \
            started(specs, on_lost=lost_charger(store, family)) as fleet:
        pool = killer.pool = fleet.pool()
        t0 = time.perf_counter()
        s = profile_configs(store, pool, family, cfgs, progress=False)
        wall = time.perf_counter() - t0
        killer.join()
        prof = {"requested": len(cfgs), "profiled": s.profiled, **counts(store), "wall_s": wall,
                "requeued": fleet.lost_jobs, "replacements": pool.replacements, "pool_size_end": pool.size,
                "killed": killer.killed}
    log(f"fault (profile_configs): {prof}")
    # 2. a small campaign through run_fleet
    from acquisition.campaign import CampaignSpec

    killer = Killer(max(1, budget // 3), into)
    spec = CampaignSpec(name="fleetbench", family=family.name, budget_samples=budget, stop_on_target=False,
                        batch_size=20, initial_size=20, pool_size=2000, seed=0)
    with HookedStore(os.path.join(tmp, "fault-campaign.sqlite"), killer) as store, \
            started(specs, fleet_cls=CountingFleet) as fleet:
        pool = killer.pool = fleet.pool()
        t0 = time.perf_counter()
        res = run_fleet(store, spec, fleet, family)[pool.platform_id]
        wall = time.perf_counter() - t0
        killer.join()
        camp = {"requested": fleet.submitted, **counts(store, spec.name), "wall_s": wall,
                "requeued": fleet.lost_jobs, "replacements": pool.replacements, "pool_size_end": pool.size,
                "killed": killer.killed, "state": res.state, "n_train": res.n_train,
                "fleet_error": getattr(res, "fleet_error", None)}
    log(f"fault (run_fleet): {camp}")
    print(f"\nfault: {actors} realtime actors, one killed (ray.kill) once a third is stored")
    print(f"{'run':>14s} {'requested':>9s} {'stored':>6s} {'charged':>7s} {'dup':>4s} {'lost s':>7s} "
          f"{'requeued':>8s} {'replaced':>8s} {'pool end':>8s} {'wall s':>7s}")
    for name, r in (("profile_configs", prof), (f"run_fleet({budget})", camp)):
        print(f"{name:>14s} {r['requested']:9d} {r['stored']:6d} {r['charged']:7d} {r['duplicates']:4d} "
              f"{r['lost_profile_s']:7.2f} {r['requeued']:8d} {r['replacements']:8d} {r['pool_size_end']:8d} "
              f"{r['wall_s']:7.1f}")
    ok = all(r["requested"] == r["stored"] == r["charged"] and r["duplicates"] == 0 for r in (prof, camp))
    print(f"requested = stored = charged, no duplicate: {'yes' if ok else 'NO'}; campaign ended {camp['state']} "
          f"with {camp['n_train']} training rows")
    return {"actors": actors, "profile_configs": prof, "campaign": camp, "ok": ok}


def campaign(oracle: ReplayOracle, sizes: list[int], budget: int, wide_batch: int, tmp: str,
             pipeline: str = "auto", pool_size: int | None = None, repeats: int = 1,
             arms: Sequence[int | None] = (None,)) -> dict[str, Any]:
    """A TF-NAS campaign (``run_fleet``, ``budget`` samples, no stop on the target: the same work for every size)
    with 1, 2, 4, 8 realtime actors at the default batch of 20, then the largest size with a batch of
    ``wide_batch``: the wall time, its speed-up against 1 actor, and the coordinator's own seconds (fit, verify,
    query: while it fits, the devices wait once their two queued blocks are done). ``arms``: the ``fit_workers``
    settings compared (``None``: the engine's default; 0: every fit in the coordinator), ``repeats`` rounds of every
    arm and size, interleaved; speed-ups are paired within a round and an arm."""
    from acquisition.campaign import CampaignSpec

    family = oracle.table.family
    runs = []
    plan = [(n, 20) for n in sizes] + [(sizes[-1], wide_batch)]
    for rep in range(repeats):
        for arm in arms:
            for n, batch in plan:
                spec = CampaignSpec(name="bench", family=family.name, budget_samples=budget, stop_on_target=False,
                                    batch_size=batch, initial_size=20, seed=0, pipeline=pipeline,
                                    **({"pool_size": pool_size} if pool_size else {}))
                path = os.path.join(tmp, f"campaign-{rep}-{arm}-{n}-{batch}.sqlite")
                with Store(path) as store, \
                        started([ActorSpec(oracle, num_cpus=0, realtime=True) for _ in range(n)]) as fleet:
                    t0 = time.perf_counter()
                    res = next(iter(run_fleet(store, spec, fleet, family, fit_workers=arm).values()))
                    wall = time.perf_counter() - t0
                runs.append({"repeat": rep, "fit_workers": arm, "actors": n, "batch": batch, "wall_s": wall,
                             "engine_s": res.engine_s, "device_s": 3600 * res.profiling_hours,
                             "n_train": res.n_train, "state": res.state, "iterations": len(res.iterations),
                             "pipelined": res.device.pipelined, "idle_share": res.device.idle_share})
                log(f"campaign (round {rep}, fit workers {'default' if arm is None else arm}): {n} actor(s), batch "
                    f"{batch}: {wall:.1f} s wall, {res.engine_s:.1f} s engine, {3600 * res.profiling_hours:.1f} "
                    "device s")
    print(f"\ncampaign: TF-NAS, {budget} samples (no stop on target), realtime actors, pipeline {pipeline}, pool "
          f"{pool_size or 'default'}, {repeats} round(s); medians over rounds, speed-up paired within a round")
    print(f"{'fit workers':>11s} {'actors':>6s} {'batch':>5s} {'wall s':>7s} {'speed-up':>8s} {'range':>11s} "
          f"{'engine s':>8s} {'device s':>8s} {'actors idle':>11s}")
    summary = []
    for arm in arms:
        base = {r["repeat"]: r["wall_s"] for r in runs if r["fit_workers"] == arm and r["actors"] == sizes[0]
                and r["batch"] == 20}
        for n, batch in plan:
            mine = [r for r in runs if r["fit_workers"] == arm and r["actors"] == n and r["batch"] == batch]
            ups = [base[r["repeat"]] / r["wall_s"] for r in mine]
            row = {"fit_workers": arm, "actors": n, "batch": batch,
                   "wall_s": statistics.median(r["wall_s"] for r in mine), "speed_up": statistics.median(ups),
                   "speed_up_range": [min(ups), max(ups)],
                   "engine_s": statistics.median(r["engine_s"] for r in mine),
                   "device_s": statistics.median(r["device_s"] for r in mine),
                   "idle_share": statistics.median(r["idle_share"] for r in mine)}
            summary.append(row)
            print(f"{'default' if arm is None else arm:>11} {n:6d} {batch:5d} {row['wall_s']:7.1f} "
                  f"{row['speed_up']:8.2f} {min(ups):5.2f}-{max(ups):<5.2f} {row['engine_s']:8.1f} "
                  f"{row['device_s']:8.1f} {100 * row['idle_share']:10.1f}%")
    return {"budget": budget, "pipeline": pipeline, "pool_size": pool_size, "repeats": repeats, "runs": runs,
            "summary": summary}


def fits(tables: list[ReplayTable], actors: int, budget: int, repeats: int, tmp: str) -> dict[str, Any]:
    """One TF-NAS campaign per platform (``run_fleet``, ``budget`` samples, no stop on the target, batches of 20,
    pipelined), ``actors`` realtime actors each, their fits in the coordinator (``fit_workers=0``) against worker
    processes (the default: one per campaign up to the cores), ``repeats`` runs of each, interleaved: the wall time,
    each campaign's engine seconds and its actors' idle share."""
    from acquisition.campaign import CampaignSpec

    family = tables[0].family
    runs = []
    for rep in range(repeats):
        for workers in (0, None):
            spec = CampaignSpec(name=f"fits-{rep}-{workers}", family=family.name, budget_samples=budget,
                                stop_on_target=False, batch_size=20, initial_size=20, seed=rep)
            specs = [ActorSpec(ReplayOracle(t), num_cpus=0, realtime=True) for t in tables for _ in range(actors)]
            with Store(os.path.join(tmp, f"fits-{rep}-{workers}.sqlite")) as store, started(specs) as fleet:
                t0 = time.perf_counter()
                res = run_fleet(store, spec, fleet, family, fit_workers=workers)
                wall = time.perf_counter() - t0
            r = {"repeat": rep, "fit_workers": "coordinator" if workers == 0 else "workers", "wall_s": wall,
                 "engine_s": [x.engine_s for x in res.values()], "idle_share": [x.device.idle_share
                                                                                 for x in res.values()],
                 "n_train": [x.n_train for x in res.values()], "states": [x.state for x in res.values()]}
            runs.append(r)
            log(f"fits: repeat {rep}, fits in {r['fit_workers']}: {wall:.1f} s wall, engine "
                f"{', '.join(f'{e:.1f}' for e in r['engine_s'])} s, idle "
                f"{', '.join(f'{100 * i:.0f} %' for i in r['idle_share'])}")
    med = {k: statistics.median(r["wall_s"] for r in runs if r["fit_workers"] == k) for k in ("coordinator", "workers")}
    ratios = [a["wall_s"] / b["wall_s"] for a, b in zip(runs[::2], runs[1::2], strict=True)]
    print(f"\nfits: {len(tables)} platforms x {actors} realtime actors, a {budget}-sample TF-NAS campaign each, "
          f"{repeats} repeats")
    print(f"{'fits in':>12s} {'wall s (median)':>15s} {'engine s (median, per campaign)':>32s} {'idle (median)':>13s}")
    for k in ("coordinator", "workers"):
        rs = [r for r in runs if r["fit_workers"] == k]
        eng = statistics.median(e for r in rs for e in r["engine_s"])
        idle = statistics.median(i for r in rs for i in r["idle_share"])
        print(f"{k:>12s} {med[k]:15.1f} {eng:32.1f} {100 * idle:12.1f}%")
    print(f"speed-up of the wall, paired per repeat: median {statistics.median(ratios):.2f}x "
          f"({', '.join(f'{x:.2f}' for x in ratios)})")
    return {"platforms": len(tables), "actors": actors, "budget": budget, "runs": runs, "median_wall_s": med,
            "paired_speedup": ratios}


def _sizes(text: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated list of integers") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers")
    return out


def _arms(text: str) -> list[int | None]:
    try:
        arms = [None if t.strip() == "default" else int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected integers >= 0 or 'default', comma-separated") from None
    if not arms or any(a is not None and a < 0 for a in arms):
        raise argparse.ArgumentTypeError(f"{text!r}: expected integers >= 0 or 'default', comma-separated")
    return arms


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("section", choices=(*SECTIONS, "all"))
    ap.add_argument("--quick", action="store_true", help="a dry run: fewer blocks, sizes and repeats")
    ap.add_argument("--out", default="benchmarks/out/fleet", help="folder of the JSON files")
    ap.add_argument("--repeats", type=int, default=None, help="runs per size (default 3; --quick 1)")
    ap.add_argument("--sizes", type=_sizes, default=None, help="actor counts of scaling and overhead (default 1,2,4,8)")
    ap.add_argument("--blocks-per-actor", type=int, default=None, help="scaling (default 40; --quick 8)")
    ap.add_argument("--overhead-blocks", type=int, default=None, help="overhead runs (default 400; --quick 100)")
    ap.add_argument("--fast-sizes", type=_sizes, default=None,
                    help="fleet sizes of the by-measurement limit (default 1,4,8,16,32; --quick 1,4,8)")
    ap.add_argument("--fast-blocks-per-actor", type=int, default=None, help="(default 100; --quick 25)")
    ap.add_argument("--fast-cost-ms", type=float, default=20.0, help="block cost of the by-measurement limit")
    ap.add_argument("--fault-actors", type=int, default=4)
    ap.add_argument("--fault-blocks", type=int, default=None, help="(default 120; --quick 36)")
    ap.add_argument("--fault-budget", type=int, default=None, help="campaign budget_samples (default 200; --quick 60)")
    ap.add_argument("--campaign-budget", type=int, default=None, help="campaign section's budget_samples (default "
                    "200; --quick 60)")
    ap.add_argument("--campaign-pool", type=_sizes, default=None, help="the campaign section's pool_size (default: the "
                    "engine's; 2,000 before issue 30's pool study)")
    ap.add_argument("--pipeline", choices=("auto", "on", "off"), default="auto", help="the campaign section's "
                    "pipelining (default auto: on for a fleet)")
    ap.add_argument("--fits-actors", type=int, default=4, help="the fits section's actors per platform")
    ap.add_argument("--fit-workers", type=_arms, default=[None], help="the campaign section's fit_workers settings, "
                    "compared round by round: e.g. 0,default (default: the engine's default alone)")
    ap.add_argument("--depth", type=int, default=2, help="calls in flight per actor (Fleet's depth) in scaling and "
                    "overhead")
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    ap.add_argument("--table", default=TFNAS, help="the TF-NAS latency CSV")
    return ap


def main() -> int:
    ap = _parser()
    args = ap.parse_args()
    if args.fits_actors < 1:
        ap.error(f"--fits-actors {args.fits_actors}: expected an integer >= 1")
    q = args.quick
    global DEPTH
    DEPTH = args.depth

    def pick(v: Any, full: Any, quick: Any) -> Any:
        return v if v is not None else (quick if q else full)

    repeats = pick(args.repeats, 3, 1)
    sizes = pick(args.sizes, [1, 2, 4, 8], [1, 2, 4, 8])
    sections = list(SECTIONS) if args.section == "all" else [args.section]
    oracle = ReplayOracle(load_table(args.table))
    os.makedirs(args.out, exist_ok=True)
    # actors import this checkout's modules: the local instance's workers get it on PYTHONPATH
    os.environ["PYTHONPATH"] = os.pathsep.join([ROOT, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                                        if p]])
    meta = {"quick": q, "depth": DEPTH, "load_before": os.getloadavg(), "cpus": os.cpu_count(),
            "table_rows": len(oracle.table), "platform": oracle.platform_id}
    if meta["load_before"][0] > 0.5:
        log(f"warning: load average {meta['load_before'][0]:.2f} before the start: something else is running, the "
            "timings will be noisy")
    t_all = time.perf_counter()
    connect("local", num_cpus=args.num_cpus)
    try:
        with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
            for section in sections:
                t0 = time.perf_counter()
                if section == "scaling":
                    res = scaling(oracle, sizes, pick(args.blocks_per_actor, 40, 8), repeats, tmp)
                elif section == "overhead":
                    res = overhead(oracle, sizes, pick(args.overhead_blocks, 400, 100), repeats,
                                   pick(args.fast_sizes, [1, 4, 8, 16, 32], [1, 4, 8]),
                                   pick(args.fast_blocks_per_actor, 100, 25), args.fast_cost_ms, tmp)
                elif section == "fault":
                    res = fault(oracle, args.fault_actors, pick(args.fault_blocks, 120, 36),
                                pick(args.fault_budget, 200, 60), tmp)
                elif section == "fits":
                    res = fits([oracle.table, load_table(args.table, TITAN, oracle.table.family)], args.fits_actors,
                               pick(args.campaign_budget, 200, 60), repeats, tmp)
                else:
                    res = campaign(oracle, sizes, pick(args.campaign_budget, 200, 60), 80, tmp, args.pipeline,
                                   args.campaign_pool[0] if args.campaign_pool else None,
                                   args.repeats if args.repeats is not None else 1, args.fit_workers)
                res = {"section": section, **meta, "section_s": time.perf_counter() - t0, **res}
                path = os.path.join(args.out, f"fleet_{section}.json")
                with open(path, "w") as f:
                    json.dump(res, f, indent=1, default=str)
                log(f"wrote {path} ({res['section_s']:.0f} s)")
    finally:
        disconnect()
    log(f"done in {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
