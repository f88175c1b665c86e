"""``run`` and ``profile`` with ``--ray-address``: bad flags, Ray missing, and one end-to-end run on real blocks.

The end-to-end test measures tiny real ``resv1`` blocks on one CPU device actor of a local Ray instance (one
actor: two real CPU measurements at once on this 2-core machine would distort each other; the throughput and
fault tests use replay-backed actors, tests/acquisition/test_fleet.py).
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from acquisition.cli import main
from acquisition.store import Store


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err.strip()


@pytest.mark.parametrize("cmd", ["profile", "run"])
def test_actors_needs_an_address(tmp_path, capsys, cmd):
    db = tmp_path / "a.sqlite"
    assert main([cmd, "--actors", "2", "--db", str(db)]) == 2
    err = _err(capsys)
    assert "--actors needs --ray-address" in err and "Traceback" not in err
    assert not db.exists()


@pytest.mark.parametrize("value", ["-1", "x", "1.5"])
def test_fit_workers_needs_a_count(tmp_path, capsys, value):
    db = tmp_path / "a.sqlite"
    code = None
    try:
        code = main(["run", "--fit-workers", value, "--db", str(db)])
    except SystemExit as e:  # argparse: a bad value is its usage error
        code = e.code
    assert code == 2
    err = _err(capsys)
    assert repr(value) in err or value in err
    assert "Traceback" not in err and not db.exists()


@pytest.mark.parametrize("address", ["nowhere", "host:", "http://a:1", "local:", "auto:1"])
def test_bad_address_is_one_line_naming_it(tmp_path, capsys, address):
    db = tmp_path / "a.sqlite"
    assert main(["profile", "--ray-address", address, "--db", str(db), "--n", "2"]) == 2
    err = _err(capsys)
    assert repr(address) in err and len(err.splitlines()) == 1
    assert not db.exists()


def test_an_address_where_nothing_listens_fails_at_once(tmp_path, capsys):
    pytest.importorskip("ray")
    import socket

    with socket.socket() as s:  # a free port: nothing listens there once the socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "a.sqlite"
    assert main(["profile", "--ray-address", f"127.0.0.1:{port}", "--db", str(db), "--n", "2"]) == 2
    err = _err(capsys)
    assert "nothing answers there" in err and len(err.splitlines()) == 1
    assert not db.exists()


def test_one_gpu_index_is_refused_on_a_cluster(tmp_path, capsys):
    assert main(["run", "--ray-address", "local", "--device", "cuda:1", "--db", str(tmp_path / "a.sqlite")]) == 2
    assert "--device cuda" in _err(capsys)


def test_without_ray_the_flag_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    db = tmp_path / "a.sqlite"
    for cmd in ("profile", "run"):
        assert main([cmd, "--ray-address", "auto", "--db", str(db)]) == 2
        err = _err(capsys)
        assert "pip install 'latency-acquisition[ray]'" in err and len(err.splitlines()) == 1
    assert not db.exists()
    from profiler.fleet import FleetError, require_ray

    with pytest.raises(FleetError, match=r"latency-acquisition\[ray\]"):
        require_ray()


def test_without_ray_everything_else_imports_and_parses(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    for mod in [m for m in list(sys.modules) if m.startswith(("acquisition", "profiler.actor"))]:
        monkeypatch.delitem(sys.modules, mod)
    import acquisition.cli
    import acquisition.fleet_run

    with pytest.raises(SystemExit) as e:
        acquisition.cli.main(["run", "--help"])
    assert e.value.code == 0
    assert "--ray-address" in capsys.readouterr().out


@pytest.fixture(scope="module")
def local_ray():
    pytest.importorskip("ray")
    from profiler.fleet import connect, disconnect

    connect("local", num_cpus=2)
    yield
    disconnect()


@pytest.mark.slow
def test_end_to_end_real_blocks_on_a_cpu_actor(local_ray, tmp_path, capsys):
    """profile then run with --ray-address on the instance the fixture started (the CLI reuses a connection)."""
    db = tmp_path / "fleet.sqlite"
    assert main(["profile", "--ray-address", "local", "--family", "resv1", "--n", "3", "--db", str(db),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "profiled 3 (3 ok" in out and "devices (1 platform(s)):" in out
    assert main(["run", "--ray-address", "local", "--family", "resv1", "--db", str(db), "--campaign", "fl",
                 "--budget-samples", "20", "--initial-size", "10", "--batch-size", "10", "--fidelity", "full",
                 "--model", "gbt-quick", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "campaign fl:" in out and "20 training samples" in out
    assert os.path.isfile(tmp_path / "fl.bundle")
    with Store(db, readonly=True) as store:
        rows = store.db.execute("select key, device_state from measurements where family = 'resv1'").fetchall()
        assert len(rows) == len({k for k, _ in rows}) >= 20  # nothing stored twice
        actors = {json.loads(ds)["fleet"]["actor"] for _, ds in rows}
        assert len(actors) >= 1 and all(a.endswith(("#0", "#1")) for a in actors)  # measured by the actors
        charged = store.db.execute("select count(*) from ledger where measurement_id is not null").fetchone()[0]
        assert charged == len(rows)
        assert store.get_campaign("fl")["state"] in ("met", "budget")


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _has_cuda(), reason="needs a CUDA device")
def test_gpu_actor_measures_on_the_gpu_ray_gives_it(local_ray, tmp_path, capsys):
    """One actor per GPU of the local instance (num_gpus=1); the actor sees its GPU as cuda:0."""
    import ray
    import torch

    assert ray.cluster_resources().get("GPU", 0) == torch.cuda.device_count()
    db = tmp_path / "gpu.sqlite"
    assert main(["profile", "--ray-address", "local", "--device", "cuda", "--family", "resv1", "--n", "4",
                 "--db", str(db), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "resv1 on cuda:0" in out and "4 ok" in out
    with Store(db, readonly=True) as store:
        (plat,) = store.platforms()
        assert plat["fingerprint"]["kind"] == "cuda" and plat["fingerprint"]["timing"] == "cuda-events"
        states = [json.loads(r[0]) for r in store.db.execute("select device_state from measurements")]
        assert all("fleet" in s for s in states)
        assert len({s["fleet"]["actor"] for s in states}) == min(4, torch.cuda.device_count())


def test_more_cpu_devices_than_the_cluster_has_is_refused_at_once(local_ray, tmp_path, capsys):
    db = tmp_path / "a.sqlite"
    assert main(["profile", "--ray-address", "local", "--actors", "3", "--db", str(db), "--n", "2",
                 "--no-progress"]) == 2
    err = _err(capsys)
    assert "need 3 CPUs" in err and "has 2" in err and len(err.splitlines()) == 1
    if not _has_cuda():
        assert main(["run", "--ray-address", "local", "--device", "cuda", "--db", str(db), "--no-progress"]) == 2
        assert "has no GPU" in _err(capsys)
    assert not db.exists()  # checked before the database is opened
