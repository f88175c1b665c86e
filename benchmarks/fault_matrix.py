"""The fault matrix (issue 30): campaigns killed, starved and hung at random moments, each resumed to its end, with
nothing lost, nothing measured or charged twice and the database intact.

Every trial runs a campaign in a child process, hurts it, then runs it again (a fresh child, nothing hurt) until it
ends, and checks the database:

- **requested = stored = charged**: every configuration the campaign asked for (``campaign_asks``) is a measurement
  of the campaign, and every measurement the campaign made has exactly one ledger row (``profile``), whose seconds
  are its cost; no ask is left pending;
- **no key twice**: no configuration measured twice on one platform and protocol;
- **the bill**: :func:`acquisition.bill.campaign_bill` equals the cost of the campaign's measurements plus its
  ``lost_profile`` seconds (a fleet actor that died mid-block);
- ``pragma integrity_check`` is ``ok``; the campaign ended (``met``, ``budget``, ``exhausted``).

Kinds (``--kinds``; each trial draws its moment from ``--seed``):

- ``kill``: a pipelined replay campaign (the shared TF-NAS table, 200 samples, batches of 20) SIGKILLed at a random
  moment: after a random delay, or inside the store's transaction (``record:N``), between a measurement and its
  tell (``profile:N``) or after a fit (``fit:N``), N random;
- ``kill-live``: ``python -m acquisition run`` on this CPU (mbconv, cheap fidelity, 60 samples, pipelined)
  SIGKILLed after a random delay;
- ``kill-fleet``: a fleet campaign (``run_fleet``, 3 replay actors on a private local Ray instance) SIGKILLed
  after a random delay (Ray's processes are stopped after each trial); its committees' fold models are fitted in
  worker processes from 100 rows (the default for one campaign), none of which may outlive it;
- ``actor``: a fleet campaign whose actor is killed (``ray.kill``) in the middle of a batch, to its end in one run;
- ``disk-full``: a pipelined replay campaign whose store cannot grow past a random size (``RLIMIT_FSIZE``: SQLite
  reports the disk full) fails, then resumes with room;
- ``hung``: a live campaign whose worker process is stopped (SIGSTOP) mid-block: the profiler's timeout ends it,
  the block is measured again in a fresh worker (or recorded failed), the campaign goes on;
- ``kill-fits``: two platforms' campaigns on a fleet (the table's Xeon and Titan rows, 2 replay actors each), their
  fits in worker processes (:mod:`acquisition.loop.fitpool`), the coordinator SIGKILLed after a random delay or as
  it adopts a worker's fit (``fit:N``); no worker may outlive it;
- ``hung-fit``: the same fleet, the fit workers stopped (SIGSTOP) at a random fit: the pool gives up on them after
  10 s, the coordinator fits, the campaigns go on to their end in the same run;
- ``hung-folds``: the single campaign of ``kill-fleet``, its fold-model workers stopped (SIGSTOP) at a random
  committee sent to them: the pool gives up on them after 10 s, the coordinator fits those fold models, the
  campaign goes on to its end in the same run.

    python benchmarks/fault_matrix.py --trials 60 --kinds kill              # ~6 min
    python benchmarks/fault_matrix.py --trials 5 --kinds kill-live,kill-fleet,actor,disk-full,hung
    python benchmarks/fault_matrix.py --trials 5 --kinds kill-fits,hung-fit,hung-folds
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
TFNAS = os.path.join(ROOT, "..", "shared", "data", "tfnas_mbconv_latency.csv")
XEON = "xeon_gold6130_bs1_1thread_pytorch1.1"
TITAN = "titan_rtx_bs32_pytorch1.1"
PARAMS = ["input_hw", "cin", "mid_channels", "se_channels", "cout", "kernel", "stride", "act"]
KINDS = ("kill", "kill-live", "kill-fleet", "actor", "disk-full", "hung", "kill-fits", "hung-fit", "hung-folds")
LIVE = ["--family", "mbconv", "--device", "cpu", "--campaign", "c", "--budget-samples", "60", "--batch-size", "10",
        "--initial-size", "10", "--target-spearman", "0.9999", "--pool-size", "500", "--pipeline", "on",
        "--no-progress"]


# -- the child: one campaign run -----------------------------------------------------------------------------------
def _table() -> Any:
    from studies.replay import ReplayTable

    return ReplayTable.from_csv(TFNAS, params=PARAMS, latency_col="latency_ms", where=[f"device={XEON}"])


def _spec(family: str, seed: int) -> Any:
    from acquisition.campaign import CampaignSpec

    return CampaignSpec(name="c", family=family, budget_samples=200, batch_size=20, initial_size=20,
                        target_spearman=0.9999, seed=seed, pipeline="on")


def child(kind: str, db: str, seed: int, hurt: bool) -> None:
    from acquisition.engine import run_campaign
    from acquisition.store import Store
    from studies.replay import ReplayOracle

    if kind in ("kill", "disk-full"):
        table = _table()
        with Store(db) as store:
            run_campaign(store, _spec(table.family.name, seed), ReplayOracle(table), table.family)
    elif kind in ("kill-fleet", "actor", "hung-folds"):
        _child_fleet(db, seed, kill_actor=hurt and kind == "actor", hang=hurt and kind == "hung-folds")
    elif kind in ("kill-fits", "hung-fit"):
        _child_fits(db, seed, hang=hurt and kind == "hung-fit")
    elif kind == "hung":
        _child_hung(db, seed, hurt)


def _child_fleet(db: str, seed: int, kill_actor: bool, hang: bool = False) -> None:
    import threading

    import ray

    if hang:
        _stop_fold_workers(seed)

    from acquisition.fleet_run import run_fleet
    from acquisition.store import Store
    from profiler.fleet import ActorSpec, Fleet, connect
    from studies.replay import ReplayOracle

    table = _table()
    connect("local")
    oracle = ReplayOracle(table)
    with Store(db) as store, Fleet([ActorSpec(oracle, num_cpus=0) for _ in range(3)]) as fleet:
        if kill_actor:  # an actor killed once a third of the budget is stored, from another thread
            def killer() -> None:
                while True:
                    time.sleep(0.05)
                    with contextlib.suppress(Exception), Store(db, readonly=True) as ro:
                        if ro.db.execute("select count(*) from measurements").fetchone()[0] >= 60:
                            break
                slot = fleet.pool().slots[0]
                ray.kill(slot.handle, no_restart=True)

            threading.Thread(target=killer, daemon=True).start()
        run_fleet(store, _spec(table.family.name, seed), fleet, table.family)


def _stop_soon(pool: Any) -> None:
    """Stop (SIGSTOP) ``pool``'s fit workers 50 ms from now, from another thread: mid-fit."""
    import threading

    def stop() -> None:
        time.sleep(0.05)
        for pid in pool.worker_pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)

    threading.Thread(target=stop, daemon=True).start()


