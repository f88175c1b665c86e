"""Installed plug-ins (package entry points): a family, a model and a strategy found without ``--plugin`` by every
command, a broken entry point a one-line warning naming it; ``report`` draws a plug-in family's PNG.

The "installed" distribution is real as far as :mod:`importlib.metadata` is concerned: a ``.dist-info`` folder
with ``METADATA`` and ``entry_points.txt`` on ``sys.path`` (no pip install needed).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import acquisition.stopping as stopping
import acquisition.strategies._base as strategies_base
import profiler.families._base as families_base
import profiler.plugins
import surrogates.models as models_registry
from acquisition.campaign import CampaignSpec
from acquisition.engine import run_campaign
from acquisition.store import Store
from tests.acquisition.synthetic_profiler import SyntheticProfiler

ROOT = Path(__file__).resolve().parents[1]

PLUGIN_MODULE = '''
"""A plug-in: one block family, one model, one strategy (none registers itself: the entry points do)."""
from acquisition.stopping import BoundRule
from acquisition.strategies import RandomStrategy
from profiler.families.mbconv import MBConvFamily
from surrogates.models import GBTRegressor


class PlugConv(MBConvFamily):
    """mbconv under another name."""

    name = "plugconv"


class PlugGBT(GBTRegressor):
    """gbt under another name."""


class PlugStrategy(RandomStrategy):
    """random under another name."""

    name = "plug-random"


class PlugRule(BoundRule):
    """the bound rule under another name."""

    name = "plug-bound"
'''

ENTRY_POINTS = """\
[latency_acquisition.families]
plugconv = tinyplug:PlugConv

[latency_acquisition.models]
plug-gbt = tinyplug:PlugGBT

[latency_acquisition.strategies]
plug-random = tinyplug:PlugStrategy

[latency_acquisition.stop_rules]
plug-bound = tinyplug:PlugRule
"""

BROKEN_ENTRY_POINTS = """\
[latency_acquisition.families]
ghostfam = no_such_plugin_module:Ghost
"""

CONFIG = {"input_hw": 28, "cin": 32, "cout": 64, "expansion": 6, "kernel": 5, "stride": 2, "se": True,
          "act": "hswish"}


def make_distribution(where: Path, name: str, entry_points: str, module: str | None = None) -> Path:
    """A distribution ``name`` "installed" in the folder ``where``: its dist-info and, optionally, its module."""
    where.mkdir(parents=True, exist_ok=True)
    info = where / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    if module is not None:
        (where / f"{name}.py").write_text(module)
    return where


@pytest.fixture
def fresh_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each registry and the loaded entry-point groups as they were before the test, afterwards."""
    monkeypatch.setattr(profiler.plugins, "_LOADED", set())
    monkeypatch.setattr(families_base, "_REGISTRY", dict(families_base._REGISTRY))
    monkeypatch.setattr(models_registry, "_REGISTRY", dict(models_registry._REGISTRY))
    monkeypatch.setattr(strategies_base, "_REGISTRY", dict(strategies_base._REGISTRY))
    monkeypatch.setattr(stopping, "_RULES", dict(stopping._RULES))


