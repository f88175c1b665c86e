"""The noise ceiling: stored measurements re-measured in a fresh process, stored apart and charged, and compared
(``acquisition.noise``, ``python -m acquisition remeasure``, ``fit``'s ceiling line)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from acquisition.noise import NoiseError, noise_ceiling, protocol_from_id, remeasure
from acquisition.store import Store
from profiler.families import get_family
from profiler.protocol import AdaptiveProtocol, FixedProtocol, Timing
from profiler.repeatability import ceiling_of
from profiler.worker import Measurement
from tests.acquisition.test_cli import assert_one_line_error, run_cli
from tests.acquisition.test_fit_cli import PLATFORM, make_db


class FreshProcess:
    """A stand-in for a new worker: each configuration measures its stored latency times a factor that is the
    same for a configuration (seeded by key and ``run``), ``spread`` wide; every ``off_every``-th is 30 % off."""

    def __init__(self, device: object, protocol: str, *, spread: float = 0.02, off_every: int = 0,
                 platform: str = PLATFORM, stored: dict[str, float] | None = None) -> None:
        self.protocol, self.spread, self.off_every = protocol, spread, off_every
        self.platform_id, self.stored, self.calls = platform, stored or {}, 0

    def measure(self, family, config) -> Measurement:
        self.calls += 1
        key = family.key(config)
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little")
        ms = self.stored[key] * float(np.random.default_rng(seed).lognormal(0.0, self.spread))
        if self.off_every and self.calls % self.off_every == 0:
            ms *= 1.3
        t = Timing(min_ms=ms, median_ms=ms * 1.05, p10_ms=ms * 1.01, p90_ms=ms * 1.1, mean_ms=ms * 1.06, n=30,
                   timed_s=ms * 30e-3, warmup_n=2, warmup_s=0.01, stop="stable", spread=1.01)
        return Measurement(family=family.name, key=key, config=config, protocol=self.protocol,
                           platform=self.platform_id, status="ok", cost_s=0.25, timing=t, build_s=0.01)

    def __enter__(self) -> FreshProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _stored(db: Path) -> dict[str, float]:
    with Store(db, readonly=True) as s:
        return {r["key"]: r["min_ms"] for r in s.measurements(family="mbconv")}


def _factory(db: Path, **kw):
    stored = _stored(db)
    return lambda device, protocol: FreshProcess(device, protocol, stored=stored, **kw)


def test_ceiling_of_pairs_counts_agreement_like_a_prediction() -> None:
    first = np.array([1.0, 2.0, 4.0, 8.0])
    c = ceiling_of(first, np.array([1.05, 2.0, 4.6, 8.8]))  # 5 %, 0 %, 15 %, 10 %
    assert c.n == 4 and c.within10 == 0.75 and c.within5 == 0.5
    assert c.median_diff == pytest.approx(0.075) and c.worst_diff == pytest.approx(0.15) and c.spearman == 1.0
    assert "75.0 % of 4 re-measured blocks" in c.describe()
    with pytest.raises(NoiseError, match="no re-measured pairs"):
        ceiling_of(np.array([]), np.array([]))


def test_remeasure_stores_repeats_apart_charges_them_and_draws_only_new_rows(tmp_path: Path) -> None:
    db = make_db(tmp_path / "a.sqlite", n=60)
    before = _stored(db)
    fam = get_family("mbconv")
    with Store(db) as store:
        c = remeasure(store, "cpu", fam, 25, seed=1, progress=False, profiler_factory=_factory(db, off_every=5))
        assert c.n == 25 and c.within10 == pytest.approx(20 / 25)  # every 5th is 30 % off
        charged = store.db.execute("select count(*), sum(seconds) from ledger where activity = 'noise_profile'"
                                   ).fetchone()
        assert charged[0] == 25 and charged[1] == pytest.approx(25 * 0.25)
        assert store.profiling_seconds(activity="noise_profile") == pytest.approx(6.25)
        first = {r["measurement_id"] for r in store.repeats(family="mbconv")}
        # a second call draws among the rows not yet repeated; the ceiling covers both calls
        c2 = remeasure(store, "cpu", fam, 100, seed=1, progress=False, profiler_factory=_factory(db))
        assert c2.n == 60
        assert len({r["measurement_id"] for r in store.repeats(family="mbconv")} - first) == 35
        with pytest.raises(NoiseError, match="already has a repeat"):
            remeasure(store, "cpu", fam, 5, progress=False, profiler_factory=_factory(db))
        some = [r["key"] for r in store.repeats(family="mbconv")][:10]
        assert noise_ceiling(store, "mbconv", keys=some).n == 10
        assert noise_ceiling(store, "resv1") is None
    assert _stored(db) == before  # the measurements themselves never change


def test_remeasure_refuses_another_platform_and_a_bad_n(tmp_path: Path) -> None:
    db = make_db(tmp_path / "a.sqlite", n=20)
    fam = get_family("mbconv")
    stored = _stored(db)
    with Store(db) as store:
        with pytest.raises(NoiseError, match="on the machine and settings that made them"):
            remeasure(store, "cpu", fam, 5, progress=False,
                      profiler_factory=lambda d, p: FreshProcess(d, p, stored=stored, platform="0ther0platfrm"))
        with pytest.raises(NoiseError, match="n=0 is not allowed"):
            remeasure(store, "cpu", fam, 0, progress=False)
    with Store(db, readonly=True) as store:
        assert store.repeats() == [] and store.profiling_seconds(activity="noise_profile") == 0


def test_protocol_ids_map_back_to_protocols() -> None:
    from acquisition.fidelity import CHEAP_PROTOCOL

    assert protocol_from_id("adaptive-v1") == AdaptiveProtocol()
    assert protocol_from_id(CHEAP_PROTOCOL.id) == CHEAP_PROTOCOL
    assert protocol_from_id(FixedProtocol(repeats=50).id) == FixedProtocol(repeats=50)
    with pytest.raises(NoiseError, match="'synthetic-v1' is not one this version can measure with"):
        protocol_from_id("synthetic-v1")


@pytest.mark.slow
def test_fit_prints_the_ceiling_of_its_test_rows(tmp_path: Path) -> None:
    db = make_db(tmp_path / "a.sqlite", n=200)
    out = tmp_path / "m.bundle"
    code, stdout, err = run_cli("fit", "--db", str(db), "--family", "mbconv", "--model", "gbt", "--out", str(out))
    assert code == 0, err
    assert "noise ceiling: unknown (`python -m acquisition remeasure` measures it)" in stdout
    with Store(db) as store:  # every row re-measured: the test rows' own ceiling is shown
        remeasure(store, "cpu", get_family("mbconv"), 200, progress=False, profiler_factory=_factory(db))
    code, stdout, err = run_cli("fit", "--db", str(db), "--family", "mbconv", "--model", "gbt", "--out", str(out))
    assert code == 0, err
    line = next(x for x in stdout.splitlines() if x.startswith("noise ceiling"))
    assert "on the 30 test blocks that were re-measured the model is within +-10 % for" in line
    assert "repeats within +-10 % for 100.0 % of 30 re-measured blocks" in line
    from surrogates import load_bundle

    assert load_bundle(str(out)).manifest["metrics"]["noise_n"] == 30


@pytest.mark.slow
def test_remeasure_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    db = make_db(tmp_path / "a.sqlite", n=20)
    for argv, needle in ((("--db", str(tmp_path / "none.sqlite")), "does not exist"),
                         (("--db", str(db), "--family", "nope"), "nope"),
                         (("--db", str(db), "--n", "0"), "--n"),
                         # stored with a protocol this version knows, but on another platform than this machine
                         (("--db", str(db), "--device", "cpu", "--n", "2", "--no-progress"),
                          "on the machine and settings that made them")):
        code, _, err = run_cli("remeasure", *argv)
        assert code == 2
        assert_one_line_error(err, needle)
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from repeats").fetchone()[0] == 0
        assert conn.execute("select count(*) from measurements").fetchone()[0] == 20