def _stop_fold_workers(seed: int) -> None:
    """The fold-model workers stopped (SIGSTOP) while they fit the Nth committee sent to them (N random, 1-4),
    given up on after 10 s."""

    import acquisition.loop.fitpool as fitpool

    fitpool.HANG_S = 10.0
    nth, fmap, calls = random.Random(seed).randint(1, 4), fitpool.FitPool.map, []

    def stopping_map(pool: Any, func: Any, tasks: Any) -> Any:
        calls.append(1)
        if len(calls) == nth:
            _stop_soon(pool)
        return fmap(pool, func, tasks)

    fitpool.FitPool.map = stopping_map


def _child_fits(db: str, seed: int, hang: bool) -> None:
    """Two platforms (the table's Xeon and Titan rows, 2 replay actors each), a campaign each, their fits in worker
    processes; ``hang``: at a random fit the workers are stopped (SIGSTOP), given up on after 10 s."""

    import acquisition.loop.fitpool as fitpool
    from acquisition.fleet_run import run_fleet
    from acquisition.store import Store
    from profiler.fleet import ActorSpec, Fleet, connect
    from studies.replay import ReplayOracle, ReplayTable

    xeon = _table()
    titan = ReplayTable.from_csv(TFNAS, params=PARAMS, latency_col="latency_ms", where=[f"device={TITAN}"],
                                 family=xeon.family)
    connect("local")
    if hang:
        fitpool.HANG_S = 10.0
        nth, submit = random.Random(seed).randint(2, 8), fitpool.FitPool.submit

        def stopping_submit(pool: Any, job: Any) -> Any:
            ticket = submit(pool, job)
            if pool.submitted == nth:
                _stop_soon(pool)
            return ticket

        fitpool.FitPool.submit = stopping_submit
    specs = [ActorSpec(ReplayOracle(t), num_cpus=0) for t in (xeon, titan) for _ in range(2)]
    with Store(db) as store, Fleet(specs) as fleet:
        run_fleet(store, _spec(xeon.family.name, seed), fleet, xeon.family)


