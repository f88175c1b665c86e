"""``profile`` and ``remeasure``: measure blocks on a device into the database."""

from __future__ import annotations

import argparse
import os
from statistics import median
from typing import Any

from acquisition.cli._common import (
    DEFAULT_DB,
    CliError,
    add_device_args,
    add_plugin_arg,
    device_from_args,
    load_plugins,
    non_negative_int,
    positive_float,
    positive_int,
)
from acquisition.cli._fleet import add_fleet_args, check_fleet_args

__all__ = ["cmd_profile", "cmd_remeasure", "register"]


def cmd_profile(args: argparse.Namespace) -> int:
    """Sample ``--n`` configurations of a family and profile those not stored yet (under the run lock)."""
    from acquisition._lock import RunLock
    from acquisition.profiling import profile_configs
    from acquisition.store import Store
    from profiler.families import get_family
    from profiler.protocol import AdaptiveProtocol, FixedProtocol
    from profiler.worker import Profiler

    load_plugins(args.plugin)
    family = get_family(args.family)
    on_fleet = check_fleet_args(args)
    if not on_fleet:
        device = device_from_args(args)
        device.check_available()
    if args.protocol == "fixed":
        protocol = FixedProtocol(repeats=args.repeats or 10_000)
    else:
        if args.repeats is not None:
            raise CliError("--repeats only applies to --protocol fixed")
        protocol = AdaptiveProtocol()
    configs = family.space.sample(args.n, method=args.sampler, seed=args.seed, family=family.name)
    if on_fleet:
        from acquisition.cli._fleet import open_fleet, print_throughput, ray_connection
        from acquisition.fleet_run import profile_fleet

        with ray_connection(args, protocol=protocol, timeout_s=args.timeout) as specs, Store(args.db) as store, \
                RunLock(store.path), open_fleet(specs, progress=not args.no_progress) as fleet:
            sums = profile_fleet(store, fleet, family, configs, retry_failed=args.retry_failed,
                                 progress=not args.no_progress)
            db_path = os.path.abspath(store.path)
            for plat, s in sums.items():
                _print_profile(family, fleet.pools[plat].device.spec, protocol, s, db_path)
            print_throughput(fleet)
        return 1 if any(s.error for s in sums.values()) else 0
    with Store(args.db) as store, RunLock(store.path), Profiler(device, protocol, timeout_s=args.timeout) as prof:
        s = profile_configs(store, prof, family, configs, retry_failed=args.retry_failed,
                            progress=not args.no_progress)
        db_path = os.path.abspath(store.path)
    _print_profile(family, device.spec, protocol, s, db_path)
    return 0


def _print_profile(family: Any, device: str, protocol: Any, s: Any, db_path: str) -> None:
    ok = s.profiled - s.failed
    print(f"{family.name} on {device} (platform {s.platform}, protocol {protocol.id}): profiled {s.profiled} "
          f"({ok} ok, {s.failed} failed, {s.unstable} unstable), reused {s.reused} stored")
    if s.error:
        print(f"  stopped short: {s.error}")
    if s.noise:
        limit = getattr(protocol, "max_noise", None)
        print(f"measurement noise (spread of each block's buffer placements): median {100 * median(s.noise):.1f} %; "
              f"{s.extra_placements} needed extra placements"
              + (f", {s.noisy} still disagree by more than {100 * limit:.0f} % (stored with their noise)"
                 if limit is not None else ""))
    print(f"profiling time {s.cost_s:.1f} s ({s.cost_s / 3600:.4f} h); database {db_path}")
    for key, reason in s.failures[:5]:
        print(f"  failed {key}: {reason}")
    if len(s.failures) > 5:
        print(f"  ... {len(s.failures) - 5} more failures ({len(s.failures)} in all): see "
              "`python -m acquisition measurements`")


def cmd_remeasure(args: argparse.Namespace) -> int:
    """Measure stored blocks again in a fresh process and print the noise ceiling (under the run lock)."""
    from acquisition._lock import RunLock
    from acquisition.noise import remeasure
    from acquisition.store import Store
    from profiler.families import get_family

    load_plugins(args.plugin)
    family = get_family(args.family)
    if not os.path.isfile(args.db):
        raise CliError(f"--db {args.db!r} does not exist: profile some measurements into it first")
    device = device_from_args(args)
    device.check_available()
    with Store(args.db) as store, RunLock(store.path):
        ceiling = remeasure(store, device, family, args.n, seed=args.seed, platform=args.platform,
                            progress=not args.no_progress)
    print(f"{family.name}: {ceiling.describe()}; Spearman {ceiling.spearman:.4f} between the two runs")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``profile`` and ``remeasure`` to the subparsers ``sub``."""
    p = sub.add_parser("profile", help="profile N sampled configurations of a block family",
                       description="Sample N configurations of a block family and profile them on a device (or, with "
                                   "--ray-address, on every platform of a Ray cluster at once, spread over its "
                                   "devices). Configurations already stored for a platform and protocol are reused. "
                                   "One writer at a time: a database being profiled or run is refused.")
    p.add_argument("--family", default="mbconv", help="block family: {families}")
    p.add_argument("--n", type=positive_int, default=200, help="number of configurations")
    add_device_args(p)
    p.add_argument("--db", default=DEFAULT_DB, help="SQLite database file")
    p.add_argument("--sampler", choices=("sobol", "random"), default="sobol", help="how configurations are drawn")
    p.add_argument("--protocol", choices=("adaptive", "fixed"), default="adaptive",
                   help="adaptive, or the paper's fixed protocol (N invocations, min)")
    p.add_argument("--repeats", type=positive_int, default=None, help="invocations of the fixed protocol "
                   "(default 10000)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="sampling seed, >= 0")
    p.add_argument("--timeout", type=positive_float, default=None,
                   help="seconds before a block counts as hung (default: the profiler's)")
    p.add_argument("--retry-failed", action="store_true", help="profile configurations stored as failed again")
    add_fleet_args(p)
    add_plugin_arg(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("remeasure", help="measure stored blocks again in a fresh process: the noise ceiling",
                       description="Draw N stored ok measurements of a family at random, measure each again with "
                                   "the same protocol in a fresh worker process (stored apart, as repeats; charged "
                                   "as noise_profile), and print how often the two agree within +-10 %%: the "
                                   "ceiling of any model's +-10 %% accuracy. fit, run and report show it beside the "
                                   "model's accuracy.")
    p.add_argument("--family", default="mbconv", help="block family: {families}")
    p.add_argument("--n", type=positive_int, default=100, help="measurements to repeat")
    p.add_argument("--db", default=DEFAULT_DB, help="SQLite database file")
    add_device_args(p)
    p.add_argument("--platform", default=None, help="platform id (needed when the family was measured on several)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the draw, >= 0")
    add_plugin_arg(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_remeasure)
