"""Acquiring where networks live (``--around``, ``acquisition.loop.around``): the draw's contract, the targets
read from model names and files, the spec's checks, and a campaign whose candidates lean toward real blocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acquisition.campaign import CampaignError, CampaignSpec
from acquisition.engine import run_campaign
from acquisition.loop.around import around_sampler, around_targets
from acquisition.store import Store
from profiler.decompose import from_torch
from profiler.families import get_family
from profiler.zoo import ModelNameError
from tests.acquisition.synthetic_profiler import SyntheticProfiler
from tests.acquisition.test_cli import assert_one_line_error, run_cli
from tests.quick_models import QUICK

FAM = get_family("mbconv")
T1 = {"input_hw": 56, "cin": 24, "cout": 24, "expansion": 6, "kernel": 3, "stride": 1, "se": False, "act": "relu6"}
T2 = {"input_hw": 14, "cin": 96, "cout": 160, "expansion": 6, "kernel": 3, "stride": 2, "se": False, "act": "relu6"}

try:
    from profiler.zoo import _timm

    _timm()
    HAVE_MODELS = True
except ModelNameError:  # pragma: no cover - the test extra installs torchvision and timm
    HAVE_MODELS = False


def base(n, method, seed, exclude):
    return FAM.space.sample(n, method=method, seed=seed, family="mbconv", exclude=exclude)


def test_the_draw_is_seeded_unique_and_leans_toward_the_targets() -> None:
    draw = around_sampler(base, FAM, [T1, T2], 0.6)
    a = draw(20, "random", 7, set())
    assert a == draw(20, "random", 7, set()) and a != draw(20, "random", 8, set())
    keys = [FAM.key(c) for c in a]
    assert len(a) == 20 and len(set(keys)) == 20
    assert {FAM.key(c) for c in a[:2]} == {FAM.key(T1), FAM.key(T2)}  # the targets themselves first
    near = a[:12]  # 60 %: near the targets; each a valid configuration within a few steps of one of them
    assert all(FAM.space.is_valid(c) for c in a)
    assert all(min(abs(c["cin"] - t["cin"]) / t["cin"] for t in (T1, T2)) < 1.0 for c in near)
    excluded = draw(20, "random", 7, set(keys))
    assert not {FAM.key(c) for c in excluded} & set(keys)  # measured keys are never drawn again
    assert around_sampler(base, FAM, [T1], 0.0)(10, "random", 3, set()) == base(10, "random", 3, set())


def test_targets_from_files_and_errors(tmp_path: Path) -> None:
    spec_file = tmp_path / "net.json"
    spec_file.write_text(json.dumps({"blocks": [{"family": "mbconv", "config": T1}, {"family": "mbconv",
                                                                                     "config": T1}]}))
    assert around_targets([str(spec_file)], FAM) == [FAM.validate(T1)]  # distinct blocks
    import torch.nn as nn

    d = from_torch(nn.Sequential(FAM.build(T2)), (1, 96, 14, 14), name="one")
    dec = tmp_path / "one.json"
    dec.write_text(d.to_json())
    assert around_targets([str(dec)], FAM) == [FAM.validate(T2)]
    with pytest.raises(CampaignError, match="holds a block of family 'resv1'"):
        around_targets([str(dec)], get_family("resv1"))
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(CampaignError, match="neither a network spec nor a decomposition"):
        around_targets([str(bad)], FAM)


@pytest.mark.skipif(not HAVE_MODELS, reason="torchvision and timm are not installed")
def test_targets_from_a_model_name() -> None:
    got = around_targets(["torchvision:mobilenet_v2"], FAM)
    assert FAM.validate({"input_hw": 56, "cin": 24, "cout": 24, "expansion": 6, "kernel": 3, "stride": 1,
                         "se": False, "act": "relu6"}) in got
    assert 10 <= len(got) <= 17


@pytest.mark.parametrize(("kw", "needle"), [
    ({"around": "keras:resnet"}, "around entry 'keras:resnet' is neither a model name"),
    ({"around": " , "}, "around=' , ' is not allowed"),
    ({"around": "torchvision:resnet18", "around_share": 1.5}, "around_share=1.5 is not allowed"),
])
def test_the_spec_checks_around(kw, needle: str) -> None:
    with pytest.raises(CampaignError, match=needle.replace("(", r"\(")):
        CampaignSpec(name="a", family="mbconv", **kw).validate()


def test_a_campaign_around_a_network_measures_its_blocks(tmp_path: Path) -> None:
    net = tmp_path / "net.json"
    net.write_text(json.dumps({"blocks": [{"family": "mbconv", "config": T1}, {"family": "mbconv", "config": T2}]}))
    spec = CampaignSpec(name="ar", family="mbconv", model=QUICK, budget_samples=30, batch_size=10, initial_size=10,
                        pool_size=100, fidelity="full", around=str(net), around_share=0.5).validate()
    with Store(tmp_path / "a.sqlite") as store:
        run_campaign(store, spec, SyntheticProfiler(), FAM)
        keys = {m["key"] for m in store.members("ar")}
    assert {FAM.key(T1), FAM.key(T2)} <= keys  # the served network's own blocks are measured


def test_run_refuses_a_bad_around_in_one_line(tmp_path: Path) -> None:
    code, _, err = run_cli("run", "--db", str(tmp_path / "a.sqlite"), "--around", "caffe:alexnet")
    assert code == 2
    assert_one_line_error(err, "around entry 'caffe:alexnet' is neither a model name")
    assert not (tmp_path / "a.sqlite").exists()


def test_a_measurer_with_its_own_rows_refuses_around(tmp_path: Path) -> None:
    class TableProfiler(SyntheticProfiler):
        def sample(self, n, method, seed, exclude=None, family=""):  # a recorded table's own candidates
            return base(n, method, seed, exclude or set())

    net = tmp_path / "net.json"
    net.write_text(json.dumps({"blocks": [{"family": "mbconv", "config": T1}]}))
    spec = CampaignSpec(name="t", family="mbconv", model=QUICK, budget_samples=30, fidelity="full",
                        around=str(net)).validate()
    with Store(tmp_path / "a.sqlite") as store, pytest.raises(CampaignError, match="draws its own"):
        run_campaign(store, spec, TableProfiler(), FAM)