def _child_hung(db: str, seed: int, hurt: bool) -> None:
    import threading

    from acquisition.campaign import CampaignSpec
    from acquisition.engine import run_campaign
    from acquisition.store import Store
    from profiler.families import get_family
    from profiler.worker import Profiler

    fam = get_family("mbconv")
    spec = CampaignSpec(name="c", family="mbconv", budget_samples=40, batch_size=10, initial_size=10,
                        target_spearman=0.9999, pool_size=500, seed=seed, pipeline="on")
    with Store(db) as store, Profiler("cpu", timeout_s=3.0) as prof:
        if hurt:
            def stopper() -> None:
                time.sleep(random.Random(seed).uniform(2.0, 6.0))
                with contextlib.suppress(Exception):
                    os.kill(prof.pid, signal.SIGSTOP)  # hung: the parent's timeout must end it

            threading.Thread(target=stopper, daemon=True).start()
        run_campaign(store, spec, prof, fam)


# -- the parent: hurt, resume, check --------------------------------------------------------------------------------
LAST_STDERR = [""]  # the last child's stderr that ran to its end (a hung trial's proof that the hang was met)


def _run(args: list[str], env: dict[str, str] | None = None, kill_after: float | None = None,
         preexec: Any = None, timeout: float = 600) -> int:
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=preexec)
    try:
        _, err = proc.communicate(timeout=kill_after if kill_after is not None else timeout)
        LAST_STDERR[0] = err or ""
    except subprocess.TimeoutExpired:
        if kill_after is None:
            proc.kill()
            raise
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        return -signal.SIGKILL
    if proc.returncode not in (0, -signal.SIGKILL) and kill_after is None and env is None and preexec is None:
        raise RuntimeError(f"{' '.join(args[-6:])} exited {proc.returncode}: {err[-600:]}")
    return proc.returncode


def _child_args(kind: str, db: str, seed: int, hurt: bool) -> list[str]:
    if kind == "kill-live":
        return [sys.executable, "-m", "acquisition", "run", "--db", db, "--seed", str(seed), *LIVE]
    return [sys.executable, __file__, "child", "--kind", kind, "--db", db, "--seed", str(seed),
            *(["--hurt"] if hurt else [])]


def _limit_file_size(limit: int) -> Any:
    def pre() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return pre