@pytest.mark.usefixtures("fresh_registries")
def test_entry_points_register_a_family_a_model_a_strategy_and_a_stop_rule(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from acquisition.strategies import get_strategy, list_strategies
    from profiler.families import get_family, list_families
    from surrogates.models import get_model, list_models

    monkeypatch.syspath_prepend(str(make_distribution(tmp_path / "site", "tinyplug", ENTRY_POINTS, PLUGIN_MODULE)))
    assert "plugconv" in list_families() and get_family("plugconv").name == "plugconv"
    assert list_models()[-1] == "plug-gbt" and type(get_model("plug-gbt")).__name__ == "PlugGBT"
    assert "plug-random" in list_strategies() and type(get_strategy("plug-random")).__name__ == "PlugStrategy"
    assert "plug-bound" in stopping.list_stop_rules()
    assert type(stopping.get_stop_rule("plug-bound")).__name__ == "PlugRule"
    assert profiler.plugins.loaded_groups() == set(profiler.plugins.GROUPS.values())
    # once per process: a second ask loads nothing again
    assert profiler.plugins.load_entry_points(profiler.plugins.GROUPS["families"], lambda n, o: None) == []


@pytest.mark.usefixtures("fresh_registries")
def test_a_broken_entry_point_is_a_one_line_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    from profiler.families import get_family, list_families

    monkeypatch.syspath_prepend(str(make_distribution(tmp_path / "site", "brokenplug", BROKEN_ENTRY_POINTS)))
    with caplog.at_level(logging.WARNING, logger="latency_acquisition.plugins"):
        names = list_families()
    assert "mbconv" in names and "ghostfam" not in names
    (record,) = [r for r in caplog.records if r.name == "latency_acquisition.plugins"]
    msg = record.getMessage()
    assert "ghostfam" in msg and "no_such_plugin_module" in msg and "\n" not in msg
    assert get_family("mbconv").name == "mbconv"


def _campaign_db(tmp_path: Path, site: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A database with a finished campaign of the plug-in family ``plugconv`` and its exported bundle."""
    from profiler.families import get_family

    monkeypatch.syspath_prepend(str(site))
    family = get_family("plugconv")
    db, bundle = tmp_path / "plug.sqlite", tmp_path / "plug.bundle"
    spec = CampaignSpec(name="plug", family="plugconv", strategy="random", model="gbt", target_spearman=0.9999,
                        budget_samples=30, batch_size=10, initial_size=10, validation_size=10, pool_size=100,
                        verification="holdout", fidelity="full", transfer="none")
    with Store(db) as store:
        run_campaign(store, spec, SyntheticProfiler(), family, bundle_path=str(bundle))
    return db, bundle


def _cli(*argv: str, pythonpath: list[Path]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, pythonpath), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "acquisition", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180, check=False)


@pytest.mark.slow
@pytest.mark.usefixtures("fresh_registries")
def test_an_installed_plugin_family_works_in_every_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_distribution(tmp_path / "site", "tinyplug", ENTRY_POINTS, PLUGIN_MODULE)
    db, bundle = _campaign_db(tmp_path, site, monkeypatch)

    # installed: report draws the plug-in family's predicted-vs-measured PNG, predict and --help know it
    proc = _cli("report", "--db", str(db), "--out", str(tmp_path / "r1"), pythonpath=[site])
    assert proc.returncode == 0, proc.stderr
    assert "plug_predicted_vs_measured.png" in proc.stdout and "plug_learning_curve.png" in proc.stdout
    proc = _cli("predict", "--bundle", str(bundle), "--config", json.dumps(CONFIG), pythonpath=[site])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["pred_ms"] > 0
    proc = _cli("run", "--help", pythonpath=[site])
    assert proc.returncode == 0 and "plugconv" in proc.stdout and "plug-gbt" in proc.stdout
    assert "plug-random" in proc.stdout

    # not installed, only importable: report needs --plugin, and with it draws the PNG too
    module_only = tmp_path / "module_only"
    module_only.mkdir()
    (module_only / "tinyplug.py").write_text(PLUGIN_MODULE + "\nfrom profiler.families import register_family\n"
                                             "register_family(PlugConv())\n")
    proc = _cli("report", "--db", str(db), "--out", str(tmp_path / "r2"), pythonpath=[module_only])
    assert proc.returncode == 0, proc.stderr
    assert "plug_predicted_vs_measured.png" not in proc.stdout  # the bundle's family is unknown here
    proc = _cli("report", "--db", str(db), "--out", str(tmp_path / "r3"), "--plugin", "tinyplug",
                pythonpath=[module_only])
    assert proc.returncode == 0, proc.stderr
    assert "plug_predicted_vs_measured.png" in proc.stdout
    assert (tmp_path / "r3" / "plug_predicted_vs_measured.png").stat().st_size > 0
