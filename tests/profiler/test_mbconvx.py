"""The block families of published models: ``mbconvx`` (MobileNetV3 / EfficientNet inverted residual),
``resv1x`` (ResNeXt / Wide ResNet bottleneck) and ``convbn`` (stems and heads). Their closed-form counts are
checked against the modules with the other families (``test_families``); here: structure, the squeeze-excite
forms, validation, and that the stored keys of ``mbconv`` and ``resv1`` did not move."""

from __future__ import annotations

from typing import Any

import pytest
import torch.nn as nn

from profiler.families import get_family
from profiler.families._modules import Add
from profiler.families.mbconvx import squeeze_width
from profiler.space import SpaceError


def _mx(hw: int, cin: int, mid: int, cout: int, k: int = 3, s: int = 1, act: str = "hswish",
        se: str = "none") -> dict[str, Any]:
    return {"input_hw": hw, "cin": cin, "mid": mid, "cout": cout, "kernel": k, "stride": s, "act": act, "se": se}


def _rx(hw: int, cin: int, width: int, cout: int, s: int = 1, groups: int = 1) -> dict[str, Any]:
    return {"input_hw": hw, "cin": cin, "width": width, "cout": cout, "kernel": 3, "stride": s, "groups": groups}


def test_mbconvx_width_and_expansion_convolution() -> None:
    fam = get_family("mbconvx")
    block = fam.build(_mx(14, 80, 184, 80))
    assert block.expand is not None and block.expand[0].out_channels == 184 and block.depthwise[0].groups == 184
    assert isinstance(block.add, Add) and isinstance(block.expand[2], nn.Hardswish)
    flat = fam.build(_mx(14, 80, 80, 96, s=2))
    assert flat.expand is None and flat.add is None  # mid == cin: no expansion; stride 2: no residual


@pytest.mark.parametrize(("se", "squeeze", "inner", "gate"), [
    ("hsigmoid", 64, nn.ReLU, nn.Hardsigmoid),  # MobileNetV3: make_divisible(240 / 4, 8), ReLU, Hardsigmoid
    ("sigmoid", 10, nn.SiLU, nn.Sigmoid),  # EfficientNet: cin / 4, the block's activation, Sigmoid
])
def test_mbconvx_squeeze_excite_forms(se: str, squeeze: int, inner: type, gate: type) -> None:
    cfg = _mx(28, 40, 240, 40, k=5, act="swish", se=se)
    block = get_family("mbconvx").build(cfg)
    assert squeeze_width(cfg) == squeeze == block.se.reduce.out_channels
    assert isinstance(block.se.relu, inner) and isinstance(block.se.gate, gate)
    assert get_family("mbconvx").build(_mx(28, 40, 240, 40)).se is None


@pytest.mark.parametrize(("cfg", "field"), [
    (_mx(14, 80, 72, 80), "mid"),  # below cin
    (_mx(14, 16, 136, 16), "mid"),  # above 8 x cin
    (_mx(14, 80, 180, 80), "mid"),  # not a multiple of 8
    (dict(_mx(14, 80, 160, 80), se=True), "se"),
    (dict(_mx(14, 80, 160, 80), expansion=2), "expansion"),
    (_rx(56, 64, 100, 256), "width"),
    (_rx(56, 64, 128, 256, groups=3), "groups"),
    (_rx(56, 64, 96, 256, groups=64), "width"),  # 64 groups do not divide 96
    (_rx(56, 64, 16, 256), "width"),  # below cout / 8
    ({"input_hw": 224, "cin": 12, "cout": 64, "kernel": 7, "stride": 2, "act": "relu", "pool": True}, "cin"),
    ({"input_hw": 224, "cin": 3, "cout": 64, "kernel": 7, "stride": 4, "act": "relu", "pool": True}, "stride"),
])
def test_bad_configurations_name_the_field(cfg: dict[str, Any], field: str) -> None:
    fam = get_family("mbconvx" if "mid" in cfg else "convbn" if "pool" in cfg else "resv1x")
    with pytest.raises(SpaceError, match=field):
        fam.validate(cfg)


def test_convbn_is_a_stem_measured_without_a_bundle() -> None:
    fam = get_family("convbn")
    stem = fam.build({"input_hw": 224, "cin": 3, "cout": 64, "kernel": 7, "stride": 2, "act": "relu", "pool": True})
    assert isinstance(stem.pool, nn.MaxPool2d) and isinstance(stem.act, nn.ReLU) and stem.conv.bias is None
    head = fam.build({"input_hw": 7, "cin": 320, "cout": 1280, "kernel": 1, "stride": 1, "act": "none",
                      "pool": False})
    assert head.act is None and head.pool is None
    assert fam.measured_without_bundle and not getattr(get_family("mbconvx"), "measured_without_bundle", False)


def test_resv1x_width_groups_and_shortcut() -> None:
    fam = get_family("resv1x")
    block = fam.build(_rx(56, 64, 128, 256, groups=32))  # ResNeXt-50 32x4d, first block
    k = block.residual[3]
    assert (k.in_channels, k.out_channels, k.groups) == (128, 128, 32) and block.shortcut is not None
    assert fam.build(_rx(14, 1024, 512, 1024)).shortcut is None  # Wide ResNet-50-2, stage 3


def test_the_older_families_keep_their_keys() -> None:
    # the general families are families of their own: every stored mbconv / resv1 key is what it was
    mb = {"input_hw": 56, "cin": 24, "cout": 24, "expansion": 6, "kernel": 3, "stride": 1, "se": False,
          "act": "relu6"}
    res = {"input_hw": 56, "cin": 64, "cout": 256, "kernel": 3, "stride": 1, "variant": "bottleneck"}
    assert get_family("mbconv").key(mb) == "ed2108ef3f46b470ce4f"
    assert get_family("resv1").key(res) == "054e544fc74ef3361a72"
    assert (get_family("mbconv").space.hash(), get_family("resv1").space.hash()) == ("1b83a52e35896751",
                                                                                   "b6aa453e29df778e")
    same = get_family("resv1x").counts(_rx(56, 64, 64, 256))  # ResNet-50's bottleneck as resv1x
    assert same == get_family("resv1").counts(res)