def trial(kind: str, seed: int, tmp: str) -> dict[str, Any]:
    rng = random.Random(f"{kind}-{seed}")
    db = os.path.join(tmp, f"{kind}-{seed}.sqlite")
    how: str
    rc: int
    if kind == "kill":
        moment = rng.choice(["time", "record", "profile", "fit"])
        if moment == "time":
            delay = rng.uniform(1.0, 8.0)
            how, rc = f"after {delay:.2f} s", _run(_child_args(kind, db, seed, True), kill_after=delay)
        else:
            n = rng.randint(1, 12 if moment == "fit" else 200)
            how = f"{moment}:{n}"
            rc = _run(_child_args(kind, db, seed, True), env={"LATENCY_ACQUISITION_FAULT": how})
    elif kind == "kill-fits" and rng.random() < 0.5:  # at the adoption of a worker's fit, or after a delay
        how = f"fit:{rng.randint(1, 16)}"
        rc = _run(_child_args(kind, db, seed, True), env={"LATENCY_ACQUISITION_FAULT": how})
        _stop_ray()
    elif kind in ("kill-live", "kill-fleet", "kill-fits"):
        delay = rng.uniform(3.0, 15.0) if kind == "kill-live" else rng.uniform(8.0, 30.0)  # Ray starts in ~6 s
        how, rc = f"after {delay:.2f} s", _run(_child_args(kind, db, seed, True), kill_after=delay)
        if kind != "kill-live":
            _stop_ray()
    elif kind == "disk-full":
        limit = rng.randint(150_000, 1_500_000)
        how = f"file size limit {limit} B"
        rc = _run(_child_args(kind, db, seed, True), preexec=_limit_file_size(limit), timeout=600,
                  env={"LATENCY_ACQUISITION_DISK": "limited"})
    else:  # actor, hung, hung-fit, hung-folds: hurt inside the child, which goes on to its end
        how = {"actor": "actor killed mid-batch", "hung": "worker stopped mid-block",
               "hung-fit": "fit workers stopped mid-fit", "hung-folds": "fold-model workers stopped mid-fit"}[kind]
        rc = _run(_child_args(kind, db, seed, True), env={"LATENCY_ACQUISITION_TRIAL": kind})
        if kind in ("hung-fit", "hung-folds") and "not back after" not in LAST_STDERR[0]:
            how += " (never given up on: the hang missed the fits)"
        if kind in ("actor", "hung-fit", "hung-folds"):
            _stop_ray()
    before = _counts(db) if os.path.isfile(db) else None
    _run(_child_args(kind, db, seed, False))  # resumed to its end
    if kind in ("kill-fleet", "actor", "kill-fits", "hung-fit", "hung-folds"):
        _stop_ray()
    after = _check(db)
    if kind in ("kill-fleet", "kill-fits", "hung-fit", "hung-folds") and (orphans := _orphan_workers()):
        after["problems"].append(f"{len(orphans)} fit worker(s) outlived their coordinator: pids {orphans}")
        after["ok"] = False
    return {"kind": kind, "seed": seed, "how": how, "rc": rc, "before": before, **after}


