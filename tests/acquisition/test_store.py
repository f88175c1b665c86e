"""The SQLite store: schema and pragmas, atomic record + ledger, uniqueness and retries, queries and summaries,
and refusing files that are not ours without touching them. No real profiling: measurements are built by hand."""

from __future__ import annotations

import json
import math
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from acquisition.store import APPLICATION_ID, SCHEMA_VERSION, Store, StoreError
from profiler.protocol import Timing
from profiler.worker import Measurement

PLATFORM = "aaaaaaaaaaaa"
OTHER_PLATFORM = "bbbbbbbbbbbb"
PROTOCOL = "adaptive-v1"


def timing(min_ms: float = 1.0, n: int = 40, stop: str = "stable") -> Timing:
    return Timing(min_ms=min_ms, median_ms=min_ms * 1.1, p10_ms=min_ms * 1.02, p90_ms=min_ms * 1.3,
                  mean_ms=min_ms * 1.15, n=n, timed_s=n * min_ms * 1.15 / 1e3, warmup_n=2, warmup_s=0.01, stop=stop,
                  spread=1.02)


def measurement(key: str = "k1", *, status: str = "ok", cost_s: float = 1.5, family: str = "fam",
                platform: str = PLATFORM, protocol: str = PROTOCOL, stable: bool = True,
                config: dict[str, Any] | None = None) -> Measurement:
    ok = status == "ok"
    return Measurement(family=family, key=key, config=config if config is not None else {"cin": 8, "key": key},
                       protocol=protocol, platform=platform, status=status, cost_s=cost_s,
                       reason=None if ok else "RuntimeError: boom", timing=timing() if ok else None,
                       stable=stable, unstable_reason=None if stable else "spread too large",
                       build_s=0.01 if ok else None, device_state={"t": 1} if ok else {})


def new_store(path: Path, *platforms: str) -> Store:
    store = Store(path)
    for p in platforms or (PLATFORM,):
        store.ensure_platform(p, {"kind": "cpu", "cpu_model": "test cpu", "threads": 1}, "cpu")
    return store


def count(store: Store, table: str) -> int:
    return int(store.db.execute(f"select count(*) from {table}").fetchone()[0])


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite"


# -- schema -------------------------------------------------------------------------------------------------------
def test_new_file_is_marked_versioned_wal_with_three_tables(db_path: Path) -> None:
    with Store(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert {"platforms", "measurements", "ledger"} <= set(store.db.table_names())
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        unique = [row for row in conn.execute("PRAGMA index_list(measurements)") if row[2]]
        cols = [{r[2] for r in conn.execute(f"PRAGMA index_info('{row[1]}')")} for row in unique]
        assert {"platform", "family", "key", "protocol"} in cols
    finally:
        conn.close()
    with Store(db_path) as again:  # reopening an existing database works and keeps its content
        again.ensure_platform(PLATFORM, {"kind": "cpu"}, "cpu")
    with Store(db_path, readonly=True) as ro:
        assert [p["id"] for p in ro.platforms()] == [PLATFORM]
        assert ro.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_ensure_platform_is_idempotent(db_path: Path) -> None:
    with new_store(db_path) as store:
        store.ensure_platform(PLATFORM, {"kind": "cpu", "cpu_model": "other"}, "cpu")
        (plat,) = store.platforms()
        assert plat["id"] == PLATFORM and plat["fingerprint"]["cpu_model"] == "test cpu"


# -- record -------------------------------------------------------------------------------------------------------
def test_record_stores_measurement_and_one_ledger_row(db_path: Path) -> None:
    with new_store(db_path) as store:
        m = measurement("k1", cost_s=2.5)
        mid = store.record(m, campaign="c1")
        row = store.db["measurements"].get(mid)
        assert (row["platform"], row["family"], row["key"], row["protocol"], row["status"]) == \
            (PLATFORM, "fam", "k1", PROTOCOL, "ok")
        assert json.loads(row["config"]) == m.config
        assert row["min_ms"] == m.timing.min_ms and row["n"] == m.timing.n and row["cost_s"] == 2.5
        ledger = list(store.db["ledger"].rows)
        assert len(ledger) == 1
        assert ledger[0]["measurement_id"] == mid and ledger[0]["seconds"] == 2.5
        assert ledger[0]["activity"] == "profile" and ledger[0]["campaign"] == "c1"
        assert store.profiling_seconds() == pytest.approx(2.5)


def _fail_ledger_inserts(monkeypatch: pytest.MonkeyPatch) -> None:
    original = sqlite_utils.db.Table.insert

    def insert(self: sqlite_utils.db.Table, *args: Any, **kwargs: Any) -> Any:
        if self.name == "ledger":
            raise RuntimeError("simulated crash between the measurement and its ledger row")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sqlite_utils.db.Table, "insert", insert)


