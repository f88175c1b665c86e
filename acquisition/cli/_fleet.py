"""``--ray-address`` and ``--actors`` for ``run`` and ``profile``: measuring on a Ray cluster's devices."""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Iterator
from typing import Any

from acquisition.cli._common import CliError, non_negative_int, positive_int

__all__ = ["add_fleet_args", "check_fleet_args", "open_fleet", "print_throughput", "ray_connection"]


def add_fleet_args(p: argparse.ArgumentParser, fits: bool = False) -> None:
    """--ray-address and --actors (and, for campaigns, ``fits``: --fit-workers, also without a cluster)."""
    p.add_argument("--ray-address", dest="ray_address", default=None, metavar="ADDR",
                   help="measure on the devices of a Ray cluster: auto (the cluster this machine joined with "
                        "`ray start`), local (a private instance on this machine), HOST:PORT or ray://HOST:PORT. "
                        "One actor per GPU, or one CPU device per node; identical devices pool into one "
                        "platform, and each platform gets its own campaign. The database is written here only. "
                        "Needs the optional extra: pip install 'latency-acquisition[ray]'")
    p.add_argument("--actors", type=positive_int, default=None,
                   help="with --ray-address: use this many devices (default: every GPU of the cluster, or one CPU "
                        "device per node; more CPU devices than nodes share machines and distort each other)")
    if fits:
        p.add_argument("--fit-workers", dest="fit_workers", type=non_negative_int, default=None, metavar="N",
                       help="fit in N worker processes: with --ray-address the platforms' campaigns, several at "
                            "once (default: one per campaign, up to this machine's cores); a single campaign's "
                            "committees spread their fold models over them, the same models (on a fleet by "
                            "default one per fold up to the cores, none for a CPU platform; without a fleet 0). "
                            "0: none")


def check_fleet_args(args: argparse.Namespace) -> bool:
    """Whether the command runs on a fleet; the flags checked (one-line errors) before anything is written."""
    if args.ray_address is None:
        if args.actors is not None:
            raise CliError("--actors needs --ray-address (the devices of a Ray cluster)")
        return False
    from profiler.fleet import check_address, require_ray

    try:
        check_address(args.ray_address)
    except ValueError:
        raise CliError(f"--ray-address {args.ray_address!r} is not allowed: expected auto, local, HOST:PORT or "
                       "ray://HOST:PORT") from None
    if re.fullmatch(r"cuda:\d+", str(args.device).strip().lower()):
        raise CliError(f"--device {args.device} names one GPU of this machine; with --ray-address use --device "
                       "cuda (Ray gives each actor its own GPU) and --actors to use fewer")
    from profiler.fleet import FleetError

    try:
        require_ray()
    except FleetError as e:
        raise CliError(f"--ray-address: {e}") from None
    return True


@contextlib.contextmanager
def ray_connection(args: argparse.Namespace, *, protocol: Any = None, timeout_s: float | None = None
                   ) -> Iterator[list[Any]]:
    """Connected to ``--ray-address`` inside, yielding the device actors to start there (both checked before
    the database is opened: an unreachable cluster or devices it does not have are one-line errors); a ``local``
    instance started here stops on exit."""
    from profiler.fleet import FleetError, connect, device_actor_specs, disconnect

    try:
        started = connect(args.ray_address)
    except FleetError as e:
        raise CliError(str(e)) from None
    try:
        device = _cluster_device(args)
        try:
            specs = device_actor_specs(device, actors=args.actors, protocol=protocol, timeout_s=timeout_s,
                                       plugins=tuple(args.plugin))
        except FleetError as e:  # what was asked for does not exist on this cluster: bad input
            raise CliError(str(e)) from None
        yield specs
    finally:
        if started:
            disconnect()


@contextlib.contextmanager
def open_fleet(specs: list[Any], *, progress: bool = True) -> Iterator[Any]:
    """Start the device actors ``specs`` on the connected cluster and yield the :class:`profiler.fleet.Fleet`;
    the actors end on exit."""
    from profiler.fleet import Fleet

    if progress:
        import sys

        print(f"starting {len(specs)} device actor(s) on the Ray cluster ...", file=sys.stderr)
    with Fleet(specs) as fleet:
        yield fleet


def _cluster_device(args: argparse.Namespace) -> Any:
    """``--device`` for the cluster: ``auto`` is ``cuda`` when any node has a GPU, else ``cpu``."""
    from acquisition.cli._common import device_from_args

    if str(args.device).strip().lower() == "auto":
        import ray

        gpus = sum(n.get("Resources", {}).get("GPU", 0) for n in ray.nodes() if n.get("Alive"))
        ns = argparse.Namespace(**{**vars(args), "device": "cuda" if gpus else "cpu"})
        if gpus and ns.threads is not None:
            ns.threads = None
        return device_from_args(ns)
    return device_from_args(args)


def print_throughput(fleet: Any) -> None:
    """One line per device: measurements, device time and rate; lost actors with their reason."""
    rows = fleet.throughput()
    if not rows:
        return
    print(f"devices ({len(fleet.pools)} platform(s)):")
    for r in rows:
        end = "" if r["alive"] or r["end"] == "closed" else f"; lost: {r['end']}"
        print(f"  {r['actor']} (platform {r['platform']}): {r['measurements']} measurements, {r['device_s']:.1f} "
              f"device s, {r['per_min']:.1f}/min{end}")
    if fleet.lost_jobs:
        print(f"  {fleet.lost_jobs} configuration(s) went back to the queue from lost actors ({fleet.lost_s:.1f} s "
              "of device time lost, charged as lost_profile); none was stored twice")
    for msg in fleet.failed_starts:
        print(f"  not started: {msg}")