def _orphan_workers() -> list[int]:
    """loky worker processes whose coordinator is gone (adopted by init), killed once counted."""
    import psutil

    out = []
    for p in psutil.process_iter(["pid", "ppid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "loky" in cmd and "resource_tracker" not in cmd and p.info["ppid"] == 1:
            out.append(p.info["pid"])
            with contextlib.suppress(psutil.Error):
                p.kill()
    return out


def _stop_ray() -> None:
    subprocess.run(["ray", "stop", "--force"], capture_output=True, check=False)


def _counts(db: str) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        return {"measurements": con.execute("select count(*) from measurements").fetchone()[0]}
    except sqlite3.Error:
        return {"measurements": -1}
    finally:
        con.close()


def _check(db: str) -> dict[str, Any]:
    from acquisition.bill import campaign_bill
    from acquisition.store import Store

    con = sqlite3.connect(db)
    problems: list[str] = []
    try:
        ok = con.execute("pragma integrity_check").fetchone()[0]
        if ok != "ok":
            problems.append(f"integrity_check: {ok}")
        camps = [r[0] for r in con.execute("select name from campaigns")]
        n_meas = con.execute("select count(*) from measurements").fetchone()[0]
        dup = n_meas - con.execute("select count(distinct platform || family || key || protocol) from measurements"
                                   ).fetchone()[0]
        if dup:
            problems.append(f"{dup} measurement(s) stored twice")
        charged = con.execute("select count(*), count(distinct measurement_id), coalesce(sum(seconds), 0) from ledger "
                              "where activity in ('profile', 'validation_profile')").fetchone()
        cost = con.execute("select coalesce(sum(cost_s), 0) from measurements").fetchone()[0]
        if not (charged[0] == charged[1] == n_meas):
            problems.append(f"{n_meas} measurements, {charged[0]} ledger rows for {charged[1]} of them")
        if abs(charged[2] - cost) > 1e-6 * max(1.0, cost):
            problems.append(f"ledger {charged[2]:.3f} s against cost {cost:.3f} s")
        states = {}
        for c in camps:
            asked = set(con.execute("select key || '|' || protocol from campaign_asks where campaign = ?", [c]))
            stored = set(con.execute("select m.key || '|' || m.protocol from campaign_measurements cm join measurements"
                                     " m on m.id = cm.measurement_id where cm.campaign = ?", [c]))
            if asked != stored:
                problems.append(f"{c}: {len(asked - stored)} asked and not stored, {len(stored - asked)} stored "
                                "and never asked")
            states[c] = con.execute("select state from campaigns where name = ?", [c]).fetchone()[0]
            if states[c] not in ("met", "budget", "exhausted"):
                problems.append(f"{c} ended {states[c]!r}")
    finally:
        con.close()
    with Store(db, readonly=True) as store:
        for c in camps:
            bill = campaign_bill(store, c).total_s
            own = sum(m["cost_s"] for m in store.members(c))
            lost = store.db.execute("select coalesce(sum(seconds), 0) from ledger where campaign = ? and activity = "
                                    "'lost_profile'", [c]).fetchone()[0]
            if abs(bill - own - lost) > 1e-6 * max(1.0, bill):
                problems.append(f"{c}: bill {bill:.3f} s, measurements {own:.3f} s + lost {lost:.3f} s")
    con = sqlite3.connect(db)
    retried, failed = con.execute("select coalesce(sum(attempts > 1), 0), coalesce(sum(status = 'failed'), 0) "
                                  "from measurements").fetchone()
    lost = con.execute("select count(*) from ledger where activity = 'lost_profile'").fetchone()[0]
    con.close()
    return {"measurements": n_meas, "retried": retried, "failed": failed, "lost_rows": lost, "states": states,
            "problems": problems, "ok": not problems}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    c = sub.add_parser("child")
    c.add_argument("--kind", required=True)
    c.add_argument("--db", required=True)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--hurt", action="store_true")
    ap.add_argument("--trials", type=int, default=10, help="trials per kind")
    ap.add_argument("--kinds", default="kill")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/out/faults")
    args = ap.parse_args()
    if args.cmd == "child":
        child(args.kind, args.db, args.seed, args.hurt)
        return
    kinds = args.kinds.split(",")
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        ap.error(f"--kinds {bad[0]!r}: expected some of {', '.join(KINDS)}")
    os.makedirs(args.out, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            for seed in range(args.first_seed, args.first_seed + args.trials):
                t0 = time.perf_counter()
                r = trial(kind, seed, tmp)
                r["seconds"] = time.perf_counter() - t0
                results.append(r)
                mark = "ok" if r["ok"] else "FAIL: " + "; ".join(r["problems"])
                print(f"{kind:<10} seed {seed:>3} {r['how']:<28} rc {r['rc']:>4}  measured before "
                      f"{(r['before'] or {}).get('measurements', 0):>4}, after {r['measurements']:>4}  "
                      f"(retried {r['retried']}, failed {r['failed']}, lost {r['lost_rows']})  "
                      f"{'/'.join(sorted(set(r['states'].values())))}  {mark}", flush=True)
    tally = Counter((r["kind"], r["ok"]) for r in results)
    print("\n| kind | trials | ok | failed |\n| --- | --- | --- | --- |")
    for kind in kinds:
        print(f"| {kind} | {tally[(kind, True)] + tally[(kind, False)]} | {tally[(kind, True)]} | "
              f"{tally[(kind, False)]} |")
    with open(os.path.join(args.out, f"faults-{'-'.join(kinds)}.json"), "w") as fh:
        json.dump(results, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