def test_record_is_one_transaction(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with new_store(db_path) as store:
        with monkeypatch.context() as mp:
            _fail_ledger_inserts(mp)
            with pytest.raises(RuntimeError, match="simulated crash"):
                store.record(measurement("k1"))
        assert count(store, "measurements") == 0 and count(store, "ledger") == 0
        assert not store.db.conn.in_transaction
        store.record(measurement("k1"))  # the store is still usable, and the key is free
        assert count(store, "measurements") == 1 and count(store, "ledger") == 1
    with Store(db_path, readonly=True) as ro:  # what reached the file
        assert count(ro, "measurements") == 1 and count(ro, "ledger") == 1


def test_failed_retry_is_rolled_back_when_its_ledger_row_fails(db_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with new_store(db_path) as store:
        mid = store.record(measurement("k1", status="failed", cost_s=1.0))
        with monkeypatch.context() as mp:
            _fail_ledger_inserts(mp)
            with pytest.raises(RuntimeError):
                store.record(measurement("k1", cost_s=4.0))
        (row,) = store.measurements()
        assert row["id"] == mid and row["status"] == "failed" and row["cost_s"] == 1.0
        assert count(store, "ledger") == 1 and store.profiling_seconds() == pytest.approx(1.0)


def test_unique_per_platform_family_key_protocol(db_path: Path) -> None:
    with new_store(db_path, PLATFORM, OTHER_PLATFORM) as store:
        ids = {store.record(measurement("k1")),
               store.record(measurement("k1", protocol="fixed-n50-v1")),
               store.record(measurement("k1", platform=OTHER_PLATFORM)),
               store.record(measurement("k1", family="fam2"))}
        assert len(ids) == 4 and count(store, "measurements") == 4
        with pytest.raises(StoreError, match="already stored"):
            store.record(measurement("k1", cost_s=9.0))
        assert count(store, "measurements") == 4 and count(store, "ledger") == 4
        assert store.profiling_seconds() == pytest.approx(4 * 1.5)
        # the database itself enforces it, not only record()
        with pytest.raises(sqlite3.IntegrityError):
            store.db["measurements"].insert({"platform": PLATFORM, "family": "fam", "key": "k1",
                                             "protocol": PROTOCOL, "config": "{}", "status": "ok", "cost_s": 0,
                                             "created_at": "now"})


def test_failed_measurement_is_replaced_by_a_later_ok_one(db_path: Path) -> None:
    with new_store(db_path) as store:
        first = store.record(measurement("k1", status="failed", cost_s=2.0))
        again = store.record(measurement("k1", status="failed", cost_s=0.5))  # a failed retry replaces too
        ok = store.record(measurement("k1", cost_s=3.0))
        assert first == again == ok
        (row,) = store.measurements()
        assert row["id"] == first and row["status"] == "ok" and row["reason"] is None and row["cost_s"] == 3.0
        ledger = list(store.db["ledger"].rows_where(order_by="id"))
        assert [r["seconds"] for r in ledger] == [2.0, 0.5, 3.0]
        assert {r["measurement_id"] for r in ledger} == {first}
        assert ledger[0]["note"] == "RuntimeError: boom" and ledger[2]["note"] is None
        assert store.profiling_seconds() == pytest.approx(5.5)
        assert store.profiling_seconds(family="fam") == pytest.approx(5.5)
        with pytest.raises(StoreError):
            store.record(measurement("k1", status="failed"))  # an ok row is never replaced, not even by a failure
        assert count(store, "ledger") == 3


# -- queries ------------------------------------------------------------------------------------------------------
def test_find_many_keys_across_chunks(db_path: Path) -> None:
    keys = [f"key{i:05d}" for i in range(1100)]
    with new_store(db_path) as store:
        for k in keys:
            store.record(measurement(k, cost_s=0.01))
        store.record(measurement("key00001", protocol="other-v1"))  # other protocol: not found below
        asked = [f"missing{i}" for i in range(40)] + keys[::-1]
        found = store.find(PLATFORM, "fam", PROTOCOL, asked)
        assert set(found) == set(keys)
        assert all(found[k]["key"] == k and found[k]["protocol"] == PROTOCOL for k in keys)
        assert store.find(PLATFORM, "fam", PROTOCOL, []) == {}
        assert store.find(OTHER_PLATFORM, "fam", PROTOCOL, keys) == {}
        assert set(store.find(PLATFORM, "fam", PROTOCOL, iter(keys[495:505]))) == set(keys[495:505])


def test_measurements_filters_and_decodes(db_path: Path) -> None:
    with new_store(db_path, PLATFORM, OTHER_PLATFORM) as store:
        store.record(measurement("a", family="f1"))
        store.record(measurement("b", family="f1", status="failed"))
        store.record(measurement("c", family="f2"))
        store.record(measurement("d", family="f1", platform=OTHER_PLATFORM))
        rows = list(store.measurements())
        assert [r["key"] for r in rows] == ["a", "b", "c", "d"]
        assert rows[0]["config"] == {"cin": 8, "key": "a"} and rows[0]["device_state"] == {"t": 1}
        assert [r["key"] for r in store.measurements(family="f1")] == ["a", "b", "d"]
        assert [r["key"] for r in store.measurements(platform=OTHER_PLATFORM)] == ["d"]
        assert [r["key"] for r in store.measurements(family="f1", platform=PLATFORM)] == ["a", "b"]
        assert [r["key"] for r in store.measurements(status="failed")] == ["b"]
        assert list(store.measurements(family="nope")) == []


def test_status_counts_and_hours(db_path: Path) -> None:
    with new_store(db_path, PLATFORM, OTHER_PLATFORM) as store:
        assert store.status()["measurements"] == 0 and store.status()["profiling_hours"] == 0
        store.record(measurement("a", cost_s=1800))
        store.record(measurement("b", cost_s=900, stable=False))
        store.record(measurement("c", cost_s=900, status="failed"))
        store.record(measurement("d", cost_s=3600, family="f2", platform=OTHER_PLATFORM),
                     activity="validation_profile")
        store.charge("fit", 7200, family="fam")  # not profiling: not in the hours
        store.charge("network_profile", 360, platform=PLATFORM, family="fam")
        st = store.status()
        assert st["measurements"] == 4 and st["failed"] == 1 and st["schema_version"] == SCHEMA_VERSION
        assert st["database"] == os.path.abspath(db_path)
        assert st["profiling_hours"] == pytest.approx((1800 + 900 + 900 + 3600 + 360) / 3600)
        assert {p["id"] for p in st["platforms"]} == {PLATFORM, OTHER_PLATFORM}
        assert st["platforms"][0]["model"] == "test cpu"
        groups = {(g["platform"], g["family"]): g for g in st["families"]}
        g = groups[(PLATFORM, "fam")]
        assert (g["ok"], g["failed"], g["unstable"]) == (2, 1, 1)
        assert g["profiling_hours"] == pytest.approx((1800 + 900 + 900 + 360) / 3600)
        g2 = groups[(OTHER_PLATFORM, "f2")]
        assert (g2["ok"], g2["failed"], g2["unstable"]) == (1, 0, 0) and g2["profiling_hours"] == pytest.approx(1)
        json.dumps(st)  # what `status --json` prints


@pytest.mark.parametrize("seconds", [-1.0, -1e-9, math.nan])
def test_charge_rejects_negative_seconds(db_path: Path, seconds: float) -> None:
    with new_store(db_path) as store:
        with pytest.raises(StoreError, match="seconds"):
            store.charge("fit", seconds)
        store.charge("fit", 0)
        store.charge("profile", 12)
        assert count(store, "ledger") == 2 and store.profiling_seconds() == 12


# -- refusing files -----------------------------------------------------------------------------------------------
def _text_file(path: Path) -> None:
    path.write_text("name,latency\nconv,1.5\n")


def _other_programs_db(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("create table notes (id integer primary key, body text)")
    conn.execute("insert into notes (body) values ('hello')")
    conn.commit()
    conn.close()


def _newer_schema(path: Path) -> None:
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("readonly", [False, True], ids=["rw", "ro"])
@pytest.mark.parametrize(("make", "match"), [(_text_file, "not an SQLite file"),
                                             (_other_programs_db, "another program"),
                                             (_newer_schema, "newer")], ids=["text", "other", "newer"])
def test_refuses_foreign_files_without_touching_them(tmp_path: Path, make: Any, match: str, readonly: bool) -> None:
    path = tmp_path / "db.sqlite"
    make(path)
    before = snapshot(path)
    listing = sorted(os.listdir(tmp_path))
    with pytest.raises(StoreError, match=match) as err:
        Store(path, readonly=readonly)
    assert str(path) in str(err.value)
    assert snapshot(path) == before
    if not readonly:  # a read-only reader of a WAL file may leave empty -wal/-shm files (SQLite's own doing)
        assert sorted(os.listdir(tmp_path)) == listing


def test_refuses_a_directory(tmp_path: Path) -> None:
    for readonly in (False, True):
        with pytest.raises(StoreError, match="directory") as err:
            Store(tmp_path, readonly=readonly)
        assert str(tmp_path) in str(err.value)
    assert os.listdir(tmp_path) == []


def test_refuses_a_path_in_a_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "db.sqlite"
    with pytest.raises(StoreError, match="does not exist") as err:
        Store(path)
    assert str(path) in str(err.value)
    assert os.listdir(tmp_path) == []


def test_refuses_a_read_only_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running with permissions that ignore directory modes (root)")
        path = locked / "db.sqlite"
        with pytest.raises(StoreError, match="not writable") as err:
            Store(path)
        assert str(path) in str(err.value)
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o755)


def test_readonly_never_creates_a_file(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with pytest.raises(StoreError, match="no database") as err:
        Store(path, readonly=True)
    assert str(path) in str(err.value)
    assert os.listdir(tmp_path) == []
    path.touch()  # an empty file is not a database either, and stays empty
    with pytest.raises(StoreError) as err:
        Store(path, readonly=True)
    assert str(path) in str(err.value) and path.stat().st_size == 0


def test_readonly_reads_and_refuses_writes(db_path: Path) -> None:
    with new_store(db_path) as store:
        store.record(measurement("k1"))
    before = snapshot(db_path)
    with Store(db_path, readonly=True) as ro:
        assert ro.readonly
        assert [r["key"] for r in ro.measurements()] == ["k1"]
        assert ro.status()["measurements"] == 1 and set(ro.find(PLATFORM, "fam", PROTOCOL, ["k1"])) == {"k1"}
        for write in (lambda: ro.record(measurement("k2")), lambda: ro.charge("fit", 1.0),
                      lambda: ro.ensure_platform(OTHER_PLATFORM, {"kind": "cpu"}, "cpu")):
            with pytest.raises(StoreError, match="read-only") as err:
                write()
            assert str(db_path) in str(err.value)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):  # the connection itself is read-only
            ro.db.execute("insert into ledger (created_at, activity, seconds) values ('now', 'fit', 1)")
    assert snapshot(db_path) == before
    with Store(db_path, readonly=True) as ro:
        assert count(ro, "ledger") == 1 and count(ro, "platforms") == 1


def test_schema_1_database_gains_campaign_tables(db_path: Path) -> None:
    with Store(db_path) as store:
        store.ensure_platform("p", {"kind": "cpu"}, "cpu")
        for t in ("campaign_sources", "predictors", "iterations", "campaign_measurements", "campaigns"):
            store.db[t].drop()
        store.db.execute("PRAGMA user_version = 1")
    with Store(db_path, readonly=True) as ro:  # read-only: no migration, simply no campaigns
        assert ro.schema_version == 1 and ro.campaigns() == [] and ro.iterations("x") == []
        assert ro.status()["campaigns"] == []
    with Store(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION == 10
        assert {"campaigns", "campaign_measurements", "iterations", "predictors", "repeats", "campaign_sources"} <= set(
            store.db.table_names())
        assert [p["id"] for p in store.platforms()] == ["p"]


@pytest.mark.parametrize("old", [2, 3, 4, 5])
def test_older_campaign_schema_gains_the_new_columns_and_keeps_its_rows(db_path: Path, old: int) -> None:
    from acquisition.campaign import CampaignSpec

    with Store(db_path) as store:
        store.ensure_platform("p", {"kind": "cpu"}, "cpu")
        store.create_campaign("old", "mbconv", "p", CampaignSpec(name="old", family="mbconv").as_dict())
        store.add_iteration("old", {"iteration": 0, "n_train": 20, "spearman": 0.9}, met_streak=0)
        new = ["model", "transfer_gain"]
        if old < 5:
            new += ["fidelity", "fidelity_pairs", "fidelity_offset", "fidelity_noise"]
        if old == 2:
            store.db["campaign_measurements"].transform(drop={"drawn"})
            new += ["verification", "n_verify", "test_spearman", "test_acc10", "test_mape"]
        if old < 4:
            store.db["iterations"].transform(drop=set(new))
        if old == 5:
            store.db["iterations"].transform(drop=set(new))
        else:
            store.db["repeats"].drop()
        store.db["campaign_sources"].drop()
        store.db.execute(f"PRAGMA user_version = {old}")
    with Store(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION and {"repeats", "campaign_sources"} <= set(store.db.table_names())
        assert "drawn" in store.db["campaign_measurements"].columns_dict
        assert set(new) <= set(store.db["iterations"].columns_dict)
        it = store.iterations("old")[0]
        assert it["n_train"] == 20 and it["spearman"] == 0.9 and it["test_spearman"] is None
        assert it["fidelity"] is None


# -- schema 8: each measurement's noise, noise floors (profiler.doctor) -----------------------------------------
def _noisy_timing(noise: float | None, placements: int) -> Timing:
    t = timing(2.0)
    t.noise, t.placements = noise, placements
    return t


def test_record_and_record_repeat_store_the_measurements_noise(db_path: Path) -> None:
    from types import SimpleNamespace

    with new_store(db_path) as store:
        m = measurement("k1")
        m.timing = _noisy_timing(0.013, 3)
        mid = store.record(m)
        row = store.db["measurements"].get(mid)
        assert row["noise"] == pytest.approx(0.013) and row["placements"] == 3
        rep = measurement("k1")
        rep.timing = _noisy_timing(None, 1)  # one placement: no noise estimate
        rid = store.record_repeat(rep, mid)
        assert store.db["repeats"].get(rid)["noise"] is None
        old = measurement("k2")  # an old-style timing without the new fields is stored with NULLs
        old.timing = SimpleNamespace(**{k: v for k, v in timing().as_dict().items()
                                        if k not in ("noise", "placements")})
        row = store.db["measurements"].get(store.record(old))
        assert row["noise"] is None and row["placements"] is None and row["min_ms"] == 1.0
        failed = store.db["measurements"].get(store.record(measurement("k3", status="failed")))
        assert failed["noise"] is None and failed["placements"] is None


def _schema_7_file(path: Path) -> None:
    """A database as schema 7 wrote it: one measurement and one repeat, no noise columns, no noise_floors."""
    with new_store(path) as store:
        mid = store.record(measurement("k1"))
        store.record_repeat(measurement("k1"), mid)
        store.db["measurements"].transform(drop={"noise", "placements"})
        store.db["repeats"].transform(drop={"noise"})
        store.db["noise_floors"].drop()
        store.db.execute("PRAGMA user_version = 7")


def test_schema_7_database_gains_the_noise_columns_and_keeps_its_rows(db_path: Path) -> None:
    _schema_7_file(db_path)
    with Store(db_path, readonly=True) as ro:  # read-only: no migration, simply no noise floors
        assert ro.schema_version == 7 and ro.noise_floors() == [] and ro.latest_noise_floor(PLATFORM) is None
        assert "noise" not in next(ro.measurements())
        before = [(r["key"], r["min_ms"], r["created_at"]) for r in ro.measurements()]
    with Store(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION == 10 and "noise_floors" in store.db.table_names()
        assert {"noise", "placements"} <= set(store.db["measurements"].columns_dict)
        assert "noise" in store.db["repeats"].columns_dict
        rows = list(store.measurements())
        assert [(r["key"], r["min_ms"], r["created_at"]) for r in rows] == before  # nothing rewritten
        assert rows[0]["noise"] is None and rows[0]["placements"] is None
        assert store.repeats()[0]["min_ms"] == 1.0
        m = measurement("k2")
        m.timing = _noisy_timing(0.02, 3)
        assert store.db["measurements"].get(store.record(m))["noise"] == pytest.approx(0.02)
    with Store(db_path) as again:  # a migrated file opens as it is
        assert again.schema_version == SCHEMA_VERSION


def _floor(verdict: str = "ok", seconds: float = 41.5) -> dict[str, Any]:
    return {"verdict": verdict, "probe_family": "mbconv", "probe_n": 12, "median_diff": 0.011, "worst_diff": 0.06,
            "within10": 1.0, "spearman": 0.998, "seconds": seconds,
            "checks": [{"name": "load", "status": "ok", "reading": "0.02 of a core", "reason": None}],
            "reasons": [] if verdict == "ok" else ["load: another process used 0.97 of a core"]}


def test_noise_floors_are_stored_decoded_and_charged(db_path: Path) -> None:
    with new_store(db_path, PLATFORM, OTHER_PLATFORM) as store:
        first = store.record_noise_floor(PLATFORM, _floor())
        second = store.record_noise_floor(PLATFORM, _floor("busy", seconds=40.0))
        store.record_noise_floor(OTHER_PLATFORM, _floor())
        assert second > first
        rows = store.noise_floors(PLATFORM)
        assert [r["id"] for r in rows] == [first, second]  # oldest first
        assert rows[0]["checks"][0]["reading"] == "0.02 of a core" and rows[0]["reasons"] == []
        assert rows[1]["verdict"] == "busy" and rows[1]["reasons"] == ["load: another process used 0.97 of a core"]
        assert rows[0]["median_diff"] == 0.011 and rows[0]["probe_n"] == 12 and rows[0]["platform"] == PLATFORM
        assert len(store.noise_floors()) == 3
        assert store.latest_noise_floor(PLATFORM)["id"] == second
        assert store.latest_noise_floor("cccccccccccc") is None
        ledger = list(store.db["ledger"].rows_where("note = 'doctor'"))
        assert [r["activity"] for r in ledger] == ["noise_profile"] * 3
        assert store.profiling_seconds(platform=PLATFORM) == pytest.approx(81.5)
        with pytest.raises(StoreError, match="'cccccccccccc' is not in database"):
            store.record_noise_floor("cccccccccccc", _floor())
        with pytest.raises(StoreError, match="needs a verdict"):
            store.record_noise_floor(PLATFORM, {**_floor(), "verdict": None})
        assert len(store.noise_floors()) == 3 and count(store, "ledger") == 3  # nothing half-written
    with Store(db_path, readonly=True) as ro:
        assert ro.latest_noise_floor(OTHER_PLATFORM)["checks"][0]["name"] == "load"
        with pytest.raises(StoreError, match="read-only"):
            ro.record_noise_floor(PLATFORM, _floor())


def test_record_noise_floor_is_one_transaction(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with new_store(db_path) as store:
        _fail_ledger_inserts(monkeypatch)
        with pytest.raises(RuntimeError):
            store.record_noise_floor(PLATFORM, _floor())
        assert store.noise_floors() == [] and count(store, "ledger") == 0


def test_the_migrations_are_numbered_one_step_a_schema() -> None:
    from acquisition.store import MIGRATIONS, SCHEMA_VERSION

    assert sorted(MIGRATIONS) == list(range(2, SCHEMA_VERSION + 1))  # a new schema is one new step
    assert all(callable(step) and step.__doc__ for step in MIGRATIONS.values())
