"""Profiling on a fleet: device actors on Ray, pooled by platform, driven by one coordinator (docs/design.md §8).

Ray (the optional extra ``latency-acquisition[ray]``) places and runs the actors; this package is the
coordinator's side of it, in three rooms: :mod:`profiler.fleet.launch` (what to start, starting and replacing
actors), :mod:`profiler.fleet.dispatch` (sending and receiving) and :mod:`profiler.fleet.faults` (dead and hung
actors), beside :mod:`profiler.fleet.pool` (a platform's actors as one measurer) and
:mod:`profiler.fleet.cluster` (joining Ray). The coordinator stays the single writer of the store and the
ledger: actors only measure (:class:`profiler.actor.DeviceActor`) and send each
:class:`~profiler.worker.Measurement` back.

- :func:`connect` joins a cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) or starts a private one on
  loopback (``local``). Without Ray installed it raises :class:`FleetError` with the install command.
- :func:`device_actor_specs` reads the cluster and says which actors to start: one per GPU (``num_gpus=1``), or
  one per node for the CPU (pinned to its node, reserving the device's threads as ``num_cpus``: two CPU
  measurements on one machine distort each other).
- :class:`Fleet` starts the actors, reads each one's platform fingerprint and **pools identical devices into one
  platform** (:class:`Pool`); different devices are different platforms.
- A :class:`Pool` is a measurer with the profiler's interface (``platform_id``, ``fingerprint``, ``device``,
  ``protocol``, ``measure``) plus :meth:`Pool.imap`, which spreads many configurations over the pool's actors
  and yields each measurement as it arrives; :func:`acquisition.profiling.profile_configs` uses it.
  :func:`acquisition.fleet_run.run_fleet` runs one campaign per platform at once.

**Faults.** Every configuration is in exactly one place: the pool's queue, or in flight on one actor. When an
actor dies (``ray.kill``, its node lost, its process killed) or stops answering (no result after
``job_timeout_s``: it is killed), the configurations it held go back to the front of the queue and the others
go on. A measurement is stored only when its result arrives, so nothing is stored or charged twice; the device
time the dead actor spent on its unfinished block is charged apart (``on_lost``: the ledger's ``lost_profile``,
part of the campaign's bill). A replacement actor with the same resources is requested at once and joins the
pool when it reports the same platform; if the cluster cannot place one within ``start_timeout_s`` the pool
goes on with the devices left, and a pool with no device left raises :class:`FleetError` (the campaign can be
resumed later, as ``run`` resumes any campaign).

Example (a private local instance; replay-backed actors that answer from a recorded table):
    >>> from studies.replay import ReplayOracle, ReplayTable
    >>> rows = [{"hw": str(h), "ms": str(0.1 * h)} for h in range(1, 9)]
    >>> table = ReplayTable.from_rows("demo", rows, params=["hw"], latency_col="ms")
    >>> connect("local", num_cpus=1)  # doctest: +SKIP
    >>> specs = [ActorSpec(ReplayOracle(table), realtime=False, num_cpus=0) for _ in range(2)]
    >>> with Fleet(specs) as fleet:  # doctest: +SKIP
    ...     pool = fleet.pool()
    ...     got = dict(pool.imap(table.family, table.configs))
    >>> len(got), len(fleet.throughput())  # doctest: +SKIP
    (8, 2)
"""

from profiler.fleet.cluster import INSTALL_HINT, FleetError, check_address, connect, disconnect, require_ray
from profiler.fleet.dispatch import Fleet
from profiler.fleet.launch import ActorSpec, device_actor_specs
from profiler.fleet.pool import Job, Pool

__all__ = ["INSTALL_HINT", "ActorSpec", "Fleet", "FleetError", "Job", "Pool", "check_address", "connect",
           "device_actor_specs", "disconnect", "require_ray"]
